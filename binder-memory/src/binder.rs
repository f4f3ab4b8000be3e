//! The SPI implementation: binder, producer, subscription, delivery, factory.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use stream_core::binder::{
    read_settings, Backlog, BatchLimits, BatchSettings, BindError, Binder, BinderEnvironment,
    BinderFactory, Capabilities, ConsumeError, ConsumerSpec, DeadLetter, DeadLetterSource,
    Delivery, Health, OrderingScope, Producer, ProducerSpec, ProvisionPlan, Route, SendError,
    ServerAddress, SettleError, StartOffset, Subscription,
};
use stream_core::config::{Schema, SchemaNode};
use stream_core::message::{header, Message, RawMessage};
use stream_core::runtime::dead_letters::READER_GROUP;

use crate::broker::{
    Destination, Entry, InFlight, Member, MemoryBroker, MemoryBrokerConfig, QueueKey, Signal, Take,
    DEAD_LETTER_HISTORY, MAX_PARTITIONS,
};

/// The binder type name.
pub const BINDER_TYPE: &str = "memory";

/// Prefetch per unit of consumer concurrency: a subscription has at most
/// `max(concurrency, 1) * PREFETCH_PER_CONCURRENCY` delivered, unsettled messages; `next()` waits
/// for a settle beyond that. The consumer binder property `prefetch` (a positive integer)
/// overrides the product.
pub const PREFETCH_PER_CONCURRENCY: usize = 2;

/// The capability manifest of the memory binder.
pub fn capabilities() -> Capabilities {
    Capabilities {
        binder_type: BINDER_TYPE,
        ordering: OrderingScope::Partition,
        native_partitions: true,
        native_delay: false,
        max_payload_bytes: None,
        max_headers: None,
        binary_headers: true,
        pause_resume: true,
        transactions: false,
        durable_groups: true,
        anonymous_sees_only_new: true,
        in_process: true,
        replay: true,
        rebalance_redelivers_in_hand: false,
        delayed_redelivery: true,
    }
}

/// The dead-letter destination of a binding: `<dest>.<group>.dlq`, or `<dest>.dlq` without a
/// group.
pub fn dlq_name(destination: &str, group: Option<&str>) -> String {
    match group {
        Some(g) => format!("{destination}.{g}.dlq"),
        None => format!("{destination}.dlq"),
    }
}

fn shut_down_error() -> BindError {
    BindError::Connect {
        what: "memory broker".into(),
        source: "the broker was shut down".into(),
    }
}

/// A binder over one [`MemoryBroker`].
#[derive(Clone, Debug)]
pub struct MemoryBinder {
    broker: MemoryBroker,
    capabilities: Capabilities,
}

impl MemoryBinder {
    /// A binder over `broker`.
    pub fn new(broker: MemoryBroker) -> Self {
        MemoryBinder {
            broker,
            capabilities: capabilities(),
        }
    }

    /// The broker this binder uses.
    pub fn broker(&self) -> &MemoryBroker {
        &self.broker
    }
}

#[async_trait]
impl Binder for MemoryBinder {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn bind_producer(
        &self,
        destination: &str,
        spec: &ProducerSpec,
    ) -> Result<Box<dyn Producer>, BindError> {
        if self.broker.is_shut_down() {
            return Err(shut_down_error());
        }
        if spec.partition_count > MAX_PARTITIONS {
            return Err(BindError::Config {
                key: format!(
                    "spring.cloud.stream.bindings.{}.producer.partition-count",
                    spec.binding
                ),
                message: format!(
                    "{} partitions exceed the memory binder's limit of {MAX_PARTITIONS}",
                    spec.partition_count
                ),
            });
        }
        let dest = self.broker.destination(destination);
        {
            let mut st = dest.state.lock().unwrap_or_else(|e| e.into_inner());
            st.grow(spec.partition_count.max(1));
            for g in &spec.required_groups {
                st.queue_mut(&QueueKey::Group(Arc::from(g.as_str())));
            }
        }
        tracing::debug!(
            destination,
            binding = %spec.binding,
            partitions = spec.partition_count.max(1),
            required_groups = ?spec.required_groups,
            "memory producer bound"
        );
        Ok(Box::new(MemoryProducer {
            broker: self.broker.clone(),
            dest,
            closed: AtomicBool::new(false),
        }))
    }

