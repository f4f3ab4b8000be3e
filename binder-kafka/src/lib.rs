//! Kafka binder for cloud-stream (binder type `kafka`), on rdkafka with its bundled librdkafka.
//!
//! Mapping (docs/architecture.md §7): a destination is a topic (provisioned through the admin API with
//! `max(partition-count, min-partition-count)` partitions), a group is a consumer group
//! (anonymous bindings get a unique group starting at the latest offset), partitions are native,
//! headers are record headers, a send resolves on the delivery report of an idempotent
//! producer, and the DLQ is the topic `error.<destination>.<group>` (`enable-dlq`).
//!
//! * Offsets are stored only for the contiguous prefix of completed records of each partition
//!   (the runtime may complete records out of order with `concurrency` > 1) and committed by
//!   librdkafka every second, on rebalance and on close. Records still in flight when their
//!   partition is revoked are abandoned without committing past them: the new owner
//!   redelivers them (duplicates only for uncommitted work, never loss).
//! * `requeue` (and dropping an unsettled delivery) seeks the partition back to its first
//!   unfinished record.
//! * Consumers with `partitioned: true` (or `auto-rebalance-enabled: false`) and anonymous
//!   consumers are assigned partitions statically: partition `p` belongs to instance
//!   `p % instance-count`.
//!
//! Configuration: see [`KafkaBinderConfig`], [`KafkaBinderProps`], [`KafkaConsumerProps`] and
//! [`KafkaProducerProps`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backlog;
mod binder;
mod client;
pub mod config;
mod consumer;
mod headers;
mod producer;
mod provision;
mod retry;
mod tracker;

pub use binder::{
    capabilities, dlq_name, KafkaBinder, KafkaBinderFactory, BINDER_TYPE, DEFAULT_MAX_MESSAGE_BYTES,
};
pub use config::{
    Compression, KafkaBinderConfig, KafkaBinderProps, KafkaConsumerProps, KafkaProducerProps,
    StartOffset,
};
pub use consumer::{
    KafkaDelivery, KafkaSubscription, ORIGINAL_OFFSET, ORIGINAL_PARTITION, ORIGINAL_TIMESTAMP,
};
pub use producer::KafkaProducer;
pub use tracker::Tracker;

/// The rdkafka crate this binder is built on (for tests and raw clients, e.g. its mock cluster).
pub use rdkafka;
