//! Environment-variable overrides: `SPRING_CLOUD_STREAM_BINDINGS_ORDERS_IN_0_GROUP` →
//! `spring.cloud.stream.bindings.orders-in-0.group`, using the schema to decide where
//! user-named keys (binding names) end.

use std::collections::BTreeSet;

use serde_json::Value;

use super::normalise::binder_section_node;
use super::schema::{BinderSchemas, Kind, SchemaNode, STREAM_PATH};
use super::tree::{get_path, relaxed};
use super::yaml::MAX_DEPTH;

/// Prefixes of the environment variables that override properties.
pub const ENV_PREFIXES: &[&str] = &[
    "SPRING_CLOUD_STREAM_",
    "SPRING_CLOUD_FUNCTION_",
    "SPRING_INTEGRATION_POLLER_",
];

/// The longest variable name mapped; real ones are well under 200 bytes.
pub const MAX_NAME_LEN: usize = 1024;

/// Maps environment-variable names to property paths.
pub struct EnvMapper<'a> {
    /// The root schema node.
    pub root: &'a SchemaNode,
    /// Registered binder section schemas.
    pub binder_schemas: &'a BinderSchemas,
    /// Names accepted as binder-specific sections under `spring.cloud.stream`.
    pub binder_sections: &'a BTreeSet<String>,
    /// The merged file tree (existing map keys are preferred).
    pub tree: &'a Value,
    /// Binding names known from registered functions and the function definition.
    pub known_bindings: &'a [String],
}

impl EnvMapper<'_> {
    /// Whether the variable is one this module maps.
    pub fn applies(name: &str) -> bool {
        ENV_PREFIXES.iter().any(|p| name.starts_with(p))
    }

    /// The property path (segments) for an environment variable, if it maps to a valid one.
    /// Names over [`MAX_NAME_LEN`] bytes or [`MAX_DEPTH`] tokens map to none: the search
    /// tries every split of the tokens into a map key and the rest, so its cost grows with
    /// a power of their number.
    pub fn map(&self, name: &str) -> Option<Vec<String>> {
        if name.len() > MAX_NAME_LEN {
            return None;
        }
        let tokens: Vec<String> = name
            .to_ascii_lowercase()
            .split('_')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        if tokens.len() > MAX_DEPTH {
            return None;
        }
        self.search(self.root, &tokens, Vec::new())
    }

    fn search(
        &self,
        node: &SchemaNode,
        tokens: &[String],
        path: Vec<String>,
    ) -> Option<Vec<String>> {
        match node {
            SchemaNode::Leaf(l) if l.kind == Kind::FreeMap => {
                (!tokens.is_empty()).then(|| with(path, tokens.join(".")))
            }
            SchemaNode::Leaf(_) => tokens.is_empty().then_some(path),
            SchemaNode::Any => (!tokens.is_empty()).then(|| with(path, tokens.join("-"))),
            SchemaNode::Object { fields, .. } => {
                let mut keys: Vec<(&String, &SchemaNode)> = fields.iter().collect();
                keys.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
                let found = keys.into_iter().find_map(|(key, child)| {
                    let rest = after_key(tokens, key)?;
                    self.search(child, rest, with(path.clone(), key.clone()))
                });
                let stream = path.join(".") == STREAM_PATH;
                let section = tokens
                    .first()
                    .filter(|t| stream && self.binder_sections.contains(*t));
                found.or_else(|| {
                    let child = binder_section_node(section?, self.binder_schemas);
                    self.search(child, &tokens[1..], with(path, section?.clone()))
                })
            }
            SchemaNode::Map(inner) => {
                let existing = self.existing_keys(&path);
                let mut shortest = None;
                for i in 1..=tokens.len() {
                    let Some(found) = self.search(inner, &tokens[i..], Vec::new()) else {
                        continue;
                    };
                    let squashed: String = tokens[..i].concat();
                    let known = existing.iter().find(|(s, _)| *s == squashed);
                    let key = known.map_or_else(|| tokens[..i].join("-"), |(_, name)| name.clone());
                    let p = [with(path.clone(), key), found].concat();
                    if known.is_some() {
                        return Some(p);
                    }
                    shortest = shortest.or(Some(p));
                }
                shortest
            }
        }
    }

    /// The keys already at the map `path` with their relaxed form (squashed once here, not
    /// once per split); at a `bindings` level also the core binding names (a binder
    /// section's binding names are the same) and the known ones.
    fn existing_keys(&self, path: &[String]) -> Vec<(String, String)> {
        let keys_at = |at: &[&str]| {
            let map = get_path(self.tree, at).and_then(Value::as_object);
            map.into_iter().flat_map(|m| m.keys().cloned())
        };
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        let mut existing: Vec<String> = keys_at(&refs).collect();
        if path.last().is_some_and(|l| l == "bindings") {
            existing.extend(keys_at(&["spring", "cloud", "stream", "bindings"]));
            existing.extend(self.known_bindings.iter().cloned());
        }
        existing.into_iter().map(|e| (relaxed(&e), e)).collect()
    }
}

