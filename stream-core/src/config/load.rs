//! Reading sources: YAML files and inline text, multi-document sections, profile activation
//! (`spring.config.activate.on-profile`, legacy `spring.profiles`) and profile-specific files
//! (`application-<profile>.yaml` / `.yml` beside the main file).

#![allow(clippy::result_large_err)] // issues are rare and returned once per source

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::ConfigIssue;
use super::normalise::normalise;
use super::redact::redact_uris;
use super::schema::{BinderSchemas, Schema};
use super::tree::{expand_dotted, get_path, remove_path, scalar_text};

/// One YAML document of a source, normalised.
#[derive(Clone, Debug)]
pub struct Doc {
    /// The document's properties (dotted keys expanded, relaxed names normalised).
    pub tree: Value,
    /// The profile expression that activates it (`None` = always active).
    pub activation: Option<String>,
}

/// Parses a (multi-document) YAML text. A syntax error becomes one issue with the source name
/// and the line/column.
pub fn parse_yaml(
    name: &str,
    text: &str,
    schema: &Schema,
    binders: &BinderSchemas,
) -> Result<Vec<Doc>, ConfigIssue> {
    let issue = |message: String| ConfigIssue::new("", message).with_source(name);
    if text.len() > MAX_SOURCE_BYTES {
        return Err(issue(too_large("source")));
    }
    let mut docs = Vec::new();
    // The parser's messages name the problem and its position, not values; URIs are hidden
    // all the same.
    let parsed = super::yaml::documents(text).map_err(|e| issue(redact_uris(&e)))?;
    for json in parsed {
        if !json.is_object() {
            let found = super::validate::describe_found("", &json, false);
            let message = format!("expected a map of properties at the top level, found {found}");
            return Err(issue(message));
        }
        let mut tree = normalise(expand_dotted(json), Some(&schema.root), "", binders);
        let activation = take_activation(&mut tree).map_err(|i| i.with_source(name))?;
        docs.push(Doc { tree, activation });
    }
    Ok(docs)
}

/// Removes and returns the document's activation expression; an expression nested too
/// deeply is an issue at its key.
fn take_activation(tree: &mut Value) -> Result<Option<String>, ConfigIssue> {
    let as_expr = |v: &Value| match v {
        Value::Object(_) | Value::Null => None,
        other => Some(scalar_text(other)),
    };
    let checked = |path: &str, expr: Option<String>| {
        let check = |e: String| check_profile_expr(&e).map(|()| e);
        expr.map(check)
            .transpose()
            .map_err(|m| ConfigIssue::new(path, m))
    };
    let mut expr = None;
    if let Some(v) = remove_path(tree, &["spring", "config", "activate", "on-profile"]) {
        expr = checked("spring.config.activate.on-profile", as_expr(&v))?;
        prune_empty(tree, &["spring", "config", "activate"]);
        prune_empty(tree, &["spring", "config"]);
    }
    let legacy = checked(
        "spring.profiles",
        get_path(tree, &["spring", "profiles"]).and_then(as_expr),
    )?;
    if let Some(l) = legacy {
        remove_path(tree, &["spring", "profiles"]);
        expr = Some(match expr {
            Some(e) => format!("({e})&({l})"),
            None => l,
        });
    }
    Ok(expr)
}

fn prune_empty(tree: &mut Value, path: &[&str]) {
    if get_path(tree, path).is_some_and(|v| v.as_object().is_some_and(|m| m.is_empty())) {
        remove_path(tree, path);
    }
}

/// The deepest a profile expression may nest: each `!`, parenthesis and operator level
/// counts. Real expressions use two or three; the bound keeps the recursion short.
pub const MAX_PROFILE_NESTING: usize = 32;

/// Whether a profile expression matches the active profiles. Supports `a,b` and `a|b` (any),
/// `a&b` (all), `!a` (not) and parentheses. An expression nested deeper than
/// [`MAX_PROFILE_NESTING`] matches nothing (parsing reports it, see [`check_profile_expr`]).
pub fn profiles_match(expr: &str, active: &[String]) -> bool {
    eval_profiles(expr, active, 0).unwrap_or(false)
}

/// An error message when the expression nests deeper than [`MAX_PROFILE_NESTING`].
pub fn check_profile_expr(expr: &str) -> Result<(), String> {
    match eval_profiles(expr, &[], 0) {
        Some(_) => Ok(()),
        None => Err(format!(
            "profile expression is nested more than {MAX_PROFILE_NESTING} levels deep"
        )),
    }
}

