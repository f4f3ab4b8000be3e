//! Building an application: the errors a user gets for bad definitions and unreachable brokers.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use cloud_stream::binder::{
    BindError, Binder, BinderEnvironment, BinderFactory, Capabilities, OrderingScope,
};
use cloud_stream::{Error, HandlerError, StreamApp};

fn upper(b: cloud_stream::StreamAppBuilder) -> cloud_stream::StreamAppBuilder {
    b.function("uppercase", |s: String| async move {
        Ok::<_, HandlerError>(s.to_uppercase())
    })
}

#[tokio::test]
async fn unknown_function_in_definition_names_the_nearest_one() {
    let err = upper(StreamApp::builder().env(Default::default()))
        .config_yaml("spring.cloud.function.definition: upercase\n")
        .build()
        .await
        .expect_err("unknown function");
    let msg = err.to_string();
    assert!(matches!(err, Error::Resolve(_)), "{msg}");
    assert!(
        msg.contains("`upercase`") && msg.contains("did you mean `uppercase`"),
        "{msg}"
    );
}

#[tokio::test]
async fn unknown_binder_type_is_a_config_error() {
    let yaml = "spring.cloud.stream.binders.main.type: rabit\nspring.cloud.function.definition: uppercase\n";
    let err = upper(StreamApp::builder().env(Default::default()))
        .config_yaml(yaml)
        .build()
        .await
        .expect_err("unknown binder type");
    let msg = err.to_string();
    assert!(msg.contains("rabit"), "{msg}");
    assert!(msg.contains("rabbit"), "suggests the known type: {msg}");
}

#[tokio::test]
async fn two_binders_without_default_is_an_error_naming_the_binding() {
    let yaml = "spring.cloud.function.definition: uppercase\nspring.cloud.stream.binders:\n  a: { type: memory }\n  b: { type: memory }\nspring.cloud.stream.bindings.uppercase-in-0.group: g\n";
    let err = upper(StreamApp::builder().env(Default::default()))
        .config_yaml(yaml)
        .build()
        .await
        .expect_err("ambiguous binder");
    let msg = err.to_string();
    assert!(
        msg.contains("uppercase-in-0") && msg.contains("default-binder"),
        "{msg}"
    );
}

/// A binder type whose broker refuses connections (stands in for a broker that is down; this
/// is a runtime test of start-up retries, not a binder test).
struct Unreachable {
    attempts: Arc<AtomicU32>,
}

#[async_trait]
impl BinderFactory for Unreachable {
    fn binder_type(&self) -> &'static str {
        "unreachable"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            binder_type: "unreachable",
            ordering: OrderingScope::None,
            native_partitions: false,
            native_delay: false,
            max_payload_bytes: None,
            max_headers: None,
            binary_headers: false,
            pause_resume: false,
            transactions: false,
            durable_groups: false,
            anonymous_sees_only_new: true,
            in_process: false,
            replay: false,
            rebalance_redelivers_in_hand: false,
            delayed_redelivery: false,
        }
    }
    async fn create(
        &self,
        _name: &str,
        _env: &BinderEnvironment,
    ) -> Result<Arc<dyn Binder>, BindError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        Err(BindError::Connect {
            what: "broker at 127.0.0.1:1 (user:****)".to_owned(),
            source: "connection refused".into(),
        })
    }
}

#[tokio::test(start_paused = true)]
async fn broker_down_at_start_retries_with_backoff_then_fails_clearly() {
    let attempts = Arc::new(AtomicU32::new(0));
    let started = tokio::time::Instant::now();
    let err = upper(StreamApp::builder().env(Default::default()))
        .binder_factory(Arc::new(Unreachable { attempts: Arc::clone(&attempts) }))
        .config_yaml("spring.cloud.stream.default-binder: unreachable\nspring.cloud.stream.binders.unreachable.type: unreachable\n")
        .build()
        .await
        .expect_err("broker down");
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        5,
        "retried before giving up"
    );
    // 500 + 1000 + 2000 + 4000 ms of back-off in virtual time.
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(7500),
        "{:?}",
        started.elapsed()
    );
    let msg = err.to_string();
    assert!(
        msg.contains("binder `unreachable`") && msg.contains("connection refused"),
        "{msg}"
    );
}

