//! Building librdkafka client configurations from the binder configuration.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use stream_core::binder::BindError;

use crate::config::{redacted, KafkaBinderConfig};

/// A client configuration: `bootstrap.servers`, then the binder's `configuration`, then each
/// of `layers` in order (later wins).
pub fn client_config(
    cfg: &KafkaBinderConfig,
    layers: &[&BTreeMap<String, String>],
) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers);
    for (k, v) in &cfg.configuration {
        c.set(k, v);
    }
    for layer in layers {
        for (k, v) in *layer {
            c.set(k, v);
        }
    }
    c
}

/// The configuration with secrets redacted, for logs and errors.
pub fn describe(c: &ClientConfig) -> String {
    let map: BTreeMap<String, String> = c
        .config_map()
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    format!("{:?}", redacted(&map))
}

/// A creation failure as a typed, redacted configuration error.
pub fn create_error(what: &str, c: &ClientConfig, e: rdkafka::error::KafkaError) -> BindError {
    BindError::Config {
        key: "spring.cloud.stream.kafka.binder.configuration".into(),
        message: format!("cannot create the {what} with {}: {e}", describe(c)),
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::producer::BaseProducer;

    use super::*;
    use crate::config::KafkaBinderConfig;

    /// librdkafka is built with SSL, SASL (PLAIN/SCRAM) and zstd: a client with those settings
    /// is created (creation checks the configuration; nothing connects).
    #[test]
    fn security_and_compression_settings_are_supported_by_the_build() {
        let cfg = KafkaBinderConfig::default();
        let mut layer = BTreeMap::new();
        for (k, v) in [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "app"),
            ("sasl.password", "s3cret"),
            ("compression.type", "zstd"),
        ] {
            layer.insert(k.to_owned(), v.to_owned());
        }
        let c = client_config(&cfg, &[&layer]);
        if let Err(e) = c.create::<BaseProducer>() {
            panic!("{}", create_error("producer", &c, e));
        }
        assert!(!describe(&c).contains("s3cret"), "{}", describe(&c));
    }
}
