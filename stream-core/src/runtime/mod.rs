//! The runtime: dispatch, retry, dead-letter hand-off, concurrency, control and shutdown.

pub(crate) mod binders;
pub mod control;
pub mod dead_letters;
pub(crate) mod inbox;
pub(crate) mod input;
pub mod output;
pub mod retry;
pub(crate) mod supplier;

pub use control::{
    AppHealth, BacklogReport, BindingState, BindingsHandle, ControlError, BACKLOG_TIMEOUT,
};
pub use output::{select_partition, Partitioning};
pub use retry::RetryPolicy;
