//! Binder and binding settings: parsing of the binder `environment`, of
//! `spring.cloud.stream.sqs.binder.*` and of the per-binding `consumer`/`producer` sections, and
//! the schema that makes unknown keys an error with a did-you-mean.

use std::fmt;
use std::time::Duration;

use serde_json::Value;
use stream_core::binder::{BindError, BinderEnvironment};
use stream_core::config::schema::{Schema, SchemaNode};

/// Whether a binding's destination is an SNS topic (fan-out) or an SQS queue (work queue).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DestinationMode {
    /// Destination = SNS topic; each group = an SQS queue `<destination>-<group>` subscribed with
    /// raw message delivery.
    #[default]
    Sns,
    /// Destination = an SQS queue (point-to-point; groups share the queue).
    Sqs,
}

impl DestinationMode {
    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sns" | "topic" => Some(DestinationMode::Sns),
            "sqs" | "queue" => Some(DestinationMode::Sqs),
            _ => None,
        }
    }
}

/// Long-poll wait by default (seconds, SQS maximum).
pub const DEFAULT_WAIT_TIME_SECONDS: u32 = 20;
/// Visibility timeout of received messages by default (seconds); extended while a handler runs.
pub const DEFAULT_VISIBILITY_TIMEOUT_SECONDS: u32 = 30;

/// Static credentials (tests, or when no default chain is available). The secret is never
/// printed.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    /// The access key id.
    pub access_key: String,
    /// The secret access key.
    pub secret_key: String,
    /// The session token, if any.
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field(
                "access_key",
                &format!(
                    "{}******",
                    self.access_key.chars().take(4).collect::<String>()
                ),
            )
            .field("secret_key", &"******")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "******"),
            )
            .finish()
    }
}

/// Binder-level settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinderSettings {
    /// AWS region (`us-east-1` when nothing sets one).
    pub region: Option<String>,
    /// Endpoint override (moto, LocalStack).
    pub endpoint: Option<String>,
    /// Prefix of every topic and queue name.
    pub name_prefix: String,
    /// Whether topics, queues, subscriptions, policies and DLQs are created (idempotently).
    pub auto_create: bool,
    /// Static credentials; `None` = the default AWS credential chain.
    pub credentials: Option<StaticCredentials>,
    /// Defaults for every consumer binding.
    pub consumer: ConsumerSettings,
    /// Defaults for every producer binding.
    pub producer: ProducerSettings,
}

impl Default for BinderSettings {
    fn default() -> Self {
        BinderSettings {
            region: None,
            endpoint: None,
            name_prefix: String::new(),
            auto_create: true,
            credentials: None,
            consumer: ConsumerSettings::default(),
            producer: ProducerSettings::default(),
        }
    }
}

/// Per-consumer-binding settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerSettings {
    /// SNS topic or SQS queue.
    pub mode: DestinationMode,
    /// Long-poll wait, 0..=20 s.
    pub wait_time_seconds: u32,
    /// Visibility timeout of received messages, seconds.
    pub visibility_timeout_seconds: u32,
    /// Messages per ReceiveMessage, 1..=10.
    pub max_number_of_messages: u32,
    /// Concurrent ReceiveMessage loops (`None` = 1, which keeps a standard queue's order).
    pub pollers: Option<u32>,
    /// Received, unsettled messages held at most (`None` = `max(concurrency, 1) * 2`, at least 10).
    pub prefetch: Option<u32>,
    /// Use FIFO topics/queues even when not partitioned.
    pub fifo: bool,
    /// The redrive policy's `maxReceiveCount` (`None` = `max(50, 5 * max-attempts)`).
    pub max_receive_count: Option<u32>,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings {
            mode: DestinationMode::Sns,
            wait_time_seconds: DEFAULT_WAIT_TIME_SECONDS,
            visibility_timeout_seconds: DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
            max_number_of_messages: 10,
            pollers: None,
            prefetch: None,
            fifo: false,
            max_receive_count: None,
        }
    }
}