    async fn bind_consumer(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
    ) -> Result<Box<dyn Subscription>, BindError> {
        if self.broker.is_shut_down() {
            return Err(shut_down_error());
        }
        let sub = subscribe(&self.broker, destination, group, spec)?;
        Ok(Box::new(sub))
    }

    async fn health(&self) -> Health {
        if self.broker.is_shut_down() {
            Health::Down("memory broker shut down".into())
        } else {
            Health::Up
        }
    }

    /// The group queue's waiting messages and the dead letters kept for the binding
    /// ([`MemoryBroker::dead_letters`]); an anonymous subscription's queue is not counted.
    async fn backlog(
        &self,
        destination: &str,
        group: Option<&str>,
        _spec: &ConsumerSpec,
    ) -> Backlog {
        let count = |n: usize| u64::try_from(n).ok();
        Backlog {
            pending: group
                .and_then(|g| self.broker.queue_depth(destination, g))
                .and_then(count),
            dead_letters: count(self.broker.dead_letters(destination, group).len()),
        }
    }

    /// The DLQ destination, read as group `cloud-stream-dlq`, whose queue every dead letter
    /// also goes to (the last [`DEAD_LETTER_HISTORY`] of them are kept).
    fn dead_letter_source(
        &self,
        destination: &str,
        group: Option<&str>,
        _spec: &ConsumerSpec,
    ) -> Option<DeadLetterSource> {
        Some(DeadLetterSource {
            destination: dlq_name(destination, group),
            group: Some(READER_GROUP.to_owned()),
            consumer: serde_json::json!({}),
        })
    }

    /// The first `count` dead letters kept for the binding ([`MemoryBroker::dead_letters`]).
    async fn peek_dead_letters(
        &self,
        destination: &str,
        group: Option<&str>,
        _spec: &ConsumerSpec,
        count: usize,
    ) -> Result<Vec<RawMessage>, BindError> {
        let mut kept = self.broker.dead_letters(destination, group);
        kept.truncate(count);
        Ok(kept)
    }

    fn held_in_process(&self) -> usize {
        self.broker.held_for_members()
    }

    /// Says what the process drops with the broker: messages still queued when the
    /// application stops (after consumers drained what they could before the deadline).
    async fn close(&self) {
        for (destination, group, messages) in self.broker.leftovers() {
            tracing::warn!(%destination, %group, messages, "memory binder: messages still queued at shutdown are lost with the process");
        }
        let delayed = self.broker.delayed();
        if delayed > 0 {
            tracing::warn!(messages = delayed, "memory binder: messages waiting for a delayed redelivery at shutdown are lost with the process");
        }
    }
}

fn prefetch_of(spec: &ConsumerSpec, props: &MemoryConsumerProps) -> usize {
    let prefetch = props
        .prefetch
        .unwrap_or((spec.concurrency.max(1) as usize) * PREFETCH_PER_CONCURRENCY);
    props.batch_limits().prefetch(spec, prefetch)
}

/// `spring.cloud.stream.memory.{default,bindings.<b>}.consumer.*`.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(default, rename_all = "kebab-case")]
pub struct MemoryConsumerProps {
    /// `prefetch`: deliveries handed out before settling (default 8 × concurrency).
    #[schemars(range(min = 1))]
    pub prefetch: Option<usize>,
    /// `start-offset` (as Kafka's): where a new group starts when the binder keeps history
    /// (`retention`): `earliest` (the default for a group) replays the retained messages,
    /// `latest` (the default without a group) sees only new ones.
    pub start_offset: Option<StartOffset>,
    /// `batch-size` and `receive-timeout` of a `batch-mode` binding (default: up to 100
    /// messages, those ready at once).
    #[serde(flatten)]
    pub batch: BatchSettings,
}

impl MemoryConsumerProps {
    fn batch_limits(&self) -> BatchLimits {
        self.batch.limits(BatchLimits::default())
    }
}

