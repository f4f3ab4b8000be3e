//! Binder configuration: `spring.cloud.stream.kafka.binder.*` (also inside
//! `binders.<name>.environment`), the per-binding consumer/producer keys, and the schema that
//! lets the loader reject unknown keys with a did-you-mean.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};
use stream_core::binder::{BindError, BinderEnvironment};
use stream_core::config::{deep_merge, redact_value, suggest, Schema, SchemaNode};

/// Default bootstrap servers (Spring's `localhost` with `default-broker-port` 9092).
pub const DEFAULT_BROKERS: &str = "localhost:9092";
/// Default `health-timeout` in seconds (Spring's 60).
pub const DEFAULT_HEALTH_TIMEOUT_SECS: u64 = 60;

/// The keys of `spring.cloud.stream.kafka.binder`.
const BINDER_KEYS: &[&str] = &[
    "brokers",
    "default-broker-port",
    "configuration",
    "consumer-properties",
    "producer-properties",
    "auto-create-topics",
    "auto-add-partitions",
    "min-partition-count",
    "replication-factor",
    "required-acks",
    "health-timeout",
];

/// The schema of `spring.cloud.stream.kafka.*` (binder keys and per-binding keys).
pub fn schema() -> Schema {
    Schema::binder_section(binder_node(), consumer_node(), producer_node())
}

fn binder_node() -> SchemaNode {
    SchemaNode::object([
        ("brokers", SchemaNode::string_list()),
        ("default-broker-port", SchemaNode::uint()),
        ("configuration", SchemaNode::free_map()),
        ("consumer-properties", SchemaNode::free_map()),
        ("producer-properties", SchemaNode::free_map()),
        ("auto-create-topics", SchemaNode::bool()),
        ("auto-add-partitions", SchemaNode::bool()),
        ("min-partition-count", SchemaNode::uint().at_least(1.0)),
        ("replication-factor", SchemaNode::int()),
        ("required-acks", SchemaNode::string()),
        ("health-timeout", SchemaNode::uint()),
    ])
}

fn consumer_node() -> SchemaNode {
    SchemaNode::object(consumer_keys().iter().map(|(k, n)| (*k, n.clone())))
}

fn producer_node() -> SchemaNode {
    SchemaNode::object(producer_keys().iter().map(|(k, n)| (*k, n.clone())))
}

fn consumer_keys() -> Vec<(&'static str, SchemaNode)> {
    vec![
        ("start-offset", SchemaNode::string()),
        ("reset-offsets", SchemaNode::bool()),
        ("enable-dlq", SchemaNode::bool()),
        ("dlq-name", SchemaNode::string()),
        ("dlq-partitions", SchemaNode::uint().at_least(1.0)),
        ("dlq-producer-properties", SchemaNode::free_map()),
        ("configuration", SchemaNode::free_map()),
        ("auto-rebalance-enabled", SchemaNode::bool()),
    ]
}

fn producer_keys() -> Vec<(&'static str, SchemaNode)> {
    vec![
        ("message-key-expression", SchemaNode::string()),
        ("compression", SchemaNode::string()),
        ("sync", SchemaNode::bool()),
        ("configuration", SchemaNode::free_map()),
        ("buffer-size", SchemaNode::uint()),
        ("batch-timeout", SchemaNode::uint()),
        ("close-timeout", SchemaNode::uint()),
    ]
}

