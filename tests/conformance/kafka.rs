//! The Kafka binder against librdkafka's mock cluster: in this process, real TCP on a random
//! loopback port. The mock implements groups, commits, rebalances and idempotence, and creates
//! topics when a producer asks for their metadata (broker-side auto-creation), but not the
//! admin CreateTopics call: the target therefore sets `auto-create-topics: false`, so the
//! binder looks topics up instead of creating them (tansu covers admin provisioning, see
//! `tests/kafka_broker.rs`). DLQs are enabled binder-wide through the binder's environment
//! (`spring.cloud.stream.kafka.default.consumer.enable-dlq`), since the scenarios dead-letter.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use cloud_stream::binder::{Binder, BinderEnvironment, BinderFactory, ConsumerSpec};
use cloud_stream::binder_kafka::rdkafka::mocking::MockCluster;
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
                let cluster = MockCluster::new(1).expect("librdkafka mock cluster");
                tx.send(cluster.bootstrap_servers()).expect("send bootstrap");
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn mock cluster thread");
        rx.recv().expect("mock cluster bootstrap")
    })
}

pub struct KafkaTarget {
    brokers: String,
}

pub fn target() -> Option<KafkaTarget> {
    Some(KafkaTarget {
        brokers: bootstrap().to_owned(),
    })
}

impl KafkaTarget {
    fn environment(&self) -> serde_json::Value {
        serde_json::json!({
            "brokers": self.brokers,
            "auto-create-topics": false,
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
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n {
            match tokio::time::timeout_at(deadline, sub.next()).await {
                Ok(Some(Ok(mut d))) => {
                    out.push(d.take_message());
                    d.ack().await.expect("ack dead letter");
                }
                Ok(Some(Err(_))) => continue,
                _ => break,
            }
        }
        // A little longer, so an extra dead letter would be seen.
        if let Ok(Some(Ok(mut d))) =
            tokio::time::timeout(Duration::from_millis(500), sub.next()).await
        {
            out.push(d.take_message());
        }
        sub.close().await;
        out
    }
    fn virtual_time(&self) -> bool {
        false
    }
}

crate::conformance_suite!(crate::kafka::target(), real);
