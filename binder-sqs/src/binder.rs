//! The SPI implementation: binder and factory, capability manifest, health, and the
//! dead-letter queue reader used by tests and operators.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;
use stream_core::binder::{
    Backlog, BindError, Binder, BinderEnvironment, BinderFactory, Capabilities, ConsumerSpec,
    DeadLetterSource, Health, OrderingScope, Producer, ProducerSpec, ProvisionPlan, ServerAddress,
    Subscription,
};
use stream_core::config::redact_uris;
use stream_core::config::schema::Schema;
use stream_core::message::RawMessage;

use crate::config::{BinderSettings, DestinationMode};
use crate::consumer::SqsSubscription;
use crate::headers::{self, Attr};
use crate::naming;
use crate::producer::{SendTarget, SqsProducer, MAX_MESSAGE_BYTES};
use crate::provision::{describe, Clients, PartitionFilter, MAX_PARTITIONS};

/// The binder type name.
pub const BINDER_TYPE: &str = "sqs";

/// The capability manifest of the SQS/SNS binder.
///
/// * Ordering: per message group on FIFO topics/queues (partitioned bindings, `fifo: true` or
///   a `.fifo` destination); standard queues promise no order (one poller per binding keeps
///   the queue's delivery order, which SQS itself calls best-effort).
/// * Partitions are not native: a partitioned consumer instance gets a queue whose subscription
///   filters on the `partition` attribute.
/// * Payload: 256 KiB including attributes. Headers: 10 native attributes, the rest folded
///   into one; binary values survive.
pub fn capabilities() -> Capabilities {
    Capabilities {
        binder_type: BINDER_TYPE,
        ordering: OrderingScope::Partition,
        native_partitions: false,
        native_delay: false,
        max_payload_bytes: Some(MAX_MESSAGE_BYTES),
        max_headers: Some(headers::MAX_ATTRIBUTES),
        binary_headers: true,
        pause_resume: true,
        transactions: false,
        durable_groups: true,
        anonymous_sees_only_new: true,
        in_process: false,
        replay: false,
        rebalance_redelivers_in_hand: false,
        delayed_redelivery: true,
    }
}

/// A connected SQS/SNS binder.
pub struct SqsBinder {
    clients: Clients,
    capabilities: Capabilities,
}

impl fmt::Debug for SqsBinder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqsBinder")
            .field("settings", &self.clients.settings)
            .finish()
    }
}

fn wants_fifo(destination: &str, configured: bool, partitioned: bool) -> bool {
    configured || partitioned || naming::is_fifo_name(destination)
}

fn max_receive_count(spec: &ConsumerSpec, configured: Option<u32>) -> u32 {
    configured.unwrap_or_else(|| (spec.max_attempts.max(1).saturating_mul(5)).max(50))
}

impl SqsBinder {
    /// A binder over `clients`.
    pub fn new(clients: Clients) -> Self {
        SqsBinder {
            clients,
            capabilities: capabilities(),
        }
    }

    /// The binder's settings.
    pub fn settings(&self) -> &BinderSettings {
        &self.clients.settings
    }

    /// The queue a binding consumes (sns mode: `<destination>-<group>`, or the topic's name for
    /// an anonymous consumer, whose DLQ is named after it; sqs mode: `<destination>`).
    fn queue_of(
        &self,
        destination: &str,
        group: Option<&str>,
        mode: DestinationMode,
        fifo: bool,
    ) -> String {
        let prefix = &self.clients.settings.name_prefix;
        match (mode, group) {
            (DestinationMode::Sns, Some(g)) => {
                naming::group_queue(prefix, destination, g, None, fifo)
            }
            (DestinationMode::Sns, None) => naming::topic(prefix, destination, fifo),
            (DestinationMode::Sqs, _) => naming::direct_queue(prefix, destination, fifo),
        }
    }

    /// The queue a consumer binding reads, by its settings; `None` for an anonymous consumer
    /// in sns mode, whose temporary queue lives only while it is bound.
    fn consumed_queue(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
    ) -> Result<Option<String>, BindError> {
        let settings = self.clients.settings.consumer_for(spec)?;
        let mode = settings.destination_mode;
        if group.is_none() && mode == DestinationMode::Sns {
            return Ok(None);
        }
        let fifo = wants_fifo(destination, settings.fifo, spec.partitioned);
        check_redelivery_delays(spec, fifo)?;
        Ok(Some(self.queue_of(destination, group, mode, fifo)))
    }