/// `output-bindings` are bound when the application starts, as in Spring: the destination and
/// the producer's `required-groups` exist before the first `StreamBridge` send.
#[tokio::test]
async fn declared_output_bindings_are_provisioned_at_start() {
    let broker = cloud_stream::binder_memory::MemoryBroker::new();
    let yaml = "spring.cloud.stream.output-bindings: audit\nspring.cloud.stream.bindings.audit:\n  destination: audit-log\n  producer: { required-groups: archive }\n";
    let app = StreamApp::builder()
        .env(Default::default())
        .binder_factory(Arc::new(
            cloud_stream::binder_memory::MemoryBinderFactory::with_broker(broker.clone()),
        ))
        .config_yaml(yaml)
        .build()
        .await
        .expect("build");
    assert_eq!(broker.groups("audit-log"), vec!["archive".to_owned()]);
    app.bridge().send("audit", "first").await.expect("send");
    assert_eq!(broker.queue_depth("audit-log", "archive"), Some(1));
    assert_eq!(app.bridge().cached().await, 0, "not in the dynamic cache");
    app.shutdown().await;
}

/// A supplier has no input and a consumer no output: with two binders and no default, an app
/// whose every real binding names its binder starts (no binding is invented for the check).
#[tokio::test]
async fn two_binders_start_when_every_real_binding_names_its_binder() {
    let yaml = "spring.cloud.function.definition: tick;sink\nspring.cloud.stream.binders:\n  a: { type: memory }\n  b: { type: memory }\nspring.cloud.stream.bindings:\n  tick-out-0: { destination: ticks, binder: a }\n  sink-in-0: { destination: ticks, group: g, binder: b }\n";
    let app = StreamApp::builder()
        .env(Default::default())
        .supplier("tick", || async { Ok::<_, HandlerError>(Some(1u32)) })
        .consumer("sink", |_: u32| async { Ok(()) })
        .config_yaml(yaml)
        .build()
        .await;
    let app = app.unwrap_or_else(|e| panic!("two-binder app must start: {e}"));
    let names: Vec<String> = app.plan().bindings.iter().map(|b| b.name.clone()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    app.shutdown().await;
}

/// A permanent failure on the `sendto.destination` route (here a destination outside
/// `dynamic-destinations`) is dead-lettered at once, as on the binding's own output, instead
/// of being retried `max-attempts` times.
#[tokio::test]
async fn permanent_send_to_failure_is_dead_lettered_without_retries() {
    use cloud_stream::binder_memory::TestHarness;
    use cloud_stream::prelude::{header, Headers, Message};
    let harness = TestHarness::new();
    let calls = Arc::new(AtomicU32::new(0));
    let c = Arc::clone(&calls);
    let yaml = "spring.cloud.function.definition: route\nspring.cloud.stream:\n  dynamic-destinations: allowed\n  bindings:\n    route-in-0: { destination: in, group: g, consumer: { max-attempts: 3, back-off-initial-interval: 1 } }\n    route-out-0: { destination: out }\n";
    let app = StreamApp::builder()
        .env(Default::default())
        .binder_factory(Arc::new(harness.factory()))
        .function("route", move |s: String| {
            c.fetch_add(1, Ordering::SeqCst);
            let mut h = Headers::new();
            h.insert(header::SENDTO_DESTINATION, "forbidden");
            async move { Ok::<_, HandlerError>(Message::with_headers(s, h)) }
        })
        .config_yaml(yaml)
        .build()
        .await
        .expect("build");
    harness.send_json("in", "x").await.expect("send");
    let dead = harness
        .wait_for_dead_letters("in", Some("g"), 1, std::time::Duration::from_secs(5))
        .await;
    assert_eq!(dead.len(), 1, "dead-lettered");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "not retried");
    let msg = dead[0]
        .headers
        .get_str(header::EXCEPTION_MESSAGE)
        .unwrap_or("");
    assert!(msg.contains("forbidden"), "{msg}");
    app.shutdown().await;
}

