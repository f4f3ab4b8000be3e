//! YAML text to JSON trees, within bounds. serde-saphyr parses (pure Rust, in time linear in
//! the text): its budget bounds the nesting of flow and block collections, the values of a
//! source once its aliases are expanded, the aliases and the documents; merge keys
//! (`<<: *defaults`, which Spring's YAML loader applies) and duplicate-key errors are its too.
//! The one bound the parser cannot see is checked on the tree: a dotted key counts one level
//! per segment. Everything after parsing (dotted-key expansion, merging, normalising,
//! validation) recurses over the tree, so the depth is bounded here, once.

use serde_json::Value;
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::options::NonFiniteFloatPolicy;
use serde_saphyr::Error;

use super::tree::{needs_split, split_key};

/// The deepest a property may be nested: path segments from the root, dotted-key segments
/// and list indexes included. Real configurations use about a dozen.
pub const MAX_DEPTH: usize = 64;
/// The most values one source may hold once its aliases are expanded.
pub const MAX_NODES: usize = 250_000;

/// The documents of `text` that are not empty, each a JSON tree; or what is wrong, in words.
pub fn documents(text: &str) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, options()).map_err(|e| describe(&e))?;
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    match docs.iter().find_map(|d| too_deep(d, 0)) {
        Some(path) => Err(format!("`{}` is {DEEPER} {MAX_DEPTH} levels", cut(&path))),
        None => Ok(docs),
    }
}

/// What `e` reports, in words, with its line and column: `malformed YAML at line 3, column
/// 2: ...` for a syntax error, the bound for input past one.
fn describe(e: &Error) -> String {
    let at = e
        .location()
        .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
        .unwrap_or_default();
    let mut e = e;
    while let Error::AliasError { error, .. } | Error::WithSnippet { error, .. } = e {
        e = error;
    }
    if let Some(bound) = bound(e) {
        return format!("{bound}{at}");
    }
    // Every map key is read as a string: a null or a collection there fails as one of these.
    let string_expected =
        matches!(e, Error::Unexpected { expected, .. } if *expected == "string scalar");
    if string_expected || matches!(e, Error::NullIntoString { .. }) {
        return format!("a key must be text, a number or a boolean{at}");
    }
    let text = e.to_string();
    let text = text.split(" at line ").next().unwrap_or(&text);
    if text == "recursion limit exceeded" {
        // The scanner's words for flow collections nested past the budget.
        format!("flow collections {DEEPER} {MAX_DEPTH} levels{at}")
    } else {
        format!("malformed YAML{at}: {text}")
    }
}

/// The bound `e` reports input past, in words (an alias inside its own anchor is one: its
/// expansion would never end).
fn bound(e: &Error) -> Option<String> {
    let Error::Budget { breach, .. } = e else {
        return matches!(e, Error::RecursiveReferencesRequireWeakTypes { .. })
            .then(|| "an alias refers to the value that contains it".to_owned());
    };
    Some(match breach {
        BudgetBreach::Depth { .. } => format!("{DEEPER} {MAX_DEPTH} levels"),
        BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. } => format!(
            "more than {MAX_NODES} values in one source (aliases count each value they repeat)"
        ),
        BudgetBreach::Documents { documents } => {
            let n = documents.saturating_sub(1);
            format!("more than {n} documents in one source")
        }
        BudgetBreach::Aliases { aliases } => {
            let n = aliases.saturating_sub(1);
            format!("more than {n} aliases in one source")
        }
        other => format!("too large to read ({other:?})"),
    })
}

/// The words of every depth bound.
const DEEPER: &str = "nested deeper than";

/// The parser's bounds. Its depth bound sits just above [`MAX_DEPTH`], so that [`too_deep`]
/// names the key path of a dotted key past the bound, and the parser the line of a nesting
/// past it (its recursion costs stack: a debug build overflows a 2 MiB thread near 128
/// levels). Snippets of the source are never shown: they could show a secret. NaN and infinity (also `1e309`)
/// have no JSON form: they arrive in YAML's spelling (`.nan`, `.inf`), which validation
/// reports. Scalars are typed as YAML 1.2's core schema types them (`yes`, `0755` and
/// `1_000` stay text, as in `serde_yaml`).
fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH + 2;
    budget.flow_nesting_limit = MAX_DEPTH;
    budget.max_nodes = MAX_NODES;
    serde_saphyr::options! {
        budget: Some(budget),
        with_snippet: false,
        non_finite_float_policy: NonFiniteFloatPolicy::AsString,
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
    }
}

