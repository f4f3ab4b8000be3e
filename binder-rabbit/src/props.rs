//! Binder-specific binding properties
//! (`spring.cloud.stream.rabbit.{default,bindings.<binding>}.{consumer,producer}`), declared once
//! as typed settings: the loader validates them against the schema derived from these types
//! (unknown keys with a did-you-mean, kinds, bounds, enumerations, expressions), and the binder
//! reads them with [`ConsumerSpec::props`]/[`ProducerSpec::props`].

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use smart_default::SmartDefault;
use stream_core::binder::{BatchLimits, BatchSettings, BindError, ConsumerSpec, ProducerSpec};
use stream_core::config::{Schema, SchemaNode};
use stream_core::expr::Expression;

/// The schema of `spring.cloud.stream.rabbit.*`: unknown keys are rejected with a did-you-mean.
pub fn schema() -> Schema {
    Schema::binder_section(
        SchemaNode::of::<RabbitBinderProps>(),
        SchemaNode::of::<ConsumerProps>(),
        SchemaNode::of::<ProducerProps>(),
    )
}

stream_core::unused_keys! {
    /// `spring.cloud.stream.rabbit.binder.*`: Spring's binder-level keys, accepted and not used
    /// (connections are configured in the binder `environment`).
    pub struct RabbitBinderProps {
        admin_addresses, nodes, compression_level, connection_name_prefix, enable_observation
    }
}

/// The exchange type of a destination (`exchange-type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeType {
    /// `topic` (the default).
    #[default]
    Topic,
    /// `direct`.
    Direct,
    /// `fanout`.
    Fanout,
    /// `headers`.
    Headers,
}

impl ExchangeType {
    /// The lapin kind.
    pub fn kind(self) -> lapin::ExchangeKind {
        match self {
            ExchangeType::Topic => lapin::ExchangeKind::Topic,
            ExchangeType::Direct => lapin::ExchangeKind::Direct,
            ExchangeType::Fanout => lapin::ExchangeKind::Fanout,
            ExchangeType::Headers => lapin::ExchangeKind::Headers,
        }
    }

    /// The AMQP name.
    pub fn name(self) -> &'static str {
        match self {
            ExchangeType::Topic => "topic",
            ExchangeType::Direct => "direct",
            ExchangeType::Fanout => "fanout",
            ExchangeType::Headers => "headers",
        }
    }
}

/// How the destination exchange is declared.
#[derive(SmartDefault, Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ExchangeProps {
    /// `exchange-type` (default topic).
    #[serde(rename = "exchange-type")]
    #[default(ExchangeType::Topic)]
    pub kind: ExchangeType,
    /// `exchange-durable` (default true).
    #[serde(rename = "exchange-durable")]
    #[default(true)]
    pub durable: bool,
    /// `exchange-auto-delete` (default **false** here; Spring's default true would delete the
    /// exchange when the last anonymous queue leaves, breaking producers).
    #[serde(rename = "exchange-auto-delete")]
    pub auto_delete: bool,
    /// `declare-exchange` (default true).
    #[serde(rename = "declare-exchange")]
    #[default(true)]
    pub declare: bool,
}

/// `quorum.*`: a quorum queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct QuorumProps {
    /// `quorum.enabled` → `x-queue-type: quorum`.
    pub enabled: bool,
    /// `quorum.delivery-limit` → `x-delivery-limit`.
    pub delivery_limit: Option<u64>,
    /// `quorum.initial-group-size` (accepted, not used).
    #[schemars(extend("x-unused" = true))]
    pub initial_group_size: Option<Value>,
}

