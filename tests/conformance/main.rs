//! The binder conformance suite: one scenario list, run against every binder.
//!
//! Each binder gets a module whose name is the binder type (`memory::…`, later `rabbit::…`,
//! `kafka::…`, `sqs::…`), so `cargo test --test conformance memory::` runs one binder's suite.
//! A scenario that needs a capability the binder lacks checks the binder's capability manifest
//! and says so (it never silently passes).

#[cfg(feature = "kafka")]
mod kafka;
#[cfg(feature = "sqs")]
#[path = "../support/outage_proxy.rs"]
mod outage_proxy;
mod scenarios;
#[cfg(feature = "sqs")]
mod sqs;
mod target;

#[cfg(feature = "rabbit")]
mod rabbit;

/// Stamps every scenario out as a test for one target.
///
/// `paused` runs the memory binder in tokio's virtual time (back-off spacing is exact and
/// nothing waits for real); `real` runs on a multi-threaded runtime for network brokers.
#[macro_export]
macro_rules! conformance_suite {
    ($target:expr, $mode:ident) => {
        $crate::conformance_suite!(@each $target, $mode,
            function_round_trip,
            headers_and_content_type_round_trip,
            spring_content_type_header_is_read_and_not_propagated,
            oversized_output_is_dead_lettered_at_once_on_every_route,
            dlq_after_max_attempts_with_error_headers,
            dead_letters_can_be_consumed_by_a_binding,
            idempotent_consumer_handles_each_key_once,
            backoff_spacing_follows_policy,
            permanent_error_skips_retries,
            undecodable_payload_is_dead_lettered_and_next_flows,
            trace_context_round_trip,
            retry_then_success_sends_once,
            unknown_binding_key_fails_build,
            filter_function_sends_nothing,
            composition_end_to_end,
            routing_by_header,
            stream_bridge_to_new_destination,
            stream_bridge_cache_is_bounded,
            fan_out_to_three_groups,
            competing_consumers_share_work,
            member_joining_mid_stream_duplicates_nothing,
            anonymous_consumer_sees_only_new_messages,
            one_mib_payload,
            per_key_order_with_concurrency_8,
            pause_and_resume,
            stop_and_start_rebinds,
            graceful_drain_loses_and_duplicates_nothing,
            publish_subscribe_hundred_with_metadata,
            resend_on_error,
            continue_after_errors,
            panicking_handler_is_dead_lettered_and_binding_continues,
            topics_are_isolated,
            concurrent_subscribe_multiple_topics,
            group_keeps_messages_published_before_first_member,
            new_group_replays_history,
            partitioned_producer_and_consumers,
            polled_supplier_emits,
            batch_consumer_receives_batches_in_order,
            batch_partial_failure_acks_the_rest,
            batch_failure_dead_letters_each_message,
            batch_output_sends_each_item,
            delayed_redeliveries_do_not_block_then_dead_letter,
            delayed_redelivery_count_survives_a_restart,
        );
    };
    (@each $target:expr, $mode:ident, $($name:ident),+ $(,)?) => {
        $( $crate::conformance_suite!(@one $target, $mode, $name); )+
    };
    (@one $target:expr, paused, $name:ident) => {
        #[tokio::test(start_paused = true)]
        async fn $name() {
            let target = $target;
            $crate::scenarios::$name(&target).await;
        }
    };
    (@one $target:expr, real, $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(target) = $target else { return };
            $crate::scenarios::$name(&target).await;
        }
    };
}

/// The in-memory binder, in virtual time.
mod memory {
    conformance_suite!(crate::target::MemoryTarget::new(), paused);
}
