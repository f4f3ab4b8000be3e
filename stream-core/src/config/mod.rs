//! Configuration: loading `application.yaml`, profiles, placeholders, environment overrides,
//! relaxed key names, validation and typed properties (docs/architecture.md §4).
//!
//! ```no_run
//! use stream_core::config::ConfigLoader;
//! let loaded = ConfigLoader::new().file("application.yaml").load()?;
//! for w in &loaded.warnings { eprintln!("warning: {w}"); }
//! let bindings = &loaded.config.stream.bindings;
//! # let _ = bindings;
//! # Ok::<(), stream_core::config::ConfigError>(())
//! ```
//!
//! Sources, later wins: the main file(s) and inline sources (non-profile documents) →
//! `<stem>-<profile>.yaml`/`.yml` beside each main file, for each active profile in order →
//! the main sources' documents activated by `spring.config.activate.on-profile` (or legacy
//! `spring.profiles`) → environment variables (`SPRING_CLOUD_STREAM_*`,
//! `SPRING_CLOUD_FUNCTION_*`, `SPRING_INTEGRATION_POLLER_*`) → values set in code.
//!
//! Any input ends in a configuration or a [`ConfigError`], within bounds: a source is read up
//! to 1 MiB; properties nest at most 64 levels (each segment of a dotted key counts, in files,
//! environment variables and [`ConfigLoader::set`]), flow collections too, and a source holds
//! at most 250,000 values once its aliases are expanded; placeholders nest at most 32 deep and
//! expand to at most 64 KiB per value within a fixed amount of work; profile expressions nest
//! at most 32 deep. An error lists its first 100 issues, each on one line with control
//! characters escaped, and never shows the value of a secret property or variable, wherever
//! a placeholder carried it. Environment variables that are not valid UTF-8 are skipped.

mod build;
mod env;
mod error;
mod load;
mod normalise;
mod placeholder;
pub mod props;
mod redact;
pub mod schema;
mod secret;
mod suggest;
mod tree;
mod validate;
mod yaml;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;

use serde_json::Value;
use smart_default::SmartDefault;

pub use error::{ConfigError, ConfigIssue};
pub use props::*;
pub use redact::{is_secret_key, redact_uris, redact_value};
pub use schema::{Kind, Leaf, Schema, SchemaNode, STREAM_PATH};
pub use secret::Secret;
pub use suggest::{did_you_mean, suggest};
pub use tree::{deep_merge, flatten, get_path, kebab, relaxed, scalar_text};

use crate::binding::{binding_name, parse_definition, Direction};
use env::EnvMapper;
use load::{parse_yaml, profile_files, profiles_match, read_text, Doc};
use normalise::normalise;
use placeholder::Resolver;
use redact::Secrets;
use tree::{nest, split_key, split_list};

/// The binder types cloud-stream knows about (each may or may not be compiled in).
pub const KNOWN_BINDER_TYPES: &[&str] = &["memory", "kafka", "rabbit", "sqs"];

/// The most binder-section names taken from the binder types of `binders.*`.
const MAX_DERIVED_SECTIONS: usize = 32;

/// A main source: a file or inline text.
#[derive(Clone, Debug)]
enum MainSource {
    File(PathBuf),
    Inline { name: String, text: String },
}

/// Loads and validates the configuration (builder).
#[derive(Clone, Debug, SmartDefault)]
pub struct ConfigLoader {
    sources: Vec<MainSource>,
    profiles: Vec<String>,
    env: Option<BTreeMap<String, String>>,
    sets: Vec<(String, String)>,
    known_bindings: Vec<String>,
    binder_types: Option<BTreeSet<String>>,
    #[default(true)]
    require_registered_binders: bool,
    binder_schemas: BTreeMap<String, Schema>,
    environment_schemas: BTreeMap<String, Schema>,
}

/// The result of a successful load.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedConfig {
    /// The typed configuration.
    pub config: StreamConfig,
    /// The whole merged application tree (also keys outside `spring.cloud.*`): placeholders
    /// resolved, dotted keys expanded, keys kebab-case except user-named map keys, values under
    /// the validated roots coerced to their kinds. `spring.profiles.active` holds the active
    /// profiles, comma-separated.
    pub root: Value,
    /// Non-fatal problems (unmappable environment variables, unvalidated binder sections, ...).
    pub warnings: Vec<String>,
    /// The files and sources read, in order.
    pub sources: Vec<String>,
}

