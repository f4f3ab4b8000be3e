//! The property schema: which keys exist under `spring.cloud.stream`, `spring.cloud.function`
//! and `spring.integration.poller`, what kind of value each takes, and which levels are
//! user-named maps (`bindings.<name>`, `binders.<name>`). Binder crates describe their
//! `spring.cloud.stream.<type>.*` section with the same types (see [`Schema::binder_section`]).

use std::collections::BTreeMap;

/// The kind of value a leaf property takes (after coercion from YAML scalars or env strings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Any scalar, kept as text.
    String,
    /// `true` / `false` (also the strings, any case).
    Bool,
    /// A non-negative integer.
    UnsignedInt,
    /// A signed integer.
    Int,
    /// A floating-point number.
    Float,
    /// Milliseconds: a number, or a string such as `500ms`, `5s`, `1m`, `2h`, `1d`, `PT5S`.
    DurationMs,
    /// A list of strings: a YAML list or a comma-separated string.
    StringList,
    /// A list of unsigned integers: a YAML list or a comma-separated string.
    UnsignedIntList,
    /// A free-form map (e.g. a binder's `environment`): keys are kept as written, dotted keys
    /// are expanded into nested objects, values are not checked.
    FreeMap,
}

impl Kind {
    /// How the kind is described in messages (`expected an unsigned integer`).
    pub fn describe(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Bool => "a boolean (true or false)",
            Kind::UnsignedInt => "an unsigned integer",
            Kind::Int => "an integer",
            Kind::Float => "a number",
            Kind::DurationMs => "a duration in milliseconds (e.g. 1000, 500ms, 5s)",
            Kind::StringList => "a list of strings",
            Kind::UnsignedIntList => "a list of unsigned integers",
            Kind::FreeMap => "a map",
        }
    }
}

/// A leaf property: its kind and optional numeric lower bound.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaf {
    /// The kind of value.
    pub kind: Kind,
    /// The smallest allowed value (numbers only).
    pub min: Option<f64>,
    /// Whether `min` itself is excluded (`> min` rather than `>= min`).
    pub min_exclusive: bool,
}

/// A node of the schema tree.
#[derive(Clone, Debug, PartialEq)]
pub enum SchemaNode {
    /// A property with a value.
    Leaf(Leaf),
    /// A fixed set of (kebab-case) keys. When `open`, unknown keys are allowed and kept
    /// (used for `spring.*` levels, where other frameworks' properties live).
    Object {
        /// The known keys.
        fields: BTreeMap<String, SchemaNode>,
        /// Whether unknown keys are allowed.
        open: bool,
    },
    /// A user-named map (`bindings.<name>`): keys are kept as written (case-sensitive), each
    /// value follows the inner node.
    Map(Box<SchemaNode>),
    /// Anything: not validated, keys normalised to kebab-case.
    Any,
}

