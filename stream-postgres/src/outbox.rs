//! The transactional outbox: messages written in the caller's transaction, so that "save my
//! state" and "publish my event" commit (or roll back) together. The [`crate::Relay`] publishes
//! them after the commit.
//!
//! Each message gets its `id` header here, so a message the relay publishes twice (it crashed
//! after the broker confirmed but before its delete committed) carries the same `id` both
//! times, and an idempotent consumer drops the second. Messages with the same `partition-key`
//! header are published in commit order: a writer holds that key's lock until it commits, so
//! the key's rows are numbered in commit order.

use serde::Serialize;
use sqlx::PgConnection;
use stream_core::message::header;
use stream_core::{Headers, Message};

use crate::Error;

/// The channel the relay listens on: a commit with outbox rows wakes it at once.
pub(crate) const CHANNEL: &str = "cloud_stream_outbox";

/// Adds `payload` (as JSON) to the outbox within `conn`'s transaction, for `destination` (a
/// binding name or a destination, as for `StreamBridge::send`).
///
/// ```no_run
/// # async fn f(pool: sqlx::PgPool) -> Result<(), stream_postgres::Error> {
/// let mut tx = pool.begin().await?;
/// sqlx::query("INSERT INTO orders (id) VALUES ($1)").bind(42_i64).execute(&mut *tx).await?;
/// stream_postgres::outbox::send(&mut tx, "orders", &serde_json::json!({"id": 42})).await?;
/// tx.commit().await?; // the order and its event, or neither
/// # Ok(()) }
/// ```
pub async fn send<T: Serialize + ?Sized>(
    conn: &mut PgConnection,
    destination: &str,
    payload: &T,
) -> Result<(), Error> {
    insert(
        conn,
        destination,
        Headers::new(),
        serde_json::to_vec(payload)?,
    )
    .await
}

/// As [`send`], with headers: a `partition-key` header keeps per-key order (and is the
/// record key on Kafka), an `id` header is kept (else one is made).
pub async fn send_message<T: Serialize>(
    conn: &mut PgConnection,
    destination: &str,
    message: &Message<T>,
) -> Result<(), Error> {
    let payload = serde_json::to_vec(&message.payload)?;
    insert(conn, destination, message.headers.clone(), payload).await
}

async fn insert(
    conn: &mut PgConnection,
    destination: &str,
    mut headers: Headers,
    payload: Vec<u8>,
) -> Result<(), Error> {
    headers.insert_if_absent(header::ID, || uuid::Uuid::new_v4().to_string());
    headers.insert_if_absent(header::CONTENT_TYPE, || "application/json");
    let key = headers.get_str(header::PARTITION_KEY).map(str::to_owned);
    if let Some(key) = &key {
        // Held until commit: the next writer of this key numbers its row after this one.
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.outbox'), hashtext($1))",
        )
        .bind(key)
        .execute(&mut *conn)
        .await?;
    }
    // One round trip: the row, and a notification delivered when the transaction commits.
    sqlx::query(
        "WITH row AS (INSERT INTO cloud_stream_outbox (destination, partition_key, headers, payload) \
         VALUES ($1, $2, $3, $4) RETURNING id) SELECT pg_notify($5, '') FROM row",
    )
    .bind(destination)
    .bind(key)
    .bind(headers_to_json(&headers))
    .bind(payload)
    .bind(CHANNEL)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Text headers as a JSON object (binary header values are kept when they are UTF-8).
pub(crate) fn headers_to_json(headers: &Headers) -> serde_json::Value {
    let map = headers
        .iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value.as_str()?.to_owned().into())))
        .collect();
    serde_json::Value::Object(map)
}

/// The headers stored by [`headers_to_json`] (values that are not strings are skipped).
pub(crate) fn headers_from_json(json: &serde_json::Value) -> Headers {
    let mut headers = Headers::new();
    if let Some(map) = json.as_object() {
        for (name, value) in map {
            if let Some(text) = value.as_str() {
                headers.insert(name.as_str(), text);
            }
        }
    }
    headers
}
