//! Without the cargo feature `postgres` there is no outbox store: `--profile outbox` says so.

use std::sync::Arc;

use cloud_stream::app::AppExtension;
use cloud_stream::{HandlerError, Message};
use futures::future::BoxFuture;

use super::{OrderCreated, StockReserved};

/// No store can exist in this build.
pub enum Store {}

impl Store {
    /// Always an error naming the missing feature.
    pub async fn connect() -> Result<Store, Box<dyn std::error::Error>> {
        Err("the outbox profile needs PostgreSQL support: cargo run --example shop --features postgres -- --profile outbox".into())
    }

    /// Unreachable: no `Store` exists.
    pub async fn place(&self, _order: &OrderCreated) -> Result<(), HandlerError> {
        match *self {}
    }

    /// Unreachable: no `Store` exists.
    pub fn pay(
        &self,
        _reserved: Message<StockReserved>,
    ) -> BoxFuture<'static, Result<(), HandlerError>> {
        match *self {}
    }

    /// Unreachable: no `Store` exists.
    pub fn relay(&self) -> Arc<dyn AppExtension> {
        match *self {}
    }
}