/// The relaxed (kebab-case) spelling of a key: `autoCreateTopics`, `auto_create_topics` and
/// `auto-create-topics` are the same key.
pub fn kebab(key: &str) -> String {
    let all_upper = !key.chars().any(|c| c.is_lowercase());
    let mut out = String::with_capacity(key.len() + 4);
    let mut prev_lower = false;
    for c in key.chars() {
        if c == '_' || c == '-' {
            if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
            prev_lower = false;
        } else if c.is_uppercase() && !all_upper {
            if prev_lower && !out.ends_with('-') {
                out.push('-');
            }
            out.extend(c.to_lowercase());
            prev_lower = false;
        } else {
            out.extend(c.to_lowercase());
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

/// Flattens a (dotted-keys-expanded) map back into librdkafka properties
/// (`{security: {protocol: SSL}}` → `security.protocol=SSL`).
pub fn flatten_properties(value: &Value) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            Value::Null => {}
            Value::String(s) => {
                out.insert(prefix.to_owned(), s.clone());
            }
            Value::Array(items) => {
                let joined: Vec<String> = items.iter().map(scalar).collect();
                out.insert(prefix.to_owned(), joined.join(","));
            }
            other => {
                out.insert(prefix.to_owned(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", value, &mut out);
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Properties shown in logs, secrets redacted.
pub fn redacted(props: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    props
        .iter()
        .map(|(k, v)| (k.clone(), redact_value(k, v)))
        .collect()
}

/// The effective binder configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct KafkaBinderConfig {
    /// `bootstrap.servers` (comma-separated `host:port`).
    pub brokers: String,
    /// Client properties for every client (`configuration`).
    pub configuration: BTreeMap<String, String>,
    /// Extra consumer properties (`consumer-properties`).
    pub consumer_properties: BTreeMap<String, String>,
    /// Extra producer properties (`producer-properties`).
    pub producer_properties: BTreeMap<String, String>,
    /// Whether missing topics are created through the admin API (`auto-create-topics`). When
    /// false the binder only looks topics up, which lets a broker with broker-side
    /// auto-creation create them.
    pub auto_create_topics: bool,
    /// Whether too-small topics are grown (`auto-add-partitions`).
    pub auto_add_partitions: bool,
    /// The minimum partition count of created topics (`min-partition-count`).
    pub min_partition_count: u32,
    /// Replication factor of created topics; -1 = the broker default (`replication-factor`).
    pub replication_factor: i32,
    /// Producer `acks` (`required-acks`: `all`, `-1`, `0`, `1`).
    pub required_acks: String,
    /// How long brokers may be unreachable before health is DOWN (`health-timeout`).
    pub health_timeout: Duration,
    /// Binder-scoped defaults for bindings (`spring.cloud.stream.kafka.default.consumer` inside
    /// the binder's environment).
    pub default_consumer: Value,
    /// Binder-scoped defaults for producer bindings.
    pub default_producer: Value,
}

impl Default for KafkaBinderConfig {
    fn default() -> Self {
        KafkaBinderConfig {
            brokers: DEFAULT_BROKERS.into(),
            configuration: BTreeMap::new(),
            consumer_properties: BTreeMap::new(),
            producer_properties: BTreeMap::new(),
            auto_create_topics: true,
            auto_add_partitions: false,
            min_partition_count: 1,
            replication_factor: -1,
            required_acks: "all".into(),
            health_timeout: Duration::from_secs(DEFAULT_HEALTH_TIMEOUT_SECS),
            default_consumer: Value::Object(Map::new()),
            default_producer: Value::Object(Map::new()),
        }
    }
}

fn config_error(key: impl Into<String>, message: impl Into<String>) -> BindError {
    BindError::Config {
        key: key.into(),
        message: message.into(),
    }
}

/// Normalises the keys of one object level to kebab-case (values untouched).
fn kebab_level(v: &Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m.iter().map(|(k, v)| (kebab(k), v.clone())).collect(),
        _ => Map::new(),
    }
}

fn lookup<'a>(root: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(root, |node, part| match node {
        Value::Object(m) => m
            .get(*part)
            .or_else(|| m.iter().find(|(k, _)| kebab(k) == *part).map(|(_, v)| v)),
        _ => None,
    })
}

/// Checks that `obj`'s keys are among `known`, with a did-you-mean.
fn check_keys(obj: &Map<String, Value>, known: &[&str], prefix: &str) -> Result<(), BindError> {
    for k in obj.keys() {
        if !known.contains(&k.as_str()) {
            let hint = suggest(k, known.iter().copied())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(config_error(
                format!("{prefix}{k}"),
                format!("unknown key{hint} (known: {})", known.join(", ")),
            ));
        }
    }
    Ok(())
}

impl KafkaBinderConfig {
    /// Reads the configuration of binder `name`: `spring.cloud.stream.kafka.binder.*` from the
    /// application (when inherited), overridden by the binder's own `environment` (either the
    /// binder keys at its top level or the full `spring.cloud.stream.kafka.binder.*` paths).
    /// `spring.kafka.bootstrap-servers` (Spring Boot's key) is accepted as an alias of
    /// `brokers`. Unknown keys in the binder's own environment are errors.
    pub fn from_environment(name: &str, env: &BinderEnvironment) -> Result<Self, BindError> {
        let env_prefix = format!("spring.cloud.stream.binders.{name}.environment.");
        let own = kebab_level(&env.own);
        let mut own_top = Map::new();
        for (k, v) in &own {
            if k == "spring" {
                continue;
            }
            own_top.insert(k.clone(), v.clone());
        }
        check_keys(&own_top, &[BINDER_KEYS, &["spring"]].concat(), &env_prefix)?;
        if let Some(spring) = own.get("spring") {
            let spring = kebab_level(spring);
            check_keys(
                &spring,
                &["cloud", "kafka"],
                &format!("{env_prefix}spring."),
            )?;
            if let Some(k) = spring.get("kafka") {
                check_keys(
                    &kebab_level(k),
                    &["bootstrap-servers"],
                    &format!("{env_prefix}spring.kafka."),
                )?;
            }
            if let Some(kafka) = lookup(&env.own, &["spring", "cloud", "stream", "kafka"]) {
                let p = format!("{env_prefix}spring.cloud.stream.kafka.");
                let kafka = kebab_level(kafka);
                check_keys(&kafka, &["binder", "default"], &p)?;
                if let Some(b) = kafka.get("binder") {
                    check_keys(&kebab_level(b), BINDER_KEYS, &format!("{p}binder."))?;
                }
                if let Some(d) = kafka.get("default") {
                    let d = kebab_level(d);
                    check_keys(&d, &["consumer", "producer"], &format!("{p}default."))?;
                    let ck: Vec<&str> = consumer_keys().iter().map(|(k, _)| *k).collect();
                    let pk: Vec<&str> = producer_keys().iter().map(|(k, _)| *k).collect();
                    if let Some(c) = d.get("consumer") {
                        check_keys(&kebab_level(c), &ck, &format!("{p}default.consumer."))?;
                    }
                    if let Some(c) = d.get("producer") {
                        check_keys(&kebab_level(c), &pk, &format!("{p}default.producer."))?;
                    }
                }
            }
        }

        // Lowest first: inherited section, own full-path section, own short keys.
        let binder_path = ["spring", "cloud", "stream", "kafka", "binder"];
        let mut merged = Value::Object(Map::new());
        if let Some(v) = lookup(&env.inherited, &binder_path) {
            deep_merge(&mut merged, &Value::Object(kebab_level(v)));
        }
        if let Some(v) = lookup(&env.own, &binder_path) {
            deep_merge(&mut merged, &Value::Object(kebab_level(v)));
        }
        deep_merge(&mut merged, &Value::Object(own_top));
        let m = kebab_level(&merged);

        let mut cfg = KafkaBinderConfig::default();
        let key = |k: &str| format!("spring.cloud.stream.kafka.binder.{k}");
        let port = match m.get("default-broker-port") {
            Some(v) => as_u64(v).ok_or_else(|| {
                config_error(key("default-broker-port"), "expected a port number")
            })?,
            None => 9092,
        };
        // Brokers: own (short or full path) > own spring.kafka.bootstrap-servers > inherited
        // binder brokers > inherited spring.kafka.bootstrap-servers > default.
        let own_brokers = lookup(&env.own, &["brokers"])
            .or_else(|| lookup(&env.own, &[&binder_path[..], &["brokers"]].concat()))
            .or_else(|| lookup(&env.own, &["spring", "kafka", "bootstrap-servers"]));
        let brokers = own_brokers
            .or_else(|| lookup(&env.inherited, &[&binder_path[..], &["brokers"]].concat()))
            .or_else(|| lookup(&env.inherited, &["spring", "kafka", "bootstrap-servers"]));
        if let Some(b) = brokers {
            cfg.brokers = broker_list(b, port)
                .ok_or_else(|| config_error(key("brokers"), "expected a host[:port] list"))?;
        } else if port != 9092 {
            cfg.brokers = format!("localhost:{port}");
        }
        if let Some(v) = m.get("configuration") {
            cfg.configuration = flatten_properties(v);
        }
        if let Some(v) = m.get("consumer-properties") {
            cfg.consumer_properties = flatten_properties(v);
        }
        if let Some(v) = m.get("producer-properties") {
            cfg.producer_properties = flatten_properties(v);
        }
        if let Some(v) = m.get("auto-create-topics") {
            cfg.auto_create_topics = as_bool(v)
                .ok_or_else(|| config_error(key("auto-create-topics"), "expected a boolean"))?;
        }
        if let Some(v) = m.get("auto-add-partitions") {
            cfg.auto_add_partitions = as_bool(v)
                .ok_or_else(|| config_error(key("auto-add-partitions"), "expected a boolean"))?;
        }
        if let Some(v) = m.get("min-partition-count") {
            cfg.min_partition_count = as_u64(v)
                .filter(|n| (1..=u64::from(i32::MAX as u32)).contains(n))
                .map(|n| n as u32)
                .ok_or_else(|| {
                    config_error(key("min-partition-count"), "expected a positive integer")
                })?;
        }
        if let Some(v) = m.get("replication-factor") {
            cfg.replication_factor = as_i64(v)
                .filter(|n| *n == -1 || (1..=i64::from(i16::MAX)).contains(n))
                .map(|n| n as i32)
                .ok_or_else(|| {
                    config_error(
                        key("replication-factor"),
                        "expected -1 or a positive integer",
                    )
                })?;
        }
        if let Some(v) = m.get("required-acks") {
            let acks = scalar(v).to_ascii_lowercase();
            if !matches!(acks.as_str(), "all" | "-1" | "0" | "1") {
                return Err(config_error(
                    key("required-acks"),
                    format!("expected all, -1, 0 or 1, found {acks}"),
                ));
            }
            cfg.required_acks = acks;
        }
        if let Some(v) = m.get("health-timeout") {
            let secs =
                as_u64(v).ok_or_else(|| config_error(key("health-timeout"), "expected seconds"))?;
            cfg.health_timeout = Duration::from_secs(secs);
        }
        let defaults = ["spring", "cloud", "stream", "kafka", "default"];
        if let Some(c) = lookup(&env.own, &[&defaults[..], &["consumer"]].concat()) {
            cfg.default_consumer = Value::Object(kebab_level(c));
        }
        if let Some(p) = lookup(&env.own, &[&defaults[..], &["producer"]].concat()) {
            cfg.default_producer = Value::Object(kebab_level(p));
        }
        if cfg.configuration.contains_key("bootstrap.servers") {
            return Err(config_error(
                key("configuration.bootstrap.servers"),
                "set the brokers with `brokers`, not in `configuration`",
            ));
        }
        Ok(cfg)
    }
}

fn broker_list(v: &Value, default_port: u64) -> Option<String> {
    let items: Vec<String> = match v {
        Value::String(s) => s.split(',').map(|s| s.trim().to_owned()).collect(),
        Value::Array(a) => a.iter().map(|x| scalar(x).trim().to_owned()).collect(),
        _ => return None,
    };
    let items: Vec<String> = items
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                s
            } else {
                format!("{s}:{default_port}")
            }
        })
        .collect();
    (!items.is_empty()).then(|| items.join(","))
}

