//! The AWS clients and idempotent provisioning of topics, queues, DLQs, queue policies,
//! redrive policies and subscriptions.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sns::types::Topic;
use aws_sdk_sqs::types::QueueAttributeName;
use stream_core::binder::{BindError, BoxError};

use crate::config::{BinderSettings, DestinationMode};
use crate::naming;

/// The attribute carrying the partition (used by partitioned consumers' subscription filters).
pub const PARTITION_ATTRIBUTE: &str = "partition";
/// The largest partition count a producer may use (SNS filter policies allow 150 values).
pub const MAX_PARTITIONS: u32 = 128;

/// Whether an SDK error means the endpoint could not be reached (vs. a service error).
pub(crate) fn is_connect_error<E, R>(e: &aws_sdk_sqs::error::SdkError<E, R>) -> bool {
    matches!(
        e,
        aws_sdk_sqs::error::SdkError::DispatchFailure(_)
            | aws_sdk_sqs::error::SdkError::TimeoutError(_)
    )
}

/// The full text of an SDK error (the SDK's `Display` alone is terse).
pub(crate) fn describe<E: std::error::Error>(e: &E) -> String {
    aws_sdk_sqs::error::DisplayErrorContext(e).to_string()
}

/// Turns an SDK error into a [`BindError`]: unreachable endpoint → `Connect`, else
/// `Provision` of `resource`.
pub(crate) fn bind_error<E, R>(
    what: &str,
    resource: String,
    e: aws_sdk_sqs::error::SdkError<E, R>,
) -> BindError
where
    E: std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    let text: BoxError = describe(&e).into();
    if is_connect_error(&e) {
        BindError::Connect {
            what: what.to_owned(),
            source: text,
        }
    } else {
        BindError::Provision {
            resource,
            source: text,
        }
    }
}

/// The SQS and SNS clients of one binder, with its settings.
#[derive(Clone)]
pub struct Clients {
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// SNS.
    pub sns: aws_sdk_sns::Client,
    /// The binder settings.
    pub settings: Arc<BinderSettings>,
}

impl fmt::Debug for Clients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clients")
            .field("settings", &self.settings)
            .finish()
    }
}

/// A queue: its URL and ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queue {
    /// The queue name.
    pub name: String,
    /// The queue URL.
    pub url: String,
    /// The queue ARN.
    pub arn: String,
}

/// What a consumer binding consumes from, and what to remove on close.
#[derive(Clone, Debug)]
pub struct ConsumerResources {
    /// The queue consumed.
    pub queue: Queue,
    /// The dead-letter queue name.
    pub dlq_name: String,
    /// The dead-letter queue, when already created (anonymous queues create `<dest>-dlq`
    /// lazily, on the first dead letter).
    pub dlq: Option<Queue>,
    /// The subscription (sns mode).
    pub subscription_arn: Option<String>,
    /// Whether queue and subscription are temporary (anonymous consumer): removed on close.
    pub temporary: bool,
    /// Whether the queue is FIFO.
    pub fifo: bool,
}

/// How a consumer queue is filtered: partitioned consumers get only their partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionFilter {
    /// This instance.
    pub index: u32,
    /// Number of instances.
    pub count: u32,
}

impl PartitionFilter {
    /// The SNS filter policy: the partitions `p < MAX_PARTITIONS` with `p % count == index`.
    pub fn policy(&self) -> String {
        let values: Vec<String> = (0..MAX_PARTITIONS)
            .filter(|p| p % self.count.max(1) == self.index)
            .map(|p| p.to_string())
            .collect();
        serde_json::json!({ PARTITION_ATTRIBUTE: values }).to_string()
    }
}

