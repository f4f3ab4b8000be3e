//! The consumer: long-polling receive loops feeding a bounded prefetch window, one heartbeat
//! per received message extending its visibility until it is settled, batched deletes on ack,
//! `ChangeMessageVisibility(0)` on requeue (and when a delivery is dropped unsettled), and
//! dead-lettering to `<queue>-dlq` with the error headers.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use stream_core::binder::{
    BatchLimits, ConsumeError, DeadLetter, Delivery, SettleError, Subscription,
};
use stream_core::message::{header, RawMessage};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::config::ConsumerSettings;
use crate::headers::{self, Attr};
use crate::producer::{fifo_id, send_to_queue};
use crate::provision::{describe, Clients, ConsumerResources};

/// What deliveries of one subscription share.
pub(crate) struct Shared {
    pub clients: Clients,
    pub destination: String,
    pub group: Option<String>,
    pub resources: ConsumerResources,
    pub visibility_timeout: u32,
    deleter: mpsc::Sender<(String, oneshot::Sender<Result<(), String>>)>,
    /// The DLQ URL once known (created lazily for anonymous consumers).
    dlq_url: tokio::sync::OnceCell<String>,
}

impl Shared {
    async fn dlq_url(&self) -> Result<&String, String> {
        self.dlq_url
            .get_or_try_init(|| async {
                match &self.resources.dlq {
                    Some(q) => Ok(q.url.clone()),
                    None => self
                        .clients
                        .queue(&self.resources.dlq_name, self.resources.fifo, true)
                        .await
                        .map(|q| q.url)
                        .map_err(|e| e.to_string()),
                }
            })
            .await
    }

    async fn change_visibility(&self, receipt: &str, seconds: u32) -> Result<(), String> {
        self.clients
            .sqs
            .change_message_visibility()
            .queue_url(&self.resources.queue.url)
            .receipt_handle(receipt)
            .visibility_timeout(i32::try_from(seconds).unwrap_or(i32::MAX))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe(&e))
    }

    async fn delete(&self, receipt: String) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.deleter
            .send((receipt, tx))
            .await
            .map_err(|_| "the subscription's deleter stopped".to_owned())?;
        rx.await
            .map_err(|_| "the subscription's deleter stopped".to_owned())?
    }
}

/// A bound input reading one SQS queue.
pub struct SqsSubscription {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Result<SqsDelivery, ConsumeError>>,
    stop: CancellationToken,
    pollers: JoinSet<()>,
    grace: Duration,
    closed: bool,
    /// A `batch-mode` binding's batch: what one receive returns (`max-number-of-messages`).
    batch: BatchLimits,
}

impl fmt::Debug for SqsSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqsSubscription")
            .field("queue", &self.shared.resources.queue.name)
            .field("temporary", &self.shared.resources.temporary)
            .finish()
    }
}

impl SqsSubscription {
    /// Starts polling `resources.queue`.
    pub(crate) fn start(
        clients: Clients,
        destination: &str,
        group: Option<&str>,
        resources: ConsumerResources,
        settings: &ConsumerSettings,
        concurrency: u32,
    ) -> Self {
        let prefetch = settings
            .prefetch
            .unwrap_or_else(|| (concurrency.max(1) * 2).max(settings.max_number_of_messages));
        let pollers = settings.pollers.unwrap_or(1).max(1);
        let (del_tx, del_rx) = mpsc::channel(1024);
        tokio::spawn(deleter_loop(
            clients.sqs.clone(),
            resources.queue.url.clone(),
            del_rx,
        ));
        let shared = Arc::new(Shared {
            clients,
            destination: destination.to_owned(),
            group: group.map(str::to_owned),
            resources,
            visibility_timeout: settings.visibility_timeout,
            deleter: del_tx,
            dlq_url: tokio::sync::OnceCell::new(),
        });
        let (tx, rx) = mpsc::channel(prefetch as usize + 10);
        let window = Arc::new(Semaphore::new(prefetch as usize));
        let stop = CancellationToken::new();
        let mut set = JoinSet::new();
        for _ in 0..pollers {
            set.spawn(poll_loop(
                Arc::clone(&shared),
                tx.clone(),
                Arc::clone(&window),
                stop.clone(),
                settings.clone(),
            ));
        }
        tracing::debug!(
            destination,
            group = group.unwrap_or("<anonymous>"),
            queue = %shared.resources.queue.name,
            prefetch,
            pollers,
            "sqs consumer bound"
        );
        SqsSubscription {
            shared,
            rx,
            stop,
            pollers: set,
            grace: settings.wait_time() + Duration::from_secs(5),
            closed: false,
            batch: BatchLimits {
                max_messages: settings.max_number_of_messages.max(1) as usize,
                receive_timeout: Duration::ZERO,
            },
        }
    }