/// A boolean from a JSON bool or a `true`/`false` string.
pub fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// An unsigned integer from a JSON number or a numeric string.
pub fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `start-offset` of a consumer binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartOffset {
    /// From the beginning of the partition.
    Earliest,
    /// Only records produced after the consumer started.
    Latest,
}

impl StartOffset {
    /// The librdkafka `auto.offset.reset` value.
    pub fn as_reset(self) -> &'static str {
        match self {
            StartOffset::Earliest => "earliest",
            StartOffset::Latest => "latest",
        }
    }
}

/// The Kafka-specific properties of one consumer binding.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsumerProps {
    /// Where a group without committed offsets starts (`start-offset`); default: earliest for
    /// a named group, latest for an anonymous one.
    pub start_offset: Option<StartOffset>,
    /// Reset the group's committed offsets to `start-offset` at bind (`reset-offsets`).
    pub reset_offsets: bool,
    /// Dead-letter to a DLQ topic (`enable-dlq`).
    pub enable_dlq: bool,
    /// The DLQ topic (`dlq-name`, default `error.<destination>.<group>`).
    pub dlq_name: Option<String>,
    /// Partitions of the DLQ topic (`dlq-partitions`, default: as the source topic).
    pub dlq_partitions: Option<u32>,
    /// Producer properties for the DLQ producer (`dlq-producer-properties`).
    pub dlq_producer_properties: BTreeMap<String, String>,
    /// Extra consumer properties (`configuration`).
    pub configuration: BTreeMap<String, String>,
    /// Group management (true, default) or static assignment by instance index (false).
    pub auto_rebalance_enabled: bool,
}

