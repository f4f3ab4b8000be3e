//! [`SchemaNode`]s read from a settings struct's derived JSON Schema, so the struct's fields are
//! the one declaration of its properties.

use schemars::{generate::SchemaSettings, JsonSchema};
use serde_json::{Map, Value};

use super::{Kind, Leaf, SchemaNode};

impl SchemaNode {
    /// The node of settings type `T`: a closed object of its (serde-named) fields, each
    /// converted by kind (see the module docs for the annotations read).
    pub fn of<T: JsonSchema>() -> SchemaNode {
        let generator = SchemaSettings::draft2020_12().into_generator();
        let root = generator.into_root_schema_for::<T>().to_value();
        let defs = root
            .get("$defs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        convert(&root, &defs)
    }
}

/// Converts one JSON Schema to a node; `$ref`s are resolved in `defs`.
fn convert(schema: &Value, defs: &Map<String, Value>) -> SchemaNode {
    let Some(obj) = schema.as_object() else {
        return SchemaNode::Any; // `true`
    };
    if obj.contains_key("allOf") && !obj.contains_key("type") {
        return annotate(object(obj, defs), obj);
    }
    let annotated = |node: SchemaNode| annotate(node, obj);
    if let Some(target) = obj.get("$ref").and_then(Value::as_str) {
        let name = target.rsplit('/').next().unwrap_or(target);
        return match defs.get(name) {
            Some(def) => annotated(convert(def, defs)),
            None => SchemaNode::Any,
        };
    }
    if let Some(variants) = obj.get("anyOf").or_else(|| obj.get("oneOf")) {
        let variants: Vec<&Value> = variants
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v.get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        // An enum whose variants carry docs: one `const` per variant.
        let consts = variants.iter().filter_map(|v| v.get("const")?.as_str());
        let allowed: Vec<String> = consts.map(str::to_owned).collect();
        if !allowed.is_empty() && allowed.len() == variants.len() {
            let leaf = Leaf {
                allowed,
                ..Leaf::default()
            };
            return annotated(SchemaNode::Leaf(leaf));
        }
        return annotated(
            variants
                .first()
                .map_or(SchemaNode::Any, |v| convert(v, defs)),
        );
    }
    let node = match obj.get("x-kind").and_then(Value::as_str) {
        Some("duration-ms") => SchemaNode::leaf(Kind::DurationMs),
        Some("duration-ms-list") => SchemaNode::leaf(Kind::DurationMsList),
        Some("free-map") => SchemaNode::leaf(Kind::FreeMap),
        Some("expression") => SchemaNode::leaf(Kind::Expression),
        _ => by_type(obj, defs),
    };
    annotated(node)
}

/// The first non-null `type` of a schema (`["integer", "null"]` is an optional integer).
fn type_of(obj: &Map<String, Value>) -> Option<&str> {
    match obj.get("type")? {
        Value::String(t) => Some(t),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    }
}

fn by_type(obj: &Map<String, Value>, defs: &Map<String, Value>) -> SchemaNode {
    match type_of(obj) {
        Some("object") => object(obj, defs),
        Some("boolean") => SchemaNode::leaf(Kind::Bool),
        Some("string") => SchemaNode::leaf(Kind::String),
        Some("number") => SchemaNode::leaf(Kind::Float),
        Some("integer") => integer(obj),
        Some("array") => {
            let items = obj.get("items").and_then(Value::as_object);
            match items.and_then(type_of) {
                Some("integer") => SchemaNode::leaf(Kind::UnsignedIntList),
                _ => SchemaNode::leaf(Kind::StringList),
            }
        }
        // An enum of unit variants has `enum` and no `type` in some generators.
        _ if obj.contains_key("enum") => SchemaNode::leaf(Kind::String),
        _ => SchemaNode::Any,
    }
}

fn object(obj: &Map<String, Value>, defs: &Map<String, Value>) -> SchemaNode {
    if obj.contains_key("properties") || obj.contains_key("allOf") {
        let mut fields = std::collections::BTreeMap::new();
        let props = obj.get("properties").and_then(Value::as_object);
        for (k, v) in props.into_iter().flatten() {
            fields.insert(k.clone(), convert(v, defs));
        }
        // `#[serde(flatten)]` members arrive as `allOf` parts: their fields are ours.
        for part in obj
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let SchemaNode::Object { fields: more, .. } = convert(part, defs) {
                fields.extend(more);
            }
        }
        return SchemaNode::Object {
            fields,
            open: obj.get("x-open").and_then(Value::as_bool) == Some(true),
        };
    }
    match obj.get("additionalProperties") {
        Some(inner @ Value::Object(_)) => SchemaNode::map(convert(inner, defs)),
        _ => SchemaNode::leaf(Kind::FreeMap),
    }
}

