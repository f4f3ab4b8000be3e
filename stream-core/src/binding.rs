//! Binding names, as Spring derives them from `spring.cloud.function.definition`.
//!
//! `definition: uppercase;reverse|echo` declares two functions: `uppercase` (bindings
//! `uppercase-in-0`, `uppercase-out-0`) and the composition `reverse|echo` (bindings
//! `reverse|echo-in-0`, `reverse|echo-out-0`). `spring.cloud.stream.function.bindings` renames a
//! derived binding name to an alias.

use std::collections::BTreeMap;
use std::fmt;

/// Name of the routing function's input binding.
pub const ROUTER_FUNCTION: &str = "functionRouter";

/// Whether a binding receives or sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// A consumer binding (`-in-`).
    Input,
    /// A producer binding (`-out-`).
    Output,
}

impl Direction {
    /// `input` or `output`, as in the plan's JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `spring.cloud.function.definition`: a function or a composition `a|b|c`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionDefinition {
    /// The composed function names, in call order (one element when not composed).
    pub parts: Vec<String>,
}

impl FunctionDefinition {
    /// The definition's name as used in binding names (`a|b`).
    pub fn name(&self) -> String {
        self.parts.join("|")
    }

    /// Whether this is a composition of several functions.
    pub fn is_composed(&self) -> bool {
        self.parts.len() > 1
    }
}

/// Why a function definition could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid function definition `{definition}`: {reason}")]
pub struct DefinitionError {
    /// The definition as written.
    pub definition: String,
    /// What is wrong.
    pub reason: String,
}

/// Parses `a;b|c` into its definitions. Whitespace around names is ignored; empty entries
/// between `;` are skipped (Spring tolerates a trailing `;`), but an empty part of a composition
/// is an error.
pub fn parse_definition(definition: &str) -> Result<Vec<FunctionDefinition>, DefinitionError> {
    let mut out = Vec::new();
    for entry in definition.split(';') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let mut parts = Vec::new();
        for part in entry.split('|') {
            let part = part.trim();
            if part.is_empty() {
                return Err(DefinitionError {
                    definition: definition.to_owned(),
                    reason: format!("`{entry}` has an empty function name around `|`"),
                });
            }
            if !part
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.' || c == '$')
            {
                return Err(DefinitionError {
                    definition: definition.to_owned(),
                    reason: format!("`{part}` is not a valid function name"),
                });
            }
            parts.push(part.to_owned());
        }
        out.push(FunctionDefinition { parts });
    }
    Ok(out)
}

/// The derived binding name `<function>-in-<index>` or `<function>-out-<index>`.
pub fn binding_name(function: &str, direction: Direction, index: usize) -> String {
    match direction {
        Direction::Input => format!("{function}-in-{index}"),
        Direction::Output => format!("{function}-out-{index}"),
    }
}

/// The parts of a derived binding name: `("uppercase", Input, 0)` for `uppercase-in-0`;
/// `None` for a name of another form.
pub fn split_binding_name(name: &str) -> Option<(&str, Direction, usize)> {
    let (head, index) = name.rsplit_once('-')?;
    let index = index.parse().ok()?;
    let (function, direction) = match head.strip_suffix("-in") {
        Some(f) => (f, Direction::Input),
        None => (head.strip_suffix("-out")?, Direction::Output),
    };
    (!function.is_empty()).then_some((function, direction, index))
}

/// Applies `spring.cloud.stream.function.bindings` (derived name → alias).
pub fn apply_alias(derived: &str, aliases: &BTreeMap<String, String>) -> String {
    aliases
        .get(derived)
        .cloned()
        .unwrap_or_else(|| derived.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_functions_and_compositions() {
        let defs = parse_definition("uppercase; reverse|echo;").unwrap();
        assert_eq!(defs.len(), 2);
        assert_eq!(defs[0].name(), "uppercase");
        assert_eq!(defs[1].parts, vec!["reverse", "echo"]);
        assert_eq!(
            binding_name(&defs[1].name(), Direction::Input, 0),
            "reverse|echo-in-0"
        );
    }

    #[test]
    fn rejects_empty_composition_part() {
        let err = parse_definition("a||b").unwrap_err();
        assert!(err.reason.contains("empty"), "{err}");
        assert!(parse_definition("a b").is_err());
    }

    #[test]
    fn alias_renames_only_known_names() {
        let aliases = BTreeMap::from([("uppercase-in-0".to_owned(), "input".to_owned())]);
        assert_eq!(apply_alias("uppercase-in-0", &aliases), "input");
        assert_eq!(apply_alias("uppercase-out-0", &aliases), "uppercase-out-0");
    }
}
