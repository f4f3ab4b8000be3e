//! # stream-core
//!
//! The model of cloud-stream (see `DESIGN.md`): messages and headers ([`message`]), content types
//! and codecs ([`convert`]), handlers and the function registry ([`function`]), binding names
//! ([`binding`]), configuration ([`config`]), the binder SPI ([`binder`]), the runtime
//! ([`runtime`]), [`bridge::StreamBridge`] and observability ([`observe`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod binder;
pub mod binding;
pub mod config;
pub mod expr;
pub mod message;
