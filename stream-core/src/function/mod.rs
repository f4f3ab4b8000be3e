//! Handlers (`Supplier`, `Function`, `Consumer`), the function registry, composition and
//! routing.

mod error;
pub mod extract;
pub mod handler;
pub mod registry;
pub mod router;

pub use error::{HandlerError, Retry};
pub use extract::{Attempt, BindingName, Header, State, TypedHeader};
pub use handler::{
    CallContext, CallResult, ErasedFunction, ErasedSupplier, FromInput, HandlerFn, IntoOutput,
    Invocation, Outputs,
};
pub use registry::{FunctionRegistry, Handler, Pipeline, ResolveError};
pub use router::RouterFunction;
