//! The consumer: a subscription per binding (group-managed, or statically assigned for
//! partitioned and anonymous bindings), deliveries that commit only the completed prefix, and
//! dead-lettering to the DLQ topic.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use stream_core::binder::{
    BatchLimits, BindError, ConsumeError, DeadLetter, Delivery, SendError, SettleError,
    Subscription,
};
use stream_core::message::{header, RawMessage};
use tokio::sync::Notify;

use crate::headers;
use crate::producer::send_record;
use crate::tracker::{Tp, Tracker};

/// How long binding a group-managed consumer waits for its first partition assignment (so a
/// message sent right after binding is not missed and competing members share work).
pub const ASSIGNMENT_WAIT: Duration = Duration::from_secs(30);
/// Deliveries queued ahead of the runtime per unit of concurrency (at least
/// [`MIN_PREFETCH`]); beyond that the poller stops taking records (see [`PAUSE_AFTER`]).
pub const PREFETCH_PER_CONCURRENCY: usize = 4;
/// The smallest prefetch.
pub const MIN_PREFETCH: usize = 16;
/// How long the poller holds off (stops taking records from librdkafka, whose own fetch queue
/// keeps what it fetched) while `prefetch` deliveries are queued, before it pauses the
/// partitions so that it can keep polling (rebalances, `max.poll.interval.ms`) without fetching.
///
/// Pausing is not used for ordinary back-pressure: librdkafka drops what it fetched ahead and
/// re-fetches from the application's position on resume, usually from inside a record batch,
/// and a broker that answers such a fetch with the *next* batch (tansu 0.6.0 does) then never
/// delivers the rest of that batch.
pub const PAUSE_AFTER: Duration = Duration::from_secs(5);
/// Timeout of the blocking offset and watermark look-ups made while binding.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Dead-letter header: the original partition, a 4-byte big-endian integer (as Spring writes
/// `x-original-partition`).
pub const ORIGINAL_PARTITION: &str = "x-original-partition";
/// Dead-letter header: the original offset, an 8-byte big-endian integer (Spring's).
pub const ORIGINAL_OFFSET: &str = "x-original-offset";
/// Dead-letter header: the original record timestamp in ms, an 8-byte big-endian integer.
pub const ORIGINAL_TIMESTAMP: &str = "x-original-timestamp";
/// Dead-letter header: `CreateTime` or `LogAppendTime` (Spring's `x-original-timestamp-type`).
pub const ORIGINAL_TIMESTAMP_TYPE: &str = "x-original-timestamp-type";

fn lock(t: &Mutex<Tracker>) -> MutexGuard<'_, Tracker> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

/// State shared by a consumer's callbacks, its subscription and its deliveries.
#[derive(Debug, Default)]
pub struct Shared {
    tracker: Mutex<Tracker>,
    assigned: AtomicBool,
    assigned_notify: Notify,
}

/// The consumer context: keeps the tracker in step with rebalances.
pub struct KafkaConsumerContext {
    shared: Arc<Shared>,
    topic: String,
}

impl ClientContext for KafkaConsumerContext {}

impl ConsumerContext for KafkaConsumerContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            // Offsets of the completed prefix are already stored; librdkafka commits them
            // before giving the partitions up. Records still in flight become stale: settling
            // them later commits nothing, and the new owner redelivers them.
            let mut t = lock(&self.shared.tracker);
            let in_flight_before = t.in_flight();
            for e in tpl.elements() {
                t.revoked(&(e.topic().to_owned(), e.partition()));
            }
            tracing::info!(
                topic = %self.topic,
                partitions = tpl.count(),
                abandoned = in_flight_before - t.in_flight(),
                "partitions revoked; unfinished records will be redelivered to their new owner"
            );
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::info!(topic = %self.topic, partitions = tpl.count(), "partitions assigned");
                self.shared.assigned.store(true, Ordering::SeqCst);
                self.shared.assigned_notify.notify_waiters();
            }
            Rebalance::Error(e) => {
                tracing::warn!(topic = %self.topic, error = %e, "rebalance error")
            }
            Rebalance::Revoke(_) => {}
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::debug!(topic = %self.topic, error = %e, "offset commit failed (retried by the next commit)");
        }
    }
}

