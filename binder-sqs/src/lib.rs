//! Amazon SQS/SNS binder for cloud-stream (binder type `sqs`), on aws-sdk-sqs and aws-sdk-sns.
//!
//! Mapping (docs/architecture.md §7):
//! * destination (`sns` mode, the default) = an SNS topic; each group = an SQS queue
//!   `<destination>-<group>` subscribed with raw message delivery, so one event fans out to
//!   every group. `sqs` mode (`destination-mode: sqs`): the destination is a queue
//!   (a point-to-point work queue).
//! * no group = a temporary queue and subscription, removed on close.
//! * partitioned / ordered bindings use FIFO topics and queues (`.fifo`), MessageGroupId = the
//!   partition key, deduplication id = the message id; each partitioned consumer instance
//!   gets `<destination>-<group>-<index>.fifo`, subscribed with a filter on the `partition`
//!   attribute. A destination is FIFO when its name ends in `.fifo`, when `fifo: true` is set,
//!   or when the binding is partitioned (a non-partitioned reader of a partitioned destination
//!   sets `fifo: true`).
//! * redelivery: `ChangeMessageVisibility(0)`; visibility is extended while a handler runs.
//! * dead letters: sent to `<queue>-dlq` with the error headers, then deleted; a redrive
//!   policy (`maxReceiveCount` well above `max-attempts`) is the backstop.
//! * headers: message attributes (10 at most: the well-known ones first, the rest folded into
//!   one JSON attribute `cs-headers`).
//! * confirm: the Publish/SendMessage response (batched when several messages are ready).
//!
//! Binder keys: see [`config`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod binder;
pub mod config;
mod consumer;
pub mod headers;
pub mod naming;
mod producer;
pub mod provision;

pub use binder::{capabilities, SqsBinder, SqsBinderFactory, BINDER_TYPE};
pub use config::{BinderSettings, ConsumerSettings, DestinationMode, ProducerSettings};
pub use consumer::{SqsDelivery, SqsSubscription};
pub use producer::{SqsProducer, MAX_MESSAGE_BYTES};

/// The AWS SDK crates this binder uses (for callers that want raw access, e.g. benchmarks).
pub use aws_sdk_sns;
/// See [`aws_sdk_sns`].
pub use aws_sdk_sqs;