impl Clients {
    /// Builds the clients from the settings (nothing is contacted yet).
    pub async fn connect(settings: BinderSettings) -> Clients {
        let region = settings.region().to_owned();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region))
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .build(),
            )
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2));
        if let Some(e) = &settings.endpoint {
            loader = loader.endpoint_url(e.clone());
        }
        if let Some(c) = settings.credentials() {
            loader = loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
                c.access_key.expose(),
                c.secret_key.expose(),
                c.session_token.as_ref().map(|t| t.expose().to_owned()),
                None,
                "cloud-stream-binder-sqs",
            ));
        }
        let config = loader.load().await;
        Clients {
            sqs: aws_sdk_sqs::Client::new(&config),
            sns: aws_sdk_sns::Client::new(&config),
            settings: Arc::new(settings),
        }
    }

    fn endpoint(&self) -> String {
        match &self.settings.endpoint {
            Some(e) => stream_core::config::redact_value("endpoint", e),
            None => format!("AWS ({})", self.settings.region()),
        }
    }

    /// The topic ARN of `name`, creating it when `auto-create` is on.
    pub async fn topic(&self, name: &str, fifo: bool) -> Result<String, BindError> {
        naming::check_len(name).map_err(|m| BindError::Config {
            key: "destination".into(),
            message: m,
        })?;
        if self.settings.auto_create {
            let mut req = self.sns.create_topic().name(name);
            if fifo {
                req = req
                    .attributes("FifoTopic", "true")
                    .attributes("ContentBasedDeduplication", "false");
            }
            let out = req
                .send()
                .await
                .map_err(|e| bind_error(&self.endpoint(), format!("SNS topic {name}"), e))?;
            return out
                .topic_arn()
                .map(str::to_owned)
                .ok_or_else(|| BindError::Provision {
                    resource: format!("SNS topic {name}"),
                    source: "CreateTopic returned no ARN".into(),
                });
        }
        let suffix = format!(":{name}");
        let mut token: Option<String> = None;
        loop {
            let out = self
                .sns
                .list_topics()
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| bind_error(&self.endpoint(), format!("SNS topic {name}"), e))?;
            if let Some(arn) = out
                .topics()
                .iter()
                .filter_map(Topic::topic_arn)
                .find(|a| a.ends_with(&suffix))
            {
                return Ok(arn.to_owned());
            }
            match out.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => {
                    return Err(BindError::Provision {
                        resource: format!("SNS topic {name}"),
                        source: "topic does not exist and auto-create is off".into(),
                    })
                }
            }
        }
    }

    /// The queue `name`, creating it when `auto-create` is on (or `force_create`).
    pub async fn queue(
        &self,
        name: &str,
        fifo: bool,
        force_create: bool,
    ) -> Result<Queue, BindError> {
        naming::check_len(name).map_err(|m| BindError::Config {
            key: "destination".into(),
            message: m,
        })?;
        let resource = || format!("SQS queue {name}");
        let url = if self.settings.auto_create || force_create {
            let mut req = self.sqs.create_queue().queue_name(name);
            if fifo {
                req = req.attributes(QueueAttributeName::FifoQueue, "true");
            }
            let out = req
                .send()
                .await
                .map_err(|e| bind_error(&self.endpoint(), resource(), e))?;
            out.queue_url().map(str::to_owned)
        } else {
            let out = self
                .sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(|e| bind_error(&self.endpoint(), resource(), e))?;
            out.queue_url().map(str::to_owned)
        }
        .ok_or_else(|| BindError::Provision {
            resource: resource(),
            source: "no queue URL returned".into(),
        })?;
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| bind_error(&self.endpoint(), resource(), e))?;
        let arn = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| BindError::Provision {
                resource: resource(),
                source: "no queue ARN returned".into(),
            })?;
        Ok(Queue {
            name: name.to_owned(),
            url,
            arn,
        })
    }

    /// Sets `attrs` on `queue` when the binder creates resources (`auto-create`) or the queue
    /// is its own (`force`: a temporary queue).
    async fn set_queue_attributes(
        &self,
        queue: &Queue,
        attrs: Vec<(QueueAttributeName, String)>,
        force: bool,
    ) -> Result<(), BindError> {
        if !(self.settings.auto_create || force) || attrs.is_empty() {
            return Ok(());
        }
        let mut req = self.sqs.set_queue_attributes().queue_url(&queue.url);
        for (k, v) in attrs {
            req = req.attributes(k, v);
        }
        req.send()
            .await
            .map_err(|e| bind_error(&self.endpoint(), format!("SQS queue {}", queue.name), e))?;
        Ok(())
    }

    /// Subscribes `queue` to `topic_arn` with raw message delivery (and `filter`), unless it
    /// already is; returns the subscription ARN.
    pub async fn subscribe(
        &self,
        topic_arn: &str,
        queue: &Queue,
        filter: Option<String>,
    ) -> Result<String, BindError> {
        let resource = || format!("subscription of {} to {topic_arn}", queue.name);
        let mut token: Option<String> = None;
        loop {
            let out = self
                .sns
                .list_subscriptions_by_topic()
                .topic_arn(topic_arn)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| bind_error(&self.endpoint(), resource(), e))?;
            if let Some(arn) = out
                .subscriptions()
                .iter()
                .find(|s| s.endpoint() == Some(queue.arn.as_str()))
                .and_then(|s| s.subscription_arn())
            {
                return Ok(arn.to_owned());
            }
            match out.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        if !self.settings.auto_create {
            return Err(BindError::Provision {
                resource: resource(),
                source: "subscription does not exist and auto-create is off".into(),
            });
        }
        self.subscribe_own(topic_arn, queue, filter).await
    }

    /// The policy that lets `topic_arn` deliver to `queue`.
    fn topic_policy(queue: &Queue, topic_arn: &str) -> String {
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "cloud-stream-sns",
                "Effect": "Allow",
                "Principal": { "Service": "sns.amazonaws.com" },
                "Action": "sqs:SendMessage",
                "Resource": queue.arn,
                "Condition": { "ArnEquals": { "aws:SourceArn": topic_arn } }
            }]
        })
        .to_string()
    }

    /// Provisions what a consumer of `destination`/`group` reads from (see docs/architecture.md §7):
    /// sns mode: the topic, the group queue (or a temporary one), its DLQ, the queue policy,
    /// the redrive policy and the raw-delivery subscription; sqs mode: the queue and its DLQ.
    pub async fn provision_consumer(
        &self,
        destination: &str,
        group: Option<&str>,
        mode: DestinationMode,
        fifo: bool,
        filter: Option<PartitionFilter>,
        max_receive_count: u32,
    ) -> Result<ConsumerResources, BindError> {
        match mode {
            DestinationMode::Sqs => {
                self.queue_consumer(destination, fifo, max_receive_count)
                    .await
            }
            DestinationMode::Sns => {
                self.topic_consumer(destination, group, fifo, filter, max_receive_count)
                    .await
            }
        }
    }

    /// sqs mode: the destination's queue and its DLQ, with the redrive policy.
    async fn queue_consumer(
        &self,
        destination: &str,
        fifo: bool,
        max_receive_count: u32,
    ) -> Result<ConsumerResources, BindError> {
        let name = naming::direct_queue(&self.settings.name_prefix, destination, fifo);
        let queue = self.queue(&name, fifo, false).await?;
        let dlq_name = naming::dlq(&name);
        let dlq = self.queue(&dlq_name, fifo, false).await?;
        let redrive_policy = (
            QueueAttributeName::RedrivePolicy,
            redrive(&dlq, max_receive_count),
        );
        self.set_queue_attributes(&queue, vec![redrive_policy], false)
            .await?;
        Ok(ConsumerResources {
            queue,
            dlq_name,
            dlq: Some(dlq),
            subscription_arn: None,
            temporary: false,
            fifo,
        })
    }

    /// sns mode: the topic, the group's queue with its DLQ (or, without a group, a temporary
    /// queue, created and subscribed whatever `auto-create` says: it is the consumer's own),
    /// the queue policy letting the topic send, and the raw-delivery subscription.
    async fn topic_consumer(
        &self,
        destination: &str,
        group: Option<&str>,
        fifo: bool,
        filter: Option<PartitionFilter>,
        max_receive_count: u32,
    ) -> Result<ConsumerResources, BindError> {
        let prefix = self.settings.name_prefix.as_str();
        let topic_arn = self
            .topic(&naming::topic(prefix, destination, fifo), fifo)
            .await?;
        let temporary = group.is_none();
        let name = match group {
            Some(g) => naming::group_queue(prefix, destination, g, filter.map(|f| f.index), fifo),
            None => anonymous_queue_name(prefix, destination, fifo),
        };
        let queue = self.queue(&name, fifo, temporary).await?;
        let (dlq_name, dlq) = if temporary {
            (naming::dlq(&naming::topic(prefix, destination, fifo)), None)
        } else {
            let dlq_name = naming::dlq(&name);
            let dlq = self.queue(&dlq_name, fifo, false).await?;
            (dlq_name, Some(dlq))
        };
        let policy = Self::topic_policy(&queue, &topic_arn);
        let mut attrs = vec![(QueueAttributeName::Policy, policy)];
        if let Some(d) = &dlq {
            let redrive_policy = redrive(d, max_receive_count);
            attrs.push((QueueAttributeName::RedrivePolicy, redrive_policy));
        }
        self.set_queue_attributes(&queue, attrs, temporary).await?;
        let filter = filter.map(|f| f.policy());
        let subscription_arn = Some(match temporary {
            true => self.subscribe_own(&topic_arn, &queue, filter).await?,
            false => self.subscribe(&topic_arn, &queue, filter).await?,
        });
        Ok(ConsumerResources {
            queue,
            dlq_name,
            dlq,
            subscription_arn,
            temporary,
            fifo,
        })
    }

    /// Subscribes `queue` to `topic_arn` with raw message delivery (and `filter`), whatever
    /// `auto-create` says (a temporary queue's subscription is its own); returns the
    /// subscription ARN.
    async fn subscribe_own(
        &self,
        topic_arn: &str,
        queue: &Queue,
        filter: Option<String>,
    ) -> Result<String, BindError> {
        let resource = || format!("subscription of {} to {topic_arn}", queue.name);
        let out = self
            .sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(&queue.arn)
            .return_subscription_arn(true)
            .set_attributes(Some(subscription_attributes(filter)))
            .send()
            .await
            .map_err(|e| bind_error(&self.endpoint(), resource(), e))?;
        out.subscription_arn()
            .map(str::to_owned)
            .ok_or_else(|| BindError::Provision {
                resource: resource(),
                source: "Subscribe returned no ARN".into(),
            })
    }

    /// Removes a temporary consumer's subscription and queue (best effort, logged).
    pub async fn remove_temporary(&self, resources: &ConsumerResources) {
        if let Some(arn) = &resources.subscription_arn {
            if let Err(e) = self.sns.unsubscribe().subscription_arn(arn).send().await {
                tracing::warn!(subscription = %arn, error = %describe(&e), "cannot remove temporary subscription");
            }
        }
        if let Err(e) = self
            .sqs
            .delete_queue()
            .queue_url(&resources.queue.url)
            .send()
            .await
        {
            tracing::warn!(queue = %resources.queue.name, error = %describe(&e), "cannot remove temporary queue");
        }
    }

    /// Checks that the endpoint answers.
    pub async fn ping(&self) -> Result<(), String> {
        let call = self.sqs.list_queues().max_results(1).send();
        match tokio::time::timeout(Duration::from_secs(5), call).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(stream_core::config::redact_value("error", &describe(&e))),
            Err(_) => Err(format!("{} did not answer within 5 s", self.endpoint())),
        }
    }
}

