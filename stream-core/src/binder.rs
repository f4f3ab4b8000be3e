//! The binder SPI (docs/architecture.md §5): what a broker crate implements, and the registry of binder
//! factories keyed by binder `type`.
//!
//! A binder owns only the broker mapping, provisioning and its native dead-letter and redelivery
//! mechanics. Everything generic (decoding, dispatch, retry, concurrency, output sending,
//! settling, shutdown, tracing, metrics) is the runtime's.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::message::RawMessage;

/// Boxed error source carried by the binder error types.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a binder can do; config validation and the conformance suite read it (docs/architecture.md §7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// The binder's type name (`memory`, `kafka`, `rabbit`, `sqs`).
    pub binder_type: &'static str,
    /// Scope within which the broker keeps order.
    pub ordering: OrderingScope,
    /// Whether the broker itself partitions a destination (otherwise partitions are emulated by
    /// routing, e.g. RabbitMQ routing keys).
    pub native_partitions: bool,
    /// Whether messages can be delayed natively.
    pub native_delay: bool,
    /// Largest payload in bytes the broker accepts, if limited.
    pub max_payload_bytes: Option<usize>,
    /// Largest number of headers the broker carries natively, if limited (the binder folds the
    /// rest).
    pub max_headers: Option<usize>,
    /// Whether binary header values survive a round trip (otherwise they are base64-folded).
    pub binary_headers: bool,
    /// Whether a binding can be paused and resumed without losing its place.
    pub pause_resume: bool,
    /// Whether the broker supports transactions.
    pub transactions: bool,
    /// Whether a named group keeps messages published while no member was bound.
    pub durable_groups: bool,
    /// Whether a newly bound anonymous consumer sees only messages published after it bound.
    pub anonymous_sees_only_new: bool,
    /// Whether messages live in the application's own process (the memory binder): a graceful
    /// shutdown lets consumers finish what is queued ([`Binder::held_in_process`]); a crash
    /// loses it.
    pub in_process: bool,
    /// Whether a consumer binding can hand a failed message back to the broker to come again
    /// after a delay (`redelivery-delays`, [`Delivery::redeliver_after`]).
    pub delayed_redelivery: bool,
    /// Whether a new group can start from messages published before it existed (`start-offset:
    /// earliest`): replaying history to rebuild a projection. Kafka keeps its log; the memory
    /// binder keeps `retention` messages per destination; RabbitMQ's classic and quorum queues
    /// and SQS deliver each message once and keep no history.
    pub replay: bool,
    /// Whether a rebalance (a member joining or leaving a group) hands records a member already
    /// had in hand, and had not committed, to their next owner as well: duplicates under
    /// at-least-once that the application's idempotency must absorb (Kafka consumer groups,
    /// whose binder fetches ahead of the handler). Nothing is lost either way.
    pub rebalance_redelivers_in_hand: bool,
}

/// The scope within which a broker preserves message order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderingScope {
    /// No ordering guarantee.
    None,
    /// Order is kept per partition (or per message group / routing key).
    Partition,
    /// Order is kept per destination queue while one consumer reads it.
    SingleConsumer,
}

/// Health of a binder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Connected and working.
    Up,
    /// Not usable; the reason says why (with secrets redacted).
    Down(String),
}

impl Health {
    /// Whether this is [`Health::Up`].
    pub fn is_up(&self) -> bool {
        matches!(self, Health::Up)
    }
}

/// Everything a binder needs to create a producer for one output binding.
#[derive(Clone, Debug, Default)]
pub struct ProducerSpec {
    /// The binding name (e.g. `reserve-out-0`), for logs and resource naming.
    pub binding: String,
    /// Number of partitions the producer routes to (1 = not partitioned).
    pub partition_count: u32,
    /// Groups whose durable subscriptions must exist before the first send.
    pub required_groups: Vec<String>,
    /// Binder-specific properties of this binding
    /// (`spring.cloud.stream.<type>.bindings.<binding>.producer`, merged over
    /// `spring.cloud.stream.<type>.default.producer`), as a JSON object.
    pub binder_properties: serde_json::Value,
}

