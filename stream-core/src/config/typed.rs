//! Typing a validated tree with serde. Validation knows kinds (an unsigned integer), not Rust
//! types (`u32`), so a value can pass it and still not fit its field: `max-attempts:
//! 4294967296`. Such a value is an issue at its own path (not at the section being typed),
//! it is dropped, and typing goes on, so that one bad number does not empty a section and
//! bury the issues found after it.

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::{Path, Segment};

use super::error::ConfigIssue;
use super::redact::{is_secret_key, redact_uris};

/// The most values dropped from one section before giving up on it.
const MAX_DROPPED: usize = 16;

/// `value` (found at `path`) as a `T`; every value that does not fit is an issue, and `T`'s
/// default is used when the section cannot be typed at all.
pub fn typed<T: DeserializeOwned + Default>(
    mut value: Value,
    path: &str,
    issues: &mut Vec<ConfigIssue>,
) -> T {
    for _ in 0..MAX_DROPPED {
        let err = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(t) => return t,
            Err(e) => e,
        };
        let at = full_path(path, err.path());
        issues.push(ConfigIssue::new(at.clone(), message(&at, err.inner())));
        if !remove(&mut value, err.path()) {
            break;
        }
    }
    T::default()
}

/// `path` followed by the segments below it (`a.b[2].c`).
fn full_path(path: &str, below: &Path) -> String {
    let mut out = path.to_owned();
    for seg in below {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

/// serde's message in the loader's words (`expected an integer at most 255, found `256``,
/// not `expected u8`); nothing of a value under a secret key is shown.
fn message(path: &str, e: &serde_json::Error) -> String {
    if is_secret_key(path) {
        return "invalid value".to_owned();
    }
    let text = e.to_string();
    let range = |ty: &str| match ty {
        "u8" => Some("at most 255"),
        "u16" => Some("at most 65535"),
        "u32" => Some("at most 4294967295"),
        "i32" => Some("between -2147483648 and 2147483647"),
        _ => None,
    };
    let parts = text
        .strip_prefix("invalid value: integer `")
        .and_then(|rest| rest.split_once("`, expected "));
    match parts.and_then(|(found, ty)| Some((found, range(ty)?))) {
        Some((found, range)) => format!("expected an integer {range}, found `{found}`"),
        None => redact_uris(&text),
    }
}

/// Removes the value at `path`; `false` when there is none (then retrying cannot help).
fn remove(root: &mut Value, path: &Path) -> bool {
    let segs: Vec<&Segment> = path.iter().collect();
    let Some((last, parents)) = segs.split_last() else {
        return false;
    };
    let mut cur = root;
    for seg in parents {
        let next = match (seg, cur) {
            (Segment::Map { key }, Value::Object(m)) => m.get_mut(key),
            (Segment::Seq { index }, Value::Array(items)) => items.get_mut(*index),
            _ => None,
        };
        let Some(next) = next else {
            return false;
        };
        cur = next;
    }
    match (last, cur) {
        (Segment::Map { key }, Value::Object(m)) => m.remove(key).is_some(),
        (Segment::Seq { index }, Value::Array(items)) if *index < items.len() => {
            items.remove(*index);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, rename_all = "kebab-case")]
    struct Section {
        max_attempts: u32,
        name: String,
        list: Vec<u8>,
    }

    #[test]
    fn values_that_do_not_fit_are_issues_at_their_path() {
        let mut issues = Vec::new();
        let v = json!({"max-attempts": 4294967296u64, "name": "n", "list": [1, 256]});
        let s: Section = typed(v, "app", &mut issues);
        assert_eq!(s.name, "n", "the rest is kept");
        let shown: Vec<String> = issues.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "app.list[1]: expected an integer at most 255, found `256`",
                "app.max-attempts: expected an integer at most 4294967295, found `4294967296`",
            ]
        );
    }

    #[test]
    fn secrets_are_not_shown() {
        #[derive(Debug, Default, Deserialize)]
        #[serde(default)]
        struct S {
            #[allow(dead_code)]
            password: u8,
        }
        let mut issues = Vec::new();
        let _: S = typed(json!({"password": "s3cr3t"}), "", &mut issues);
        assert_eq!(issues[0].to_string(), "password: invalid value");
    }
}
