//! The error a handler returns, and how the runtime classifies it for retry.

use std::fmt;

use crate::binder::BoxError;

/// The kind of an input that did not decode (the handler was not called).
const DECODE: &str = "decode";

/// Whether an error should be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Retry (up to `max-attempts`).
    Yes,
    /// Do not retry: dead-letter at once.
    No,
    /// Not classified by the handler: `retryable-exceptions` and `default-retryable` decide.
    Default,
}

/// What went wrong in a handler (or around it: decoding its input, sending its outputs).
///
/// Any `std::error::Error` converts into a `HandlerError` with `?`; such errors are classified
/// by the binding's `retryable-exceptions` (keyed by the error's type name) and
/// `default-retryable` (true by default). [`HandlerError::permanent`] skips retries.
pub struct HandlerError {
    retry: Retry,
    kind: &'static str,
    type_name: Option<&'static str>,
    message: String,
    source: Option<BoxError>,
    /// In a batch: the positions of the messages that failed (`None`: all of them).
    failed: Option<Box<[usize]>>,
}

impl HandlerError {
    /// An error that is retried (up to `max-attempts`) regardless of classification.
    pub fn retryable(message: impl fmt::Display) -> Self {
        Self::with(Retry::Yes, "retryable", message.to_string())
    }

    /// An error that is never retried: the message goes to the DLQ at once.
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self::with(Retry::No, "permanent", message.to_string())
    }

    /// An unclassified error: `retryable-exceptions`/`default-retryable` decide.
    pub fn new(message: impl fmt::Display) -> Self {
        Self::with(Retry::Default, "error", message.to_string())
    }

    /// The payload could not be decoded (never retried).
    pub fn decode(message: impl fmt::Display) -> Self {
        Self::with(Retry::No, DECODE, message.to_string())
    }

    /// An output could not be encoded or sent.
    pub fn output(message: impl fmt::Display, retry: Retry) -> Self {
        Self::with(retry, "output", message.to_string())
    }

    /// A handler panicked (while making its future or while it ran). Classified like any
    /// unclassified error (`retryable-exceptions.panic: false` stops retries), kind `panic`.
    pub fn panicked(payload: &(dyn std::any::Any + Send)) -> Self {
        let text = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        Self::with(Retry::Default, "panic", format!("handler panicked: {text}"))
            .with_type_name("panic")
    }

    fn with(retry: Retry, kind: &'static str, message: String) -> Self {
        HandlerError {
            retry,
            kind,
            type_name: None,
            message,
            source: None,
            failed: None,
        }
    }

    /// Attaches a type name used for `retryable-exceptions` lookups.
    pub fn with_type_name(mut self, type_name: &'static str) -> Self {
        self.type_name = Some(type_name);
        self
    }

    /// In a batch consumer: only the messages at these positions of the batch (0-based) failed.
    /// The others are acknowledged; these alone are retried (as a smaller batch), then
    /// dead-lettered. Without it, an error fails the whole batch. A batch *function* always
    /// fails whole (its outputs were not produced), so the positions are ignored there.
    pub fn only(mut self, positions: impl IntoIterator<Item = usize>) -> Self {
        self.failed = Some(positions.into_iter().collect());
        self
    }

    /// The same error for the whole batch (positions dropped).
    pub(crate) fn whole(mut self) -> Self {
        self.failed = None;
        self
    }

    /// The positions given to [`HandlerError::only`], if any.
    pub fn failed_positions(&self) -> Option<&[usize]> {
        self.failed.as_deref()
    }

    /// How the handler classified this error.
    pub fn retry(&self) -> Retry {
        self.retry
    }

    /// The kind recorded in `x-exception-kind`: `retryable`, `permanent`, `decode`, `output`,
    /// `panic`
    /// or `error` (unclassified).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Whether the input did not decode ([`HandlerError::decode`]): the handler was not called.
    pub fn is_decode(&self) -> bool {
        self.kind == DECODE
    }

    /// The error's Rust type name when it came from a `std::error::Error` via `?`.
    pub fn type_name(&self) -> Option<&'static str> {
        self.type_name
    }

    /// The message recorded in `x-exception-message`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The underlying error, if any.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }

    /// Whether the binding should retry this error, given its classification settings.
    pub fn should_retry(
        &self,
        retryable_exceptions: &std::collections::BTreeMap<String, bool>,
        default_retryable: bool,
    ) -> bool {
        match self.retry {
            Retry::Yes => true,
            Retry::No => false,
            Retry::Default => self
                .type_name
                .and_then(|t| {
                    retryable_exceptions.get(t).or_else(|| {
                        // Also accept the short name (`Error` for `std::io::Error`).
                        t.rsplit("::")
                            .next()
                            .and_then(|short| retryable_exceptions.get(short))
                    })
                })
                .copied()
                .unwrap_or(default_retryable),
        }
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerError")
            .field("kind", &self.kind)
            .field("retry", &self.retry)
            .field("type_name", &self.type_name)
            .field("message", &self.message)
            .field("failed", &self.failed)
            .finish()
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} error: {}", self.kind, self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(e: E) -> Self {
        HandlerError {
            retry: Retry::Default,
            kind: "error",
            type_name: Some(std::any::type_name::<E>()),
            message: e.to_string(),
            source: Some(Box::new(e)),
            failed: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn classification() {
        let none = BTreeMap::new();
        assert!(HandlerError::retryable("x").should_retry(&none, false));
        assert!(!HandlerError::permanent("x").should_retry(&none, true));
        let io: HandlerError = std::io::Error::other("boom").into();
        assert!(io.should_retry(&none, true));
        assert!(!io.should_retry(&none, false));
        let map = BTreeMap::from([("std::io::error::Error".to_owned(), false)]);
        assert!(!io.should_retry(&map, true), "{:?}", io.type_name());
        let short = BTreeMap::from([("Error".to_owned(), false)]);
        assert!(!io.should_retry(&short, true));
    }
}
