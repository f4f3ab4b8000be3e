//! From the validated tree to the typed [`StreamConfig`]: the `default` cascade, binder-specific
//! default cascades, the implicit binder, and the checks that need the whole picture (binder
//! references, binder types, partitioning combinations, the function definition).

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::ConfigIssue;
use super::props::{BinderProperties, BindingProperties, StreamConfig, StreamProperties};
use super::schema::{unsupported_feature, Schema, STREAM_PATH};
use super::suggest::{did_you_mean, suggest};
use super::tree::{deep_merge, get_path};
use super::KNOWN_BINDER_TYPES;
use crate::binding::parse_definition;

/// The most `redelivery-delays` of one binding.
const MAX_REDELIVERY_DELAYS: usize = 32;

/// Inputs of the typing step besides the tree.
pub struct Builder<'a> {
    /// Registered binder types (`None` = not told: every known type is accepted).
    pub registered: Option<&'a BTreeSet<String>>,
    /// Whether a known but unregistered binder type is an error (else a warning).
    pub require_registered: bool,
    /// Where problems and warnings go.
    pub run: &'a mut super::Loading,
}

impl Builder<'_> {
    /// Builds the typed configuration from the validated, placeholder-resolved tree, whose
    /// core keys `schema` declares.
    pub fn build(&mut self, root: &Value, schema: &Schema, profiles: Vec<String>) -> StreamConfig {
        let core_stream = schema.root.at(&["spring", "cloud", "stream"]);
        let stream_tree = get_path(root, &["spring", "cloud", "stream"])
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut stream = Map::new();
        let mut binder_sections = BTreeMap::new();
        for (k, mut v) in stream_tree {
            if core_stream.and_then(|n| n.field(&k)).is_some() {
                stream.insert(k, v);
            } else {
                if let Some(section) = v.as_object_mut() {
                    cascade(section);
                }
                binder_sections.insert(k, v);
            }
        }
        cascade(&mut stream);
        let mut config = StreamConfig {
            function: self.typed(root, &["spring", "cloud", "function"]),
            stream: self.typed_value(Value::Object(stream), STREAM_PATH),
            poller: self.typed(root, &["spring", "integration", "poller"]),
            binder_sections,
            active_profiles: profiles,
        };
        apply_legacy_names(&mut config, root);
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
        // Validation already checked every value against its field's kind and width; a
        // failure here is a bug worth reporting at the section, not a panic.
        serde_json::from_value(v).unwrap_or_else(|e| {
            let message = format!(
                "invalid value: {}",
                super::redact::redact_uris(&e.to_string())
            );
            self.run.issues.push(ConfigIssue::new(path, message));
            T::default()
        })
    }

    fn check(&mut self, config: &mut StreamConfig) {
        if let Some(Err(e)) = config.function.definition.as_deref().map(parse_definition) {
            let path = "spring.cloud.function.definition";
            self.run.issues.push(ConfigIssue::new(path, e.to_string()));
        }
        let implicit = config.stream.binders.is_empty();
        if implicit {
            add_implicit_binders(config, |t| self.binder_type_known(t));
        } else {
            self.check_default_binder(config);
        }
        self.check_binder_types(&config.stream, implicit);
        self.check_binding_binders(&config.stream);
        self.check_partitioning(config);
    }

    fn binder_type_known(&self, t: &str) -> bool {
        KNOWN_BINDER_TYPES.contains(&t) || self.registered.is_some_and(|r| r.contains(t))
    }

    fn check_default_binder(&mut self, config: &StreamConfig) {
        let s = &config.stream;
        if let Some(d) = s
            .default_binder
            .as_ref()
            .filter(|d| !s.binders.contains_key(*d))
        {
            let path = format!("{STREAM_PATH}.default-binder");
            self.run.issues.push(self.unknown_binder(path, d, s));
        }
    }

    fn check_binder_types(&mut self, s: &StreamProperties, implicit: bool) {
        for (name, b) in &s.binders {
            let t = b.binder_type.clone().unwrap_or_else(|| name.clone());
            let path = match (implicit, &s.default_binder) {
                (true, Some(_)) => format!("{STREAM_PATH}.default-binder"),
                (true, None) => STREAM_PATH.to_owned(),
                (false, _) => format!("{STREAM_PATH}.binders.{name}.type"),
            };
            if !self.binder_type_known(&t) {
                self.run.issues.push(self.unknown_binder_type(path, &t));
            } else if self.registered.is_some_and(|r| !r.contains(&t)) {
                let msg = format!(
                    "binder type `{t}` is not available in this build (enable the cargo feature `{t}`)"
                );
                if self.require_registered {
                    self.run.issues.push(ConfigIssue::new(path, msg));
                } else {
                    self.run.warnings.push(format!("{path}: {msg}"));
                }
            }
        }
    }

    fn unknown_binder_type(&self, path: String, t: &str) -> ConfigIssue {
        if let Some(message) = unsupported_feature("", Some(t)) {
            return ConfigIssue::new(path, format!("binder type `{t}`: {message}"));
        }
        let mut known: BTreeSet<&str> = KNOWN_BINDER_TYPES.iter().copied().collect();
        known.extend(self.registered.into_iter().flatten().map(String::as_str));
        let what = ("binder type", "known types");
        self.unknown(path, what, t, known.iter().copied())
    }

    /// The issue for a binder name that no configured binder has.
    fn unknown_binder(&self, path: String, name: &str, s: &StreamProperties) -> ConfigIssue {
        let configured = s.binders.keys().map(String::as_str);
        self.unknown(path, ("binder", "configured binders"), name, configured)
    }

    /// The issue for `name`, an unknown `what.0`: a did-you-mean among `known`, else `known`
    /// listed as `what.1`.
    fn unknown<'a, I>(&self, path: String, what: (&str, &str), name: &str, known: I) -> ConfigIssue
    where
        I: ExactSizeIterator<Item = &'a str> + Clone,
    {
        let suggestion = self.run.suggesting().then(|| suggest(name, known.clone()));
        let suggestion = suggestion.flatten();
        let hint = match &suggestion {
            Some(_) => did_you_mean(suggestion.as_deref()),
            None => format!(" ({}: {})", what.1, name_list(known)),
        };
        let message = format!("unknown {} `{name}`{hint}", what.0);
        ConfigIssue {
            suggestion,
            ..ConfigIssue::new(path, message)
        }
    }

    /// Every binder a binding names exists; with several binders and no default, every
    /// binding that exists names one.
    fn check_binding_binders(&mut self, s: &StreamProperties) {
        let named = s
            .bindings
            .iter()
            .map(|(n, b)| (format!("bindings.{n}"), &b.binder));
        let all = named.chain(std::iter::once(("default".to_owned(), &s.default.binder)));
        for (at, binder) in all {
            if let Some(b) = binder.as_ref().filter(|b| !s.binders.contains_key(*b)) {
                let path = format!("{STREAM_PATH}.{at}.binder");
                self.run.issues.push(self.unknown_binder(path, b, s));
            }
        }
        let candidates = s.binders.values().filter(|b| b.default_candidate).count();
        if s.binders.len() < 2 || s.default_binder.is_some() || candidates == 1 {
            return;
        }
        let names = name_list(s.binders.keys().map(String::as_str));
        // Only the configured bindings: the others may not exist (a supplier has no `-in-0`);
        // the application checks the bindings it really binds when it picks their binder.
        for n in s.bindings.keys() {
            let has = s
                .bindings
                .get(n)
                .map_or(s.default.binder.is_some(), |b| b.binder.is_some());
            if !has {
                self.run.issues.push(ConfigIssue::new(
                    format!("{STREAM_PATH}.bindings.{n}.binder"),
                    format!(
                        "several binders are configured ({names}) and no default: set `spring.cloud.stream.default-binder` or this binding's `binder`"
                    ),
                ));
            }
        }
    }

    fn check_partitioning(&mut self, config: &StreamConfig) {
        let s = &config.stream;
        for (n, b) in &s.bindings {
            let p = &b.producer;
            let key = [
                ("partition-key-expression", &p.partition_key_expression),
                (
                    "partition-selector-expression",
                    &p.partition_selector_expression,
                ),
            ];
            if let Some((key, _)) = key.iter().find(|(_, e)| e.is_some()) {
                if p.partition_count < 2 {
                    // Spring accepts this (its Kafka binder then uses the topic's partition
                    // count); here every message goes to partition 0, which deserves a word.
                    self.run.warnings.push(format!(
                        "{STREAM_PATH}.bindings.{n}.producer.partition-count: `producer.{key}` is set but partition-count is {}: every message goes to partition 0",
                        p.partition_count
                    ));
                }
            }
            let c = &b.consumer;
            // A binding's own instance settings (>= 0) win over the application's.
            let own_or = |own: i32, app: u32| u32::try_from(own).unwrap_or(app);
            if c.partitioned {
                let count = own_or(c.instance_count, s.instance_count);
                let index = own_or(c.instance_index, s.instance_index);
                if count < 1 || index >= count {
                    self.run.issues.push(ConfigIssue::new(
                        format!("{STREAM_PATH}.bindings.{n}.consumer"),
                        format!(
                            "a partitioned consumer needs instance-count >= 1 and 0 <= instance-index < instance-count, found instance-count {count}, instance-index {index}"
                        ),
                    ));
                }
            }
            if c.back_off_multiplier < 1.0 {
                self.run.warnings.push(format!(
                    "{STREAM_PATH}.bindings.{n}.consumer.back-off-multiplier: {} < 1 makes retry intervals shrink",
                    c.back_off_multiplier
                ));
            }
            if c.redelivery_delays.len() > MAX_REDELIVERY_DELAYS {
                // Each delay is a broker resource (a wait queue, a retry topic).
                self.run.issues.push(ConfigIssue::new(
                    format!("{STREAM_PATH}.bindings.{n}.consumer.redelivery-delays"),
                    format!(
                        "at most {MAX_REDELIVERY_DELAYS} delays, found {}",
                        c.redelivery_delays.len()
                    ),
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
            self.run.warnings.push(format!(
                "{path}.error-handler-definition: not supported yet and ignored; failed messages are retried and dead-lettered by the binding's retry settings"
            ));
        }
        if b.consumer.multiplex {
            self.run.warnings.push(format!(
                "{path}.consumer.multiplex: not supported yet and ignored; each destination gets its own subscription"
            ));
        }
        for (side, mode) in [
            ("consumer", &b.consumer.header_mode),
            ("producer", &b.producer.header_mode),
        ] {
            if let Some(mode) = mode.as_deref().filter(|m| *m != "headers") {
                self.run.warnings.push(format!(
                    "{path}.{side}.header-mode: `{mode}` is not supported yet and ignored; headers travel as the broker's native headers"
                ));
            }
        }
    }
}

/// Spring's older spellings, still read: `spring.cloud.stream.function.definition` (when
/// `spring.cloud.function.definition` is not set), `spring.cloud.stream.poller` (when
/// `spring.integration.poller` is not set) and `spring.cloud.stream.source` (listed after
/// `output-bindings`).
fn apply_legacy_names(config: &mut StreamConfig, root: &Value) {
    let integration_poller = get_path(root, &["spring", "integration", "poller"]);
    if let (None, Some(p)) = (integration_poller, config.stream.poller.take()) {
        config.poller = p;
    }
    if config.function.definition.is_none() {
        config.function.definition = config.stream.function.definition.clone();
    }
    let s = &mut config.stream;
    if let Some(source) = s.source.take() {
        s.output_bindings = Some(match s.output_bindings.take() {
            Some(out) => format!("{out};{source}"),
            None => source,
        });
    }
}

/// Without a `binders` section, Spring creates one binder per binder type, named after it:
/// those the bindings and `default-binder` name, and the binder-specific sections present;
/// the memory binder when nothing names one.
fn add_implicit_binders(config: &mut StreamConfig, known: impl Fn(&str) -> bool) {
    let s = &config.stream;
    let mut names: BTreeSet<String> = s
        .bindings
        .values()
        .chain(std::iter::once(&s.default))
        .filter_map(|b| b.binder.clone())
        .collect();
    names.extend(s.default_binder.clone());
    if names.is_empty() {
        let present = config
            .binder_sections
            .keys()
            .filter(|k| k.as_str() != "memory" && known(k));
        names.extend(present.cloned());
        if names.len() != 1 {
            names = BTreeSet::from(["memory".to_owned()]);
        }
    }
    for name in names {
        let props = BinderProperties {
            binder_type: Some(name.clone()),
            ..Default::default()
        };
        config.stream.binders.insert(name, props);
    }
}

/// The names joined with `, `, at most ten of them: one issue per binding each listing
/// 20,000 binders would be quadratic in time and memory.
fn name_list<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> String {
    const SHOWN: usize = 10;
    let total = names.len();
    let shown: Vec<&str> = names.take(SHOWN).collect();
    let more = (total > SHOWN).then(|| format!(", ... {} more", total - SHOWN));
    shown.join(", ") + &more.unwrap_or_default()
}

/// The section's `default` merged under each of its `bindings` (a binding's own keys win): the
/// cascade of `spring.cloud.stream.default` and of each binder section's `default`.
fn cascade(section: &mut Map<String, Value>) {
    let default = section.get("default").cloned();
    if let (Some(default), Some(Value::Object(bindings))) = (default, section.get_mut("bindings")) {
        for b in bindings.values_mut() {
            let mut merged = default.clone();
            deep_merge(&mut merged, b);
            *b = merged;
        }
    }
}
