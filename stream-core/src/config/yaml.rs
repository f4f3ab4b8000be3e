//! YAML text to a JSON tree, within bounds: at most [`MAX_DEPTH`] levels, a dotted key
//! counting one level per segment, and at most [`MAX_NODES`] values per source, an alias
//! counting every value it repeats. Everything after parsing (dotted-key expansion, merging,
//! normalising, validation) recurses over the tree, so the depth is bounded here, once, and a
//! billion-laughs document fails before it grows memory.

use std::cell::{Cell, RefCell};
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess};
use serde::de::{IgnoredAny, VariantAccess, Visitor};
use serde_json::{Map, Value};

use super::tree::{needs_split, split_key};

/// The deepest a property may be nested: path segments from the root, dotted-key segments
/// and list indexes included. Real configurations use about a dozen.
pub const MAX_DEPTH: usize = 64;
/// The most values one source may hold once its aliases are expanded.
pub const MAX_NODES: usize = 250_000;

/// A bound that parsing hit: what, and the key path down to where.
#[derive(Debug)]
pub struct LimitHit {
    /// The path prefix (`a.b[2].c`), the first [`MAX_DEPTH`] segments at most.
    pub path: String,
    /// What went wrong, in words.
    pub message: String,
}

/// One step of the path being parsed.
enum Step {
    Key(String),
    Index(usize),
}

/// The count and path shared by every value of one source.
#[derive(Default)]
pub struct Budget {
    nodes: Cell<usize>,
    path: RefCell<Vec<Step>>,
    hit: RefCell<Option<LimitHit>>,
}

impl Budget {
    /// The bound hit by the last failed parse, if that is why it failed.
    pub fn take_hit(&self) -> Option<LimitHit> {
        self.hit.borrow_mut().take()
    }

    /// Records `message` at the current path and returns it as a parse error.
    fn fail<E: de::Error>(&self, message: String) -> E {
        let path = path_text(&self.path.borrow());
        let err = E::custom(&message);
        *self.hit.borrow_mut() = Some(LimitHit { path, message });
        err
    }
}

fn path_text(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps.iter().take(MAX_DEPTH) {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if steps.len() > MAX_DEPTH {
        out.push_str("...");
    }
    out
}

/// Parses one value found `depth` levels below the document root.
#[derive(Clone, Copy)]
pub struct Seed<'b> {
    /// The source's shared count and path.
    pub budget: &'b Budget,
    /// Path segments above this value.
    pub depth: usize,
}

