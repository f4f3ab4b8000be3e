//! The outbox relay: publishes committed outbox rows through the application's binders (with
//! confirms), then deletes them.
//!
//! One relay publishes at a time: each pass holds a transaction-scoped advisory lock (one per
//! schema), so with several instances of the application running, a row is published once in
//! the normal case and at least once whatever happens (a relay that dies after the broker
//! confirmed but before its delete committed leaves the row to the next pass). Within a pass,
//! rows with the same partition key are sent one after the other in `id` order, rows of
//! different keys concurrently. A commit wakes the relay at once (LISTEN/NOTIFY); a poll
//! every `poll_interval` covers a lost notification or connection.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use sqlx::postgres::PgListener;
use sqlx::{PgPool, Row};
use stream_core::app::{AppExtension, ExtensionGuard};
use stream_core::function::Retry;
use stream_core::{RawMessage, RunningApp, StreamBridge};
use tokio_util::sync::CancellationToken;

use crate::outbox::{headers_from_json, CHANNEL};
use crate::{migrate, Error};

/// Rows of different keys sent at once within a pass.
const SEND_CONCURRENCY: usize = 64;

/// The outbox relay. Run it as an application extension
/// (`StreamAppBuilder::extension(Arc::new(Relay::new(pool)))`: it creates the tables if
/// needed and publishes until the application shuts down), or drive it with [`Relay::run`] or
/// [`Relay::publish_pending`].
#[derive(Clone, Debug)]
pub struct Relay {
    pool: PgPool,
    batch_size: i64,
    poll_interval: Duration,
}

/// What one pass did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// This relay held the lock and published this many rows.
    Published(usize),
    /// Another relay holds the lock.
    Busy,
}

/// One outbox row.
struct OutboxRow {
    id: i64,
    destination: String,
    key: Option<String>,
    message: RawMessage,
}

impl Relay {
    /// A relay over `pool`'s outbox (batches of 256 rows, a poll every second).
    pub fn new(pool: PgPool) -> Self {
        Relay {
            pool,
            batch_size: 256,
            poll_interval: Duration::from_secs(1),
        }
    }

    /// The most rows one pass publishes.
    pub fn batch_size(mut self, rows: u32) -> Self {
        self.batch_size = i64::from(rows.max(1));
        self
    }

    /// How often the relay looks without a notification (and waits after a failed pass).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// One pass: under the relay lock, publishes up to a batch of rows in `id` order and
    /// deletes those the broker confirmed; a row the bridge refuses for good goes to
    /// `cloud_stream_outbox_dead` with the error. An error leaves the failed row (and the later rows
    /// of its key) for the next pass.
    pub async fn publish_pending(&self, bridge: &StreamBridge) -> Result<Pass, Error> {
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.outbox-relay'))",
        )
        .fetch_one(&mut *tx)
        .await?;
        if !locked {
            return Ok(Pass::Busy);
        }
        // The pass's commit only deletes published rows: not waiting for its flush to disk
        // saves a flush per pass, and losing it in a database crash republishes those rows
        // with the same ids (at least once, which the relay promises anyway).
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query(
            "SELECT id, destination, partition_key, headers, payload FROM cloud_stream_outbox \
             ORDER BY id LIMIT $1",
        )
        .bind(self.batch_size)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(decode_row)
        .collect::<Result<Vec<_>, _>>()?;
        let Outcome {
            sent,
            dead,
            failure,
        } = publish(bridge, rows).await;
        if !sent.is_empty() {
            sqlx::query("DELETE FROM cloud_stream_outbox WHERE id = ANY($1)")
                .bind(&sent)
                .execute(&mut *tx)
                .await?;
        }
        for (id, error) in &dead {
            tracing::error!(id, error = %error, "outbox relay: row cannot be published; moved to cloud_stream_outbox_dead");
            sqlx::query(
                "WITH gone AS (DELETE FROM cloud_stream_outbox WHERE id = $1 RETURNING *) \
                 INSERT INTO cloud_stream_outbox_dead \
                 (id, destination, partition_key, headers, payload, created_at, error) \
                 SELECT id, destination, partition_key, headers, payload, created_at, $2 FROM gone",
            )
            .bind(id)
            .bind(error)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        match failure {
            Some(e) => Err(e),
            None => Ok(Pass::Published(sent.len() + dead.len())),
        }
    }

