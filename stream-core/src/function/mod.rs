//! Handlers (`Supplier`, `Function`, `Consumer`), the function registry, composition and
//! routing.

pub mod batch;
mod error;
pub mod extract;
pub mod handler;
pub mod registry;
pub mod router;

pub use batch::{BatchHandlerFn, FromBatch};
pub use error::{HandlerError, Retry};
pub use extract::{Attempt, BindingName, Header, State, TypedHeader};
pub use handler::{
    Batch, CallContext, CallResult, ErasedFunction, ErasedSupplier, FromInput, HandlerFn,
    IntoOutput, Invocation, Outputs,
};
pub use registry::{FunctionRegistry, Handler, Pipeline, ResolveError};
pub use router::RouterFunction;