/// The librdkafka consumer type used by the binder.
pub type KConsumer = StreamConsumer<KafkaConsumerContext>;

/// Where dead letters of one binding go.
#[derive(Clone)]
pub struct DlqTarget {
    /// The producer.
    pub producer: FutureProducer,
    /// The DLQ topic.
    pub topic: String,
    /// Its partition count.
    pub partitions: u32,
    /// The binding's group (recorded in `x-original-group`).
    pub group: String,
    /// The producer's `message.max.bytes`.
    pub max_message_bytes: usize,
}

/// Where delayed redeliveries of one binding go (`redelivery-delays`): one retry topic per
/// delay, read back by [`crate::retry::WithRetryTopics`] once each record is due.
pub struct RetryTarget {
    /// The producer.
    pub producer: FutureProducer,
    /// The retry topic of each delay, in the configured order.
    pub topics: Vec<(Duration, String)>,
    /// The producer's `message.max.bytes`.
    pub max_message_bytes: usize,
}

/// How the subscription gets its partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assignment {
    /// Group management (`subscribe`).
    Group,
    /// These partitions, starting at the committed offset, else by `start_latest`.
    Static {
        /// The partitions.
        partitions: Vec<i32>,
        /// Start at the high watermark when nothing is committed (else at the beginning).
        start_latest: bool,
        /// Whether committed offsets are looked up (named groups).
        use_committed: bool,
    },
}

/// Everything needed to open a subscription.
pub struct SubscribeArgs {
    /// The consumer configuration (group id, offsets, user properties already applied).
    pub config: ClientConfig,
    /// The topic.
    pub topic: String,
    /// The assignment mode.
    pub assignment: Assignment,
    /// Dead-letter target, if `enable-dlq`.
    pub dlq: Option<DlqTarget>,
    /// Whether offsets are committed (named groups).
    pub commits: bool,
    /// Reset the group's offsets to the start offset before subscribing.
    pub reset_to_latest: Option<bool>,
    /// Deliveries queued ahead of the runtime before the partitions are paused.
    pub prefetch: usize,
    /// How a `batch-mode` binding's batches are filled (`max.poll.records`).
    pub batch: BatchLimits,
    /// Retry topics, if `redelivery-delays`.
    pub retry: Option<Arc<RetryTarget>>,
}

/// A bound input. A background task polls the consumer and queues deliveries; when `prefetch`
/// deliveries are queued it stops taking records until the runtime catches up, and if that
/// takes longer than `PAUSE_AFTER` it pauses the assigned partitions and keeps polling (so
/// rebalances are served and the member stays in the group while the binding is stalled).
pub struct KafkaSubscription {
    consumer: Arc<KConsumer>,
    shared: Arc<Shared>,
    topic: String,
    commits: bool,
    rx: tokio::sync::mpsc::UnboundedReceiver<Result<KafkaDelivery, ConsumeError>>,
    queued: Arc<AtomicUsize>,
    /// Signalled whenever the runtime takes a delivery (wakes a holding poller).
    taken: Arc<Notify>,
    stop: Arc<Notify>,
    poller: Option<tokio::task::JoinHandle<()>>,
    closed: bool,
    batch: BatchLimits,
}

impl std::fmt::Debug for KafkaSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSubscription")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

fn connect_error(topic: &str, e: impl Into<stream_core::binder::BoxError>) -> BindError {
    BindError::Connect {
        what: format!("kafka consumer for {topic}"),
        source: e.into(),
    }
}