/// The expression's value, or `None` past the nesting bound. Every part is evaluated (no
/// short cut), so that a too-deep part is found whatever the active profiles are.
fn eval_profiles(expr: &str, active: &[String], depth: usize) -> Option<bool> {
    if depth > MAX_PROFILE_NESTING {
        return None;
    }
    let e = expr.trim();
    if e.is_empty() {
        return Some(false);
    }
    for sep in [[',', '|'], ['&', '&']] {
        let parts = split_top(e, sep);
        if parts.len() > 1 {
            let values = parts.iter().map(|p| eval_profiles(p, active, depth + 1));
            let values = values.collect::<Option<Vec<bool>>>()?;
            // `a,b` and `a|b`: some part is true; `a&b`: no part is false.
            let any = sep[0] == ',';
            return Some(values.contains(&any) == any);
        }
    }
    if let Some(rest) = e.strip_prefix('!') {
        return eval_profiles(rest, active, depth + 1).map(|v| !v);
    }
    if let Some(inner) = e.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        return eval_profiles(inner, active, depth + 1);
    }
    Some(active.iter().any(|a| a == e))
}

fn split_top(e: &str, seps: [char; 2]) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in e.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if depth == 0 && seps.contains(&c) => {
                parts.push(&e[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&e[start..]);
    parts
}

/// The largest source read (a file or inline text). Real configurations are a few KiB; the
/// bound keeps `/dev/zero` or a 50 MB file from being read into memory, and, with the
/// parser's budget (`config/yaml.rs`), bounds the tree a source can grow into.
pub const MAX_SOURCE_BYTES: usize = 1 << 20;

/// Reads a file as text, at most [`MAX_SOURCE_BYTES`]; a missing, unreadable, oversized or
/// non-UTF-8 file is an issue naming it.
pub fn read_text(path: &Path) -> Result<String, ConfigIssue> {
    use std::io::Read;
    let issue =
        |message: String| ConfigIssue::new("", message).with_source(path.display().to_string());
    let cannot = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => issue("configuration file not found".to_owned()),
        _ => issue(format!("cannot read configuration file: {e}")),
    };
    let mut bytes = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "too large".
    let file = std::fs::File::open(path).map_err(cannot)?;
    let read = file
        .take(MAX_SOURCE_BYTES as u64 + 1)
        .read_to_end(&mut bytes);
    read.map_err(cannot)?;
    if bytes.len() > MAX_SOURCE_BYTES {
        return Err(issue(too_large("configuration file")));
    }
    String::from_utf8(bytes).map_err(|e| {
        issue(format!(
            "configuration file is not valid UTF-8 (at byte {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// The message for a source over [`MAX_SOURCE_BYTES`].
pub fn too_large(what: &str) -> String {
    let mib = MAX_SOURCE_BYTES >> 20;
    format!("{what} is larger than {mib} MiB; not read")
}

/// The existing profile-specific files for `main` (`<stem>-<profile>.yaml`, then `.yml`).
pub fn profile_files(main: &Path, profile: &str) -> Vec<PathBuf> {
    let stem = main
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = main.parent().unwrap_or_else(|| Path::new(""));
    ["yaml", "yml"]
        .iter()
        .map(|ext| dir.join(format!("{stem}-{profile}.{ext}")))
        .filter(|p| p.is_file())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_expressions() {
        let active = vec!["dev".to_owned(), "eu".to_owned()];
        assert!(profiles_match("dev", &active));
        assert!(profiles_match("prod,dev", &active));
        assert!(profiles_match("!prod", &active));
        assert!(!profiles_match("!dev", &active));
        assert!(profiles_match("dev & (eu | us)", &active));
        assert!(!profiles_match("dev & us", &active));
        assert!(profiles_match("!!dev", &active));
    }

    #[test]
    fn profile_expressions_are_bounded() {
        let ok = format!("{}dev", "!".repeat(MAX_PROFILE_NESTING));
        assert!(check_profile_expr(&ok).is_ok());
        let deep = format!("{}dev", "!".repeat(20_000));
        assert!(check_profile_expr(&deep).is_err());
        assert!(!profiles_match(&deep, &["dev".to_owned()]));
        let parens = format!("{}dev{}", "(".repeat(50), ")".repeat(50));
        assert!(check_profile_expr(&parens).is_err());
    }

    #[test]
    fn malformed_yaml_reports_line() {
        let err = parse_yaml(
            "application.yaml",
            "a:\n  b: 1\n c: [\n",
            &Schema::core(),
            &BinderSchemas::new(),
        )
        .unwrap_err();
        assert_eq!(err.source.as_deref(), Some("application.yaml"));
        assert!(err.message.contains("line 3"), "{}", err.message);
    }
}
