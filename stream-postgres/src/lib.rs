//! PostgreSQL for cloud-stream: exactly-once *effects* on at-least-once brokers.
//!
//! - [`Inbox`]: an idempotent consumer whose inbox row commits in the same transaction as the
//!   handler's own writes, so a message delivered three times changes the database once, even
//!   across a crash between the commit and the broker ack.
//! - [`outbox`]: events written in the caller's transaction ("save and publish" cannot
//!   diverge), from a handler ([`Tx::publish`]) or from any code holding a sqlx transaction
//!   ([`outbox::send`]).
//! - [`Relay`]: publishes committed outbox rows through the application's binders (with
//!   confirms), one relay at a time across instances, per-key order kept.
//!
//! The tables ([`SCHEMA_SQL`]) are created by [`migrate`] (the relay extension runs it when it
//! starts) in the connection's current schema.
//!
//! ```no_run
//! # #[derive(serde::Deserialize)] struct Order { id: i64 }
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use stream_core::{HandlerError, Message, StreamAppBuilder};
//! use stream_postgres::{Inbox, Relay};
//!
//! let pool = sqlx::PgPool::connect("postgres://postgres@127.0.0.1/test").await?;
//! stream_postgres::migrate(&pool).await?;
//! let inbox = Inbox::new(pool.clone(), "billing");
//! let app = StreamAppBuilder::new()
//!     .config_file("application.yaml")
//!     .consumer("bill", inbox.handler(|tx, order: Message<Order>| async move {
//!         sqlx::query("INSERT INTO invoices (order_id) VALUES ($1)")
//!             .bind(order.payload.id)
//!             .execute(&mut *tx.conn().await?)
//!             .await?;
//!         tx.publish("invoices", &serde_json::json!({"order": order.payload.id})).await?;
//!         Ok::<_, HandlerError>(())
//!     }))
//!     .extension(Relay::new(pool).extension())
//!     .build()
//!     .await?;
//! app.run_until_shutdown().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod inbox;
pub mod outbox;
mod relay;
mod tx;

pub use error::Error;
pub use inbox::Inbox;
pub use relay::{Pass, Relay};
pub use tx::Tx;

/// The tables' SQL (idempotent): what [`migrate`] runs, for teams that run their own
/// migrations.
pub const SCHEMA_SQL: &str = include_str!("../migrations/cloud_stream.sql");

/// Creates the inbox and outbox tables in the current schema if they are missing (several
/// instances starting at once take turns).
pub async fn migrate(pool: &sqlx::PgPool) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.migrate'))")
        .execute(&mut *tx)
        .await?;
    // A plain `&str` runs as a simple query: several statements in one round trip.
    sqlx::Executor::execute(&mut *tx, SCHEMA_SQL).await?;
    tx.commit().await?;
    Ok(())
}