impl ConfigLoader {
    /// A loader with no sources, the process environment, and no registered binders.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a main file (`application.yaml`); `<stem>-<profile>.yaml` and `.yml` are looked up
    /// beside it. A missing main file is an error.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.sources.push(MainSource::File(path.into()));
        self
    }

    /// Adds inline YAML treated like a main file (without profile files); later sources win.
    pub fn yaml_str(mut self, name: &str, text: &str) -> Self {
        let (name, text) = (name.to_owned(), text.to_owned());
        self.sources.push(MainSource::Inline { name, text });
        self
    }

    /// Adds active profiles (after `spring.profiles.active` and `CLOUD_STREAM_PROFILES`).
    pub fn profiles<I: IntoIterator<Item = impl Into<String>>>(mut self, p: I) -> Self {
        self.profiles.extend(p.into_iter().map(Into::into));
        self
    }

    /// Replaces the process environment (for tests).
    pub fn env(mut self, vars: BTreeMap<String, String>) -> Self {
        self.env = Some(vars);
        self
    }

    /// Sets a property in code (dotted key, relaxed names); highest precedence.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.sets.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Binding names of the registered functions (helps mapping environment variables).
    pub fn known_bindings<I: IntoIterator<Item = impl Into<String>>>(mut self, names: I) -> Self {
        self.known_bindings
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// The binder types compiled into this build. Until this is called every type of
    /// [`KNOWN_BINDER_TYPES`] is accepted.
    pub fn binder_types<I: IntoIterator<Item = &'static str>>(mut self, types: I) -> Self {
        self.binder_types
            .get_or_insert_with(BTreeSet::new)
            .extend(types.into_iter().map(str::to_owned));
        self
    }

    /// Whether a known but unregistered binder type is an error (default) or a warning.
    pub fn require_registered_binders(mut self, yes: bool) -> Self {
        self.require_registered_binders = yes;
        self
    }

    /// The schema of `spring.cloud.stream.<binder_type>.*` (see [`Schema::binder_section`]).
    pub fn binder_schema(mut self, binder_type: &str, schema: Schema) -> Self {
        self.binder_schemas.insert(binder_type.to_owned(), schema);
        self
    }

    /// The schema of the `environment` of binders of `binder_type` (see
    /// [`crate::binder::BinderFactory::environment_schema`]).
    pub fn environment_schema(mut self, binder_type: &str, schema: Schema) -> Self {
        self.environment_schemas
            .insert(binder_type.to_owned(), schema);
        self
    }

    /// Everything the registered binders declare: their types, section schemas and
    /// environment schemas.
    pub fn binders_of(mut self, registry: &crate::binder::BinderRegistry) -> Self {
        for (t, schema) in registry.schemas() {
            self = self.binder_schema(t, schema);
        }
        for (t, schema) in registry.environment_schemas() {
            self = self.environment_schema(t, schema);
        }
        self.binder_types(registry.types())
    }

    /// Reads, merges, resolves, validates and types the configuration. Every problem found
    /// is reported in the error, not just the first.
    #[allow(clippy::result_large_err)]
    pub fn load(&self) -> Result<LoadedConfig, ConfigError> {
        let mut run = Loading::default();
        let env: BTreeMap<String, String> = match &self.env {
            Some(e) => e.clone(),
            None => utf8_env(std::env::vars_os(), &mut run.warnings),
        };
        let schema = Schema::core();
        let unread = |run: Loading| scrubbed(run.issues, &Secrets::collect(&Value::Null, &env));
        let mains = self.read_mains(&schema, &mut run);
        if !run.issues.is_empty() {
            return Err(unread(run));
        }
        let (mut tree, active) = self.merge_files(&mains, &env, &schema, &mut run);
        if !run.issues.is_empty() {
            return Err(unread(run));
        }
        self.apply_env(&mut tree, &env, &schema, &mut run);
        self.apply_sets(&mut tree, &schema, &active, &mut run);
        let snapshot = tree.clone();
        Resolver::new(&snapshot, &env).resolve_tree(&mut tree, "", &mut run.issues);
        let secrets = Secrets::collect(&tree, &env);
        self.validate(&mut tree, &schema, &mut run);
        let config = build::Builder {
            registered: self.binder_types.as_ref(),
            require_registered: self.require_registered_binders,
            run: &mut run,
        }
        .build(&tree, &schema, active);
        if !run.issues.is_empty() {
            return Err(scrubbed(run.issues, &secrets));
        }
        Ok(LoadedConfig {
            config,
            root: tree,
            warnings: shown_warnings(&run.warnings, &secrets),
            sources: run.sources,
        })
    }

    /// The main files and inline sources, parsed (their paths kept for the profile files).
    fn read_mains(&self, schema: &Schema, run: &mut Loading) -> Vec<(Option<PathBuf>, Vec<Doc>)> {
        let mut mains = Vec::new();
        for src in &self.sources {
            let (path, name, text) = match src {
                MainSource::File(p) => {
                    let Some(text) = run.ok(read_text(p)) else {
                        continue;
                    };
                    (Some(p.clone()), p.display().to_string(), text)
                }
                MainSource::Inline { name, text } => (None, name.clone(), text.clone()),
            };
            if let Some(docs) = run.ok(parse_yaml(&name, &text, schema, &self.binder_schemas)) {
                run.sources.push(name);
                mains.push((path, docs));
            }
        }
        mains
    }

    /// The main sources' plain documents, then for each active profile its files beside each
    /// main file, then the main sources' documents that profiles activate; and the profiles.
    #[allow(clippy::result_large_err)]
    fn merge_files(
        &self,
        mains: &[(Option<PathBuf>, Vec<Doc>)],
        env: &BTreeMap<String, String>,
        schema: &Schema,
        run: &mut Loading,
    ) -> (Value, Vec<String>) {
        let mut tree = Value::Object(Default::default());
        for (_, docs) in mains {
            merge_docs(&mut tree, docs, None);
        }
        let active = self.active_profiles(&tree, env);
        for profile in &active {
            for path in mains.iter().filter_map(|(path, _)| path.as_ref()) {
                for pf in profile_files(path, profile) {
                    let name = pf.display().to_string();
                    let docs = read_text(&pf)
                        .and_then(|t| parse_yaml(&name, &t, schema, &self.binder_schemas));
                    if let Some(docs) = run.ok(docs) {
                        run.sources.push(name);
                        merge_docs(&mut tree, &docs, None);
                        merge_docs(&mut tree, &docs, Some(&active));
                    }
                }
            }
        }
        for (_, docs) in mains {
            merge_docs(&mut tree, docs, Some(&active));
        }
        (tree, active)
    }

    /// Environment variables (`SPRING_CLOUD_STREAM_*`, ...) mapped onto the properties.
    fn apply_env(
        &self,
        tree: &mut Value,
        env: &BTreeMap<String, String>,
        schema: &Schema,
        run: &mut Loading,
    ) {
        let sections = self.binder_section_names(tree);
        let known = self.known_binding_names(tree, env);
        let mapper = EnvMapper {
            root: &schema.root,
            binder_schemas: &self.binder_schemas,
            binder_sections: &sections,
            tree,
            known_bindings: &known,
        };
        let mut overrides = Vec::new();
        for (k, v) in env.iter().filter(|(k, _)| EnvMapper::applies(k)) {
            match mapper.map(k) {
                Some(path) => overrides.push(nest(&path, Value::String(v.clone()))),
                None => run.warnings.push(format!(
                    "environment variable `{k}` does not match any property; ignored"
                )),
            }
        }
        if env.keys().any(|k| EnvMapper::applies(k)) {
            run.sources.push("environment variables".to_owned());
        }
        for o in &overrides {
            deep_merge(tree, o);
        }
    }

    /// Values set in code (highest precedence), and `spring.profiles.active` as resolved.
    fn apply_sets(&self, tree: &mut Value, schema: &Schema, active: &[String], run: &mut Loading) {
        for (k, v) in &self.sets {
            let segs = split_key(k);
            if segs.is_empty() {
                continue;
            }
            let max = yaml::MAX_DEPTH;
            if segs.len() > max {
                let path = format!("{}...", segs[..max].join("."));
                let message = format!("key has {} levels, more than {max}; not set", segs.len());
                run.issues.push(ConfigIssue::new(path, message));
                continue;
            }
            let piece = nest(&segs, Value::String(v.clone()));
            deep_merge(
                tree,
                &normalise(piece, Some(&schema.root), "", &self.binder_schemas),
            );
        }
        if !self.sets.is_empty() {
            run.sources.push("values set in code".to_owned());
        }
        if !active.is_empty() {
            let path = ["spring".into(), "profiles".into(), "active".into()];
            deep_merge(tree, &nest(&path, Value::String(active.join(","))));
        }
    }

    /// Schema validation and coercion of the validated roots and of every binder environment;
    /// invalid values are removed, so typing goes on and finds more issues.
    fn validate(&self, tree: &mut Value, schema: &Schema, run: &mut Loading) {
        let sections = self.binder_section_names(tree);
        let mut validator = validate::Validator {
            binder_schemas: &self.binder_schemas,
            binder_sections: &sections,
            run,
        };
        for root_path in schema::VALIDATED_ROOTS {
            let segs: Vec<&str> = root_path.split('.').collect();
            let Some(node) = schema.root.at(&segs) else {
                continue;
            };
            let Some(sub) = get_path_mut(tree, &segs) else {
                continue;
            };
            if !validator.check(node, sub, root_path) {
                tree::remove_path(tree, &segs);
            }
        }
        self.check_environments(tree, &mut validator);
    }

    /// `spring.profiles.active` (set in code, else `SPRING_PROFILES_ACTIVE`, else the files),
    /// then `CLOUD_STREAM_PROFILES`, then `.profiles()`, then `spring.profiles.include`.
    fn active_profiles(&self, base: &Value, env: &BTreeMap<String, String>) -> Vec<String> {
        let from_set = self.sets.iter().rev().find_map(|(k, v)| {
            let key: Vec<String> = split_key(k).iter().map(|s| kebab(s)).collect();
            (key.join(".") == "spring.profiles.active").then(|| v.clone())
        });
        let primary = from_set
            .or_else(|| env.get("SPRING_PROFILES_ACTIVE").cloned())
            .or_else(|| get_path(base, &["spring", "profiles", "active"]).map(scalar_text));
        let include = get_path(base, &["spring", "profiles", "include"]).map(scalar_text);
        let resolver = Resolver::new(base, env);
        let listed = |text: String| split_list(&resolver.resolve(&text).unwrap_or(text));
        let parts = [primary, env.get("CLOUD_STREAM_PROFILES").cloned()];
        let mut out: Vec<String> = parts.into_iter().flatten().flat_map(listed).collect();
        out.extend(self.profiles.iter().flat_map(|p| split_list(p)));
        out.extend(include.into_iter().flat_map(listed));
        let mut seen = BTreeSet::new();
        out.retain(|p| seen.insert(p.clone()));
        out
    }

    /// Validates and normalises each binder's `environment` against the schema its type
    /// declares (the binder's `type`, else its name).
    fn check_environments(&self, tree: &mut Value, validator: &mut validate::Validator<'_>) {
        let path = ["spring", "cloud", "stream", "binders"];
        let Some(Value::Object(binders)) = get_path_mut(tree, &path) else {
            return;
        };
        for (name, binder) in binders.iter_mut() {
            let ty = binder_type(name, binder).to_owned();
            let (Some(schema), Some(env)) = (
                self.environment_schemas.get(&ty),
                binder.get_mut("environment"),
            ) else {
                continue;
            };
            let at = format!("{STREAM_PATH}.binders.{name}.environment");
            *env = normalise(env.take(), Some(&schema.root), &at, &self.binder_schemas);
            if !validator.check(&schema.root, env, &at) {
                *env = Value::Object(Default::default());
            }
        }
    }

    /// Children of `spring.cloud.stream` accepted as binder-specific sections.
    fn binder_section_names(&self, tree: &Value) -> BTreeSet<String> {
        let mut names: BTreeSet<String> =
            KNOWN_BINDER_TYPES.iter().map(|s| s.to_string()).collect();
        names.extend(self.binder_types.iter().flatten().cloned());
        names.extend(self.binder_schemas.keys().cloned());
        if let Some(Value::Object(binders)) =
            get_path(tree, &["spring", "cloud", "stream", "binders"])
        {
            // A type outside the ones above is reported as unknown when typing; accepting its
            // section only spares a second issue. Capped: the validator compares every
            // unknown key with every name, and 20,000 binders must not make that quadratic.
            let types = binders.iter().map(|(name, b)| binder_type(name, b));
            let new: BTreeSet<&str> = types.filter(|t| !names.contains(*t)).collect();
            let new = new
                .into_iter()
                .take(MAX_DERIVED_SECTIONS)
                .map(str::to_owned);
            names.extend(new.collect::<Vec<_>>());
        }
        names
    }

    /// Registered binding names plus those derived from the function definition (files or env).
    fn known_binding_names(&self, tree: &Value, env: &BTreeMap<String, String>) -> Vec<String> {
        let mut out = self.known_bindings.clone();
        let def = env
            .get("SPRING_CLOUD_FUNCTION_DEFINITION")
            .cloned()
            .or_else(|| {
                get_path(tree, &["spring", "cloud", "function", "definition"]).map(scalar_text)
            });
        if let Some(Ok(defs)) = def.map(|d| parse_definition(&d)) {
            for d in defs {
                for dir in [Direction::Input, Direction::Output] {
                    out.push(binding_name(&d.name(), dir, 0));
                }
            }
        }
        out
    }
}

