//! Typed properties, after loading, profiles, placeholders, environment overrides, relaxed-name
//! normalisation and the `spring.cloud.stream.default` cascade have been applied.
//!
//! Names and defaults mirror Spring Cloud Stream (`shared/reference/spring-cloud-stream-properties.md`).
//! All intervals are milliseconds unless a field says otherwise.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smart_default::SmartDefault;

/// The whole cloud-stream configuration of an application.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct StreamConfig {
    /// `spring.cloud.function.*`.
    pub function: FunctionProperties,
    /// `spring.cloud.stream.*` (binder-specific sections excluded, see `binder_sections`).
    pub stream: StreamProperties,
    /// `spring.integration.poller.*`: the default supplier poller.
    pub poller: PollerProperties,
    /// Binder-specific sections `spring.cloud.stream.<binder-type>.*` (e.g. `kafka`, `rabbit`),
    /// keyed by binder type, each a JSON object with normalised (kebab-case) keys:
    /// `{"binder": {...}, "default": {"consumer": {...}, "producer": {...}},
    ///   "bindings": {"<binding>": {"consumer": {...}, "producer": {...}}}}`.
    pub binder_sections: BTreeMap<String, serde_json::Value>,
    /// The profiles that were active when this configuration was loaded, in order.
    pub active_profiles: Vec<String>,
}

/// `spring.cloud.function.*`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct FunctionProperties {
    /// `definition`: `a;b|c` (`;` separates functions, `|` composes).
    pub definition: Option<String>,
    /// `routing-expression`: chooses the function for `functionRouter-in-0`.
    #[schemars(extend("x-kind" = "expression"))]
    pub routing_expression: Option<String>,
}

/// `spring.cloud.stream.*`.
#[derive(SmartDefault, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct StreamProperties {
    /// `default-binder`: required when several binders are configured and a binding names none.
    pub default_binder: Option<String>,
    /// `binders.<name>`.
    pub binders: BTreeMap<String, BinderProperties>,
    /// `bindings.<name>`, with `default` already merged under each entry.
    pub bindings: BTreeMap<String, BindingProperties>,
    /// `default`: the defaults themselves (also applied to bindings created at runtime, e.g. by
    /// `StreamBridge`).
    pub default: BindingProperties,
    /// `function.*`.
    pub function: StreamFunctionProperties,
    /// `dynamic-destinations`: allow-list for `StreamBridge` (empty = any).
    pub dynamic_destinations: Vec<String>,
    /// `dynamic-destination-cache-size`: bound of the `StreamBridge` producer cache.
    #[schemars(range(min = 1))]
    #[default(10)]
    pub dynamic_destination_cache_size: usize,
    /// `instance-count`.
    #[schemars(range(min = 1))]
    #[default(1)]
    pub instance_count: u32,
    /// `instance-index`.
    pub instance_index: u32,
    /// `binding-retry-interval` in **seconds**: wait between attempts to bind when the broker is
    /// down at start (0 = fail fast).
    #[default(30)]
    pub binding_retry_interval: u64,
    /// `input-bindings`: explicit input bindings without functions (`;`-separated).
    pub input_bindings: Option<String>,
    /// `output-bindings`: explicit output bindings pre-created for `StreamBridge`.
    pub output_bindings: Option<String>,
    /// `source`: Spring's older name of `output-bindings` (both are read; `output-bindings`
    /// lists first).
    pub source: Option<String>,
    /// `poller.*`: Spring's older place of `spring.integration.poller.*` (used when that is
    /// not set).
    pub poller: Option<PollerProperties>,
    /// Spring keys accepted and not used here.
    #[serde(flatten)]
    pub unused: UnusedStreamKeys,
}

crate::unused_keys! {
    /// Spring's `StreamProperties` keys that real configurations set and this binder does not use.
    pub struct UnusedStreamKeys {
        instance_index_list, pollable_source
    }
}

