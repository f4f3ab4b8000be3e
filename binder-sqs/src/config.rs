//! Binder and binding settings, declared once as typed settings structs: [`BinderSettings`]
//! (`spring.cloud.stream.sqs.binder.*`, also the top level of a binder's `environment`),
//! [`ConsumerSettings`] and [`ProducerSettings`]
//! (`spring.cloud.stream.sqs.{default,bindings.<b>}.{consumer,producer}.*`) and
//! [`SpringCloudAws`] (Spring Cloud AWS's keys in a binder's `environment`). The schemas the
//! loader validates with (unknown keys with a did-you-mean, values coerced, bounds) are
//! derived from them.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use smart_default::SmartDefault;
use stream_core::binder::{
    read_at, read_settings, BindError, BinderEnvironment, ConsumerSpec, ProducerSpec,
};
use stream_core::config::{deep_merge, Schema, SchemaNode, Secret};

/// Whether a binding's destination is an SNS topic (fan-out) or an SQS queue (work queue).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DestinationMode {
    /// Destination = SNS topic; each group = an SQS queue `<destination>-<group>` subscribed with
    /// raw message delivery.
    #[default]
    Sns,
    /// Destination = an SQS queue (point-to-point; groups share the queue).
    Sqs,
}

/// The AWS region when nothing sets one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Long-poll wait by default (seconds, SQS maximum).
pub const DEFAULT_WAIT_TIME_SECONDS: u32 = 20;
/// Visibility timeout of received messages by default (seconds); extended while a handler runs.
pub const DEFAULT_VISIBILITY_TIMEOUT_SECONDS: u32 = 30;

/// Static credentials (tests, or when no default chain is available); never printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticCredentials {
    /// The access key id.
    pub access_key: Secret,
    /// The secret access key.
    pub secret_key: Secret,
    /// The session token, if any.
    pub session_token: Option<Secret>,
}

/// Binder-level settings: `spring.cloud.stream.sqs.binder.*`, or the same keys at the top level
/// of a binder's `environment` (which win).
#[derive(SmartDefault, Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct BinderSettings {
    /// `region`: the AWS region (`us-east-1` when nothing sets one).
    pub region: Option<String>,
    /// `endpoint`: an endpoint override (moto, LocalStack).
    pub endpoint: Option<String>,
    /// `name-prefix`: prefix of every topic and queue name.
    pub name_prefix: String,
    /// `auto-create`: create topics, queues, subscriptions, policies and DLQs (idempotently).
    #[default(true)]
    pub auto_create: bool,
    /// `access-key`: static credentials with `secret-key` (else the default AWS chain).
    pub access_key: Option<Secret>,
    /// `secret-key`: see `access-key`.
    pub secret_key: Option<Secret>,
    /// `session-token`: the session token of the static credentials.
    pub session_token: Option<Secret>,
    /// `consumer.*`: defaults for every consumer binding of the binder.
    pub consumer: ConsumerSettings,
    /// `producer.*`: defaults for every producer binding of the binder.
    pub producer: ProducerSettings,
}

/// Per-consumer-binding settings.
#[derive(SmartDefault, Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct ConsumerSettings {
    /// `destination-mode`: SNS topic or SQS queue.
    #[default(DestinationMode::Sns)]
    pub destination_mode: DestinationMode,
    /// `wait-time-seconds`: the long-poll wait, 0..=20 s.
    #[schemars(range(max = 20))]
    #[default(DEFAULT_WAIT_TIME_SECONDS)]
    pub wait_time_seconds: u32,
    /// `visibility-timeout`: visibility timeout of received messages, seconds.
    #[schemars(range(min = 1, max = 43_200))]
    #[default(DEFAULT_VISIBILITY_TIMEOUT_SECONDS)]
    pub visibility_timeout: u32,
    /// `max-number-of-messages`: messages per ReceiveMessage, 1..=10.
    #[schemars(range(min = 1, max = 10))]
    #[default(10)]
    pub max_number_of_messages: u32,
    /// `pollers`: concurrent ReceiveMessage loops (`None` = 1, which keeps a standard queue's
    /// order).
    #[schemars(range(min = 1, max = 64))]
    pub pollers: Option<u32>,
    /// `prefetch`: received, unsettled messages held at most (`None` =
    /// `max(concurrency, 1) * 2`, at least `max-number-of-messages`).
    #[schemars(range(min = 1, max = 10_000))]
    pub prefetch: Option<u32>,
    /// `fifo`: use FIFO topics/queues even when not partitioned.
    pub fifo: bool,
    /// `max-receive-count`: the redrive policy's `maxReceiveCount` (`None` =
    /// `max(50, 5 * max-attempts)`).
    #[schemars(range(min = 1, max = 1000))]
    pub max_receive_count: Option<u32>,
}