/// An integer leaf: unsigned when the declared minimum is non-negative; the bounds of the
/// field's width (`format: uint32`) become `min`/`max`.
fn integer(obj: &Map<String, Value>) -> SchemaNode {
    let format = obj.get("format").and_then(Value::as_str).unwrap_or("");
    let (lo, hi): (f64, f64) = match format {
        "uint8" => (0.0, u8::MAX.into()),
        "uint16" => (0.0, u16::MAX.into()),
        "uint32" | "uint" => (0.0, u32::MAX.into()),
        "int8" => (i8::MIN.into(), i8::MAX.into()),
        "int16" => (i16::MIN.into(), i16::MAX.into()),
        "int32" => (i32::MIN.into(), i32::MAX.into()),
        "uint64" => (0.0, f64::INFINITY),
        _ => (f64::NEG_INFINITY, f64::INFINITY),
    };
    let min = obj.get("minimum").and_then(Value::as_f64).unwrap_or(lo);
    let kind = if min >= 0.0 {
        Kind::UnsignedInt
    } else {
        Kind::Int
    };
    let declared_max = obj.get("maximum").and_then(Value::as_f64);
    SchemaNode::Leaf(Leaf {
        kind,
        min: Some(min).filter(|m| m.is_finite() && (*m > 0.0 || kind == Kind::Int)),
        max: declared_max.or(Some(hi).filter(|m| m.is_finite())),
        ..Leaf::default()
    })
}

/// Applies the annotations a field carries beside its type: bounds, enumerated values,
/// `x-unused`, and the `Secret` marker.
fn annotate(mut node: SchemaNode, obj: &Map<String, Value>) -> SchemaNode {
    let unused = obj.get("x-unused").and_then(Value::as_bool) == Some(true);
    if unused && !matches!(node, SchemaNode::Leaf(_)) {
        node = SchemaNode::leaf(Kind::Any);
    }
    let SchemaNode::Leaf(leaf) = &mut node else {
        return node;
    };
    leaf.unused |= unused;
    leaf.secret |= obj.get("x-secret").and_then(Value::as_bool) == Some(true);
    if let Some(m) = obj.get("minimum").and_then(Value::as_f64) {
        if leaf.kind != Kind::UnsignedInt || m > 0.0 {
            leaf.min = Some(m);
        }
    }
    if let Some(m) = obj.get("exclusiveMinimum").and_then(Value::as_f64) {
        leaf.min = Some(m);
        leaf.min_exclusive = true;
    }
    if let Some(values) = obj.get("enum").and_then(Value::as_array) {
        leaf.allowed = strings(values);
    }
    if let Some(Value::String(c)) = obj.get("const") {
        leaf.allowed.push(c.clone());
    }
    node
}

fn strings(values: &[Value]) -> Vec<String> {
    let texts = values.iter().filter_map(Value::as_str);
    texts.map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "kebab-case", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        #[schemars(range(min = 1))]
        max_attempts: u32,
        #[schemars(extend("x-kind" = "duration-ms"))]
        back_off: u64,
        #[schemars(extend("exclusiveMinimum" = 0))]
        multiplier: f64,
        offset: Option<i32>,
        mode: Option<Mode>,
        names: Vec<String>,
        by_name: std::collections::BTreeMap<String, bool>,
        #[schemars(extend("x-kind" = "free-map"))]
        environment: Value,
        #[schemars(extend("x-unused" = true))]
        requeue_rejected: Option<Value>,
    }

    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Mode {
        Earliest,
        Latest,
    }

    fn leaf<'a>(node: &'a SchemaNode, key: &str) -> &'a Leaf {
        match node.field(key) {
            Some(SchemaNode::Leaf(l)) => l,
            other => panic!("{key}: {other:?}"),
        }
    }

    #[test]
    fn fields_become_typed_leaves() {
        let n = SchemaNode::of::<Sample>();
        let m = leaf(&n, "max-attempts");
        assert_eq!(
            (m.kind, m.min, m.max),
            (Kind::UnsignedInt, Some(1.0), Some(4294967295.0))
        );
        assert_eq!(leaf(&n, "back-off").kind, Kind::DurationMs);
        let f = leaf(&n, "multiplier");
        assert_eq!(
            (f.kind, f.min, f.min_exclusive),
            (Kind::Float, Some(0.0), true)
        );
        let o = leaf(&n, "offset");
        assert_eq!((o.kind, o.min), (Kind::Int, Some(f64::from(i32::MIN))));
        assert_eq!(leaf(&n, "mode").allowed, ["earliest", "latest"]);
        assert_eq!(leaf(&n, "names").kind, Kind::StringList);
        assert!(matches!(n.field("by-name"), Some(SchemaNode::Map(_))));
        assert_eq!(leaf(&n, "environment").kind, Kind::FreeMap);
        assert!(leaf(&n, "requeue-rejected").unused);
        assert!(matches!(n, SchemaNode::Object { open: false, .. }));
    }
}
