//! Topic provisioning: look a topic up, create it through the admin API
//! (`max(partition-count, min-partition-count)` partitions), grow it when
//! `auto-add-partitions`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, Producer as _};
use stream_core::binder::BindError;

use crate::config::KafkaBinderConfig;

/// How long one metadata request may take.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for a created (or broker-auto-created) topic to show up in metadata.
const APPEAR_TIMEOUT: Duration = Duration::from_secs(10);
/// Admin request timeout.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates and inspects topics for one binder.
#[derive(Clone)]
pub struct Provisioner {
    cfg: Arc<KafkaBinderConfig>,
    admin: Arc<AdminClient<DefaultClientContext>>,
    /// A producer-type client: its metadata requests may auto-create topics on brokers that
    /// allow it (librdkafka's `allow.auto.create.topics` is true for producers).
    meta: FutureProducer,
}

impl std::fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioner").finish_non_exhaustive()
    }
}

fn provision_error(resource: &str, e: impl Into<stream_core::binder::BoxError>) -> BindError {
    BindError::Provision {
        resource: format!("topic {resource}"),
        source: e.into(),
    }
}

impl Provisioner {
    /// A provisioner using `admin` for creation and `meta` for lookups.
    pub fn new(
        cfg: Arc<KafkaBinderConfig>,
        admin: Arc<AdminClient<DefaultClientContext>>,
        meta: FutureProducer,
    ) -> Self {
        Provisioner { cfg, admin, meta }
    }

    /// The partition count of `topic`, `None` if the broker does not know it. Errors when the
    /// brokers cannot be reached.
    pub async fn partitions(&self, topic: &str) -> Result<Option<u32>, BindError> {
        let meta = self.meta.clone();
        let t = topic.to_owned();
        let result = tokio::task::spawn_blocking(move || {
            meta.client()
                .fetch_metadata(Some(&t), METADATA_TIMEOUT)
                .map(|md| {
                    md.topics()
                        .iter()
                        .find(|mt| mt.name() == t)
                        .and_then(|mt| match mt.error() {
                            None if !mt.partitions().is_empty() => {
                                Some(mt.partitions().len() as u32)
                            }
                            _ => None,
                        })
                })
        })
        .await
        .map_err(|e| provision_error(topic, e))?;
        result.map_err(|e| BindError::Connect {
            what: format!("kafka brokers {}", self.cfg.brokers),
            source: Box::new(e),
        })
    }

    /// Makes sure `topic` exists; a missing topic is created with
    /// `max(create_with, required, min-partition-count)` partitions, an existing one is grown to
    /// that when `auto-add-partitions`. Returns its partition count. `required` is the count
    /// the producer routes to: fewer partitions than that is an error unless they can be added.
    pub async fn ensure(
        &self,
        topic: &str,
        create_with: u32,
        required: u32,
    ) -> Result<u32, BindError> {
        let wanted = create_with
            .max(required)
            .max(self.cfg.props.min_partition_count)
            .max(1);
        match self.partitions(topic).await? {
            Some(n) if n >= wanted => Ok(n),
            Some(n) => {
                if self.cfg.props.auto_add_partitions {
                    self.grow(topic, wanted).await?;
                    self.wait_for(topic, wanted).await
                } else if n < required {
                    Err(provision_error(
                        topic,
                        format!(
                            "the topic has {n} partitions but {required} are expected; increase \
                             the topic's partitions or enable auto-add-partitions"
                        ),
                    ))
                } else {
                    tracing::info!(topic, partitions = n, min = wanted, "topic has fewer partitions than wanted (min-partition-count, or concurrency x instances); auto-add-partitions is off, using it as is");
                    Ok(n)
                }
            }
            None if self.cfg.props.auto_create_topics => {
                self.create(topic, wanted).await?;
                self.wait_for(topic, 1).await
            }
            None => {
                // The broker may create it on lookup (broker-side auto-creation).
                self.wait_for(topic, 1).await.map_err(|_| {
                    provision_error(
                        topic,
                        "the topic does not exist and auto-create-topics is false",
                    )
                })
            }
        }
    }

    async fn create(&self, topic: &str, partitions: u32) -> Result<(), BindError> {
        let rf = i32::from(self.cfg.props.replication_factor);
        let new = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(rf));
        let opts = AdminOptions::new()
            .request_timeout(Some(ADMIN_TIMEOUT))
            .operation_timeout(Some(ADMIN_TIMEOUT));
        let results = self
            .admin
            .create_topics([&new], &opts)
            .await
            .map_err(|e| provision_error(topic, e))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(provision_error(topic, KafkaError::AdminOp(code)));
                }
            }
        }
        tracing::info!(topic, partitions, replication_factor = rf, "created topic");
        Ok(())
    }

    async fn grow(&self, topic: &str, partitions: u32) -> Result<(), BindError> {
        let np = NewPartitions::new(topic, partitions as usize);
        let opts = AdminOptions::new()
            .request_timeout(Some(ADMIN_TIMEOUT))
            .operation_timeout(Some(ADMIN_TIMEOUT));
        let results = self
            .admin
            .create_partitions([&np], &opts)
            .await
            .map_err(|e| provision_error(topic, e))?;
        for r in results {
            if let Err((_, code)) = r {
                return Err(provision_error(topic, KafkaError::AdminOp(code)));
            }
        }
        tracing::info!(topic, partitions, "grew topic partitions");
        Ok(())
    }

    /// Polls metadata until `topic` has at least `min` partitions.
    async fn wait_for(&self, topic: &str, min: u32) -> Result<u32, BindError> {
        let deadline = Instant::now() + APPEAR_TIMEOUT;
        loop {
            if let Some(n) = self.partitions(topic).await? {
                if n >= min {
                    return Ok(n);
                }
            }
            if Instant::now() >= deadline {
                return Err(provision_error(
                    topic,
                    format!("the topic did not appear with {min} partition(s) in time"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
