//! Schema validation with coercion: every key under the validated roots must be known, every
//! value is coerced to its leaf kind (`"5"` → `5`), bounds are checked. All issues are
//! collected; invalid values are removed so that typing can go on and find more issues.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::error::ConfigIssue;
use super::redact::redact_value;
use super::schema::{unsupported_feature, BinderSchemas, Kind, Leaf, SchemaNode, STREAM_PATH};
use super::suggest::{did_you_mean, suggest};
use super::tree::{join, relaxed, scalar_text, split_list};

/// What validation needs besides the schema node.
pub struct Validator<'a> {
    /// Registered binder section schemas.
    pub binder_schemas: &'a BinderSchemas,
    /// Names accepted as binder-specific sections under `spring.cloud.stream`.
    pub binder_sections: &'a BTreeSet<String>,
    /// Where problems and warnings go.
    pub run: &'a mut super::Loading,
}

impl Validator<'_> {
    /// Validates `value` at `path` against `node`, coercing in place. Returns `false` when the
    /// value is invalid (or null) and should be removed.
    pub fn check(&mut self, node: &SchemaNode, value: &mut Value, path: &str) -> bool {
        if value.is_null() {
            return false;
        }
        match node {
            SchemaNode::Any => true,
            SchemaNode::Leaf(leaf) => self.check_leaf(leaf, value, path),
            SchemaNode::Map(inner) => {
                let Value::Object(map) = value else {
                    self.type_issue(path, "a map of names to settings", value);
                    return false;
                };
                map.retain(|k, v| self.check(inner, v, &join(path, k)));
                true
            }
            SchemaNode::Object { fields, open } => {
                let Value::Object(map) = value else {
                    self.type_issue(path, "an object", value);
                    return false;
                };
                self.check_object(fields, *open, map, path);
                true
            }
        }
    }

    fn check_leaf(&mut self, leaf: &Leaf, value: &mut Value, path: &str) -> bool {
        if leaf.unused {
            self.run.warnings.push(format!(
                "{path}: accepted for compatibility with Spring Cloud Stream, not used"
            ));
        }
        let checked = coerce(leaf.kind, value)
            .ok_or_else(|| leaf.kind.describe().to_owned())
            .and_then(|v| check_bounds(leaf, &v).map(|()| v))
            .and_then(|v| one_of(leaf, v))
            .and_then(|v| parses(leaf, v));
        match checked {
            Ok(v) => {
                *value = v;
                true
            }
            Err(expected) => {
                let found = describe_found(path, value, leaf.secret);
                self.push_value_issue(path, expected, found);
                false
            }
        }
    }

    fn push_value_issue(&mut self, path: &str, expected: String, found: String) {
        self.run.issues.push(ConfigIssue {
            path: path.to_owned(),
            message: format!("expected {expected}, found {found}"),
            expected: Some(expected),
            found: Some(found),
            ..Default::default()
        });
    }

    fn check_object(
        &mut self,
        fields: &BTreeMap<String, SchemaNode>,
        open: bool,
        map: &mut Map<String, Value>,
        path: &str,
    ) {
        map.retain(|k, v| {
            let p = join(path, k);
            if let Some(child) = fields.get(k) {
                return self.check(child, v, &p);
            }
            if path == STREAM_PATH && self.binder_sections.contains(k) {
                let Some(schema) = self.binder_schemas.get(k) else {
                    self.run.warnings.push(format!(
                        "{p}: no schema is registered for binder type `{k}`; its keys are not validated"
                    ));
                    return true;
                };
                return self.check(&schema.root, v, &p);
            }
            if !open {
                self.unknown_key(fields, path, k, p);
            }
            open
        });
    }

    /// The issue for the unknown key `k` at `p`: the feature it asks for if cloud-stream lacks
    /// it, else a did-you-mean among the known keys.
    fn unknown_key(
        &mut self,
        fields: &BTreeMap<String, SchemaNode>,
        path: &str,
        k: &str,
        p: String,
    ) {
        if let Some(message) = unsupported_feature(&p, None) {
            return self.run.issues.push(ConfigIssue::new(p, message));
        }
        let mut candidates: Vec<&str> = fields.keys().map(String::as_str).collect();
        if path == STREAM_PATH {
            candidates.extend(self.binder_sections.iter().map(String::as_str));
        }
        let suggestion = self.run.suggesting().then(|| suggest(k, candidates));
        let suggestion = suggestion.flatten();
        let message = format!("unknown key{}", did_you_mean(suggestion.as_deref()));
        self.run.issues.push(ConfigIssue {
            suggestion,
            ..ConfigIssue::new(p, message)
        });
    }

    fn type_issue(&mut self, path: &str, expected: &str, found: &Value) {
        self.push_value_issue(
            path,
            expected.to_owned(),
            describe_found(path, found, false),
        );
    }
}

