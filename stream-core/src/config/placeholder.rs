//! `${NAME}` / `${NAME:default}` placeholders, resolved from environment variables and other
//! properties (dotted path, relaxed names). Defaults may themselves contain placeholders.
//! Cycles are detected.
//!
//! Resolution is bounded, since a few hundred bytes can describe an exponential expansion
//! (`p1: ${p0}${p0}`, `p2: ${p1}${p1}`, ...): placeholders nest at most [`MAX_DEPTH`] deep,
//! one value expands to at most [`MAX_VALUE_LEN`] bytes, and one resolver spends at most
//! [`WORK_BUDGET`] units of work in all. Error messages name placeholders, never echo the
//! text around them, and hide names found where a secret could be.

use std::cell::Cell;
use std::collections::BTreeMap;

use serde_json::Value;

use super::error::ConfigIssue;
use super::redact::{is_secret_key, redact_uris, REDACTED};
use super::tree::{join, kebab, scalar_text, split_key};

/// How deep placeholders may nest: a placeholder in a default, or in the value of the
/// property a placeholder names, is one level deeper.
pub const MAX_DEPTH: usize = 32;
/// The longest value a placeholder may expand to (bytes).
pub const MAX_VALUE_LEN: usize = 64 * 1024;
/// The work one resolver may do: each expansion costs one unit, each 64 bytes of text
/// scanned one more, and each key compared when a name is looked up relaxed one more. Real
/// configurations need a few hundred.
pub const WORK_BUDGET: usize = 250_000;

/// Why a value could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A `${` without its `}`, in the value itself or in the value of the named property.
    Unterminated(Option<String>),
    /// Nothing is named `name` and there is no default. `hidden`: the name was found inside
    /// the value of a secret property, so it may be (part of) the secret.
    Unresolvable { name: String, hidden: bool },
    /// The names that refer to each other, the first repeated last.
    Cycle(Vec<String>),
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Longer than [`MAX_VALUE_LEN`].
    TooLong,
    /// The resolver's [`WORK_BUDGET`] is spent.
    OutOfBudget,
}

impl Failure {
    /// The message for the value at `path` (which decides whether names are shown).
    pub fn describe(&self, path: &str) -> String {
        match self {
            Failure::Unterminated(within) => {
                let within = within.as_deref().map(shown_name);
                let within = within.map(|n| format!(" in the value of `{n}`"));
                let within = within.unwrap_or_default();
                format!("unterminated placeholder{within}: a `${{` has no closing `}}`")
            }
            Failure::Unresolvable { name, hidden } => {
                let name = if *hidden || is_secret_key(path) {
                    REDACTED.to_owned()
                } else {
                    shown_name(name)
                };
                format!("cannot resolve placeholder `${{{name}}}`: no environment variable or property `{name}` and no default")
            }
            Failure::Cycle(chain) => format!(
                "placeholder cycle: {}",
                chain
                    .iter()
                    .map(|n| format!("`{}`", shown_name(n)))
                    .collect::<Vec<_>>()
                    .join(" -> ")
            ),
            Failure::TooDeep => format!("placeholders nested more than {MAX_DEPTH} levels deep"),
            Failure::TooLong => format!(
                "placeholders expand to more than {} KiB",
                MAX_VALUE_LEN / 1024
            ),
            Failure::OutOfBudget => format!(
                "placeholder resolution stopped: the placeholders of this configuration need more than {WORK_BUDGET} steps in all"
            ),
        }
    }
}

/// A placeholder name as shown: URI passwords hidden, cut after 100 characters.
fn shown_name(name: &str) -> String {
    super::error::shown(&redact_uris(name), 100)
}

/// Where placeholder values come from, and the work left.
pub struct Resolver<'a> {
    root: &'a Value,
    env: &'a BTreeMap<String, String>,
    work_left: Cell<usize>,
}

impl<'a> Resolver<'a> {
    /// Resolves from `root` (the merged, unresolved property tree) and `env`, with a fresh
    /// [`WORK_BUDGET`].
    pub fn new(root: &'a Value, env: &'a BTreeMap<String, String>) -> Self {
        Resolver {
            root,
            env,
            work_left: Cell::new(WORK_BUDGET),
        }
    }

