//! From the validated tree to the typed [`StreamConfig`]: the `default` cascade, binder-specific
//! default cascades, the implicit binder, and the checks that need the whole picture (binder
//! references, binder types, partitioning combinations, the function definition).

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::ConfigIssue;
use super::props::{BinderProperties, BindingProperties, StreamConfig};
use super::schema::{Schema, STREAM_PATH};
use super::suggest::suggest;
use super::tree::{deep_merge, get_path};
use super::KNOWN_BINDER_TYPES;
use crate::binding::{apply_alias, binding_name, parse_definition, Direction};

/// Inputs of the typing step besides the tree.
pub struct Builder<'a> {
    /// Registered binder types (`None` = not told: every known type is accepted).
    pub registered: Option<&'a BTreeSet<String>>,
    /// Whether a known but unregistered binder type is an error (else a warning).
    pub require_registered: bool,
    /// Binding names of registered functions.
    pub known_bindings: &'a [String],
    /// Problems found.
    pub issues: Vec<ConfigIssue>,
    /// Non-fatal notes.
    pub warnings: Vec<String>,
}

impl Builder<'_> {
    /// Builds the typed configuration from the validated, placeholder-resolved tree.
    pub fn build(&mut self, root: &Value, active_profiles: Vec<String>) -> StreamConfig {
        let core = Schema::core();
        let core_stream_keys: BTreeSet<String> = match core
            .root
            .field("spring")
            .and_then(|n| n.field("cloud"))
            .and_then(|n| n.field("stream"))
        {
            Some(super::schema::SchemaNode::Object { fields, .. }) => {
                fields.keys().cloned().collect()
            }
            _ => BTreeSet::new(),
        };
        let stream_tree = get_path(root, &["spring", "cloud", "stream"])
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut stream = Map::new();
        let mut binder_sections = BTreeMap::new();
        for (k, v) in stream_tree {
            if core_stream_keys.contains(&k) {
                stream.insert(k, v);
            } else {
                binder_sections.insert(k, cascade_binder_section(v));
            }
        }
        // `default` under every binding (binding wins).
        if let (Some(default), Some(Value::Object(bindings))) =
            (stream.get("default").cloned(), stream.get_mut("bindings"))
        {
            for b in bindings.values_mut() {
                let mut merged = default.clone();
                deep_merge(&mut merged, b);
                *b = merged;
            }
        }
        let mut config = StreamConfig {
            function: self.typed(root, &["spring", "cloud", "function"]),
            stream: self.typed_value(Value::Object(stream), STREAM_PATH),
            poller: self.typed(root, &["spring", "integration", "poller"]),
            binder_sections,
            active_profiles,
        };
        self.check(&mut config);
        config
    }

    fn typed<T: DeserializeOwned + Default>(&mut self, root: &Value, path: &[&str]) -> T {
        match get_path(root, path) {
            Some(v) => self.typed_value(v.clone(), &path.join(".")),
            None => T::default(),
        }
    }

    fn typed_value<T: DeserializeOwned + Default>(&mut self, v: Value, path: &str) -> T {
        super::typed::typed(v, path, &mut self.issues)
    }

    fn check(&mut self, config: &mut StreamConfig) {
        let derived = self.check_definition(config);
        self.check_binders(config, &derived);
        self.check_partitioning(config);
        validate_expressions(config, &mut self.issues);
    }

    /// Parses `spring.cloud.function.definition`; returns the derived binding names (aliased).
    fn check_definition(&mut self, config: &StreamConfig) -> Vec<String> {
        let Some(def) = &config.function.definition else {
            return Vec::new();
        };
        match parse_definition(def) {
            Ok(defs) => defs
                .iter()
                .flat_map(|d| {
                    let n = d.name();
                    [Direction::Input, Direction::Output].map(|dir| {
                        apply_alias(&binding_name(&n, dir, 0), &config.stream.function.bindings)
                    })
                })
                .collect(),
            Err(e) => {
                self.issues.push(ConfigIssue::new(
                    "spring.cloud.function.definition",
                    e.to_string(),
                ));
                Vec::new()
            }
        }
    }

    fn check_binders(&mut self, config: &mut StreamConfig, derived: &[String]) {
        let s = &mut config.stream;
        let binder_type_known = |t: &str| {
            KNOWN_BINDER_TYPES.contains(&t) || self.registered.is_some_and(|r| r.contains(t))
        };
        let implicit = s.binders.is_empty();
        if implicit {
            let name = match &s.default_binder {
                Some(d) => d.clone(),
                None => {
                    let present: Vec<&String> = config
                        .binder_sections
                        .keys()
                        .filter(|k| k.as_str() != "memory" && binder_type_known(k))
                        .collect();
                    match present.as_slice() {
                        [one] => (*one).clone(),
                        _ => "memory".to_owned(),
                    }
                }
            };
            s.binders.insert(
                name.clone(),
                BinderProperties {
                    binder_type: Some(name),
                    ..Default::default()
                },
            );
        } else if let Some(d) = &s.default_binder {
            if !s.binders.contains_key(d) {
                let suggestion = suggest(d, s.binders.keys().map(String::as_str));
                self.issues.push(unknown_binder(
                    format!("{STREAM_PATH}.default-binder"),
                    d,
                    suggestion,
                    s.binders.keys(),
                ));
            }
        }
        // Binder types.
        for (name, b) in &s.binders {
            let t = b.binder_type.clone().unwrap_or_else(|| name.clone());
            let path = if implicit && s.default_binder.is_some() {
                format!("{STREAM_PATH}.default-binder")
            } else if implicit {
                STREAM_PATH.to_owned()
            } else {
                format!("{STREAM_PATH}.binders.{name}.type")
            };
            let registered = self.registered.is_none_or(|r| r.contains(&t));
            if KNOWN_BINDER_TYPES.contains(&t.as_str())
                || self.registered.is_some_and(|r| r.contains(&t))
            {
                if !registered {
                    let msg = format!(
                        "binder type `{t}` is not available in this build (enable the cargo feature `{t}`)"
                    );
                    if self.require_registered {
                        self.issues.push(ConfigIssue::new(path, msg));
                    } else {
                        self.warnings.push(format!("{path}: {msg}"));
                    }
                }
            } else {
                let mut candidates: Vec<&str> = KNOWN_BINDER_TYPES.to_vec();
                if let Some(r) = self.registered {
                    candidates.extend(r.iter().map(String::as_str));
                }
                let suggestion = suggest(&t, candidates.iter().copied());
                let message = match &suggestion {
                    Some(sg) => format!("unknown binder type `{t}` (did you mean `{sg}`?)"),
                    None => format!(
                        "unknown binder type `{t}` (known types: {})",
                        candidates.join(", ")
                    ),
                };
                self.issues.push(ConfigIssue {
                    path,
                    message,
                    suggestion,
                    ..Default::default()
                });
            }
        }
        // Binding → binder references.
        let mut checked: Vec<(String, Option<String>)> = s
            .bindings
            .iter()
            .map(|(n, b)| {
                (
                    format!("{STREAM_PATH}.bindings.{n}.binder"),
                    b.binder.clone(),
                )
            })
            .collect();
        if s.default.binder.is_some() {
            checked.push((
                format!("{STREAM_PATH}.default.binder"),
                s.default.binder.clone(),
            ));
        }
        for (path, binder) in &checked {
            if let Some(b) = binder {
                if !s.binders.contains_key(b) {
                    let suggestion = suggest(b, s.binders.keys().map(String::as_str));
                    self.issues.push(unknown_binder(
                        path.clone(),
                        b,
                        suggestion,
                        s.binders.keys(),
                    ));
                }
            }
        }
        if s.binders.len() > 1 && s.default_binder.is_none() {
            let names = name_list(s.binders.keys());
            let mut all: BTreeSet<&str> = s.bindings.keys().map(String::as_str).collect();
            all.extend(derived.iter().map(String::as_str));
            all.extend(self.known_bindings.iter().map(String::as_str));
            for n in all {
                let has = s
                    .bindings
                    .get(n)
                    .map_or(s.default.binder.is_some(), |b| b.binder.is_some());
                if !has {
                    self.issues.push(ConfigIssue::new(
                        format!("{STREAM_PATH}.bindings.{n}.binder"),
                        format!(
                            "several binders are configured ({names}) and no default: set `spring.cloud.stream.default-binder` or this binding's `binder`"
                        ),
                    ));
                }
            }
        }
    }

    fn check_partitioning(&mut self, config: &StreamConfig) {
        let s = &config.stream;
        for (n, b) in &s.bindings {
            let p = &b.producer;
            let key = if p.partition_key_expression.is_some() {
                Some("partition-key-expression")
            } else if p.partition_selector_expression.is_some() {
                Some("partition-selector-expression")
            } else {
                None
            };
            if let Some(key) = key {
                if p.partition_count < 2 {
                    self.issues.push(ConfigIssue {
                        path: format!("{STREAM_PATH}.bindings.{n}.producer.partition-count"),
                        message: format!(
                            "must be greater than 1 when `producer.{key}` is set (partitioned output), found `{}`",
                            p.partition_count
                        ),
                        expected: Some("greater than 1".to_owned()),
                        found: Some(p.partition_count.to_string()),
                        ..Default::default()
                    });
                }
            }
            let c = &b.consumer;
            if c.partitioned {
                let count = if c.instance_count >= 0 {
                    i64::from(c.instance_count)
                } else {
                    i64::from(s.instance_count)
                };
                let index = if c.instance_index >= 0 {
                    i64::from(c.instance_index)
                } else {
                    i64::from(s.instance_index)
                };
                if count < 1 || index >= count {
                    self.issues.push(ConfigIssue::new(
                        format!("{STREAM_PATH}.bindings.{n}.consumer"),
                        format!(
                            "a partitioned consumer needs instance-count >= 1 and 0 <= instance-index < instance-count, found instance-count {count}, instance-index {index}"
                        ),
                    ));
                }
            }
            if c.back_off_multiplier < 1.0 {
                self.warnings.push(format!(
                    "{STREAM_PATH}.bindings.{n}.consumer.back-off-multiplier: {} < 1 makes retry intervals shrink",
                    c.back_off_multiplier
                ));
            }
            self.warn_unsupported(n, b);
        }
    }
}