/// Whether a new queue for `group` starts from the history: `start-offset`, else Kafka's
/// defaults (earliest for a group, latest without). Asking for `earliest` where the broker
/// keeps no history is a configuration error rather than a silent "latest".
fn replays(
    broker: &MemoryBroker,
    group: Option<&str>,
    spec: &ConsumerSpec,
    props: &MemoryConsumerProps,
) -> Result<bool, BindError> {
    let retention = broker.config().retention;
    match props.start_offset {
        Some(StartOffset::Earliest) if retention == 0 => Err(BindError::Config {
            key: format!(
                "spring.cloud.stream.memory.bindings.{}.consumer.start-offset",
                spec.binding
            ),
            message: "`earliest` needs history: set the memory binder's environment `retention` (messages kept per destination) above 0".into(),
        }),
        Some(start) => Ok(start == StartOffset::Earliest),
        None => Ok(group.is_some() && retention > 0),
    }
}

/// The schema of the memory binder's `environment`.
pub fn environment_schema() -> Schema {
    Schema::new(SchemaNode::of::<MemoryBrokerConfig>())
}

/// The schema of `spring.cloud.stream.memory.*`.
pub fn section_schema() -> Schema {
    Schema::binder_section(
        SchemaNode::object([]),
        SchemaNode::of::<MemoryConsumerProps>(),
        SchemaNode::object([]),
    )
}

pub(crate) fn subscribe(
    broker: &MemoryBroker,
    destination: &str,
    group: Option<&str>,
    spec: &ConsumerSpec,
) -> Result<MemorySubscription, BindError> {
    let filter = spec.partition()?;
    if let Some(g) = group {
        if g.is_empty() {
            return Err(BindError::Config {
                key: format!("spring.cloud.stream.bindings.{}.group", spec.binding),
                message: "the group name is empty".into(),
            });
        }
    }
    let props: MemoryConsumerProps = spec.props()?;
    let prefetch = prefetch_of(spec, &props);
    let replay = replays(broker, group, spec, &props)?;
    let dest = broker.destination(destination);
    let member_id = broker.next_id();
    let key = match group {
        Some(g) => QueueKey::Group(Arc::from(g)),
        None => QueueKey::Anonymous(member_id),
    };
    let (notify, in_flight) = {
        let mut st = dest.state.lock().unwrap_or_else(|e| e.into_inner());
        if replay {
            st.create_replaying(&key);
        }
        let q = st.queue_mut(&key);
        let in_flight = Arc::new(InFlight::new(Arc::clone(&q.notify)));
        q.members.insert(
            member_id,
            Member {
                in_flight: Arc::clone(&in_flight),
                prefetch,
                filter,
                cursor: 0,
            },
        );
        (q.notify.clone(), in_flight)
    };
    tracing::debug!(
        destination,
        group = group.unwrap_or("<anonymous>"),
        binding = %spec.binding,
        prefetch,
        "memory consumer bound"
    );
    let group: Option<Arc<str>> = group.map(Arc::from);
    Ok(MemorySubscription {
        membership: Arc::new(Membership {
            broker: broker.clone(),
            dest: Arc::clone(&dest),
            key: key.clone(),
            group: group.clone(),
            in_flight,
        }),
        broker: broker.clone(),
        dest,
        key,
        group,
        member_id,
        notify,
        closed: false,
        batch: props.batch_limits(),
    })
}

/// A producer bound to one destination. `send` resolves once the message is in every queue of
/// the destination (waiting for room: backpressure); that is the memory broker's confirm.
pub struct MemoryProducer {
    broker: MemoryBroker,
    dest: Arc<Destination>,
    closed: AtomicBool,
}

impl fmt::Debug for MemoryProducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryProducer")
            .field("destination", &self.dest.name)
            .finish()
    }
}