/// How a group queue (and its DLQ) is declared; shared by consumers and producers
/// (`required-groups`).
#[derive(SmartDefault, Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct QueueProps {
    /// The exchange.
    #[serde(flatten)]
    pub exchange: ExchangeProps,
    /// `binding-routing-key` (default `#`).
    pub binding_routing_key: Option<String>,
    /// `auto-bind-dlq` (default **true** for named groups here: the runtime's dead-letter
    /// hand-off needs a destination; set false to reject dead letters without keeping them).
    #[default(true)]
    pub auto_bind_dlq: bool,
    /// `dead-letter-queue-name` (default `<queue>.dlq`).
    #[serde(rename = "dead-letter-queue-name")]
    pub dlq_name: Option<String>,
    /// `dead-letter-exchange` (default `<prefix>DLX`).
    #[serde(rename = "dead-letter-exchange")]
    pub dlx: Option<String>,
    /// `dead-letter-routing-key` (default the queue name).
    #[serde(rename = "dead-letter-routing-key")]
    pub dl_routing_key: Option<String>,
    /// `ttl` (ms) → `x-message-ttl`.
    pub ttl: Option<u64>,
    /// `max-length` → `x-max-length`.
    pub max_length: Option<u64>,
    /// `max-length-bytes` → `x-max-length-bytes`.
    pub max_length_bytes: Option<u64>,
    /// `expires` (ms) → `x-expires`.
    #[schemars(range(min = 1))]
    pub expires: Option<u64>,
    /// `quorum.*`.
    pub quorum: QuorumProps,
    /// `prefix` for queue and exchange names (default empty).
    pub prefix: String,
    /// `queue-name-group-only`: the queue is named `<group>` rather than `<dest>.<group>`.
    #[serde(rename = "queue-name-group-only")]
    pub group_only: bool,
    /// Spring's queue keys accepted and not used here.
    #[serde(flatten)]
    pub unused: UnusedQueueProps,
}

stream_core::unused_keys! {
    /// Spring Cloud Stream RabbitMQ queue keys (`RabbitCommonProperties`) that real configurations
    /// set and this binder accepts without acting on them (a warning names each one used).
    pub struct UnusedQueueProps {
        dlq_ttl, dlq_dead_letter_exchange, dlq_dead_letter_routing_key, dlq_max_length,
        dlq_max_length_bytes, dlq_expires, dlq_max_priority, dlq_lazy, dlq_overflow_behavior,
        dlq_quorum, dlq_single_active_consumer, dlq_binding_arguments, lazy, max_priority,
        overflow_behavior, bind_queue, binding_arguments, queue_bindings, delayed_exchange,
        declare_dlx, dead_letter_exchange_type, exchange_arguments, header_patterns, stream,
        container_type
    }
}

impl QueueProps {
    /// The exchange name of `destination` (`<prefix><destination>`).
    pub fn exchange_name(&self, destination: &str) -> String {
        format!("{}{destination}", self.prefix)
    }

    /// The queue name of a named group (`<prefix><destination>.<group>`).
    pub fn queue_name(&self, destination: &str, group: &str) -> String {
        if self.group_only {
            format!("{}{group}", self.prefix)
        } else {
            format!("{}{destination}.{group}", self.prefix)
        }
    }

    /// The DLQ name of `queue`.
    pub fn dlq_name_of(&self, queue: &str) -> String {
        self.dlq_name
            .clone()
            .unwrap_or_else(|| format!("{queue}.dlq"))
    }

    /// The dead-letter exchange name.
    pub fn dlx_name(&self) -> String {
        self.dlx
            .clone()
            .unwrap_or_else(|| format!("{}DLX", self.prefix))
    }
}

/// Delivery mode of published messages (`delivery-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryMode {
    /// Written to disk by durable queues (AMQP 2; the default).
    #[default]
    Persistent,
    /// Kept in memory (AMQP 1).
    NonPersistent,
}

/// Consumer properties.
#[derive(SmartDefault, Clone, Debug, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct ConsumerProps {
    /// Queue declaration.
    #[serde(flatten)]
    pub queue: QueueProps,
    /// `prefetch` as configured; [`ConsumerProps::parse`] fills the effective value in.
    #[serde(rename = "prefetch")]
    #[schemars(range(min = 1))]
    pub prefetch_setting: Option<u16>,
    /// The effective prefetch: `prefetch`, else `max(4 * concurrency, 16)`.
    #[serde(skip)]
    #[schemars(skip)]
    #[default(MIN_DEFAULT_PREFETCH as u16)]
    pub prefetch: u16,
    /// `republish-to-dlq` (default true): dead letters carry the error headers.
    #[default(true)]
    pub republish_to_dlq: bool,
    /// `durable-subscription` (default true).
    #[default(true)]
    pub durable_subscription: bool,
    /// `anonymous-group-prefix` (default `anonymous.`).
    #[serde(rename = "anonymous-group-prefix")]
    #[default("anonymous.".into())]
    pub anonymous_prefix: String,
    /// `exclusive` consumer (default false).
    pub exclusive: bool,
    /// `single-active-consumer` → `x-single-active-consumer`.
    pub single_active_consumer: bool,
    /// `batch-size` (default 1) and `receive-timeout` (default 1 s) of a `batch-mode`
    /// binding, with Spring's defaults (`RabbitConsumerProperties`: `batchSize = 1`, the
    /// container's 1 s receive timeout): set `batch-size` for batches of several.
    #[serde(flatten)]
    pub batch: BatchSettings,
    /// Spring's consumer keys accepted and not used here.
    #[serde(flatten)]
    pub unused: UnusedConsumerProps,
}