    async fn queue_url(&self, queue: &str) -> Result<String, String> {
        match self
            .clients
            .sqs
            .get_queue_url()
            .queue_name(queue)
            .send()
            .await
        {
            Ok(out) => Ok(out.queue_url().unwrap_or_default().to_owned()),
            Err(e) => Err(describe(&e)),
        }
    }

    /// SQS's approximate number of visible messages in `queue`, if it exists.
    async fn visible_messages(&self, queue: &str) -> Option<u64> {
        let url = self.queue_url(queue).await.ok()?;
        let out = self
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .ok()?;
        out.attributes()?
            .get(&QueueAttributeName::ApproximateNumberOfMessages)?
            .parse()
            .ok()
    }

    /// Receives (and deletes) up to 10 messages waiting in the dead-letter queue of
    /// `destination`/`group` (sns mode: `<destination>-<group>-dlq`; sqs mode:
    /// `<destination>-dlq`), decoded like any delivery. Waits up to `wait_seconds` (0..=20).
    pub async fn take_dead_letters(
        &self,
        destination: &str,
        group: Option<&str>,
        mode: DestinationMode,
        fifo: bool,
        wait_seconds: u32,
    ) -> Result<Vec<RawMessage>, String> {
        let queue = self.queue_of(destination, group, mode, fifo);
        let url = self.queue_url(&naming::dlq(&queue)).await?;
        let mut found = Vec::new();
        for (msg, receipt) in self.receive(&url, 10, wait_seconds, None).await? {
            if let Some(r) = receipt {
                self.clients
                    .sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(r)
                    .send()
                    .await
                    .map_err(|e| describe(&e))?;
            }
            found.push(msg);
        }
        Ok(found)
    }

