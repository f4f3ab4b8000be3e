//! # stream-core
//!
//! The model of cloud-stream (see `docs/architecture.md`): messages and headers ([`message`]), content types
//! and codecs ([`convert`]), handlers and the function registry ([`function`]), binding names
//! ([`binding`]), configuration ([`config`]), the binder SPI ([`binder`]), the runtime
//! ([`runtime`], [`app`]), [`bridge::StreamBridge`], the delivery plan ([`plan`]) and
//! observability ([`observe`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod binder;
pub mod binding;
pub mod bridge;
pub mod config;
pub mod convert;
mod error;
pub mod expr;
pub mod function;
pub mod message;
pub mod observe;
pub mod plan;
pub mod runtime;
pub mod trace;

pub use app::{RunningApp, StreamAppBuilder};
pub use bridge::StreamBridge;
pub use error::Error;
pub use function::HandlerError;
pub use message::{Headers, Message, RawMessage};