#[async_trait]
impl Producer for MemoryProducer {
    async fn send(&self, message: RawMessage, route: Route) -> Result<(), SendError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(SendError::Closed);
        }
        self.broker
            .publish_to(&self.dest, message, route.partition.unwrap_or(0))
            .await
    }

    fn try_send(
        &self,
        message: RawMessage,
        route: Route,
    ) -> Result<Result<(), SendError>, (RawMessage, Route)> {
        if self.closed.load(Ordering::SeqCst) {
            return Ok(Err(SendError::Closed));
        }
        match self
            .broker
            .try_publish_to(&self.dest, message, route.partition.unwrap_or(0))
        {
            Ok(Ok(())) => Ok(Ok(())),
            Ok(Err(message)) => Err((message, route)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }
}

/// A consumer's subscription: a group membership or an anonymous queue.
///
/// `close()` (or dropping it) leaves the group; for an anonymous subscription it removes the
/// queue and whatever is still in it. Deliveries already handed out stay valid after close:
/// acking them works, requeueing (or dropping) them puts the message back in the group queue
/// (for an anonymous subscription the queue is gone and so is the message).
pub struct MemorySubscription {
    broker: MemoryBroker,
    dest: Arc<Destination>,
    key: QueueKey,
    group: Option<Arc<str>>,
    member_id: u64,
    notify: Arc<Signal>,
    membership: Arc<Membership>,
    closed: bool,
    batch: BatchLimits,
}

/// What the deliveries of one subscription share, in one allocation of the subscription's own
/// (cloning it per delivery touches no cache line the producing thread writes, unlike the
/// destination's or the broker's reference counts).
struct Membership {
    broker: MemoryBroker,
    dest: Arc<Destination>,
    key: QueueKey,
    group: Option<Arc<str>>,
    /// The member's prefetch slots; settling a delivery frees one.
    in_flight: Arc<InFlight>,
}

impl fmt::Debug for MemorySubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySubscription")
            .field("destination", &self.dest.name)
            .field("group", &self.group)
            .field("closed", &self.closed)
            .finish()
    }
}

impl MemorySubscription {
    /// The next delivery (see [`Subscription::next`]), as the concrete type.
    pub async fn next_delivery(&mut self) -> Option<MemoryDelivery> {
        loop {
            // Fast path: a message is waiting. Only an empty queue registers for a wake-up
            // (registering, then checking again, so a publish in between is not missed).
            match self.try_take() {
                Take::Gone => return None,
                Take::Got {
                    partition,
                    partitions,
                    entry,
                } => return Some(self.delivery(partition, partitions, entry)),
                Take::Wait => {}
            }
            let notified = self.notify.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let _waiting = self.notify.waiting();
            match self.try_take() {
                Take::Gone => return None,
                Take::Got {
                    partition,
                    partitions,
                    entry,
                } => return Some(self.delivery(partition, partitions, entry)),
                Take::Wait => notified.await,
            }
        }
    }

    fn try_take(&self) -> Take {
        if self.closed || self.broker.is_shut_down() {
            return Take::Gone;
        }
        self.dest.take(&self.key, self.member_id)
    }

    fn delivery(&self, partition: u32, partitions: u32, entry: Entry) -> MemoryDelivery {
        MemoryDelivery {
            from: Arc::clone(&self.membership),
            partition,
            partitioned: partitions > 1,
            message: entry.message,
            deliveries: entry.deliveries,
            settled: false,
        }
    }

    fn leave(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let anonymous = matches!(self.key, QueueKey::Anonymous(_));
        self.dest.leave(&self.key, self.member_id, anonymous);
        tracing::debug!(
            destination = %self.dest.name,
            group = self.group.as_deref().unwrap_or("<anonymous>"),
            "memory consumer closed"
        );
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        self.leave();
    }
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn next(&mut self) -> Option<Result<Box<dyn Delivery>, ConsumeError>> {
        self.next_delivery()
            .await
            .map(|d| Ok(Box::new(d) as Box<dyn Delivery>))
    }

    fn try_next(&mut self) -> Option<Result<Box<dyn Delivery>, ConsumeError>> {
        match self.try_take() {
            Take::Got {
                partition,
                partitions,
                entry,
            } => Some(Ok(Box::new(self.delivery(partition, partitions, entry)))),
            Take::Gone | Take::Wait => None,
        }
    }

    fn batch_limits(&self) -> BatchLimits {
        self.batch
    }