/// Everything a binder needs to create a subscription for one input binding.
#[derive(Clone, Debug, Default)]
pub struct ConsumerSpec {
    /// The binding name (e.g. `reserve-in-0`).
    pub binding: String,
    /// Number of handler invocations the runtime runs at once; size prefetch to it.
    pub concurrency: u32,
    /// Whether this consumer reads only its own partitions.
    pub partitioned: bool,
    /// This instance's index (for partitioned consumers).
    pub instance_index: u32,
    /// Number of instances (for partitioned consumers).
    pub instance_count: u32,
    /// Attempts the runtime makes before dead-lettering (for sizing native backstops such as a
    /// redrive policy; the runtime remains the retry owner).
    pub max_attempts: u32,
    /// Whether the runtime takes deliveries in batches (`batch-mode`): size prefetch to hold
    /// a whole batch ([`Subscription::batch_limits`]).
    pub batch_mode: bool,
    /// The delays of `redelivery-delays`, in order: provision what
    /// [`Delivery::redeliver_after`] needs for each (e.g. RabbitMQ wait queues).
    pub redelivery_delays: Vec<std::time::Duration>,
    /// Binder-specific properties of this binding
    /// (`spring.cloud.stream.<type>.bindings.<binding>.consumer`, merged over
    /// `spring.cloud.stream.<type>.default.consumer`), as a JSON object.
    pub binder_properties: serde_json::Value,
}

/// Reads binder-specific properties as the binder's settings type. The loader has already
/// validated and coerced them against the schema derived from `T` (unknown keys, kinds,
/// bounds), so a failure here means a spec built by hand; it names the binding.
/// `defaults`, when given, are binder-scoped settings the binding's own keys override.
fn typed_props<T: serde::de::DeserializeOwned + Default>(
    binding: &str,
    side: &str,
    props: &serde_json::Value,
    defaults: Option<serde_json::Value>,
) -> Result<T, BindError> {
    let mut v = defaults.unwrap_or_default();
    if !props.is_null() {
        crate::config::deep_merge(&mut v, props);
    }
    if v.is_null() || v.as_object().is_some_and(|o| o.is_empty()) {
        return Ok(T::default());
    }
    read_settings(v, format!("bindings.{binding}.{side}"))
}

/// Reads `value` as a binder's settings type `T` (binding properties, a binder environment);
/// a failure is [`BindError::Config`] at `key`, its message free of credentials.
pub fn read_settings<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    key: impl Into<String>,
) -> Result<T, BindError> {
    serde_json::from_value(value).map_err(|e| BindError::Config {
        key: key.into(),
        message: crate::config::redact_uris(&e.to_string()),
    })
}

/// The settings at `path` below `value` (checked already) as `T`; `T::default()` when absent.
pub fn read_at<T: serde::de::DeserializeOwned + Default>(
    value: &serde_json::Value,
    path: &[&str],
) -> Result<T, BindError> {
    match crate::config::get_path(value, path) {
        Some(v) if !v.is_null() => read_settings(v.clone(), path.join(".")),
        _ => Ok(T::default()),
    }
}

impl ProducerSpec {
    /// The binder-specific producer properties as the binder's settings type `T`.
    pub fn props<T: serde::de::DeserializeOwned + Default>(&self) -> Result<T, BindError> {
        typed_props(&self.binding, "producer", &self.binder_properties, None)
    }

    /// [`ProducerSpec::props`] over binder-scoped `defaults` (e.g. a binder environment's
    /// `default.producer`): the binding's own keys win.
    pub fn props_over<T>(&self, defaults: &T) -> Result<T, BindError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Default,
    {
        let defaults = serde_json::to_value(defaults).ok();
        typed_props(&self.binding, "producer", &self.binder_properties, defaults)
    }
}

impl ConsumerSpec {
    /// `(instance-index, instance-count)` of a partitioned consumer, `None` when it is not
    /// partitioned; the one check that the index is below the count (the loader checks the
    /// same for configurations it read; this covers specs built in code).
    pub fn partition(&self) -> Result<Option<(u32, u32)>, BindError> {
        if !self.partitioned {
            return Ok(None);
        }
        let count = self.instance_count.max(1);
        if self.instance_index >= count {
            return Err(BindError::Config {
                key: format!(
                    "spring.cloud.stream.bindings.{}.consumer.instance-index",
                    self.binding
                ),
                message: format!(
                    "instance-index {} must be less than instance-count {count}",
                    self.instance_index
                ),
            });
        }
        Ok(Some((self.instance_index, count)))
    }