/// The type of the binder `name` configured as `binder`: its `type`, else its name.
fn binder_type<'a>(name: &'a str, binder: &'a Value) -> &'a str {
    binder.get("type").and_then(Value::as_str).unwrap_or(name)
}

/// What loading collects on its way: problems, warnings, the sources read.
#[derive(Default)]
struct Loading {
    issues: Vec<ConfigIssue>,
    warnings: Vec<String>,
    sources: Vec<String>,
}

impl Loading {
    /// The value of `r`, or `None` with its issue kept.
    fn ok<T>(&mut self, r: Result<T, ConfigIssue>) -> Option<T> {
        r.map_err(|i| self.issues.push(i)).ok()
    }

    /// Whether an issue found now may carry a did-you-mean: an error lists only the first
    /// [`error::MAX_ISSUES`] issues, and comparing 20,000 misspelt keys would take seconds.
    fn suggesting(&self) -> bool {
        self.issues.len() < error::MAX_ISSUES
    }
}

/// The environment as text. `std::env::vars` panics on a variable that is not valid UTF-8
/// (and prints its value); such a variable is skipped here with a warning that names it,
/// escaped, and never shows its value, which may be a secret.
fn utf8_env(
    vars: impl Iterator<Item = (OsString, OsString)>,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in vars {
        match (k.into_string(), v.into_string()) {
            (Ok(k), Ok(v)) => {
                out.insert(k, v);
            }
            (name, _) => {
                let escaped = |raw: OsString| raw.as_encoded_bytes().escape_ascii().to_string();
                let name = name.unwrap_or_else(escaped);
                warnings.push(format!(
                    "environment variable `{name}` is not valid UTF-8; ignored"
                ));
            }
        }
    }
    out
}