async fn blocking<T: Send + 'static>(
    topic: &str,
    f: impl FnOnce() -> KafkaResult<T> + Send + 'static,
) -> Result<T, BindError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| connect_error(topic, e))?
        .map_err(|e| connect_error(topic, e))
}

/// Subscribes `consumer` to `topic` through its group, or assigns it the partitions of a
/// static assignment.
async fn take_partitions(
    consumer: &Arc<KConsumer>,
    topic: &str,
    assignment: Assignment,
) -> Result<(), BindError> {
    let Assignment::Static {
        partitions,
        start_latest,
        use_committed,
    } = assignment
    else {
        return consumer
            .subscribe(&[topic])
            .map_err(|e| connect_error(topic, e));
    };
    let (c, t) = (Arc::clone(consumer), topic.to_owned());
    let tpl = blocking(topic, move || {
        static_assignment(&c, &t, &partitions, start_latest, use_committed)
    })
    .await?;
    consumer.assign(&tpl).map_err(|e| connect_error(topic, e))?;
    tracing::info!(topic = %topic, partitions = tpl.count(), "partitions assigned statically");
    Ok(())
}

impl KafkaSubscription {
    /// Creates the consumer, assigns or subscribes, and waits until it owns partitions.
    pub async fn open(args: SubscribeArgs) -> Result<Self, BindError> {
        let shared = Arc::new(Shared::default());
        let context = KafkaConsumerContext {
            shared: Arc::clone(&shared),
            topic: args.topic.clone(),
        };
        let consumer: KConsumer = args
            .config
            .create_with_context(context)
            .map_err(|e| crate::client::create_error("consumer", &args.config, e))?;
        let consumer = Arc::new(consumer);
        let topic = args.topic.clone();

        if let Some(latest) = args.reset_to_latest {
            reset_offsets(&consumer, &topic, latest).await?;
        }

        let group_managed = args.assignment == Assignment::Group;
        take_partitions(&consumer, &topic, args.assignment).await?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let taken = Arc::new(Notify::new());
        let stop = Arc::new(Notify::new());
        let poller = Poller {
            consumer: Arc::clone(&consumer),
            shared: Arc::clone(&shared),
            topic: topic.clone(),
            dlq: args.dlq.map(Arc::new),
            retry: args.retry,
            commits: args.commits,
            queued: Arc::clone(&queued),
            taken: Arc::clone(&taken),
            prefetch: args.prefetch.max(1),
            tx,
        };
        let handle = {
            let assigned = shared.assigned_notify.notified();
            tokio::pin!(assigned);
            assigned.as_mut().enable();
            let handle = tokio::spawn(poller.run(Arc::clone(&stop)));
            if group_managed
                && !shared.assigned.load(Ordering::SeqCst)
                && tokio::time::timeout(ASSIGNMENT_WAIT, assigned)
                    .await
                    .is_err()
            {
                tracing::warn!(topic = %topic, "no partition assignment yet; continuing (the group may have more members than partitions)");
            }
            handle
        };
        Ok(KafkaSubscription {
            consumer,
            shared,
            topic,
            commits: args.commits,
            rx,
            queued,
            taken,
            stop,
            poller: Some(handle),
            closed: false,
            batch: args.batch,
        })
    }

    /// Commits the completed prefix of every partition synchronously.
    async fn commit_now(&self) {
        if !self.commits {
            return;
        }
        let positions = lock(&self.shared.tracker).commit_positions();
        if positions.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in positions {
            if tpl.add_partition_offset(&t, p, Offset::Offset(o)).is_err() {
                return;
            }
        }
        let c = Arc::clone(&self.consumer);
        if let Err(e) = blocking(&self.topic, move || c.commit(&tpl, CommitMode::Sync)).await {
            tracing::warn!(topic = %self.topic, error = %e, "final commit failed; uncommitted records will be redelivered");
        }
    }
}

