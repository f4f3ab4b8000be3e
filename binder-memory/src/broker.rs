//! The in-process broker: destinations, partitions, group and anonymous queues.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use stream_core::binder::SendError;
use stream_core::message::RawMessage;
use tokio::sync::Notify;

/// Default number of messages one group or anonymous queue holds before producers wait.
pub const DEFAULT_CAPACITY: usize = 256;

/// Largest number of partitions a destination may have (guards against absurd partition
/// indexes allocating unbounded memory).
pub const MAX_PARTITIONS: u32 = 4096;

/// Number of dead letters kept per binding for [`MemoryBroker::dead_letters`] when the broker is
/// not recording (a recording broker keeps all of them).
pub const DEAD_LETTER_HISTORY: usize = 1024;

/// Settings of a [`MemoryBroker`], also the memory binder's `environment`
/// (`spring.cloud.stream.binders.<name>.environment`): the one declaration of its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct MemoryBrokerConfig {
    /// Messages one group or anonymous queue holds (not counting delivered, unsettled ones)
    /// before [`Producer::send`](stream_core::binder::Producer::send) waits. At least 1.
    #[schemars(range(min = 1))]
    pub capacity: usize,
    /// `recording`: whether every published message is also recorded per destination for
    /// [`TestHarness::receive`](crate::TestHarness::receive). Unbounded: for tests only.
    pub recording: bool,
    /// Messages kept per destination after delivery (the oldest dropped first), so that a new
    /// group can start from the earliest of them (`start-offset: earliest`), as on Kafka.
    /// 0 (the default) keeps none.
    pub retention: usize,
}

