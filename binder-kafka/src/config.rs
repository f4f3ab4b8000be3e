//! Binder configuration, declared once as typed settings structs: [`KafkaBinderProps`]
//! (`spring.cloud.stream.kafka.binder.*`), [`KafkaConsumerProps`] and [`KafkaProducerProps`]
//! (`spring.cloud.stream.kafka.{default,bindings.<b>}.{consumer,producer}.*`) and
//! [`SpringKafka`] (Spring Boot's key in a binder's `environment`). The schemas the loader validates with
//! (unknown keys with a did-you-mean, values coerced) are derived from them; [`KafkaBinderConfig`]
//! is the effective binder configuration read from them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use smart_default::SmartDefault;
use stream_core::binder::{read_at, read_settings, BindError, BinderEnvironment};
use stream_core::config::{deep_merge, flatten, get_path, redact_value, scalar_text};
use stream_core::config::{Schema, SchemaNode};

/// Default bootstrap servers (Spring's `localhost` with `default-broker-port` 9092).
pub const DEFAULT_BROKERS: &str = "localhost:9092";
/// Default `health-timeout` in seconds (Spring's 60).
pub const DEFAULT_HEALTH_TIMEOUT_SECS: u64 = 60;

/// The schema of `spring.cloud.stream.kafka.*` (binder keys and per-binding keys).
pub fn schema() -> Schema {
    Schema::binder_section(
        SchemaNode::of::<KafkaBinderProps>(),
        SchemaNode::of::<KafkaConsumerProps>(),
        SchemaNode::of::<KafkaProducerProps>(),
    )
}

/// The schema of a kafka binder's `environment` (`binders.<name>.environment`): the binder keys
/// at the top level (they win), `spring.cloud.stream.kafka.binder.*`,
/// `spring.cloud.stream.kafka.default.{consumer,producer}` (binding defaults for this binder)
/// and `spring.kafka.bootstrap-servers` (an alias of `brokers`).
pub fn environment_schema() -> Schema {
    let defaults = SchemaNode::object([
        ("consumer", SchemaNode::of::<KafkaConsumerProps>()),
        ("producer", SchemaNode::of::<KafkaProducerProps>()),
    ]);
    let node = SchemaNode::of::<KafkaBinderProps>()
        .with(&BINDER_PATH, SchemaNode::of::<KafkaBinderProps>())
        .with(&DEFAULT_PATH, defaults)
        .with(&BOOT_PATH, SchemaNode::of::<SpringKafka>());
    Schema::new(node)
}

/// `spring.cloud.stream.kafka.binder.*` (also the top level of a binder's `environment`).
#[derive(SmartDefault, Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct KafkaBinderProps {
    /// `brokers`: bootstrap servers, `host[:port]` (a list or a comma-separated string).
    #[default(vec!["localhost".into()])]
    pub brokers: Vec<String>,
    /// `default-broker-port`: the port of brokers listed without one.
    #[default(9092)]
    pub default_broker_port: u16,
    /// `configuration`: librdkafka properties for every client.
    #[schemars(extend("x-kind" = "free-map"))]
    pub configuration: Value,
    /// `consumer-properties`: librdkafka properties for consumers.
    #[schemars(extend("x-kind" = "free-map"))]
    pub consumer_properties: Value,
    /// `producer-properties`: librdkafka properties for producers.
    #[schemars(extend("x-kind" = "free-map"))]
    pub producer_properties: Value,
    /// `auto-create-topics`: create missing topics through the admin API (false: only look
    /// them up, which lets a broker with broker-side auto-creation create them).
    #[default(true)]
    pub auto_create_topics: bool,
    /// `auto-add-partitions`: grow topics with too few partitions.
    pub auto_add_partitions: bool,
    /// `min-partition-count`: the minimum partition count of created topics.
    #[schemars(range(min = 1, max = 2_147_483_647))]
    #[default(1)]
    pub min_partition_count: u32,
    /// `replication-factor` of created topics; -1 = the broker default.
    #[schemars(range(min = -1))]
    #[default(-1)]
    pub replication_factor: i16,
    /// `required-acks`: producer `acks` (`all`, `-1`, `0`, `1`; `all` keeps the producer
    /// idempotent). A string, not an enumeration: `-1` and `1` differ only by the dash.
    #[default("all".into())]
    pub required_acks: String,
    /// `health-timeout`: seconds the brokers may be unreachable before health is DOWN.
    #[default(DEFAULT_HEALTH_TIMEOUT_SECS)]
    pub health_timeout: u64,
    /// Spring keys accepted and not used here.
    #[serde(flatten)]
    pub unused: UnusedBinderKeys,
}

