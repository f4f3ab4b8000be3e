//! RabbitMQ binder for cloud-stream (binder type `rabbit`), built on lapin.
//!
//! # Mapping (docs/architecture.md §7)
//! * destination → durable topic exchange `<destination>` (`exchange-type` to change);
//! * group → durable queue `<destination>.<group>` bound with `#` (`binding-routing-key`);
//!   no group → exclusive auto-delete queue `anonymous.<random>` that sees only new messages;
//! * partitions → routing key `<destination>-<n>`; a partitioned consumer binds queue
//!   `<destination>.<group>-<index>` with `<destination>-<index>`;
//! * dead letters → direct exchange `DLX` and queue `<destination>.<group>.dlq` (bound with the
//!   queue name); the failed message is republished there with the `x-exception-*` and
//!   `x-original-*` headers, then acked (`republish-to-dlq: false` lets the broker dead-letter
//!   it instead, without the error headers);
//! * sends: persistent, publisher confirms awaited per message (several in flight at once),
//!   `mandatory` returns surfaced as [`SendError::Unroutable`](stream_core::binder::SendError);
//! * consumers: manual acks after the runtime settles, coalesced per channel (one `basic.ack`
//!   with `multiple` for the run of handled deliveries at the front, when the consumer waits
//!   or half the prefetch is owed; never covering one still being handled), prefetch
//!   `max(4 × concurrency, 16)` unless `prefetch` is set; a delivery dropped unsettled is
//!   requeued;
//! * connection loss: consumers re-declare and resubscribe with backoff (100 ms doubling to
//!   5 s), unconfirmed sends are published again for up to 60 s, health is DOWN while no
//!   connection can be made.
//!
//! # Configuration
//! Binder `environment` keys (strictly validated): `uri` (`amqp://` or `amqps://`), or Spring
//! Boot's `spring.rabbitmq.{host,port,username,password,virtual-host,addresses,ssl.enabled}`;
//! the same `spring.rabbitmq.*` keys are also read from the application's properties when the
//! binder inherits the environment. Passwords never appear in logs or errors.
//!
//! Binding keys under `spring.cloud.stream.rabbit.bindings.<binding>.{consumer,producer}` (and
//! `spring.cloud.stream.rabbit.default.*`) are described by [`schema`]; unknown keys fail
//! validation with a did-you-mean.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod acks;
mod binder;
mod config;
mod connection;
mod consumer;
mod headers;
mod producer;
mod props;
mod provision;
mod publisher;

pub use binder::{
    capabilities, RabbitBinder, RabbitBinderFactory, BINDER_TYPE, HEALTH_TIMEOUT, MAX_MESSAGE_BYTES,
};
pub use config::{
    connection_settings, environment_schema, ConnectionSettings, RabbitBootProperties,
    RabbitEnvironment,
};
pub use consumer::{RabbitDelivery, RabbitSubscription, ORIGINAL_EXCHANGE, ORIGINAL_ROUTING_KEY};
pub use producer::RabbitProducer;
pub use props::{
    schema, ConsumerProps, DeliveryMode, ExchangeProps, ExchangeType, ProducerProps, QueueProps,
    QuorumProps, RabbitBinderProps, MIN_DEFAULT_PREFETCH, PREFETCH_PER_CONCURRENCY,
};
pub use publisher::DEFAULT_SEND_RETRY;