    /// The binder-specific consumer properties as the binder's settings type `T`.
    pub fn props<T: serde::de::DeserializeOwned + Default>(&self) -> Result<T, BindError> {
        typed_props(&self.binding, "consumer", &self.binder_properties, None)
    }

    /// [`ConsumerSpec::props`] over binder-scoped `defaults` (e.g. a binder environment's
    /// `default.consumer`): the binding's own keys win.
    pub fn props_over<T>(&self, defaults: &T) -> Result<T, BindError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Default,
    {
        let defaults = serde_json::to_value(defaults).ok();
        typed_props(&self.binding, "consumer", &self.binder_properties, defaults)
    }
}

/// `start-offset` of a consumer binding (Spring's Kafka key, also the memory binder's): where a
/// group with no position of its own starts, on binders that keep history
/// ([`Capabilities::replay`]).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum StartOffset {
    /// The earliest retained message.
    Earliest,
    /// Only messages published after the consumer started.
    Latest,
}

impl StartOffset {
    /// The value as written in configuration (also librdkafka's `auto.offset.reset`).
    pub fn as_str(self) -> &'static str {
        match self {
            StartOffset::Earliest => "earliest",
            StartOffset::Latest => "latest",
        }
    }
}

/// A subscription that reads a binding's dead letters ([`Binder::dead_letter_source`]): bind
/// it with [`Binder::bind_consumer`] (`destination`, `group`, and `consumer` as the spec's
/// binder properties).
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetterSource {
    /// The destination to consume.
    pub destination: String,
    /// The group to consume it as.
    pub group: Option<String>,
    /// Binder-specific consumer properties (a JSON object).
    pub consumer: serde_json::Value,
}

/// Routing of one outbound message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Route {
    /// The partition key, if the producer is partitioned or a key expression is set.
    pub partition_key: Option<String>,
    /// The partition chosen by the runtime (`hash(key) % partition-count`), if partitioned.
    pub partition: Option<u32>,
}

/// A bound output: sends messages to one destination.
#[async_trait]
pub trait Producer: Send + Sync {
    /// Sends one message. Resolves only once the broker confirmed it (docs/architecture.md §5).
    async fn send(&self, message: RawMessage, route: Route) -> Result<(), SendError>;

    /// Sends one message if the broker confirms it at once, without waiting (e.g. an
    /// in-process broker with room): `Ok(result)` is the confirmed (or failed) send, `Err`
    /// hands the message back and the caller awaits [`Producer::send`] instead. The default
    /// always hands it back; a binder implements it only where it saves the per-send future.
    #[allow(clippy::result_large_err)]
    fn try_send(
        &self,
        message: RawMessage,
        route: Route,
    ) -> Result<Result<(), SendError>, (RawMessage, Route)> {
        Err((message, route))
    }

    /// Waits until everything sent so far is confirmed. Called at shutdown.
    async fn flush(&self) -> Result<(), SendError> {
        Ok(())
    }

    /// Releases broker resources. Called once, after the last send.
    async fn close(&self) {}
}

/// Why a message was dead-lettered; the binder records it in the dead-letter headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The last error's message.
    pub error_message: String,
    /// The last error's kind (`retryable`, `permanent`, `decode`, `output`).
    pub error_kind: String,
    /// Attempts made (including the first).
    pub attempts: u32,
}

