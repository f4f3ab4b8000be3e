//! The `outbox` profile (cargo feature `postgres`; PostgreSQL at `DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`): the order service stores each order and its
//! `OrderCreated` in one transaction (the relay publishes it after the commit), and the
//! payment service is idempotent: its payment row, its inbox row and its `PaymentCompleted`
//! commit together, so a redelivered reservation is never charged twice.

use std::sync::Arc;

use cloud_stream::app::AppExtension;
use cloud_stream::postgres::{self as pg, Inbox, Relay};
use cloud_stream::{HandlerError, Message};
use futures::future::BoxFuture;

use super::{price_of, OrderCreated, PaymentCompleted, StockReserved};

type PayHandler = Box<
    dyn Fn(Message<StockReserved>) -> BoxFuture<'static, Result<(), HandlerError>> + Send + Sync,
>;

/// The shop's database.
pub struct Store {
    pool: sqlx::PgPool,
    pay: PayHandler,
}

impl Store {
    /// Connects, creates the library's tables and the shop's.
    pub async fn connect() -> Result<Store, Box<dyn std::error::Error>> {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let pool = sqlx::PgPool::connect(&url).await?;
        pg::migrate(&pool).await?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS shop_orders (id bigint PRIMARY KEY, customer text NOT NULL, sku text NOT NULL, qty int NOT NULL);
             CREATE TABLE IF NOT EXISTS shop_payments (order_id bigint PRIMARY KEY, amount_cents bigint NOT NULL);
             TRUNCATE shop_orders, shop_payments;",
        )
        .execute(&pool)
        .await?;
        let inbox = Inbox::new(pool.clone(), "payment");
        let pay = inbox.handler(|tx, m: Message<StockReserved>| async move {
            let r = m.payload;
            let amount_cents = price_of(&r.sku) * u64::from(r.qty);
            sqlx::query("INSERT INTO shop_payments (order_id, amount_cents) VALUES ($1, $2)")
                .bind(r.order_id as i64)
                .bind(amount_cents as i64)
                .execute(&mut *tx.conn().await?)
                .await?;
            let paid = PaymentCompleted {
                order_id: r.order_id,
                amount_cents,
            };
            tx.publish("payments", &paid).await?;
            println!(
                "[payment]   #{} paid {} (stored with its event)",
                r.order_id,
                super::dollars(amount_cents)
            );
            Ok(())
        });
        Ok(Store {
            pool,
            pay: Box::new(pay),
        })
    }

    /// Stores `order` and its `OrderCreated` in one transaction.
    pub async fn place(&self, order: &OrderCreated) -> Result<(), HandlerError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO shop_orders (id, customer, sku, qty) VALUES ($1, $2, $3, $4)")
            .bind(order.id as i64)
            .bind(&order.customer)
            .bind(&order.sku)
            .bind(order.qty as i32)
            .execute(&mut *tx)
            .await?;
        pg::outbox::send(&mut tx, "orders", order).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Charges a reservation once, whatever the number of deliveries.
    pub fn pay(
        &self,
        reserved: Message<StockReserved>,
    ) -> BoxFuture<'static, Result<(), HandlerError>> {
        (self.pay)(reserved)
    }

    /// The outbox relay, started with the application.
    pub fn relay(&self) -> Arc<dyn AppExtension> {
        Relay::new(self.pool.clone()).extension()
    }
}