    async fn close(mut self: Box<Self>) {
        self.leave();
    }
}

/// One delivered message. Dropping it unsettled requeues it at the front of its partition.
pub struct MemoryDelivery {
    /// Where it came from (shared by the subscription's deliveries).
    from: Arc<Membership>,
    partition: u32,
    partitioned: bool,
    message: RawMessage,
    deliveries: u32,
    settled: bool,
}

impl fmt::Debug for MemoryDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryDelivery")
            .field("destination", &self.from.dest.name)
            .field("group", &self.from.group)
            .field("partition", &self.partition)
            .field("deliveries", &self.deliveries)
            .finish()
    }
}

impl MemoryDelivery {
    /// The partition the message was taken from.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// The destination it was consumed from.
    pub fn destination(&self) -> &str {
        &self.from.dest.name
    }

    /// The group it was consumed in (`None` for an anonymous subscription).
    pub fn group(&self) -> Option<&str> {
        self.from.group.as_deref()
    }

    fn requeue_now(&mut self) {
        if self.settled {
            return;
        }
        self.settled = true;
        let message = std::mem::replace(&mut self.message, Message::new(Default::default()));
        let entry = Entry {
            message,
            deliveries: self.deliveries,
        };
        self.from
            .dest
            .put_back(&self.from.key, self.partition, entry, true);
        self.from.in_flight.release();
    }
}

impl Drop for MemoryDelivery {
    fn drop(&mut self) {
        if !self.settled {
            tracing::debug!(destination = %self.from.dest.name, "unsettled memory delivery dropped: requeued");
            self.requeue_now();
        }
    }
}

#[async_trait]
impl Delivery for MemoryDelivery {
    fn message(&self) -> &RawMessage {
        &self.message
    }

    fn take_message(&mut self) -> RawMessage {
        // The delivery keeps its own copy for requeue and dead-lettering (payload bytes are
        // shared, only headers are copied).
        self.message.clone()
    }

    fn redelivery_count(&self) -> u32 {
        self.deliveries
    }

    fn ordering_key(&self) -> Option<String> {
        self.partitioned.then(|| self.partition.to_string())
    }

    async fn ack(mut self: Box<Self>) -> Result<(), SettleError> {
        self.try_ack().unwrap_or(Ok(()))
    }

    fn try_ack(&mut self) -> Option<Result<(), SettleError>> {
        if !self.settled {
            self.settled = true;
            self.from.in_flight.release();
        }
        Some(Ok(()))
    }

    async fn requeue(mut self: Box<Self>) -> Result<(), SettleError> {
        self.requeue_now();
        Ok(())
    }

    async fn redeliver_after(
        mut self: Box<Self>,
        delay: Duration,
        redeliveries: u32,
    ) -> Result<(), SettleError> {
        let mut message = self.message.clone();
        let count = redeliveries.to_string();
        message.headers.insert(header::DELAYED_REDELIVERIES, count);
        let entry = Entry {
            message,
            deliveries: 0,
        };
        let from = &self.from;
        from.broker
            .redeliver_after(&from.dest, &from.key, self.partition, entry, delay);
        self.settled = true;
        self.from.in_flight.release();
        Ok(())
    }

    async fn dead_letter(mut self: Box<Self>, reason: DeadLetter) -> Result<(), SettleError> {
        let dlq = dlq_name(&self.from.dest.name, self.from.group.as_deref());
        let mut m = self.message.clone();
        reason.stamp(
            &mut m.headers,
            &self.from.dest.name,
            self.from.group.as_deref(),
        );
        // The dead-letter reader's queue (`cloud-stream dlq replay|purge`), bounded by dropping
        // its oldest, as the kept dead letters are.
        self.from
            .broker
            .ensure_drop_head_queue(&dlq, READER_GROUP, DEAD_LETTER_HISTORY);
        // On failure `self` is dropped unsettled, which requeues the original.
        self.from
            .broker
            .publish(&dlq, m.clone(), 0)
            .await
            .map_err(SettleError::new)?;
        self.from
            .broker
            .record_dead_letter(&self.from.dest.name, self.from.group.as_deref(), m);
        tracing::debug!(
            destination = %self.from.dest.name,
            group = self.from.group.as_deref().unwrap_or("<anonymous>"),
            dlq = %dlq,
            kind = %reason.error_kind,
            "memory delivery dead-lettered"
        );
        self.settled = true;
        self.from.in_flight.release();
        Ok(())
    }
}

