//! The factory and the binder: connects, provisions, and creates producers and subscriptions.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, Producer as _};
use rdkafka::ClientConfig;
use stream_core::binder::{
    Backlog, BatchLimits, BindError, Binder, BinderEnvironment, BinderFactory, Capabilities,
    ConsumerSpec, DeadLetterSource, Health, OrderingScope, Producer, ProducerSpec, ProvisionPlan,
    ServerAddress, Subscription,
};
use stream_core::config::Schema;
use stream_core::expr::Expression;
use stream_core::message::RawMessage;
use stream_core::runtime::dead_letters::READER_GROUP;

use crate::client::{client_config, create_error};
use crate::config::{
    flatten_properties, KafkaBinderConfig, KafkaConsumerProps, KafkaProducerProps, StartOffset,
};
use crate::consumer::{Assignment, DlqTarget, KafkaSubscription, RetryTarget, SubscribeArgs};
use crate::producer::KafkaProducer;
use crate::provision::{Provisioner, METADATA_TIMEOUT};
use crate::retry::{retry_topic, WithRetryTopics};

/// The binder type name.
pub const BINDER_TYPE: &str = "kafka";

/// The producers' default `message.max.bytes` (librdkafka's default, close to Kafka's 1 MiB
/// broker limit); raise it with `producer-properties` where the broker allows more.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_000_000;

/// The capability manifest of the Kafka binder.
pub fn capabilities() -> Capabilities {
    Capabilities {
        binder_type: BINDER_TYPE,
        ordering: OrderingScope::Partition,
        native_partitions: true,
        native_delay: false,
        max_payload_bytes: Some(DEFAULT_MAX_MESSAGE_BYTES),
        max_headers: None,
        binary_headers: true,
        pause_resume: true,
        transactions: false,
        durable_groups: true,
        anonymous_sees_only_new: true,
        in_process: false,
        replay: true,
        rebalance_redelivers_in_hand: true,
        delayed_redelivery: true,
    }
}

/// The dead-letter topic of a binding: `dlq-name`, else `error.<destination>.<group>`.
pub fn dlq_name(destination: &str, group: &str, configured: Option<&str>) -> String {
    configured
        .map(str::to_owned)
        .unwrap_or_else(|| format!("error.{destination}.{group}"))
}

/// A configured `dlq-name` (an empty one is none).
fn configured_dlq(props: &KafkaConsumerProps) -> Option<&str> {
    props.dlq_name.as_deref().filter(|s| !s.is_empty())
}

/// Creates Kafka binders (type `kafka`).
#[derive(Clone, Debug, Default)]
pub struct KafkaBinderFactory;

impl KafkaBinderFactory {
    /// A factory.
    pub fn new() -> Self {
        KafkaBinderFactory
    }
}

#[async_trait]
impl BinderFactory for KafkaBinderFactory {
    fn binder_type(&self) -> &'static str {
        BINDER_TYPE
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    async fn create(
        &self,
        name: &str,
        environment: &BinderEnvironment,
    ) -> Result<Arc<dyn Binder>, BindError> {
        let cfg = KafkaBinderConfig::from_environment(name, environment)?;
        Ok(Arc::new(KafkaBinder::connect(name, cfg).await?))
    }

    fn config_schema(&self) -> Option<Schema> {
        Some(crate::config::schema())
    }

    fn environment_schema(&self) -> Option<Schema> {
        Some(crate::config::environment_schema())
    }

    fn plan_consumer(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
    ) -> ProvisionPlan {
        // The plan sees the binding's kafka properties (with `kafka.default.consumer` merged
        // in by the core); a binder's own `environment` defaults are applied only at bind time.
        let Ok(props) = spec.props::<KafkaConsumerProps>() else {
            return ProvisionPlan::default();
        };
        let mut resources = vec![format!("kafka topic {destination}")];
        let dlq = match group {
            Some(g) => {
                resources.push(format!("consumer group {g}"));
                props
                    .enable_dlq
                    .then(|| dlq_name(destination, g, configured_dlq(&props)))
            }
            None => {
                resources.push("anonymous consumer group (starts at latest)".into());
                None
            }
        };
        if let Some(topic) = &dlq {
            resources.push(format!("kafka topic {topic} (dead letters)"));
        }
        for (g, delay) in group
            .iter()
            .flat_map(|g| spec.redelivery_delays.iter().map(move |d| (g, d)))
        {
            let topic = retry_topic(destination, g, *delay);
            resources.push(format!(
                "kafka topic {topic} (redeliveries after {} ms)",
                delay.as_millis()
            ));
        }
        ProvisionPlan { dlq, resources }
    }

