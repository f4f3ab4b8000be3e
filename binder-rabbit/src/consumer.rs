//! The subscription: a background task consumes the queue (re-declaring and re-subscribing
//! after connection loss) and hands deliveries to the runtime through a bounded channel; each
//! delivery is acked, requeued or dead-lettered exactly once, and a delivery dropped unsettled
//! is requeued.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    QueueDeleteOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{Acker, Channel};
use stream_core::binder::{
    BindError, ConsumeError, DeadLetter, Delivery, SettleError, Subscription,
};
use stream_core::message::{header, RawMessage};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::connection::{boxed, Backoff, Connector};
use crate::headers::{delivery_count, from_delivery, to_properties};
use crate::props::{ConsumerProps, DeliveryMode};
use crate::provision::{declare_anonymous_queue, declare_exchange, declare_group_queue, QueuePlan};
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
    /// Publishes dead letters (republish-to-dlq).
    pub dlq: Publisher,
}

/// An established consumer.
struct Consuming {
    channel: Channel,
    consumer: lapin::Consumer,
    queue: String,
}

impl ConsumerCtx {
    /// Connects (if needed), declares everything, sets the prefetch and starts consuming.
    async fn setup(&self) -> Result<Consuming, BindError> {
        let live = self.connector.live().await.map_err(|e| e.into_bind())?;
        let ch = live.channel().await.map_err(|e| BindError::Connect {
            what: self.connector.display(),
            source: boxed(&e),
        })?;
        declare_exchange(&ch, &self.plan.exchange, &self.props.queue.exchange).await?;
        let queue = match &self.group {
            Some(_) => {
                declare_group_queue(
                    &ch,
                    &self.plan,
                    &self.props.queue,
                    self.props.single_active_consumer,
                )
                .await?;
                self.plan.queue.clone()
            }
            None => {
                declare_anonymous_queue(&ch, &self.anonymous_name, &self.plan, &self.props.queue)
                    .await?
            }
        };
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
        Ok(Consuming {
            channel: ch,
            consumer,
            queue,
        })
    }
}

type Item = Result<Box<dyn Delivery>, ConsumeError>;

/// A bound input (see [`crate::RabbitBinder`]).
pub struct RabbitSubscription {
    rx: mpsc::Receiver<Item>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl RabbitSubscription {
    /// Sets up the consumer once (errors are returned to the caller), then keeps it running in
    /// the background.
    pub(crate) async fn start(ctx: ConsumerCtx) -> Result<Self, BindError> {
        let first = ctx.setup().await?;
        tracing::debug!(destination = %ctx.destination, queue = %first.queue, prefetch = ctx.props.prefetch, "rabbit consumer bound");
        let (tx, rx) = mpsc::channel(1);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(Arc::new(ctx), first, tx, cancel.clone()));
        Ok(RabbitSubscription {
            rx,
            cancel,
            task: Some(task),
        })
    }
}