impl DeadLetter {
    /// Removes what dead-lettering added: the headers [`DeadLetter::stamp`] and the binders
    /// write (`x-original-*`, `x-exception-*`), RabbitMQ's own (`x-death`,
    /// `x-first-death-*`, `x-last-death-*`) and the delayed-redelivery ones (`x-delayed-*`),
    /// so a replayed message looks as it did first (and gets its redeliveries again).
    pub fn strip(headers: &mut crate::message::Headers) {
        const ADDED: &[&str] = &[
            "x-delayed-",
            "x-original-",
            "x-exception-",
            "x-death",
            "x-first-death-",
            "x-last-death-",
        ];
        let names: Vec<String> = headers
            .iter()
            .map(|(name, _)| name)
            .filter(|name| ADDED.iter().any(|p| name.starts_with(p)))
            .map(str::to_owned)
            .collect();
        for name in names {
            headers.remove(&name);
        }
    }

    /// Writes the dead-letter headers every binder carries, in Spring's names: where the
    /// message was consumed (`x-original-topic`, `x-original-group`), the error
    /// (`x-exception-message`, `x-exception-stacktrace`, `x-exception-kind`) and
    /// `x-original-attempts`. A binder adds its broker's own (partition, offset, exchange).
    pub fn stamp(
        &self,
        headers: &mut crate::message::Headers,
        destination: &str,
        group: Option<&str>,
    ) {
        use crate::message::header;
        headers.insert(header::ORIGINAL_TOPIC, destination);
        if let Some(g) = group {
            headers.insert(header::ORIGINAL_GROUP, g);
        }
        headers.insert(header::EXCEPTION_MESSAGE, self.error_message.as_str());
        headers.insert(
            header::EXCEPTION_STACKTRACE,
            format!("{} error: {}", self.error_kind, self.error_message),
        );
        headers.insert(header::EXCEPTION_KIND, self.error_kind.as_str());
        headers.insert(header::ORIGINAL_ATTEMPTS, self.attempts.to_string());
    }
}

/// One received message, settled exactly once: the settle methods consume it.
///
/// Dropping a delivery without settling it must make the broker redeliver it later (crash
/// semantics): nothing unsettled is ever lost.
#[async_trait]
pub trait Delivery: Send {
    /// The message as received. The runtime lends it to the handler, which decodes it
    /// before anything else runs, so the delivery keeps it for a retry or the dead-letter
    /// hand-off and it is never copied per attempt.
    fn message(&self) -> &RawMessage;

    /// Takes the message out (the delivery keeps whatever it needs to settle). For code that
    /// needs the message by value; the runtime only borrows it ([`Delivery::message`]).
    fn take_message(&mut self) -> RawMessage;

    /// How many times the broker has delivered this message (1 = first delivery), if known.
    fn redelivery_count(&self) -> u32 {
        1
    }

    /// The key within which order must be kept, if the broker knows it (e.g. the partition).
    fn ordering_key(&self) -> Option<String> {
        None
    }

    /// Success: the broker may forget the message.
    async fn ack(self: Box<Self>) -> Result<(), SettleError>;

    /// Acknowledges at once if the binder can without waiting (e.g. an in-process broker):
    /// `Some(result)` means the delivery is settled and only has to be dropped; `None` (the
    /// default) means the caller awaits [`Delivery::ack`].
    fn try_ack(&mut self) -> Option<Result<(), SettleError>> {
        None
    }

    /// Hands the message back for redelivery (used for crash recovery and shutdown, never for
    /// in-process retries).
    async fn requeue(self: Box<Self>) -> Result<(), SettleError>;

    /// Gives up: moves the message to the binding's dead-letter destination with `reason`
    /// recorded in its headers, then settles the original.
    async fn dead_letter(self: Box<Self>, reason: DeadLetter) -> Result<(), SettleError>;

    /// Hands the message back to the broker to be delivered again to this binding after
    /// `delay` (one of [`ConsumerSpec::redelivery_delays`]), its
    /// [`DELAYED_REDELIVERIES`](crate::message::header::DELAYED_REDELIVERIES) header set to
    /// `redeliveries`; the original is settled only once the broker holds the copy. The
    /// consumer goes on with other messages meanwhile. Binders whose manifest says
    /// `delayed_redelivery` implement it; the default refuses (and the runtime never calls it).
    async fn redeliver_after(
        self: Box<Self>,
        _delay: std::time::Duration,
        _redeliveries: u32,
    ) -> Result<(), SettleError> {
        Err(SettleError::new(
            "delayed redelivery is not supported by this binder",
        ))
    }
}

