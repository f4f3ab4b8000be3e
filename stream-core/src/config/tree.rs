//! Property trees: dotted-key expansion (with Spring's `[a.b]` bracket
//! form), relaxed-name normalisation and deep merging.

use serde_json::{Map, Value};

/// Merges `over` into `base`: objects are merged recursively, any other value in `over`
/// replaces the one in `base` (lists are replaced, not concatenated, as in Spring).
pub fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                // A new key starts as null, which any value replaces.
                deep_merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// A name as Spring's relaxed binding compares it: lower-case letters and digits only
/// (`partitionKeyExpression`, `partition_key_expression`, `PARTITIONKEYEXPRESSION` and
/// `partition-key-expression` are the same). The one comparison form of keys, enumerated
/// values, environment-variable tokens and did-you-mean.
pub fn relaxed(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The relaxed (kebab-case) form of a key: `maxAttempts`, `max_attempts`, `MAX_ATTEMPTS` and
/// `max-attempts` all become `max-attempts`.
pub fn kebab(key: &str) -> String {
    let all_upper = !key.chars().any(|c| c.is_lowercase());
    let mut out = String::with_capacity(key.len() + 4);
    let mut prev_lower_or_digit = false;
    for c in key.chars() {
        if c == '_' || c == '-' {
            if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
            prev_lower_or_digit = false;
        } else if c.is_uppercase() && !all_upper {
            if prev_lower_or_digit && !out.ends_with('-') {
                out.push('-');
            }
            out.extend(c.to_lowercase());
            prev_lower_or_digit = false;
        } else {
            out.extend(c.to_lowercase());
            prev_lower_or_digit = c.is_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

/// Splits a dotted key into segments; `[...]` keeps dots literally (`a.[b.c].d` → `a`, `b.c`,
/// `d`; `[b.c]` → `b.c`).
pub fn split_key(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    let mut bracketed = false;
    for c in key.chars() {
        match c {
            '[' => {
                if depth > 0 {
                    cur.push(c);
                }
                depth += 1;
                bracketed = true;
            }
            ']' if depth > 0 => {
                depth -= 1;
                if depth > 0 {
                    cur.push(c);
                }
            }
            '.' if depth == 0 => {
                if !cur.is_empty() || bracketed {
                    out.push(std::mem::take(&mut cur));
                }
                bracketed = false;
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() || bracketed {
        out.push(cur);
    }
    out
}

/// Whether `key` must be split (contains an unbracketed dot or is bracketed).
pub fn needs_split(key: &str) -> bool {
    key.contains('.') || key.starts_with('[')
}

/// Builds the nested object for `segments` ending in `value`.
pub fn nest(segments: &[String], value: Value) -> Value {
    let mut v = value;
    for seg in segments.iter().rev() {
        let mut m = Map::new();
        m.insert(seg.clone(), v);
        v = Value::Object(m);
    }
    v
}

/// Expands dotted keys (`spring.cloud.stream.bindings.x.group: g`) into nested objects at every
/// level, merging with siblings; later keys win.
pub fn expand_dotted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Value::Object(Map::new());
            for (k, v) in map {
                let segs = if needs_split(&k) {
                    split_key(&k)
                } else {
                    vec![k]
                };
                if !segs.is_empty() {
                    deep_merge(&mut out, &nest(&segs, expand_dotted(v)));
                }
            }
            out
        }
        Value::Array(items) => Value::Array(items.into_iter().map(expand_dotted).collect()),
        other => other,
    }
}

/// Flattens nested objects back into dotted keys (`{java: {io: true}}` → `{"java.io": true}`),
/// for maps whose keys naturally contain dots (`retryable-exceptions`, librdkafka properties).
pub fn flatten(value: &Value) -> Map<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut Map<String, Value>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, v) in m {
                    walk(&join(prefix, k), v, out);
                }
            }
            other => {
                out.insert(prefix.to_owned(), other.clone());
            }
        }
    }
    let mut out = Map::new();
    walk("", value, &mut out);
    out
}

/// `path.key` (or `key` at the root).
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The value at `path` (exact segments), if any.
pub fn get_path<'a>(root: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = root;
    for seg in path {
        cur = cur.as_object()?.get(*seg)?;
    }
    Some(cur)
}

/// Removes the value at `path`, if present.
pub fn remove_path(root: &mut Value, path: &[&str]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut cur = root;
    for seg in parents {
        cur = cur.as_object_mut()?.get_mut(*seg)?;
    }
    cur.as_object_mut()?.remove(*last)
}

/// A scalar as display text (strings without quotes); a list as its items joined with `,`,
/// as Spring reads a list property into a string.
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(scalar_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// The items of a comma-separated list, trimmed, empty ones dropped.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kebab_relaxed_names() {
        assert_eq!(kebab("maxAttempts"), "max-attempts");
        assert_eq!(kebab("max_attempts"), "max-attempts");
        assert_eq!(kebab("max-attempts"), "max-attempts");
        assert_eq!(kebab("MAX_ATTEMPTS"), "max-attempts");
        assert_eq!(kebab("contentType"), "content-type");
        assert_eq!(kebab("backOffMultiplier"), "back-off-multiplier");
        assert_eq!(kebab("instanceIndex2"), "instance-index2");
    }

    #[test]
    fn splits_brackets_and_expands() {
        assert_eq!(split_key("a.[b.c].d"), vec!["a", "b.c", "d"]);
        assert_eq!(split_key("[java.lang.X]"), vec!["java.lang.X"]);
        let v = expand_dotted(
            json!({"spring.cloud.stream": {"bindings.x.group": "g"}, "spring": {"cloud": {"stream": {"bindings": {"x": {"destination": "d"}}}}}}),
        );
        assert_eq!(
            v,
            json!({"spring": {"cloud": {"stream": {"bindings": {"x": {"group": "g", "destination": "d"}}}}}})
        );
    }

    #[test]
    fn merge_replaces_scalars_and_lists() {
        let mut a = json!({"a": {"b": 1, "c": [1, 2]}, "d": 1});
        deep_merge(&mut a, &json!({"a": {"c": [3]}, "d": {"e": 1}}));
        assert_eq!(a, json!({"a": {"b": 1, "c": [3]}, "d": {"e": 1}}));
    }

    #[test]
    fn flatten_dotted_map_keys() {
        let m = flatten(&json!({"java": {"lang": {"X": false}}, "Y": true}));
        assert_eq!(m.get("java.lang.X"), Some(&json!(false)));
        assert_eq!(m.get("Y"), Some(&json!(true)));
    }
}