impl Builder<'_> {
    /// Spring keys we accept (so real application.yml files load) but do not act on yet: say
    /// so, instead of silently ignoring a setting the user relies on.
    fn warn_unsupported(&mut self, n: &str, b: &BindingProperties) {
        let path = format!("{STREAM_PATH}.bindings.{n}");
        if b.error_handler_definition.is_some() {
            self.warnings.push(format!(
                "{path}.error-handler-definition: not supported yet and ignored; failed messages are retried and dead-lettered by the binding's retry settings"
            ));
        }
        if b.consumer.batch_mode {
            self.warnings.push(format!(
                "{path}.consumer.batch-mode: not supported yet and ignored; messages are handled one at a time"
            ));
        }
        if b.consumer.multiplex {
            self.warnings.push(format!(
                "{path}.consumer.multiplex: not supported yet and ignored; each destination gets its own subscription"
            ));
        }
        for (side, mode) in [
            ("consumer", &b.consumer.header_mode),
            ("producer", &b.producer.header_mode),
        ] {
            if let Some(mode) = mode.as_deref().filter(|m| *m != "headers") {
                self.warnings.push(format!(
                    "{path}.{side}.header-mode: `{mode}` is not supported yet and ignored; headers travel as the broker's native headers"
                ));
            }
        }
    }
}

