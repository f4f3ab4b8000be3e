//! The subscription: reads the queue's consumer (re-declaring and re-subscribing after
//! connection loss); each delivery is acked, requeued or dead-lettered exactly once, and a
//! delivery dropped unsettled is requeued.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    QueueDeleteOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{Acker, Channel};
use stream_core::binder::{
    Backoff, BatchLimits, BindError, ConsumeError, DeadLetter, Delivery, SettleError, Subscription,
};
use stream_core::message::{header, RawMessage};

use crate::acks::AckBatch;
use crate::connection::{boxed, Connector};
use crate::headers::{delivery_count, from_delivery, to_properties};
use crate::props::{ConsumerProps, DeliveryMode};
use crate::provision::{
    declare_anonymous_queue, declare_exchange, declare_group_queue, declare_wait_queue, wait_queue,
    QueuePlan,
};
use crate::publisher::Publisher;

/// What a subscription consumes and how it dead-letters.
pub(crate) struct ConsumerCtx {
    pub connector: Arc<Connector>,
    pub destination: String,
    pub group: Option<String>,
    pub plan: QueuePlan,
    pub props: ConsumerProps,
    /// Queue name for anonymous subscriptions (`<anonymous-group-prefix><random>`).
    pub anonymous_name: String,
    /// Publishes dead letters (republish-to-dlq) and delayed redeliveries.
    pub dlq: Publisher,
    /// `redelivery-delays`: one wait queue each (a group's only).
    pub delays: Vec<Duration>,
}

/// An established consumer.
struct Consuming {
    channel: Channel,
    consumer: lapin::Consumer,
    queue: String,
    acks: Arc<AckBatch>,
}

impl ConsumerCtx {
    /// Connects (if needed), declares everything, sets the prefetch and starts consuming.
    async fn setup(&self) -> Result<Consuming, BindError> {
        let live = self.connector.live().await.map_err(|e| e.into_bind())?;
        let ch = live.channel().await.map_err(|e| BindError::Connect {
            what: format!("RabbitMQ at {}", self.connector.display()),
            source: boxed(&e),
        })?;
        declare_exchange(&ch, &self.plan.exchange, &self.props.queue.exchange).await?;
        let queue = match &self.group {
            Some(_) => {
                declare_group_queue(
                    &live,
                    &ch,
                    &self.plan,
                    &self.props.queue,
                    self.props.single_active_consumer,
                    !self.props.republish_to_dlq,
                )
                .await?;
                self.plan.queue.clone()
            }
            None => {
                declare_anonymous_queue(&ch, &self.anonymous_name, &self.plan, &self.props.queue)
                    .await?
            }
        };
        for delay in &self.delays {
            declare_wait_queue(&ch, &queue, *delay).await?;
        }
        let provision = |what: &str, e: lapin::Error| BindError::Provision {
            resource: format!("{what} {queue}"),
            source: boxed(&e),
        };
        ch.basic_qos(self.props.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| provision("prefetch on", e))?;
        let consumer = ch
            .basic_consume(
                ShortString::from(queue.as_str()),
                ShortString::from(""),
                BasicConsumeOptions {
                    exclusive: self.props.exclusive,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| provision("consumer on", e))?;
        let max_owed = usize::from(self.props.prefetch) / 2;
        Ok(Consuming {
            acks: Arc::new(AckBatch::new(ch.clone(), max_owed)),
            channel: ch,
            consumer,
            queue,
        })
    }
}

/// A bound input (see [`crate::RabbitBinder`]). `next()` reads the lapin consumer directly
/// (no extra task hop) and, after the channel or connection was lost, re-declares and
/// resubscribes with back-off before reading on.
pub struct RabbitSubscription {
    ctx: Arc<ConsumerCtx>,
    current: Option<Consuming>,
    backoff: Backoff,
    retry_at: Option<tokio::time::Instant>,
}

impl RabbitSubscription {
    /// Sets up the consumer once (errors are returned to the caller).
    pub(crate) async fn start(ctx: ConsumerCtx) -> Result<Self, BindError> {
        let first = ctx.setup().await?;
        tracing::debug!(destination = %ctx.destination, queue = %first.queue, prefetch = ctx.props.prefetch, "rabbit consumer bound");
        Ok(RabbitSubscription {
            ctx: Arc::new(ctx),
            current: Some(first),
            backoff: Backoff::default(),
            retry_at: None,
        })
    }