impl ConsumerSettings {
    /// The long-poll wait as a duration.
    pub fn wait_time(&self) -> Duration {
        Duration::from_secs(u64::from(self.wait_time_seconds))
    }
}

/// Per-producer-binding settings.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct ProducerSettings {
    /// `destination-mode`: SNS topic or SQS queue.
    pub destination_mode: DestinationMode,
    /// `fifo`: use a FIFO topic/queue even when not partitioned.
    pub fifo: bool,
}

/// `spring.cloud.aws.*` (Spring Cloud AWS): fallbacks of `region`, `endpoint` and the static
/// credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct SpringCloudAws {
    /// `spring.cloud.aws.region.*`.
    pub region: AwsRegion,
    /// `spring.cloud.aws.endpoint`.
    pub endpoint: Option<String>,
    /// `spring.cloud.aws.credentials.*`.
    pub credentials: AwsCredentials,
}

/// `spring.cloud.aws.region.*`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct AwsRegion {
    /// `spring.cloud.aws.region.static`: the region.
    #[serde(rename = "static")]
    pub static_region: Option<String>,
}

/// `spring.cloud.aws.credentials.*` (used when both are set).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct AwsCredentials {
    /// `spring.cloud.aws.credentials.access-key`.
    pub access_key: Option<Secret>,
    /// `spring.cloud.aws.credentials.secret-key`.
    pub secret_key: Option<Secret>,
}

/// The schema of `spring.cloud.stream.sqs.*`: `binder.*` (the binder keys),
/// `default.{consumer,producer}.*` and `bindings.<name>.{consumer,producer}.*`.
pub fn schema() -> Schema {
    Schema::binder_section(
        SchemaNode::of::<BinderSettings>(),
        SchemaNode::of::<ConsumerSettings>(),
        SchemaNode::of::<ProducerSettings>(),
    )
}

/// The schema of an sqs binder's `environment` (`binders.<name>.environment`): the binder keys
/// at the top level and Spring Cloud AWS's
/// `spring.cloud.aws.{region.static,endpoint,credentials.{access-key,secret-key}}`.
pub fn environment_schema() -> Schema {
    let aws = SchemaNode::of::<SpringCloudAws>();
    Schema::new(SchemaNode::of::<BinderSettings>().with(&AWS_PATH, aws))
}

const AWS_PATH: [&str; 3] = ["spring", "cloud", "aws"];

/// The binder keys Spring Cloud AWS's keys stand in for, as a layer to merge (the credentials
/// only when both are set).
fn aws_layer(aws: SpringCloudAws) -> Value {
    let keys = aws.credentials.access_key.zip(aws.credentials.secret_key);
    let (access, secret) = keys.as_ref().map(|(a, s)| (a.expose(), s.expose())).unzip();
    let mut layer = serde_json::json!({"region": aws.region.static_region,
        "endpoint": aws.endpoint, "access-key": access, "secret-key": secret});
    if let Value::Object(m) = &mut layer {
        m.retain(|_, v| !v.is_null()); // unset: the lower layers' value stands
    }
    layer
}

/// `access-key` and `secret-key` come as a pair within one section.
fn paired_keys(section: &Value, path: &str) -> Result<(), BindError> {
    match (section.get("access-key"), section.get("secret-key")) {
        (Some(_), None) | (None, Some(_)) => Err(BindError::Config {
            key: format!("{path}.access-key"),
            message: "`access-key` and `secret-key` must be set together".into(),
        }),
        _ => Ok(()),
    }
}

impl BinderSettings {
    /// The region, [`DEFAULT_REGION`] when nothing sets one.
    pub fn region(&self) -> &str {
        self.region.as_deref().unwrap_or(DEFAULT_REGION)
    }