    /// Resolves every string value of `tree` in place; each failure becomes an issue at the
    /// key path of the value.
    pub fn resolve_tree(&self, tree: &mut Value, path: &str, issues: &mut Vec<ConfigIssue>) {
        match tree {
            Value::String(s) if s.contains("${") => match self.resolve(s) {
                Ok(r) => *s = r,
                Err(f) => issues.push(ConfigIssue::new(path, f.describe(path))),
            },
            Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    self.resolve_tree(v, &join(path, k), issues);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    self.resolve_tree(v, &format!("{path}[{i}]"), issues);
                }
            }
            _ => {}
        }
    }

    /// Resolves the placeholders of one string.
    pub fn resolve(&self, text: &str) -> Result<String, Failure> {
        let mut out = String::new();
        self.expand(text, &mut Vec::new(), &mut out)?;
        Ok(out)
    }

    /// Appends `text` to `out` with its placeholders resolved.
    fn expand(&self, text: &str, stack: &mut Vec<String>, out: &mut String) -> Result<(), Failure> {
        self.spend(1 + text.len() / 64)?;
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            push_bounded(out, &rest[..start])?;
            let body_start = start + 2;
            let Some((len, colon)) = body(&rest[body_start..]) else {
                return Err(Failure::Unterminated(stack.last().cloned()));
            };
            let inner = &rest[body_start..body_start + len];
            let (name, default) = match colon {
                Some(c) => (&inner[..c], Some(&inner[c + 1..])),
                None => (inner, None),
            };
            self.placeholder(name.trim(), default, stack, out)?;
            rest = &rest[body_start + len + 1..];
        }
        push_bounded(out, rest)
    }

    /// Appends the value of one placeholder.
    fn placeholder(
        &self,
        name: &str,
        default: Option<&str>,
        stack: &mut Vec<String>,
        out: &mut String,
    ) -> Result<(), Failure> {
        if let Some(at) = stack.iter().position(|n| n == name) {
            let mut chain = stack[at..].to_vec();
            chain.push(name.to_owned());
            return Err(Failure::Cycle(chain));
        }
        if stack.len() >= MAX_DEPTH {
            return Err(Failure::TooDeep);
        }
        let value = self.lookup(name)?;
        let Some(v) = value.as_deref().or(default) else {
            // Text inside the value of a secret-named property may be (part of) the secret.
            let hidden = stack.iter().any(|n| is_secret_key(n));
            let name = name.to_owned();
            return Err(Failure::Unresolvable { name, hidden });
        };
        stack.push(name.to_owned());
        let result = self.expand(v, stack, out);
        stack.pop();
        result
    }

    /// Takes `units` from the work budget.
    fn spend(&self, units: usize) -> Result<(), Failure> {
        let left = self.work_left.get().checked_sub(units);
        self.work_left.set(left.unwrap_or(0));
        left.map(|_| ()).ok_or(Failure::OutOfBudget)
    }

    /// The raw value for a placeholder name: exact environment variable, then property (relaxed
    /// dotted path), then the environment variable in its relaxed form (`a.b-c` → `A_B_C`).
    fn lookup(&self, name: &str) -> Result<Option<String>, Failure> {
        if let Some(v) = self.env.get(name) {
            return Ok(Some(v.clone()));
        }
        // An environment-style name (`TWEET_TYPE`) is no property name for Spring's relaxed
        // binding: it never resolves to the property `tweet-type` (often the very key whose
        // value holds the placeholder).
        if !name.chars().any(|c| c.is_ascii_lowercase()) {
            return Ok(None);
        }
        if let Some(v) = self.lookup_property(name)? {
            return Ok(Some(v));
        }
        let upper = name.to_ascii_uppercase().replace(['.', '-'], "_");
        Ok(self.env.get(&upper).cloned())
    }

    /// The scalar property at dotted `name`, keys compared relaxed (each key compared costs
    /// a unit of work).
    fn lookup_property(&self, name: &str) -> Result<Option<String>, Failure> {
        let mut cur = self.root;
        for seg in split_key(name) {
            let Some(obj) = cur.as_object() else {
                return Ok(None);
            };
            cur = match obj.get(&seg) {
                Some(v) => v,
                None => {
                    self.spend(obj.len())?;
                    let k = kebab(&seg);
                    match obj.iter().find(|(key, _)| kebab(key) == k) {
                        Some((_, v)) => v,
                        None => return Ok(None),
                    }
                }
            };
        }
        Ok(match cur {
            Value::Object(_) | Value::Null => None,
            v => Some(scalar_text(v)),
        })
    }
}