impl ConsumerSettings {
    /// The long-poll wait as a duration.
    pub fn wait_time(&self) -> Duration {
        Duration::from_secs(u64::from(self.wait_time_seconds))
    }
}

/// Per-producer-binding settings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ProducerSettings {
    /// SNS topic or SQS queue.
    pub mode: DestinationMode,
    /// Use a FIFO topic/queue even when not partitioned.
    pub fifo: bool,
}

const BINDER_KEYS: &[&str] = &[
    "region",
    "endpoint",
    "name-prefix",
    "auto-create",
    "access-key",
    "secret-key",
    "session-token",
];
const CONSUMER_KEYS: &[&str] = &[
    "destination-mode",
    "wait-time-seconds",
    "visibility-timeout",
    "max-number-of-messages",
    "pollers",
    "prefetch",
    "fifo",
    "max-receive-count",
];
const PRODUCER_KEYS: &[&str] = &["destination-mode", "fifo"];

fn consumer_node() -> SchemaNode {
    SchemaNode::object([
        ("destination-mode", SchemaNode::string()),
        ("wait-time-seconds", SchemaNode::uint().at_least(0.0)),
        ("visibility-timeout", SchemaNode::uint().at_least(1.0)),
        ("max-number-of-messages", SchemaNode::uint().at_least(1.0)),
        ("pollers", SchemaNode::uint().at_least(1.0)),
        ("prefetch", SchemaNode::uint().at_least(1.0)),
        ("fifo", SchemaNode::bool()),
        ("max-receive-count", SchemaNode::uint().at_least(1.0)),
    ])
}

fn producer_node() -> SchemaNode {
    SchemaNode::object([
        ("destination-mode", SchemaNode::string()),
        ("fifo", SchemaNode::bool()),
    ])
}

/// The schema of `spring.cloud.stream.sqs.*`: `binder.*` (the binder keys),
/// `default.{consumer,producer}.*` and `bindings.<name>.{consumer,producer}.*`.
pub fn schema() -> Schema {
    let mut binder = vec![
        ("region", SchemaNode::string()),
        ("endpoint", SchemaNode::string()),
        ("name-prefix", SchemaNode::string()),
        ("auto-create", SchemaNode::bool()),
        ("access-key", SchemaNode::string()),
        ("secret-key", SchemaNode::string()),
        ("session-token", SchemaNode::string()),
    ];
    binder.push(("consumer", consumer_node()));
    binder.push(("producer", producer_node()));
    Schema::binder_section(SchemaNode::object(binder), consumer_node(), producer_node())
}

/// Normalises a key: kebab-case, camelCase and snake_case are the same key.
fn norm(key: &str) -> String {
    let mut out = String::new();
    for (i, c) in key.chars().enumerate() {
        if c == '_' {
            out.push('-');
        } else if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('-') {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn unknown(path: &str, key: &str, known: &[&str]) -> BindError {
    let hint = stream_core::config::suggest(key, known.iter().copied())
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    BindError::Config {
        key: format!("{path}.{key}"),
        message: format!("unknown key{hint} (known: {})", known.join(", ")),
    }
}

fn as_object<'a>(
    path: &str,
    v: &'a Value,
) -> Result<Option<&'a serde_json::Map<String, Value>>, BindError> {
    match v {
        Value::Null => Ok(None),
        Value::Object(o) => Ok(Some(o)),
        other => Err(BindError::Config {
            key: path.to_owned(),
            message: format!("expected an object, found {}", kind_of(other)),
        }),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn string(path: &str, v: &Value) -> Result<String, BindError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(BindError::Config {
            key: path.to_owned(),
            message: format!("expected a string, found {}", kind_of(other)),
        }),
    }
}

fn boolean(path: &str, v: &Value) -> Result<bool, BindError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(BindError::Config {
            key: path.to_owned(),
            message: "expected a boolean".into(),
        }),
    }
}

fn uint(path: &str, v: &Value, min: u32, max: u32) -> Result<u32, BindError> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n >= u64::from(min) && n <= u64::from(max) => Ok(n as u32),
        _ => Err(BindError::Config {
            key: path.to_owned(),
            message: format!("expected an integer from {min} to {max}, found {v}"),
        }),
    }
}