fn unknown_binder<'a>(
    path: String,
    name: &str,
    suggestion: Option<String>,
    configured: impl ExactSizeIterator<Item = &'a String>,
) -> ConfigIssue {
    let message = match &suggestion {
        Some(s) => format!("unknown binder `{name}` (did you mean `{s}`?)"),
        None => format!(
            "unknown binder `{name}` (configured binders: {})",
            name_list(configured)
        ),
    };
    ConfigIssue {
        path,
        message,
        suggestion,
        ..Default::default()
    }
}

/// The names joined with `, `, at most ten of them: one issue per binding each listing
/// 20,000 binders would be quadratic in time and memory.
fn name_list<'a>(names: impl ExactSizeIterator<Item = &'a String>) -> String {
    const SHOWN: usize = 10;
    let total = names.len();
    let mut out: Vec<&str> = names.take(SHOWN).map(String::as_str).collect();
    let more = format!("... {} more", total.saturating_sub(SHOWN));
    if total > SHOWN {
        out.push(&more);
    }
    out.join(", ")
}

/// `default.{consumer,producer}` of a binder-specific section merged under each
/// `bindings.<b>.{consumer,producer}` (binding wins).
fn cascade_binder_section(mut section: Value) -> Value {
    let default = get_path(&section, &["default"]).cloned();
    if let (Some(default), Some(Value::Object(bindings))) = (
        default,
        section.as_object_mut().and_then(|m| m.get_mut("bindings")),
    ) {
        for b in bindings.values_mut() {
            for part in ["consumer", "producer"] {
                let Some(d) = default.get(part) else { continue };
                let Value::Object(bm) = b else { continue };
                let mut merged = d.clone();
                if let Some(own) = bm.get(part) {
                    deep_merge(&mut merged, own);
                }
                bm.insert(part.to_owned(), merged);
            }
        }
    }
    section
}

/// Checks the SpEL-subset expressions (`routing-expression`, `partition-key-expression`,
/// `partition-selector-expression`): one issue per expression that does not parse, at the
/// property's full path.
pub fn validate_expressions(config: &StreamConfig, issues: &mut Vec<ConfigIssue>) {
    let mut check = |path: String, source: &Option<String>| {
        if let Some(src) = source {
            if let Err(e) = crate::expr::Expression::parse(src) {
                issues.push(ConfigIssue {
                    path,
                    message: e.to_string(),
                    found: Some(src.clone()),
                    expected: Some("an expression (see stream_core::expr)".to_owned()),
                    ..Default::default()
                });
            }
        }
    };
    check(
        "spring.cloud.function.routing-expression".to_owned(),
        &config.function.routing_expression,
    );
    let bindings = std::iter::once(("default".to_owned(), &config.stream.default)).chain(
        config
            .stream
            .bindings
            .iter()
            .map(|(n, b)| (format!("bindings.{n}"), b)),
    );
    for (prefix, b) in bindings {
        let base = format!("spring.cloud.stream.{prefix}.producer");
        check(
            format!("{base}.partition-key-expression"),
            &b.producer.partition_key_expression,
        );
        check(
            format!("{base}.partition-selector-expression"),
            &b.producer.partition_selector_expression,
        );
    }
}
