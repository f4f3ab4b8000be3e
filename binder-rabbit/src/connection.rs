//! One AMQP connection per binder, re-established on demand after it is lost.
//!
//! Every user (producers, subscriptions, health) asks [`Connector::live`] for the current
//! connection; when it is gone, the first caller reconnects (one attempt over the configured
//! addresses, single-flight) and the others wait for that attempt. Callers that must survive an
//! outage (consumers, sends) retry with `stream_core::binder::Backoff`; channels opened on a lost connection report
//! themselves as not connected and are replaced.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use lapin::{Channel, Connection, ConnectionProperties};
use stream_core::binder::{BindError, BoxError};
use stream_core::config::redact_value;

use crate::config::{display_uri, ConnectionSettings};

/// How long one connection attempt to one address may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An open connection.
#[derive(Clone)]
pub struct Live {
    /// The connection.
    pub conn: Arc<Connection>,
}

impl Live {
    /// Whether the connection is still open.
    pub fn is_open(&self) -> bool {
        self.conn.status().connected()
    }

    /// Opens a channel.
    pub async fn channel(&self) -> Result<Channel, lapin::Error> {
        self.conn.create_channel().await
    }
}

/// Connection failure (the message never contains a password).
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to RabbitMQ at {what}: {message}")]
pub struct ConnectError {
    /// The addresses, redacted.
    pub what: String,
    /// The last failure, redacted.
    pub message: String,
}

impl ConnectError {
    /// As the SPI's bind error.
    pub fn into_bind(self) -> BindError {
        BindError::Connect {
            what: format!("RabbitMQ at {}", self.what),
            source: self.message.into(),
        }
    }
}

/// The binder's connection manager.
pub struct Connector {
    settings: ConnectionSettings,
    name: String,
    cached: RwLock<Option<Live>>,
    connect_lock: tokio::sync::Mutex<u64>,
    closed: AtomicBool,
}

impl Connector {
    /// A connector for `settings`; nothing is connected yet.
    pub fn new(name: &str, settings: ConnectionSettings) -> Self {
        Connector {
            settings,
            name: name.to_owned(),
            cached: RwLock::new(None),
            connect_lock: tokio::sync::Mutex::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// The addresses, redacted.
    pub fn display(&self) -> String {
        self.settings.display()
    }

    fn cached_open(&self) -> Option<Live> {
        let g = self.cached.read().unwrap_or_else(|e| e.into_inner());
        g.as_ref().filter(|l| l.is_open()).cloned()
    }

    /// Whether the current connection is open (no connect attempt).
    pub fn is_up(&self) -> bool {
        self.cached_open().is_some()
    }

    /// Whether [`Connector::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The open connection, connecting (once, over every address) if there is none.
    pub async fn live(&self) -> Result<Live, ConnectError> {
        if let Some(l) = self.cached_open() {
            return Ok(l);
        }
        if self.is_closed() {
            return Err(ConnectError {
                what: self.display(),
                message: "the binder was closed".into(),
            });
        }
        let mut generation = self.connect_lock.lock().await;
        if let Some(l) = self.cached_open() {
            return Ok(l);
        }
        let mut last = String::from("no address configured");
        for uri in &self.settings.uris {
            let props = ConnectionProperties::default()
                .with_connection_name(format!("cloud-stream {}", self.name).into());
            match tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect_uri(uri.clone(), props))
                .await
            {
                Ok(Ok(conn)) => {
                    *generation += 1;
                    let live = Live {
                        conn: Arc::new(conn),
                    };
                    *self.cached.write().unwrap_or_else(|e| e.into_inner()) = Some(live.clone());
                    tracing::info!(binder = %self.name, address = %display_uri(uri), generation = *generation, "connected to RabbitMQ");
                    return Ok(live);
                }
                Ok(Err(e)) => last = redact(&e),
                Err(_) => last = format!("timed out after {CONNECT_TIMEOUT:?}"),
            }
        }
        Err(ConnectError {
            what: self.display(),
            message: last,
        })
    }

    /// Closes the connection; later calls to [`Connector::live`] fail.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let live = self
            .cached
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(l) = live {
            if l.is_open() {
                let _ = l.conn.close(200, "bye".into()).await;
            }
        }
    }
}

/// An error's text with any URI password hidden.
pub fn redact(e: &dyn std::fmt::Display) -> String {
    redact_value("error", &e.to_string())
}

/// A boxed, redacted error.
pub fn boxed(e: &dyn std::fmt::Display) -> BoxError {
    redact(e).into()
}
