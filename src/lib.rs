//! # cloud-stream
//!
//! Event-driven services in the style of Spring Cloud Stream: plain async functions bound to
//! broker destinations by `application.yaml`. Changing broker is a configuration change.
//!
//! ```no_run
//! use cloud_stream::prelude::*;
//!
//! #[derive(Serialize, Deserialize)]
//! struct OrderCreated { id: u64 }
//! #[derive(Serialize, Deserialize)]
//! struct StockReserved { order_id: u64 }
//!
//! # async fn run() -> Result<(), cloud_stream::Error> {
//! StreamApp::builder()
//!     .config_file("application.yaml")
//!     .function("reserve", |o: OrderCreated| async move {
//!         Ok::<_, HandlerError>(StockReserved { order_id: o.id })
//!     })
//!     .build().await?
//!     .run_until_shutdown().await
//! # }
//! ```
//!
//! This facade re-exports [`stream_core`] and the binders enabled by cargo features; the
//! in-memory binder ([`binder_memory`]) is always on.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::sync::Arc;

#[cfg(feature = "kafka")]
pub use binder_kafka;
pub use binder_memory;
#[cfg(feature = "rabbit")]
pub use binder_rabbit;
#[cfg(feature = "sqs")]
pub use binder_sqs;
#[cfg(feature = "actuator")]
pub use stream_actuator as actuator;
pub use stream_core;
pub use stream_core::{
    app, binder, binding, bridge, config, convert, expr, function, message, observe, plan, runtime,
    Error, HandlerError, Headers, Message, RawMessage, RunningApp, StreamAppBuilder, StreamBridge,
};
#[cfg(feature = "postgres")]
pub use stream_postgres as postgres;

/// Entry point: `StreamApp::builder()` returns a builder with every binder compiled into this
/// build already registered (memory always; kafka/rabbit/sqs by cargo feature).
#[derive(Debug)]
pub struct StreamApp;

impl StreamApp {
    /// A builder with the built-in binder factories registered (and, with the `actuator`
    /// feature, the actuator, which starts when `management.server.port` is set).
    pub fn builder() -> StreamAppBuilder {
        let mut b = StreamAppBuilder::new();
        for f in binder_factories() {
            b = b.binder_factory(f);
        }
        #[cfg(feature = "actuator")]
        {
            b = b.extension(Arc::new(stream_actuator::Actuator));
        }
        b
    }
}

/// The binder factories compiled into this build.
pub fn binder_factories() -> Vec<Arc<dyn stream_core::binder::BinderFactory>> {
    #[allow(unused_mut)]
    let mut factories: Vec<Arc<dyn stream_core::binder::BinderFactory>> =
        vec![Arc::new(binder_memory::MemoryBinderFactory::new())];
    #[cfg(feature = "rabbit")]
    factories.push(Arc::new(binder_rabbit::RabbitBinderFactory::new()));
    #[cfg(feature = "sqs")]
    factories.push(Arc::new(binder_sqs::SqsBinderFactory::new()));
    #[cfg(feature = "kafka")]
    factories.push(Arc::new(binder_kafka::KafkaBinderFactory::new()));
    factories
}

/// The registry of the binder factories compiled into this build.
pub fn binder_registry() -> stream_core::binder::BinderRegistry {
    let mut r = stream_core::binder::BinderRegistry::new();
    for f in binder_factories() {
        r.register(f);
    }
    r
}

/// Everything an application usually needs.
pub mod prelude {
    pub use crate::{StreamApp, StreamAppBuilder};
    pub use serde::{Deserialize, Serialize};
    pub use stream_core::function::extract::{
        Attempt, BindingName, Header, State, TraceContext, TypedHeader,
    };
    pub use stream_core::function::Batch;
    pub use stream_core::message::header;
    pub use stream_core::{HandlerError, Headers, Message, StreamBridge};
}
