//! Keeping secrets out of logs and error messages.

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
    let squashed: String = key
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | '[' | ']' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
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
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push(':');
                        out.push_str(REDACTED);
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
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
}
