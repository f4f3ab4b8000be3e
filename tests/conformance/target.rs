//! What the suite needs from a binder under test, and helpers shared by the scenarios.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cloud_stream::binder::{
    Binder, BinderEnvironment, BinderFactory, Capabilities, ProducerSpec, Route, Subscription,
};
use cloud_stream::binder_memory::{MemoryBinderFactory, MemoryBroker, MemoryBrokerConfig};
use cloud_stream::{RawMessage, RunningApp, StreamAppBuilder};

/// A binder under test.
#[async_trait]
pub trait Target: Send + Sync {
    /// The binder type (`memory`, `rabbit`, …).
    fn binder_type(&self) -> &'static str;
    /// The binder's `environment` as YAML flow mapping (e.g. `{ uri: "amqp://…" }`).
    fn environment_yaml(&self) -> String;
    /// The factory (apps under test and probes share the broker through it).
    fn factory(&self) -> Arc<dyn BinderFactory>;
    /// The capability manifest.
    fn capabilities(&self) -> Capabilities {
        self.factory().capabilities()
    }
    /// A binder for probes (sending inputs, observing outputs) on the same broker.
    async fn probe_binder(&self) -> Arc<dyn Binder>;
    /// Messages dead-lettered from `destination`/`group`, waiting up to `timeout` for `n`.
    async fn dead_letters(
        &self,
        destination: &str,
        group: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<RawMessage>;
    /// Whether the scenarios run in tokio's virtual time.
    fn virtual_time(&self) -> bool;
    /// Configuration of a consumer binding `binding` (group `replay`) that reads the
    /// dead letters of `destination`/`group`, as README ("Consuming dead letters") documents
    /// for the binder.
    fn dead_letter_consumer_yaml(&self, binding: &str, destination: &str, group: &str) -> String;
    /// Configuration giving the `batch-mode` binding `binding` batches of at most `size`
    /// messages, in the binder's own keys.
    fn batch_size_yaml(&self, binding: &str, size: usize) -> String;
}

/// `batch-size` of a binder that takes Spring Rabbit's batch keys (memory, rabbit).
pub fn batch_size_key(binder_type: &str, binding: &str, size: usize) -> String {
    format!("spring.cloud.stream.{binder_type}.bindings.{binding}.consumer.batch-size: {size}\n")
}

/// A binding's `destination` and `group: replay`, as YAML lines under `bindings`.
pub fn replay_binding(binding: &str, destination: &str) -> String {
    format!("spring.cloud.stream.bindings.{binding}: {{ destination: \"{destination}\", group: replay }}\n")
}

/// The in-memory binder.
pub struct MemoryTarget {
    broker: MemoryBroker,
}

impl MemoryTarget {
    pub fn new() -> Self {
        MemoryTarget {
            // History kept (as Kafka keeps its log), so a new group can replay.
            broker: MemoryBroker::with_config(MemoryBrokerConfig {
                recording: true,
                retention: 10_000,
                ..MemoryBrokerConfig::default()
            }),
        }
    }
}

#[async_trait]
impl Target for MemoryTarget {
    fn binder_type(&self) -> &'static str {
        "memory"
    }
    fn environment_yaml(&self) -> String {
        "{}".to_owned()
    }
    fn factory(&self) -> Arc<dyn BinderFactory> {
        Arc::new(MemoryBinderFactory::with_broker(self.broker.clone()))
    }
    async fn probe_binder(&self) -> Arc<dyn Binder> {
        self.factory()
            .create("probe", &BinderEnvironment::own(serde_json::json!({})))
            .await
            .expect("memory binder")
    }
    async fn dead_letters(
        &self,
        destination: &str,
        group: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<RawMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = self.broker.dead_letters(destination, Some(group));
            if found.len() >= n || tokio::time::Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    fn virtual_time(&self) -> bool {
        true
    }
    fn dead_letter_consumer_yaml(&self, binding: &str, destination: &str, group: &str) -> String {
        replay_binding(binding, &format!("{destination}.{group}.dlq"))
    }
    fn batch_size_yaml(&self, binding: &str, size: usize) -> String {
        batch_size_key("memory", binding, size)
    }
}

/// A unique name for this test run (brokers keep state between tests).
pub fn unique(base: &str) -> String {
    format!(
        "{base}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A JSON raw message.
pub fn json(value: serde_json::Value) -> RawMessage {
    RawMessage::new(Bytes::from(value.to_string())).header("content-type", "application/json")
}

/// Builds and starts an app on the target's binder with `yaml` (the
/// `spring.cloud.stream.binders` section is added).
pub async fn start_app(
    target: &dyn Target,
    yaml: &str,
    register: impl FnOnce(StreamAppBuilder) -> StreamAppBuilder,
) -> RunningApp {
    try_start_app(target, yaml, register)
        .await
        .unwrap_or_else(|e| panic!("app did not start: {e}"))
}

/// Like [`start_app`], returning the error.
pub async fn try_start_app(
    target: &dyn Target,
    yaml: &str,
    register: impl FnOnce(StreamAppBuilder) -> StreamAppBuilder,
) -> Result<RunningApp, cloud_stream::Error> {
    let binders = format!(
        "spring:\n  cloud:\n    stream:\n      default-binder: under-test\n      binders:\n        under-test:\n          type: {}\n          environment: {}\n",
        target.binder_type(),
        target.environment_yaml()
    );
    let builder = StreamAppBuilder::new()
        .binder_factory(target.factory())
        .env(Default::default())
        .config_yaml(&binders)
        .config_yaml(yaml)
        .shutdown_timeout(Duration::from_secs(10));
    register(builder).build().await
}

/// Sends raw messages to a destination and observes a destination through its own group.
pub struct Probe {
    binder: Arc<dyn Binder>,
}

impl Probe {
    pub async fn new(target: &dyn Target) -> Self {
        Probe {
            binder: target.probe_binder().await,
        }
    }

    /// Sends each message to `destination` (confirmed).
    pub async fn send(&self, destination: &str, messages: impl IntoIterator<Item = RawMessage>) {
        let producer = self
            .binder
            .bind_producer(
                destination,
                &ProducerSpec {
                    partition_count: 1,
                    ..Default::default()
                },
            )
            .await
            .expect("bind probe producer");
        for m in messages {
            producer
                .send(m, Route::default())
                .await
                .expect("probe send");
        }
        producer.close().await;
    }

    /// Starts observing `destination` with a fresh durable group (bind before the app sends).
    pub async fn observe(&self, destination: &str) -> Observer {
        let group = unique("probe");
        let sub = self
            .binder
            .bind_consumer(
                destination,
                Some(&group),
                &cloud_stream::binder::ConsumerSpec {
                    concurrency: 64,
                    max_attempts: 1,
                    instance_count: 1,
                    ..Default::default()
                },
            )
            .await
            .expect("bind probe consumer");
        Observer { sub }
    }
}

/// Receives what is sent to one destination.
pub struct Observer {
    sub: Box<dyn Subscription>,
}

impl Observer {
    /// The next message, acked; `None` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<RawMessage> {
        match tokio::time::timeout(timeout, self.sub.next()).await {
            Ok(Some(Ok(mut d))) => {
                let m = d.take_message();
                d.ack().await.expect("probe ack");
                Some(m)
            }
            _ => None,
        }
    }

    /// Up to `n` messages within `timeout` overall.
    pub async fn take(&mut self, n: usize, timeout: Duration) -> Vec<RawMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(m) => out.push(m),
                None => break,
            }
        }
        out
    }

    /// Asserts nothing arrives within `window`.
    pub async fn assert_quiet(&mut self, window: Duration) {
        if let Some(m) = self.next(window).await {
            panic!(
                "expected no message, got {:?}",
                String::from_utf8_lossy(&m.payload)
            );
        }
    }

    pub async fn close(self) {
        self.sub.close().await;
    }
}

/// The payload as a string.
pub fn text(m: &RawMessage) -> String {
    String::from_utf8_lossy(&m.payload).into_owned()
}

/// The payload as JSON.
pub fn value(m: &RawMessage) -> serde_json::Value {
    serde_json::from_slice(&m.payload).unwrap_or(serde_json::Value::Null)
}

/// Generous time for something to arrive (virtual on memory).
pub const WAIT: Duration = Duration::from_secs(20);
/// How long "nothing arrives" is watched.
pub const QUIET: Duration = Duration::from_millis(1500);

/// Waits until `cond` holds, checking every 10 ms; false if it still does not after `timeout`.
pub async fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