/// Creates memory binders (type `memory`).
///
/// With [`MemoryBinderFactory::new`], binders created under the same binder name share one
/// [`MemoryBroker`] (created on first use from the `environment`); with
/// [`MemoryBinderFactory::with_broker`], every binder uses the given broker, which is how a test
/// harness and an application share one broker.
///
/// Environment keys: `capacity` (positive integer, per-queue capacity, default [`crate::DEFAULT_CAPACITY`]) and
/// `recording` (boolean). Both are ignored with `with_broker` (the broker is already made).
pub struct MemoryBinderFactory {
    fixed: Option<MemoryBroker>,
    brokers: Mutex<HashMap<String, MemoryBroker>>,
}

impl fmt::Debug for MemoryBinderFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBinderFactory")
            .field("fixed_broker", &self.fixed.is_some())
            .finish()
    }
}

impl Default for MemoryBinderFactory {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBinderFactory {
    /// A factory that makes one broker per binder name.
    pub fn new() -> Self {
        MemoryBinderFactory {
            fixed: None,
            brokers: Mutex::new(HashMap::new()),
        }
    }

    /// A factory whose binders all use `broker`.
    pub fn with_broker(broker: MemoryBroker) -> Self {
        MemoryBinderFactory {
            fixed: Some(broker),
            brokers: Mutex::new(HashMap::new()),
        }
    }

    /// The broker behind binder `name`, if one was created (or the fixed broker).
    pub fn broker(&self, name: &str) -> Option<MemoryBroker> {
        if let Some(b) = &self.fixed {
            return Some(b.clone());
        }
        self.brokers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }
}

/// Reads binder `name`'s own environment (checked again for environments built in code).
fn parse_environment(
    name: &str,
    environment: &BinderEnvironment,
) -> Result<MemoryBrokerConfig, BindError> {
    let checked = environment.own_checked(&environment_schema(), name)?;
    let at = format!("spring.cloud.stream.binders.{name}.environment");
    read_settings(checked, at)
}

#[async_trait]
impl BinderFactory for MemoryBinderFactory {
    fn binder_type(&self) -> &'static str {
        BINDER_TYPE
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    fn config_schema(&self) -> Option<Schema> {
        Some(section_schema())
    }

    fn environment_schema(&self) -> Option<Schema> {
        Some(environment_schema())
    }

    async fn create(
        &self,
        name: &str,
        environment: &BinderEnvironment,
    ) -> Result<Arc<dyn Binder>, BindError> {
        let config = parse_environment(name, environment)?;
        let broker = match &self.fixed {
            Some(b) => b.clone(),
            None => self
                .brokers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(name.to_owned())
                .or_insert_with(|| MemoryBroker::with_config(config))
                .clone(),
        };
        Ok(Arc::new(MemoryBinder::new(broker)))
    }

    fn plan_consumer(
        &self,
        destination: &str,
        group: Option<&str>,
        _spec: &ConsumerSpec,
    ) -> ProvisionPlan {
        let mut resources = vec![format!("memory destination {destination}")];
        match group {
            Some(g) => resources.push(format!("group queue {destination}.{g}")),
            None => resources.push(format!(
                "anonymous queue on {destination} (removed on close)"
            )),
        }
        ProvisionPlan {
            dlq: Some(dlq_name(destination, group)),
            resources,
        }
    }

    fn plan_producer(&self, destination: &str, spec: &ProducerSpec) -> ProvisionPlan {
        let mut resources = vec![if spec.partition_count > 1 {
            format!(
                "memory destination {destination} ({} partitions)",
                spec.partition_count
            )
        } else {
            format!("memory destination {destination}")
        }];
        for g in &spec.required_groups {
            resources.push(format!("group queue {destination}.{g}"));
        }
        ProvisionPlan {
            dlq: None,
            resources,
        }
    }