stream_core::unused_keys! {
    /// Spring's RabbitMQ consumer keys (`RabbitConsumerProperties`) accepted and not acted on: the
    /// runtime owns retries and concurrency, so the container settings have no counterpart here.
    pub struct UnusedConsumerProps {
        requeue_rejected, max_concurrency, acknowledge_mode, transacted, tx_size,
        enable_batching, recovery_interval, missing_queues_fatal,
        queue_declaration_retries, failed_declaration_retry_interval, consumer_tag_prefix,
        frame_max_headroom, republish_delivery_mode, dlq_producer
    }
}

/// A batch's limits when `batch-size` and `receive-timeout` are not set.
pub const DEFAULT_BATCH: BatchLimits = BatchLimits {
    max_messages: 1,
    receive_timeout: std::time::Duration::from_secs(1),
};

/// Default prefetch per unit of concurrency.
pub const PREFETCH_PER_CONCURRENCY: u32 = 4;
/// Smallest default prefetch (keeps the pipe full for one lane).
pub const MIN_DEFAULT_PREFETCH: u32 = 16;

impl ConsumerProps {
    /// Reads `spec.binder_properties` and fills the effective prefetch in.
    pub fn parse(spec: &ConsumerSpec) -> Result<Self, BindError> {
        let mut props: ConsumerProps = spec.props()?;
        props.prefetch = match props.prefetch_setting {
            Some(n) => n.max(1),
            None => (spec.concurrency.max(1) * PREFETCH_PER_CONCURRENCY)
                .clamp(MIN_DEFAULT_PREFETCH, u32::from(u16::MAX)) as u16,
        };
        let prefetch = props.batch_limits().prefetch(spec, props.prefetch.into());
        props.prefetch = u16::try_from(prefetch).unwrap_or(u16::MAX);
        Ok(props)
    }

    /// How a `batch-mode` binding's batches are filled.
    pub fn batch_limits(&self) -> BatchLimits {
        self.batch.limits(DEFAULT_BATCH)
    }
}

/// Producer properties.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct ProducerProps {
    /// Exchange (and `required-groups` queue) declaration.
    #[serde(flatten)]
    pub queue: QueueProps,
    /// `routing-key-expression` as written (default: the destination name, or
    /// `<destination>-<n>` when partitioned).
    #[serde(rename = "routing-key-expression")]
    #[schemars(extend("x-kind" = "expression"))]
    pub routing_key_expression: Option<String>,
    /// The parsed `routing-key-expression`, filled in by [`ProducerProps::parse`].
    #[serde(skip)]
    #[schemars(skip)]
    pub routing_key: Option<Expression>,
    /// `delivery-mode` (default PERSISTENT).
    pub delivery_mode: DeliveryMode,
    /// `mandatory` (default false): unroutable messages fail the send with
    /// `SendError::Unroutable` instead of being dropped by the broker.
    pub mandatory: bool,
    /// Spring's producer keys accepted and not used here.
    #[serde(flatten)]
    pub unused: UnusedProducerProps,
}

stream_core::unused_keys! {
    /// Spring's RabbitMQ producer keys (`RabbitProducerProperties`) accepted and not acted on.
    pub struct UnusedProducerProps {
        confirm_ack_channel, use_confirm_header, batching_enabled, batch_size, batch_buffer_limit,
        batch_timeout, compress, delay_expression, transacted, producer_type, routing_key,
        dlq_delivery_mode
    }
}