    /// Reads the settings of binder `name`, lowest first: Spring Cloud AWS's
    /// `spring.cloud.aws.{region.static, endpoint, credentials.{access-key,secret-key}}` from
    /// the inherited properties, the same in the binder's own environment, then
    /// `spring.cloud.stream.sqs.binder.*` from the inherited properties, then the binder keys
    /// of the own environment. The own environment is expected as the loader leaves it
    /// (validated against [`environment_schema`], keys kebab-case).
    pub fn from_environment(name: &str, env: &BinderEnvironment) -> Result<Self, BindError> {
        let own_path = format!("spring.cloud.stream.binders.{name}.environment");
        let own_value = env.own_checked(&environment_schema(), name)?;
        let inherited_aws = env.inherited_checked::<SpringCloudAws>(&AWS_PATH)?;
        let mut merged = aws_layer(read_at(&inherited_aws, &[])?);
        deep_merge(&mut merged, &aws_layer(read_at(&own_value, &AWS_PATH)?));
        let binder_path = ["spring", "cloud", "stream", "sqs", "binder"];
        let section = env.inherited_checked::<BinderSettings>(&binder_path)?;
        paired_keys(&section, &binder_path.join("."))?;
        deep_merge(&mut merged, &section);
        let mut own_keys = own_value;
        if let Value::Object(m) = &mut own_keys {
            m.remove("spring");
        }
        paired_keys(&own_keys, &own_path)?;
        deep_merge(&mut merged, &own_keys);
        read_settings(merged, binder_path.join("."))
    }

    /// The static credentials (`access-key` with `secret-key`), if set.
    pub fn credentials(&self) -> Option<StaticCredentials> {
        Some(StaticCredentials {
            access_key: self.access_key.clone()?,
            secret_key: self.secret_key.clone()?,
            session_token: self.session_token.clone(),
        })
    }

    /// The effective settings of consumer binding `spec`: its properties
    /// (`spring.cloud.stream.sqs.{default,bindings.<b>}.consumer`) over the binder's
    /// `consumer.*` defaults.
    pub fn consumer_for(&self, spec: &ConsumerSpec) -> Result<ConsumerSettings, BindError> {
        spec.props_over(&self.consumer)
    }

