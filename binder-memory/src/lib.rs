//! In-process binder for cloud-stream (binder type `memory`).
//!
//! A [`MemoryBroker`] implements the delivery semantics every binder honours (DESIGN §6) inside
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
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod binder;
mod broker;
mod harness;

pub use binder::{
    capabilities, dlq_name, MemoryBinder, MemoryBinderFactory, MemoryDelivery, MemoryProducer,
    MemorySubscription, BINDER_TYPE, PREFETCH_PER_CONCURRENCY,
};
pub use broker::{
    MemoryBroker, MemoryBrokerConfig, DEAD_LETTER_HISTORY, DEFAULT_CAPACITY, MAX_PARTITIONS,
};
pub use harness::TestHarness;