stream_core::unused_keys! {
    /// Spring's `KafkaBinderProps` keys that real configurations set and this binder does not use.
    pub struct UnusedBinderKeys {
        headers, auto_alter_topics, jaas, metrics, enable_observation, header_mapper_bean_name,
        certificate_store_directory, consider_down_when_any_partition_has_no_leader,
        authorization_exception_retry_interval, zk_nodes, default_zk_port
    }
}

/// `start-offset` of a consumer binding (declared once, in stream-core).
pub use stream_core::binder::StartOffset;

/// `compression` of a producer binding (librdkafka `compression.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The librdkafka `compression.type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// The Kafka-specific properties of one consumer binding.
#[derive(SmartDefault, Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct KafkaConsumerProps {
    /// `start-offset`: where a group without committed offsets starts; default: earliest for
    /// a named group, latest for an anonymous one.
    pub start_offset: Option<StartOffset>,
    /// `reset-offsets`: reset the group's committed offsets to `start-offset` at bind.
    pub reset_offsets: bool,
    /// `enable-dlq`: dead-letter to a DLQ topic.
    pub enable_dlq: bool,
    /// `dlq-name`: the DLQ topic (default `error.<destination>.<group>`).
    pub dlq_name: Option<String>,
    /// `dlq-partitions`: partitions of the DLQ topic (default: as the source topic).
    #[schemars(range(min = 1, max = 2_147_483_647))]
    pub dlq_partitions: Option<u32>,
    /// `dlq-producer-properties`: librdkafka properties of the DLQ producer.
    #[schemars(extend("x-kind" = "free-map"))]
    pub dlq_producer_properties: Value,
    /// `configuration`: extra librdkafka consumer properties.
    #[schemars(extend("x-kind" = "free-map"))]
    pub configuration: Value,
    /// `auto-rebalance-enabled`: group management (true) or static assignment by instance
    /// index (false).
    #[default(true)]
    pub auto_rebalance_enabled: bool,
    /// Spring keys accepted and not used here.
    #[serde(flatten)]
    pub unused: UnusedConsumerKeys,
}

stream_core::unused_keys! {
    /// Spring's `KafkaConsumerProps` keys that real configurations set and this binder does not use.
    pub struct UnusedConsumerKeys {
        ack_mode, ack_each_record, auto_commit_offset, auto_commit_on_error, idle_event_interval,
        poll_timeout, standard_headers, converter_bean_name, destination_is_pattern, topic,
        use_topic_header, trusted_packages, tx_commit_recovered, transaction_manager,
        common_error_handler_bean_name
    }
}

/// The Kafka-specific properties of one producer binding.
#[derive(SmartDefault, Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct KafkaProducerProps {
    /// `message-key-expression`: the record key, e.g. `headers['myKey']` (parsed when loaded).
    #[schemars(extend("x-kind" = "expression"))]
    pub message_key_expression: Option<String>,
    /// `compression`: librdkafka `compression.type`.
    pub compression: Option<Compression>,
    /// `compression-type`: Spring's name of `compression` (used when `compression` is unset).
    pub compression_type: Option<Compression>,
    /// `configuration`: extra librdkafka producer properties.
    #[schemars(extend("x-kind" = "free-map"))]
    pub configuration: Value,
    /// `buffer-size`: `batch.size` in bytes.
    pub buffer_size: Option<u64>,
    /// `batch-timeout`: `linger.ms`.
    #[schemars(extend("x-kind" = "duration-ms"))]
    pub batch_timeout: Option<u64>,
    /// `close-timeout`: seconds `close` waits for outstanding deliveries.
    #[default(30)]
    pub close_timeout: u64,
    /// Spring keys accepted and not used here.
    #[serde(flatten)]
    pub unused: UnusedProducerKeys,
}