/// The Kafka-specific properties of one producer binding.
#[derive(Clone, Debug, PartialEq)]
pub struct ProducerProps {
    /// Expression for the record key (`message-key-expression`), e.g. `headers['myKey']`.
    pub message_key_expression: Option<String>,
    /// `compression.type` (`compression`: none, gzip, snappy, lz4, zstd).
    pub compression: Option<String>,
    /// `sync`: accepted for compatibility; sends always await the delivery report.
    pub sync: bool,
    /// Extra producer properties (`configuration`).
    pub configuration: BTreeMap<String, String>,
    /// `batch.size` in bytes (`buffer-size`).
    pub buffer_size: Option<u64>,
    /// `linger.ms` (`batch-timeout`).
    pub batch_timeout_ms: Option<u64>,
    /// How long `close` waits for outstanding deliveries, in seconds (`close-timeout`).
    pub close_timeout: Duration,
}

fn merged_props(defaults: &Value, binding: &Value) -> Map<String, Value> {
    let mut v = Value::Object(kebab_level(defaults));
    deep_merge(&mut v, &Value::Object(kebab_level(binding)));
    kebab_level(&v)
}

fn binding_key(binding: &str, dir: &str, k: &str) -> String {
    format!("spring.cloud.stream.kafka.bindings.{binding}.{dir}.{k}")
}

