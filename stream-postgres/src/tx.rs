//! The transaction a transactional handler runs in.

use std::sync::Arc;

use serde::Serialize;
use sqlx::{PgConnection, Postgres, Transaction};
use stream_core::Message;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use crate::{outbox, Error};

/// The database transaction of one handler call: the inbox row is already in it, the handler
/// adds its own writes (through [`Tx::conn`]) and its events (through [`Tx::publish`]), and
/// the runtime commits it when the handler returns `Ok` (and rolls it back otherwise).
///
/// It is a cheap handle (clone it freely); using it after the handler returned fails with
/// [`Error::Finished`].
#[derive(Clone)]
pub struct Tx {
    inner: Arc<Mutex<Option<Transaction<'static, Postgres>>>>,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").finish_non_exhaustive()
    }
}

impl Tx {
    pub(crate) fn new(tx: Transaction<'static, Postgres>) -> Self {
        Tx {
            inner: Arc::new(Mutex::new(Some(tx))),
        }
    }

    /// The transaction's connection, for sqlx queries:
    /// `sqlx::query("…").execute(&mut *tx.conn().await?).await?`.
    pub async fn conn(&self) -> Result<MappedMutexGuard<'_, PgConnection>, Error> {
        MutexGuard::try_map(self.inner.lock().await, |tx| tx.as_deref_mut())
            .map_err(|_| Error::Finished)
    }

    /// Adds `payload` (as JSON) to the outbox, for `destination` (a binding name or a
    /// destination, as for `StreamBridge::send`): published once this transaction commits.
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        destination: &str,
        payload: &T,
    ) -> Result<(), Error> {
        outbox::send(&mut *self.conn().await?, destination, payload).await
    }

    /// As [`Tx::publish`], with headers (a `partition-key` header keeps per-key order).
    pub async fn publish_message<T: Serialize>(
        &self,
        destination: &str,
        message: &Message<T>,
    ) -> Result<(), Error> {
        outbox::send_message(&mut *self.conn().await?, destination, message).await
    }

    /// Takes the transaction out (the handler returned); `None` if it was taken already.
    pub(crate) async fn take(&self) -> Option<Transaction<'static, Postgres>> {
        self.inner.lock().await.take()
    }
}