/// How many delayed redeliveries a message with `headers` has had (its
/// [`DELAYED_REDELIVERIES`](crate::message::header::DELAYED_REDELIVERIES) header; 0 without).
pub fn delayed_redeliveries(headers: &crate::message::Headers) -> u32 {
    headers
        .get_str(crate::message::header::DELAYED_REDELIVERIES)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A bound input: a stream of deliveries.
#[async_trait]
pub trait Subscription: Send {
    /// The next delivery; `None` once the subscription is closed.
    async fn next(&mut self) -> Option<Result<Box<dyn Delivery>, ConsumeError>>;

    /// The next delivery if one is ready now, without waiting; `None` when none is (or the
    /// binder does not say, the default), and then the caller awaits [`Subscription::next`],
    /// which also reports a closed subscription.
    fn try_next(&mut self) -> Option<Result<Box<dyn Delivery>, ConsumeError>> {
        None
    }

    /// How the runtime fills a batch for a `batch-mode` binding, from the binder's own settings
    /// (Rabbit's `batch-size` and `receive-timeout`, Kafka's `max.poll.records`, ...).
    fn batch_limits(&self) -> BatchLimits {
        BatchLimits::default()
    }

    /// Stops receiving and releases broker resources (anonymous queues are removed).
    async fn close(self: Box<Self>);
}

/// How long a binder's `send` keeps trying through a broker outage (publishing again after
/// reconnecting) before it fails, by default.
pub const DEFAULT_SEND_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

/// The waits of a binder's reconnect and resend loops: 100 ms, doubling up to 5 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: std::time::Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: std::time::Duration::from_millis(100),
        }
    }
}

impl Backoff {
    /// The next wait.
    pub fn next_delay(&mut self) -> std::time::Duration {
        let d = self.next;
        self.next = (self.next * 2).min(std::time::Duration::from_secs(5));
        d
    }
}

/// How a batch is filled: after its first delivery, every delivery ready at once is added, and
/// while it is not full the runtime waits up to `receive_timeout` for each next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// The most messages in one batch (at least 1).
    pub max_messages: usize,
    /// How long to wait for one more message of a batch that is not full (zero: take what is
    /// ready).
    pub receive_timeout: std::time::Duration,
}

impl Default for BatchLimits {
    /// At most 100 messages, and no waiting beyond what the broker has ready.
    fn default() -> Self {
        BatchLimits {
            max_messages: 100,
            receive_timeout: std::time::Duration::ZERO,
        }
    }
}

impl BatchLimits {
    /// The prefetch a subscription needs for `spec`: `prefetch`, raised to hold a whole batch
    /// in batch mode (as Spring raises a batching container's prefetch to its batch size).
    pub fn prefetch(&self, spec: &ConsumerSpec, prefetch: usize) -> usize {
        match spec.batch_mode {
            true => prefetch.max(self.max_messages),
            false => prefetch,
        }
    }
}

/// A consumer binding's batch settings, in Spring's RabbitMQ binder names (`batch-size`,
/// `receive-timeout`); binders that take them flatten this into their consumer settings.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(default, rename_all = "kebab-case")]
pub struct BatchSettings {
    /// `batch-size`: the most messages in one batch (`batch-mode`).
    #[schemars(range(min = 1))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// `receive-timeout`: how long a batch that is not full waits for its next message (ms).
    #[schemars(extend("x-kind" = "duration-ms"))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receive_timeout: Option<u64>,
}

impl BatchSettings {
    /// The limits these settings give, `defaults` where unset.
    pub fn limits(&self, defaults: BatchLimits) -> BatchLimits {
        BatchLimits {
            max_messages: self.batch_size.unwrap_or(defaults.max_messages).max(1),
            receive_timeout: self
                .receive_timeout
                .map_or(defaults.receive_timeout, std::time::Duration::from_millis),
        }
    }
}

/// How many messages wait for a consumer binding, as its broker counts them (approximate:
/// brokers count asynchronously). `None` where the broker cannot tell or the binding has no
/// such queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Backlog {
    /// Messages not yet delivered: RabbitMQ's ready messages, Kafka's consumer lag, SQS's
    /// approximate number of visible messages, the memory binder's queued messages.
    pub pending: Option<u64>,
    /// Messages in the binding's dead-letter queue (or topic).
    pub dead_letters: Option<u64>,
}

