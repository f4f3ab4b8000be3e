//! The plan as an AsyncAPI 3.0 document (`cloud-stream asyncapi`): a server per binder (where
//! it connects, never credentials), a channel per destination and per dead-letter queue, and an
//! operation per binding (`receive` for inputs, `send` for outputs) plus one `send` per DLQ.
//! Channel and operation ids are the names with anything outside `[A-Za-z0-9_.-]` replaced,
//! made unique.
//!
//! Payload schemas come from the application (opt-in, `StreamAppBuilder::payload_schema`,
//! served by the running app and the actuator's `/actuator/asyncapi`): `cloud-stream asyncapi`
//! reads configuration only and cannot see the handlers' types.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::Plan;
use crate::binder::{BinderEnvironment, BinderRegistry, ServerAddress};
use crate::config::StreamConfig;

/// What the document is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsyncApiInfo {
    /// The application's name (`info.title`).
    pub title: String,
    /// Its version (`info.version`).
    pub version: String,
}

/// JSON schemas of message payloads, by binding name (what `StreamAppBuilder::payload_schema`
/// registered).
pub type PayloadSchemas = BTreeMap<String, Value>;

impl AsyncApiInfo {
    /// Titled `spring.application.name` (else `fallback`), versioned `info.app.version` (else
    /// `0.0.0`), read from the application's property tree.
    pub fn from_properties(root: &Value, fallback: &str) -> Self {
        let text = |path: &str| {
            path.split('.')
                .try_fold(root, |v, k| v.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        AsyncApiInfo {
            title: text("spring.application.name").unwrap_or_else(|| fallback.to_owned()),
            version: text("info.app.version").unwrap_or_else(|| "0.0.0".to_owned()),
        }
    }
}

/// The JSON schema of `T` as an AsyncAPI payload: draft-07 (AsyncAPI's schema dialect), with
/// every subschema inline (the document has no `$defs` for references to point to).
pub fn payload_schema<T: schemars::JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::draft07()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    if let Some(o) = schema.as_object_mut() {
        o.remove("$schema");
    }
    schema
}

/// Ids already given out, so that two names that sanitise alike get distinct ids.
#[derive(Default)]
struct Ids(BTreeMap<String, String>);

impl Ids {
    fn of(&mut self, name: &str) -> String {
        if let Some(id) = self.0.get(name) {
            return id.clone();
        }
        let base: String = name
            .chars()
            .map(|c| match c {
                'A'..='Z' | 'a'..='z' | '0'..='9' | '_' | '.' | '-' => c,
                _ => '_',
            })
            .collect();
        let mut id = base.clone();
        let mut n = 1;
        while self.0.values().any(|v| *v == id) {
            n += 1;
            id = format!("{base}-{n}");
        }
        self.0.insert(name.to_owned(), id.clone());
        id
    }
}

/// The document's channels and operations as they are built.
#[derive(Default)]
struct Doc {
    channels: Map<String, Value>,
    operations: Map<String, Value>,
    channel_ids: Ids,
    operation_ids: Ids,
    server_ids: Ids,
}

impl Doc {
    /// The channel for `address` on `binder` (created on first use) with a message of
    /// `content_type`; returns the references to the channel and to its message.
    fn channel(
        &mut self,
        binder: &str,
        address: &str,
        content_type: &str,
        payload: Option<&Value>,
    ) -> (Value, Value) {
        let id = self.channel_ids.of(&format!("{binder}/{address}"));
        let title = payload.and_then(|p| p.get("title")).and_then(Value::as_str);
        let message = match title {
            Some(t) => self.channel_ids.of(&format!("{t} {content_type}")),
            None => self.channel_ids.of(&format!("message {content_type}")),
        };
        let server = self.server_ids.of(binder);
        let channel = self.channels.entry(id.clone()).or_insert_with(|| {
            json!({
                "address": address,
                "servers": [{"$ref": format!("#/servers/{server}")}],
                "messages": {},
            })
        });
        let mut m = json!({ "contentType": content_type });
        if let Some(p) = payload {
            m["payload"] = p.clone();
        }
        channel["messages"][&message] = m;
        (
            json!({"$ref": format!("#/channels/{id}")}),
            json!({"$ref": format!("#/channels/{id}/messages/{message}")}),
        )
    }

