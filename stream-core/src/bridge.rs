//! `StreamBridge`: send to any destination at runtime, through the default or a named binder.
//!
//! `send("name", ..)` uses the output binding `name` when it is configured (its destination,
//! binder, content type and partitioning), and otherwise treats `name` as a destination with
//! `spring.cloud.stream.default` properties. The bindings listed in
//! `spring.cloud.stream.output-bindings` are bound when the application starts (their topics,
//! exchanges or queues are provisioned then, as in Spring) and live as long as the application.
//! Other producer bindings are bound on first use and cached, at most
//! `dynamic-destination-cache-size` of them (default 10); the least recently used is closed when
//! the cache is full.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use serde::Serialize;
use tokio::sync::Mutex;

use crate::binder::{BindError, Binder};
use crate::binding::Direction;
use crate::config::StreamConfig;
use crate::convert::{CodecRegistry, ConvertError};
use crate::function::{HandlerError, Retry};
use crate::message::{header, HeaderText, Headers, Message, RawMessage};
use crate::observe::TraceContext;
use crate::plan::{binder_for, resolve_binding, PlanError};
use crate::runtime::output::{bind_output_sender, OutputBindError, SharedOutput};

/// Sending through the bridge failed.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The destination is not in `dynamic-destinations`.
    #[error("destination `{0}` is not allowed by spring.cloud.stream.dynamic-destinations")]
    NotAllowed(String),
    /// The named binder is not configured.
    #[error("no binder named `{0}`")]
    UnknownBinder(String),
    /// The binding could not be planned.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The producer could not be bound.
    #[error("cannot bind producer for `{destination}`: {source}")]
    Bind {
        /// The destination.
        destination: String,
        /// The cause.
        #[source]
        source: BindError,
    },
    /// The payload could not be encoded.
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// The send failed or was not confirmed.
    #[error("send to `{destination}` failed: {error}")]
    Send {
        /// The destination.
        destination: String,
        /// The cause.
        error: String,
        /// Whether sending again may succeed (a broker hiccup) or not (too large, a bad
        /// partition expression).
        retry: Retry,
    },
    /// The application is shutting down.
    #[error("the application is shut down")]
    Closed,
}

impl BridgeError {
    /// Whether a handler whose `sendto.destination` output failed this way should be retried:
    /// configuration problems and permanent send failures are dead-lettered at once, as on
    /// the binding's own output.
    pub fn retry(&self) -> Retry {
        match self {
            BridgeError::Send { retry, .. } => *retry,
            BridgeError::Bind { .. } | BridgeError::Closed => Retry::Yes,
            BridgeError::NotAllowed(_)
            | BridgeError::UnknownBinder(_)
            | BridgeError::Plan(_)
            | BridgeError::Convert(_) => Retry::No,
        }
    }
}

struct Inner {
    config: Arc<StreamConfig>,
    binders: Arc<BTreeMap<String, Arc<dyn Binder>>>,
    codecs: CodecRegistry,
    /// The `output-bindings`, bound at start; never evicted.
    declared: BTreeMap<String, SharedOutput>,
    /// Set by `close`: the declared outputs are closed too.
    closed: std::sync::atomic::AtomicBool,
    /// Outputs by `(binder name, destination name)`, least recently used first out.
    cache: Mutex<Option<LruCache<(String, String), SharedOutput>>>,
    /// The output of the last send, by the `(binder, name)` arguments it was asked for: a send
    /// to the same output as the one before skips the cache's lock, building the key and the
    /// LRU lookup. Its entry is the most recently used already, so the LRU order stays right.
    /// Set with the cache locked; cleared when the bridge closes.
    last: std::sync::Mutex<Option<LastOutput>>,
}

/// See `Inner::last`.
type LastOutput = (Option<String>, String, SharedOutput);

/// Sends to destinations chosen at runtime. Cheap to clone.
#[derive(Clone)]
pub struct StreamBridge {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StreamBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamBridge").finish_non_exhaustive()
    }
}