/// The background task that polls one consumer.
struct Poller {
    consumer: Arc<KConsumer>,
    shared: Arc<Shared>,
    topic: String,
    dlq: Option<Arc<DlqTarget>>,
    retry: Option<Arc<RetryTarget>>,
    commits: bool,
    queued: Arc<AtomicUsize>,
    taken: Arc<Notify>,
    prefetch: usize,
    tx: tokio::sync::mpsc::UnboundedSender<Result<KafkaDelivery, ConsumeError>>,
}

impl Poller {
    async fn run(self, stop: Arc<Notify>) {
        let mut paused: Option<TopicPartitionList> = None;
        // Since when `prefetch` deliveries are queued (the poller holds off meanwhile).
        let mut full_since: Option<tokio::time::Instant> = None;
        loop {
            let queued = self.queued.load(Ordering::SeqCst);
            if queued >= self.prefetch {
                let since = *full_since.get_or_insert_with(tokio::time::Instant::now);
                if paused.is_none() && since.elapsed() >= PAUSE_AFTER {
                    if let Ok(tpl) = self.consumer.assignment() {
                        if self.consumer.pause(&tpl).is_ok() {
                            tracing::debug!(topic = %self.topic, queued, "runtime saturated; partitions paused");
                            paused = Some(tpl);
                        }
                    }
                }
            } else {
                full_since = None;
            }
            if let Some(tpl) = &paused {
                if queued < self.prefetch.div_ceil(2) {
                    if let Err(e) = self.consumer.resume(tpl) {
                        tracing::debug!(topic = %self.topic, error = %e, "resume failed");
                    }
                    paused = None;
                }
            }
            // Full and not paused: take nothing more until the runtime catches up (or it is
            // time to pause).
            let hold = paused.is_none() && full_since.is_some();
            let pause_at = full_since.map_or_else(tokio::time::Instant::now, |t| t + PAUSE_AFTER);
            let stopped = stop.notified();
            let taken = self.taken.notified();
            tokio::select! {
                biased;
                _ = stopped => break,
                _ = taken, if hold => {}
                _ = tokio::time::sleep_until(pause_at), if hold => {}
                r = self.consumer.recv(), if !hold => {
                    let item = match r {
                        Ok(m) => Ok(self.delivery(&m)),
                        Err(e) => Err(ConsumeError {
                            destination: self.topic.clone(),
                            source: Box::new(e),
                        }),
                    };
                    self.queued.fetch_add(1, Ordering::SeqCst);
                    if self.tx.send(item).is_err() {
                        break;
                    }
                }
                // While paused, wake up to resume once the runtime caught up.
                _ = tokio::time::sleep(Duration::from_millis(20)), if paused.is_some() => {}
            }
        }
    }

    fn delivery(&self, m: &BorrowedMessage<'_>) -> KafkaDelivery {
        let tp: Tp = (m.topic().to_owned(), m.partition());
        let generation = lock(&self.shared.tracker).delivered(&tp, m.offset());
        let message = RawMessage::with_headers(
            Bytes::copy_from_slice(m.payload().unwrap_or(&[])),
            headers::from_record(m),
        );
        KafkaDelivery {
            original: (self.dlq.is_some() || self.retry.is_some()).then(|| message.clone()),
            message,
            key: m.key().map(Bytes::copy_from_slice),
            tp,
            offset: m.offset(),
            timestamp: m.timestamp(),
            generation,
            consumer: Arc::clone(&self.consumer),
            shared: Arc::clone(&self.shared),
            dlq: self.dlq.clone(),
            retry: self.retry.clone(),
            commits: self.commits,
            settled: false,
        }
    }
}