    /// The effective settings of producer binding `spec` (over the binder's `producer.*`).
    pub fn producer_for(&self, spec: &ProducerSpec) -> Result<ProducerSettings, BindError> {
        spec.props_over(&self.producer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use stream_core::config::ConfigLoader;

    fn loader(yaml: &str) -> ConfigLoader {
        ConfigLoader::new()
            .env(Default::default())
            .binder_schema("sqs", schema())
            .environment_schema("sqs", environment_schema())
            .yaml_str("application.yaml", yaml)
    }

    fn consumer(props: Value) -> ConsumerSpec {
        ConsumerSpec {
            binding: "b-in-0".into(),
            binder_properties: props,
            ..Default::default()
        }
    }

    #[test]
    fn environment_keys_parse_and_secrets_are_hidden() {
        let yaml = "spring.cloud.stream.binders.aws:\n  type: sqs\n  environment:\n    region: eu-west-1\n    endpoint: http://127.0.0.1:4566\n    namePrefix: dev-\n    auto_create: 'false'\n    access-key: AKIA\n    secret-key: s3cr3t\n    consumer: { wait-time-seconds: '1', destinationMode: SQS }\n";
        let l = loader(yaml).load().unwrap_or_else(|e| panic!("{e}"));
        let own = l.config.stream.binders["aws"].environment.clone();
        let s = BinderSettings::from_environment("aws", &BinderEnvironment::own(own)).unwrap();
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.name_prefix, "dev-");
        assert!(!s.auto_create);
        assert_eq!(s.consumer.wait_time_seconds, 1);
        assert_eq!(s.consumer.destination_mode, DestinationMode::Sqs);
        assert_eq!(s.credentials().unwrap().secret_key.expose(), "s3cr3t");
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }

    #[test]
    fn typos_get_a_did_you_mean_from_the_loader() {
        let yaml = "spring.cloud.stream:\n  binders.aws:\n    type: sqs\n    environment:\n      regoin: x\n      spring.cloud.aws.endpoit: x\n  sqs.bindings.b-in-0.consumer:\n    wait-time-second: 3\n    visibility-timeout: 0\n  sqs.default.consumer.wait-time-seconds: 30\n";
        let err = loader(yaml).load().unwrap_err();
        let issue = |path: &str| {
            err.issues
                .iter()
                .find(|i| i.path == path)
                .unwrap_or_else(|| panic!("no issue at {path}: {err}"))
                .clone()
        };
        let env = "spring.cloud.stream.binders.aws.environment";
        assert_eq!(
            issue(&format!("{env}.regoin")).suggestion.as_deref(),
            Some("region")
        );
        assert_eq!(
            issue(&format!("{env}.spring.cloud.aws.endpoit"))
                .suggestion
                .as_deref(),
            Some("endpoint")
        );
        let binding = "spring.cloud.stream.sqs.bindings.b-in-0.consumer";
        assert_eq!(
            issue(&format!("{binding}.wait-time-second"))
                .suggestion
                .as_deref(),
            Some("wait-time-seconds")
        );
        let e = issue(&format!("{binding}.visibility-timeout")).message;
        assert!(e.contains("at least 1"), "{e}");
        let e = issue("spring.cloud.stream.sqs.default.consumer.wait-time-seconds").message;
        assert!(e.contains("at most 20"), "{e}");
    }

    #[test]
    fn spring_cloud_aws_keys_in_own_environment() {
        let env = BinderEnvironment::own(json!({
            "spring": { "cloud": { "aws": {
                "region": { "static": "eu-central-1" },
                "endpoint": "http://127.0.0.1:4566",
                "credentials": { "access-key": "a", "secret-key": "b" }
            } } }
        }));
        let s = BinderSettings::from_environment("aws", &env).unwrap();
        assert_eq!(s.region.as_deref(), Some("eu-central-1"));
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:4566"));
        assert!(s.credentials().is_some());
        let env = BinderEnvironment {
            own: json!({ "region": "own-region" }),
            inherited: json!({ "spring": { "cloud": { "aws": {
                "region": { "static": "app-region" }, "endpoint": "http://e",
                "credentials": { "access-key": "a" }
            } } } }),
        };
        let s = BinderSettings::from_environment("aws", &env).unwrap();
        assert_eq!(s.region.as_deref(), Some("own-region"));
        assert_eq!(s.endpoint.as_deref(), Some("http://e"));
        assert!(s.credentials().is_none(), "half credentials are ignored");
    }

    #[test]
    fn binder_section_of_the_application_is_read_and_own_environment_wins() {
        let env = BinderEnvironment {
            own: json!({ "name-prefix": "own-" }),
            inherited: json!({ "spring": { "cloud": { "stream": { "sqs": { "binder": {
                "region": "ap-south-1", "name-prefix": "app-",
                "consumer": { "visibility-timeout": 90, "pollers": 2 }
            } } } } } }),
        };
        let s = BinderSettings::from_environment("aws", &env).unwrap();
        assert_eq!(s.region.as_deref(), Some("ap-south-1"));
        assert_eq!(s.name_prefix, "own-");
        assert_eq!(s.consumer.visibility_timeout, 90);
        let c = s
            .consumer_for(&consumer(json!({ "visibility-timeout": 5 })))
            .unwrap();
        assert_eq!((c.visibility_timeout, c.pollers), (5, Some(2)));
        assert_eq!(c.wait_time_seconds, DEFAULT_WAIT_TIME_SECONDS);
        let with_keys = BinderSettings {
            access_key: Some(Secret::new("AKIAEXAMPLEKEY")),
            secret_key: Some(Secret::new("wJalrXUtnFEMI")),
            session_token: Some(Secret::new("tok")),
            ..Default::default()
        };
        let shown = format!("{with_keys:?} {:?}", with_keys.credentials());
        assert!(
            !shown.contains("EXAMPLEKEY") && !shown.contains("tok\""),
            "{shown}"
        );
    }

    #[test]
    fn half_credentials_rejected() {
        let env = BinderEnvironment::own(json!({ "access-key": "a" }));
        let e = BinderSettings::from_environment("aws", &env).unwrap_err();
        assert!(
            matches!(&e, BindError::Config { key, .. } if key == "spring.cloud.stream.binders.aws.environment.access-key"),
            "{e}"
        );
    }

    #[test]
    fn modes_and_bad_values() {
        let s = BinderSettings::default();
        let spec = |props| ProducerSpec {
            binding: "o".into(),
            binder_properties: props,
            ..Default::default()
        };
        let p = s
            .producer_for(&spec(json!({ "destination-mode": "sqs" })))
            .unwrap();
        assert_eq!(p.destination_mode, DestinationMode::Sqs);
        let e = s
            .producer_for(&spec(json!({ "destination-mode": "kinesis" })))
            .unwrap_err();
        assert!(
            matches!(&e, BindError::Config { key, .. } if key == "bindings.o.producer"),
            "{e}"
        );
        let env = BinderEnvironment::own(json!({ "auto-create": "maybe" }));
        let e = BinderSettings::from_environment("aws", &env).unwrap_err();
        assert!(
            matches!(&e, BindError::Config { key, .. } if key == "spring.cloud.stream.binders.aws.environment.auto-create"),
            "{e}"
        );
    }
}
