//! The property schema: which keys exist under `spring.cloud.stream`, `spring.cloud.function`
//! and `spring.integration.poller`, what kind of value each takes, and which levels are
//! user-named maps (`bindings.<name>`, `binders.<name>`).
//!
//! Nothing here is written by hand: every node comes from a typed settings struct
//! ([`SchemaNode::of`], through the struct's derived `JsonSchema`), so a property is declared
//! once, as a field, and validation, coercion, did-you-mean, environment-variable mapping and
//! `plan` all read that declaration. Binder crates describe their `spring.cloud.stream.<type>.*`
//! section and their binder `environment` the same way (see [`Schema::binder_section`]).
//!
//! Field annotations the derivation reads (besides serde's names and defaults):
//! - `#[schemars(extend("x-kind" = "duration-ms"))]`: milliseconds, written `500`, `5s`, `PT1M`;
//! - `#[schemars(extend("x-kind" = "duration-ms-list"))]`: a list of those (`10s, 1m`);
//! - `#[schemars(extend("x-kind" = "free-map"))]`: a map kept as written, not validated;
//! - `#[schemars(extend("x-kind" = "expression"))]`: an expression, parsed when loaded;
//! - `#[schemars(extend("x-unused" = true))]`: a Spring key that is accepted but has no effect
//!   here (a warning says so);
//! - `#[schemars(range(min = 1))]`, `#[schemars(extend("exclusiveMinimum" = 0))]`: bounds;
//! - a `Secret` field: its value is never shown.

use std::collections::BTreeMap;

use super::props::{FunctionProperties, PollerProperties, StreamProperties};

mod derive;

/// The kind of value a leaf property takes (after coercion from YAML scalars or env strings).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    /// Any scalar, kept as text.
    #[default]
    String,
    /// `true`/`false`; as text, any case, also `on`/`off`, `yes`/`no`, `1`/`0` (as in Spring).
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
    /// A list of durations (each as [`Kind::DurationMs`]): a YAML list or a comma-separated
    /// string such as `10s, 1m, 10m`.
    DurationMsList,
    /// A free-form map (e.g. a binder's `environment`): keys are kept as written, dotted keys
    /// are expanded into nested objects, values are not checked.
    FreeMap,
    /// Any value, kept as written (keys accepted for compatibility and not used).
    Any,
    /// An expression in the SpEL subset of [`crate::expr`], checked when loaded.
    Expression,
}

impl Kind {
    /// How the kind is described in messages (`expected an unsigned integer`).
    pub fn describe(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Bool => "a boolean (true or false; also on/off, yes/no, 1/0 as text)",
            Kind::UnsignedInt => "an unsigned integer",
            Kind::Int => "an integer",
            Kind::Float => "a number",
            Kind::DurationMs => "a duration in milliseconds (e.g. 1000, 500ms, 5s)",
            Kind::StringList => "a list of strings",
            Kind::UnsignedIntList => "a list of unsigned integers",
            Kind::DurationMsList => "a list of durations (e.g. 10s, 1m, 10m)",
            Kind::FreeMap => "a map",
            Kind::Any => "any value",
            Kind::Expression => "an expression",
        }
    }
}

