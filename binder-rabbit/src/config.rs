//! Connection settings from the binder environment (Spring Boot's `spring.rabbitmq.*` keys or a
//! `uri`), validated strictly where the user wrote them for this binder.

use std::fmt;
use std::str::FromStr;

use lapin::uri::{AMQPScheme, AMQPUri};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use stream_core::binder::{BindError, BinderEnvironment};
use stream_core::config::{redact_value, relaxed, Schema, SchemaNode, Secret};

/// The binder's own `environment` (`spring.cloud.stream.binders.<name>.environment`): the one
/// declaration of its keys, from which the loader's schema (validation, did-you-mean) derives.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct RabbitEnvironment {
    /// `uri`: `amqp://user:password@host:port/vhost` (or `amqps://`); wins over the rest.
    pub uri: Option<Secret>,
    /// `spring.*`: Spring Boot's `spring.rabbitmq.*`; other Boot keys are let through.
    pub spring: SpringSection,
}

/// `spring.*` inside a RabbitMQ binder's environment.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
#[schemars(extend("x-open" = true))]
pub struct SpringSection {
    /// `spring.rabbitmq.*`.
    pub rabbitmq: RabbitBootProperties,
}

/// Spring Boot's `spring.rabbitmq.*` connection keys (`RabbitProperties`).
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct RabbitBootProperties {
    /// `host` (default `localhost`).
    pub host: Option<String>,
    /// `port` (default 5672, 5671 with SSL).
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// `username` (default `guest`).
    pub username: Option<String>,
    /// `password` (default `guest`).
    pub password: Option<Secret>,
    /// `virtual-host` (default `/`).
    pub virtual_host: Option<String>,
    /// `addresses`: `host[:port]` or URIs, comma-separated; win over `host`/`port`.
    pub addresses: Option<Vec<String>>,
    /// `ssl.enabled`.
    pub ssl: RabbitSsl,
    /// Spring Boot keys accepted and not used here (connection tuning, listener and template
    /// settings of Spring's own containers).
    #[serde(flatten)]
    pub unused: UnusedBootProperties,
}

/// `spring.rabbitmq.ssl.*`.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
#[schemars(extend("x-open" = true))]
pub struct RabbitSsl {
    /// `enabled`: connect with `amqps`.
    pub enabled: bool,
}

stream_core::unused_keys! {
    /// Spring Boot `spring.rabbitmq.*` keys real configurations set that this binder does not use.
    pub struct UnusedBootProperties {
        connection_timeout, requested_heartbeat, requested_channel_max, publisher_confirm_type,
        publisher_confirms, publisher_returns, channel_rpc_timeout, address_shuffle_mode, dynamic,
        listener, template, cache, stream
    }
}

/// The schema of the binder's own `environment`.
pub fn environment_schema() -> Schema {
    Schema::new(SchemaNode::of::<RabbitEnvironment>())
}

/// Where and how to connect: one or more broker addresses tried in order.
#[derive(Clone)]
pub struct ConnectionSettings {
    /// Candidate brokers, tried in order on every (re)connect.
    pub uris: Vec<AMQPUri>,
}

impl ConnectionSettings {
    /// The addresses as they may be logged (`amqp://guest:****@127.0.0.1:5672/%2f`).
    pub fn display(&self) -> String {
        self.uris
            .iter()
            .map(display_uri)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSettings")
            .field("uris", &self.display())
            .finish()
    }
}

/// An AMQP URI with its password hidden.
pub fn display_uri(u: &AMQPUri) -> String {
    let scheme = match u.scheme {
        AMQPScheme::AMQP => "amqp",
        AMQPScheme::AMQPS => "amqps",
    };
    let vhost = if u.vhost == "/" {
        "%2f".to_owned()
    } else {
        u.vhost.clone()
    };
    format!(
        "{scheme}://{}:****@{}:{}/{vhost}",
        u.authority.userinfo.username, u.authority.host, u.authority.port
    )
}

