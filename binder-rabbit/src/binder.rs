//! The binder and its factory.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use stream_core::binder::{
    Backlog, BindError, Binder, BinderEnvironment, BinderFactory, Capabilities, ConsumerSpec,
    DeadLetterSource, Health, OrderingScope, Producer, ProducerSpec, ProvisionPlan, ServerAddress,
    Subscription,
};
use stream_core::config::Schema;
use stream_core::message::RawMessage;

use crate::config::connection_settings;
use crate::connection::{boxed, Connector};
use crate::consumer::{ConsumerCtx, RabbitSubscription};
use crate::producer::RabbitProducer;
use crate::props::{ConsumerProps, ProducerProps};
use crate::provision::{
    declare_exchange, declare_group_queue, get_up_to, group_plan, ready_messages, QueuePlan,
};
use crate::publisher::Publisher;

/// The binder type name.
pub const BINDER_TYPE: &str = "rabbit";

/// Largest message RabbitMQ accepts by default (`max_message_size`, 128 MiB).
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024 * 1024;

/// How long [`Binder::health`] waits for a reconnect attempt.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// The capability manifest of the RabbitMQ binder.
pub fn capabilities() -> Capabilities {
    Capabilities {
        binder_type: BINDER_TYPE,
        ordering: OrderingScope::SingleConsumer,
        native_partitions: false,
        native_delay: false,
        max_payload_bytes: Some(MAX_MESSAGE_BYTES),
        max_headers: None,
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

/// A binder connected (lazily, with reconnects) to one RabbitMQ.
pub struct RabbitBinder {
    connector: Arc<Connector>,
    capabilities: Capabilities,
}

impl std::fmt::Debug for RabbitBinder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitBinder")
            .field("addresses", &self.connector.display())
            .finish()
    }
}

fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl RabbitBinder {
    /// Connects binder `name` with `environment` (see the crate docs for the keys). Fails with
    /// [`BindError::Connect`] when no address is reachable.
    pub async fn connect(name: &str, environment: &BinderEnvironment) -> Result<Self, BindError> {
        let settings = connection_settings(name, environment)?;
        let connector = Arc::new(Connector::new(name, settings));
        connector.live().await.map_err(|e| e.into_bind())?;
        Ok(RabbitBinder {
            connector,
            capabilities: capabilities(),
        })
    }

    /// Takes (and acks) up to `max` messages waiting in `queue`, e.g. a dead-letter queue
    /// `<destination>.<group>.dlq`, for inspection and tooling.
    pub async fn take_from_queue(
        &self,
        queue: &str,
        max: usize,
    ) -> Result<Vec<RawMessage>, BindError> {
        let live = self.connector.live().await.map_err(|e| e.into_bind())?;
        get_up_to(&live, queue, max, true).await
    }
}

/// The partitions a producer's `required-groups` queues exist for (`None` = not partitioned).
fn partitions_of(spec: &ProducerSpec) -> Vec<Option<u32>> {
    if spec.partition_count > 1 {
        (0..spec.partition_count).map(Some).collect()
    } else {
        vec![None]
    }
}

/// The queue (and DLQ) of group `group` on `destination`, as `bind_consumer` declares them.
fn group_queues(
    destination: &str,
    group: &str,
    spec: &ConsumerSpec,
) -> Result<QueuePlan, BindError> {
    let props = ConsumerProps::parse(spec)?;
    Ok(group_plan(
        destination,
        group,
        partition_of(spec)?,
        &props.queue,
    ))
}

fn partition_of(spec: &ConsumerSpec) -> Result<Option<u32>, BindError> {
    Ok(spec.partition()?.map(|(index, _)| index))
}