/// A leaf property: its kind and optional numeric lower bound.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Leaf {
    /// The kind of value.
    pub kind: Kind,
    /// The smallest allowed value (numbers only).
    pub min: Option<f64>,
    /// Whether `min` itself is excluded (`> min` rather than `>= min`).
    pub min_exclusive: bool,
    /// The largest allowed value (numbers only; from the field's integer width).
    pub max: Option<f64>,
    /// The allowed values of an enumerated string (compared case-insensitively and ignoring
    /// `-`/`_`, then written as declared); empty = any.
    pub allowed: Vec<String>,
    /// Whether the value is a secret (never shown in messages or `plan`).
    pub secret: bool,
    /// Whether the key is accepted for compatibility but has no effect (a warning says so).
    pub unused: bool,
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
            ..Leaf::default()
        })
    }
    /// A closed object with the given (kebab-case) keys.
    pub fn object<'a, I: IntoIterator<Item = (&'a str, SchemaNode)>>(fields: I) -> Self {
        Self::with_fields(fields, false)
    }
    /// An open object: the given keys are checked, others are allowed.
    pub fn open_object<'a, I: IntoIterator<Item = (&'a str, SchemaNode)>>(fields: I) -> Self {
        Self::with_fields(fields, true)
    }
    fn with_fields<'a, I: IntoIterator<Item = (&'a str, SchemaNode)>>(
        fields: I,
        open: bool,
    ) -> Self {
        let fields = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        SchemaNode::Object { fields, open }
    }
    /// A user-named map whose values follow `inner`.
    pub fn map(inner: SchemaNode) -> Self {
        SchemaNode::Map(Box::new(inner))
    }

    /// This object with `node` at `path` below it, closed objects made on the way: a schema
    /// composed of several settings types (a binder `environment` holding Spring's sections).
    pub fn with(mut self, path: &[&str], node: SchemaNode) -> Self {
        let Some((first, rest)) = path.split_first() else {
            return node;
        };
        if let SchemaNode::Object { fields, .. } = &mut self {
            let child = fields.remove(*first).unwrap_or(SchemaNode::object([]));
            fields.insert((*first).to_owned(), child.with(rest, node));
        }
        self
    }

    /// The child node for a (kebab-case) key of an object.
    pub fn field(&self, key: &str) -> Option<&SchemaNode> {
        match self {
            SchemaNode::Object { fields, .. } => fields.get(key),
            _ => None,
        }
    }

    /// The node at `path` (kebab-case keys of nested objects).
    pub fn at(&self, path: &[&str]) -> Option<&SchemaNode> {
        path.iter().try_fold(self, |n, k| n.field(k))
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

    /// Validates `value` (found at the dotted `path`) on its own, as the loader would: keys
    /// normalised to their declared spelling, values coerced, every problem reported with a
    /// did-you-mean. For binders handed a value that did not come through the loader.
    pub fn check(
        &self,
        value: &serde_json::Value,
        path: &str,
    ) -> Result<serde_json::Value, super::ConfigError> {
        let no_sections = BinderSchemas::new();
        let mut v =
            super::normalise::normalise(value.clone(), Some(&self.root), path, &no_sections);
        let mut run = super::Loading::default();
        super::validate::Validator {
            binder_schemas: &no_sections,
            binder_sections: &Default::default(),
            run: &mut run,
        }
        .check(&self.root, &mut v, path);
        match run.issues.is_empty() {
            true => Ok(v),
            false => Err(super::ConfigError { issues: run.issues }),
        }
    }

    /// The opaque binder section used when a binder registered no schema: the usual shape
    /// with unchecked contents (binding names are still kept as written).
    pub fn opaque_binder_section() -> Self {
        Self::binder_section(SchemaNode::Any, SchemaNode::Any, SchemaNode::Any)
    }

    /// The core schema, derived from the typed properties: `spring.cloud.stream.*` from
    /// [`StreamProperties`] (binder sections are added by the loader),
    /// `spring.cloud.function.*` from [`FunctionProperties`], `spring.integration.poller.*`
    /// from [`PollerProperties`], plus `spring.profiles.*` and `spring.config.*` (open), all
    /// under an open root.
    pub fn core() -> Self {
        static CORE: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
        CORE.get_or_init(|| {
            let profiles = SchemaNode::open_object([
                ("active", SchemaNode::leaf(Kind::StringList)),
                ("include", SchemaNode::leaf(Kind::StringList)),
            ]);
            let cloud = SchemaNode::open_object([
                ("stream", SchemaNode::of::<StreamProperties>()),
                ("function", SchemaNode::of::<FunctionProperties>()),
            ]);
            let integration =
                SchemaNode::open_object([("poller", SchemaNode::of::<PollerProperties>())]);
            Schema::new(SchemaNode::open_object([(
                "spring",
                SchemaNode::open_object([
                    ("cloud", cloud),
                    ("integration", integration),
                    ("profiles", profiles),
                ]),
            )]))
        })
        .clone()
    }
}

/// The dotted paths below which every key must be known.
pub const VALIDATED_ROOTS: &[&str] = &[
    "spring.cloud.stream",
    "spring.cloud.function",
    "spring.integration.poller",
];

/// Spring features cloud-stream does not have, by the key (or key prefix) below
/// `spring.cloud.stream` that configures them: a configuration using one is rejected with the
/// feature's name, not as an unknown key.
pub const UNSUPPORTED_KEYS: &[(&str, &str)] = &[
    ("kafka.streams", KAFKA_STREAMS),
    ("kafka.binder.transaction", KAFKA_TRANSACTIONS),
    ("kafka.binder.transaction-id-prefix", KAFKA_TRANSACTIONS),
    ("schema-registry-client", "the schema registry client"),
    ("schema", "schema-registry message converters (Avro)"),
    ("kinesis", KINESIS),
];