/// Looks a dotted kebab-case path up in `root` with relaxed key matching at every level.
fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(root, |node, part| {
        let obj = node.as_object()?;
        let want = relaxed(part);
        obj.iter().find(|(k, _)| relaxed(k) == want).map(|(_, v)| v)
    })
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Validates the binder's own environment against [`environment_schema`] (the loader has
/// done so already for configurations it read; this covers environments built in code).
pub fn validate_own(name: &str, own: &Value) -> Result<(), BindError> {
    if own.is_null() {
        return Ok(());
    }
    let base = format!("spring.cloud.stream.binders.{name}.environment");
    environment_schema()
        .check(own, &base)
        .map(drop)
        .map_err(|e| {
            let first = e.issues.into_iter().next().unwrap_or_default();
            BindError::Config {
                key: first.path,
                message: first.message,
            }
        })
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
        _ => "a scalar",
    }
}

/// Reads the connection settings: `uri`, else `spring.rabbitmq.addresses`, else
/// `spring.rabbitmq.{host,port}`; credentials and virtual host from `spring.rabbitmq.*` (defaults
/// `guest`/`guest`, `/`). Own keys are validated strictly, inherited ones leniently.
pub fn connection_settings(
    name: &str,
    env: &BinderEnvironment,
) -> Result<ConnectionSettings, BindError> {
    validate_own(name, &env.own)?;
    let get = |path: &str| -> Option<&Value> {
        lookup(&env.own, path).or_else(|| lookup(&env.inherited, path))
    };
    let key = |path: &str| {
        if lookup(&env.own, path).is_some() {
            format!("spring.cloud.stream.binders.{name}.environment.{path}")
        } else {
            path.to_owned()
        }
    };
    let text = |path: &str| -> Result<Option<String>, BindError> {
        match get(path) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => as_text(v).map(Some).ok_or_else(|| BindError::Config {
                key: key(path),
                message: format!("expected a string, found {}", kind_of(v)),
            }),
        }
    };
    let bad_uri = |path: &str, raw: &str| BindError::Config {
        key: key(path),
        message: format!(
            "not a valid amqp:// or amqps:// URI: `{}`",
            redact_value(path, raw)
        ),
    };

    // An explicit `uri` wins (only the binder's own or the top level of the environment).
    if let Some(raw) = text("uri")? {
        let uri = AMQPUri::from_str(raw.trim()).map_err(|_| bad_uri("uri", &raw))?;
        return Ok(ConnectionSettings { uris: vec![uri] });
    }

    let ssl = match text("spring.rabbitmq.ssl.enabled")? {
        None => false,
        Some(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(BindError::Config {
                    key: key("spring.rabbitmq.ssl.enabled"),
                    message: format!("expected true or false, found `{s}`"),
                })
            }
        },
    };
    let scheme = if ssl {
        AMQPScheme::AMQPS
    } else {
        AMQPScheme::AMQP
    };
    let username = text("spring.rabbitmq.username")?.unwrap_or_else(|| "guest".into());
    let password = text("spring.rabbitmq.password")?.unwrap_or_else(|| "guest".into());
    let vhost = text("spring.rabbitmq.virtual-host")?.unwrap_or_else(|| "/".into());
    let port = match text("spring.rabbitmq.port")? {
        None => None,
        Some(p) => Some(p.trim().parse::<u16>().map_err(|_| BindError::Config {
            key: key("spring.rabbitmq.port"),
            message: format!("expected a port number (1-65535), found `{p}`"),
        })?),
    };
    let base = |host: &str, port: Option<u16>| {
        let mut authority = AMQPUri::default().authority;
        authority.host = host.to_owned();
        authority.port = port.unwrap_or_else(|| scheme.default_port());
        authority.userinfo.username = username.clone();
        authority.userinfo.password = password.clone();
        AMQPUri {
            scheme: scheme.clone(),
            authority,
            vhost: vhost.clone(),
            ..Default::default()
        }
    };

    let mut uris = Vec::new();
    if let Some(list) = addresses(get("spring.rabbitmq.addresses")) {
        for entry in list {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            if entry.contains("://") {
                let u = AMQPUri::from_str(entry)
                    .map_err(|_| bad_uri("spring.rabbitmq.addresses", entry))?;
                uris.push(u);
            } else {
                let (host, port) = match entry.rsplit_once(':') {
                    Some((h, p)) => {
                        let p = p.parse::<u16>().map_err(|_| BindError::Config {
                            key: key("spring.rabbitmq.addresses"),
                            message: format!("expected host[:port], found `{entry}`"),
                        })?;
                        (h, Some(p))
                    }
                    None => (entry, port),
                };
                uris.push(base(host, port));
            }
        }
    }
    if uris.is_empty() {
        let host = text("spring.rabbitmq.host")?.unwrap_or_else(|| "localhost".into());
        uris.push(base(host.trim(), port));
    }
    Ok(ConnectionSettings { uris })
}

