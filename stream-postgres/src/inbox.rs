//! The idempotent consumer on PostgreSQL: the inbox row of a message commits in the same
//! transaction as the handler's writes, so a message delivered any number of times (a
//! redelivery after a crash between the commit and the ack, a rebalance, a visibility timeout,
//! a producer's resend) changes the database once, across processes and restarts.
//!
//! Per call: begin; insert `(consumer, key)` into `cloud_stream_inbox`; if the row was there
//! already, the message was handled: roll back and return `Ok` (the runtime acks it). Else run
//! the handler with the transaction; commit when it returns `Ok`, roll back when it fails (a
//! failed attempt records nothing; the runtime's retry and DLQ apply as usual). A duplicate
//! arriving while the first copy is being handled waits on the row's lock, then is skipped.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use stream_core::app::{AppExtension, ExtensionGuard};
use stream_core::message::header;
use stream_core::RunningApp;
use stream_core::{HandlerError, Message};
use tokio_util::sync::CancellationToken;

use crate::{Error, Tx};

/// One consumer's inbox: its name (use the binding's group: instances of one service share
/// it) and which header is the message key (`id` unless set).
///
/// ```no_run
/// # #[derive(serde::Deserialize)] struct Payment { order: i64 }
/// # async fn f(pool: sqlx::PgPool) -> Result<(), stream_postgres::Error> {
/// use stream_core::{HandlerError, Message};
/// let inbox = stream_postgres::Inbox::new(pool, "payments");
/// let app = stream_core::StreamAppBuilder::new().consumer(
///     "pay",
///     inbox.handler(|tx, msg: Message<Payment>| async move {
///         sqlx::query("UPDATE orders SET paid = true WHERE id = $1")
///             .bind(msg.payload.order)
///             .execute(&mut *tx.conn().await?)
///             .await?;
///         tx.publish("payments", &serde_json::json!({"paid": msg.payload.order})).await?;
///         Ok::<_, HandlerError>(())
///     }),
/// );
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Inbox {
    shared: Arc<Shared>,
    retention: Duration,
}

#[derive(Debug)]
struct Shared {
    pool: PgPool,
    consumer: String,
    key_header: String,
    duplicates: AtomicU64,
}

/// How long a handled key is remembered unless set ([`Inbox::retention`]): a week, longer
/// than any broker keeps an unacked message.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

impl Inbox {
    /// The inbox of `consumer`, keyed by the `id` header.
    pub fn new(pool: PgPool, consumer: impl Into<String>) -> Self {
        Self::with_key_header(pool, consumer, header::ID)
    }

    /// The inbox of `consumer`, keyed by header `key_header` (a message without it is handled
    /// in a transaction, without an inbox row).
    pub fn with_key_header(pool: PgPool, consumer: impl Into<String>, key_header: &str) -> Self {
        Inbox {
            shared: Arc::new(Shared {
                pool,
                consumer: consumer.into(),
                key_header: key_header.to_owned(),
                duplicates: AtomicU64::new(0),
            }),
            retention: DEFAULT_RETENTION,
        }
    }

    /// Sets how long handled keys are kept (a redelivery older than that is handled again);
    /// the [`Inbox::extension`] deletes older rows.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The cleanup as an application extension: while the application runs, deletes this
    /// consumer's rows older than the retention, at a tenth of it (between a second and an
    /// hour).
    pub fn extension(&self) -> Arc<dyn AppExtension> {
        Arc::new(Cleanup(self.clone()))
    }

    /// How many duplicates this inbox skipped since it was made.
    pub fn duplicates_skipped(&self) -> u64 {
        self.shared.duplicates.load(Ordering::Relaxed)
    }

    /// Whether `key` was handled (its row is kept until [`Inbox::purge`] removes it).
    pub async fn contains(&self, key: &str) -> Result<bool, Error> {
        let found: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM cloud_stream_inbox WHERE consumer = $1 AND message_key = $2)",
        )
        .bind(&self.shared.consumer)
        .bind(key)
        .fetch_one(&self.shared.pool)
        .await?;
        Ok(found)
    }

    /// Deletes this consumer's rows older than `retention` (a redelivery older than that
    /// would be handled again); returns how many.
    pub async fn purge(&self, retention: Duration) -> Result<u64, Error> {
        let done = sqlx::query(
            "DELETE FROM cloud_stream_inbox WHERE consumer = $1 \
             AND processed_at < now() - make_interval(secs => $2)",
        )
        .bind(&self.shared.consumer)
        .bind(retention.as_secs_f64())
        .execute(&self.shared.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// A consumer handler (for `StreamAppBuilder::consumer`) running `f` once per message key,
    /// in a transaction that holds the inbox row (see the module docs).
    pub fn handler<T, F, Fut>(
        &self,
        f: F,
    ) -> impl Fn(Message<T>) -> BoxFuture<'static, Result<(), HandlerError>> + Send + Sync + 'static
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(Tx, Message<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let inbox = self.clone();
        let f = Arc::new(f);
        move |message: Message<T>| {
            let inbox = inbox.clone();
            let f = Arc::clone(&f);
            Box::pin(async move { inbox.handle(message, |tx, m| f(tx, m)).await })
        }
    }

    async fn handle<T, Fut>(
        &self,
        message: Message<T>,
        f: impl FnOnce(Tx, Message<T>) -> Fut,
    ) -> Result<(), HandlerError>
    where
        Fut: Future<Output = Result<(), HandlerError>>,
    {
        let shared = &self.shared;
        let mut tx = shared.pool.begin().await.map_err(retryable)?;
        if let Some(key) = message.headers.get_str(&shared.key_header) {
            let inserted = sqlx::query(
                "INSERT INTO cloud_stream_inbox (consumer, message_key) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&shared.consumer)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(retryable)?;
            if inserted.rows_affected() == 0 {
                shared.duplicates.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(consumer = %shared.consumer, key, "duplicate skipped: already handled");
                return Ok(());
            }
        }
        let handle = Tx::new(tx);
        f(handle.clone(), message).await?;
        let tx = handle
            .take()
            .await
            .ok_or_else(|| retryable(Error::Finished))?;
        tx.commit().await.map_err(retryable)
    }
}

/// The inbox cleanup extension.
struct Cleanup(Inbox);

#[async_trait]
impl AppExtension for Cleanup {
    async fn start(&self, _app: &RunningApp) -> Result<Option<ExtensionGuard>, stream_core::Error> {
        let inbox = self.0.clone();
        let retention = inbox.retention;
        let every = (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                match inbox.purge(retention).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::debug!(consumer = %inbox.shared.consumer, rows = n, "inbox: expired keys deleted")
                    }
                    Err(e) => {
                        tracing::warn!(consumer = %inbox.shared.consumer, error = %e, "inbox: cleanup failed; retrying")
                    }
                }
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        });
        Ok(Some(Box::new(crate::relay::StopOnDrop(stop.drop_guard()))))
    }
}

/// A database error is worth retrying (the transaction rolled back; nothing was recorded).
fn retryable(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::retryable(format!("PostgreSQL: {e}"))
}