/// The error for `issues` (capped), with every known secret value cut out of their texts,
/// paths included (a function definition that resolves to a secret names bindings after it).
fn scrubbed(issues: Vec<ConfigIssue>, secrets: &Secrets) -> ConfigError {
    let mut err = ConfigError::capped(issues);
    for i in &mut err.issues {
        let (path, message) = (Some(&mut i.path), Some(&mut i.message));
        let optional = [i.expected.as_mut(), i.found.as_mut(), i.suggestion.as_mut()];
        for t in [path, message].into_iter().chain(optional).flatten() {
            *t = secrets.scrub(t);
        }
    }
    err
}

/// Warnings as they may be shown: secrets and URI passwords hidden, control characters
/// escaped, long ones cut, at most [`error::MAX_ISSUES`] of them (junk input must not flood
/// a log).
fn shown_warnings(warnings: &[String], secrets: &Secrets) -> Vec<String> {
    let mut out: Vec<String> = warnings
        .iter()
        .take(error::MAX_ISSUES)
        .map(|w| error::shown(&secrets.scrub(&redact::redact_uris(w)), 600))
        .collect();
    if warnings.len() > error::MAX_ISSUES {
        out.push(format!(
            "... and {} more warnings",
            warnings.len() - error::MAX_ISSUES
        ));
    }
    out
}

/// Merges the documents of `docs` that the profiles `active` activate, or with `None` the
/// documents no profile activates.
fn merge_docs(tree: &mut Value, docs: &[Doc], active: Option<&[String]>) {
    for d in docs {
        let on = match (&d.activation, active) {
            (None, None) => true,
            (Some(expr), Some(active)) => profiles_match(expr, active),
            _ => false,
        };
        if on {
            deep_merge(tree, &d.tree);
        }
    }
}

fn get_path_mut<'a>(root: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    let mut cur = root;
    for seg in path {
        cur = cur.as_object_mut()?.get_mut(*seg)?;
    }
    Some(cur)
}