    fn plan_producer(&self, destination: &str, spec: &ProducerSpec) -> ProvisionPlan {
        ProvisionPlan {
            dlq: None,
            resources: vec![format!(
                "kafka topic {destination} (>= {} partition(s))",
                spec.partition_count.max(1)
            )],
        }
    }

    fn server(&self, name: &str, environment: &BinderEnvironment) -> Option<ServerAddress> {
        let config = KafkaBinderConfig::from_environment(name, environment).ok()?;
        Some(ServerAddress {
            protocol: "kafka".to_owned(),
            host: config.brokers,
        })
    }
}

/// A connected Kafka binder.
pub struct KafkaBinder {
    name: String,
    cfg: Arc<KafkaBinderConfig>,
    capabilities: Capabilities,
    provisioner: Provisioner,
    /// Producers by effective configuration (bindings with equal settings share one).
    producers: Mutex<HashMap<BTreeMap<String, String>, FutureProducer>>,
    meta: FutureProducer,
    last_healthy: Mutex<Instant>,
}

impl std::fmt::Debug for KafkaBinder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBinder")
            .field("name", &self.name)
            .field("brokers", &self.cfg.brokers)
            .finish_non_exhaustive()
    }
}

impl KafkaBinder {
    /// Connects to the brokers of `cfg` (a metadata request must succeed).
    pub async fn connect(name: &str, cfg: KafkaBinderConfig) -> Result<Self, BindError> {
        let cfg = Arc::new(cfg);
        let admin_cfg = client_config(&cfg, &[]);
        let admin: AdminClient<DefaultClientContext> = admin_cfg
            .create()
            .map_err(|e| create_error("admin client", &admin_cfg, e))?;
        let binder = KafkaBinder {
            name: name.to_owned(),
            capabilities: capabilities(),
            producers: Mutex::new(HashMap::new()),
            meta: admin_cfg
                .create()
                .map_err(|e| create_error("metadata client", &admin_cfg, e))?,
            provisioner: Provisioner::new(
                Arc::clone(&cfg),
                Arc::new(admin),
                admin_cfg
                    .create()
                    .map_err(|e| create_error("metadata client", &admin_cfg, e))?,
            ),
            cfg,
            last_healthy: Mutex::new(Instant::now()),
        };
        binder
            .reachable(METADATA_TIMEOUT)
            .await
            .map_err(|e| BindError::Connect {
                what: format!("kafka brokers {}", binder.cfg.brokers),
                source: e.into(),
            })?;
        tracing::info!(
            binder = name,
            brokers = %binder.cfg.brokers,
            configuration = ?crate::config::redacted(&binder.cfg.configuration),
            "kafka binder connected"
        );
        Ok(binder)
    }

    /// The effective binder configuration.
    pub fn config(&self) -> &KafkaBinderConfig {
        &self.cfg
    }

    /// A client that reads as group `group` from outside (its committed offsets, assigned
    /// partitions): it joins nothing and commits nothing.
    fn reader_of(&self, group: &str) -> ClientConfig {
        let reader = BTreeMap::from([
            ("group.id".to_owned(), group.to_owned()),
            ("enable.auto.commit".to_owned(), "false".to_owned()),
        ]);
        client_config(&self.cfg, &[&self.cfg.consumer_properties, &reader])
    }

    /// The DLQ topic of a consumer binding (`enable-dlq` with a group), as `bind_consumer`
    /// names it.
    fn dlq_topic(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
    ) -> Result<Option<String>, BindError> {
        let props = spec.props_over::<KafkaConsumerProps>(&self.cfg.default_consumer)?;
        Ok(group
            .filter(|_| props.enable_dlq)
            .map(|g| dlq_name(destination, g, configured_dlq(&props))))
    }