impl ConsumerSettings {
    /// Applies the keys of `section` (an object at `path`) over `self`.
    pub fn apply(&mut self, path: &str, section: &Value) -> Result<(), BindError> {
        let Some(obj) = as_object(path, section)? else {
            return Ok(());
        };
        for (k, v) in obj {
            let p = format!("{path}.{k}");
            match norm(k).as_str() {
                "destination-mode" => {
                    let s = string(&p, v)?;
                    self.mode = DestinationMode::parse(&s).ok_or_else(|| BindError::Config {
                        key: p.clone(),
                        message: format!("expected `sns` or `sqs`, found `{s}`"),
                    })?;
                }
                "wait-time-seconds" => self.wait_time_seconds = uint(&p, v, 0, 20)?,
                "visibility-timeout" => self.visibility_timeout_seconds = uint(&p, v, 1, 43_200)?,
                "max-number-of-messages" => self.max_number_of_messages = uint(&p, v, 1, 10)?,
                "pollers" => self.pollers = Some(uint(&p, v, 1, 64)?),
                "prefetch" => self.prefetch = Some(uint(&p, v, 1, 10_000)?),
                "fifo" => self.fifo = boolean(&p, v)?,
                "max-receive-count" => self.max_receive_count = Some(uint(&p, v, 1, 1000)?),
                other => return Err(unknown(path, other, CONSUMER_KEYS)),
            }
        }
        Ok(())
    }
}

impl ProducerSettings {
    /// Applies the keys of `section` (an object at `path`) over `self`.
    pub fn apply(&mut self, path: &str, section: &Value) -> Result<(), BindError> {
        let Some(obj) = as_object(path, section)? else {
            return Ok(());
        };
        for (k, v) in obj {
            let p = format!("{path}.{k}");
            match norm(k).as_str() {
                "destination-mode" => {
                    let s = string(&p, v)?;
                    self.mode = DestinationMode::parse(&s).ok_or_else(|| BindError::Config {
                        key: p.clone(),
                        message: format!("expected `sns` or `sqs`, found `{s}`"),
                    })?;
                }
                "fifo" => self.fifo = boolean(&p, v)?,
                other => return Err(unknown(path, other, PRODUCER_KEYS)),
            }
        }
        Ok(())
    }
}

impl BinderSettings {
    /// Reads the settings of binder `name`: `spring.cloud.stream.sqs.binder.*` from the
    /// inherited properties first, then the binder's own `environment` (which wins, and is
    /// validated strictly). `spring.cloud.aws.region.static`, `spring.cloud.aws.endpoint` and
    /// `spring.cloud.aws.credentials.{access-key,secret-key}` (Spring Cloud AWS) are honoured
    /// as fallbacks.
    pub fn from_environment(name: &str, env: &BinderEnvironment) -> Result<Self, BindError> {
        let mut s = BinderSettings::default();
        let own_path = format!("spring.cloud.stream.binders.{name}.environment");
        // Spring Cloud AWS keys: from the inherited properties (lenient: foreign keys are not
        // ours to validate), then from the binder's own environment (strict).
        s.apply_spring_aws(&env.inherited, None)?;
        let mut own = env.own.clone();
        if let Value::Object(o) = &mut own {
            if let Some(spring) = o.remove("spring") {
                let mut wrapped = serde_json::Map::new();
                wrapped.insert("spring".to_owned(), spring);
                s.apply_spring_aws(&Value::Object(wrapped), Some(&own_path))?;
            }
        }
        let lookup = |path: &str| -> Option<&Value> {
            path.split('.')
                .try_fold(&env.inherited, |node, part| node.get(part))
        };
        if let Some(section) = lookup("spring.cloud.stream.sqs.binder") {
            s.apply("spring.cloud.stream.sqs.binder", section)?;
        }
        s.apply(&own_path, &own)?;
        Ok(s)
    }

