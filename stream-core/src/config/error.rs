//! Configuration errors: every problem found while loading is a [`ConfigIssue`]; loading fails
//! with a [`ConfigError`] that carries all of them at once.

use std::fmt;

/// One problem found in the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The full dotted property path (`spring.cloud.stream.bindings.orders-in-0.group`), or the
    /// empty string for problems with a whole source (a missing or malformed file).
    pub path: String,
    /// What is wrong, as a complete sentence fragment (`unknown key (did you mean ...?)`).
    pub message: String,
    /// The expected kind of value, if the issue is about a value.
    pub expected: Option<String>,
    /// The value found (already redacted), if the issue is about a value.
    pub found: Option<String>,
    /// The nearest valid alternative, if one is close enough.
    pub suggestion: Option<String>,
    /// The file or source the issue comes from, when known.
    pub source: Option<String>,
}

impl ConfigIssue {
    /// An issue at `path` with `message`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigIssue {
            path: path.into(),
            message: message.into(),
            ..Default::default()
        }
    }

    /// Sets the source (file name).
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.path.is_empty(), &self.source) {
            (true, Some(src)) => write!(f, "{src}: {}", self.message),
            (true, None) => f.write_str(&self.message),
            (false, Some(src)) => write!(f, "{}: {} (in {src})", self.path, self.message),
            (false, None) => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Loading failed; `issues` lists every problem found (not just the first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigError {
    /// All problems, in the order found.
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl From<Vec<ConfigIssue>> for ConfigError {
    fn from(issues: Vec<ConfigIssue>) -> Self {
        ConfigError { issues }
    }
}
