//! In-process binder for cloud-stream (binder type `memory`).
//!
//! A [`MemoryBroker`] implements the delivery semantics every binder honours (docs/architecture.md §6) inside
//! the process: named destinations with partitions, durable named groups of competing consumers,
//! anonymous subscriptions that see only new messages, bounded queues with backpressure, bounded
//! prefetch, requeue to the front, crash redelivery of dropped deliveries, and dead-letter
//! destinations `<dest>.<group>.dlq`. It is meant both for tests and for a monolith that wants
//! the cloud-stream programming model without an external broker.
//!
//! * [`MemoryBinderFactory`] registers the binder type `memory` (one broker per binder name, or
//!   one shared broker with [`MemoryBinderFactory::with_broker`]).
//! * [`TestHarness`] records every published message so tests can send inputs and receive
//!   outputs, like Spring's test binder.
//!
//! Everything is built on tokio primitives, so it works under `tokio::time::pause()`.
//!
//! # Numbers
//! * Queue capacity: [`DEFAULT_CAPACITY`] (256) messages per group or anonymous queue,
//!   configurable ([`MemoryBroker::with_capacity`], binder environment key `capacity`). A send
//!   waits until every queue of the destination has room. Delivered, unsettled messages do not
//!   count; requeued ones go back even past capacity (by at most the members' prefetch).
//!   The capacity is the trade-off between latency and burst absorption: a message waits
//!   behind at most that many others, and the queues' memory is bounded by it. 256 (as small
//!   as a raw channel's buffer) gave a p99 of 0.85 ms and 10 MiB RSS in `scripts/bench memory`,
//!   where 10 000 gave 30 ms and 23 MiB at 20 % less throughput; raise it for an app whose
//!   producer must not wait during bursts of a slower consumer.
//! * Prefetch: a subscription holds at most `max(concurrency, 1) *`
//!   [`PREFETCH_PER_CONCURRENCY`] (= 2) delivered, unsettled messages; `next()` waits for a
//!   settle beyond that. Consumer binder property `prefetch` overrides it.
//!
//! # Example
//! ```
//! use binder_memory::MemoryBroker;
//! use bytes::Bytes;
//! use stream_core::binder::{Binder, ConsumerSpec, ProducerSpec, Route};
//! use stream_core::message::Message;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let broker = MemoryBroker::new();
//! let binder = broker.binder();
//! let mut sub = binder
//!     .bind_consumer("orders", Some("stock"), &ConsumerSpec::default())
//!     .await
//!     .unwrap();
//! let producer = binder.bind_producer("orders", &ProducerSpec::default()).await.unwrap();
//! producer
//!     .send(Message::new(Bytes::from_static(b"hi")), Route::default())
//!     .await
//!     .unwrap();
//! let delivery = sub.next().await.unwrap().unwrap();
//! assert_eq!(&delivery.message().payload[..], b"hi");
//! delivery.ack().await.unwrap();
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod binder;
mod broker;
mod harness;

pub use binder::{
    capabilities, dlq_name, environment_schema, section_schema, MemoryBinder, MemoryBinderFactory,
    MemoryConsumerProps, MemoryDelivery, MemoryProducer, MemorySubscription, BINDER_TYPE,
    PREFETCH_PER_CONCURRENCY,
};
pub use broker::{
    MemoryBroker, MemoryBrokerConfig, DEAD_LETTER_HISTORY, DEFAULT_CAPACITY, MAX_PARTITIONS,
};
pub use harness::{ReceiveError, TestHarness};