    /// The queue this subscription reads.
    pub fn queue_name(&self) -> &str {
        &self.shared.resources.queue.name
    }
}

impl Drop for SqsSubscription {
    fn drop(&mut self) {
        // Pollers finish their current receive and hand back what they got.
        self.stop.cancel();
        if !self.closed && self.shared.resources.temporary {
            let clients = self.shared.clients.clone();
            let resources = self.shared.resources.clone();
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                h.spawn(async move { clients.remove_temporary(&resources).await });
            }
        }
    }
}

fn boxed(item: Result<SqsDelivery, ConsumeError>) -> Result<Box<dyn Delivery>, ConsumeError> {
    item.map(|d| Box::new(d) as Box<dyn Delivery>)
}

#[async_trait]
impl Subscription for SqsSubscription {
    async fn next(&mut self) -> Option<Result<Box<dyn Delivery>, ConsumeError>> {
        if self.closed {
            return None;
        }
        self.rx.recv().await.map(boxed)
    }

    fn try_next(&mut self) -> Option<Result<Box<dyn Delivery>, ConsumeError>> {
        if self.closed {
            return None;
        }
        self.rx.try_recv().ok().map(boxed)
    }

    fn batch_limits(&self) -> BatchLimits {
        self.batch
    }

    async fn close(mut self: Box<Self>) {
        self.closed = true;
        self.stop.cancel();
        self.rx.close();
        let mut buffered = Vec::new();
        while let Ok(d) = self.rx.try_recv() {
            buffered.push(d);
        }
        let grace = self.grace;
        let mut pollers = std::mem::take(&mut self.pollers);
        if tokio::time::timeout(grace, async {
            while pollers.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            pollers.abort_all();
        }
        while let Ok(d) = self.rx.try_recv() {
            buffered.push(d);
        }
        // Received but never handed out: visible again now, before `close` returns (a task
        // spawned on drop could outlive a short-lived process, e.g. `cloud-stream dlq replay`,
        // leaving them hidden for the visibility timeout).
        for d in buffered.into_iter().flatten() {
            let _ = Delivery::requeue(Box::new(d)).await;
        }
        if self.shared.resources.temporary {
            self.shared
                .clients
                .remove_temporary(&self.shared.resources)
                .await;
        }
        tracing::debug!(queue = %self.shared.resources.queue.name, "sqs consumer closed");
    }
}

fn attrs_of(m: &aws_sdk_sqs::types::Message) -> HashMap<String, Attr> {
    let mut out = HashMap::new();
    if let Some(a) = m.message_attributes() {
        for (name, v) in a {
            if let Some(b) = v.binary_value() {
                out.insert(name.clone(), Attr::Binary(b.as_ref().to_vec()));
            } else if let Some(s) = v.string_value() {
                out.insert(name.clone(), Attr::Text(s.to_owned()));
            }
        }
    }
    out
}

async fn poll_loop(
    shared: Arc<Shared>,
    tx: mpsc::Sender<Result<SqsDelivery, ConsumeError>>,
    window: Arc<Semaphore>,
    stop: CancellationToken,
    settings: ConsumerSettings,
) {
    let max = settings.max_number_of_messages.clamp(1, 10) as usize;
    loop {
        let Some(mut permits) = window_permits(&window, max, &stop).await else {
            return;
        };
        // Not cancelled mid-call: whatever a receive returns is either handed out or given
        // back, so closing never strands messages until their visibility timeout.
        let result = shared
            .clients
            .sqs
            .receive_message()
            .queue_url(&shared.resources.queue.url)
            .max_number_of_messages(permits.len() as i32)
            .wait_time_seconds(settings.wait_time_seconds as i32)
            .visibility_timeout(settings.visibility_timeout as i32)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
            .await;
        let messages = match result {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                let err = ConsumeError {
                    destination: shared.destination.clone(),
                    source: describe(&e).into(),
                };
                drop(permits);
                if tx.send(Err(err)).await.is_err() {
                    return;
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
        };
        for m in messages {
            let Some(receipt) = m.receipt_handle().map(str::to_owned) else {
                continue;
            };
            let Some(permit) = permits.pop() else {
                // More than asked for: give it back.
                let _ = shared.change_visibility(&receipt, 0).await;
                continue;
            };
            let delivery = delivery_of(&shared, &m, receipt, permit);
            if stop.is_cancelled() {
                drop(delivery); // given back
                continue;
            }
            if let Err(mpsc::error::SendError(d)) = tx.send(Ok(delivery)).await {
                drop(d);
                return;
            }
        }
    }
}

/// Room in the window for one receive: the first permit awaited, then up to `max` in all as
/// far as free; `None` when stopped or the window closed.
async fn window_permits(
    window: &Arc<Semaphore>,
    max: usize,
    stop: &CancellationToken,
) -> Option<Vec<OwnedSemaphorePermit>> {
    let first = tokio::select! {
        _ = stop.cancelled() => return None,
        p = Arc::clone(window).acquire_owned() => p.ok()?,
    };
    let mut permits = vec![first];
    while permits.len() < max {
        match Arc::clone(window).try_acquire_owned() {
            Ok(p) => permits.push(p),
            Err(_) => break,
        }
    }
    Some(permits)
}

/// The delivery of a received message: its attributes decoded into headers (a message whose
/// attributes cannot be decoded is delivered with its raw body), its receive count and
/// message group.
fn delivery_of(
    shared: &Arc<Shared>,
    m: &aws_sdk_sqs::types::Message,
    receipt: String,
    permit: OwnedSemaphorePermit,
) -> SqsDelivery {
    let attrs = attrs_of(m);
    let body = m.body().unwrap_or("");
    let message = match headers::decode(body, &attrs) {
        Ok(msg) => msg,
        Err(e) => {
            tracing::warn!(queue = %shared.resources.queue.name, error = %e, "message attributes not decodable; delivering the raw body");
            RawMessage::new(bytes::Bytes::from(body.to_owned()))
        }
    };
    let sys = m.attributes();
    let receive_count = sys
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let group_id = sys
        .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
        .cloned();
    SqsDelivery::new(
        Arc::clone(shared),
        receipt,
        message,
        receive_count,
        group_id,
        permit,
    )
}

/// DeleteMessage(Batch) calls in flight at once per subscription.
const DELETES_IN_FLIGHT: usize = 4;

/// Deletes acked messages in batches of up to 10 (whatever is waiting; no lingering).
async fn deleter_loop(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    mut rx: mpsc::Receiver<(String, oneshot::Sender<Result<(), String>>)>,
) {
    // Deletes ready while all slots are busy go out together in the next batch.
    let limit = Arc::new(Semaphore::new(DELETES_IN_FLIGHT));
    loop {
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < 10 {
            match rx.try_recv() {
                Ok(x) => batch.push(x),
                Err(_) => break,
            }
        }
        let sqs = sqs.clone();
        let url = queue_url.clone();
        tokio::spawn(async move {
            delete_batch(&sqs, &url, batch).await;
            drop(permit);
        });
    }
}

async fn delete_batch(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    batch: Vec<(String, oneshot::Sender<Result<(), String>>)>,
) {
    if batch.len() == 1 {
        let Some((receipt, done)) = batch.into_iter().next() else {
            return;
        };
        let r = sqs
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe(&e));
        let _ = done.send(r);
        return;
    }
    let mut req = sqs.delete_message_batch().queue_url(url);
    for (i, (receipt, _)) in batch.iter().enumerate() {
        if let Ok(e) = DeleteMessageBatchRequestEntry::builder()
            .id(i.to_string())
            .receipt_handle(receipt)
            .build()
        {
            req = req.entries(e);
        }
    }
    match req.send().await {
        Err(e) => {
            let text = describe(&e);
            for (_, done) in batch {
                let _ = done.send(Err(text.clone()));
            }
        }
        Ok(out) => {
            let failed: Vec<(String, String)> = out
                .failed()
                .iter()
                .map(|f| {
                    (
                        f.id().to_owned(),
                        format!("{}: {}", f.code(), f.message().unwrap_or("")),
                    )
                })
                .collect();
            for (i, (_, done)) in batch.into_iter().enumerate() {
                let id = i.to_string();
                let r = match failed.iter().find(|(f, _)| *f == id) {
                    Some((_, why)) => Err(why.clone()),
                    None => Ok(()),
                };
                let _ = done.send(r);
            }
        }
    }
}

/// One received message. Dropping it unsettled sets its visibility to 0 (redelivered at once).
pub struct SqsDelivery {
    shared: Arc<Shared>,
    receipt: String,
    message: RawMessage,
    receive_count: u32,
    group_id: Option<String>,
    heartbeat: Option<DropGuard>,
    /// Serialises visibility changes of the heartbeat with the settle.
    lock: Arc<tokio::sync::Mutex<()>>,
    _permit: OwnedSemaphorePermit,
    settled: bool,
}

impl fmt::Debug for SqsDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqsDelivery")
            .field("queue", &self.shared.resources.queue.name)
            .field("receive_count", &self.receive_count)
            .field("group_id", &self.group_id)
            .finish()
    }
}