/// `spring.cloud.stream.function.*`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct StreamFunctionProperties {
    /// `bindings.<derived-name>: <alias>`.
    pub bindings: BTreeMap<String, String>,
    /// `routing.enabled`: bind `functionRouter-in-0`.
    pub routing: RoutingProperties,
    /// `definition`: Spring's older spelling of `spring.cloud.function.definition` (used when
    /// that is not set).
    pub definition: Option<String>,
    /// `autodetect` (accepted for compatibility; a single registered function is bound when no
    /// definition is given).
    pub autodetect: Option<bool>,
}

/// `spring.cloud.stream.function.routing.*`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct RoutingProperties {
    /// `enabled`.
    pub enabled: bool,
}

/// `spring.cloud.stream.binders.<name>`.
#[derive(SmartDefault, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct BinderProperties {
    /// `type`; defaults to the binder's configuration name.
    #[serde(rename = "type")]
    pub binder_type: Option<String>,
    /// `environment`: the binder's own properties, as a JSON object with the keys as written
    /// (dotted keys such as `spring.rabbitmq.host` are expanded into nested objects).
    #[schemars(extend("x-kind" = "free-map"))]
    #[default(serde_json::Value::Object(Default::default()))]
    pub environment: serde_json::Value,
    /// `inherit-environment`.
    #[default(true)]
    pub inherit_environment: bool,
    /// `default-candidate`.
    #[default(true)]
    pub default_candidate: bool,
}

/// `spring.cloud.stream.bindings.<name>` (and `spring.cloud.stream.default`).
#[derive(SmartDefault, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct BindingProperties {
    /// `destination`: comma-separated for several inputs; defaults to the binding name.
    pub destination: Option<String>,
    /// `group`: `None` = anonymous.
    pub group: Option<String>,
    /// `content-type`.
    #[default("application/json".to_owned())]
    pub content_type: String,
    /// `binder`: the binder configuration name; `None` = the default binder.
    pub binder: Option<String>,
    /// `error-handler-definition` (accepted; not yet used).
    pub error_handler_definition: Option<String>,
    /// `consumer.*`.
    pub consumer: ConsumerProperties,
    /// `producer.*`.
    pub producer: ProducerProperties,
}

impl BindingProperties {
    /// The destinations (comma-separated `destination`, trimmed), or `[binding_name]` when unset.
    pub fn destinations(&self, binding_name: &str) -> Vec<String> {
        match &self.destination {
            Some(d) => super::tree::split_list(d),
            None => vec![binding_name.to_owned()],
        }
    }
}

/// `spring.cloud.stream.bindings.<name>.consumer.*`.
#[derive(SmartDefault, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct ConsumerProperties {
    /// `auto-startup`.
    #[default(true)]
    pub auto_startup: bool,
    /// `concurrency`.
    #[schemars(range(min = 1))]
    #[default(1)]
    pub concurrency: u32,
    /// `partitioned`.
    pub partitioned: bool,
    /// `header-mode` (`none`, `headers`, `embeddedHeaders`).
    pub header_mode: Option<String>,
    /// `max-attempts`, including the first; 1 = no retry.
    #[schemars(range(min = 1))]
    #[default(3)]
    pub max_attempts: u32,
    /// `back-off-initial-interval` (ms).
    #[schemars(extend("x-kind" = "duration-ms"))]
    #[default(1000)]
    pub back_off_initial_interval: u64,
    /// `back-off-max-interval` (ms).
    #[schemars(extend("x-kind" = "duration-ms"))]
    #[default(10000)]
    pub back_off_max_interval: u64,
    /// `back-off-multiplier`.
    #[schemars(extend("exclusiveMinimum" = 0))]
    #[default(2.0)]
    pub back_off_multiplier: f64,
    /// `default-retryable`: whether errors not classified otherwise are retried.
    #[default(true)]
    pub default_retryable: bool,
    /// `retryable-exceptions`: error kind → retryable.
    pub retryable_exceptions: BTreeMap<String, bool>,
    /// `instance-count` (< 0 = use `spring.cloud.stream.instance-count`).
    #[default(-1)]
    pub instance_count: i32,
    /// `instance-index` (< 0 = use `spring.cloud.stream.instance-index`).
    #[default(-1)]
    pub instance_index: i32,
    /// `instance-index-list`.
    pub instance_index_list: Vec<u32>,
    /// `multiplex`.
    pub multiplex: bool,
    /// `batch-mode`.
    pub batch_mode: bool,
    /// `idempotent` (cloud-stream's): handle each message key once per group; a duplicate of
    /// a key already handled successfully is acked without calling the handler.
    pub idempotent: bool,
    /// `idempotent-key-expression`: the key (default `headers['id']`).
    #[schemars(extend("x-kind" = "expression"))]
    pub idempotent_key_expression: Option<String>,
    /// `idempotent-retention` (ms): how long a handled key is remembered (default 24 h).
    #[schemars(extend("x-kind" = "duration-ms"))]
    #[default(86_400_000)]
    pub idempotent_retention: u64,
    /// `idempotent-capacity`: the most keys remembered per binding (oldest forgotten first).
    #[schemars(range(min = 1))]
    #[default(100_000)]
    pub idempotent_capacity: u32,
    /// `redelivery-delays` (cloud-stream's, ms each): after the in-process attempts, hand a
    /// message that failed with a retryable error back to the broker to come again after each
    /// delay in turn (`10s, 1m, 10m`), the consumer going on meanwhile; then the DLQ.
    #[schemars(extend("x-kind" = "duration-ms-list"))]
    pub redelivery_delays: Vec<u64>,
    /// Spring keys accepted and not used here.
    #[serde(flatten)]
    pub unused: UnusedConsumerKeys,
}