stream_core::unused_keys! {
    /// Spring's `KafkaProducerProps` keys that real configurations set and this binder does not use.
    pub struct UnusedProducerKeys {
        sync, send_timeout_expression, header_patterns, topic, use_topic_header,
        record_metadata_channel, transaction_manager, allow_non_transactional
    }
}

/// `spring.kafka.*` (Spring Boot), as a kafka binder reads it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct SpringKafka {
    /// `spring.kafka.bootstrap-servers`: an alias of `brokers`.
    pub bootstrap_servers: Option<Vec<String>>,
}

/// Flattens a (dotted-keys-expanded) map back into librdkafka properties
/// (`{security: {protocol: SSL}}` → `security.protocol=SSL`; a list becomes `a,b`).
pub fn flatten_properties(value: &Value) -> BTreeMap<String, String> {
    let props = flatten(value).into_iter();
    let set = props.filter(|(_, v)| !v.is_null() && !v.is_object());
    set.map(|(k, v)| (k, scalar_text(&v))).collect()
}

/// Properties shown in logs, secrets redacted.
pub fn redacted(props: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    props
        .iter()
        .map(|(k, v)| (k.clone(), redact_value(k, v)))
        .collect()
}

/// The effective binder configuration: the binder keys as they apply, and what is derived
/// from them.
#[derive(Clone, Debug, PartialEq)]
pub struct KafkaBinderConfig {
    /// The binder keys (`required-acks` lower-cased; `brokers` as configured, see `brokers`).
    pub props: KafkaBinderProps,
    /// `bootstrap.servers` (comma-separated `host:port`).
    pub brokers: String,
    /// Client properties for every client (`configuration`).
    pub configuration: BTreeMap<String, String>,
    /// Extra consumer properties (`consumer-properties`).
    pub consumer_properties: BTreeMap<String, String>,
    /// Extra producer properties (`producer-properties`).
    pub producer_properties: BTreeMap<String, String>,
    /// Binder-scoped defaults for consumer bindings (`spring.cloud.stream.kafka.default.consumer`
    /// inside the binder's environment).
    pub default_consumer: KafkaConsumerProps,
    /// Binder-scoped defaults for producer bindings.
    pub default_producer: KafkaProducerProps,
}

impl Default for KafkaBinderConfig {
    fn default() -> Self {
        Self::from_props(KafkaBinderProps::default(), None)
            .expect("the default binder properties are valid")
    }
}

fn config_error(key: impl Into<String>, message: impl Into<String>) -> BindError {
    BindError::Config {
        key: key.into(),
        message: message.into(),
    }
}

const BINDER_PATH: [&str; 5] = ["spring", "cloud", "stream", "kafka", "binder"];
const DEFAULT_PATH: [&str; 5] = ["spring", "cloud", "stream", "kafka", "default"];
const BOOT_PATH: [&str; 2] = ["spring", "kafka"];