    fn operation(&mut self, name: &str, op: Value) {
        let id = self.operation_ids.of(name);
        self.operations.insert(id, op);
    }
}

impl Plan {
    /// Where each binder of the plan connects, as its factory in `registry` reads the
    /// binder's environment from `config` and the application tree `root`. A binder whose
    /// type is not compiled in, or whose environment does not say, gets host `unknown`.
    pub fn servers(
        &self,
        config: &StreamConfig,
        root: &Value,
        registry: &BinderRegistry,
    ) -> BTreeMap<String, ServerAddress> {
        self.binders
            .iter()
            .map(|b| {
                let env = BinderEnvironment::for_binder(config, root, &b.name);
                let found = registry
                    .get(&b.binder_type)
                    .and_then(|f| f.server(&b.name, &env));
                let address = found.unwrap_or_else(|| ServerAddress {
                    protocol: b.binder_type.clone(),
                    host: "unknown".to_owned(),
                });
                (b.name.clone(), address)
            })
            .collect()
    }

    /// The AsyncAPI 3.0 document of this plan, with `servers` from [`Plan::servers`] and the
    /// bindings' payload schemas where known.
    pub fn asyncapi(
        &self,
        info: &AsyncApiInfo,
        servers: &BTreeMap<String, ServerAddress>,
        payloads: &PayloadSchemas,
    ) -> Value {
        let mut doc = Doc::default();
        for b in &self.bindings {
            let input = b.direction == "input";
            let payload = payloads.get(&b.name);
            for (i, d) in b.destinations.iter().enumerate() {
                let (channel, message) = doc.channel(&b.binder, d, &b.content_type, payload);
                let mut op = json!({
                    "action": if input { "receive" } else { "send" },
                    "channel": channel,
                    "messages": [message],
                    "summary": format!("binding {}", b.name),
                });
                if let Some(g) = &b.group {
                    op["x-cloud-stream-group"] = json!(g);
                }
                if let Some(f) = &b.function {
                    op["x-cloud-stream-function"] = json!(f);
                }
                let name = match i {
                    0 => b.name.clone(),
                    _ => format!("{} {d}", b.name),
                };
                doc.operation(&name, op);
            }
            if let Some(dlq) = &b.dlq {
                let (channel, message) = doc.channel(&b.binder, dlq, &b.content_type, payload);
                doc.operation(
                    &format!("{} dead letters", b.name),
                    json!({
                        "action": "send",
                        "channel": channel,
                        "messages": [message],
                        "summary": format!("dead letters of binding {} after its last attempt", b.name),
                    }),
                );
            }
        }
        let servers: Map<String, Value> = servers
            .iter()
            .map(|(name, s)| {
                let description = self
                    .binders
                    .iter()
                    .find(|b| b.name == *name)
                    .map(|b| format!("binder {name} (type {})", b.binder_type));
                let mut server = json!({"host": s.host, "protocol": s.protocol});
                if let Some(d) = description {
                    server["description"] = json!(d);
                }
                (doc.server_ids.of(name), server)
            })
            .collect();
        json!({
            "asyncapi": "3.0.0",
            "info": {
                "title": info.title,
                "version": info.version,
                "description": "Generated by cloud-stream from the application's configuration.",
            },
            "defaultContentType": "application/json",
            "servers": servers,
            "channels": doc.channels,
            "operations": doc.operations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_safe_and_unique() {
        let mut ids = Ids::default();
        assert_eq!(ids.of("orders.in"), "orders.in");
        assert_eq!(ids.of("a/b"), "a_b");
        assert_eq!(ids.of("a b"), "a_b-2");
        assert_eq!(ids.of("a/b"), "a_b");
    }
}