impl SchemaNode {
    /// A leaf of `kind` without bounds.
    pub fn leaf(kind: Kind) -> Self {
        SchemaNode::Leaf(Leaf {
            kind,
            min: None,
            min_exclusive: false,
        })
    }
    /// A string leaf.
    pub fn string() -> Self {
        Self::leaf(Kind::String)
    }
    /// A boolean leaf.
    pub fn bool() -> Self {
        Self::leaf(Kind::Bool)
    }
    /// An unsigned integer leaf.
    pub fn uint() -> Self {
        Self::leaf(Kind::UnsignedInt)
    }
    /// A signed integer leaf.
    pub fn int() -> Self {
        Self::leaf(Kind::Int)
    }
    /// A floating-point leaf.
    pub fn float() -> Self {
        Self::leaf(Kind::Float)
    }
    /// A duration (milliseconds) leaf.
    pub fn duration_ms() -> Self {
        Self::leaf(Kind::DurationMs)
    }
    /// A list-of-strings leaf.
    pub fn string_list() -> Self {
        Self::leaf(Kind::StringList)
    }
    /// A free-form map leaf.
    pub fn free_map() -> Self {
        Self::leaf(Kind::FreeMap)
    }
    /// Requires numbers `>= min` (no effect on non-leaves).
    pub fn at_least(mut self, min: f64) -> Self {
        if let SchemaNode::Leaf(l) = &mut self {
            l.min = Some(min);
            l.min_exclusive = false;
        }
        self
    }
    /// Requires numbers `> min` (no effect on non-leaves).
    pub fn greater_than(mut self, min: f64) -> Self {
        if let SchemaNode::Leaf(l) = &mut self {
            l.min = Some(min);
            l.min_exclusive = true;
        }
        self
    }
    /// A closed object with the given (kebab-case) keys.
    pub fn object<'a, I: IntoIterator<Item = (&'a str, SchemaNode)>>(fields: I) -> Self {
        SchemaNode::Object {
            fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            open: false,
        }
    }
    /// An open object: the given keys are checked, others are allowed.
    pub fn open_object<'a, I: IntoIterator<Item = (&'a str, SchemaNode)>>(fields: I) -> Self {
        SchemaNode::Object {
            fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            open: true,
        }
    }
    /// A user-named map whose values follow `inner`.
    pub fn map(inner: SchemaNode) -> Self {
        SchemaNode::Map(Box::new(inner))
    }

    /// The child node for a (kebab-case) key of an object.
    pub fn field(&self, key: &str) -> Option<&SchemaNode> {
        match self {
            SchemaNode::Object { fields, .. } => fields.get(key),
            _ => None,
        }
    }
}

/// A schema: the root node of a tree of [`SchemaNode`]s.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    /// The root node.
    pub root: SchemaNode,
}

impl Schema {
    /// A schema with `root`.
    pub fn new(root: SchemaNode) -> Self {
        Schema { root }
    }

    /// The usual shape of a binder-specific section `spring.cloud.stream.<type>`:
    /// `binder.*`, `default.{consumer,producer}.*` and `bindings.<name>.{consumer,producer}.*`.
    pub fn binder_section(binder: SchemaNode, consumer: SchemaNode, producer: SchemaNode) -> Self {
        let per_binding = SchemaNode::object([("consumer", consumer), ("producer", producer)]);
        Schema::new(SchemaNode::object([
            ("binder", binder),
            ("default", per_binding.clone()),
            ("bindings", SchemaNode::map(per_binding)),
        ]))
    }

    /// The opaque binder section used when a binder registered no schema: the usual shape
    /// with unchecked contents (binding names are still kept as written).
    pub fn opaque_binder_section() -> Self {
        Self::binder_section(SchemaNode::Any, SchemaNode::Any, SchemaNode::Any)
    }