impl KafkaBinderConfig {
    /// Reads the configuration of binder `name`: `spring.cloud.stream.kafka.binder.*` from the
    /// application (when inherited), overridden by the binder's own `environment` (the full
    /// `spring.cloud.stream.kafka.binder.*` paths, overridden by the binder keys at its top
    /// level). `spring.kafka.bootstrap-servers` (Spring Boot's key) is an alias of `brokers`:
    /// own `brokers` > own `spring.kafka.bootstrap-servers` > inherited `brokers` > inherited
    /// `spring.kafka.bootstrap-servers` > `localhost`. The own environment is expected as the
    /// loader leaves it (validated against [`environment_schema`], keys kebab-case).
    pub fn from_environment(name: &str, env: &BinderEnvironment) -> Result<Self, BindError> {
        let own = env.own_checked(&environment_schema(), name)?;
        // Lowest first: inherited section, own full-path section, own short keys.
        let inherited = env.inherited_checked::<KafkaBinderProps>(&BINDER_PATH)?;
        let own_full = get_path(&own, &BINDER_PATH);
        let mut own_short = own.clone();
        if let Value::Object(m) = &mut own_short {
            m.remove("spring");
        }
        let mut merged = inherited.clone();
        for layer in [own_full, Some(&own_short)].into_iter().flatten() {
            deep_merge(&mut merged, layer);
        }
        let props: KafkaBinderProps = read_settings(merged, "spring.cloud.stream.kafka.binder")?;

        let sets_brokers = |v: Option<&Value>| v.is_some_and(|v| v.get("brokers").is_some());
        let own_boot: SpringKafka = read_at(&own, &BOOT_PATH)?;
        let brokers = if sets_brokers(own_full) || sets_brokers(Some(&own_short)) {
            None
        } else if own_boot.bootstrap_servers.is_some() {
            own_boot.bootstrap_servers
        } else if sets_brokers(Some(&inherited)) {
            None
        } else {
            let boot = env.inherited_checked::<SpringKafka>(&BOOT_PATH)?;
            read_at::<SpringKafka>(&boot, &[])?.bootstrap_servers
        };
        let mut cfg = Self::from_props(props, brokers)?;
        cfg.default_consumer = read_at(&own, &[&DEFAULT_PATH[..], &["consumer"]].concat())?;
        cfg.default_producer = read_at(&own, &[&DEFAULT_PATH[..], &["producer"]].concat())?;
        Ok(cfg)
    }

    /// The effective configuration of the binder keys `p` (with `brokers` replaced by
    /// `brokers`, when given).
    fn from_props(
        mut p: KafkaBinderProps,
        brokers: Option<Vec<String>>,
    ) -> Result<Self, BindError> {
        let key = |k: &str| format!("spring.cloud.stream.kafka.binder.{k}");
        let port = p.default_broker_port;
        let hosts: Vec<String> = brokers
            .unwrap_or_else(|| p.brokers.clone())
            .into_iter()
            .map(|h| match h.rsplit_once(':') {
                Some((_, p)) if p.parse::<u16>().is_ok() => h,
                _ => format!("{h}:{port}"),
            })
            .collect();
        if hosts.is_empty() {
            return Err(config_error(key("brokers"), "expected a host[:port] list"));
        }
        if p.replication_factor == 0 {
            return Err(config_error(
                key("replication-factor"),
                "expected -1 or a positive integer",
            ));
        }
        p.required_acks = p.required_acks.trim().to_ascii_lowercase();
        if !matches!(p.required_acks.as_str(), "all" | "-1" | "0" | "1") {
            return Err(config_error(
                key("required-acks"),
                format!("expected all, -1, 0 or 1, found {}", p.required_acks),
            ));
        }
        let configuration = flatten_properties(&p.configuration);
        if configuration.contains_key("bootstrap.servers") {
            return Err(config_error(
                key("configuration.bootstrap.servers"),
                "set the brokers with `brokers`, not in `configuration`",
            ));
        }
        Ok(KafkaBinderConfig {
            brokers: hosts.join(","),
            configuration,
            consumer_properties: flatten_properties(&p.consumer_properties),
            producer_properties: flatten_properties(&p.producer_properties),
            props: p,
            default_consumer: KafkaConsumerProps::default(),
            default_producer: KafkaProducerProps::default(),
        })
    }
}