fn addresses(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::String(s) => Some(s.split(',').map(str::to_owned).collect()),
        Value::Array(a) => Some(a.iter().filter_map(as_text).collect()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uri_wins_and_is_redacted() {
        let env = BinderEnvironment::own(json!({"uri": "amqp://u:secret@h:1234/v"}));
        let s = connection_settings("r", &env).unwrap();
        assert_eq!(s.uris[0].authority.port, 1234);
        assert_eq!(s.uris[0].vhost, "v");
        assert!(!s.display().contains("secret"));
        assert!(!format!("{s:?}").contains("secret"));
    }

    #[test]
    fn spring_keys_relaxed() {
        let env = BinderEnvironment::own(json!({"spring": {"rabbitmq": {
            "host": "h", "port": 5673, "username": "u", "password": "p", "virtualHost": "vh"}}}));
        let s = connection_settings("r", &env).unwrap();
        let u = &s.uris[0];
        assert_eq!(
            (
                u.authority.host.as_str(),
                u.authority.port,
                u.vhost.as_str()
            ),
            ("h", 5673, "vh")
        );
        assert_eq!(u.authority.userinfo.password, "p");
    }

    #[test]
    fn addresses_and_ssl() {
        let env = BinderEnvironment::own(json!({"spring": {"rabbitmq": {
            "addresses": "a:1,b", "ssl": {"enabled": true}}}}));
        let s = connection_settings("r", &env).unwrap();
        assert_eq!(s.uris.len(), 2);
        assert_eq!(s.uris[0].authority.port, 1);
        assert_eq!(s.uris[1].authority.port, 5671);
        assert_eq!(s.uris[1].scheme, AMQPScheme::AMQPS);
    }

    #[test]
    fn unknown_own_key_suggests() {
        let env = BinderEnvironment::own(json!({"spring": {"rabbitmq": {"hots": "h"}}}));
        let e = connection_settings("r", &env).unwrap_err().to_string();
        assert!(
            e.contains("environment.spring.rabbitmq.hots") && e.contains("did you mean `host`"),
            "{e}"
        );
    }

    #[test]
    fn inherited_is_lenient() {
        let env = BinderEnvironment {
            own: json!({}),
            inherited: json!({"spring": {"rabbitmq": {"host": "ih", "whatever": 1}}, "x": 2}),
        };
        let s = connection_settings("r", &env).unwrap();
        assert_eq!(s.uris[0].authority.host, "ih");
    }

    #[test]
    fn bad_port_and_bad_uri_are_errors_without_secrets() {
        let env = BinderEnvironment::own(json!({"spring": {"rabbitmq": {"port": "x"}}}));
        assert!(connection_settings("r", &env).is_err());
        let env = BinderEnvironment::own(json!({"uri": "http://u:secret@h"}));
        let e = connection_settings("r", &env).unwrap_err().to_string();
        assert!(!e.contains("secret"), "{e}");
    }
}
