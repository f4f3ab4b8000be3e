//! Relaxed-name normalisation guided by the schema: keys of known objects (and of unknown,
//! non-user-named levels) become kebab-case; keys of user-named maps (binding names, binder
//! names, `function.bindings`, `environment`, `retryable-exceptions`) keep their spelling.

use serde_json::{Map, Value};

use super::schema::{BinderSchemas, Kind, Schema, SchemaNode, STREAM_PATH};
use super::tree::{deep_merge, flatten, kebab};

/// Normalises `value` (already dotted-key-expanded) found at `path` against `node`.
pub fn normalise(
    value: Value,
    node: Option<&SchemaNode>,
    path: &str,
    binders: &BinderSchemas,
) -> Value {
    match (node, value) {
        (Some(SchemaNode::Leaf(_)), v) => v,
        (Some(SchemaNode::Object { fields, .. }), Value::Object(map)) => {
            let mut out = Value::Object(Map::new());
            for (k, v) in map {
                let nk = declared_spelling(fields, kebab(&k));
                let child_path = join(path, &nk);
                let child: Option<&SchemaNode> = match fields.get(&nk) {
                    Some(c) => Some(c),
                    None if path == STREAM_PATH => Some(binder_section_node(&nk, binders)),
                    None => None,
                };
                let nv = normalise(v, child, &child_path, binders);
                insert_merge(&mut out, nk, nv);
            }
            out
        }
        (Some(SchemaNode::Map(inner)), Value::Object(map)) => {
            let mut out = Value::Object(Map::new());
            let scalar_values = matches!(&**inner, SchemaNode::Leaf(l) if l.kind != Kind::FreeMap);
            for (k, v) in map {
                if scalar_values && v.is_object() {
                    // `retryable-exceptions.java.lang.X: false` was expanded; flatten it back.
                    for (fk, fv) in flatten(&Value::Object(Map::from_iter([(k.clone(), v)]))) {
                        insert_merge(&mut out, fk, fv);
                    }
                } else {
                    let child_path = join(path, &k);
                    let nv = normalise(v, Some(inner), &child_path, binders);
                    insert_merge(&mut out, k, nv);
                }
            }
            out
        }
        (_, Value::Object(map)) => {
            let mut out = Value::Object(Map::new());
            for (k, v) in map {
                let nk = kebab(&k);
                let child_path = join(path, &nk);
                let nv = normalise(v, None, &child_path, binders);
                insert_merge(&mut out, nk, nv);
            }
            out
        }
        (_, v) => v,
    }
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
    fields: &std::collections::BTreeMap<String, SchemaNode>,
    key: String,
) -> String {
    if fields.contains_key(&key) {
        return key;
    }
    let squash = super::tree::relaxed;
    let wanted = squash(&key);
    fields
        .keys()
        .find(|f| squash(f) == wanted)
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

/// `path.key` (or `key` at the root).
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
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