#[async_trait]
impl Binder for RabbitBinder {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn bind_producer(
        &self,
        destination: &str,
        spec: &ProducerSpec,
    ) -> Result<Box<dyn Producer>, BindError> {
        let props = ProducerProps::parse(spec)?;
        let exchange = props.queue.exchange_name(destination);
        let live = self.connector.live().await.map_err(|e| e.into_bind())?;
        let ch = live.channel().await.map_err(|e| BindError::Connect {
            what: format!("RabbitMQ at {}", self.connector.display()),
            source: boxed(&e),
        })?;
        declare_exchange(&ch, &exchange, &props.queue.exchange).await?;
        for g in &spec.required_groups {
            for p in partitions_of(spec) {
                let plan = group_plan(destination, g, p, &props.queue);
                declare_group_queue(&live, &ch, &plan, &props.queue, false, false).await?;
            }
        }
        let _ = ch.close(200, "provisioned".into()).await;
        let publisher = Publisher::new(
            Arc::clone(&self.connector),
            Some((exchange.clone(), props.queue.exchange.clone())),
        );
        // Open the confirm channel now so the first send does not pay for it.
        publisher.channel().await.map_err(|e| BindError::Connect {
            what: format!("RabbitMQ at {}", self.connector.display()),
            source: e.into(),
        })?;
        tracing::debug!(destination, binding = %spec.binding, exchange = %exchange, partitions = spec.partition_count.max(1), required_groups = ?spec.required_groups, "rabbit producer bound");
        Ok(Box::new(RabbitProducer {
            publisher,
            destination: destination.to_owned(),
            exchange,
            props,
        }))
    }

    async fn bind_consumer(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
    ) -> Result<Box<dyn Subscription>, BindError> {
        let props = ConsumerProps::parse(spec)?;
        let partition = partition_of(spec)?;
        if group.is_none() && !spec.redelivery_delays.is_empty() {
            // A wait queue outlives the consumer; an anonymous queue does not.
            return Err(BindError::Unsupported(format!(
                "`redelivery-delays` on RabbitMQ needs a `group` (binding {}): its wait queues are durable",
                spec.binding
            )));
        }
        let mut plan = match group {
            Some(g) => group_plan(destination, g, partition, &props.queue),
            None => {
                let mut p = group_plan(destination, "anonymous", partition, &props.queue);
                p.dead_letter = None;
                p
            }
        };
        plan.durable = group.is_some() && props.durable_subscription;
        let anonymous_name = format!(
            "{}{}{}",
            props.queue.prefix,
            props.anonymous_prefix,
            random_suffix()
        );
        let ctx = ConsumerCtx {
            connector: Arc::clone(&self.connector),
            destination: destination.to_owned(),
            group: group.map(str::to_owned),
            plan,
            props,
            anonymous_name,
            dlq: Publisher::new(Arc::clone(&self.connector), None),
            delays: spec.redelivery_delays.clone(),
        };
        Ok(Box::new(RabbitSubscription::start(ctx).await?))
    }

    /// Ready messages of the group queue and of its DLQ (`auto-bind-dlq`), by passive
    /// declarations; an anonymous subscription's queue is not looked up.
    async fn backlog(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
    ) -> Backlog {
        let Some(Ok(plan)) = group.map(|g| group_queues(destination, g, spec)) else {
            return Backlog::default();
        };
        let Ok(live) = self.connector.live().await else {
            return Backlog::default();
        };
        let dead_letters = match &plan.dead_letter {
            Some(dl) => ready_messages(&live, &dl.queue).await,
            None => None,
        };
        Backlog {
            pending: ready_messages(&live, &plan.queue).await,
            dead_letters,
        }
    }

    /// The DLQ itself, consumed through the dead-letter exchange (Spring's documented pattern).
    fn dead_letter_source(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
    ) -> Option<DeadLetterSource> {
        let dl = group_queues(destination, group?, spec).ok()?.dead_letter?;
        Some(DeadLetterSource {
            destination: dl.exchange,
            group: Some(dl.queue),
            consumer: serde_json::json!({
                "queue-name-group-only": true,
                "exchange-type": "direct",
                "binding-routing-key": dl.routing_key,
                "auto-bind-dlq": false,
            }),
        })
    }

    async fn peek_dead_letters(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
        count: usize,
    ) -> Result<Vec<RawMessage>, BindError> {
        let Some(g) = group else {
            return Ok(Vec::new());
        };
        let Some(dl) = group_queues(destination, g, spec)?.dead_letter else {
            return Ok(Vec::new());
        };
        let live = self.connector.live().await.map_err(|e| e.into_bind())?;
        get_up_to(&live, &dl.queue, count, false).await
    }

