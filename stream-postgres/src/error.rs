//! The crate's error type.

/// What went wrong talking to PostgreSQL or publishing an outbox row.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A query, a connection or a commit failed.
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    /// An outbox payload could not be encoded as JSON.
    #[error("cannot encode the outbox payload as JSON: {0}")]
    Encode(#[from] serde_json::Error),
    /// The handler's transaction was used after the handler returned.
    #[error("the transaction is finished (it is committed when the handler returns)")]
    Finished,
    /// The relay could not publish an outbox row; it stays in the outbox and is retried.
    #[error("publishing outbox row {id} to `{destination}` failed: {message}")]
    Publish {
        /// The row's id.
        id: i64,
        /// Where it was going.
        destination: String,
        /// The binder's error.
        message: String,
    },
}