impl KafkaProducerProps {
    /// The `compression.type` (`compression`, else `compression-type`).
    pub fn compression(&self) -> Option<Compression> {
        self.compression.or(self.compression_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use stream_core::binder::{ConsumerSpec, ProducerSpec};
    use stream_core::config::ConfigLoader;

    fn loader(yaml: &str) -> ConfigLoader {
        ConfigLoader::new()
            .env(Default::default())
            .binder_schema("kafka", schema())
            .environment_schema("kafka", environment_schema())
            .yaml_str("application.yaml", yaml)
    }

    #[test]
    fn own_short_keys_override_inherited_section() {
        let env = BinderEnvironment {
            own: json!({"brokers": "a:1,b", "auto-create-topics": false,
                "spring": {"cloud": {"stream": {"kafka": {"binder": {"brokers": "y", "health-timeout": 7}}}}}}),
            inherited: json!({"spring": {"cloud": {"stream": {"kafka": {"binder": {
                "brokers": "x:9", "min-partition-count": 3, "health-timeout": 5}}}}}}),
        };
        let c = KafkaBinderConfig::from_environment("k", &env).unwrap();
        assert_eq!(c.brokers, "a:1,b:9092");
        assert!(!c.props.auto_create_topics);
        assert_eq!(c.props.min_partition_count, 3);
        assert_eq!(c.props.health_timeout, 7);
    }

    #[test]
    fn spring_boot_bootstrap_servers_is_an_alias() {
        let env =
            BinderEnvironment::own(json!({"spring": {"kafka": {"bootstrap-servers": "h:19092"}}}));
        let c = KafkaBinderConfig::from_environment("k", &env).unwrap();
        assert_eq!(c.brokers, "h:19092");
        let env = BinderEnvironment {
            own: json!({"spring": {"kafka": {"bootstrap-servers": ["own:1"]}}}),
            inherited: json!({"spring": {"cloud": {"stream": {"kafka": {"binder": {"brokers": "app:2"}}}}}}),
        };
        let c = KafkaBinderConfig::from_environment("k", &env).unwrap();
        assert_eq!(c.brokers, "own:1");
        let env = BinderEnvironment {
            own: json!({"default-broker-port": 19092}),
            inherited: json!({"spring": {"kafka": {"bootstrap-servers": "boot"}}}),
        };
        let c = KafkaBinderConfig::from_environment("k", &env).unwrap();
        assert_eq!(c.brokers, "boot:19092");
        let env = BinderEnvironment::own(json!({}));
        assert_eq!(
            KafkaBinderConfig::from_environment("k", &env)
                .unwrap()
                .brokers,
            DEFAULT_BROKERS
        );
    }

    #[test]
    fn bad_environment_value_names_the_environment() {
        let env = BinderEnvironment::own(json!({"min-partition-count": "many"}));
        let e = KafkaBinderConfig::from_environment("k", &env).unwrap_err();
        assert!(
            matches!(&e, BindError::Config { key, .. } if key == "spring.cloud.stream.binders.k.environment.min-partition-count"),
            "{e}"
        );
        let env = BinderEnvironment::own(json!({"required-acks": "most"}));
        let e = KafkaBinderConfig::from_environment("k", &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("required-acks"), "{e}");
    }

    #[test]
    fn typos_get_a_did_you_mean_from_the_loader() {
        let yaml = "spring.cloud.stream:\n  binders.k:\n    type: kafka\n    environment:\n      brokerz: h\n      spring.kafka.bootstrap-server: h\n  kafka.bindings.x-in-0.consumer:\n    enableDlx: true\n    startOffset: middle\n  kafka.bindings.x-out-0.producer.message-key-expression: \"headers[\"\n";
        let err = loader(yaml).load().unwrap_err();
        let suggestion = |path: &str| {
            err.issues
                .iter()
                .find(|i| i.path == path)
                .unwrap_or_else(|| panic!("no issue at {path}: {err}"))
                .suggestion
                .clone()
        };
        let env = "spring.cloud.stream.binders.k.environment";
        assert_eq!(
            suggestion(&format!("{env}.brokerz")).as_deref(),
            Some("brokers")
        );
        assert_eq!(
            suggestion(&format!("{env}.spring.kafka.bootstrap-server")).as_deref(),
            Some("bootstrap-servers")
        );
        let binding = "spring.cloud.stream.kafka.bindings.x-in-0.consumer";
        assert_eq!(
            suggestion(&format!("{binding}.enable-dlx")).as_deref(),
            Some("enable-dlq")
        );
        let e = err.to_string();
        assert!(e.contains(&format!("{binding}.start-offset")), "{e}");
        assert!(e.contains("earliest, latest"), "{e}");
        let key = "spring.cloud.stream.kafka.bindings.x-out-0.producer.message-key-expression";
        assert!(
            e.contains(&format!("{key}: expected a valid expression")),
            "{e}"
        );
    }

    #[test]
    fn loaded_environment_and_bindings_read_typed() {
        let yaml = "spring.cloud.stream:\n  binders.k:\n    type: kafka\n    environment:\n      brokers: a,b:1\n      autoCreateTopics: 'false'\n      configuration.security.protocol: SASL_SSL\n      configuration.sasl.password: s3cret\n      spring.cloud.stream.kafka.default.consumer.enable-dlq: true\n      enable-observation: true\n  kafka.bindings:\n    x-in-0.consumer: { startOffset: LATEST, dlq-name: dead, ack-mode: MANUAL }\n    x-out-0.producer: { compression: LZ4, batch-timeout: 5ms, sync: true }\n";
        let l = loader(yaml).load().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            l.warnings
                .iter()
                .any(|w| w.contains("enable-observation") && w.contains("not used"))
                && l.warnings.iter().any(|w| w.contains("ack-mode")),
            "{:?}",
            l.warnings
        );
        let own = l.config.stream.binders["k"].environment.clone();
        let c = KafkaBinderConfig::from_environment("k", &BinderEnvironment::own(own)).unwrap();
        assert_eq!(c.brokers, "a:9092,b:1");
        assert!(!c.props.auto_create_topics);
        assert_eq!(c.configuration["security.protocol"], "SASL_SSL");
        assert_eq!(redacted(&c.configuration)["sasl.password"], "****");
        let section = &l.config.binder_sections["kafka"]["bindings"];
        let consumer = ConsumerSpec {
            binding: "x-in-0".into(),
            binder_properties: section["x-in-0"]["consumer"].clone(),
            ..Default::default()
        };
        let p = consumer
            .props_over::<KafkaConsumerProps>(&c.default_consumer)
            .unwrap();
        assert!(p.enable_dlq, "binder-scoped default applies");
        assert_eq!(p.start_offset, Some(StartOffset::Latest));
        assert_eq!(p.dlq_name.as_deref(), Some("dead"));
        assert!(p.auto_rebalance_enabled);
        let producer = ProducerSpec {
            binding: "x-out-0".into(),
            binder_properties: section["x-out-0"]["producer"].clone(),
            ..Default::default()
        };
        let p = producer
            .props_over::<KafkaProducerProps>(&c.default_producer)
            .unwrap();
        assert_eq!(p.compression(), Some(Compression::Lz4));
        assert_eq!(p.batch_timeout, Some(5));
        assert_eq!(p.close_timeout, 30);
    }

    #[test]
    fn binding_props_over_defaults() {
        let spec = ConsumerSpec {
            binding: "b".into(),
            binder_properties: json!({"start-offset": "latest", "configuration": {"a": "2"}}),
            ..Default::default()
        };
        let defaults: KafkaConsumerProps = serde_json::from_value(
            json!({"enable-dlq": true, "configuration": {"a": "1", "b": "1"}}),
        )
        .unwrap();
        let c = spec.props_over::<KafkaConsumerProps>(&defaults).unwrap();
        assert!(c.enable_dlq);
        assert_eq!(c.start_offset, Some(StartOffset::Latest));
        let conf = flatten_properties(&c.configuration);
        assert_eq!((conf["a"].as_str(), conf["b"].as_str()), ("2", "1"));
        // A spec built in code without binding properties gets the defaults.
        let bare = ConsumerSpec::default();
        assert!(
            bare.props_over::<KafkaConsumerProps>(&defaults)
                .unwrap()
                .enable_dlq
        );
        let bad = ConsumerSpec {
            binder_properties: json!({"start-offset": "middle"}),
            ..spec
        };
        let e = bad.props_over::<KafkaConsumerProps>(&defaults).unwrap_err();
        assert!(
            matches!(&e, BindError::Config { key, .. } if key == "bindings.b.consumer"),
            "{e}"
        );
    }

    #[test]
    fn environment_schema_has_the_binder_keys_at_the_top_level() {
        let root = environment_schema().root;
        for k in ["brokers", "configuration", "health-timeout", "spring"] {
            assert!(root.field(k).is_some(), "{k}: {root:?}");
        }
        let spring = root.field("spring").unwrap();
        assert!(spring
            .field("cloud")
            .and_then(|c| c.field("stream"))
            .and_then(|s| s.field("kafka"))
            .and_then(|k| k.field("default"))
            .and_then(|d| d.field("consumer"))
            .and_then(|c| c.field("start-offset"))
            .is_some());
    }
}