    async fn health(&self) -> Health {
        if self.connector.is_closed() {
            return Health::Down("binder closed".into());
        }
        if self.connector.is_up() {
            return Health::Up;
        }
        match tokio::time::timeout(HEALTH_TIMEOUT, self.connector.live()).await {
            Ok(Ok(_)) => Health::Up,
            Ok(Err(e)) => Health::Down(e.to_string()),
            Err(_) => Health::Down(format!(
                "RabbitMQ at {} not reachable within {HEALTH_TIMEOUT:?}",
                self.connector.display()
            )),
        }
    }

    async fn close(&self) {
        self.connector.close().await;
    }
}

/// Creates [`RabbitBinder`]s (binder type `rabbit`).
#[derive(Debug, Default, Clone)]
pub struct RabbitBinderFactory;

impl RabbitBinderFactory {
    /// A factory.
    pub fn new() -> Self {
        RabbitBinderFactory
    }
}

fn plan_resources(plan: &QueuePlan, resources: &mut Vec<String>) {
    resources.push(format!(
        "queue {} bound to {} with {}",
        plan.queue,
        plan.exchange,
        plan.routing_keys.join(", ")
    ));
    if let Some(dl) = &plan.dead_letter {
        resources.push(format!(
            "dead-letter exchange {} (direct) -> queue {} ({})",
            dl.exchange, dl.queue, dl.routing_key
        ));
    }
}

#[async_trait]
impl BinderFactory for RabbitBinderFactory {
    fn binder_type(&self) -> &'static str {
        BINDER_TYPE
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    fn config_schema(&self) -> Option<Schema> {
        Some(crate::props::schema())
    }

    fn environment_schema(&self) -> Option<Schema> {
        Some(crate::config::environment_schema())
    }

    async fn create(
        &self,
        name: &str,
        environment: &BinderEnvironment,
    ) -> Result<Arc<dyn Binder>, BindError> {
        Ok(Arc::new(RabbitBinder::connect(name, environment).await?))
    }

    fn plan_consumer(
        &self,
        destination: &str,
        group: Option<&str>,
        spec: &ConsumerSpec,
    ) -> ProvisionPlan {
        let Ok(props) = ConsumerProps::parse(spec) else {
            return ProvisionPlan::default();
        };
        let partition = spec.partitioned.then_some(spec.instance_index);
        let mut resources = vec![format!(
            "exchange {} ({}, durable)",
            props.queue.exchange_name(destination),
            props.queue.exchange.kind.name()
        )];
        match group {
            Some(g) => {
                let plan = group_plan(destination, g, partition, &props.queue);
                plan_resources(&plan, &mut resources);
                for delay in &spec.redelivery_delays {
                    resources.push(format!(
                        "queue {} (durable, TTL {} ms, dead-lettered back to {})",
                        crate::provision::wait_queue(&plan.queue, *delay),
                        delay.as_millis(),
                        plan.queue
                    ));
                }
                ProvisionPlan {
                    dlq: plan.dead_letter.map(|d| d.queue),
                    resources,
                }
            }
            None => {
                resources.push(format!(
                    "exclusive auto-delete queue {}<random> bound to {destination} with #",
                    props.anonymous_prefix
                ));
                ProvisionPlan {
                    dlq: None,
                    resources,
                }
            }
        }
    }

    fn plan_producer(&self, destination: &str, spec: &ProducerSpec) -> ProvisionPlan {
        let Ok(props) = ProducerProps::parse(spec) else {
            return ProvisionPlan::default();
        };
        let mut resources = vec![format!(
            "exchange {} ({}, durable)",
            props.queue.exchange_name(destination),
            props.queue.exchange.kind.name()
        )];
        for g in &spec.required_groups {
            for p in partitions_of(spec) {
                let plan = group_plan(destination, g, p, &props.queue);
                plan_resources(&plan, &mut resources);
            }
        }
        ProvisionPlan {
            dlq: None,
            resources,
        }
    }

    fn server(&self, name: &str, environment: &BinderEnvironment) -> Option<ServerAddress> {
        let settings = connection_settings(name, environment).ok()?;
        let first = settings.uris.first()?;
        let hosts: Vec<String> = settings
            .uris
            .iter()
            .map(|u| format!("{}:{}", u.authority.host, u.authority.port))
            .collect();
        Some(ServerAddress {
            protocol: match first.scheme {
                lapin::uri::AMQPScheme::AMQPS => "amqps",
                lapin::uri::AMQPScheme::AMQP => "amqp",
            }
            .to_owned(),
            host: hosts.join(","),
        })
    }
}