/// The path (`.a.b[2].c`) of the first value of `v` more than [`MAX_DEPTH`] levels below the
/// root, when `v` is `depth` levels down; a dotted key counts a level per segment. The
/// parser's budget bounds this recursion.
fn too_deep(v: &Value, depth: usize) -> Option<String> {
    if depth > MAX_DEPTH {
        return Some(String::new());
    }
    match v {
        Value::Object(m) => m.iter().find_map(|(k, v)| {
            let levels = if needs_split(k) {
                split_key(k).len().max(1)
            } else {
                1
            };
            Some(format!(".{k}{}", too_deep(v, depth + levels)?))
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| Some(format!("[{i}]{}", too_deep(v, depth + 1)?))),
        _ => None,
    }
}

/// `path` without its leading dot, cut after [`MAX_DEPTH`] keys.
fn cut(path: &str) -> String {
    let path = path.strip_prefix('.').unwrap_or(path);
    match path.match_indices('.').nth(MAX_DEPTH - 1) {
        Some((at, _)) => format!("{}...", &path[..at]),
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<Value, String> {
        documents(text).map(|mut docs| docs.pop().unwrap_or(Value::Null))
    }

    #[test]
    fn converts_scalars_keys_and_tags() {
        let v = parse("a: 1\nb: -2\nc: 1.5\nd: ~\ne: [x, true]\n1: k\nf: !tag v\ng: 99999999999999999999\nh: .nan\ni: 1e309\nj: yes\nk: 0755\nl: 1_000\n")
            .unwrap();
        assert_eq!(
            v,
            json!({"a": 1, "b": -2, "c": 1.5, "d": null, "e": ["x", true], "1": "k",
                "f": "v", "g": 1e20, "h": ".nan", "i": ".inf",
                "j": "yes", "k": "0755", "l": "1_000"})
        );
    }

    #[test]
    fn depth_counts_dotted_segments_and_names_the_path() {
        let ok = format!("{}: 1\n", vec!["a"; MAX_DEPTH].join("."));
        assert!(parse(&ok).is_ok());
        let deep = format!("x:\n  {}: 1\n", vec!["a"; MAX_DEPTH].join("."));
        let text = parse(&deep).unwrap_err();
        assert!(text.contains("`x.a.a."), "{text}");
        assert!(text.contains("deeper than 64"), "{text}");
        let nested: String = (0..200)
            .map(|i| format!("{}a:\n", "  ".repeat(i)))
            .collect();
        let text = parse(&format!("{nested}{}1\n", "  ".repeat(200))).unwrap_err();
        assert!(text.contains("deeper than 64 levels at line 67"), "{text}");
        let text = parse(&format!("l: {}1{}", "[".repeat(100), "]".repeat(100))).unwrap_err();
        assert!(
            text.contains("flow collections nested deeper than 64"),
            "{text}"
        );
    }

    #[test]
    fn aliases_count_every_value_they_repeat() {
        let anchor = vec!["1"; 1000].join(",");
        let aliases = vec!["*a"; 300].join(",");
        let text = parse(&format!("big: &a [{anchor}]\ncopies: [{aliases}]\n")).unwrap_err();
        assert!(text.contains("aliases"), "{text}");
    }

    #[test]
    fn alias_and_document_storms_are_named() {
        let text = parse("a: &a [*a]\n").unwrap_err();
        assert!(
            text.contains("refers to the value that contains it"),
            "{text}"
        );
        let text = parse(&"---\n".repeat(2000)).unwrap_err();
        assert!(text.contains("more than 1024 documents"), "{text}");
        let text = parse(&format!("a: &a 1\nb: [{}]\n", vec!["*a"; 60_000].join(","))).unwrap_err();
        assert!(text.contains("more than 50000 aliases"), "{text}");
    }

    #[test]
    fn keys_are_scalars() {
        for yaml in ["~: n\n", "[a]: b\n", "{a: 1}: b\n"] {
            let text = parse(yaml).unwrap_err();
            assert!(
                text.contains("a key must be text") && text.contains("line 1"),
                "{text}"
            );
        }
    }

    #[test]
    fn merge_keys_add_what_the_map_lacks() {
        let yaml = "d: &d {a: 1, b: 2}\ne: &e {c: 3}\nx:\n  <<: [*d, *e]\n  b: 9\n";
        let v = parse(yaml).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["x"], serde_json::json!({"a": 1, "b": 9, "c": 3}));
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_line() {
        let text = parse("a:\n  b: 1\n  b: 2\n").unwrap_err();
        assert!(text.contains("duplicate"), "{text}");
        assert!(text.contains("at line 3"), "{text}");
    }
}