impl ConsumerProperties {
    /// `redelivery-delays` as durations, in order.
    pub fn redelivery_schedule(&self) -> Vec<std::time::Duration> {
        self.redelivery_delays
            .iter()
            .map(|ms| std::time::Duration::from_millis(*ms))
            .collect()
    }
}

crate::unused_keys! {
    /// Spring's `ConsumerProperties` keys that real configurations set and this binder does not use.
    pub struct UnusedConsumerKeys {
        use_native_decoding, retry_template_name
    }
}

/// `spring.cloud.stream.bindings.<name>.producer.*`.
#[derive(SmartDefault, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct ProducerProperties {
    /// `auto-startup`.
    #[default(true)]
    pub auto_startup: bool,
    /// `partition-key-expression`.
    #[schemars(extend("x-kind" = "expression"))]
    pub partition_key_expression: Option<String>,
    /// `partition-selector-expression`.
    #[schemars(extend("x-kind" = "expression"))]
    pub partition_selector_expression: Option<String>,
    /// `partition-count`.
    #[schemars(range(min = 1))]
    #[default(1)]
    pub partition_count: u32,
    /// `required-groups`.
    pub required_groups: Vec<String>,
    /// `header-mode`.
    pub header_mode: Option<String>,
    /// `poller.*`: per-binding supplier poller (overrides `spring.integration.poller`).
    pub poller: Option<PollerProperties>,
    /// Spring keys accepted and not used here.
    #[serde(flatten)]
    pub unused: UnusedProducerKeys,
}

crate::unused_keys! {
    /// Spring's `ProducerProperties` keys that real configurations set and this binder does not use.
    pub struct UnusedProducerKeys {
        use_native_encoding, error_channel_enabled, dynamic_partition_updates_enabled,
        partition_key_extractor_name, partition_selector_name
    }
}

/// `spring.integration.poller.*` (or a binding's `producer.poller.*`).
#[derive(SmartDefault, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct PollerProperties {
    /// `fixed-delay` (ms) between supplier calls.
    #[schemars(extend("x-kind" = "duration-ms"))]
    #[default(1000)]
    pub fixed_delay: u64,
    /// `max-messages-per-poll`.
    #[default(1)]
    pub max_messages_per_poll: u32,
    /// `initial-delay` (ms) before the first call.
    #[schemars(extend("x-kind" = "duration-ms"))]
    pub initial_delay: u64,
    /// Spring keys accepted and not used here.
    #[serde(flatten)]
    pub unused: UnusedPollerKeys,
}

crate::unused_keys! {
    /// Spring's `PollerProperties` keys that real configurations set and this binder does not use.
    pub struct UnusedPollerKeys {
        cron, fixed_rate, time_unit, receive_timeout
    }
}