impl Seed<'_> {
    fn below(self, levels: usize) -> Self {
        Seed {
            budget: self.budget,
            depth: self.depth + levels,
        }
    }

    /// Counts this value; fails past the depth or the size bound. Called from the visitor,
    /// so that the parser's error carries this value's line.
    fn enter<E: de::Error>(self) -> Result<(), E> {
        if self.depth > MAX_DEPTH {
            return Err(self
                .budget
                .fail(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let n = self.budget.nodes.get() + 1;
        self.budget.nodes.set(n);
        if n > MAX_NODES {
            return Err(self.budget.fail(format!(
                "more than {MAX_NODES} values in one source (aliases count each value they repeat)"
            )));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
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

    /// NaN and infinity have no JSON form; they keep their YAML spelling so validation can
    /// report them. (A literal that overflows, `1e309`, already arrives as a string.)
    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        self.enter()?;
        Ok(serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(non_finite_text(f).to_owned())))
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
            self.budget.path.borrow_mut().push(Step::Index(items.len()));
            let next = seq.next_element_seed(self.below(1));
            self.budget.path.borrow_mut().pop();
            match next? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(self.below(1))? {
            let key = key_text(key);
            let steps = key_steps(&key);
            let levels = steps.len().max(1);
            self.budget.path.borrow_mut().extend(steps);
            let value = if out.contains_key(&key) {
                Err(self.budget.fail("duplicate key".to_owned()))
            } else {
                map.next_value_seed(self.below(levels))
            };
            let mut path = self.budget.path.borrow_mut();
            let keep = path.len().saturating_sub(levels);
            path.truncate(keep);
            drop(path);
            out.insert(key, value?);
        }
        apply_merge_key(&mut out);
        Ok(Value::Object(out))
    }

    /// A tagged value (`!secret x`): the tag is dropped, the value kept.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (IgnoredAny, content) = data.variant()?;
        content.newtype_variant_seed(self)
    }
}

/// YAML merge keys (`<<: *defaults`, or a list of them), which Spring's YAML loader applies:
/// the merged maps' entries are added where the map has no key of its own, earlier maps of a
/// list first.
fn apply_merge_key(map: &mut Map<String, Value>) {
    let merged = match map.remove("<<") {
        Some(Value::Object(m)) => vec![m],
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .collect(),
        Some(other) => {
            map.insert("<<".to_owned(), other);
            return;
        }
        None => return,
    };
    for m in merged {
        for (k, v) in m {
            map.entry(k).or_insert(v);
        }
    }
}

/// YAML's spelling of a float that JSON cannot hold.
fn non_finite_text(f: f64) -> &'static str {
    if f.is_nan() {
        ".nan"
    } else if f > 0.0 {
        ".inf"
    } else {
        "-.inf"
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

/// The path segments a key stands for (`a.b.c` is three levels once expanded).
fn key_steps(key: &str) -> Vec<Step> {
    if needs_split(key) {
        split_key(key).into_iter().map(Step::Key).collect()
    } else {
        vec![Step::Key(key.to_owned())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<Value, (Option<LimitHit>, String)> {
        let budget = Budget::default();
        let de = serde_yaml_ng::Deserializer::from_str(text);
        Seed {
            budget: &budget,
            depth: 0,
        }
        .deserialize(de)
        .map_err(|e| (budget.take_hit(), e.to_string()))
    }

    #[test]
    fn converts_scalars_keys_and_tags() {
        let v = parse("a: 1\nb: -2\nc: 1.5\nd: ~\ne: [x, true]\n1: k\n~: n\nf: !tag v\ng: 99999999999999999999\nh: .nan\ni: 1e309\n")
            .unwrap();
        assert_eq!(
            v,
            json!({"a": 1, "b": -2, "c": 1.5, "d": null, "e": ["x", true], "1": "k", "~": "n",
                "f": "v", "g": "99999999999999999999", "h": ".nan", "i": "1e309"})
        );
    }

    #[test]
    fn depth_counts_dotted_segments_and_names_the_path() {
        let ok = format!("{}: 1\n", vec!["a"; MAX_DEPTH].join("."));
        assert!(parse(&ok).is_ok());
        let deep = format!("x:\n  {}: 1\n", vec!["a"; MAX_DEPTH].join("."));
        let (hit, text) = parse(&deep).unwrap_err();
        let hit = hit.unwrap();
        assert!(hit.path.starts_with("x.a.a."), "{}", hit.path);
        assert!(hit.message.contains("deeper than 64"), "{}", hit.message);
        assert!(text.contains("line 2"), "{text}");
        let (hit, _) = parse(&format!("l: {}1{}", "[".repeat(100), "]".repeat(100))).unwrap_err();
        assert!(hit.unwrap().path.starts_with("l[0][0]"));
    }

    #[test]
    fn aliases_count_every_value_they_repeat() {
        let anchor = vec!["1"; 1000].join(",");
        let aliases = vec!["*a"; 300].join(",");
        let (hit, _) = parse(&format!("big: &a [{anchor}]\ncopies: [{aliases}]\n")).unwrap_err();
        assert!(hit.unwrap().message.contains("aliases"));
    }

    #[test]
    fn merge_keys_add_what_the_map_lacks() {
        let yaml = "d: &d {a: 1, b: 2}\ne: &e {c: 3}\nx:\n  <<: [*d, *e]\n  b: 9\n";
        let v = parse(yaml).unwrap_or_else(|e| panic!("{}", e.1));
        assert_eq!(v["x"], serde_json::json!({"a": 1, "b": 9, "c": 3}));
    }

    #[test]
    fn duplicate_keys_name_the_key() {
        // The line is the map's: the parser marks the value being visited.
        let (hit, text) = parse("a:\n  b: 1\n  b: 2\n").unwrap_err();
        assert_eq!(hit.unwrap().path, "a.b");
        assert!(text.contains("line 2"), "{text}");
    }
}
