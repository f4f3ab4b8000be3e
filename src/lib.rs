//! # cloud-stream
//!
//! Event-driven services in the style of Spring Cloud Stream. This facade re-exports
//! [`stream_core`] and the binders enabled by cargo features (the in-memory binder is always on).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use binder_memory;
pub use stream_core;
