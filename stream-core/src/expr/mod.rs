//! A small, documented subset of SpEL for routing and partition-key expressions.
//!
//! `spring.cloud.function.routing-expression` and `partition-key-expression` are evaluated
//! against one message: its [`Headers`] and, when the caller decoded it, its JSON payload.
//! Parse once with [`Expression::parse`], evaluate many times with [`Expression::evaluate`] or
//! [`Expression::evaluate_to_key`].
//!
//! ```
//! use stream_core::expr::{EvalContext, Expression};
//! use stream_core::message::Headers;
//!
//! let headers = Headers::new().with("type", "order");
//! let payload = serde_json::json!({"customer": {"id": 42}});
//! let ctx = EvalContext { headers: &headers, payload: Some(&payload) };
//!
//! let route = Expression::parse("headers['type'] == 'order' ? 'orders' : 'other'").unwrap();
//! assert_eq!(route.evaluate_to_key(&ctx).unwrap().as_deref(), Some("orders"));
//!
//! let key = Expression::parse("payload.customer.id").unwrap();
//! assert!(key.uses_payload());
//! assert_eq!(key.evaluate_to_key(&ctx).unwrap().as_deref(), Some("42"));
//! ```
//!
//! # Grammar
//!
//! | Construct | Examples | Result |
//! |---|---|---|
//! | header | `headers['type']`, `headers["content-type"]`, `headers.type`, `headers[payload.k]` | the header as a string; null when missing or not UTF-8. The dotted form takes identifier characters only (`[A-Za-z_$][A-Za-z0-9_$]*`, so no `-`). Bare `headers` is an object of all headers. |
//! | payload | `payload`, `payload.a.b`, `payload['a']`, `payload.items[0]`, `payload.items[headers['i']]` | the JSON value; null when a key is missing, an index is out of range or the value is not an object/array |
//! | literals | `'abc'`, `'it''s'`, `"say ""hi"""`, `42`, `-7`, `1.5`, `2e3`, `true`, `false`, `null` | quotes are escaped by doubling (no backslash escapes); integers are `i64`, decimals `f64` |
//! | unary | `-x`, `+x`, `!x`, `not x` | |
//! | multiplicative | `a * b`, `a / b`, `a % b` (also `div`, `mod`) | |
//! | additive | `a + b`, `a - b` | `+` concatenates when either side is a string (`'n' + null` is `"nnull"`) |
//! | comparison | `==  !=  <  <=  >  >=` (also `eq ne lt le gt ge`) | not chainable: `a < b < c` is a parse error |
//! | logical | `a and b`, `a && b`, `a or b`, `a \|\| b` | short-circuit; operands must be booleans |
//! | conditional | `c ? a : b` | `c` must be a boolean |
//! | grouping | `(a + b) * c` | at most 64 nested levels |
//!
//! Precedence, lowest first (as in SpEL): `? :`, `or`, `and`, comparisons, `+ -`, `* / %`,
//! unary operators, primary. Textual operators and `true`/`false`/`null` are case-insensitive;
//! `headers` and `payload` are not. Property access and indexing work only on `headers` and
//! `payload` paths.
//!
//! Not supported, and reported as a [`ExprError::Parse`] naming the construct and its 1-based
//! column (counted in characters): method and function calls (`headers['x'].hashCode()`), type
//! references (`T(java.lang.Math)`), constructors (`new`), bean references (`@bean`, `&bean`),
//! variables (`#root`, `#var`), assignment (`=`), inline lists/maps (`{1,2}`), safe navigation
//! (`?.`), Elvis (`?:`), selection/projection (`.?[...]`, `.![...]`), `^`, `instanceof`,
//! `matches`, `between`, numeric suffixes and hex literals.
//!
//! # Evaluation
//!
//! - Integer arithmetic stays `i64` and is checked: overflow and division by zero are
//!   [`ExprError::Eval`]. A decimal on either side makes the operation `f64`; a non-finite result
//!   is an error too (JSON cannot hold it).
//! - `==`/`!=` compare numbers numerically (`1 == 1.0`), everything else by JSON equality; values
//!   of different types are never equal.
//! - `< <= > >=` compare numbers numerically, strings lexicographically (by code point) and
//!   booleans `false < true`; null is less than any other value (as in SpEL). Comparing other
//!   mixes (e.g. a header string with a number) is an error.
//! - Using `payload` when [`EvalContext::payload`] is `None` is an error. Use
//!   [`Expression::uses_payload`] to decide whether to decode the payload at all.

mod eval;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

use std::fmt;

use serde_json::Value;

use crate::message::Headers;

/// A parsed expression: parse once, evaluate many times.
#[derive(Clone)]
pub struct Expression {
    source: String,
    root: parser::Node,
    uses_payload: bool,
}

/// What an expression is evaluated against.
#[derive(Clone, Copy, Debug)]
pub struct EvalContext<'a> {
    /// The message's headers.
    pub headers: &'a Headers,
    /// The decoded JSON payload, or `None` when it is not available (evaluating `payload` is then
    /// an error).
    pub payload: Option<&'a Value>,
}

/// Why an expression could not be parsed or evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    /// The expression is malformed or uses an unsupported construct.
    #[error("invalid expression `{expression}` at column {column}: {message}")]
    Parse {
        /// The expression source.
        expression: String,
        /// 1-based column (in characters) where the problem starts.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The expression is valid but failed for this message (type error, overflow, ...).
    #[error("cannot evaluate `{expression}`: {message}")]
    Eval {
        /// The expression source.
        expression: String,
        /// What went wrong.
        message: String,
    },
}

impl Expression {
    /// Parses `src`.
    pub fn parse(src: &str) -> Result<Expression, ExprError> {
        match parser::parse(src) {
            Ok(root) => Ok(Expression {
                source: src.to_owned(),
                uses_payload: root.uses_payload(),
                root,
            }),
            Err((column, message)) => Err(ExprError::Parse {
                expression: src.to_owned(),
                column,
                message,
            }),
        }
    }

    /// The source text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether evaluation reads `payload`; when false the caller can pass `payload: None` and
    /// skip decoding.
    pub fn uses_payload(&self) -> bool {
        self.uses_payload
    }

    /// Evaluates against one message.
    pub fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<Value, ExprError> {
        eval::eval(&self.root, ctx)
            .map(std::borrow::Cow::into_owned)
            .map_err(|message| ExprError::Eval {
                expression: self.source.clone(),
                message,
            })
    }

    /// Evaluates to a routing or partition key: strings as they are, numbers and booleans in
    /// their JSON text form, objects and arrays as compact JSON, null as `None`.
    pub fn evaluate_to_key(&self, ctx: &EvalContext<'_>) -> Result<Option<String>, ExprError> {
        self.evaluate(ctx).map(eval::to_key)
    }
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expression")
            .field("source", &self.source)
            .field("uses_payload", &self.uses_payload)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for Expression {
    type Err = ExprError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Expression::parse(s)
    }
}