/// Spring binder types cloud-stream does not have, with the feature's name.
pub const UNSUPPORTED_BINDER_TYPES: &[(&str, &str)] = &[
    ("kstream", KAFKA_STREAMS),
    ("ktable", KAFKA_STREAMS),
    ("globalktable", KAFKA_STREAMS),
    ("kinesis", KINESIS),
    ("pubsub", "the Google Pub/Sub binder"),
    ("pulsar", "the Pulsar binder"),
    ("solace", "the Solace binder"),
    ("rocketmq", "the RocketMQ binder"),
    ("servicebus", "the Azure Service Bus binder"),
    ("eventhubs", "the Azure Event Hubs binder"),
];

const KAFKA_STREAMS: &str = "the Kafka Streams binder";
const KAFKA_TRANSACTIONS: &str = "Kafka transactions";
const KINESIS: &str = "the Kinesis binder";

/// Consumer keys of one binder type's section (`spring.cloud.stream.<type>.bindings.<b>.consumer`
/// or `.default.consumer`) that ask for what that broker cannot do, with the feature's name.
pub const UNSUPPORTED_CONSUMER_KEYS: &[(&str, &str, &str)] = &[
    ("rabbit", "start-offset", NO_REPLAY),
    ("sqs", "start-offset", NO_REPLAY),
];

/// Why `start-offset` means nothing on a queue.
const NO_REPLAY: &str = "replay (`start-offset`) with this binder: its queues deliver each message once and keep no history (capabilities.replay = false); the kafka binder, and the memory binder with `retention`, can replay";

/// The feature of [`UNSUPPORTED_CONSUMER_KEYS`] that `path` asks for, if it is such a key.
fn unsupported_consumer_key(path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix(STREAM_PATH)?.strip_prefix('.')?;
    let (binder_type, rest) = rest.split_once('.')?;
    let rest = match rest.strip_prefix("bindings.") {
        Some(binding) => binding.split_once('.')?.1,
        None => rest.strip_prefix("default.")?,
    };
    let key = rest.strip_prefix("consumer.")?;
    let found = UNSUPPORTED_CONSUMER_KEYS
        .iter()
        .find(|(t, k, _)| *t == binder_type && *k == key);
    found.map(|(_, _, feature)| *feature)
}

/// The message for a key or binder type that configures a feature cloud-stream lacks.
pub fn unsupported_feature(path: &str, binder_type: Option<&str>) -> Option<String> {
    if let Some(feature) = unsupported_consumer_key(path) {
        return Some(format!("not supported: {feature}"));
    }
    let below = path
        .strip_prefix(STREAM_PATH)
        .and_then(|r| r.strip_prefix('.'));
    let by_key = below.and_then(|r| {
        let within = |k: &str| {
            r.strip_prefix(k)
                .is_some_and(|r| r.is_empty() || r.starts_with('.'))
        };
        UNSUPPORTED_KEYS.iter().find(|(k, _)| within(k))
    });
    let by_type = binder_type.and_then(|t| UNSUPPORTED_BINDER_TYPES.iter().find(|(n, _)| *n == t));
    by_key
        .or(by_type)
        .map(|(_, feature)| format!("not supported by cloud-stream: {feature}"))
}

/// The path of the level whose unknown children may be binder-specific sections.
pub const STREAM_PATH: &str = "spring.cloud.stream";

/// Binder section schemas by binder type, as registered on the loader.
pub type BinderSchemas = BTreeMap<String, Schema>;

/// Declares Spring keys that are accepted for compatibility and have no effect: a settings
/// struct of `Option<serde_json::Value>` fields marked `x-unused` (the loader warns when one is
/// set). Embed it in the real settings with `#[serde(flatten)]`.
///
/// ```
/// stream_core::unused_keys! {
///     /// Spring's consumer keys that mean nothing here.
///     pub struct UnusedConsumer { requeue_rejected, max_concurrency }
/// }
/// let n = stream_core::config::SchemaNode::of::<UnusedConsumer>();
/// assert!(matches!(n.field("requeue-rejected"), Some(stream_core::config::SchemaNode::Leaf(l)) if l.unused));
/// ```
#[macro_export]
macro_rules! unused_keys {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($field:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Clone, Debug, Default, PartialEq, ::serde::Serialize, ::serde::Deserialize,
            ::schemars::JsonSchema,
        )]
        #[serde(default, rename_all = "kebab-case")]
        $vis struct $name {
            $(
                #[schemars(extend("x-unused" = true))]
                #[serde(skip_serializing_if = "Option::is_none")]
                $field: Option<::serde_json::Value>,
            )*
        }
    };
}