    /// Publishes until `shutdown` is cancelled.
    pub async fn run(&self, bridge: StreamBridge, shutdown: CancellationToken) {
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(mut l) => match l.listen(CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay: LISTEN failed; polling only");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "outbox relay: no listener connection; polling only");
                None
            }
        };
        loop {
            match self.publish_pending(&bridge).await {
                // More may be waiting (or committed meanwhile): look again at once.
                Ok(Pass::Published(n)) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox relay: pass failed; retrying"),
            }
            let notified = async {
                match listener.as_mut() {
                    Some(l) => {
                        if l.recv().await.is_err() {
                            tokio::time::sleep(self.poll_interval).await;
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = notified => {}
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }
}

fn decode_row(row: sqlx::postgres::PgRow) -> Result<OutboxRow, Error> {
    let headers: serde_json::Value = row.try_get("headers")?;
    let payload: Vec<u8> = row.try_get("payload")?;
    Ok(OutboxRow {
        id: row.try_get("id")?,
        destination: row.try_get("destination")?,
        key: row.try_get("partition_key")?,
        message: RawMessage::with_headers(payload.into(), headers_from_json(&headers)),
    })
}

/// What sending a batch came to.
#[derive(Default)]
struct Outcome {
    /// Rows the broker confirmed.
    sent: Vec<i64>,
    /// Rows that can never be published (the bridge refuses them for good), with why.
    dead: Vec<(i64, String)>,
    /// The first failure worth retrying (its row and its key's later rows stay).
    failure: Option<Error>,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.sent.extend(other.sent);
        self.dead.extend(other.dead);
        self.failure = self.failure.take().or(other.failure);
    }
}

/// Sends `rows`: each key's rows in order, keys concurrently.
async fn publish(bridge: &StreamBridge, rows: Vec<OutboxRow>) -> Outcome {
    let mut groups: Vec<Vec<OutboxRow>> = Vec::new();
    let mut by_key = std::collections::HashMap::new();
    for row in rows {
        match row.key.clone() {
            Some(key) => {
                let at = *by_key.entry(key).or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                });
                groups[at].push(row);
            }
            None => groups.push(vec![row]),
        }
    }
    let results: Vec<_> = futures::stream::iter(groups)
        .map(|group| publish_in_order(bridge, group))
        .buffer_unordered(SEND_CONCURRENCY)
        .collect()
        .await;
    let mut outcome = Outcome::default();
    for one in results {
        outcome.merge(one);
    }
    outcome
}

/// Sends one key's rows in order, stopping at the first failure worth retrying (so order
/// holds); a row the bridge refuses for good (a destination not allowed, no such binder, too
/// large) is set aside as dead and the key goes on, as a consumer's poison message does.
async fn publish_in_order(bridge: &StreamBridge, rows: Vec<OutboxRow>) -> Outcome {
    let mut outcome = Outcome::default();
    for row in rows {
        match bridge.send_raw(None, &row.destination, row.message).await {
            Ok(()) => outcome.sent.push(row.id),
            Err(e) if e.retry() == Retry::No => outcome.dead.push((row.id, e.to_string())),
            Err(e) => {
                outcome.failure = Some(Error::Publish {
                    id: row.id,
                    destination: row.destination,
                    message: e.to_string(),
                });
                break;
            }
        }
    }
    outcome
}

/// Stops a background task (the relay, an inbox cleanup) when the application drops it.
pub(crate) struct StopOnDrop(#[allow(dead_code)] pub(crate) tokio_util::sync::DropGuard);

#[async_trait]
impl AppExtension for Relay {
    async fn start(&self, app: &RunningApp) -> Result<Option<ExtensionGuard>, stream_core::Error> {
        migrate(&self.pool)
            .await
            .map_err(|e| stream_core::Error::Extension {
                extension: "outbox relay".to_owned(),
                message: e.to_string(),
            })?;
        let shutdown = CancellationToken::new();
        let relay = self.clone();
        let bridge = app.bridge();
        let token = shutdown.clone();
        tokio::spawn(async move { relay.run(bridge, token).await });
        Ok(Some(Box::new(StopOnDrop(shutdown.drop_guard()))))
    }
}

impl Relay {
    /// The relay as an [`AppExtension`] trait object, for `StreamAppBuilder::extension`.
    pub fn extension(self) -> Arc<dyn AppExtension> {
        Arc::new(self)
    }
}
