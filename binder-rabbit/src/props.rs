//! Binder-specific binding properties
//! (`spring.cloud.stream.rabbit.bindings.<binding>.{consumer,producer}`): their schema and their
//! typed form.

use serde_json::Value;
use stream_core::binder::{BindError, ConsumerSpec, ProducerSpec};
use stream_core::config::{Schema, SchemaNode};
use stream_core::expr::Expression;

use crate::config::{did_you_mean, lookup, squash};

/// Queue-declaration keys shared by consumers and producers (`required-groups`).
fn queue_fields() -> Vec<(&'static str, SchemaNode)> {
    vec![
        ("exchange-type", SchemaNode::string()),
        ("exchange-durable", SchemaNode::bool()),
        ("exchange-auto-delete", SchemaNode::bool()),
        ("declare-exchange", SchemaNode::bool()),
        ("binding-routing-key", SchemaNode::string()),
        ("auto-bind-dlq", SchemaNode::bool()),
        ("dead-letter-queue-name", SchemaNode::string()),
        ("dead-letter-exchange", SchemaNode::string()),
        ("dead-letter-routing-key", SchemaNode::string()),
        ("ttl", SchemaNode::uint()),
        ("max-length", SchemaNode::uint()),
        ("max-length-bytes", SchemaNode::uint()),
        ("expires", SchemaNode::uint().at_least(1.0)),
        (
            "quorum",
            SchemaNode::object([
                ("enabled", SchemaNode::bool()),
                ("delivery-limit", SchemaNode::uint()),
            ]),
        ),
        ("prefix", SchemaNode::string()),
        ("queue-name-group-only", SchemaNode::bool()),
    ]
}

/// The consumer keys this binder implements.
fn consumer_node() -> SchemaNode {
    let mut f = queue_fields();
    f.extend([
        ("prefetch", SchemaNode::uint().at_least(1.0)),
        ("republish-to-dlq", SchemaNode::bool()),
        ("durable-subscription", SchemaNode::bool()),
        ("anonymous-group-prefix", SchemaNode::string()),
        ("exclusive", SchemaNode::bool()),
        ("single-active-consumer", SchemaNode::bool()),
    ]);
    SchemaNode::object(f)
}

/// The producer keys this binder implements.
fn producer_node() -> SchemaNode {
    let mut f = queue_fields();
    f.extend([
        ("routing-key-expression", SchemaNode::string()),
        ("delivery-mode", SchemaNode::string()),
        ("mandatory", SchemaNode::bool()),
    ]);
    SchemaNode::object(f)
}

/// The schema of `spring.cloud.stream.rabbit.*`: unknown keys are rejected with a did-you-mean.
pub fn schema() -> Schema {
    Schema::binder_section(SchemaNode::object([]), consumer_node(), producer_node())
}

fn known_keys(node: &SchemaNode, prefix: &str, out: &mut Vec<String>) {
    if let SchemaNode::Object { fields, .. } = node {
        for (k, v) in fields {
            let p = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                SchemaNode::Object { .. } => known_keys(v, &p, out),
                _ => out.push(p),
            }
        }
    }
}

/// Rejects keys the schema does not know (for specs built without the config loader).
fn check_keys(node: &SchemaNode, props: &Value, base: &str) -> Result<(), BindError> {
    let mut known = Vec::new();
    known_keys(node, "", &mut known);
    let known_refs: Vec<&str> = known.iter().map(String::as_str).collect();
    fn walk(
        v: &Value,
        prefix: &str,
        known: &[&str],
        base: &str,
        nested: &[&str],
    ) -> Result<(), BindError> {
        let Value::Object(o) = v else { return Ok(()) };
        for (k, child) in o {
            let p = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{}", k)
            };
            let sp: Vec<String> = p.split('.').map(squash).collect();
            let is = |cand: &str| cand.split('.').map(squash).collect::<Vec<_>>() == sp;
            if child.is_object() && nested.iter().any(|n| is(n)) {
                walk(child, &p, known, base, nested)?;
            } else if !known.iter().any(|c| is(c)) {
                let hint = did_you_mean(&p, known)
                    .map(|k| format!("; did you mean `{k}`?"))
                    .unwrap_or_default();
                return Err(BindError::Config {
                    key: format!("{base}.{p}"),
                    message: format!("unknown RabbitMQ binding property{hint}"),
                });
            }
        }
        Ok(())
    }
    walk(props, "", &known_refs, base, &["quorum"])
}

fn get<'a>(props: &'a Value, key: &str) -> Option<&'a Value> {
    match lookup(props, key) {
        Some(Value::Null) | None => None,
        Some(v) => Some(v),
    }
}

fn bool_of(props: &Value, key: &str, base: &str, default: bool) -> Result<bool, BindError> {
    match get(props, key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(BindError::Config {
            key: format!("{base}.{key}"),
            message: format!("expected true or false, found {v}"),
        }),
    }
}

