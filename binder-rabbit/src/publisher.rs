//! Confirmed publishing on a channel that survives connection loss.
//!
//! Several sends may be in flight on one [`Publisher`] at once (the runtime's concurrency lanes
//! call `send` in parallel): each publishes and then awaits only its own confirm, so confirms
//! are pipelined rather than serialised. When the connection or channel is lost, an unconfirmed
//! send is published again on a fresh channel (at-least-once) until [`Publisher::retry_for`]
//! has passed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation};
use stream_core::binder::{Backoff, SendError};

use crate::connection::{boxed, redact, Connector};
use crate::props::ExchangeProps;
use crate::provision::declare_exchange;

pub use stream_core::binder::DEFAULT_SEND_RETRY;

/// A confirm-mode channel, re-opened (and its exchange re-declared) after failures.
pub struct Publisher {
    connector: Arc<Connector>,
    exchange: Option<(String, ExchangeProps)>,
    /// The current channel (read on every send).
    current: RwLock<Option<Arc<Channel>>>,
    /// Serialises opening a replacement channel.
    reopen: tokio::sync::Mutex<()>,
    retry_for: Duration,
    closed: AtomicBool,
}

enum Attempt {
    Confirmed(Box<Confirmation>),
    Failed(String),
}

impl Publisher {
    /// A publisher that declares `exchange` on every new channel.
    pub fn new(connector: Arc<Connector>, exchange: Option<(String, ExchangeProps)>) -> Self {
        Publisher {
            connector,
            exchange,
            current: RwLock::new(None),
            reopen: tokio::sync::Mutex::new(()),
            retry_for: DEFAULT_SEND_RETRY,
            closed: AtomicBool::new(false),
        }
    }

    fn current_open(&self) -> Option<Arc<Channel>> {
        let slot = self.current.read().unwrap_or_else(|e| e.into_inner());
        slot.as_ref().filter(|ch| ch.status().connected()).cloned()
    }

    /// The open confirm channel, opening one (single-flight) if needed.
    pub async fn channel(&self) -> Result<Arc<Channel>, String> {
        if self.closed.load(Ordering::Acquire) {
            return Err("the producer is closed".into());
        }
        if let Some(ch) = self.current_open() {
            return Ok(ch);
        }
        let _reopen = self.reopen.lock().await;
        if self.closed.load(Ordering::Acquire) {
            return Err("the producer is closed".into());
        }
        if let Some(ch) = self.current_open() {
            return Ok(ch);
        }
        let live = self.connector.live().await.map_err(|e| e.to_string())?;
        let ch = live.channel().await.map_err(|e| redact(&e))?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| redact(&e))?;
        if let Some((name, props)) = &self.exchange {
            declare_exchange(&ch, name, props)
                .await
                .map_err(|e| redact(&e))?;
        }
        let ch = Arc::new(ch);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&ch));
        Ok(ch)
    }

    async fn attempt(
        &self,
        exchange: &str,
        routing_key: &str,
        mandatory: bool,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Attempt {
        let ch = match self.channel().await {
            Ok(ch) => ch,
            Err(e) => return Attempt::Failed(e),
        };
        let confirm = match ch
            .basic_publish(
                ShortString::from(exchange),
                ShortString::from(routing_key),
                BasicPublishOptions {
                    mandatory,
                    ..Default::default()
                },
                payload,
                properties,
            )
            .await
        {
            Ok(c) => c,
            Err(e) => return Attempt::Failed(redact(&e)),
        };
        match confirm.await {
            Ok(c) => Attempt::Confirmed(Box::new(c)),
            Err(e) => Attempt::Failed(redact(&e)),
        }
    }

    /// Publishes and resolves once the broker confirmed. Connection or channel failures are
    /// retried (publishing again) until `retry_for` has passed; a nack or an unroutable return
    /// (with `mandatory`) fails at once.
    pub async fn publish(
        &self,
        destination: &str,
        exchange: &str,
        routing_key: &str,
        mandatory: bool,
        payload: &[u8],
        properties: impl Fn() -> BasicProperties,
    ) -> Result<(), SendError> {
        let deadline = tokio::time::Instant::now() + self.retry_for;
        let mut backoff = Backoff::default();
        loop {
            let attempt = self
                .attempt(exchange, routing_key, mandatory, payload, properties())
                .await;
            let attempt = match attempt {
                Attempt::Confirmed(c) => Ok(*c),
                Attempt::Failed(e) => Err(e),
            };
            match attempt {
                Ok(Confirmation::Ack(None) | Confirmation::NotRequested) => return Ok(()),
                Ok(Confirmation::Ack(Some(_))) => {
                    return Err(SendError::Unroutable {
                        destination: destination.to_owned(),
                    })
                }
                Ok(Confirmation::Nack(_)) => {
                    return Err(SendError::Broker {
                        destination: destination.to_owned(),
                        source: "the broker nacked the message".into(),
                    })
                }
                Err(e) => {
                    if self.connector.is_closed() || self.closed.load(Ordering::Acquire) {
                        return Err(SendError::Closed);
                    }
                    let wait = backoff.next_delay();
                    if tokio::time::Instant::now() + wait > deadline {
                        return Err(SendError::Broker {
                            destination: destination.to_owned(),
                            source: boxed(&e),
                        });
                    }
                    tracing::warn!(destination, error = %e, retry_in_ms = wait.as_millis() as u64, "publish not confirmed; publishing again after reconnect");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Waits for every outstanding confirm on the current channel.
    pub async fn flush(&self) -> Result<(), SendError> {
        if let Some(ch) = self.current_open() {
            ch.wait_for_confirms()
                .await
                .map_err(|e| SendError::Broker {
                    destination: String::new(),
                    source: boxed(&e),
                })?;
        }
        Ok(())
    }

    /// Closes the channel.
    pub async fn close(&self) {
        let _reopen = self.reopen.lock().await;
        self.closed.store(true, Ordering::Release);
        let ch = self
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(ch) = ch {
            if ch.status().connected() {
                let _ = ch.close(200, "closed".into()).await;
            }
        }
    }
}