    fn lost(&mut self) {
        self.current = None;
        self.retry_at = Some(tokio::time::Instant::now() + self.backoff.next_delay());
    }

    /// What the lapin consumer yielded: a delivery, or `None` after noting the channel lost
    /// (the next [`Subscription::next`] resubscribes).
    fn received(
        &mut self,
        item: Option<lapin::Result<lapin::message::Delivery>>,
        acks: Arc<AckBatch>,
    ) -> Option<Box<dyn Delivery>> {
        match item {
            Some(Ok(d)) => return Some(Box::new(RabbitDelivery::new(d, &self.ctx, acks))),
            Some(Err(e)) => {
                tracing::warn!(destination = %self.ctx.destination, error = %crate::connection::redact(&e), "rabbit consumer lost its channel; resubscribing");
            }
            None => {
                tracing::warn!(destination = %self.ctx.destination, "rabbit consumer cancelled by the broker; resubscribing");
            }
        }
        self.lost();
        None
    }
}

async fn stop(ctx: &ConsumerCtx, c: Consuming) {
    let Consuming {
        channel,
        consumer,
        queue,
        acks,
    } = c;
    if channel.status().connected() {
        acks.flush();
        let _ = channel
            .basic_cancel(consumer.tag(), BasicCancelOptions::default())
            .await;
        if ctx.group.is_none() {
            let _ = channel
                .queue_delete(
                    ShortString::from(queue.as_str()),
                    QueueDeleteOptions::default(),
                )
                .await;
        }
        // Closing the channel requeues whatever is still unacked.
        let _ = channel.close(200, "subscription closed".into()).await;
    }
    drop(consumer);
    ctx.dlq.close().await;
}

#[async_trait]
impl Subscription for RabbitSubscription {
    fn batch_limits(&self) -> BatchLimits {
        self.ctx.props.batch_limits()
    }

    // Cancel-safe: every await point either loses nothing (sleep, setup: a half-made channel
    // is closed when dropped) or is the lapin consumer stream itself.
    async fn next(&mut self) -> Option<Result<Box<dyn Delivery>, ConsumeError>> {
        loop {
            let Some(c) = self.current.as_mut() else {
                if let Some(at) = self.retry_at {
                    tokio::time::sleep_until(at).await;
                }
                match self.ctx.setup().await {
                    Ok(c) => {
                        tracing::info!(destination = %self.ctx.destination, queue = %c.queue, "rabbit consumer resumed");
                        self.current = Some(c);
                        self.backoff = Backoff::default();
                        self.retry_at = None;
                    }
                    Err(e) => {
                        self.lost();
                        tracing::warn!(destination = %self.ctx.destination, error = %e, "rabbit consumer cannot resubscribe yet");
                    }
                }
                continue;
            };
            // Nothing is buffered: the acks held back go out before waiting.
            c.acks.idle();
            let acks = Arc::clone(&c.acks);
            let item = c.consumer.next().await;
            if let Some(d) = self.received(item, acks) {
                return Some(Ok(d));
            }
        }
    }

    // Lapin buffers the deliveries its I/O loop has read: taking a buffered one directly
    // saves the runtime a wake-up per message.
    fn try_next(&mut self) -> Option<Result<Box<dyn Delivery>, ConsumeError>> {
        let c = self.current.as_mut()?;
        let item = c.consumer.next().now_or_never()?;
        let acks = Arc::clone(&c.acks);
        self.received(item, acks).map(Ok)
    }

