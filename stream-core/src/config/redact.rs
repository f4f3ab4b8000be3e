//! Keeping secrets out of logs and error messages.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

/// Fragments of (relaxed, lower-cased, separator-free) key names whose values are secrets.
const SECRET_KEY_PARTS: &[&str] = &[
    "password",
    "secret",
    "token",
    "credential",
    "sasljaasconfig",
    "accesskey",
    "secretkey",
];

/// The replacement shown instead of a secret.
pub const REDACTED: &str = "****";

/// Whether a property key (any relaxed spelling, dotted or not) names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let squashed = super::tree::relaxed(key);
    SECRET_KEY_PARTS.iter().any(|p| squashed.contains(p))
}

/// The value as it may be shown: `****` when `key` names a secret (`password`, `secret`,
/// `token`, `credential`, `sasl.jaas.config`, `access-key`, `secret-key`, any spelling);
/// otherwise the value with the password of every URI user-info hidden
/// (`amqp://user:pass@h` → `amqp://user:****@h`).
pub fn redact_value(key: &str, value: &str) -> String {
    if is_secret_key(key) {
        return REDACTED.to_owned();
    }
    redact_uris(value)
}

/// Hides the password part of `scheme://user:password@host` occurrences in `text`.
pub fn redact_uris(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#', whitespace, quote or comma.
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | ',' | '"' | '\'' | '`') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        // The password: after the user's `:`, up to the last `@`.
        let password = authority
            .rfind('@')
            .and_then(|at| Some((authority[..at].find(':')? + 1, at)));
        match password {
            Some((from, to)) => {
                out.push_str(&authority[..from]);
                out.push_str(REDACTED);
                out.push_str(&authority[to..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Values of secret properties and variables, cut out of any text shown. Redacting by key is
/// not enough: a placeholder can carry a secret into a key that is not secret
/// (`max-attempts: ${spring.rabbitmq.password}`), and a bad value shown there would leak it.
#[derive(Debug, Default)]
pub struct Secrets {
    /// Secrets by their first [`MIN_SECRET`] bytes, so that a text is scanned once.
    by_prefix: HashMap<[u8; MIN_SECRET], Vec<String>>,
}

/// Shorter values are not scrubbed: they would mangle ordinary words.
pub const MIN_SECRET: usize = 4;

impl Secrets {
    /// The string and number values under secret keys of `tree` (after placeholders are
    /// resolved) and the values of environment variables with secret names.
    pub fn collect(tree: &Value, env: &BTreeMap<String, String>) -> Self {
        let mut out = Secrets::default();
        out.walk(tree, "");
        for (k, v) in env {
            if is_secret_key(k) {
                out.add(v);
            }
        }
        out
    }

    fn walk(&mut self, v: &Value, path: &str) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    self.walk(child, &format!("{path}.{k}"));
                }
            }
            Value::Array(items) => items.iter().for_each(|i| self.walk(i, path)),
            Value::String(s) if is_secret_key(path) => self.add(s),
            Value::Number(n) if is_secret_key(path) => self.add(&n.to_string()),
            _ => {}
        }
    }

    fn add(&mut self, secret: &str) {
        let Some(prefix) = secret.as_bytes().first_chunk::<MIN_SECRET>() else {
            return;
        };
        let same = self.by_prefix.entry(*prefix).or_default();
        if !same.iter().any(|s| s == secret) {
            same.push(secret.to_owned());
            // Longest first, so that a secret containing another is cut whole.
            same.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every known secret replaced by [`REDACTED`].
    pub fn scrub(&self, text: &str) -> String {
        if self.by_prefix.is_empty() {
            return text.to_owned();
        }
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let (mut i, mut copied) = (0, 0);
        while i + MIN_SECRET <= bytes.len() {
            let found = bytes[i..]
                .first_chunk::<MIN_SECRET>()
                .and_then(|p| self.by_prefix.get(p))
                .and_then(|same| same.iter().find(|s| bytes[i..].starts_with(s.as_bytes())));
            match found {
                // A match starts and ends on character boundaries: the secret is UTF-8 too.
                Some(s) => {
                    out.push_str(&text[copied..i]);
                    out.push_str(REDACTED);
                    i += s.len();
                    copied = i;
                }
                None => i += 1,
            }
        }
        out.push_str(&text[copied..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_secret_keys_in_any_spelling() {
        assert_eq!(redact_value("spring.rabbitmq.password", "s3cr3t"), REDACTED);
        assert_eq!(redact_value("saslJaasConfig", "x"), REDACTED);
        assert_eq!(redact_value("sasl.jaas.config", "x"), REDACTED);
        assert_eq!(redact_value("AWS_SECRET_ACCESS_KEY", "x"), REDACTED);
        assert_eq!(redact_value("accessKey", "x"), REDACTED);
        assert_eq!(redact_value("spring.rabbitmq.host", "h"), "h");
    }

    #[test]
    fn redacts_uri_userinfo() {
        assert_eq!(
            redact_value("addresses", "amqp://guest:secret@host:5672/vh"),
            "amqp://guest:****@host:5672/vh"
        );
        assert_eq!(
            redact_uris("a amqp://u:p@h1,amqps://v:q@h2 b http://h3/x@y"),
            "a amqp://u:****@h1,amqps://v:****@h2 b http://h3/x@y"
        );
        assert_eq!(redact_uris("kafka://user@h"), "kafka://user@h");
    }

    #[test]
    fn scrubs_secret_values_wherever_they_went() {
        let tree = serde_json::json!({"db": {"password": "hunter22", "pin": 1234}, "spring": {"rabbitmq": {"password": 98765}}, "a": "x"});
        let env = BTreeMap::from([
            ("API_TOKEN".to_owned(), "tok-éé".to_owned()),
            ("HOME".to_owned(), "/root".to_owned()),
        ]);
        let s = Secrets::collect(&tree, &env);
        assert_eq!(
            s.scrub("found `hunter22`, x-98765-tok-éé, /root, hunter2"),
            "found `****`, x-****-****, /root, hunter2"
        );
        assert_eq!(s.scrub("é"), "é");
    }
}
