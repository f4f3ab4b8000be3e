//! Connection settings from the binder environment (Spring Boot's `spring.rabbitmq.*` keys or a
//! `uri`), validated strictly where the user wrote them for this binder.

use std::fmt;
use std::str::FromStr;

use lapin::uri::{AMQPScheme, AMQPUri};
use schemars::JsonSchema;
use serde::Deserialize;
use stream_core::binder::{read_settings, BindError, BinderEnvironment};
use stream_core::config::{deep_merge, get_path, redact_value, Schema, SchemaNode, Secret};

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

/// Reads the connection settings: `uri`, else `spring.rabbitmq.addresses`, else
/// `spring.rabbitmq.{host,port}`; credentials and virtual host from `spring.rabbitmq.*` (defaults
/// `guest`/`guest`, `/`). The binder's own keys win over the application's (inherited) ones;
/// own keys are validated strictly, inherited ones leniently.
pub fn connection_settings(
    name: &str,
    env: &BinderEnvironment,
) -> Result<ConnectionSettings, BindError> {
    let at = format!("spring.cloud.stream.binders.{name}.environment");
    let own = env.own_checked(&environment_schema(), name)?;
    let key = |path: &str| match get_path(&own, &path.split('.').collect::<Vec<_>>()) {
        Some(_) => format!("{at}.{path}"),
        None => path.to_owned(),
    };
    let bad = |path: &str, expected: &str, raw: &str| BindError::Config {
        key: key(path),
        message: format!("expected {expected}, found `{}`", redact_value(path, raw)),
    };
    const URI: &str = "an amqp:// or amqps:// URI";
    let mut boot = env.inherited_checked::<RabbitBootProperties>(&["spring", "rabbitmq"])?;
    if let Some(own_boot) = get_path(&own, &["spring", "rabbitmq"]) {
        deep_merge(&mut boot, own_boot);
    }
    let own: RabbitEnvironment = read_settings(own.clone(), &at)?;
    let boot: RabbitBootProperties = read_settings(boot, "spring.rabbitmq")?;
    // An explicit `uri` wins.
    if let Some(raw) = own.uri.as_ref().map(Secret::expose) {
        let uri = AMQPUri::from_str(raw.trim()).map_err(|_| bad("uri", URI, raw))?;
        return Ok(ConnectionSettings { uris: vec![uri] });
    }
    let scheme = match boot.ssl.enabled {
        true => AMQPScheme::AMQPS,
        false => AMQPScheme::AMQP,
    };
    let base = |host: &str, port: Option<u16>| {
        let mut authority = AMQPUri::default().authority;
        authority.host = host.to_owned();
        authority.port = port.unwrap_or_else(|| scheme.default_port());
        authority.userinfo.username = boot.username.clone().unwrap_or_else(|| "guest".into());
        authority.userinfo.password = boot
            .password
            .as_ref()
            .map_or("guest", Secret::expose)
            .into();
        AMQPUri {
            scheme: scheme.clone(),
            authority,
            vhost: boot.virtual_host.clone().unwrap_or_else(|| "/".into()),
            ..Default::default()
        }
    };
    let mut uris = Vec::new();
    for entry in boot.addresses.iter().flatten().map(|e| e.trim()) {
        let path = "spring.rabbitmq.addresses";
        let uri = match entry.rsplit_once(':') {
            _ if entry.contains("://") => {
                AMQPUri::from_str(entry).map_err(|_| bad(path, URI, entry))?
            }
            Some((host, port)) => {
                let port = port.parse().map_err(|_| bad(path, "host[:port]", entry))?;
                base(host, Some(port))
            }
            None if entry.is_empty() => continue,
            None => base(entry, boot.port),
        };
        uris.push(uri);
    }
    if uris.is_empty() {
        uris.push(base(
            boot.host.as_deref().unwrap_or("localhost").trim(),
            boot.port,
        ));
    }
    Ok(ConnectionSettings { uris })
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
