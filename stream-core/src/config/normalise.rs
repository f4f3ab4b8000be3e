//! Relaxed-name normalisation guided by the schema: keys of known objects (and of unknown,
//! non-user-named levels) become kebab-case; keys of user-named maps (binding names, binder
//! names, `function.bindings`, `environment`, `retryable-exceptions`) keep their spelling.

use serde_json::{Map, Value};

use super::schema::{BinderSchemas, Kind, Schema, SchemaNode, STREAM_PATH};
use super::tree::{deep_merge, flatten, join, kebab};

/// Normalises `value` (already dotted-key-expanded) found at `path` against `node`.
pub fn normalise(
    value: Value,
    node: Option<&SchemaNode>,
    path: &str,
    binders: &BinderSchemas,
) -> Value {
    let Value::Object(map) = value else {
        return value;
    };
    let mut out = Value::Object(Map::new());
    match node {
        Some(SchemaNode::Leaf(_)) => return Value::Object(map),
        Some(SchemaNode::Map(inner)) => {
            let scalar_values = matches!(&**inner, SchemaNode::Leaf(l) if l.kind != Kind::FreeMap);
            for (k, v) in map {
                if scalar_values && v.is_object() {
                    // `retryable-exceptions.java.lang.X: false` was expanded; flatten it back.
                    for (fk, fv) in flatten(&Value::Object(Map::from_iter([(k.clone(), v)]))) {
                        insert_merge(&mut out, fk, fv);
                    }
                } else {
                    let nv = normalise(v, Some(inner), &join(path, &k), binders);
                    insert_merge(&mut out, k, nv);
                }
            }
        }
        _ => {
            let fields = match node {
                Some(SchemaNode::Object { fields, .. }) => Some(fields),
                _ => None,
            };
            for (k, v) in map {
                let nk = declared_spelling(fields, kebab(&k));
                let child = match fields.map(|f| f.get(&nk)) {
                    Some(None) if path == STREAM_PATH => Some(binder_section_node(&nk, binders)),
                    found => found.flatten(),
                };
                let nv = normalise(v, child, &join(path, &nk), binders);
                insert_merge(&mut out, nk, nv);
            }
        }
    }
    out
}

/// The schema node for a child of `spring.cloud.stream` that is not a core property: the
/// registered binder schema, or the opaque binder-section shape.
pub fn binder_section_node<'a>(name: &str, binders: &'a BinderSchemas) -> &'a SchemaNode {
    static OPAQUE: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
    match binders.get(name) {
        Some(s) => &s.root,
        None => &OPAQUE.get_or_init(Schema::opaque_binder_section).root,
    }
}

/// The declared field a key names, compared as Spring Boot's relaxed binding does (case and
/// dashes ignored: `partitionkeyexpression` is `partition-key-expression`); the key itself
/// when no field matches.
fn declared_spelling(
    fields: Option<&std::collections::BTreeMap<String, SchemaNode>>,
    key: String,
) -> String {
    let Some(fields) = fields.filter(|f| !f.contains_key(&key)) else {
        return key;
    };
    let wanted = super::tree::relaxed(&key);
    fields
        .keys()
        .find(|f| super::tree::relaxed(f) == wanted)
        .cloned()
        .unwrap_or(key)
}

fn insert_merge(out: &mut Value, key: String, value: Value) {
    if let Value::Object(m) = out {
        match m.get_mut(&key) {
            Some(existing) => deep_merge(existing, &value),
            None => {
                m.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tree::expand_dotted;
    use serde_json::json;

    #[test]
    fn keeps_user_named_keys() {
        let raw = expand_dotted(json!({
            "spring": {"cloud": {"stream": {
                "bindings": {"ordersIn0": {"contentType": "text/plain", "consumer": {"maxAttempts": 2,
                    "retryableExceptions": {"java.lang.IllegalStateException": false}}}},
                "binders": {"rabbitOne": {"inheritEnvironment": false, "environment": {"spring.rabbitmq.host": "h", "someKey": 1}}},
                "kafka": {"bindings": {"ordersIn0": {"consumer": {"startOffset": "earliest"}}}}
            }}},
            "server": {"maxHttpHeaderSize": 1}
        }));
        let n = normalise(raw, Some(&Schema::core().root), "", &BinderSchemas::new());
        assert_eq!(
            n,
            json!({
                "spring": {"cloud": {"stream": {
                    "bindings": {"ordersIn0": {"content-type": "text/plain", "consumer": {"max-attempts": 2,
                        "retryable-exceptions": {"java.lang.IllegalStateException": false}}}},
                    "binders": {"rabbitOne": {"inherit-environment": false, "environment": {"spring": {"rabbitmq": {"host": "h"}}, "someKey": 1}}},
                    "kafka": {"bindings": {"ordersIn0": {"consumer": {"start-offset": "earliest"}}}}
                }}},
                "server": {"max-http-header-size": 1}
            })
        );
    }
}