    /// The core schema: `spring.cloud.stream.*` (without binder sections),
    /// `spring.cloud.function.*`, `spring.integration.poller.*`, plus `spring.profiles.*` and
    /// `spring.config.*` (open), all under an open root.
    pub fn core() -> Self {
        let poller = || {
            SchemaNode::object([
                ("fixed-delay", SchemaNode::duration_ms()),
                ("max-messages-per-poll", SchemaNode::uint()),
                ("initial-delay", SchemaNode::duration_ms()),
                ("cron", SchemaNode::string()),
                ("time-unit", SchemaNode::string()),
            ])
        };
        let consumer = SchemaNode::object([
            ("auto-startup", SchemaNode::bool()),
            ("concurrency", SchemaNode::uint().at_least(1.0)),
            ("partitioned", SchemaNode::bool()),
            ("header-mode", SchemaNode::string()),
            ("max-attempts", SchemaNode::uint().at_least(1.0)),
            ("back-off-initial-interval", SchemaNode::duration_ms()),
            ("back-off-max-interval", SchemaNode::duration_ms()),
            ("back-off-multiplier", SchemaNode::float().greater_than(0.0)),
            ("default-retryable", SchemaNode::bool()),
            ("retryable-exceptions", SchemaNode::map(SchemaNode::bool())),
            ("retry-template-name", SchemaNode::string()),
            ("instance-count", SchemaNode::int()),
            ("instance-index", SchemaNode::int()),
            (
                "instance-index-list",
                SchemaNode::leaf(Kind::UnsignedIntList),
            ),
            ("use-native-decoding", SchemaNode::bool()),
            ("multiplex", SchemaNode::bool()),
            ("batch-mode", SchemaNode::bool()),
        ]);
        let producer = SchemaNode::object([
            ("auto-startup", SchemaNode::bool()),
            ("partition-key-expression", SchemaNode::string()),
            ("partition-key-extractor-name", SchemaNode::string()),
            ("partition-selector-name", SchemaNode::string()),
            ("partition-selector-expression", SchemaNode::string()),
            ("partition-count", SchemaNode::uint().at_least(1.0)),
            ("required-groups", SchemaNode::string_list()),
            ("header-mode", SchemaNode::string()),
            ("use-native-encoding", SchemaNode::bool()),
            ("error-channel-enabled", SchemaNode::bool()),
            ("dynamic-partition-updates-enabled", SchemaNode::bool()),
            ("poller", poller()),
        ]);
        let binding = SchemaNode::object([
            ("destination", SchemaNode::string()),
            ("group", SchemaNode::string()),
            ("content-type", SchemaNode::string()),
            ("binder", SchemaNode::string()),
            ("error-handler-definition", SchemaNode::string()),
            ("consumer", consumer),
            ("producer", producer),
        ]);
        let binder = SchemaNode::object([
            ("type", SchemaNode::string()),
            ("environment", SchemaNode::free_map()),
            ("inherit-environment", SchemaNode::bool()),
            ("default-candidate", SchemaNode::bool()),
        ]);
        let stream = SchemaNode::object([
            ("default-binder", SchemaNode::string()),
            ("binders", SchemaNode::map(binder)),
            ("bindings", SchemaNode::map(binding.clone())),
            ("default", binding),
            (
                "function",
                SchemaNode::object([
                    ("bindings", SchemaNode::map(SchemaNode::string())),
                    (
                        "routing",
                        SchemaNode::object([("enabled", SchemaNode::bool())]),
                    ),
                    ("autodetect", SchemaNode::bool()),
                ]),
            ),
            ("dynamic-destinations", SchemaNode::string_list()),
            (
                "dynamic-destination-cache-size",
                SchemaNode::uint().at_least(1.0),
            ),
            ("instance-count", SchemaNode::uint().at_least(1.0)),
            ("instance-index", SchemaNode::uint()),
            (
                "instance-index-list",
                SchemaNode::leaf(Kind::UnsignedIntList),
            ),
            ("binding-retry-interval", SchemaNode::uint()),
            ("input-bindings", SchemaNode::string()),
            ("output-bindings", SchemaNode::string()),
            ("pollable-source", SchemaNode::string()),
        ]);
        let function = SchemaNode::object([
            ("definition", SchemaNode::string()),
            ("routing-expression", SchemaNode::string()),
        ]);
        Schema::new(SchemaNode::open_object([(
            "spring",
            SchemaNode::open_object([
                (
                    "cloud",
                    SchemaNode::open_object([("stream", stream), ("function", function)]),
                ),
                (
                    "integration",
                    SchemaNode::open_object([("poller", poller())]),
                ),
                (
                    "profiles",
                    SchemaNode::open_object([
                        ("active", SchemaNode::string_list()),
                        ("include", SchemaNode::string_list()),
                    ]),
                ),
            ]),
        )]))
    }
}

/// The dotted paths below which every key must be known.
pub const VALIDATED_ROOTS: &[&str] = &[
    "spring.cloud.stream",
    "spring.cloud.function",
    "spring.integration.poller",
];

/// The path of the level whose unknown children may be binder-specific sections.
pub const STREAM_PATH: &str = "spring.cloud.stream";

/// Binder section schemas by binder type, as registered on the loader.
pub type BinderSchemas = BTreeMap<String, Schema>;