/// Appends `text` unless the result would pass [`MAX_VALUE_LEN`].
fn push_bounded(out: &mut String, text: &str) -> Result<(), Failure> {
    if out.len() + text.len() > MAX_VALUE_LEN {
        return Err(Failure::TooLong);
    }
    out.push_str(text);
    Ok(())
}

/// The placeholder body that starts `s` (just after its `${`): its length up to the matching
/// `}` (nested `${...}` allowed), and the first `:` outside nested placeholders, where its
/// default starts.
fn body(s: &str) -> Option<(usize, Option<usize>)> {
    let bytes = s.as_bytes();
    let (mut depth, mut colon, mut i) = (0usize, None, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some((i, colon)),
            b'}' => depth -= 1,
            b':' if depth == 0 && colon.is_none() => colon = Some(i),
            _ => {}
        }
        i += 1;
    }
    None
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
        let r = Resolver::new(&root, &env);
        assert_eq!(
            r.resolve("amqp://${HOST}:${PORT:5672}").unwrap(),
            "amqp://h1:5672"
        );
        assert_eq!(r.resolve("${app.topicName}-x").unwrap(), "orders-x");
        assert_eq!(r.resolve("${app.group}").unwrap(), "g-env");
        assert_eq!(r.resolve("${NOPE:${ALSO_NOPE:d}}").unwrap(), "d");
        assert_eq!(r.resolve("${app.nested}").unwrap(), "h1");
        let err = r.resolve("${app.a}").unwrap_err().describe("x");
        assert_eq!(err, "placeholder cycle: `app.a` -> `app.b` -> `app.a`");
        let err = r.resolve("${NOPE}").unwrap_err().describe("x");
        assert!(err.contains("`${NOPE}`"), "{err}");
        assert_eq!(r.resolve("${oops"), Err(Failure::Unterminated(None)));
    }

    #[test]
    fn names_that_could_be_secrets_are_hidden() {
        let root = json!({"db": {"password": "${pa55word}", "user": "${db.password}"}});
        let env = env();
        let r = Resolver::new(&root, &env);
        let f = r.resolve("${db.user}").unwrap_err();
        assert!(
            matches!(f, Failure::Unresolvable { hidden: true, .. }),
            "{f:?}"
        );
        assert!(!f.describe("app.x").contains("pa55word"));
        let f = r.resolve("${pa55word}").unwrap_err();
        assert!(f.describe("app.x").contains("pa55word"));
        assert!(!f.describe("spring.rabbitmq.password").contains("pa55word"));
    }

    #[test]
    fn depth_length_and_work_are_bounded() {
        let env = BTreeMap::new();
        let mut root = serde_json::Map::new();
        root.insert("p0".into(), json!("x".repeat(1000)));
        root.insert("e0".into(), json!(""));
        for i in 1..=40 {
            root.insert(
                format!("p{i}"),
                json!(format!("${{p{j}}}${{p{j}}}", j = i - 1)),
            );
            root.insert(
                format!("e{i}"),
                json!(format!("${{e{j}}}${{e{j}}}", j = i - 1)),
            );
        }
        let root = Value::Object(root);
        let r = Resolver::new(&root, &env);
        assert_eq!(r.resolve("${p40}"), Err(Failure::TooDeep), "41 levels");
        assert_eq!(r.resolve("${p20}"), Err(Failure::TooLong));
        assert_eq!(r.resolve("${e30}"), Err(Failure::OutOfBudget));
        assert_eq!(
            r.resolve("${e1}"),
            Err(Failure::OutOfBudget),
            "budget is spent"
        );
        let r = Resolver::new(&root, &env);
        let deep: String = (0..100).map(|i| format!("${{n{i}:")).collect();
        let deep = format!("{deep}x{}", "}".repeat(100));
        assert_eq!(r.resolve(&deep), Err(Failure::TooDeep));
        assert_eq!(
            r.resolve(&"${".repeat(20_000)),
            Err(Failure::Unterminated(None))
        );
    }
}