    async fn close(mut self: Box<Self>) {
        match self.current.take() {
            Some(c) => stop(&self.ctx, c).await,
            None => self.ctx.dlq.close().await,
        }
    }
}

/// Dead-letter header (Spring's): the exchange the message was consumed from.
pub const ORIGINAL_EXCHANGE: &str = "x-original-exchange";
/// Dead-letter header (Spring's): the routing key it was published with.
pub const ORIGINAL_ROUTING_KEY: &str = "x-original-routingKey";

/// One received message.
pub struct RabbitDelivery {
    message: RawMessage,
    /// The AMQP properties as received: the headers are rebuilt from them when the message
    /// was taken and must be dead-lettered (so `take_message` needs no copy).
    properties: lapin::BasicProperties,
    /// Where the broker took it from, for the dead letter's `x-original-exchange` and
    /// `x-original-routingKey` (Spring's republish-from-DLQ reads them).
    exchange: lapin::types::ShortString,
    routing_key: lapin::types::ShortString,
    acker: Option<Acker>,
    /// The delivery's tag on its channel, and that channel's acks.
    tag: lapin::types::DeliveryTag,
    acks: Arc<AckBatch>,
    redelivery_count: u32,
    ctx: Arc<ConsumerCtx>,
}

impl RabbitDelivery {
    /// The message as it came (headers rebuilt from the AMQP properties), to publish again.
    fn republished(&mut self) -> RawMessage {
        let mut m = from_delivery(Vec::new(), &self.properties);
        m.payload = std::mem::take(&mut self.message.payload);
        m
    }

    fn new(d: lapin::message::Delivery, ctx: &Arc<ConsumerCtx>, acks: Arc<AckBatch>) -> Self {
        let redelivery_count = match delivery_count(&d.properties) {
            Some(n) => n + 1,
            None if d.redelivered => 2,
            None => 1,
        };
        let message = from_delivery(d.data, &d.properties);
        acks.opened(d.delivery_tag);
        RabbitDelivery {
            message,
            properties: d.properties,
            exchange: d.exchange,
            routing_key: d.routing_key,
            acker: Some(d.acker),
            tag: d.delivery_tag,
            acks,
            redelivery_count,
            ctx: Arc::clone(ctx),
        }
    }

    /// The delivery was settled on its own (when `done`): it no longer holds back the acks
    /// owed after it. A failed settlement keeps it open: its channel is gone, or the broker
    /// still holds it, so no `multiple` ack may cover it.
    fn settled(&self, done: bool) {
        if done {
            self.acks.closed(self.tag);
        }
    }

    fn take_acker(&mut self) -> Result<Acker, SettleError> {
        self.acker
            .take()
            .ok_or_else(|| SettleError::new("delivery already settled"))
    }
}

fn settle_err(e: lapin::Error) -> SettleError {
    SettleError { source: boxed(&e) }
}

async fn nack(acker: &Acker, requeue: bool) -> Result<(), SettleError> {
    acker
        .nack(BasicNackOptions {
            requeue,
            ..Default::default()
        })
        .await
        .map(|_| ())
        .map_err(settle_err)
}

#[async_trait]
impl Delivery for RabbitDelivery {
    fn message(&self) -> &RawMessage {
        &self.message
    }

    fn take_message(&mut self) -> RawMessage {
        // The payload stays shared (for dead-lettering); the headers are moved out and rebuilt
        // from the AMQP properties if needed.
        let payload = self.message.payload.clone();
        std::mem::replace(&mut self.message, RawMessage::new(payload))
    }

    fn redelivery_count(&self) -> u32 {
        self.redelivery_count
    }

    // The handler has succeeded: the ack is owed, and the channel's batch sends it with the
    // others (see `acks`), never waiting for its write.
    fn try_ack(&mut self) -> Option<Result<(), SettleError>> {
        // The acker is not used: the channel's batch acks it, in order with the others.
        Some(self.take_acker().map(|_acker| self.acks.owe(self.tag)))
    }