fn subscription_attributes(filter: Option<String>) -> std::collections::HashMap<String, String> {
    let mut attrs =
        std::collections::HashMap::from([("RawMessageDelivery".to_owned(), "true".to_owned())]);
    if let Some(f) = filter {
        attrs.insert("FilterPolicy".to_owned(), f);
    }
    attrs
}

/// The name of an anonymous consumer's temporary queue: `<prefix><destination>-anon-<id>`,
/// the destination cut so that the name fits.
fn anonymous_queue_name(prefix: &str, destination: &str, fifo: bool) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let base = naming::sanitize(destination);
    let keep = base
        .len()
        .min(naming::MAX_QUEUE_NAME.saturating_sub(30 + prefix.len()));
    naming::fifo_name(
        &format!("{prefix}{}-anon-{}", &base[..keep], &id[..12]),
        fifo,
    )
}

fn redrive(dlq: &Queue, max_receive_count: u32) -> String {
    serde_json::json!({
        "deadLetterTargetArn": dlq.arn,
        "maxReceiveCount": max_receive_count.to_string(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_filter_lists_own_partitions() {
        let p = PartitionFilter { index: 1, count: 2 }.policy();
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        let list = v[PARTITION_ATTRIBUTE].as_array().unwrap();
        assert_eq!(list.len(), 64);
        assert_eq!(list[0], "1");
        assert_eq!(list[1], "3");
    }
}