fn static_assignment(
    c: &KConsumer,
    topic: &str,
    partitions: &[i32],
    start_latest: bool,
    use_committed: bool,
) -> KafkaResult<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition(topic, *p);
    }
    let committed = if use_committed {
        Some(c.committed_offsets(tpl.clone(), LOOKUP_TIMEOUT)?)
    } else {
        None
    };
    let mut out = TopicPartitionList::new();
    for p in partitions {
        let from_group = committed
            .as_ref()
            .and_then(|c| c.find_partition(topic, *p))
            .map(|e| e.offset())
            .filter(|o| matches!(o, Offset::Offset(_)));
        let offset = match from_group {
            Some(o) => o,
            None if start_latest => {
                let (_, high) = c.fetch_watermarks(topic, *p, LOOKUP_TIMEOUT)?;
                Offset::Offset(high)
            }
            None => Offset::Beginning,
        };
        out.add_partition_offset(topic, *p, offset)?;
    }
    Ok(out)
}

/// `reset-offsets`: commits the start offset of every partition for the group before it joins.
async fn reset_offsets(
    consumer: &Arc<KConsumer>,
    topic: &str,
    latest: bool,
) -> Result<(), BindError> {
    let c = Arc::clone(consumer);
    let t = topic.to_owned();
    let result = blocking(topic, move || {
        let md = c.fetch_metadata(Some(&t), LOOKUP_TIMEOUT)?;
        let mut tpl = TopicPartitionList::new();
        for mt in md.topics().iter().filter(|mt| mt.name() == t) {
            for p in mt.partitions() {
                let (low, high) = c.fetch_watermarks(&t, p.id(), LOOKUP_TIMEOUT)?;
                tpl.add_partition_offset(
                    &t,
                    p.id(),
                    Offset::Offset(if latest { high } else { low }),
                )?;
            }
        }
        c.commit(&tpl, CommitMode::Sync)
    })
    .await;
    match result {
        Ok(()) => {
            tracing::info!(
                topic,
                to = if latest { "latest" } else { "earliest" },
                "reset the group's offsets"
            );
            Ok(())
        }
        Err(e) => {
            tracing::warn!(topic, error = %e, "could not reset offsets (does the group have active members?)");
            Ok(())
        }
    }
}

impl RetryTarget {
    /// The retry topic of `delay`.
    pub fn topic_for(&self, delay: Duration) -> Option<&str> {
        self.topics
            .iter()
            .find(|(d, _)| *d == delay)
            .map(|(_, t)| t.as_str())
    }
}