    async fn ack(mut self: Box<Self>) -> Result<(), SettleError> {
        let acker = self.take_acker()?;
        let acked = acker.ack(BasicAckOptions::default()).await;
        self.settled(acked.is_ok());
        acked.map(|_| ()).map_err(settle_err)
    }

    async fn requeue(mut self: Box<Self>) -> Result<(), SettleError> {
        let acker = self.take_acker()?;
        let requeued = nack(&acker, true).await;
        self.settled(requeued.is_ok());
        requeued
    }

    /// Published (confirmed) to the group queue's wait queue for `delay`, whose TTL
    /// dead-letters it back to the group queue through the default exchange; then acked.
    async fn redeliver_after(
        mut self: Box<Self>,
        delay: Duration,
        redeliveries: u32,
    ) -> Result<(), SettleError> {
        let acker = self.take_acker()?;
        let mut m = self.republished();
        m.headers
            .insert(header::DELAYED_REDELIVERIES, redeliveries.to_string());
        let wait = wait_queue(&self.ctx.plan.queue, delay);
        let (settled, result) =
            publish_then_ack(&self.ctx.dlq, acker, (&wait, "", &wait, true), &m).await;
        self.settled(settled);
        result
    }

    async fn dead_letter(mut self: Box<Self>, reason: DeadLetter) -> Result<(), SettleError> {
        let acker = self.take_acker()?;
        let ctx = Arc::clone(&self.ctx);
        let Some(dl) = &ctx.plan.dead_letter else {
            tracing::error!(destination = %ctx.destination, error = %reason.error_message, "no dead-letter queue (auto-bind-dlq: false); message rejected and dropped");
            let rejected = nack(&acker, false).await;
            self.settled(rejected.is_ok());
            return rejected;
        };
        if !ctx.props.republish_to_dlq {
            // The broker dead-letters it through the queue's x-dead-letter-exchange.
            let rejected = nack(&acker, false).await;
            self.settled(rejected.is_ok());
            return rejected;
        }
        let mut m = self.republished();
        reason.stamp(&mut m.headers, &ctx.destination, ctx.group.as_deref());
        m.headers.insert(ORIGINAL_EXCHANGE, self.exchange.as_str());
        m.headers
            .insert(ORIGINAL_ROUTING_KEY, self.routing_key.as_str());
        let route = (
            dl.queue.as_str(),
            dl.exchange.as_str(),
            dl.routing_key.as_str(),
            false,
        );
        let (settled, result) = publish_then_ack(&ctx.dlq, acker, route, &m).await;
        self.settled(settled);
        result
    }
}

/// Publishes `m` (confirmed) to `(destination, exchange, routing key, mandatory)`, then acks
/// the original; when the publish fails, hands the original back so it is not lost. Says
/// whether the original was settled on the broker (acked or requeued), and the outcome.
async fn publish_then_ack(
    publisher: &Publisher,
    acker: Acker,
    (destination, exchange, routing_key, mandatory): (&str, &str, &str, bool),
    m: &RawMessage,
) -> (bool, Result<(), SettleError>) {
    let props = || to_properties(m, DeliveryMode::Persistent);
    let published = publisher
        .publish(
            destination,
            exchange,
            routing_key,
            mandatory,
            &m.payload,
            props,
        )
        .await;
    match published {
        Ok(()) => {
            let acked = acker.ack(BasicAckOptions::default()).await;
            (acked.is_ok(), acked.map(|_| ()).map_err(settle_err))
        }
        Err(e) => {
            let requeued = nack(&acker, true).await.is_ok();
            (requeued, Err(SettleError::new(e)))
        }
    }
}

impl Drop for RabbitDelivery {
    fn drop(&mut self) {
        if let Some(acker) = self.acker.take() {
            // Unsettled (crash semantics): requeue now rather than when the channel closes.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let (acks, tag) = (Arc::clone(&self.acks), self.tag);
                handle.spawn(async move {
                    if nack(&acker, true).await.is_ok() {
                        acks.closed(tag);
                    }
                });
            }
        }
    }
}