fn uint_of(props: &Value, key: &str, base: &str) -> Result<Option<u64>, BindError> {
    match get(props, key) {
        None => Ok(None),
        Some(v) => {
            let n = match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            n.map(Some).ok_or_else(|| BindError::Config {
                key: format!("{base}.{key}"),
                message: format!("expected an unsigned integer, found {v}"),
            })
        }
    }
}

fn string_of(props: &Value, key: &str, base: &str) -> Result<Option<String>, BindError> {
    match get(props, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
        Some(v) => Err(BindError::Config {
            key: format!("{base}.{key}"),
            message: format!("expected a string, found {v}"),
        }),
    }
}

/// The exchange type of a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeType {
    /// `topic` (the default).
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeProps {
    /// Exchange type (`exchange-type`, default topic).
    pub kind: ExchangeType,
    /// `exchange-durable` (default true).
    pub durable: bool,
    /// `exchange-auto-delete` (default **false** here; Spring's default true would delete the
    /// exchange when the last anonymous queue leaves, breaking producers).
    pub auto_delete: bool,
    /// `declare-exchange` (default true).
    pub declare: bool,
}

/// How a group queue (and its DLQ) is declared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueProps {
    /// The exchange.
    pub exchange: ExchangeProps,
    /// `binding-routing-key` (default `#`).
    pub binding_routing_key: Option<String>,
    /// `auto-bind-dlq` (default **true** for named groups here: the runtime's dead-letter
    /// hand-off needs a destination; set false to reject dead letters without keeping them).
    pub auto_bind_dlq: bool,
    /// `dead-letter-queue-name` (default `<queue>.dlq`).
    pub dlq_name: Option<String>,
    /// `dead-letter-exchange` (default `<prefix>DLX`).
    pub dlx: Option<String>,
    /// `dead-letter-routing-key` (default the queue name).
    pub dl_routing_key: Option<String>,
    /// `ttl` (ms) → `x-message-ttl`.
    pub ttl: Option<u64>,
    /// `max-length` → `x-max-length`.
    pub max_length: Option<u64>,
    /// `max-length-bytes` → `x-max-length-bytes`.
    pub max_length_bytes: Option<u64>,
    /// `expires` (ms) → `x-expires`.
    pub expires: Option<u64>,
    /// `quorum.enabled` → `x-queue-type: quorum`.
    pub quorum: bool,
    /// `quorum.delivery-limit` → `x-delivery-limit`.
    pub delivery_limit: Option<u64>,
    /// `prefix` for queue and exchange names (default empty).
    pub prefix: String,
    /// `queue-name-group-only`: the queue is named `<group>` rather than `<dest>.<group>`.
    pub group_only: bool,
}

impl QueueProps {
    fn parse(p: &Value, base: &str) -> Result<Self, BindError> {
        let kind = match string_of(p, "exchange-type", base)? {
            None => ExchangeType::Topic,
            Some(s) => match s.trim().to_ascii_lowercase().as_str() {
                "topic" => ExchangeType::Topic,
                "direct" => ExchangeType::Direct,
                "fanout" => ExchangeType::Fanout,
                "headers" => ExchangeType::Headers,
                _ => {
                    return Err(BindError::Config {
                        key: format!("{base}.exchange-type"),
                        message: format!(
                            "expected one of topic, direct, fanout, headers; found `{s}`"
                        ),
                    })
                }
            },
        };
        Ok(QueueProps {
            exchange: ExchangeProps {
                kind,
                durable: bool_of(p, "exchange-durable", base, true)?,
                auto_delete: bool_of(p, "exchange-auto-delete", base, false)?,
                declare: bool_of(p, "declare-exchange", base, true)?,
            },
            binding_routing_key: string_of(p, "binding-routing-key", base)?,
            auto_bind_dlq: bool_of(p, "auto-bind-dlq", base, true)?,
            dlq_name: string_of(p, "dead-letter-queue-name", base)?,
            dlx: string_of(p, "dead-letter-exchange", base)?,
            dl_routing_key: string_of(p, "dead-letter-routing-key", base)?,
            ttl: uint_of(p, "ttl", base)?,
            max_length: uint_of(p, "max-length", base)?,
            max_length_bytes: uint_of(p, "max-length-bytes", base)?,
            expires: uint_of(p, "expires", base)?,
            quorum: bool_of(p, "quorum.enabled", base, false)?,
            delivery_limit: uint_of(p, "quorum.delivery-limit", base)?,
            prefix: string_of(p, "prefix", base)?.unwrap_or_default(),
            group_only: bool_of(p, "queue-name-group-only", base, false)?,
        })
    }

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

/// Delivery mode of published messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Written to disk by durable queues (AMQP 2; the default).
    Persistent,
    /// Kept in memory (AMQP 1).
    NonPersistent,
}

/// Typed consumer properties.
#[derive(Clone, Debug)]
pub struct ConsumerProps {
    /// Queue declaration.
    pub queue: QueueProps,
    /// `prefetch` (default `max(4 * concurrency, 16)`).
    pub prefetch: u16,
    /// `republish-to-dlq` (default true): dead letters carry the error headers.
    pub republish_to_dlq: bool,
    /// `durable-subscription` (default true).
    pub durable_subscription: bool,
    /// `anonymous-group-prefix` (default `anonymous.`).
    pub anonymous_prefix: String,
    /// `exclusive` consumer (default false).
    pub exclusive: bool,
    /// `single-active-consumer` → `x-single-active-consumer`.
    pub single_active_consumer: bool,
}