impl StreamBridge {
    pub(crate) fn new(
        config: Arc<StreamConfig>,
        binders: Arc<BTreeMap<String, Arc<dyn Binder>>>,
        codecs: CodecRegistry,
        declared: BTreeMap<String, SharedOutput>,
    ) -> Self {
        let size = NonZeroUsize::new(config.stream.dynamic_destination_cache_size)
            .unwrap_or(NonZeroUsize::MIN);
        StreamBridge {
            inner: Arc::new(Inner {
                config,
                binders,
                codecs,
                declared,
                closed: std::sync::atomic::AtomicBool::new(false),
                cache: Mutex::new(Some(LruCache::new(size))),
                last: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Sends `payload` (encoded with the binding's content type, JSON by default).
    pub async fn send<T: Serialize + ?Sized>(
        &self,
        destination: &str,
        payload: &T,
    ) -> Result<(), BridgeError> {
        // No `Message::new`: its empty headers would be one allocation more per send.
        self.send_encoded(None, destination, payload, None).await
    }

    /// Sends a message with headers.
    pub async fn send_message<T: Serialize>(
        &self,
        destination: &str,
        message: Message<T>,
    ) -> Result<(), BridgeError> {
        self.send_encoded(None, destination, &message.payload, Some(message.headers))
            .await
    }

    /// Sends a message through the binder named `binder`.
    pub async fn send_with_binder<T: Serialize>(
        &self,
        binder: &str,
        destination: &str,
        message: Message<T>,
    ) -> Result<(), BridgeError> {
        self.send_encoded(
            Some(binder),
            destination,
            &message.payload,
            Some(message.headers),
        )
        .await
    }

    /// Encodes `payload` with the content type of `headers`, else of the destination's
    /// binding, and sends it with `headers` (`None`: no headers but the content type).
    async fn send_encoded<T: Serialize + ?Sized>(
        &self,
        binder: Option<&str>,
        destination: &str,
        payload: &T,
        headers: Option<Headers>,
    ) -> Result<(), BridgeError> {
        let props = self
            .inner
            .config
            .stream
            .bindings
            .get(destination)
            .unwrap_or(&self.inner.config.stream.default);
        let content_type = HeaderText::new(
            headers
                .as_ref()
                .and_then(|h| h.get_str(header::CONTENT_TYPE))
                .unwrap_or(&props.content_type),
        );
        let payload = self.inner.codecs.encode(payload, &content_type)?;
        let headers = match headers {
            Some(headers) if !headers.is_empty() => {
                headers.with(header::CONTENT_TYPE, content_type)
            }
            // One block, made with its one header.
            _ => Headers::single(header::CONTENT_TYPE, content_type.into()),
        };
        self.send_raw(
            binder,
            destination,
            Message {
                payload: bytes::Bytes::from(payload),
                headers,
            },
        )
        .await
    }

    /// Sends an already encoded message.
    pub async fn send_raw(
        &self,
        binder: Option<&str>,
        destination: &str,
        message: RawMessage,
    ) -> Result<(), BridgeError> {
        self.send_raw_in_trace(binder, destination, message, None)
            .await
    }

    /// Sends an already encoded message whose `traceparent` is a child of `trace` (else of
    /// its own `traceparent`, or of a new trace).
    pub(crate) async fn send_raw_in_trace(
        &self,
        binder: Option<&str>,
        destination: &str,
        message: RawMessage,
        trace: Option<&TraceContext>,
    ) -> Result<(), BridgeError> {
        let output = self.output(binder, destination).await?;
        output
            .send(message, trace)
            .await
            .map_err(|e: HandlerError| BridgeError::Send {
                destination: destination.to_owned(),
                error: e.message().to_owned(),
                retry: e.retry(),
            })
    }

    /// The cached output for `destination`, binding it on first use.
    async fn output(&self, binder: Option<&str>, name: &str) -> Result<SharedOutput, BridgeError> {
        // The last-used output first: a loop sending to one destination pays no lookups.
        // (Only a name that passed the checks below is ever remembered, never a declared
        // one, and closing forgets it.)
        if let Some((b, n, o)) = &*self.last() {
            if b.as_deref() == binder && n == name {
                return Ok(Arc::clone(o));
            }
        }
        if binder.is_none() {
            if let Some(o) = self.inner.declared.get(name) {
                if self.inner.closed.load(std::sync::atomic::Ordering::Acquire) {
                    return Err(BridgeError::Closed);
                }
                return Ok(Arc::clone(o));
            }
        }
        let config = &self.inner.config;
        let configured = config.stream.bindings.contains_key(name);
        if !configured
            && !config.stream.dynamic_destinations.is_empty()
            && !config.stream.dynamic_destinations.iter().any(|d| d == name)
        {
            return Err(BridgeError::NotAllowed(name.to_owned()));
        }
        let mut guard = self.inner.cache.lock().await;
        let cache = guard.as_mut().ok_or(BridgeError::Closed)?;
        // Only the binder name is needed for the cache key; the full resolution (property
        // merging) runs on a cache miss, not on every send.
        let binder_name = match binder {
            Some(b) => b.to_owned(),
            None => {
                let props = config
                    .stream
                    .bindings
                    .get(name)
                    .unwrap_or(&config.stream.default);
                binder_for(config, name, props)?.0
            }
        };
        let key = (binder_name, name.to_owned());
        if let Some(o) = cache.get(&key) {
            let o = Arc::clone(o);
            *self.last() = Some((binder.map(str::to_owned), name.to_owned(), Arc::clone(&o)));
            return Ok(o);
        }
        let mut effective = resolve_binding(config, name, Direction::Output)?;
        effective.binder = key.0.clone();
        let target = self
            .inner
            .binders
            .get(&effective.binder)
            .ok_or_else(|| BridgeError::UnknownBinder(effective.binder.clone()))?;
        let output = bind_output_sender(target.as_ref(), &effective).await?;
        *self.last() = Some((
            binder.map(str::to_owned),
            name.to_owned(),
            Arc::clone(&output),
        ));
        if let Some((_, evicted)) = cache.push(key, Arc::clone(&output)) {
            if !Arc::ptr_eq(&evicted, &output) {
                close_evicted(evicted);
            }
        }
        Ok(output)
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Option<LastOutput>> {
        self.inner.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of cached producer bindings.
    pub async fn cached(&self) -> usize {
        self.inner
            .cache
            .lock()
            .await
            .as_ref()
            .map(LruCache::len)
            .unwrap_or(0)
    }

    /// Flushes and closes every producer; later sends fail with [`BridgeError::Closed`].
    pub(crate) async fn close(&self) {
        let cache = self.inner.cache.lock().await.take();
        self.inner
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.last().take();
        let cached = cache.into_iter().flatten().map(|(_, o)| o);
        for o in cached.chain(self.inner.declared.values().cloned()) {
            if let Err(e) = o.flush().await {
                tracing::warn!(destination = %o.destination, error = %e, "flush failed at shutdown");
            }
            o.close().await;
        }
    }
}

/// Closes a producer the cache let go (least recently used), after flushing what it holds.
fn close_evicted(evicted: SharedOutput) {
    tracing::debug!(destination = %evicted.destination, "StreamBridge cache full; closing least recently used producer");
    tokio::spawn(async move {
        let _ = evicted.flush().await;
        evicted.close().await;
    });
}

impl From<OutputBindError> for BridgeError {
    /// A destination expression that does not parse is a send that will never succeed.
    fn from(e: OutputBindError) -> Self {
        match e {
            OutputBindError::Expression {
                destination,
                source,
            } => BridgeError::Send {
                destination,
                error: source.to_string(),
                retry: Retry::No,
            },
            OutputBindError::Bind {
                destination,
                source,
            } => BridgeError::Bind {
                destination,
                source,
            },
        }
    }
}