/// A connected binder (docs/architecture.md §5).
#[async_trait]
pub trait Binder: Send + Sync {
    /// The capability manifest.
    fn capabilities(&self) -> &Capabilities;

    /// Provisions `destination` and returns a producer for it.
    async fn bind_producer(
        &self,
        destination: &str,
        spec: &ProducerSpec,
    ) -> Result<Box<dyn Producer>, BindError>;

    /// Provisions `destination` (and the group's durable subscription, or an anonymous one when
    /// `group` is `None`) and returns a subscription.
    async fn bind_consumer(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
    ) -> Result<Box<dyn Subscription>, BindError>;

    /// Current health.
    async fn health(&self) -> Health;

    /// The backlog of the consumer binding on `destination` and `group` (the same arguments
    /// and spec as [`Binder::bind_consumer`]): what waits in its queue and in its dead-letter
    /// queue, as far as the broker tells. Nothing known ([`Backlog::default`]) by default.
    async fn backlog(
        &self,
        _destination: &str,
        _group: Option<&str>,
        _spec: &ConsumerSpec,
    ) -> Backlog {
        Backlog::default()
    }

    /// How to consume the consumer binding's dead letters as an ordinary subscription (the
    /// README's "Consuming dead letters" table): for `cloud-stream dlq replay|purge`, which
    /// settle each one only after it was republished. `None` (the default): the binding has no
    /// dead-letter queue this binder can consume.
    fn dead_letter_source(
        &self,
        _destination: &str,
        _group: Option<&str>,
        _spec: &ConsumerSpec,
    ) -> Option<DeadLetterSource> {
        None
    }

    /// Up to `count` messages of the consumer binding's dead-letter queue, oldest first, left
    /// where they are (for `cloud-stream dlq peek`). Unsupported by default.
    async fn peek_dead_letters(
        &self,
        _destination: &str,
        _group: Option<&str>,
        _spec: &ConsumerSpec,
        _count: usize,
    ) -> Result<Vec<RawMessage>, BindError> {
        Err(BindError::Unsupported(
            "reading dead letters without removing them (not implemented for this binder yet)"
                .into(),
        ))
    }

    /// Messages this binder holds in the application's own process for consumers that are
    /// still bound (queued or delivered and unsettled): lost if the process exits, so a
    /// graceful shutdown lets consumers finish them first. A broker keeps them: 0, the default.
    fn held_in_process(&self) -> usize {
        0
    }

    /// Closes connections. Called once at shutdown, after all bindings are closed.
    async fn close(&self) {}
}

/// The configuration a binder is created with (Spring's binder `environment` and
/// `inherit-environment`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BinderEnvironment {
    /// `spring.cloud.stream.binders.<name>.environment` as written (dotted keys expanded into
    /// nested objects); an empty object when absent.
    pub own: serde_json::Value,
    /// The application's whole property tree when `inherit-environment` is true (the
    /// default), else an empty object. Contains unrelated keys: never validate it strictly.
    pub inherited: serde_json::Value,
}

impl BinderEnvironment {
    /// The environment binder `name` gets: its own `environment`, and the application's whole
    /// tree `root` when `inherit-environment` (Spring's default).
    pub fn for_binder(
        config: &crate::config::StreamConfig,
        root: &serde_json::Value,
        name: &str,
    ) -> Self {
        let empty = || serde_json::Value::Object(Default::default());
        let binder = config.stream.binders.get(name);
        let inherit = binder.is_none_or(|b| b.inherit_environment);
        BinderEnvironment {
            own: binder.map_or_else(empty, |b| b.environment.clone()),
            inherited: if inherit { root.clone() } else { empty() },
        }
    }

    /// An environment with only the binder's own properties.
    pub fn own(own: serde_json::Value) -> Self {
        BinderEnvironment {
            own,
            inherited: serde_json::Value::Object(Default::default()),
        }
    }