    /// Up to `max` (at most 10) messages of the queue at `url`, decoded, with their receipt
    /// handles; hidden for `visibility` seconds when given (else the queue's timeout).
    async fn receive(
        &self,
        url: &str,
        max: i32,
        wait_seconds: u32,
        visibility: Option<i32>,
    ) -> Result<Vec<(RawMessage, Option<String>)>, String> {
        let out = self
            .clients
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait_seconds.min(20) as i32)
            .set_visibility_timeout(visibility)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let mut found = Vec::new();
        for m in out.messages() {
            let mut attrs = HashMap::new();
            for (n, v) in m.message_attributes().into_iter().flatten() {
                if let Some(b) = v.binary_value() {
                    attrs.insert(n.clone(), Attr::Binary(b.as_ref().to_vec()));
                } else if let Some(s) = v.string_value() {
                    attrs.insert(n.clone(), Attr::Text(s.to_owned()));
                }
            }
            let msg = headers::decode(m.body().unwrap_or(""), &attrs).map_err(|e| e.to_string())?;
            found.push((msg, m.receipt_handle().map(str::to_owned)));
        }
        Ok(found)
    }

    /// Up to `count` messages of the queue at `url`, left there: each is received hidden
    /// (so the next receive gets others), then made visible again at once.
    async fn peek_queue(&self, url: &str, count: usize) -> Result<Vec<RawMessage>, String> {
        let mut found = Vec::new();
        let mut receipts = Vec::new();
        let mut failed = None;
        while found.len() < count {
            let want = i32::try_from(count - found.len()).unwrap_or(10);
            match self.receive(url, want, 0, Some(PEEK_HIDE_SECONDS)).await {
                Ok(got) if got.is_empty() => break,
                Ok(got) => {
                    for (msg, receipt) in got {
                        found.push(msg);
                        receipts.extend(receipt);
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        for r in receipts {
            let visible = self.clients.sqs.change_message_visibility().queue_url(url);
            if let Err(e) = visible.receipt_handle(r).visibility_timeout(0).send().await {
                tracing::warn!(error = %describe(&e), "a peeked dead letter stays hidden until its visibility timeout");
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(found),
        }
    }
}

/// How long a peeked message is hidden while `peek_dead_letters` reads on (it is made visible
/// again right after; this bounds how long it stays hidden if that fails).
const PEEK_HIDE_SECONDS: i32 = 30;

#[async_trait]
impl Binder for SqsBinder {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn bind_producer(
        &self,
        destination: &str,
        spec: &ProducerSpec,
    ) -> Result<Box<dyn Producer>, BindError> {
        let settings = self.clients.settings.producer_for(spec)?;
        if spec.partition_count > MAX_PARTITIONS {
            return Err(BindError::Config {
                key: format!(
                    "spring.cloud.stream.bindings.{}.producer.partition-count",
                    spec.binding
                ),
                message: format!(
                    "{} partitions exceed the sqs binder's limit of {MAX_PARTITIONS} (SNS filter policies)",
                    spec.partition_count
                ),
            });
        }
        let fifo = wants_fifo(destination, settings.fifo, spec.partition_count > 1);
        let prefix = self.clients.settings.name_prefix.as_str();
        let target = match settings.destination_mode {
            DestinationMode::Sns => {
                let topic = naming::topic(prefix, destination, fifo);
                let arn = self.clients.topic(&topic, fifo).await?;
                for g in &spec.required_groups {
                    self.clients
                        .provision_consumer(
                            destination,
                            Some(g),
                            DestinationMode::Sns,
                            fifo,
                            None,
                            50,
                        )
                        .await?;
                }
                SendTarget::Topic(arn)
            }
            DestinationMode::Sqs => {
                let name = naming::direct_queue(prefix, destination, fifo);
                let q = self.clients.queue(&name, fifo, false).await?;
                SendTarget::Queue(q.url)
            }
        };
        tracing::debug!(destination, binding = %spec.binding, fifo, target = ?target, "sqs producer bound");
        Ok(Box::new(SqsProducer::new(
            self.clients.clone(),
            destination.to_owned(),
            target,
            fifo,
        )))
    }

    async fn bind_consumer(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
    ) -> Result<Box<dyn Subscription>, BindError> {
        let settings = self.clients.settings.consumer_for(spec)?;
        if let Some(g) = group {
            if g.is_empty() {
                return Err(BindError::Config {
                    key: format!("spring.cloud.stream.bindings.{}.group", spec.binding),
                    message: "the group name is empty".into(),
                });
            }
        }
        let filter = if let Some((index, count)) = spec.partition()? {
            match settings.destination_mode {
                DestinationMode::Sns => Some(PartitionFilter { index, count }),
                DestinationMode::Sqs => {
                    tracing::warn!(binding = %spec.binding, "partitioned consumer on an sqs-mode queue: instances compete for all message groups (FIFO order per key still holds)");
                    None
                }
            }
        } else {
            None
        };
        let fifo = wants_fifo(destination, settings.fifo, spec.partitioned);
        let resources = self
            .clients
            .provision_consumer(
                destination,
                group,
                settings.destination_mode,
                fifo,
                filter,
                max_receive_count(spec, settings.max_receive_count),
            )
            .await?;
        Ok(Box::new(SqsSubscription::start(
            self.clients.clone(),
            destination,
            group,
            resources,
            &settings,
            spec.concurrency,
        )))
    }

    /// SQS's approximate visible messages of the binding's queue and of its DLQ (a group's;
    /// an anonymous consumer's temporary queue is not counted).
    async fn backlog(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
    ) -> Backlog {
        let Ok(Some(queue)) = self.consumed_queue(destination, group, spec) else {
            return Backlog::default();
        };
        Backlog {
            pending: self.visible_messages(&queue).await,
            dead_letters: self.visible_messages(&naming::dlq(&queue)).await,
        }
    }

    /// The DLQ, consumed as a queue (`destination-mode: sqs`).
    fn dead_letter_source(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
    ) -> Option<DeadLetterSource> {
        let dlq = naming::dlq(&self.consumed_queue(destination, group, spec).ok()??);
        let prefix = &self.clients.settings.name_prefix;
        Some(DeadLetterSource {
            destination: dlq.strip_prefix(prefix.as_str()).unwrap_or(&dlq).to_owned(),
            group: None,
            consumer: serde_json::json!({ "destination-mode": "sqs" }),
        })
    }

    async fn peek_dead_letters(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
        count: usize,
    ) -> Result<Vec<RawMessage>, BindError> {
        let Some(queue) = self.consumed_queue(destination, group, spec)? else {
            return Ok(Vec::new());
        };
        let dlq = naming::dlq(&queue);
        let failed = |e: String| BindError::Provision {
            resource: format!("SQS queue {dlq}"),
            source: e.into(),
        };
        let url = self.queue_url(&dlq).await.map_err(failed)?;
        self.peek_queue(&url, count).await.map_err(failed)
    }

    async fn health(&self) -> Health {
        match self.clients.ping().await {
            Ok(()) => Health::Up,
            Err(e) => Health::Down(e),
        }
    }
}

/// Creates SQS/SNS binders (type `sqs`).
///
/// Environment keys (also readable from `spring.cloud.stream.sqs.binder.*`): `region`,
/// `endpoint`, `name-prefix`, `auto-create` (default true), `access-key`/`secret-key`/
/// `session-token` (static credentials; otherwise the default AWS chain), and `consumer.*`/
/// `producer.*` defaults for every binding (see [`crate::config`]).
#[derive(Debug, Default)]
pub struct SqsBinderFactory;

impl SqsBinderFactory {
    /// A factory.
    pub fn new() -> Self {
        SqsBinderFactory
    }
}

#[async_trait]
impl BinderFactory for SqsBinderFactory {
    fn binder_type(&self) -> &'static str {
        BINDER_TYPE
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    fn config_schema(&self) -> Option<Schema> {
        Some(crate::config::schema())
    }

    fn environment_schema(&self) -> Option<Schema> {
        Some(crate::config::environment_schema())
    }

    async fn create(
        &self,
        name: &str,
        environment: &BinderEnvironment,
    ) -> Result<Arc<dyn Binder>, BindError> {
        let settings = BinderSettings::from_environment(name, environment)?;
        tracing::debug!(binder = name, settings = ?settings, "creating sqs binder");
        Ok(Arc::new(SqsBinder::new(Clients::connect(settings).await)))
    }

    fn plan_consumer(
        &self,
        destination: &str,
        group: Option<&str>,
        _spec: &ConsumerSpec,
    ) -> ProvisionPlan {
        let topic = naming::topic("", destination, naming::is_fifo_name(destination));
        let fifo = naming::is_fifo_name(destination);
        match group {
            Some(g) => {
                let queue = naming::group_queue("", destination, g, None, fifo);
                ProvisionPlan {
                    dlq: Some(naming::dlq(&queue)),
                    resources: vec![
                        format!("SNS topic {topic}"),
                        format!("SQS queue {queue} (subscribed, raw delivery; redrive to its DLQ)"),
                    ],
                }
            }
            None => ProvisionPlan {
                dlq: Some(naming::dlq(&topic)),
                resources: vec![
                    format!("SNS topic {topic}"),
                    format!(
                        "temporary SQS queue {}-anon-<id> (removed on close)",
                        naming::sanitize(destination)
                    ),
                ],
            },
        }
    }

    fn plan_producer(&self, destination: &str, spec: &ProducerSpec) -> ProvisionPlan {
        let fifo = wants_fifo(destination, false, spec.partition_count > 1);
        let topic = naming::topic("", destination, fifo);
        let mut resources = vec![format!("SNS topic {topic}")];
        for g in &spec.required_groups {
            resources.push(format!(
                "SQS queue {} (subscribed)",
                naming::group_queue("", destination, g, None, fifo)
            ));
        }
        ProvisionPlan {
            dlq: None,
            resources,
        }
    }

    fn server(&self, name: &str, environment: &BinderEnvironment) -> Option<ServerAddress> {
        let settings = BinderSettings::from_environment(name, environment).ok()?;
        let host = match &settings.endpoint {
            Some(e) => redact_uris(e.split_once("://").map_or(e.as_str(), |(_, h)| h)),
            None => format!("sqs.{}.amazonaws.com", settings.region()),
        };
        Some(ServerAddress {
            protocol: "sqs".to_owned(),
            host: host.trim_end_matches('/').to_owned(),
        })
    }
}

/// SQS delays a message by `DelaySeconds`: at most 15 minutes, and not per message on a FIFO
/// queue (whose order a later copy would break anyway).
fn check_redelivery_delays(spec: &ConsumerSpec, fifo: bool) -> Result<(), BindError> {
    const MAX: std::time::Duration = std::time::Duration::from_secs(900);
    let key = || {
        format!(
            "spring.cloud.stream.bindings.{}.consumer.redelivery-delays",
            spec.binding
        )
    };
    if fifo && !spec.redelivery_delays.is_empty() {
        return Err(BindError::Config {
            key: key(),
            message: "not supported on a FIFO queue (SQS has no per-message delay there)".into(),
        });
    }
    match spec.redelivery_delays.iter().any(|d| *d > MAX) {
        true => Err(BindError::Config {
            key: key(),
            message: "SQS delays a message by at most 15 minutes (DelaySeconds 900)".into(),
        }),
        false => Ok(()),
    }
}
