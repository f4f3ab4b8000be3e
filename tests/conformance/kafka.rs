//! The Kafka binder against librdkafka's mock cluster: in this process, real TCP on a random
//! loopback port. The mock implements groups, commits, rebalances and idempotence, and creates
//! topics when a producer asks for their metadata (broker-side auto-creation), but not the
//! admin CreateTopics call: the target therefore sets `auto-create-topics: false`, so the
//! binder looks topics up instead of creating them (tansu covers admin provisioning, see
//! `tests/kafka_broker.rs`). DLQs are enabled binder-wide through the binder's environment
//! (`spring.cloud.stream.kafka.default.consumer.enable-dlq`), since the scenarios dead-letter.
//!
//! Two test-only adjustments, both about the broker, not the binder:
//! * The scenarios name their groups `g`, `g1`, …: in Kafka a consumer group spans topics, so
//!   scenarios running in parallel would share (and rebalance) one group. The Kafka scenarios
//!   therefore run one at a time (a process-wide semaphore held by the target).
//! * The mock's `group.initial.rebalance.delay.ms` (3 s, as Kafka's default) is set to 100 ms,
//!   as Kafka test setups usually do, so each fresh group join does not cost 3 s.
//! * Consumers use `session.timeout.ms: 2000` (`consumer-properties`): when the last member
//!   leaves a group, the mock keeps it "joining" for the session timeout minus 1 s before it
//!   becomes empty, so with the default 45 s the next scenario's member would wait 44 s.

use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use cloud_stream::binder::{Binder, BinderEnvironment, BinderFactory, ConsumerSpec};
use cloud_stream::binder_kafka::rdkafka::producer::{BaseProducer, Producer as _};
use cloud_stream::binder_kafka::rdkafka::ClientConfig;
use cloud_stream::binder_kafka::KafkaBinderFactory;
use cloud_stream::RawMessage;

use crate::target::{unique, Target};

/// The mock cluster lives on its own thread for the whole test process (it is neither Send nor
/// Sync); only its bootstrap string leaves that thread.
fn bootstrap() -> &'static str {
    static BOOTSTRAP: OnceLock<String> = OnceLock::new();
    BOOTSTRAP.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("kafka-mock-cluster".into())
            .spawn(move || {
                // The client owning the mock cluster lives on this thread forever.
                let owner: BaseProducer = ClientConfig::new()
                    .set("test.mock.num.brokers", "1")
                    .create()
                    .expect("librdkafka mock cluster");
                let client = owner.client();
                // SAFETY: the cluster pointer belongs to `owner`, which is never dropped.
                #[allow(unsafe_code)]
                unsafe {
                    use cloud_stream::binder_kafka::rdkafka::bindings as sys;
                    let mc = sys::rd_kafka_handle_mock_cluster(client.native_ptr());
                    assert!(!mc.is_null(), "no mock cluster");
                    sys::rd_kafka_mock_group_initial_rebalance_delay_ms(mc, 100);
                }
                let bootstrap = client
                    .mock_cluster()
                    .expect("mock cluster")
                    .bootstrap_servers();
                tx.send(bootstrap).expect("send bootstrap");
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn mock cluster thread");
        rx.recv().expect("mock cluster bootstrap")
    })
}

/// One Kafka scenario at a time (see the module docs); released when the target is dropped.
struct Turn;

static BUSY: Mutex<bool> = Mutex::new(false);
static FREED: Condvar = Condvar::new();

impl Turn {
    fn take() -> Self {
        let mut busy = BUSY.lock().unwrap_or_else(|e| e.into_inner());
        while *busy {
            busy = FREED.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        *busy = true;
        Turn
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        *BUSY.lock().unwrap_or_else(|e| e.into_inner()) = false;
        FREED.notify_one();
    }
}

pub struct KafkaTarget {
    brokers: String,
    _turn: Turn,
}

pub fn target() -> Option<KafkaTarget> {
    let brokers = bootstrap().to_owned();
    Some(KafkaTarget {
        brokers,
        _turn: Turn::take(),
    })
}

impl KafkaTarget {
    fn environment(&self) -> serde_json::Value {
        serde_json::json!({
            "brokers": self.brokers,
            "auto-create-topics": false,
            "consumer-properties": {"session.timeout.ms": "2000", "heartbeat.interval.ms": "500"},
            "spring": {"cloud": {"stream": {"kafka": {"default": {"consumer": {"enable-dlq": true}}}}}}
        })
    }
}

#[async_trait]
impl Target for KafkaTarget {
    fn binder_type(&self) -> &'static str {
        "kafka"
    }
    fn environment_yaml(&self) -> String {
        self.environment().to_string()
    }
    fn factory(&self) -> Arc<dyn BinderFactory> {
        Arc::new(KafkaBinderFactory::new())
    }
    async fn probe_binder(&self) -> Arc<dyn Binder> {
        self.factory()
            .create("probe", &BinderEnvironment::own(self.environment()))
            .await
            .expect("kafka probe binder")
    }
    async fn dead_letters(
        &self,
        destination: &str,
        group: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<RawMessage> {
        let binder = self.probe_binder().await;
        let topic = format!("error.{destination}.{group}");
        let mut sub = binder
            .bind_consumer(
                &topic,
                Some(&unique("dlq-reader")),
                &ConsumerSpec {
                    binding: "dlq-reader".into(),
                    concurrency: 1,
                    max_attempts: 1,
                    instance_count: 1,
                    ..Default::default()
                },
            )
            .await
            .expect("bind DLQ reader");
        // The DLQ is a topic: read it from the beginning until `n` arrived (or `timeout`
        // passed) and then nothing more came for a quiet second, so the result is the topic's
        // whole content, not just its first `n` records.
        let deadline = tokio::time::Instant::now() + timeout;
        let quiet = Duration::from_secs(1);
        let mut out = Vec::new();
        loop {
            let wait = if out.len() < n {
                deadline
                    .saturating_duration_since(tokio::time::Instant::now())
                    .max(quiet)
            } else {
                quiet
            };
            match tokio::time::timeout(wait, sub.next()).await {
                Ok(Some(Ok(mut d))) => {
                    out.push(d.take_message());
                    d.ack().await.expect("ack dead letter");
                }
                Ok(Some(Err(_))) => continue,
                _ => break,
            }
        }
        sub.close().await;
        out
    }
    fn virtual_time(&self) -> bool {
        false
    }
    fn dead_letter_consumer_yaml(&self, binding: &str, destination: &str, group: &str) -> String {
        crate::target::replay_binding(binding, &format!("error.{destination}.{group}"))
    }
    fn batch_size_yaml(&self, binding: &str, size: usize) -> String {
        format!("spring.cloud.stream.kafka.bindings.{binding}.consumer.configuration.max.poll.records: {size}\n")
    }
}

crate::conformance_suite!(crate::kafka::target(), real);

/// Kafka-specific keys are validated through the binder's schema: a typo is an error naming the
/// nearest valid key, before anything connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kafka_binding_key_is_rejected_with_suggestion() {
    let Some(t) = target() else { return };
    let yaml = "spring.cloud.function.definition: sink\nspring.cloud.stream.bindings.sink-in-0: { destination: x, group: g }\nspring.cloud.stream.kafka.bindings.sink-in-0.consumer.enable-dlx: true\n";
    let err = crate::target::try_start_app(&t, yaml, |b| {
        b.consumer("sink", |_: String| async { Ok(()) })
    })
    .await
    .expect_err("a typo in a kafka binding key must fail the build");
    let msg = err.to_string();
    assert!(
        msg.contains("enable-dlx") && msg.contains("enable-dlq"),
        "{msg}"
    );
}