impl ProducerProps {
    /// Reads `spec.binder_properties` and parses the routing-key expression.
    pub fn parse(spec: &ProducerSpec) -> Result<Self, BindError> {
        let mut props: ProducerProps = spec.props()?;
        if let Some(src) = &props.routing_key_expression {
            props.routing_key = Some(Expression::parse(src).map_err(|e| BindError::Config {
                key: format!(
                    "spring.cloud.stream.rabbit.bindings.{}.producer.routing-key-expression",
                    spec.binding
                ),
                message: e.to_string(),
            })?);
        }
        Ok(props)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Properties as the loader hands them over: validated and normalised by the schema.
    fn loaded(p: Value, side: &str) -> Result<Value, String> {
        let at = format!("spring.cloud.stream.rabbit.bindings.x.{side}");
        let node = match side {
            "consumer" => SchemaNode::of::<ConsumerProps>(),
            _ => SchemaNode::of::<ProducerProps>(),
        };
        Schema::new(node).check(&p, &at).map_err(|e| e.to_string())
    }

    fn consumer(p: Value, concurrency: u32) -> Result<ConsumerProps, String> {
        ConsumerProps::parse(&ConsumerSpec {
            binding: "x-in-0".into(),
            concurrency,
            binder_properties: loaded(p, "consumer")?,
            ..Default::default()
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let c = consumer(json!({}), 1).unwrap();
        assert_eq!(c.prefetch, 16);
        assert!(c.queue.auto_bind_dlq && c.republish_to_dlq && c.durable_subscription);
        assert_eq!(c.queue.exchange.kind, ExchangeType::Topic);
        assert_eq!(c.queue.queue_name("d", "g"), "d.g");
        assert_eq!(c.queue.dlq_name_of("d.g"), "d.g.dlq");
        assert_eq!(c.queue.dlx_name(), "DLX");
        assert_eq!(consumer(json!({}), 8).unwrap().prefetch, 32);
    }

    #[test]
    fn values_and_relaxed_names() {
        let c = consumer(
            json!({"prefetch": "7", "exchangeType": "direct", "quorum": {"enabled": true},
                   "ttl": 1000, "max-length": 5, "auto_bind_dlq": false}),
            1,
        )
        .unwrap();
        assert_eq!(c.prefetch, 7);
        assert_eq!(c.queue.exchange.kind, ExchangeType::Direct);
        assert!(c.queue.quorum.enabled);
        assert_eq!((c.queue.ttl, c.queue.max_length), (Some(1000), Some(5)));
        assert!(!c.queue.auto_bind_dlq);
    }

    #[test]
    fn unknown_and_bad_values_are_errors() {
        let e = consumer(json!({"prefech": 3}), 1).unwrap_err().to_string();
        assert!(e.contains("did you mean `prefetch`"), "{e}");
        assert!(consumer(json!({"exchange-type": "weird"}), 1).is_err());
        assert!(consumer(json!({"prefetch": 0}), 1).is_err());
        assert!(consumer(json!({"quorum": {"enabeld": true}}), 1).is_err());
    }

    #[test]
    fn producer_props() {
        let props =
            json!({"routing-key-expression": "headers['rk']", "delivery-mode": "non-persistent"});
        let p = ProducerProps::parse(&ProducerSpec {
            binding: "o".into(),
            binder_properties: loaded(props, "producer").unwrap(),
            ..Default::default()
        })
        .unwrap();
        assert!(p.routing_key.is_some());
        assert_eq!(p.delivery_mode, DeliveryMode::NonPersistent);
        let e = loaded(json!({"routing-key-expression": "headers["}), "producer").unwrap_err();
        assert!(e.contains("producer.routing-key-expression"), "{e}");
    }

    #[test]
    fn spring_keys_not_implemented_are_accepted() {
        let c = consumer(
            json!({"requeue-rejected": false, "max-concurrency": 4, "dlq-ttl": 5000}),
            1,
        );
        assert!(c.is_ok(), "{c:?}");
    }

    #[test]
    fn schema_has_the_issue_keys() {
        let s = schema();
        let c = s
            .root
            .field("bindings")
            .map(|m| match m {
                SchemaNode::Map(inner) => inner.field("consumer").cloned(),
                _ => None,
            })
            .unwrap()
            .unwrap();
        for k in [
            "exchange-type",
            "binding-routing-key",
            "prefetch",
            "auto-bind-dlq",
            "republish-to-dlq",
            "dead-letter-queue-name",
            "dead-letter-exchange",
            "ttl",
            "max-length",
            "quorum",
            "durable-subscription",
            "anonymous-group-prefix",
        ] {
            assert!(c.field(k).is_some(), "{k}");
        }
    }
}