impl Default for MemoryBrokerConfig {
    fn default() -> Self {
        MemoryBrokerConfig {
            capacity: DEFAULT_CAPACITY,
            recording: false,
            retention: 0,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An in-process message broker, shared by cloning (an `Arc` inside).
///
/// * A **destination** is created on first use (publish, bind, or lookup). It has `N` partitions:
///   the largest `partition_count` any producer bound with (default 1); publishing to a partition
///   `>= N` grows `N`.
/// * Every **named group** of a destination has one durable queue, created by the group's first
///   consumer or by a producer's `required_groups`, and kept for the broker's lifetime: messages
///   published while no member is bound wait for one. Every **anonymous** subscription has a
///   private queue created at bind (it sees only messages published afterwards) and removed when
///   it is closed or dropped.
/// * Publishing appends the message to every queue of the destination, in its partition. Each
///   queue holds at most `capacity` messages; a publish waits until every queue has room.
/// * Within a group, whichever member asks next takes the next message (competing consumers).
///   Each partition is FIFO; a requeued message goes back to the front of its partition.
#[derive(Clone)]
pub struct MemoryBroker {
    pub(crate) inner: Arc<BrokerInner>,
}

pub(crate) struct BrokerInner {
    config: MemoryBrokerConfig,
    destinations: Mutex<HashMap<String, Arc<Destination>>>,
    shut_down: AtomicBool,
    next_id: AtomicU64,
    dead_letters: Mutex<DeadLetterLog>,
    /// Messages waiting for a delayed redelivery (held by a timer of this process).
    delayed: AtomicUsize,
}

/// Dead letters per binding `(destination, group)`.
type DeadLetterLog = HashMap<(String, Option<String>), VecDeque<RawMessage>>;

impl fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBroker")
            .field("config", &self.inner.config)
            .field("shut_down", &self.is_shut_down())
            .field("destinations", &self.destinations())
            .finish()
    }
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBroker {
    /// A broker with the default capacity ([`DEFAULT_CAPACITY`]) and no recording.
    pub fn new() -> Self {
        Self::with_config(MemoryBrokerConfig::default())
    }

    /// A broker whose queues hold at most `capacity` messages each (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_config(MemoryBrokerConfig {
            capacity,
            ..MemoryBrokerConfig::default()
        })
    }

    /// A broker that records every message published to every destination (for the
    /// [`TestHarness`](crate::TestHarness)). Recording grows without bound: tests only.
    pub fn recording() -> Self {
        Self::with_config(MemoryBrokerConfig {
            recording: true,
            ..MemoryBrokerConfig::default()
        })
    }

    /// A broker with explicit settings.
    pub fn with_config(mut config: MemoryBrokerConfig) -> Self {
        config.capacity = config.capacity.max(1);
        MemoryBroker {
            inner: Arc::new(BrokerInner {
                config,
                destinations: Mutex::new(HashMap::new()),
                shut_down: AtomicBool::new(false),
                next_id: AtomicU64::new(1),
                dead_letters: Mutex::new(HashMap::new()),
                delayed: AtomicUsize::new(0),
            }),
        }
    }

    /// A binder over this broker.
    pub fn binder(&self) -> crate::MemoryBinder {
        crate::MemoryBinder::new(self.clone())
    }

    /// The broker's settings.
    pub fn config(&self) -> MemoryBrokerConfig {
        self.inner.config
    }

    /// Messages one queue holds before producers wait.
    pub fn capacity(&self) -> usize {
        self.inner.config.capacity
    }

    /// Whether published messages are recorded.
    pub fn is_recording(&self) -> bool {
        self.inner.config.recording
    }

    /// Whether the two handles are the same broker.
    pub fn same_broker(&self, other: &MemoryBroker) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Shuts the broker down: every `Subscription::next` returns `None`, every send (including
    /// those waiting for room) fails with `SendError::Closed`, health turns `Down`. Queued
    /// messages are kept (inspection still works) but nothing is delivered any more.
    pub fn shutdown(&self) {
        if self.inner.shut_down.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::debug!("memory broker shut down");
        let dests: Vec<Arc<Destination>> =
            lock(&self.inner.destinations).values().cloned().collect();
        for d in dests {
            d.wake_all();
        }
    }

    /// Whether [`MemoryBroker::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.inner.shut_down.load(Ordering::SeqCst)
    }

    /// Publishes `message` to `destination` in `partition`, as a producer would: waits until
    /// every queue of the destination has room, then appends it to all of them.
    pub async fn publish(
        &self,
        destination: &str,
        message: RawMessage,
        partition: u32,
    ) -> Result<(), SendError> {
        let dest = self.destination(destination);
        self.publish_to(&dest, message, partition).await
    }

    pub(crate) async fn publish_to(
        &self,
        dest: &Arc<Destination>,
        message: RawMessage,
        partition: u32,
    ) -> Result<(), SendError> {
        // Fast path (which also checks the partition): room now.
        let mut message = match self.try_publish_to(dest, message, partition)? {
            Ok(()) => return Ok(()),
            Err(message) => message,
        };
        dest.waiting_publishers.fetch_add(1, Ordering::SeqCst);
        let result = loop {
            let room = dest.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.try_append(dest, message, partition) {
                Ok(Ok(())) => break Ok(()),
                Ok(Err(back)) => {
                    message = back;
                    room.await
                }
                Err(e) => break Err(e),
            }
        };
        dest.waiting_publishers.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// Publishes without waiting: `Ok(Err(message))` hands the message back when a queue is
    /// full (nothing was appended).
    pub(crate) fn try_publish_to(
        &self,
        dest: &Destination,
        message: RawMessage,
        partition: u32,
    ) -> Result<Result<(), RawMessage>, SendError> {
        if partition >= MAX_PARTITIONS {
            return Err(SendError::Broker {
                destination: dest.name.clone(),
                source: format!("partition {partition} exceeds the limit of {MAX_PARTITIONS}")
                    .into(),
            });
        }
        self.try_append(dest, message, partition)
    }

    /// Appends `message` to every queue of `dest` if all have room, else hands it back. The
    /// last queue gets the message itself, the others (and the record) clones: with one queue
    /// the payload is not shared until a consumer shares it.
    fn try_append(
        &self,
        dest: &Destination,
        message: RawMessage,
        partition: u32,
    ) -> Result<Result<(), RawMessage>, SendError> {
        if self.is_shut_down() {
            return Err(SendError::Closed);
        }
        let capacity = self.inner.config.capacity;
        let mut st = lock(&dest.state);
        if !st
            .queues
            .values()
            .all(|q| q.drop_head_at.is_some() || q.len < capacity)
        {
            return Ok(Err(message));
        }
        if partition >= st.partitions {
            st.grow(partition + 1);
        }
        if self.inner.config.recording {
            st.records.push_back(message.clone());
            dest.recorded.notify_waiters();
        }
        st.retain(partition, &message, self.inner.config.retention);
        let p = partition as usize;
        let last = st.queues.len().saturating_sub(1);
        let mut message = Some(message);
        for (i, q) in st.queues.values_mut().enumerate() {
            let copy = if i == last {
                message.take()
            } else {
                message.clone()
            };
            if let Some(m) = copy {
                q.parts[p].push_back(Entry {
                    message: m,
                    deliveries: 0,
                });
                q.len += 1;
                if q.drop_head_at.is_some_and(|at| q.len > at) && !q.parts[p].is_empty() {
                    q.parts[p].pop_front();
                    q.len -= 1;
                }
                q.notify.wake();
            }
        }
        Ok(Ok(()))
    }

    /// The names of all destinations created so far, sorted.
    pub fn destinations(&self) -> Vec<String> {
        let mut v: Vec<String> = lock(&self.inner.destinations).keys().cloned().collect();
        v.sort();
        v
    }

    /// The number of partitions of `destination`, if it exists.
    pub fn partition_count(&self, destination: &str) -> Option<u32> {
        let d = self.existing(destination)?;
        let n = lock(&d.state).partitions;
        Some(n)
    }

    /// The named groups with a durable queue on `destination`, sorted.
    pub fn groups(&self, destination: &str) -> Vec<String> {
        let Some(d) = self.existing(destination) else {
            return Vec::new();
        };
        let st = lock(&d.state);
        let mut v: Vec<String> = st
            .queues
            .keys()
            .filter_map(|k| match k {
                QueueKey::Group(g) => Some(g.to_string()),
                QueueKey::Anonymous(_) => None,
            })
            .collect();
        v.sort();
        v
    }

    /// The number of live anonymous subscriptions (queues) on `destination`.
    pub fn anonymous_count(&self, destination: &str) -> usize {
        let Some(d) = self.existing(destination) else {
            return 0;
        };
        let st = lock(&d.state);
        st.queues
            .keys()
            .filter(|k| matches!(k, QueueKey::Anonymous(_)))
            .count()
    }

    /// Messages waiting (queued, not delivered) in group `group` of `destination`, if that group
    /// queue exists.
    pub fn queue_depth(&self, destination: &str, group: &str) -> Option<usize> {
        let d = self.existing(destination)?;
        let st = lock(&d.state);
        st.queues
            .get(&QueueKey::Group(Arc::from(group)))
            .map(|q| q.len)
    }

    /// Messages delivered to members of group `group` of `destination` and not settled yet.
    pub fn in_flight(&self, destination: &str, group: &str) -> Option<usize> {
        let d = self.existing(destination)?;
        let st = lock(&d.state);
        st.queues
            .get(&QueueKey::Group(Arc::from(group)))
            .map(|q| q.members.values().map(|m| m.in_flight.get()).sum())
    }

    /// Messages queued or delivered and unsettled in the queues that have members: what
    /// consumers of this process still have to handle (a graceful shutdown waits for them).
    /// Messages waiting for a delayed redelivery count too.
    pub fn held_for_members(&self) -> usize {
        let queued: usize = self
            .each_queue(|_, _, q| match q.members.is_empty() {
                true => 0,
                false => q.len + q.members.values().map(|m| m.in_flight.get()).sum::<usize>(),
            })
            .into_iter()
            .map(|(_, _, n)| n)
            .sum();
        queued + self.delayed()
    }

    /// Messages waiting for a delayed redelivery.
    pub(crate) fn delayed(&self) -> usize {
        self.inner.delayed.load(Ordering::SeqCst)
    }

    /// Puts `entry` back at the end of partition `partition` of queue `key` of `dest` after
    /// `delay` (a delayed redelivery), held meanwhile by a timer of this process.
    pub(crate) fn redeliver_after(
        &self,
        dest: &Arc<Destination>,
        key: &QueueKey,
        partition: u32,
        entry: Entry,
        delay: std::time::Duration,
    ) {
        self.inner.delayed.fetch_add(1, Ordering::SeqCst);
        let (broker, dest, key) = (self.clone(), Arc::clone(dest), key.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            dest.put_back(&key, partition, entry, false);
            broker.inner.delayed.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// `(destination, group, messages)` of every queue that still holds messages (anonymous
    /// queues are named `(anonymous)`).
    pub fn leftovers(&self) -> Vec<(String, String, usize)> {
        // Dead-letter readers' queues are kept copies (as the kept dead letters), not work.
        self.each_queue(|_, _, q| if q.drop_head_at.is_some() { 0 } else { q.len })
            .into_iter()
            .filter(|(_, _, n)| *n > 0)
            .collect()
    }

    fn each_queue(
        &self,
        f: impl Fn(&str, &QueueKey, &Queue) -> usize,
    ) -> Vec<(String, String, usize)> {
        let dests: Vec<Arc<Destination>> =
            lock(&self.inner.destinations).values().cloned().collect();
        let mut out = Vec::new();
        for d in dests {
            let st = lock(&d.state);
            for (key, q) in &st.queues {
                let group = match key {
                    QueueKey::Group(g) => g.to_string(),
                    QueueKey::Anonymous(_) => "(anonymous)".to_owned(),
                };
                out.push((d.name.clone(), group, f(&d.name, key, q)));
            }
        }
        out
    }

    /// Messages waiting in all anonymous queues of `destination` together.
    pub fn anonymous_depth(&self, destination: &str) -> usize {
        let Some(d) = self.existing(destination) else {
            return 0;
        };
        let st = lock(&d.state);
        st.queues
            .iter()
            .filter(|(k, _)| matches!(k, QueueKey::Anonymous(_)))
            .map(|(_, q)| q.len)
            .sum()
    }

    /// The messages dead-lettered from the binding `destination`/`group`, oldest first, as they
    /// were published to the dead-letter destination (with the `x-…` headers). A non-recording
    /// broker keeps the last [`DEAD_LETTER_HISTORY`] per binding.
    pub fn dead_letters(&self, destination: &str, group: Option<&str>) -> Vec<RawMessage> {
        let dl = lock(&self.inner.dead_letters);
        dl.get(&(destination.to_owned(), group.map(str::to_owned)))
            .map(|v| v.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The queue of group `group` on `destination`, created when missing, holding at most
    /// `limit` messages (the oldest dropped) and never making publishers wait.
    pub(crate) fn ensure_drop_head_queue(&self, destination: &str, group: &str, limit: usize) {
        let dest = self.destination(destination);
        let mut st = lock(&dest.state);
        st.queue_mut(&QueueKey::Group(Arc::from(group)))
            .drop_head_at = Some(limit);
    }

    pub(crate) fn record_dead_letter(
        &self,
        destination: &str,
        group: Option<&str>,
        message: RawMessage,
    ) {
        let mut dl = lock(&self.inner.dead_letters);
        let v = dl
            .entry((destination.to_owned(), group.map(str::to_owned)))
            .or_default();
        v.push_back(message);
        if !self.inner.config.recording && v.len() > DEAD_LETTER_HISTORY {
            v.pop_front();
        }
    }

    /// Forgets recorded messages and dead letters (queues are untouched).
    pub fn clear_records(&self) {
        lock(&self.inner.dead_letters).clear();
        let dests: Vec<Arc<Destination>> =
            lock(&self.inner.destinations).values().cloned().collect();
        for d in dests {
            lock(&d.state).records.clear();
        }
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn existing(&self, name: &str) -> Option<Arc<Destination>> {
        lock(&self.inner.destinations).get(name).cloned()
    }

    /// The destination `name`, created on first use.
    pub(crate) fn destination(&self, name: &str) -> Arc<Destination> {
        let mut map = lock(&self.inner.destinations);
        if let Some(d) = map.get(name) {
            return d.clone();
        }
        tracing::debug!(destination = name, "memory destination created");
        let capacity = self.inner.config.capacity;
        let d = Arc::new(Destination {
            name: name.to_owned(),
            resume_at: capacity - (capacity / 4).max(1).min(capacity),
            state: Mutex::new(DestState {
                partitions: 1,
                queues: BTreeMap::new(),
                records: VecDeque::new(),
                history: VecDeque::new(),
            }),
            room: Notify::new(),
            waiting_publishers: AtomicUsize::new(0),
            recorded: Notify::new(),
        });
        map.insert(name.to_owned(), d.clone());
        d
    }
}

/// One named destination.
pub(crate) struct Destination {
    pub(crate) name: String,
    pub(crate) state: Mutex<DestState>,
    /// Woken when a queue of this destination gains room (or disappears) and on shutdown.
    pub(crate) room: Notify,
    /// Publishers waiting on `room`; taking a message wakes them only when there are some.
    pub(crate) waiting_publishers: AtomicUsize,
    /// Taking a message wakes waiting publishers once its queue is down to this many (a
    /// quarter of the capacity below full), so a producer that outruns its consumers is woken
    /// once per batch of free slots, not once per slot. A member that finds nothing it may
    /// take wakes them at any length, so a publisher never sleeps while there is room and no
    /// member is taking.
    pub(crate) resume_at: usize,
    /// Woken when a message is recorded and on shutdown.
    pub(crate) recorded: Notify,
}

pub(crate) struct DestState {
    pub(crate) partitions: u32,
    pub(crate) queues: BTreeMap<QueueKey, Queue>,
    pub(crate) records: VecDeque<RawMessage>,
    /// The last `retention` messages published, with their partitions.
    pub(crate) history: VecDeque<(u32, RawMessage)>,
}

impl DestState {
    /// Grows the destination (and every queue) to at least `n` partitions.
    pub(crate) fn grow(&mut self, n: u32) {
        if n > self.partitions {
            self.partitions = n;
        }
        let n = self.partitions as usize;
        for q in self.queues.values_mut() {
            if q.parts.len() < n {
                q.parts.resize_with(n, VecDeque::new);
            }
        }
    }

    /// Keeps `message` in the history of at most `retention` messages.
    fn retain(&mut self, partition: u32, message: &RawMessage, retention: usize) {
        if retention == 0 {
            return;
        }
        if self.history.len() == retention {
            self.history.pop_front();
        }
        self.history.push_back((partition, message.clone()));
    }

    /// Creates the queue for `key` holding the whole history (a new group starting from the
    /// earliest retained message); false if the queue existed (it keeps its place).
    pub(crate) fn create_replaying(&mut self, key: &QueueKey) -> bool {
        if self.queues.contains_key(key) {
            return false;
        }
        let history: Vec<_> = self.history.iter().cloned().collect();
        let q = self.queue_mut(key);
        for (partition, message) in history {
            if let Some(part) = q.parts.get_mut(partition as usize) {
                part.push_back(Entry {
                    message,
                    deliveries: 0,
                });
                q.len += 1;
            }
        }
        true
    }

    /// The queue for `key`, created (empty) when absent.
    pub(crate) fn queue_mut(&mut self, key: &QueueKey) -> &mut Queue {
        let n = self.partitions as usize;
        self.queues.entry(key.clone()).or_insert_with(|| Queue {
            parts: (0..n).map(|_| VecDeque::new()).collect(),
            len: 0,
            notify: Arc::new(Signal::default()),
            members: BTreeMap::new(),
            drop_head_at: None,
        })
    }
}

/// Wakes the members waiting on a queue, knowing whether there are any: with every member busy
/// (the common case under load) a publish or a settle costs an atomic load instead of the
/// `Notify`'s lock.
#[derive(Default)]
pub(crate) struct Signal {
    pub(crate) notify: Notify,
    waiting: AtomicUsize,
}

impl Signal {
    /// Wakes the waiting members, if any. Called with the destination locked, after the change
    /// a member may wait for: a member counts itself waiting before it looks (under the same
    /// lock), so it either sees the change or is counted here.
    pub(crate) fn wake(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.notify.notify_waiters();
        }
    }

    /// Counts the caller as waiting until the guard is dropped (register the `Notified` first).
    pub(crate) fn waiting(&self) -> WaitingGuard<'_> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        WaitingGuard(&self.waiting)
    }
}

/// See [`Signal::waiting`].
pub(crate) struct WaitingGuard<'a>(&'a AtomicUsize);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Identifies a queue within a destination.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum QueueKey {
    Group(Arc<str>),
    Anonymous(u64),
}

pub(crate) struct Entry {
    pub(crate) message: RawMessage,
    /// Times this message was taken by a consumer.
    pub(crate) deliveries: u32,
}

/// A group's (or an anonymous subscription's) queue: one FIFO per partition.
pub(crate) struct Queue {
    pub(crate) parts: Vec<VecDeque<Entry>>,
    /// Messages queued over all partitions (in-flight ones not counted).
    pub(crate) len: usize,
    /// Woken when a message is queued or requeued, a member's delivery is settled, and on
    /// shutdown; members waiting in `next()` wait on it.
    pub(crate) notify: Arc<Signal>,
    /// Members by id (a few per queue: an ordered map looks them up without hashing).
    pub(crate) members: BTreeMap<u64, Member>,
    /// A queue that never makes publishers wait: past this many messages the oldest is
    /// dropped (RabbitMQ's `x-max-length` with drop-head). The dead-letter readers' queues.
    pub(crate) drop_head_at: Option<usize>,
}

/// A member's delivered, unsettled messages. Shared with its deliveries, so an ack frees the
/// slot with an atomic decrement instead of locking the destination.
pub(crate) struct InFlight {
    count: AtomicUsize,
    /// The queue's signal: a freed slot may be what a waiting member waits for.
    signal: Arc<Signal>,
}

impl InFlight {
    pub(crate) fn new(signal: Arc<Signal>) -> Self {
        InFlight {
            count: AtomicUsize::new(0),
            signal,
        }
    }

    /// Messages delivered and not settled yet.
    pub(crate) fn get(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Frees one slot and wakes waiting members. (A member counts itself waiting before it
    /// reads the count, and both sides use sequentially consistent operations, so it either
    /// sees the freed slot or is woken.)
    pub(crate) fn release(&self) {
        let _ = self
            .count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        self.signal.wake();
    }
}

pub(crate) struct Member {
    pub(crate) in_flight: Arc<InFlight>,
    pub(crate) prefetch: usize,
    /// `(instance_index, instance_count)` of a partitioned consumer.
    pub(crate) filter: Option<(u32, u32)>,
    /// Partition to look at first (round robin over partitions).
    pub(crate) cursor: usize,
}

impl Member {
    fn takes(&self, partition: usize) -> bool {
        match self.filter {
            None => true,
            Some((index, count)) => partition as u32 % count == index,
        }
    }
}

pub(crate) enum Take {
    /// The queue or membership is gone (closed).
    Gone,
    /// Nothing for this member right now (empty, not its partitions, or prefetch full).
    Wait,
    /// A message from `partition`; `partitions` is the destination's partition count.
    Got {
        partition: u32,
        partitions: u32,
        entry: Entry,
    },
}

impl Destination {
    /// Takes the next message for `member` of queue `key`.
    pub(crate) fn take(&self, key: &QueueKey, member: u64) -> Take {
        let mut st = lock(&self.state);
        let partitions = st.partitions;
        let Some(q) = st.queues.get_mut(key) else {
            return Take::Gone;
        };
        let Some(m) = q.members.get_mut(&member) else {
            return Take::Gone;
        };
        if m.in_flight.get() >= m.prefetch || q.len == 0 {
            drop(st);
            self.member_idle();
            return Take::Wait;
        }
        let n = q.parts.len();
        for i in 0..n {
            let p = (m.cursor + i) % n;
            if !m.takes(p) {
                continue;
            }
            if let Some(mut entry) = q.parts[p].pop_front() {
                m.cursor = (p + 1) % n;
                m.in_flight.count.fetch_add(1, Ordering::SeqCst);
                q.len -= 1;
                entry.deliveries += 1;
                let resume = q.len <= self.resume_at;
                drop(st);
                if resume && self.waiting_publishers.load(Ordering::SeqCst) > 0 {
                    self.room.notify_waiters();
                }
                return Take::Got {
                    partition: p as u32,
                    partitions,
                    entry,
                };
            }
        }
        drop(st);
        self.member_idle();
        Take::Wait
    }

    /// A member found nothing it may take: whatever room its queue has will not grow until it
    /// takes again, so waiting publishers must not wait for [`Destination::resume_at`].
    fn member_idle(&self) {
        if self.waiting_publishers.load(Ordering::SeqCst) > 0 {
            self.room.notify_waiters();
        }
    }

    /// Puts a delivered entry back at the front (a requeue) or the end (a delayed
    /// redelivery) of its partition of queue `key` (the delivery frees its slot:
    /// [`InFlight::release`]).
    pub(crate) fn put_back(&self, key: &QueueKey, partition: u32, entry: Entry, front: bool) {
        let mut st = lock(&self.state);
        if !st.queues.contains_key(key) {
            // Anonymous queue already removed: the message goes with it.
            return;
        }
        st.grow(partition + 1);
        if let Some(q) = st.queues.get_mut(key) {
            match front {
                true => q.parts[partition as usize].push_front(entry),
                false => q.parts[partition as usize].push_back(entry),
            }
            q.len += 1;
            q.notify.wake();
        }
    }

    /// Removes `member` from queue `key`; with `remove_queue`, removes the whole queue.
    pub(crate) fn leave(&self, key: &QueueKey, member: u64, remove_queue: bool) {
        let mut st = lock(&self.state);
        if remove_queue {
            st.queues.remove(key);
        } else if let Some(q) = st.queues.get_mut(key) {
            q.members.remove(&member);
            // Other members may now take what this one could not (e.g. prefetch accounting).
            q.notify.notify.notify_waiters();
        }
        drop(st);
        // A removed queue may have been what a waiting producer was blocked on.
        self.room.notify_waiters();
    }

    /// Pops the oldest recorded message.
    pub(crate) fn pop_record(&self) -> Option<RawMessage> {
        lock(&self.state).records.pop_front()
    }

    fn wake_all(&self) {
        self.room.notify_waiters();
        self.recorded.notify_waiters();
        let st = lock(&self.state);
        for q in st.queues.values() {
            q.notify.notify.notify_waiters();
        }
    }
}