/// How a found value is shown: containers by kind, scalars in backticks (`****` for a
/// secret, else with URI passwords and values of secret-named keys hidden).
pub(super) fn describe_found(path: &str, v: &Value, secret: bool) -> String {
    match v {
        Value::Object(_) => "an object".to_owned(),
        Value::Array(_) => "a list".to_owned(),
        _ if secret => format!("`{}`", super::redact::REDACTED),
        other => format!("`{}`", redact_value(path, &scalar_text(other))),
    }
}

/// Coerces a value to `kind`: scalars from their text (`"5"` → `5`), lists from a YAML list,
/// a comma-separated string or one scalar.
fn coerce(kind: Kind, v: &Value) -> Option<Value> {
    let scalar = matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
    match (kind, v) {
        (Kind::String, _) if scalar => Some(Value::String(scalar_text(v))),
        (Kind::Bool, Value::Bool(_)) => Some(v.clone()),
        // Spring's conversion of text to a boolean (`StringToBooleanConverter`).
        (Kind::Bool, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => Some(Value::Bool(true)),
            "false" | "off" | "no" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
        (Kind::UnsignedInt, _) => to_u64(v).map(Value::from),
        (Kind::Int, Value::Number(n)) => n.as_i64().map(Value::from),
        (Kind::Int, Value::String(s)) => s.trim().parse::<i64>().ok().map(Value::from),
        (Kind::Float, Value::Number(n)) => n.as_f64().map(Value::from),
        (Kind::Float, Value::String(s)) => {
            let f = s.trim().parse::<f64>().ok().filter(|f| f.is_finite());
            f.map(Value::from)
        }
        (Kind::DurationMs, _) => duration_ms(v).map(Value::from),
        (Kind::StringList, _) => list(v, |i| coerce(Kind::String, i)),
        (Kind::UnsignedIntList, _) => list(v, |i| {
            to_u64(i)
                .filter(|n| *n <= u64::from(u32::MAX))
                .map(Value::from)
        }),
        (Kind::DurationMsList, _) => list(v, |i| duration_ms(i).map(Value::from)),
        (Kind::FreeMap, Value::Object(_))
        | (Kind::Expression, Value::String(_))
        | (Kind::Any, _) => Some(v.clone()),
        _ => None,
    }
}

/// The items of a list value (a YAML list, a comma-separated string, or one scalar), each
/// coerced by `item`.
fn list(v: &Value, item: impl Fn(&Value) -> Option<Value>) -> Option<Value> {
    let items = match v {
        Value::String(s) => split_list(s).into_iter().map(Value::String).collect(),
        Value::Array(items) => items.clone(),
        Value::Number(_) | Value::Bool(_) => vec![v.clone()],
        _ => return None,
    };
    items
        .iter()
        .map(item)
        .collect::<Option<Vec<_>>>()
        .map(Value::Array)
}

/// An expression key's value must parse (the message says where it fails).
fn parses(leaf: &Leaf, v: Value) -> Result<Value, String> {
    if let (Value::String(src), Kind::Expression) = (&v, leaf.kind) {
        let parsed = crate::expr::Expression::parse(src);
        parsed.map_err(|e| format!("a valid expression ({e})"))?;
    }
    Ok(v)
}

/// The declared spelling of an enumerated value (`EARLIEST` → `earliest`).
fn one_of(leaf: &Leaf, v: Value) -> Result<Value, String> {
    let (Value::String(text), false) = (&v, leaf.allowed.is_empty()) else {
        return Ok(v);
    };
    let wanted = relaxed(text);
    match leaf.allowed.iter().find(|a| relaxed(a) == wanted) {
        Some(a) => Ok(Value::String(a.clone())),
        None => {
            let list = leaf.allowed.join(", ");
            let suggestion = suggest(text, leaf.allowed.iter().map(String::as_str));
            Err(format!(
                "one of {list}{}",
                did_you_mean(suggestion.as_deref())
            ))
        }
    }
}

fn check_bounds(leaf: &Leaf, v: &Value) -> Result<(), String> {
    let Some(n) = v.as_f64() else {
        return Ok(());
    };
    match (leaf.min, leaf.max) {
        (Some(min), _) if leaf.min_exclusive && n <= min => Err(format!("greater than {min}")),
        (Some(min), _) if !leaf.min_exclusive && n < min => Err(format!("at least {min}")),
        (_, Some(max)) if n > max => Err(format!("at most {max}")),
        _ => Ok(()),
    }
}

/// Milliseconds from a number or a duration string (`5s`).
fn duration_ms(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => parse_duration_ms(s),
        other => to_u64(other),
    }
}