impl KafkaSubscription {
    /// Accounts for an item taken from the queue: the delivery, unless its partition was
    /// revoked since it was queued (the new owner has it), then `None`.
    fn taken_item(
        &mut self,
        item: Result<KafkaDelivery, ConsumeError>,
    ) -> Option<Result<Box<dyn Delivery>, ConsumeError>> {
        self.queued.fetch_sub(1, Ordering::SeqCst);
        self.taken.notify_one();
        match item {
            Ok(mut d) => {
                if !lock(&self.shared.tracker).is_current(&d.tp, d.generation) {
                    d.settled = true;
                    return None;
                }
                Some(Ok(Box::new(d)))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next(&mut self) -> Option<Result<Box<dyn Delivery>, ConsumeError>> {
        loop {
            if self.closed {
                return None;
            }
            let item = self.rx.recv().await?;
            if let Some(taken) = self.taken_item(item) {
                return Some(taken);
            }
        }
    }

    fn try_next(&mut self) -> Option<Result<Box<dyn Delivery>, ConsumeError>> {
        while !self.closed {
            let item = self.rx.try_recv().ok()?;
            if let Some(taken) = self.taken_item(item) {
                return Some(taken);
            }
        }
        None
    }

    fn batch_limits(&self) -> BatchLimits {
        self.batch
    }

    async fn close(mut self: Box<Self>) {
        self.closed = true;
        self.stop.notify_one();
        if let Some(p) = self.poller.take() {
            let _ = p.await;
        }
        // Queued deliveries were never handed out: dropping them commits nothing past them.
        self.rx.close();
        while let Ok(item) = self.rx.try_recv() {
            if let Ok(mut d) = item {
                d.settled = true;
            }
        }
        self.commit_now().await;
        self.consumer.unsubscribe();
        let topic = self.topic.clone();
        // Dropping the last handle leaves the group (librdkafka commits stored offsets and
        // polls until closed): do it off the async threads.
        let consumer = Arc::clone(&self.consumer);
        drop(self);
        let t0 = std::time::Instant::now();
        let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
        tracing::debug!(topic = %topic, took = ?t0.elapsed(), "kafka consumer closed");
    }
}

impl Drop for KafkaSubscription {
    fn drop(&mut self) {
        self.stop.notify_one();
        if let Some(p) = self.poller.take() {
            p.abort();
        }
    }
}

/// One received record.
pub struct KafkaDelivery {
    message: RawMessage,
    original: Option<RawMessage>,
    /// The record key as it came (bytes: a binary key goes to the DLQ unchanged).
    key: Option<Bytes>,
    tp: Tp,
    offset: i64,
    timestamp: rdkafka::Timestamp,
    generation: u64,
    consumer: Arc<KConsumer>,
    shared: Arc<Shared>,
    dlq: Option<Arc<DlqTarget>>,
    retry: Option<Arc<RetryTarget>>,
    commits: bool,
    settled: bool,
}

impl std::fmt::Debug for KafkaDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaDelivery")
            .field("topic", &self.tp.0)
            .field("partition", &self.tp.1)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl KafkaDelivery {
    /// Completes the record once its copy (a dead letter, a delayed redelivery) was sent;
    /// hands it back for redelivery when the send failed.
    fn after_send(&mut self, sent: Result<(), SendError>) -> Result<(), SettleError> {
        match sent {
            Ok(()) => self.complete(),
            Err(e) => {
                self.give_back();
                Err(SettleError::new(e))
            }
        }
    }

    fn complete(&mut self) -> Result<(), SettleError> {
        self.settled = true;
        let next = lock(&self.shared.tracker).completed(&self.tp, self.generation, self.offset);
        if let (Some(next), true) = (next, self.commits) {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&self.tp.0, self.tp.1, Offset::Offset(next))
                .map_err(SettleError::new)?;
            if let Err(e) = self.consumer.store_offsets(&tpl) {
                // Unassigned meanwhile: the new owner redelivers what was not committed.
                tracing::debug!(topic = %self.tp.0, partition = self.tp.1, error = %e, "offset not stored");
            }
        }
        Ok(())
    }

    fn give_back(&mut self) {
        self.settled = true;
        let seek = lock(&self.shared.tracker).requeued(&self.tp, self.generation, self.offset);
        if let Some(offset) = seek {
            if let Err(e) = self.consumer.seek(
                &self.tp.0,
                self.tp.1,
                Offset::Offset(offset),
                Duration::ZERO,
            ) {
                tracing::debug!(topic = %self.tp.0, partition = self.tp.1, error = %e, "seek back failed; the record will be redelivered after a restart or rebalance");
            }
        }
    }
}

impl Drop for KafkaDelivery {
    /// Dropped unsettled (shutdown deadline, stopped binding): the record stays pending, so
    /// nothing from it on is committed and the next owner of the partition redelivers it.
    /// (No seek: that would also invalidate the commits of records other lanes are finishing.)
    fn drop(&mut self) {
        if !self.settled {
            tracing::debug!(topic = %self.tp.0, partition = self.tp.1, offset = self.offset, "delivery dropped unsettled; it will be redelivered");
        }
    }
}

#[async_trait]
impl Delivery for KafkaDelivery {
    fn message(&self) -> &RawMessage {
        &self.message
    }

    fn take_message(&mut self) -> RawMessage {
        std::mem::replace(&mut self.message, RawMessage::new(Bytes::new()))
    }

    fn ordering_key(&self) -> Option<String> {
        // Order only needs the same text for the same key: a lossy rendering serves.
        self.key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
    }

    async fn ack(mut self: Box<Self>) -> Result<(), SettleError> {
        self.complete()
    }

    async fn requeue(mut self: Box<Self>) -> Result<(), SettleError> {
        self.give_back();
        Ok(())
    }

    /// Produced (confirmed) to the retry topic of `delay`, due at now + `delay`
    /// ([`header::DELAYED_UNTIL`]), keyed as it came; then completed.
    async fn redeliver_after(
        mut self: Box<Self>,
        delay: Duration,
        redeliveries: u32,
    ) -> Result<(), SettleError> {
        let retry = self.retry.clone();
        let Some((retry, topic)) = retry.as_ref().and_then(|r| Some((r, r.topic_for(delay)?)))
        else {
            self.give_back();
            return Err(SettleError::new("no retry topic for this delay"));
        };
        let mut m = self.original.take().unwrap_or_else(|| self.message.clone());
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        let due = stream_core::message::now_millis().saturating_add(delay_ms);
        m.headers
            .insert(header::DELAYED_REDELIVERIES, redeliveries.to_string());
        m.headers.insert(header::DELAYED_UNTIL, due.to_string());
        let key = self.key.as_deref();
        let sent = send_record(
            &retry.producer,
            topic,
            &m,
            key,
            None,
            retry.max_message_bytes,
        );
        let sent = sent.await;
        self.after_send(sent)
    }

    async fn dead_letter(mut self: Box<Self>, reason: DeadLetter) -> Result<(), SettleError> {
        let Some(dlq) = self.dlq.clone() else {
            tracing::error!(
                topic = %self.tp.0, partition = self.tp.1, offset = self.offset,
                error = %reason.error_message, attempts = reason.attempts,
                "giving up on a record; enable-dlq is off, so it is skipped"
            );
            return self.complete();
        };
        let mut m = self.original.take().unwrap_or_else(|| self.message.clone());
        stamp_dead_letter(
            &mut m,
            &self.tp,
            self.offset,
            self.timestamp,
            &dlq.group,
            &reason,
        );
        let partition =
            (self.tp.1 >= 0 && (self.tp.1 as u32) < dlq.partitions).then_some(self.tp.1);
        let sent = send_record(
            &dlq.producer,
            &dlq.topic,
            &m,
            self.key.as_deref(),
            partition,
            dlq.max_message_bytes,
        )
        .await;
        self.after_send(sent)
    }
}

/// The dead-letter headers ([`DeadLetter::stamp`]) plus Kafka's in Spring's names and
/// encodings (what Spring's DLQ tooling reads): partition, offset and timestamp as big-endian
/// integers, the timestamp type and the error's type name.
fn stamp_dead_letter(
    m: &mut RawMessage,
    tp: &Tp,
    offset: i64,
    timestamp: rdkafka::Timestamp,
    group: &str,
    reason: &DeadLetter,
) {
    reason.stamp(&mut m.headers, &tp.0, Some(group));
    let h = &mut m.headers;
    h.insert(ORIGINAL_PARTITION, tp.1.to_be_bytes().to_vec());
    h.insert(ORIGINAL_OFFSET, offset.to_be_bytes().to_vec());
    let (ts, kind) = match timestamp {
        rdkafka::Timestamp::CreateTime(t) => (Some(t), "CreateTime"),
        rdkafka::Timestamp::LogAppendTime(t) => (Some(t), "LogAppendTime"),
        rdkafka::Timestamp::NotAvailable => (None, ""),
    };
    if let Some(t) = ts {
        h.insert(ORIGINAL_TIMESTAMP, t.to_be_bytes().to_vec());
        h.insert(ORIGINAL_TIMESTAMP_TYPE, kind);
    }
    h.insert(
        header::EXCEPTION_FQCN,
        format!("cloud_stream::HandlerError::{}", reason.error_kind),
    );
}