    /// The binder's own environment checked against `schema` as the loader checks it: keys in
    /// their declared spelling, values coerced (`"5672"` → 5672, `a,b` → a list), the first
    /// problem the error. The loader has done so already for configurations it read; this
    /// covers environments built in code.
    pub fn own_checked(
        &self,
        schema: &crate::config::Schema,
        name: &str,
    ) -> Result<serde_json::Value, BindError> {
        let path = format!("spring.cloud.stream.binders.{name}.environment");
        checked(schema, &self.own, &path)
    }

    /// The application's (inherited) properties at `path` (e.g. Spring Boot's
    /// `spring.rabbitmq`) that `T` declares, checked and coerced as `T`'s schema says; the other
    /// keys there are the application's business and are left out. An empty object when
    /// absent.
    pub fn inherited_checked<T: schemars::JsonSchema>(
        &self,
        path: &[&str],
    ) -> Result<serde_json::Value, BindError> {
        use crate::config::{get_path, kebab, Schema, SchemaNode};
        let node = SchemaNode::of::<T>();
        let declared: serde_json::Map<String, serde_json::Value> =
            match get_path(&self.inherited, path) {
                Some(serde_json::Value::Object(m)) => m
                    .iter()
                    .filter(|(k, _)| node.field(&kebab(k)).is_some())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                _ => Default::default(),
            };
        let declared = serde_json::Value::Object(declared);
        checked(&Schema::new(node), &declared, &path.join("."))
    }
}

/// `value` checked against `schema` at `path` (see [`BinderEnvironment::own_checked`]).
fn checked(
    schema: &crate::config::Schema,
    value: &serde_json::Value,
    path: &str,
) -> Result<serde_json::Value, BindError> {
    if value.is_null() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    schema.check(value, path).map_err(|e| {
        let first = e.issues.into_iter().next().unwrap_or_default();
        BindError::Config {
            key: first.path,
            message: first.message,
        }
    })
}

/// What a binder would provision for one binding; used by `cloud-stream plan` without
/// connecting to anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProvisionPlan {
    /// The dead-letter destination, if the binding has one.
    pub dlq: Option<String>,
    /// Human-readable broker resources (e.g. `exchange orders (topic)`).
    pub resources: Vec<String>,
}

/// Creates binders of one `type` from their `environment` configuration.
#[async_trait]
pub trait BinderFactory: Send + Sync {
    /// The `type` this factory answers to (`memory`, `kafka`, ...).
    fn binder_type(&self) -> &'static str;

    /// The capability manifest binders of this type publish (known before connecting).
    fn capabilities(&self) -> Capabilities;

    /// Connects a binder named `name`. Read `environment.own` strictly
    /// ([`BinderEnvironment::own_checked`]: it is what the user wrote for this binder) and
    /// anything else (e.g. `spring.rabbitmq.*`) leniently
    /// ([`BinderEnvironment::inherited_checked`]).
    async fn create(
        &self,
        name: &str,
        environment: &BinderEnvironment,
    ) -> Result<Arc<dyn Binder>, BindError>;

    /// The schema of this type's `spring.cloud.stream.<type>.*` section
    /// ([`crate::config::Schema::binder_section`]); `None` leaves the section unchecked.
    fn config_schema(&self) -> Option<crate::config::Schema> {
        None
    }

    /// The schema of a binder's own `environment` (`binders.<name>.environment`), derived from
    /// the binder's settings type; the loader validates and normalises the environment with it
    /// (unknown keys with a did-you-mean), so `validate` and `plan` check it without
    /// connecting. `None` leaves the environment unchecked until [`BinderFactory::create`].
    fn environment_schema(&self) -> Option<crate::config::Schema> {
        None
    }

    /// What binding `destination`/`group` with consumer `spec` (whose binder-specific
    /// properties may switch on a DLQ, say) would provision, without connecting.
    fn plan_consumer(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
    ) -> ProvisionPlan {
        let _ = (destination, group, spec);
        ProvisionPlan::default()
    }

    /// What an output to `destination` would provision, without connecting.
    fn plan_producer(&self, destination: &str, spec: &ProducerSpec) -> ProvisionPlan {
        let _ = (destination, spec);
        ProvisionPlan::default()
    }