    /// Reads `spring.cloud.aws.{region.static, endpoint, credentials.access-key,
    /// credentials.secret-key}` from `root`. With `strict_path`, any other key below `spring`
    /// is an error reported under that path.
    fn apply_spring_aws(
        &mut self,
        root: &Value,
        strict_path: Option<&str>,
    ) -> Result<(), BindError> {
        const KNOWN: &[&str] = &[
            "spring.cloud.aws.region.static",
            "spring.cloud.aws.endpoint",
            "spring.cloud.aws.credentials.access-key",
            "spring.cloud.aws.credentials.secret-key",
        ];
        fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
            match v {
                Value::Object(o) => {
                    for (k, child) in o {
                        let p = if prefix.is_empty() {
                            norm(k)
                        } else {
                            format!("{prefix}.{}", norm(k))
                        };
                        flatten(&p, child, out);
                    }
                }
                other => out.push((prefix.to_owned(), other.clone())),
            }
        }
        let mut flat = Vec::new();
        match strict_path {
            Some(_) => flatten("", root, &mut flat),
            None => {
                if let Some(aws) = ["spring", "cloud", "aws"]
                    .iter()
                    .try_fold(root, |node, part| node.get(part))
                {
                    flatten("spring.cloud.aws", aws, &mut flat);
                }
            }
        }
        let mut access = None;
        let mut secret = None;
        for (key, v) in flat {
            let p = match strict_path {
                Some(base) => format!("{base}.{key}"),
                None => key.clone(),
            };
            match key.as_str() {
                "spring.cloud.aws.region.static" => self.region = Some(string(&p, &v)?),
                "spring.cloud.aws.endpoint" => self.endpoint = Some(string(&p, &v)?),
                "spring.cloud.aws.credentials.access-key" => access = Some(string(&p, &v)?),
                "spring.cloud.aws.credentials.secret-key" => secret = Some(string(&p, &v)?),
                _ if strict_path.is_some() => {
                    let hint = stream_core::config::suggest(&key, KNOWN.iter().copied())
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    return Err(BindError::Config {
                        key: p,
                        message: format!("unknown key{hint}"),
                    });
                }
                _ => {}
            }
        }
        if let (Some(a), Some(k)) = (access, secret) {
            self.credentials = Some(StaticCredentials {
                access_key: a,
                secret_key: k,
                session_token: None,
            });
        }
        Ok(())
    }

    fn apply(&mut self, path: &str, section: &Value) -> Result<(), BindError> {
        let Some(obj) = as_object(path, section)? else {
            return Ok(());
        };
        let mut access = None;
        let mut secret = None;
        let mut token = None;
        let mut all: Vec<&str> = BINDER_KEYS.to_vec();
        all.extend(["consumer", "producer"]);
        for (k, v) in obj {
            let p = format!("{path}.{k}");
            match norm(k).as_str() {
                "region" => self.region = Some(string(&p, v)?),
                "endpoint" => self.endpoint = Some(string(&p, v)?),
                "name-prefix" => self.name_prefix = string(&p, v)?,
                "auto-create" => self.auto_create = boolean(&p, v)?,
                "access-key" => access = Some(string(&p, v)?),
                "secret-key" => secret = Some(string(&p, v)?),
                "session-token" => token = Some(string(&p, v)?),
                "consumer" => self.consumer.apply(&p, v)?,
                "producer" => self.producer.apply(&p, v)?,
                other => return Err(unknown(path, other, &all)),
            }
        }
        match (access, secret) {
            (Some(a), Some(s)) => {
                self.credentials = Some(StaticCredentials {
                    access_key: a,
                    secret_key: s,
                    session_token: token,
                })
            }
            (None, None) => {}
            _ => {
                return Err(BindError::Config {
                    key: format!("{path}.access-key"),
                    message: "`access-key` and `secret-key` must be set together".into(),
                })
            }
        }
        Ok(())
    }

    /// The effective settings of a consumer binding (binder defaults, then the binding's own
    /// `spring.cloud.stream.sqs.bindings.<binding>.consumer` keys).
    pub fn consumer_for(
        &self,
        binding: &str,
        props: &Value,
    ) -> Result<ConsumerSettings, BindError> {
        let mut c = self.consumer.clone();
        c.apply(
            &format!("spring.cloud.stream.sqs.bindings.{binding}.consumer"),
            props,
        )?;
        Ok(c)
    }

    /// The effective settings of a producer binding.
    pub fn producer_for(
        &self,
        binding: &str,
        props: &Value,
    ) -> Result<ProducerSettings, BindError> {
        let mut p = self.producer.clone();
        p.apply(
            &format!("spring.cloud.stream.sqs.bindings.{binding}.producer"),
            props,
        )?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn environment_keys_parse_and_secrets_are_hidden() {
        let env = BinderEnvironment::own(json!({
            "region": "eu-west-1", "endpoint": "http://127.0.0.1:4566", "namePrefix": "dev-",
            "auto_create": "false", "access-key": "AKIA", "secret-key": "s3cr3t",
            "consumer": { "wait-time-seconds": 1 }
        }));
        let s = BinderSettings::from_environment("aws", &env).unwrap();
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.name_prefix, "dev-");
        assert!(!s.auto_create);
        assert_eq!(s.consumer.wait_time_seconds, 1);
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }

    #[test]
    fn unknown_key_suggests() {
        let env = BinderEnvironment::own(json!({ "regoin": "x" }));
        let e = BinderSettings::from_environment("aws", &env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("regoin") && e.contains("did you mean `region`"),
            "{e}"
        );
        let s = BinderSettings::default();
        let e = s
            .consumer_for("b-in-0", &json!({ "wait-time-second": 3 }))
            .unwrap_err()
            .to_string();
        assert!(e.contains("wait-time-seconds"), "{e}");
        let e = s
            .consumer_for("b-in-0", &json!({ "wait-time-seconds": 30 }))
            .unwrap_err()
            .to_string();
        assert!(e.contains("0 to 20"), "{e}");
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
        assert!(s.credentials.is_some());
        let env = BinderEnvironment::own(json!({
            "spring": { "cloud": { "aws": { "endpoit": "x" } } }
        }));
        let e = BinderSettings::from_environment("aws", &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("spring.cloud.aws.endpoint"), "{e}");
    }

    #[test]
    fn binder_section_of_the_application_is_read_and_own_environment_wins() {
        let env = BinderEnvironment {
            own: json!({ "name-prefix": "own-" }),
            inherited: json!({ "spring": { "cloud": { "stream": { "sqs": { "binder": {
                "region": "ap-south-1", "name-prefix": "app-",
                "consumer": { "visibility-timeout": 90 }
            } } } } } }),
        };
        let s = BinderSettings::from_environment("aws", &env).unwrap();
        assert_eq!(s.region.as_deref(), Some("ap-south-1"));
        assert_eq!(s.name_prefix, "own-");
        assert_eq!(s.consumer.visibility_timeout_seconds, 90);
        let c = s
            .consumer_for("x-in-0", &json!({ "visibility-timeout": 5 }))
            .unwrap();
        assert_eq!(c.visibility_timeout_seconds, 5);
        assert!(!format!(
            "{:?}",
            BinderSettings {
                credentials: Some(StaticCredentials {
                    access_key: "AKIAEXAMPLEKEY".into(),
                    secret_key: "wJalrXUtnFEMI".into(),
                    session_token: Some("tok".into()),
                }),
                ..Default::default()
            }
        )
        .contains("EXAMPLEKEY"));
    }

    #[test]
    fn half_credentials_rejected() {
        let env = BinderEnvironment::own(json!({ "access-key": "a" }));
        assert!(BinderSettings::from_environment("aws", &env).is_err());
    }

    #[test]
    fn modes() {
        let s = BinderSettings::default();
        let p = s
            .producer_for("o", &json!({ "destinationMode": "sqs" }))
            .unwrap();
        assert_eq!(p.mode, DestinationMode::Sqs);
        assert!(s
            .producer_for("o", &json!({ "destination-mode": "kinesis" }))
            .is_err());
    }
}