async fn stop(ctx: &ConsumerCtx, c: Consuming) {
    let Consuming {
        channel,
        consumer,
        queue,
    } = c;
    if channel.status().connected() {
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
    ctx.dlq.close().await;
}

async fn run(
    ctx: Arc<ConsumerCtx>,
    first: Consuming,
    tx: mpsc::Sender<Item>,
    cancel: CancellationToken,
) {
    let mut current = Some(first);
    let mut backoff = Backoff::default();
    loop {
        let mut c = match current.take() {
            Some(c) => c,
            None => {
                let r = tokio::select! {
                    _ = cancel.cancelled() => return ctx.dlq.close().await,
                    r = ctx.setup() => r,
                };
                match r {
                    Ok(c) => {
                        tracing::info!(destination = %ctx.destination, queue = %c.queue, "rabbit consumer resumed");
                        backoff = Backoff::default();
                        c
                    }
                    Err(e) => {
                        let wait = backoff.next_delay();
                        tracing::warn!(destination = %ctx.destination, error = %e, retry_in_ms = wait.as_millis() as u64, "rabbit consumer cannot resubscribe");
                        tokio::select! {
                            _ = cancel.cancelled() => return ctx.dlq.close().await,
                            _ = tokio::time::sleep(wait) => {}
                        }
                        continue;
                    }
                }
            }
        };
        loop {
            let item = tokio::select! {
                biased;
                _ = cancel.cancelled() => return stop(&ctx, c).await,
                item = c.consumer.next() => item,
            };
            match item {
                Some(Ok(d)) => {
                    let delivery: Box<dyn Delivery> = Box::new(RabbitDelivery::new(d, &ctx));
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => return stop(&ctx, c).await,
                        sent = tx.send(Ok(delivery)) => if let Err(mpsc::error::SendError(item)) = sent {
                            // The subscription is closing: hand the message back now.
                            if let Ok(d) = item {
                                let _ = d.requeue().await;
                            }
                            return stop(&ctx, c).await;
                        },
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(destination = %ctx.destination, error = %crate::connection::redact(&e), "rabbit consumer lost its channel; resubscribing");
                    break;
                }
                None => {
                    tracing::warn!(destination = %ctx.destination, queue = %c.queue, "rabbit consumer cancelled by the broker; resubscribing");
                    break;
                }
            }
        }
        drop(c);
        tokio::select! {
            _ = cancel.cancelled() => return ctx.dlq.close().await,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

#[async_trait]
impl Subscription for RabbitSubscription {
    async fn next(&mut self) -> Option<Result<Box<dyn Delivery>, ConsumeError>> {
        self.rx.recv().await
    }

    async fn close(mut self: Box<Self>) {
        // Deliveries still buffered go back to the queue before the channel closes.
        self.rx.close();
        while let Ok(item) = self.rx.try_recv() {
            if let Ok(d) = item {
                let _ = d.requeue().await;
            }
        }
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for RabbitSubscription {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// One received message.
pub struct RabbitDelivery {
    message: RawMessage,
    acker: Option<Acker>,
    redelivery_count: u32,
    ctx: Arc<ConsumerCtx>,
}

impl RabbitDelivery {
    fn new(d: lapin::message::Delivery, ctx: &Arc<ConsumerCtx>) -> Self {
        let redelivery_count = match delivery_count(&d.properties) {
            Some(n) => n + 1,
            None if d.redelivered => 2,
            None => 1,
        };
        let message = from_delivery(d.data, &d.properties);
        RabbitDelivery {
            message,
            acker: Some(d.acker),
            redelivery_count,
            ctx: Arc::clone(ctx),
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
        self.message.clone()
    }

    fn redelivery_count(&self) -> u32 {
        self.redelivery_count
    }

    async fn ack(mut self: Box<Self>) -> Result<(), SettleError> {
        let acker = self.take_acker()?;
        acker
            .ack(BasicAckOptions::default())
            .await
            .map(|_| ())
            .map_err(settle_err)
    }

    async fn requeue(mut self: Box<Self>) -> Result<(), SettleError> {
        let acker = self.take_acker()?;
        nack(&acker, true).await
    }

    async fn dead_letter(mut self: Box<Self>, reason: DeadLetter) -> Result<(), SettleError> {
        let acker = self.take_acker()?;
        let ctx = Arc::clone(&self.ctx);
        let Some(dl) = &ctx.plan.dead_letter else {
            tracing::error!(destination = %ctx.destination, error = %reason.error_message, "no dead-letter queue (auto-bind-dlq: false); message rejected and dropped");
            return nack(&acker, false).await;
        };
        if !ctx.props.republish_to_dlq {
            // The broker dead-letters it through the queue's x-dead-letter-exchange.
            return nack(&acker, false).await;
        }
        let mut m = std::mem::replace(&mut self.message, RawMessage::new(bytes::Bytes::new()));
        let h = &mut m.headers;
        h.insert(header::ORIGINAL_TOPIC, ctx.destination.as_str());
        if let Some(g) = &ctx.group {
            h.insert(header::ORIGINAL_GROUP, g.as_str());
        }
        h.insert(header::EXCEPTION_MESSAGE, reason.error_message);
        h.insert(header::EXCEPTION_KIND, reason.error_kind);
        h.insert(header::ORIGINAL_ATTEMPTS, reason.attempts.to_string());
        match ctx
            .dlq
            .publish(
                &dl.queue,
                &dl.exchange,
                &dl.routing_key,
                false,
                &m.payload,
                || to_properties(&m, DeliveryMode::Persistent),
            )
            .await
        {
            Ok(()) => acker
                .ack(BasicAckOptions::default())
                .await
                .map(|_| ())
                .map_err(settle_err),
            Err(e) => {
                // Not dead-lettered: hand it back so it is not lost.
                let _ = nack(&acker, true).await;
                Err(SettleError::new(e))
            }
        }
    }
}

impl Drop for RabbitDelivery {
    fn drop(&mut self) {
        if let Some(acker) = self.acker.take() {
            // Unsettled (crash semantics): requeue now rather than when the channel closes.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = nack(&acker, true).await;
                });
            }
        }
    }
}
