//! In-process binder for cloud-stream.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