/// Default prefetch per unit of concurrency.
pub const PREFETCH_PER_CONCURRENCY: u32 = 4;
/// Smallest default prefetch (keeps the pipe full for one lane).
pub const MIN_DEFAULT_PREFETCH: u32 = 16;

impl ConsumerProps {
    /// Parses `spec.binder_properties`.
    pub fn parse(spec: &ConsumerSpec) -> Result<Self, BindError> {
        let base = format!(
            "spring.cloud.stream.rabbit.bindings.{}.consumer",
            spec.binding
        );
        let p = &spec.binder_properties;
        check_keys(&consumer_node(), p, &base)?;
        let prefetch = match uint_of(p, "prefetch", &base)? {
            Some(n) if (1..=u64::from(u16::MAX)).contains(&n) => n as u16,
            Some(n) => {
                return Err(BindError::Config {
                    key: format!("{base}.prefetch"),
                    message: format!("expected 1..=65535, found {n}"),
                })
            }
            None => (spec.concurrency.max(1) * PREFETCH_PER_CONCURRENCY)
                .max(MIN_DEFAULT_PREFETCH)
                .min(u32::from(u16::MAX)) as u16,
        };
        Ok(ConsumerProps {
            queue: QueueProps::parse(p, &base)?,
            prefetch,
            republish_to_dlq: bool_of(p, "republish-to-dlq", &base, true)?,
            durable_subscription: bool_of(p, "durable-subscription", &base, true)?,
            anonymous_prefix: string_of(p, "anonymous-group-prefix", &base)?
                .unwrap_or_else(|| "anonymous.".into()),
            exclusive: bool_of(p, "exclusive", &base, false)?,
            single_active_consumer: bool_of(p, "single-active-consumer", &base, false)?,
        })
    }
}

/// Typed producer properties.
#[derive(Clone, Debug)]
pub struct ProducerProps {
    /// Exchange (and `required-groups` queue) declaration.
    pub queue: QueueProps,
    /// `routing-key-expression` (default: the destination name, or `<destination>-<n>` when
    /// partitioned).
    pub routing_key: Option<Expression>,
    /// `delivery-mode` (default PERSISTENT).
    pub delivery_mode: DeliveryMode,
    /// `mandatory` (default false): unroutable messages fail the send with
    /// `SendError::Unroutable` instead of being dropped by the broker.
    pub mandatory: bool,
}

impl ProducerProps {
    /// Parses `spec.binder_properties`.
    pub fn parse(spec: &ProducerSpec) -> Result<Self, BindError> {
        let base = format!(
            "spring.cloud.stream.rabbit.bindings.{}.producer",
            spec.binding
        );
        let p = &spec.binder_properties;
        check_keys(&producer_node(), p, &base)?;
        let routing_key = match string_of(p, "routing-key-expression", &base)? {
            None => None,
            Some(src) => Some(Expression::parse(&src).map_err(|e| BindError::Config {
                key: format!("{base}.routing-key-expression"),
                message: e.to_string(),
            })?),
        };
        let delivery_mode = match string_of(p, "delivery-mode", &base)? {
            None => DeliveryMode::Persistent,
            Some(s) => match s.trim().to_ascii_uppercase().replace('-', "_").as_str() {
                "PERSISTENT" | "2" => DeliveryMode::Persistent,
                "NON_PERSISTENT" | "1" => DeliveryMode::NonPersistent,
                _ => {
                    return Err(BindError::Config {
                        key: format!("{base}.delivery-mode"),
                        message: format!("expected PERSISTENT or NON_PERSISTENT, found `{s}`"),
                    })
                }
            },
        };
        Ok(ProducerProps {
            queue: QueueProps::parse(p, &base)?,
            routing_key,
            delivery_mode,
            mandatory: bool_of(p, "mandatory", &base, false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn consumer(p: Value, concurrency: u32) -> Result<ConsumerProps, BindError> {
        ConsumerProps::parse(&ConsumerSpec {
            binding: "x-in-0".into(),
            concurrency,
            binder_properties: p,
            ..Default::default()
        })
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
        assert!(c.queue.quorum);
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
        let p = ProducerProps::parse(&ProducerSpec {
            binding: "o".into(),
            binder_properties: json!({"routing-key-expression": "headers['rk']",
                                       "delivery-mode": "NON_PERSISTENT"}),
            ..Default::default()
        })
        .unwrap();
        assert!(p.routing_key.is_some());
        assert_eq!(p.delivery_mode, DeliveryMode::NonPersistent);
        assert!(ProducerProps::parse(&ProducerSpec {
            binding: "o".into(),
            binder_properties: json!({"routing-key-expression": "headers["}),
            ..Default::default()
        })
        .is_err());
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