    async fn reachable(&self, timeout: Duration) -> Result<(), String> {
        let meta = self.meta.clone();
        tokio::task::spawn_blocking(move || {
            meta.client()
                .fetch_metadata(None, timeout)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    fn producer_settings(&self, layers: &[&BTreeMap<String, String>]) -> BTreeMap<String, String> {
        let mut base = BTreeMap::new();
        let idempotent = matches!(self.cfg.props.required_acks.as_str(), "all" | "-1");
        base.insert("acks".to_owned(), self.cfg.props.required_acks.clone());
        base.insert("enable.idempotence".to_owned(), idempotent.to_string());
        base.insert("partitioner".to_owned(), "murmur2_random".to_owned());
        base.insert("linger.ms".to_owned(), "5".to_owned());
        let mut out = BTreeMap::new();
        out.insert("bootstrap.servers".to_owned(), self.cfg.brokers.clone());
        out.extend(self.cfg.configuration.clone());
        out.extend(base);
        out.extend(self.cfg.producer_properties.clone());
        for l in layers {
            out.extend((*l).clone());
        }
        out
    }

    /// A producer for these settings (shared between bindings with equal settings).
    fn producer_for(
        &self,
        settings: BTreeMap<String, String>,
    ) -> Result<FutureProducer, BindError> {
        let mut cache = self.producers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.get(&settings) {
            return Ok(p.clone());
        }
        let mut c = ClientConfig::new();
        for (k, v) in &settings {
            c.set(k, v);
        }
        let p: FutureProducer = c.create().map_err(|e| create_error("producer", &c, e))?;
        cache.insert(settings, p.clone());
        Ok(p)
    }

    /// The librdkafka consumer properties of a binding: the group and offset handling, then
    /// `consumer-properties` and the binding's `configuration` (which may not set the group).
    fn consumer_config(
        &self,
        group_id: &str,
        start: StartOffset,
        anonymous: bool,
        props: &KafkaConsumerProps,
        spec: &ConsumerSpec,
    ) -> Result<ClientConfig, BindError> {
        let mut base = BTreeMap::new();
        base.insert("group.id".to_owned(), group_id.to_owned());
        base.insert("enable.auto.commit".to_owned(), (!anonymous).to_string());
        base.insert("enable.auto.offset.store".to_owned(), "false".to_owned());
        base.insert("auto.commit.interval.ms".to_owned(), "1000".to_owned());
        base.insert("auto.offset.reset".to_owned(), start.as_str().to_owned());
        base.insert("enable.partition.eof".to_owned(), "false".to_owned());
        let configuration = flatten_properties(&props.configuration);
        let layers = [&base, &self.cfg.consumer_properties, &configuration];
        let config = client_config(&self.cfg, &layers);
        if config.get("group.id") != Some(group_id) {
            return Err(BindError::Config {
                key: format!(
                    "spring.cloud.stream.kafka.bindings.{}.consumer.configuration.group.id",
                    spec.binding
                ),
                message: "the group id comes from the binding's `group`".into(),
            });
        }
        Ok(config)
    }

    /// The DLQ topic (created now) and its producer, with `enable-dlq` and a group.
    async fn dlq_target(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
        props: &KafkaConsumerProps,
        partitions: u32,
    ) -> Result<Option<DlqTarget>, BindError> {
        let Some(g) = group.filter(|_| props.enable_dlq) else {
            if props.enable_dlq {
                tracing::warn!(binding = %spec.binding, "enable-dlq needs a group; anonymous bindings have no DLQ");
            }
            return Ok(None);
        };
        let topic = dlq_name(destination, g, configured_dlq(props));
        let dlq_partitions = props.dlq_partitions.unwrap_or(partitions);
        let dlq_partitions = self.provisioner.ensure(&topic, dlq_partitions, 1).await?;
        let dlq_properties = flatten_properties(&props.dlq_producer_properties);
        let settings = self.producer_settings(&[&dlq_properties]);
        let max_message_bytes = Self::max_message_bytes(&settings);
        Ok(Some(DlqTarget {
            producer: self.producer_for(settings)?,
            topic,
            partitions: dlq_partitions,
            group: g.to_owned(),
            max_message_bytes,
        }))
    }

    /// The retry topics of `redelivery-delays` (created now, with the source topic's
    /// partition count) and their producer; `None` without delays.
    async fn retry_target(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
        partitions: u32,
    ) -> Result<Option<Arc<RetryTarget>>, BindError> {
        if spec.redelivery_delays.is_empty() {
            return Ok(None);
        }
        let Some(g) = group else {
            return Err(BindError::Unsupported(format!(
                "`redelivery-delays` on Kafka needs a `group` (binding {}): its retry topics are read by the group",
                spec.binding
            )));
        };
        let mut topics = Vec::new();
        for delay in &spec.redelivery_delays {
            let topic = retry_topic(destination, g, *delay);
            self.provisioner.ensure(&topic, partitions, 1).await?;
            topics.push((*delay, topic));
        }
        let settings = self.producer_settings(&[]);
        let max_message_bytes = Self::max_message_bytes(&settings);
        Ok(Some(Arc::new(RetryTarget {
            producer: self.producer_for(settings)?,
            topics,
            max_message_bytes,
        })))
    }

    fn max_message_bytes(settings: &BTreeMap<String, String>) -> usize {
        settings
            .get("message.max.bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES)
    }
}

#[async_trait]
impl Binder for KafkaBinder {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn bind_producer(
        &self,
        destination: &str,
        spec: &ProducerSpec,
    ) -> Result<Box<dyn Producer>, BindError> {
        let props = spec.props_over::<KafkaProducerProps>(&self.cfg.default_producer)?;
        let key_expression = props
            .message_key_expression
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(Expression::parse)
            .transpose()
            .map_err(|e| BindError::Config {
                key: format!(
                    "spring.cloud.stream.kafka.bindings.{}.producer.message-key-expression",
                    spec.binding
                ),
                message: e.to_string(),
            })?;
        let mut derived = BTreeMap::new();
        if let Some(c) = props.compression() {
            derived.insert("compression.type".to_owned(), c.as_str().to_owned());
        }
        if let Some(b) = props.buffer_size {
            derived.insert("batch.size".to_owned(), b.max(1).to_string());
        }
        if let Some(l) = props.batch_timeout {
            derived.insert("linger.ms".to_owned(), l.to_string());
        }
        let configuration = flatten_properties(&props.configuration);
        let settings = self.producer_settings(&[&derived, &configuration]);
        let max = Self::max_message_bytes(&settings);
        let producer = self.producer_for(settings)?;
        let partitions = self
            .provisioner
            .ensure(
                destination,
                spec.partition_count.max(1),
                spec.partition_count.max(1),
            )
            .await?;
        tracing::debug!(binder = %self.name, destination, binding = %spec.binding, partitions, "kafka producer bound");
        Ok(Box::new(KafkaProducer::new(
            producer,
            destination,
            key_expression,
            Duration::from_secs(props.close_timeout),
            max,
        )))
    }

    async fn bind_consumer(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
    ) -> Result<Box<dyn Subscription>, BindError> {
        let props = spec.props_over::<KafkaConsumerProps>(&self.cfg.default_consumer)?;
        if group.is_some_and(|g| g.trim().is_empty()) {
            return Err(BindError::Config {
                key: format!("spring.cloud.stream.bindings.{}.group", spec.binding),
                message: "the group name is empty".into(),
            });
        }
        spec.partition()?;
        let create_with = spec
            .instance_count
            .max(1)
            .saturating_mul(spec.concurrency.max(1));
        let partitions = self.provisioner.ensure(destination, create_with, 1).await?;
        let anonymous = group.is_none();
        let group_id = match group {
            Some(g) => g.to_owned(),
            None => format!("anonymous.{}", uuid::Uuid::new_v4().simple()),
        };
        let start = props.start_offset.unwrap_or(if anonymous {
            StartOffset::Latest
        } else {
            StartOffset::Earliest
        });
        let mut config = self.consumer_config(&group_id, start, anonymous, &props, spec)?;
        let batch = take_max_poll_records(&mut config, &spec.binding)?;
        let assignment = assignment(spec, &props, anonymous, partitions, start);
        let per_lane = crate::consumer::PREFETCH_PER_CONCURRENCY;
        let prefetch =
            (spec.concurrency.max(1) as usize * per_lane).max(crate::consumer::MIN_PREFETCH);
        let args = SubscribeArgs {
            config,
            topic: destination.to_owned(),
            assignment,
            dlq: self
                .dlq_target(destination, group, spec, &props, partitions)
                .await?,
            commits: !anonymous,
            reset_to_latest: (props.reset_offsets && !anonymous)
                .then_some(start == StartOffset::Latest),
            prefetch: batch.prefetch(spec, prefetch),
            batch,
            retry: self
                .retry_target(destination, group, spec, partitions)
                .await?,
        };
        tracing::debug!(
            binder = %self.name, destination, group = %group_id, binding = %spec.binding,
            partitions, assignment = ?args.assignment, "kafka consumer bound"
        );
        open_with_retry_topics(args).await
    }

    /// The group's lag on `destination` and the records retained in its DLQ topic
    /// (`enable-dlq`); an anonymous consumer is not counted.
    async fn backlog(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
    ) -> Backlog {
        let (Some(g), Ok(dlq)) = (group, self.dlq_topic(destination, group, spec)) else {
            return Backlog::default();
        };
        let (config, dlq_reader) = (self.reader_of(g), self.reader_of(READER_GROUP));
        let topic = destination.to_owned();
        // Dead letters not replayed or purged yet: the DLQ reader group's lag (the whole
        // topic while it has committed nothing).
        tokio::task::spawn_blocking(move || Backlog {
            pending: crate::backlog::lag(&config, &topic),
            dead_letters: dlq.and_then(|t| crate::backlog::lag(&dlq_reader, &t)),
        })
        .await
        .unwrap_or_default()
    }

    /// The DLQ topic, read by group `cloud-stream-dlq` (its committed offsets are how far
    /// replays and purges got).
    fn dead_letter_source(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
    ) -> Option<DeadLetterSource> {
        Some(DeadLetterSource {
            destination: self.dlq_topic(destination, group, spec).ok()??,
            group: Some(READER_GROUP.to_owned()),
            consumer: serde_json::json!({}),
        })
    }

    async fn peek_dead_letters(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
        count: usize,
    ) -> Result<Vec<RawMessage>, BindError> {
        let Some(topic) = self.dlq_topic(destination, group, spec)? else {
            return Ok(Vec::new());
        };
        // From where replays and purges got (the DLQ reader group's offsets).
        let config = self.reader_of(READER_GROUP);
        let t = topic.clone();
        let read =
            tokio::task::spawn_blocking(move || crate::backlog::first_records(&config, &t, count));
        match read.await {
            Ok(Some(records)) => Ok(records),
            _ => Err(BindError::Provision {
                resource: format!("kafka topic {topic}"),
                source: "cannot read it (missing, or the brokers did not answer)".into(),
            }),
        }
    }

    async fn health(&self) -> Health {
        let probe = Duration::from_secs(self.cfg.props.health_timeout)
            .clamp(Duration::from_millis(200), Duration::from_secs(2));
        match self.reachable(probe).await {
            Ok(()) => {
                *self.last_healthy.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                Health::Up
            }
            Err(e) => {
                let since = self
                    .last_healthy
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .elapsed();
                if since >= Duration::from_secs(self.cfg.props.health_timeout) {
                    Health::Down(format!(
                        "kafka brokers {} unreachable for {} s: {e}",
                        self.cfg.brokers,
                        since.as_secs()
                    ))
                } else {
                    Health::Up
                }
            }
        }
    }

    async fn close(&self) {
        let producers: Vec<FutureProducer> = self
            .producers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, p)| p)
            .collect();
        let _ = tokio::task::spawn_blocking(move || {
            for p in producers {
                let _ = p.flush(Duration::from_secs(10));
            }
        })
        .await;
    }
}

/// Group management, or (anonymous, partitioned, `auto-rebalance-enabled: false`) this
/// instance's own partitions.
fn assignment(
    spec: &ConsumerSpec,
    props: &KafkaConsumerProps,
    anonymous: bool,
    partitions: u32,
    start: StartOffset,
) -> Assignment {
    if !(anonymous || spec.partitioned || !props.auto_rebalance_enabled) {
        return Assignment::Group;
    }
    let instance_count = spec.instance_count.max(1);
    let mine: Vec<i32> = (0..partitions as i32)
        .filter(|p| !spec.partitioned || (*p as u32) % instance_count == spec.instance_index)
        .collect();
    Assignment::Static {
        partitions: mine,
        start_latest: start == StartOffset::Latest,
        use_committed: !anonymous,
    }
}

/// Opens the subscription, and with `redelivery-delays` one per retry topic beside it.
async fn open_with_retry_topics(args: SubscribeArgs) -> Result<Box<dyn Subscription>, BindError> {
    let retries = retry_args(&args);
    let main = KafkaSubscription::open(args).await?;
    if retries.is_empty() {
        return Ok(Box::new(main));
    }
    let mut subs: Vec<Box<dyn Subscription>> = Vec::new();
    for args in retries {
        subs.push(Box::new(KafkaSubscription::open(args).await?));
    }
    Ok(Box::new(WithRetryTopics::new(Box::new(main), subs)))
}

/// The subscriptions of the retry topics of `main` (same group and DLQ, reading each retry
/// topic from its start).
fn retry_args(main: &SubscribeArgs) -> Vec<SubscribeArgs> {
    let Some(retry) = &main.retry else {
        return Vec::new();
    };
    let mut config = main.config.clone();
    config.set("auto.offset.reset", "earliest");
    let assignment = match &main.assignment {
        Assignment::Static {
            partitions,
            use_committed,
            ..
        } => Assignment::Static {
            partitions: partitions.clone(),
            start_latest: false,
            use_committed: *use_committed,
        },
        Assignment::Group => Assignment::Group,
    };
    retry
        .topics
        .iter()
        .map(|(_, topic)| SubscribeArgs {
            config: config.clone(),
            topic: topic.clone(),
            assignment: assignment.clone(),
            dlq: main.dlq.clone(),
            commits: main.commits,
            reset_to_latest: None,
            prefetch: main.prefetch,
            batch: main.batch,
            retry: Some(Arc::clone(retry)),
        })
        .collect()
}

/// The Java client's `max.poll.records` (default 500), which librdkafka does not know: taken
/// out of the client properties, it is the batch size of a `batch-mode` binding, whose batch is
/// what the poller has fetched and queued.
fn take_max_poll_records(
    config: &mut ClientConfig,
    binding: &str,
) -> Result<BatchLimits, BindError> {
    const KEY: &str = "max.poll.records";
    // The batch is held in memory (the poller queues up to a batch): bounded.
    const MAX: usize = 10_000;
    let max_messages = match config.get(KEY).map(|v| v.trim().parse::<usize>()) {
        None => 500,
        Some(Ok(n)) if (1..=MAX).contains(&n) => n,
        Some(_) => {
            return Err(BindError::Config {
                key: format!(
                    "spring.cloud.stream.kafka.bindings.{binding}.consumer.configuration.{KEY}"
                ),
                message: format!("expected an integer from 1 to {MAX}"),
            })
        }
    };
    config.remove(KEY);
    Ok(BatchLimits {
        max_messages,
        receive_timeout: std::time::Duration::ZERO,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_poll_records_sizes_batches_and_never_reaches_librdkafka() {
        let limits = |value: Option<&str>| {
            let mut config = ClientConfig::new();
            if let Some(v) = value {
                config.set("max.poll.records", v);
            }
            let limits = take_max_poll_records(&mut config, "b-in-0");
            assert_eq!(
                config.get("max.poll.records"),
                value.filter(|_| limits.is_err())
            );
            limits.map(|l| l.max_messages)
        };
        assert_eq!(limits(None).ok(), Some(500));
        assert_eq!(limits(Some(" 25 ")).ok(), Some(25));
        for bad in ["0", "-1", "many", "10001"] {
            let err = limits(Some(bad)).unwrap_err().to_string();
            assert!(
                err.contains("consumer.configuration.max.poll.records"),
                "{err}"
            );
        }
    }
}
