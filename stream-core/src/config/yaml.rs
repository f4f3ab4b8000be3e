//! YAML text to JSON trees, within bounds. serde-saphyr parses (pure Rust, in time linear in
//! the text): its budget bounds the nesting of flow and block collections, the values of a
//! source once its aliases are expanded, and the aliases; merge keys (`<<: *defaults`, which
//! Spring's YAML loader applies) and duplicate-key errors are its too. The visitor here adds
//! the one bound the parser cannot see: a dotted key counts one level per segment. Everything
//! after parsing (dotted-key expansion, merging, normalising, validation) recurses over the
//! tree, so the depth is bounded here, once.

use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, EnumAccess, MapAccess};
use serde::de::{IgnoredAny, SeqAccess, VariantAccess, Visitor};
use serde_json::{Map, Value};
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::options::NonFiniteFloatPolicy;
use serde_saphyr::Error;

use super::tree::{needs_split, split_key};

/// The deepest a property may be nested: path segments from the root, dotted-key segments
/// and list indexes included. Real configurations use about a dozen.
pub const MAX_DEPTH: usize = 64;
/// The most values one source may hold once its aliases are expanded.
pub const MAX_NODES: usize = 250_000;

/// The documents of `text` that are not empty, each a JSON tree.
pub fn documents(text: &str) -> Result<Vec<Value>, Error> {
    let docs: Vec<Doc> = serde_saphyr::from_multiple_with_options(text, options())?;
    Ok(docs.into_iter().map(|d| d.0).collect())
}

/// What `e` reports, in words, with its line and column: `malformed YAML at line 3, column
/// 2: ...` for a syntax error, the bound for input past one.
pub fn describe(e: &Error) -> String {
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
    let text = e.to_string();
    let text = text.split(" at line ").next().unwrap_or(&text);
    if text.contains(DEEPER) {
        format!("{text}{at}")
    } else if text == "recursion limit exceeded" {
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
            format!(
                "more than {} documents in one source",
                documents.saturating_sub(1)
            )
        }
        BudgetBreach::Aliases { aliases } => {
            format!(
                "more than {} aliases in one source",
                aliases.saturating_sub(1)
            )
        }
        other => format!("too large to read ({other:?})"),
    })
}

/// The words of every depth bound.
const DEEPER: &str = "nested deeper than";

/// The parser's bounds. Its depth bound sits above [`MAX_DEPTH`] so that this module's own
/// check, which names the key path, fires first; the parser's is the backstop. Snippets of
/// the source are never shown: they could show a secret. NaN and infinity (also `1e309`)
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

/// One document, read by [`Node`].
struct Doc(Value);

impl<'de> Deserialize<'de> for Doc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Node { depth: 0, at: None }.deserialize(d).map(Doc)
    }
}

/// One step of the path down to a value: a map key or a list index.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// The path to a value, as a list linked upwards through the visitors' stack frames.
struct Link<'a> {
    step: Step<'a>,
    up: Option<&'a Link<'a>>,
}

/// Reads one value found `depth` levels below the document root, at the path `at`.
#[derive(Clone, Copy)]
struct Node<'a> {
    depth: usize,
    at: Option<&'a Link<'a>>,
}

impl Node<'_> {
    /// Fails past the depth bound, naming the path. Called from the visitor, so that the
    /// parser's error carries this value's line.
    fn enter<E: de::Error>(self) -> Result<(), E> {
        if self.depth <= MAX_DEPTH {
            return Ok(());
        }
        Err(E::custom(format!(
            "`{}` is {DEEPER} {MAX_DEPTH} levels",
            self.path()
        )))
    }

    /// The path, `a.b[2].c`, cut after [`MAX_DEPTH`] keys.
    fn path(self) -> String {
        let mut steps = Vec::new();
        let mut at = self.at;
        while let Some(link) = at {
            steps.push(&link.step);
            at = link.up;
        }
        let mut out = String::new();
        for step in steps.iter().rev() {
            match step {
                Step::Key(k) if out.is_empty() => out.push_str(k),
                Step::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        match out.match_indices('.').nth(MAX_DEPTH - 1) {
            Some((cut, _)) => format!("{}...", &out[..cut]),
            None => out,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        self.enter()?;
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        self.enter()?;
        Ok(Value::from(i))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        self.enter()?;
        Ok(Value::from(u))
    }

    /// Integers past 64 bits keep their digits, so that validation reports them as written.
    fn visit_i128<E: de::Error>(self, i: i128) -> Result<Value, E> {
        self.enter()?;
        Ok(Value::String(i.to_string()))
    }

    fn visit_u128<E: de::Error>(self, u: u128) -> Result<Value, E> {
        self.enter()?;
        Ok(Value::String(u.to_string()))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        self.enter()?;
        Ok(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        self.enter()?;
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        self.enter()?;
        Ok(Value::String(s))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.enter()?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut items = Vec::new();
        loop {
            let link = Link {
                step: Step::Index(items.len()),
                up: self.at,
            };
            let node = Node {
                depth: self.depth + 1,
                at: Some(&link),
            };
            match seq.next_element_seed(node)? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut out = Map::new();
        let below = Node {
            depth: self.depth + 1,
            at: self.at,
        };
        while let Some(key) = map.next_key_seed(below)? {
            let key = key_text(key);
            // `a.b.c` is three levels once expanded.
            let levels = if needs_split(&key) {
                split_key(&key).len().max(1)
            } else {
                1
            };
            let link = Link {
                step: Step::Key(&key),
                up: self.at,
            };
            let node = Node {
                depth: self.depth + levels,
                at: Some(&link),
            };
            let value = map.next_value_seed(node)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }

    /// A tagged value (`!secret x`): the tag is dropped, the value kept.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (IgnoredAny, content) = data.variant()?;
        content.newtype_variant_seed(self)
    }
}

/// A map key as text: strings as they are, `~` for null, other values as JSON.
fn key_text(key: Value) -> String {
    match key {
        Value::String(s) => s,
        Value::Null => "~".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<Value, String> {
        match documents(text) {
            Ok(mut docs) => Ok(docs.pop().unwrap_or(Value::Null)),
            Err(e) => Err(describe(&e)),
        }
    }

    #[test]
    fn converts_scalars_keys_and_tags() {
        let v = parse("a: 1\nb: -2\nc: 1.5\nd: ~\ne: [x, true]\n1: k\n~: n\nf: !tag v\ng: 99999999999999999999\nh: .nan\ni: 1e309\nj: yes\nk: 0755\nl: 1_000\n")
            .unwrap();
        assert_eq!(
            v,
            json!({"a": 1, "b": -2, "c": 1.5, "d": null, "e": ["x", true], "1": "k", "~": "n",
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
        assert!(text.contains("at line 2"), "{text}");
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