/// The harness waits for dead letters and reads outputs as typed JSON; with the clock paused,
/// a retry schedule of 10 s + 10 s (the doubled interval capped by Spring's default
/// `back-off-max-interval`, 10 s) passes in virtual time.
#[tokio::test(start_paused = true)]
async fn harness_waits_for_dead_letters_and_reads_typed_json_in_virtual_time() {
    use cloud_stream::binder_memory::{ReceiveError, TestHarness};
    let harness = TestHarness::new();
    let yaml = "spring.cloud.function.definition: check
spring.cloud.stream.bindings:
  check-in-0: { destination: in, group: g, consumer: { max-attempts: 3, back-off-initial-interval: 10000 } }
  check-out-0: { destination: out }
";
    let app = StreamApp::builder()
        .env(Default::default())
        .binder_factory(Arc::new(harness.factory()))
        .function("check", |n: i64| async move {
            match n {
                n if n < 0 => Err(HandlerError::retryable("negative")),
                n => Ok::<_, HandlerError>(serde_json::json!({ "double": n * 2 })),
            }
        })
        .config_yaml(yaml)
        .build()
        .await
        .expect("build");
    harness.send_json("in", &21).await.expect("send");
    let out: serde_json::Value = harness
        .receive_json("out", std::time::Duration::from_secs(1))
        .await
        .expect("typed output");
    assert_eq!(out["double"], 42);
    harness.send_json("in", &-1).await.expect("send");
    let started = tokio::time::Instant::now();
    let dead = harness
        .wait_for_dead_letters("in", Some("g"), 1, std::time::Duration::from_secs(60))
        .await;
    assert_eq!(dead.len(), 1, "dead-lettered after the last attempt");
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(20),
        "the back-off ran: {waited:?}"
    );
    let none = harness
        .receive_json::<serde_json::Value>("out", std::time::Duration::from_secs(1))
        .await;
    assert!(
        matches!(none, Err(ReceiveError::Timeout { .. })),
        "{none:?}"
    );
    app.shutdown().await;
}

/// The memory binder holds its messages in the process: a graceful shutdown lets consumers
/// finish what is queued (within the deadline) instead of dropping it with the process.
#[tokio::test]
async fn memory_binder_drains_queued_messages_on_shutdown() {
    let seen = Arc::new(AtomicU32::new(0));
    let s = Arc::clone(&seen);
    let yaml = "spring.cloud.function.definition: slow\nspring.cloud.stream.bindings.slow-in-0: { destination: work, group: g }\nspring.cloud.stream.output-bindings: work-out\nspring.cloud.stream.bindings.work-out.destination: work\n";
    let app = StreamApp::builder()
        .env(Default::default())
        .consumer("slow", move |_: u32| {
            let s = Arc::clone(&s);
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                s.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .config_yaml(yaml)
        .build()
        .await
        .expect("build");
    for i in 0..40u32 {
        app.bridge().send("work-out", &i).await.expect("send");
    }
    app.shutdown().await;
    assert_eq!(
        seen.load(Ordering::SeqCst),
        40,
        "every queued message handled"
    );
}

/// Every binder a binding names is connected, also one that only an `output-bindings` entry
/// names (not the default, no function binding on it).
#[tokio::test]
async fn output_binding_on_a_non_default_binder_starts() {
    let yaml = "spring.cloud.stream:\n  default-binder: main\n  binders:\n    main: { type: memory }\n    audit-bus: { type: memory }\n  output-bindings: audit\n  bindings.audit: { destination: audit-log, binder: audit-bus }\n";
    let app = StreamApp::builder()
        .env(Default::default())
        .config_yaml(yaml)
        .build()
        .await
        .unwrap_or_else(|e| panic!("must start: {e}"));
    app.bridge().send("audit", "first").await.expect("send");
    app.shutdown().await;
}