impl SqsDelivery {
    /// Deletes the message from its queue and settles the delivery; on failure it stays
    /// unsettled, and dropping it releases the message for redelivery.
    async fn delete(&mut self) -> Result<(), SettleError> {
        self.stop_heartbeat().await;
        let receipt = self.receipt.clone();
        self.shared
            .delete(receipt)
            .await
            .map_err(SettleError::new)?;
        self.settled = true;
        Ok(())
    }

    fn new(
        shared: Arc<Shared>,
        receipt: String,
        message: RawMessage,
        receive_count: u32,
        group_id: Option<String>,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        let token = CancellationToken::new();
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        let vt = shared.visibility_timeout.max(1);
        let every = Duration::from_millis(u64::from(vt) * 1000 / 2).max(Duration::from_millis(500));
        {
            let token = token.clone();
            let lock = Arc::clone(&lock);
            let shared = Arc::clone(&shared);
            let receipt = receipt.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tokio::time::sleep(every) => {}
                    }
                    let _g = lock.lock().await;
                    if token.is_cancelled() {
                        return;
                    }
                    if let Err(e) = shared.change_visibility(&receipt, vt).await {
                        tracing::warn!(queue = %shared.resources.queue.name, error = %e, "cannot extend visibility");
                    }
                }
            });
        }
        SqsDelivery {
            shared,
            receipt,
            message,
            receive_count,
            group_id,
            heartbeat: Some(token.drop_guard()),
            lock,
            _permit: permit,
            settled: false,
        }
    }

    /// Stops the heartbeat and waits for an extension in progress.
    async fn stop_heartbeat(&mut self) {
        drop(self.heartbeat.take());
        let _g = self.lock.lock().await;
    }

    /// The SQS receipt handle.
    pub fn receipt_handle(&self) -> &str {
        &self.receipt
    }
}