fn to_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
}

/// Parses `1000`, `500ms`, `5s`, `2m`, `1h`, `1d`, or ISO-8601 `PT5S`/`PT1M30S`/`PT0.5S`.
pub fn parse_duration_ms(s: &str) -> Option<u64> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u64>() {
        return Some(n);
    }
    let lower = t.to_ascii_lowercase();
    if let Some(iso) = lower.strip_prefix("pt") {
        let mut total = 0f64;
        for part in iso.split_inclusive(|c: char| c.is_ascii_alphabetic()) {
            let (num, unit) = part.split_at(part.find(|c: char| c.is_ascii_alphabetic())?);
            total += num.parse::<f64>().ok()? * unit_ms(unit)? as f64;
        }
        // `as u64` saturates: a total past u64::MAX (or infinite, or NaN) is out of range,
        // not u64::MAX milliseconds.
        let ms = total.round();
        return (0.0..18_446_744_073_709_551_616.0)
            .contains(&ms)
            .then_some(ms as u64);
    }
    let (num, unit) = lower.split_at(lower.find(|c: char| !c.is_ascii_digit())?);
    num.parse::<u64>().ok()?.checked_mul(unit_ms(unit.trim())?)
}

/// Milliseconds in one `unit` (`ms`, `s`, `m`, `h`, `d`).
fn unit_ms(unit: &str) -> Option<u64> {
    let ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("1000"), Some(1000));
        assert_eq!(parse_duration_ms("5s"), Some(5000));
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("PT1M30S"), Some(90_000));
        assert_eq!(parse_duration_ms("PT0.5S"), Some(500));
        assert_eq!(parse_duration_ms("soon"), None);
        for junk in [
            "PT5é",
            "PT5",
            "PT1.5.5S",
            "PT5MS",
            "5é",
            "5 y",
            "PT1e400S",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration_ms(junk), None, "{junk}");
        }
        assert_eq!(parse_duration_ms("2h"), Some(7_200_000));
        assert_eq!(parse_duration_ms("1d"), Some(86_400_000));
    }

    #[test]
    fn booleans_as_spring_converts_text() {
        use serde_json::json;
        for (text, want) in [("true", true), ("Yes", true), ("on", true), ("1", true)] {
            assert_eq!(
                coerce(Kind::Bool, &json!(text)),
                Some(json!(want)),
                "{text}"
            );
        }
        for (text, want) in [
            ("FALSE", false),
            ("no", false),
            (" off ", false),
            ("0", false),
        ] {
            assert_eq!(
                coerce(Kind::Bool, &json!(text)),
                Some(json!(want)),
                "{text}"
            );
        }
        for junk in [json!("y"), json!("2"), json!(1), json!("")] {
            assert_eq!(coerce(Kind::Bool, &junk), None, "{junk}");
        }
    }
}
