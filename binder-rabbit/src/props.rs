//! Binder-specific binding properties
//! (`spring.cloud.stream.rabbit.{default,bindings.<binding>}.{consumer,producer}`), declared once
//! as typed settings: the loader validates them against the schema derived from these types
//! (unknown keys with a did-you-mean, kinds, bounds, enumerations, expressions), and the binder
//! reads them with [`ConsumerSpec::props`]/[`ProducerSpec::props`].

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use stream_core::binder::{BindError, ConsumerSpec, ProducerSpec};
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

/// `spring.cloud.stream.rabbit.binder.*`: Spring's binder-level keys, accepted and not used
/// (connections are configured in the binder `environment`).
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct RabbitBinderProps {
    /// `admin-addresses` (accepted, not used).
    #[schemars(extend("x-unused" = true))]
    pub admin_addresses: Option<Value>,
    /// `nodes` (accepted, not used).
    #[schemars(extend("x-unused" = true))]
    pub nodes: Option<Value>,
    /// `compression-level` (accepted, not used).
    #[schemars(extend("x-unused" = true))]
    pub compression_level: Option<Value>,
    /// `connection-name-prefix` (accepted, not used).
    #[schemars(extend("x-unused" = true))]
    pub connection_name_prefix: Option<Value>,
    /// `enable-observation` (accepted, not used).
    #[schemars(extend("x-unused" = true))]
    pub enable_observation: Option<Value>,
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
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ExchangeProps {
    /// `exchange-type` (default topic).
    #[serde(rename = "exchange-type")]
    pub kind: ExchangeType,
    /// `exchange-durable` (default true).
    #[serde(rename = "exchange-durable")]
    pub durable: bool,
    /// `exchange-auto-delete` (default **false** here; Spring's default true would delete the
    /// exchange when the last anonymous queue leaves, breaking producers).
    #[serde(rename = "exchange-auto-delete")]
    pub auto_delete: bool,
    /// `declare-exchange` (default true).
    #[serde(rename = "declare-exchange")]
    pub declare: bool,
}

impl Default for ExchangeProps {
    fn default() -> Self {
        ExchangeProps {
            kind: ExchangeType::Topic,
            durable: true,
            auto_delete: false,
            declare: true,
        }
    }
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
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct QueueProps {
    /// The exchange.
    #[serde(flatten)]
    pub exchange: ExchangeProps,
    /// `binding-routing-key` (default `#`).
    pub binding_routing_key: Option<String>,
    /// `auto-bind-dlq` (default **true** for named groups here: the runtime's dead-letter
    /// hand-off needs a destination; set false to reject dead letters without keeping them).
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

impl Default for QueueProps {
    fn default() -> Self {
        QueueProps {
            exchange: ExchangeProps::default(),
            binding_routing_key: None,
            auto_bind_dlq: true,
            dlq_name: None,
            dlx: None,
            dl_routing_key: None,
            ttl: None,
            max_length: None,
            max_length_bytes: None,
            expires: None,
            quorum: QuorumProps::default(),
            prefix: String::new(),
            group_only: false,
            unused: UnusedQueueProps::default(),
        }
    }
}

/// Spring Cloud Stream RabbitMQ queue keys (`RabbitCommonProperties`) that real configurations
/// set and this binder accepts without acting on them (a warning names each one used).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct UnusedQueueProps {
    /// `dlq-ttl`.
    #[schemars(extend("x-unused" = true))]
    pub dlq_ttl: Option<Value>,
    /// `dlq-dead-letter-exchange`.
    #[schemars(extend("x-unused" = true))]
    pub dlq_dead_letter_exchange: Option<Value>,
    /// `dlq-dead-letter-routing-key`.
    #[schemars(extend("x-unused" = true))]
    pub dlq_dead_letter_routing_key: Option<Value>,
    /// `dlq-max-length`.
    #[schemars(extend("x-unused" = true))]
    pub dlq_max_length: Option<Value>,
    /// `dlq-max-length-bytes`.
    #[schemars(extend("x-unused" = true))]
    pub dlq_max_length_bytes: Option<Value>,
    /// `dlq-expires`.
    #[schemars(extend("x-unused" = true))]
    pub dlq_expires: Option<Value>,
    /// `dlq-max-priority`.
    #[schemars(extend("x-unused" = true))]
    pub dlq_max_priority: Option<Value>,
    /// `dlq-lazy`.
    #[schemars(extend("x-unused" = true))]
    pub dlq_lazy: Option<Value>,
    /// `dlq-overflow-behavior`.
    #[schemars(extend("x-unused" = true))]
    pub dlq_overflow_behavior: Option<Value>,
    /// `dlq-quorum` (a map).
    #[schemars(extend("x-unused" = true))]
    pub dlq_quorum: Option<Value>,
    /// `dlq-single-active-consumer`.
    #[schemars(extend("x-unused" = true))]
    pub dlq_single_active_consumer: Option<Value>,
    /// `dlq-binding-arguments` (a map).
    #[schemars(extend("x-unused" = true))]
    pub dlq_binding_arguments: Option<Value>,
    /// `lazy`.
    #[schemars(extend("x-unused" = true))]
    pub lazy: Option<Value>,
    /// `max-priority`.
    #[schemars(extend("x-unused" = true))]
    pub max_priority: Option<Value>,
    /// `overflow-behavior`.
    #[schemars(extend("x-unused" = true))]
    pub overflow_behavior: Option<Value>,
    /// `bind-queue`.
    #[schemars(extend("x-unused" = true))]
    pub bind_queue: Option<Value>,
    /// `binding-arguments` (a map).
    #[schemars(extend("x-unused" = true))]
    pub binding_arguments: Option<Value>,
    /// `queue-bindings` (a map).
    #[schemars(extend("x-unused" = true))]
    pub queue_bindings: Option<Value>,
    /// `delayed-exchange`.
    #[schemars(extend("x-unused" = true))]
    pub delayed_exchange: Option<Value>,
    /// `declare-dlx`.
    #[schemars(extend("x-unused" = true))]
    pub declare_dlx: Option<Value>,
    /// `dead-letter-exchange-type`.
    #[schemars(extend("x-unused" = true))]
    pub dead_letter_exchange_type: Option<Value>,
    /// `exchange-type` arguments (`exchange-arguments`).
    #[schemars(extend("x-unused" = true))]
    pub exchange_arguments: Option<Value>,
    /// `header-patterns`.
    #[schemars(extend("x-unused" = true))]
    pub header_patterns: Option<Value>,
    /// `stream` queue settings (a map).
    #[schemars(extend("x-unused" = true))]
    pub stream: Option<Value>,
    /// `container-type` (`simple`, `direct`, `stream`).
    #[schemars(extend("x-unused" = true))]
    pub container_type: Option<Value>,
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
#[derive(Clone, Debug, Deserialize, JsonSchema)]
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
    pub prefetch: u16,
    /// `republish-to-dlq` (default true): dead letters carry the error headers.
    pub republish_to_dlq: bool,
    /// `durable-subscription` (default true).
    pub durable_subscription: bool,
    /// `anonymous-group-prefix` (default `anonymous.`).
    #[serde(rename = "anonymous-group-prefix")]
    pub anonymous_prefix: String,
    /// `exclusive` consumer (default false).
    pub exclusive: bool,
    /// `single-active-consumer` → `x-single-active-consumer`.
    pub single_active_consumer: bool,
    /// Spring's consumer keys accepted and not used here.
    #[serde(flatten)]
    pub unused: UnusedConsumerProps,
}

impl Default for ConsumerProps {
    fn default() -> Self {
        ConsumerProps {
            queue: QueueProps::default(),
            prefetch_setting: None,
            prefetch: MIN_DEFAULT_PREFETCH as u16,
            republish_to_dlq: true,
            durable_subscription: true,
            anonymous_prefix: "anonymous.".into(),
            exclusive: false,
            single_active_consumer: false,
            unused: UnusedConsumerProps::default(),
        }
    }
}

/// Spring's RabbitMQ consumer keys (`RabbitConsumerProperties`) accepted and not acted on: the
/// runtime owns retries and concurrency, so the container settings have no counterpart here.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct UnusedConsumerProps {
    /// `requeue-rejected` (the runtime dead-letters after its last attempt).
    #[schemars(extend("x-unused" = true))]
    pub requeue_rejected: Option<Value>,
    /// `max-concurrency` (use the binding's `concurrency`).
    #[schemars(extend("x-unused" = true))]
    pub max_concurrency: Option<Value>,
    /// `acknowledge-mode`.
    #[schemars(extend("x-unused" = true))]
    pub acknowledge_mode: Option<Value>,
    /// `transacted`.
    #[schemars(extend("x-unused" = true))]
    pub transacted: Option<Value>,
    /// `tx-size`.
    #[schemars(extend("x-unused" = true))]
    pub tx_size: Option<Value>,
    /// `batch-size`.
    #[schemars(extend("x-unused" = true))]
    pub batch_size: Option<Value>,
    /// `enable-batching`.
    #[schemars(extend("x-unused" = true))]
    pub enable_batching: Option<Value>,
    /// `receive-timeout`.
    #[schemars(extend("x-unused" = true))]
    pub receive_timeout: Option<Value>,
    /// `recovery-interval`.
    #[schemars(extend("x-unused" = true))]
    pub recovery_interval: Option<Value>,
    /// `missing-queues-fatal`.
    #[schemars(extend("x-unused" = true))]
    pub missing_queues_fatal: Option<Value>,
    /// `queue-declaration-retries`.
    #[schemars(extend("x-unused" = true))]
    pub queue_declaration_retries: Option<Value>,
    /// `failed-declaration-retry-interval`.
    #[schemars(extend("x-unused" = true))]
    pub failed_declaration_retry_interval: Option<Value>,
    /// `consumer-tag-prefix`.
    #[schemars(extend("x-unused" = true))]
    pub consumer_tag_prefix: Option<Value>,
    /// `frame-max-headroom`.
    #[schemars(extend("x-unused" = true))]
    pub frame_max_headroom: Option<Value>,
    /// `republish-delivery-mode`.
    #[schemars(extend("x-unused" = true))]
    pub republish_delivery_mode: Option<Value>,
    /// `anonymous-group-prefix` spellings aside, `dlq-producer` settings (a map).
    #[schemars(extend("x-unused" = true))]
    pub dlq_producer: Option<Value>,
}

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
        Ok(props)
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

/// Spring's RabbitMQ producer keys (`RabbitProducerProperties`) accepted and not acted on.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct UnusedProducerProps {
    /// `confirm-ack-channel` (sends always wait for the broker's confirm).
    #[schemars(extend("x-unused" = true))]
    pub confirm_ack_channel: Option<Value>,
    /// `use-confirm-header`.
    #[schemars(extend("x-unused" = true))]
    pub use_confirm_header: Option<Value>,
    /// `batching-enabled`.
    #[schemars(extend("x-unused" = true))]
    pub batching_enabled: Option<Value>,
    /// `batch-size`.
    #[schemars(extend("x-unused" = true))]
    pub batch_size: Option<Value>,
    /// `batch-buffer-limit`.
    #[schemars(extend("x-unused" = true))]
    pub batch_buffer_limit: Option<Value>,
    /// `batch-timeout`.
    #[schemars(extend("x-unused" = true))]
    pub batch_timeout: Option<Value>,
    /// `compress`.
    #[schemars(extend("x-unused" = true))]
    pub compress: Option<Value>,
    /// `delay-expression` (needs the delayed-message plugin).
    #[schemars(extend("x-unused" = true))]
    pub delay_expression: Option<Value>,
    /// `transacted`.
    #[schemars(extend("x-unused" = true))]
    pub transacted: Option<Value>,
    /// `producer-type`.
    #[schemars(extend("x-unused" = true))]
    pub producer_type: Option<Value>,
    /// `routing-key` (a literal; use `routing-key-expression`).
    #[schemars(extend("x-unused" = true))]
    pub routing_key: Option<Value>,
    /// `dlq-delivery-mode`.
    #[schemars(extend("x-unused" = true))]
    pub dlq_delivery_mode: Option<Value>,
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