/// The tokens after the ones that spell `key` (`max-attempts` is `max`, `attempts`).
fn after_key<'t>(tokens: &'t [String], key: &str) -> Option<&'t [String]> {
    let mut rest = tokens;
    for part in key.split('-') {
        let (first, tail) = rest.split_first()?;
        rest = (first == part).then_some(tail)?;
    }
    Some(rest)
}

fn with(mut path: Vec<String>, seg: String) -> Vec<String> {
    path.push(seg);
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::Schema;
    use serde_json::json;

    #[test]
    fn maps_binding_names_with_dashes() {
        let schema = Schema::core();
        let sections = BTreeSet::from(["kafka".to_owned()]);
        let tree = json!({"spring": {"cloud": {"stream": {"bindings": {"ordersIn0": {}}}}}});
        let known = vec!["audit-log-out-0".to_owned()];
        let m = EnvMapper {
            root: &schema.root,
            binder_schemas: &BinderSchemas::new(),
            binder_sections: &sections,
            tree: &tree,
            known_bindings: &known,
        };
        let p = |n: &str| m.map(n).map(|v| v.join("."));
        assert_eq!(
            p("SPRING_CLOUD_STREAM_BINDINGS_ORDERS_IN_0_GROUP").as_deref(),
            Some("spring.cloud.stream.bindings.ordersIn0.group")
        );
        assert_eq!(
            p("SPRING_CLOUD_STREAM_BINDINGS_NEW_IN_0_CONSUMER_MAX_ATTEMPTS").as_deref(),
            Some("spring.cloud.stream.bindings.new-in-0.consumer.max-attempts")
        );
        assert_eq!(
            p("SPRING_CLOUD_STREAM_BINDINGS_AUDIT_LOG_OUT_0_DESTINATION").as_deref(),
            Some("spring.cloud.stream.bindings.audit-log-out-0.destination")
        );
        assert_eq!(
            p("SPRING_CLOUD_STREAM_DEFAULT_BINDER").as_deref(),
            Some("spring.cloud.stream.default-binder")
        );
        assert_eq!(
            p("SPRING_CLOUD_STREAM_BINDERS_RABBIT1_ENVIRONMENT_SPRING_RABBITMQ_HOST").as_deref(),
            Some("spring.cloud.stream.binders.rabbit1.environment.spring.rabbitmq.host")
        );
        assert_eq!(
            p("SPRING_CLOUD_STREAM_KAFKA_BINDINGS_ORDERS_IN_0_CONSUMER_START_OFFSET").as_deref(),
            Some("spring.cloud.stream.kafka.bindings.ordersIn0.consumer.start-offset")
        );
        assert_eq!(
            p("SPRING_CLOUD_FUNCTION_DEFINITION").as_deref(),
            Some("spring.cloud.function.definition")
        );
        assert_eq!(
            p("SPRING_INTEGRATION_POLLER_FIXED_DELAY").as_deref(),
            Some("spring.integration.poller.fixed-delay")
        );
        assert_eq!(p("SPRING_CLOUD_STREAM_BINDINGS_X_BOGUS"), None);
        let long = format!(
            "SPRING_CLOUD_STREAM_BINDINGS_{}GROUP",
            "X_".repeat(MAX_DEPTH)
        );
        assert_eq!(p(&long), None);
    }
}
