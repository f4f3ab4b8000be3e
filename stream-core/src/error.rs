//! The error type of building and running an application.

use crate::binder::BindError;
use crate::config::ConfigError;
use crate::function::ResolveError;
use crate::plan::PlanError;

/// Building or running a cloud-stream application failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid (every issue is listed).
    #[error("invalid configuration:\n{0}")]
    Config(#[from] ConfigError),
    /// The function definition names an unknown function or composes badly.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// A binding could not be planned (binder resolution).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A configured binding matches no function binding (typo protection).
    #[error("spring.cloud.stream.bindings.{binding}: no function binding has this name{}; bindings of the registered functions: {known}", crate::config::did_you_mean(suggestion.as_deref()))]
    UnknownBinding {
        /// The configured name.
        binding: String,
        /// The nearest valid name.
        suggestion: Option<String>,
        /// The valid names, comma-separated.
        known: String,
    },
    /// A handler takes `State<S>` but no `S` was given to `with_state`.
    #[error("function `{function}` takes `State<{state}>`, but no `{state}` was given to the builder: add `.with_state(..)` with a value of that type")]
    MissingState {
        /// The handler's registered name.
        function: String,
        /// The state's type name.
        state: String,
    },
    /// A batch handler on a binding without `batch-mode: true`, or the reverse (or a batch
    /// binding that also asks for what batches do not do yet).
    #[error("spring.cloud.stream.bindings.{binding}.consumer.batch-mode: {message}")]
    BatchMode {
        /// The input binding.
        binding: String,
        /// What does not match, and how to fix it.
        message: String,
    },
    /// A binder's type has no registered factory.
    #[error("binder `{binder}` has type `{binder_type}`, which is not available (available: {available})")]
    UnknownBinderType {
        /// The binder name.
        binder: String,
        /// Its type.
        binder_type: String,
        /// The registered types.
        available: String,
    },
    /// A binder could not be created.
    #[error("binder `{binder}`: {source}")]
    Binder {
        /// The binder name.
        binder: String,
        /// The cause.
        #[source]
        source: BindError,
    },
    /// A binding could not be bound.
    #[error("binding `{binding}`: {source}")]
    Bind {
        /// The binding name.
        binding: String,
        /// The cause.
        #[source]
        source: BindError,
    },
    /// An expression in the configuration does not parse.
    #[error("{key}: {source}")]
    Expression {
        /// The property path.
        key: String,
        /// The parse error.
        #[source]
        source: crate::expr::ExprError,
    },
    /// An extension (e.g. the actuator) could not start.
    #[error("{extension}: {message}")]
    Extension {
        /// The extension, or the property path its problem is at.
        extension: String,
        /// What went wrong.
        message: String,
    },
    /// Waiting for a shutdown signal failed.
    #[error("cannot listen for shutdown signals: {0}")]
    Signal(#[source] std::io::Error),
}
