//! `${NAME}` / `${NAME:default}` placeholders, resolved from environment variables and other
//! properties (dotted path, relaxed names). Defaults may themselves contain placeholders.
//! Cycles are detected.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::ConfigIssue;
use super::normalise::join;
use super::tree::{kebab, scalar_text, split_key};

/// Where placeholder values come from.
pub struct Resolver<'a> {
    /// The merged (unresolved) property tree.
    pub root: &'a Value,
    /// The environment variables.
    pub env: &'a BTreeMap<String, String>,
}

impl Resolver<'_> {
    /// Resolves every string value of `tree` in place; each failure becomes an issue at the
    /// key path of the value.
    pub fn resolve_tree(&self, tree: &mut Value, path: &str, issues: &mut Vec<ConfigIssue>) {
        match tree {
            Value::String(s) if s.contains("${") => match self.resolve_str(s, &mut Vec::new()) {
                Ok(r) => *s = r,
                Err(msg) => issues.push(ConfigIssue::new(path, msg)),
            },
            Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    let p = join(path, k);
                    self.resolve_tree(v, &p, issues);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    let p = format!("{path}[{i}]");
                    self.resolve_tree(v, &p, issues);
                }
            }
            _ => {}
        }
    }

    /// Resolves the placeholders of one string. `stack` holds the names being resolved (for
    /// cycle detection). The error is a message naming the placeholder.
    pub fn resolve_str(&self, text: &str, stack: &mut Vec<String>) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let body_start = start + 2;
            let Some(len) = matching_close(&rest[body_start..]) else {
                return Err(format!("unterminated placeholder in `{}`", &rest[start..]));
            };
            let body = &rest[body_start..body_start + len];
            let (name, default) = split_default(body);
            let name = name.trim();
            if stack.iter().any(|n| n == name) {
                let mut chain = stack.clone();
                chain.push(name.to_owned());
                let start_at = chain.iter().position(|n| n == name).unwrap_or(0);
                return Err(format!(
                    "placeholder cycle: {}",
                    chain[start_at..]
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(" -> ")
                ));
            }
            stack.push(name.to_owned());
            let looked_up = self.lookup(name);
            let resolved = match (looked_up, default) {
                (Some(v), _) => self.resolve_str(&v, stack),
                (None, Some(d)) => self.resolve_str(d, stack),
                (None, None) => Err(format!(
                    "cannot resolve placeholder `${{{name}}}`: no environment variable or property `{name}` and no default"
                )),
            };
            stack.pop();
            out.push_str(&resolved?);
            rest = &rest[body_start + len + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The raw value for a placeholder name: exact environment variable, then property (relaxed
    /// dotted path), then the environment variable in its relaxed form (`a.b-c` → `A_B_C`).
    fn lookup(&self, name: &str) -> Option<String> {
        if let Some(v) = self.env.get(name) {
            return Some(v.clone());
        }
        if let Some(v) = lookup_property(self.root, name) {
            return Some(v);
        }
        let upper: String = name
            .chars()
            .map(|c| {
                if c == '.' || c == '-' {
                    '_'
                } else {
                    c.to_ascii_uppercase()
                }
            })
            .collect();
        self.env.get(&upper).cloned()
    }
}

/// The scalar property at dotted `name`, keys compared relaxed.
fn lookup_property(root: &Value, name: &str) -> Option<String> {
    let mut cur = root;
    for seg in split_key(name) {
        let obj = cur.as_object()?;
        cur = match obj.get(&seg) {
            Some(v) => v,
            None => {
                let k = kebab(&seg);
                obj.iter()
                    .find(|(key, _)| kebab(key) == k)
                    .map(|(_, v)| v)?
            }
        };
    }
    match cur {
        Value::Object(_) | Value::Null => None,
        Value::Array(items) => Some(items.iter().map(scalar_text).collect::<Vec<_>>().join(",")),
        v => Some(scalar_text(v)),
    }
}

/// Length of the placeholder body up to its matching `}` (nested `${...}` allowed).
fn matching_close(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'{') {
            depth += 1;
            i += 2;
            continue;
        }
        if bytes[i] == b'}' {
            if depth == 0 {
                return Some(i);
            }
            depth -= 1;
        }
        i += 1;
    }
    None
}

/// Splits `NAME:default` at the first `:` outside nested placeholders.
fn split_default(body: &str) -> (&str, Option<&str>) {
    let bytes = body.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' => depth = depth.saturating_sub(1),
            b':' if depth == 0 => return (&body[..i], Some(&body[i + 1..])),
            _ => {}
        }
        i += 1;
    }
    (body, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("HOST".to_owned(), "h1".to_owned()),
            ("APP_GROUP".to_owned(), "g-env".to_owned()),
        ])
    }

    #[test]
    fn resolves_env_properties_and_defaults() {
        let root = json!({"app": {"topic-name": "orders", "a": "${app.b}", "b": "${app.a}", "nested": "${MISSING:${HOST}}"}});
        let env = env();
        let r = Resolver {
            root: &root,
            env: &env,
        };
        let mut st = Vec::new();
        assert_eq!(
            r.resolve_str("amqp://${HOST}:${PORT:5672}", &mut st)
                .unwrap(),
            "amqp://h1:5672"
        );
        assert_eq!(
            r.resolve_str("${app.topicName}-x", &mut st).unwrap(),
            "orders-x"
        );
        assert_eq!(r.resolve_str("${app.group}", &mut st).unwrap(), "g-env");
        assert_eq!(
            r.resolve_str("${NOPE:${ALSO_NOPE:d}}", &mut st).unwrap(),
            "d"
        );
        assert_eq!(r.resolve_str("${app.nested}", &mut st).unwrap(), "h1");
        let err = r.resolve_str("${app.a}", &mut st).unwrap_err();
        assert!(err.contains("cycle"), "{err}");
        let err = r.resolve_str("${NOPE}", &mut st).unwrap_err();
        assert!(err.contains("`${NOPE}`"), "{err}");
        assert!(r.resolve_str("${oops", &mut st).is_err());
    }
}