    /// Where binder `name` would connect, read from `environment` as
    /// [`BinderFactory::create`] reads it, without credentials (for documents such as
    /// AsyncAPI). `None` when that is not known without connecting, or the environment is
    /// invalid.
    fn server(&self, name: &str, environment: &BinderEnvironment) -> Option<ServerAddress> {
        let _ = (name, environment);
        None
    }
}

/// Where a binder connects: the protocol and the host(s), never credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerAddress {
    /// The protocol as AsyncAPI names it (`amqp`, `amqps`, `kafka`, `sqs`, ...).
    pub protocol: String,
    /// `host[:port]`, several comma-separated where the binder knows several.
    pub host: String,
}

/// The binder factories an application knows, keyed by `type`.
#[derive(Clone, Default)]
pub struct BinderRegistry {
    factories: BTreeMap<&'static str, Arc<dyn BinderFactory>>,
}

impl BinderRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or replaces) the factory for its type.
    pub fn register(&mut self, factory: Arc<dyn BinderFactory>) {
        self.factories.insert(factory.binder_type(), factory);
    }

    /// The factory for `binder_type`.
    pub fn get(&self, binder_type: &str) -> Option<&Arc<dyn BinderFactory>> {
        self.factories.get(binder_type)
    }

    /// The section schemas the registered factories declare, by type.
    pub fn schemas(&self) -> Vec<(&'static str, crate::config::Schema)> {
        self.factories
            .iter()
            .filter_map(|(t, f)| f.config_schema().map(|s| (*t, s)))
            .collect()
    }

    /// The environment schemas the registered factories declare, by type.
    pub fn environment_schemas(&self) -> Vec<(&'static str, crate::config::Schema)> {
        self.factories
            .iter()
            .filter_map(|(t, f)| f.environment_schema().map(|s| (*t, s)))
            .collect()
    }

    /// The registered types, sorted.
    pub fn types(&self) -> Vec<&'static str> {
        self.factories.keys().copied().collect()
    }
}

impl fmt::Debug for BinderRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.factories.keys()).finish()
    }
}

/// Creating a binder or binding failed.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The broker could not be reached (after the binder's own retries).
    #[error("cannot connect to {what}: {source}")]
    Connect {
        /// What was being connected to (redacted).
        what: String,
        /// The client error.
        #[source]
        source: BoxError,
    },
    /// Declaring a broker resource failed.
    #[error("cannot provision {resource}: {source}")]
    Provision {
        /// The resource (e.g. `queue orders.stock`).
        resource: String,
        /// The client error.
        #[source]
        source: BoxError,
    },
    /// The binder's configuration is invalid.
    #[error("invalid binder configuration at `{key}`: {message}")]
    Config {
        /// The property path.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The binder lacks a capability the binding needs.
    #[error("binder does not support {0}")]
    Unsupported(String),
}

/// Sending failed or was not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The broker refused or could not take the message.
    #[error("send to {destination} failed: {source}")]
    Broker {
        /// The destination.
        destination: String,
        /// The client error.
        #[source]
        source: BoxError,
    },
    /// The broker returned the message as unroutable.
    #[error("message to {destination} was returned as unroutable")]
    Unroutable {
        /// The destination.
        destination: String,
    },
    /// The message exceeds what the broker accepts.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The message size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The producer was closed.
    #[error("producer is closed")]
    Closed,
}

/// Receiving failed (the subscription keeps going unless it returns `None`).
#[derive(Debug, thiserror::Error)]
#[error("consume from {destination} failed: {source}")]
pub struct ConsumeError {
    /// The destination.
    pub destination: String,
    /// The client error.
    #[source]
    pub source: BoxError,
}

/// Settling (ack, requeue, dead-letter) failed; the broker will redeliver.
#[derive(Debug, thiserror::Error)]
#[error("settle failed: {source}")]
pub struct SettleError {
    /// The client error.
    #[source]
    pub source: BoxError,
}

impl SettleError {
    /// Wraps any error.
    pub fn new(source: impl Into<BoxError>) -> Self {
        SettleError {
            source: source.into(),
        }
    }
}