impl Drop for SqsDelivery {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        drop(self.heartbeat.take());
        let shared = Arc::clone(&self.shared);
        let receipt = std::mem::take(&mut self.receipt);
        let lock = Arc::clone(&self.lock);
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move {
                let _g = lock.lock().await;
                if let Err(e) = shared.change_visibility(&receipt, 0).await {
                    tracing::debug!(error = %e, "cannot release an unsettled delivery; it returns after its visibility timeout");
                }
            });
        }
    }
}

#[async_trait]
impl Delivery for SqsDelivery {
    fn message(&self) -> &RawMessage {
        &self.message
    }

    fn take_message(&mut self) -> RawMessage {
        self.message.clone()
    }

    fn redelivery_count(&self) -> u32 {
        self.receive_count.max(1)
    }

    fn ordering_key(&self) -> Option<String> {
        self.group_id.clone()
    }

    async fn ack(mut self: Box<Self>) -> Result<(), SettleError> {
        self.delete().await
    }

    async fn requeue(mut self: Box<Self>) -> Result<(), SettleError> {
        self.stop_heartbeat().await;
        let r = self.shared.change_visibility(&self.receipt, 0).await;
        self.settled = true;
        r.map_err(SettleError::new)
    }

    /// Sent again to its queue with `DelaySeconds` (a standard queue's; the binder refuses
    /// delays on FIFO queues and above 15 minutes at bind), then deleted.
    async fn redeliver_after(
        mut self: Box<Self>,
        delay: Duration,
        redeliveries: u32,
    ) -> Result<(), SettleError> {
        let mut m = self.message.clone();
        m.headers
            .insert(header::DELAYED_REDELIVERIES, redeliveries.to_string());
        let encoded = headers::encode(&m, &[], true);
        let seconds = i32::try_from(delay.as_secs_f64().ceil() as u64).unwrap_or(i32::MAX);
        let url = &self.shared.resources.queue.url;
        // On failure the delivery is dropped unsettled, which releases it for redelivery.
        send_to_queue(
            &self.shared.clients,
            url,
            &encoded,
            None,
            None,
            Some(seconds),
        )
        .await
        .map_err(SettleError::new)?;
        self.delete().await
    }

    async fn dead_letter(mut self: Box<Self>, reason: DeadLetter) -> Result<(), SettleError> {
        let mut m = self.message.clone();
        reason.stamp(
            &mut m.headers,
            &self.shared.destination,
            self.shared.group.as_deref(),
        );
        let encoded = headers::encode(&m, &[], true);
        let url = self
            .shared
            .dlq_url()
            .await
            .map_err(SettleError::new)?
            .clone();
        let (group_id, dedup_id) = if self.shared.resources.fifo {
            (
                Some(fifo_id(self.group_id.as_deref().unwrap_or("default"))),
                Some(uuid::Uuid::new_v4().to_string()),
            )
        } else {
            (None, None)
        };
        // On failure the delivery is dropped unsettled, which releases it for redelivery.
        send_to_queue(
            &self.shared.clients,
            &url,
            &encoded,
            group_id,
            dedup_id,
            None,
        )
        .await
        .map_err(SettleError::new)?;
        tracing::debug!(
            destination = %self.shared.destination,
            dlq = %self.shared.resources.dlq_name,
            kind = %reason.error_kind,
            "sqs delivery dead-lettered"
        );
        self.delete().await
    }
}