impl ConsumerProps {
    /// Parses the binding's properties over the binder-scoped defaults.
    pub fn parse(binding: &str, defaults: &Value, props: &Value) -> Result<Self, BindError> {
        let m = merged_props(defaults, props);
        let known: Vec<&str> = consumer_keys().iter().map(|(k, _)| *k).collect();
        check_keys(
            &m,
            &known,
            &format!("spring.cloud.stream.kafka.bindings.{binding}.consumer."),
        )?;
        let key = |k: &str| binding_key(binding, "consumer", k);
        let flag = |k: &str, default: bool| -> Result<bool, BindError> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => as_bool(v).ok_or_else(|| config_error(key(k), "expected a boolean")),
            }
        };
        let start_offset = match m.get("start-offset") {
            None | Some(Value::Null) => None,
            Some(v) => match scalar(v).to_ascii_lowercase().as_str() {
                "earliest" => Some(StartOffset::Earliest),
                "latest" => Some(StartOffset::Latest),
                other => {
                    return Err(config_error(
                        key("start-offset"),
                        format!("expected earliest or latest, found {other}"),
                    ))
                }
            },
        };
        let dlq_partitions = match m.get("dlq-partitions") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                as_u64(v)
                    .filter(|n| (1..=i32::MAX as u64).contains(n))
                    .map(|n| n as u32)
                    .ok_or_else(|| {
                        config_error(key("dlq-partitions"), "expected a positive integer")
                    })?,
            ),
        };
        Ok(ConsumerProps {
            start_offset,
            reset_offsets: flag("reset-offsets", false)?,
            enable_dlq: flag("enable-dlq", false)?,
            dlq_name: m
                .get("dlq-name")
                .filter(|v| !v.is_null())
                .map(scalar)
                .filter(|s| !s.is_empty()),
            dlq_partitions,
            dlq_producer_properties: m
                .get("dlq-producer-properties")
                .map(flatten_properties)
                .unwrap_or_default(),
            configuration: m
                .get("configuration")
                .map(flatten_properties)
                .unwrap_or_default(),
            auto_rebalance_enabled: flag("auto-rebalance-enabled", true)?,
        })
    }
}