    fn server(&self, _name: &str, _environment: &BinderEnvironment) -> Option<ServerAddress> {
        Some(ServerAddress {
            protocol: "memory".to_owned(),
            host: "in-process".to_owned(),
        })
    }
}

#[cfg(test)]
mod replay_tests {
    use super::*;
    use bytes::Bytes;

    fn spec(start_offset: Option<&str>) -> ConsumerSpec {
        ConsumerSpec {
            binding: "p-in-0".into(),
            binder_properties: match start_offset {
                Some(s) => serde_json::json!({ "start-offset": s }),
                None => serde_json::Value::Null,
            },
            ..ConsumerSpec::default()
        }
    }

    async fn taken(sub: &mut MemorySubscription) -> usize {
        let mut n = 0;
        while let Ok(Some(Ok(d))) =
            tokio::time::timeout(std::time::Duration::from_millis(20), sub.next()).await
        {
            d.ack().await.expect("ack");
            n += 1;
        }
        n
    }

    #[tokio::test]
    async fn new_groups_replay_the_retained_history_and_anonymous_ones_do_not() {
        let broker = MemoryBroker::with_config(MemoryBrokerConfig {
            retention: 2,
            ..MemoryBrokerConfig::default()
        });
        for i in 0..3u8 {
            broker
                .publish("d", RawMessage::new(Bytes::from(vec![i])), 0)
                .await
                .expect("publish");
        }
        let mut group = subscribe(&broker, "d", Some("g"), &spec(None)).expect("bind");
        assert_eq!(taken(&mut group).await, 2, "the last 2 retained");
        let mut anonymous = subscribe(&broker, "d", None, &spec(None)).expect("bind");
        assert_eq!(taken(&mut anonymous).await, 0);
        let mut latest = subscribe(&broker, "d", Some("h"), &spec(Some("latest"))).expect("bind");
        assert_eq!(taken(&mut latest).await, 0);
    }

    /// `cloud-stream dlq replay|purge`'s loop on the memory binder: dead letters go back to
    /// the destination without their error headers and leave the DLQ.
    #[tokio::test(start_paused = true)]
    async fn dead_letters_are_replayed_without_their_error_headers() {
        use stream_core::runtime::dead_letters::{drain, Action};
        let broker = MemoryBroker::new();
        let binder = broker.binder();
        let spec = spec(None);
        let mut sub = subscribe(&broker, "d", Some("g"), &spec).expect("bind");
        for i in 0..3u8 {
            let m = RawMessage::new(Bytes::from(vec![i]));
            broker.publish("d", m, 0).await.expect("publish");
        }
        for _ in 0..3 {
            let d = sub.next().await.expect("a delivery").expect("ok");
            let reason = DeadLetter {
                error_message: "boom".into(),
                error_kind: "permanent".into(),
                attempts: 1,
            };
            d.dead_letter(reason).await.expect("dead-lettered");
        }
        let from = ("d", Some("g"), &spec);
        let replay = Action::Replay { to: "d" };
        assert_eq!(
            drain(&binder, from, replay, 10, |_| {})
                .await
                .expect("replay"),
            3
        );
        for i in 0..3u8 {
            let d = sub.next().await.expect("a delivery").expect("ok");
            assert_eq!(d.message().payload[..], [i]);
            assert!(!d.message().headers.contains("x-exception-message"));
            d.ack().await.expect("ack");
        }
        assert_eq!(
            drain(&binder, from, Action::Purge, 10, |_| {})
                .await
                .expect("purge"),
            0
        );
    }

    #[test]
    fn earliest_without_retention_names_the_setting() {
        let broker = MemoryBroker::new();
        let Err(BindError::Config { key, message }) =
            subscribe(&broker, "d", Some("g"), &spec(Some("earliest")))
        else {
            panic!("a configuration error");
        };
        assert_eq!(
            key,
            "spring.cloud.stream.memory.bindings.p-in-0.consumer.start-offset"
        );
        assert!(message.contains("retention"), "{message}");
    }
}
