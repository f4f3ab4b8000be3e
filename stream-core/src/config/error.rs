//! Configuration errors: every problem found while loading is a [`ConfigIssue`]; loading fails
//! with a [`ConfigError`] that carries all of them at once.

use std::fmt;

/// The most issues one error lists; the rest are counted in a last line.
pub(crate) const MAX_ISSUES: usize = 100;
/// The most characters shown of an issue's path or source; the rest is elided.
const MAX_SHOWN_PATH: usize = 200;
/// The most characters shown of an issue's message.
const MAX_SHOWN_MESSAGE: usize = 400;

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
    /// One line: control characters are escaped (a newline in a key must not start a new
    /// line of the report) and over-long parts are cut, so hostile input cannot flood a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = shown(&self.path, MAX_SHOWN_PATH);
        let message = shown(&self.message, MAX_SHOWN_MESSAGE);
        let source = self.source.as_deref().map(|s| shown(s, MAX_SHOWN_PATH));
        match (path.is_empty(), source) {
            (true, Some(src)) => write!(f, "{src}: {message}"),
            (true, None) => f.write_str(&message),
            (false, Some(src)) => write!(f, "{path}: {message} (in {src})"),
            (false, None) => write!(f, "{path}: {message}"),
        }
    }
}

/// `text` with control and bidirectional-override characters escaped (`\n`, `\u{1b}`), cut
/// after `max` characters with a note of how much was left out.
pub(crate) fn shown(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 16));
    for (i, c) in text.chars().enumerate() {
        if i == max {
            let rest = text.chars().count() - max;
            out.push_str(&format!("... ({rest} more characters)"));
            break;
        }
        push_escaped(&mut out, c);
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() || is_bidi_control(c) => out.extend(c.escape_unicode()),
        c => out.push(c),
    }
}

/// Characters that reorder the text around them on a terminal (Trojan-source style).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// Loading failed; `issues` lists every problem found (not just the first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigError {
    /// All problems, in the order found.
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.issues.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// The error for `issues`, keeping the first [`MAX_ISSUES`] and counting the rest in a
    /// last issue (20,000 unknown keys make one screenful, not 20,000 lines).
    pub(crate) fn capped(mut issues: Vec<ConfigIssue>) -> Self {
        if issues.len() > MAX_ISSUES {
            let more = issues.len() - MAX_ISSUES;
            issues.truncate(MAX_ISSUES);
            issues.push(ConfigIssue::new(
                "",
                format!("... and {more} more problems (only the first {MAX_ISSUES} are listed)"),
            ));
        }
        ConfigError { issues }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_escapes_control_characters_and_cuts_long_parts() {
        let i = ConfigIssue::new("a.b\nc", "bad `x\u{1b}[2J\u{202e}`");
        assert_eq!(i.to_string(), "a.b\\nc: bad `x\\u{1b}[2J\\u{202e}`");
        let long = ConfigIssue::new("k".repeat(1000), "m");
        assert_eq!(
            long.to_string(),
            format!("{}... (800 more characters): m", "k".repeat(200))
        );
    }

    #[test]
    fn capped_counts_the_rest() {
        let e = ConfigError::capped(
            (0..150)
                .map(|i| ConfigIssue::new(format!("k{i}"), "x"))
                .collect(),
        );
        assert_eq!(e.issues.len(), MAX_ISSUES + 1);
        assert!(e
            .to_string()
            .ends_with("... and 50 more problems (only the first 100 are listed)"));
    }
}