impl ProducerProps {
    /// Parses the binding's properties over the binder-scoped defaults.
    pub fn parse(binding: &str, defaults: &Value, props: &Value) -> Result<Self, BindError> {
        let m = merged_props(defaults, props);
        let known: Vec<&str> = producer_keys().iter().map(|(k, _)| *k).collect();
        check_keys(
            &m,
            &known,
            &format!("spring.cloud.stream.kafka.bindings.{binding}.producer."),
        )?;
        let key = |k: &str| binding_key(binding, "producer", k);
        let num = |k: &str| -> Result<Option<u64>, BindError> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => as_u64(v)
                    .map(Some)
                    .ok_or_else(|| config_error(key(k), "expected an unsigned integer")),
            }
        };
        let compression = match m.get("compression") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let c = scalar(v).to_ascii_lowercase();
                if !matches!(c.as_str(), "none" | "gzip" | "snappy" | "lz4" | "zstd") {
                    return Err(config_error(
                        key("compression"),
                        format!("expected none, gzip, snappy, lz4 or zstd, found {c}"),
                    ));
                }
                Some(c)
            }
        };
        let sync = match m.get("sync") {
            None | Some(Value::Null) => false,
            Some(v) => as_bool(v).ok_or_else(|| config_error(key("sync"), "expected a boolean"))?,
        };
        let message_key_expression = m
            .get("message-key-expression")
            .filter(|v| !v.is_null())
            .map(scalar)
            .filter(|s| !s.trim().is_empty());
        if let Some(src) = &message_key_expression {
            stream_core::expr::Expression::parse(src)
                .map_err(|e| config_error(key("message-key-expression"), e.to_string()))?;
        }
        Ok(ProducerProps {
            message_key_expression,
            compression,
            sync,
            configuration: m
                .get("configuration")
                .map(flatten_properties)
                .unwrap_or_default(),
            buffer_size: num("buffer-size")?,
            batch_timeout_ms: num("batch-timeout")?,
            close_timeout: Duration::from_secs(num("close-timeout")?.unwrap_or(30)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn own_short_keys_override_inherited_section() {
        let env = BinderEnvironment {
            own: json!({"brokers": "a:1,b", "autoCreateTopics": false}),
            inherited: json!({"spring": {"cloud": {"stream": {"kafka": {"binder": {
                "brokers": "x:9", "min-partition-count": 3, "health-timeout": 5}}}}}}),
        };
        let c = KafkaBinderConfig::from_environment("k", &env).unwrap();
        assert_eq!(c.brokers, "a:1,b:9092");
        assert!(!c.auto_create_topics);
        assert_eq!(c.min_partition_count, 3);
        assert_eq!(c.health_timeout, Duration::from_secs(5));
    }

    #[test]
    fn spring_boot_bootstrap_servers_is_an_alias() {
        let env =
            BinderEnvironment::own(json!({"spring": {"kafka": {"bootstrap-servers": "h:19092"}}}));
        let c = KafkaBinderConfig::from_environment("k", &env).unwrap();
        assert_eq!(c.brokers, "h:19092");
        let env = BinderEnvironment::own(json!({}));
        assert_eq!(
            KafkaBinderConfig::from_environment("k", &env)
                .unwrap()
                .brokers,
            DEFAULT_BROKERS
        );
    }

    #[test]
    fn unknown_own_key_is_rejected_with_suggestion() {
        let env = BinderEnvironment::own(json!({"brokerz": "h"}));
        let e = KafkaBinderConfig::from_environment("k", &env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("brokerz") && e.contains("did you mean `brokers`"),
            "{e}"
        );
        let env = BinderEnvironment::own(json!({"spring": {"kafka": {"bootstrap-server": "h"}}}));
        assert!(KafkaBinderConfig::from_environment("k", &env).is_err());
    }

    #[test]
    fn configuration_is_flattened() {
        let env = BinderEnvironment::own(json!({
            "configuration": {"security": {"protocol": "SASL_SSL"}, "sasl.password": "s3cret"}
        }));
        let c = KafkaBinderConfig::from_environment("k", &env).unwrap();
        assert_eq!(c.configuration["security.protocol"], "SASL_SSL");
        assert_eq!(redacted(&c.configuration)["sasl.password"], "****");
    }

    #[test]
    fn binding_props_parse_and_validate() {
        let c = ConsumerProps::parse(
            "b",
            &json!({"enable-dlq": true}),
            &json!({"startOffset": "latest", "dlq-name": "dead"}),
        )
        .unwrap();
        assert!(c.enable_dlq);
        assert_eq!(c.start_offset, Some(StartOffset::Latest));
        assert_eq!(c.dlq_name.as_deref(), Some("dead"));
        assert!(ConsumerProps::parse("b", &json!({}), &json!({"start-offset": "middle"})).is_err());
        assert!(ConsumerProps::parse("b", &json!({}), &json!({"enable-dlx": true})).is_err());
        let p = ProducerProps::parse("b", &json!({}), &json!({"compression": "lz4"})).unwrap();
        assert_eq!(p.compression.as_deref(), Some("lz4"));
        assert!(ProducerProps::parse("b", &json!({}), &json!({"compression": "brotli"})).is_err());
    }
}
