//! librdkafka's mock cluster hosted by a test process of its own, so that application processes
//! can be killed and restarted against one broker (shared by `tests/kafka_broker.rs` and
//! `tests/chaos.rs`, whose binaries re-execute themselves in this role), or in the test's own
//! process (`in_process`, for `tests/actuator.rs` and `tests/dlq_cli.rs`).
#![allow(dead_code)] // each including target uses part of it

use std::io::{BufRead, Write};

use cloud_stream::binder_kafka::rdkafka::producer::{BaseProducer, Producer as _};
use cloud_stream::binder_kafka::rdkafka::ClientConfig;

/// The id of the cluster's one broker (librdkafka numbers mock brokers from 1).
const BROKER: i32 = 1;

/// Runs the cluster: prints `BOOTSTRAP <addresses>`, then reads commands from stdin until the
/// parent closes it (or dies): `down` takes the broker away (connections closed, new ones
/// refused; its log, offsets and groups are kept, as a restarted Kafka keeps its disk), `up`
/// brings it back. Each command is answered with `OK <command>`.
pub fn serve() {
    let owner: BaseProducer = ClientConfig::new()
        .set("test.mock.num.brokers", "1")
        .create()
        .expect("librdkafka mock cluster");
    let cluster = owner.client().mock_cluster().expect("mock cluster");
    say(&format!("BOOTSTRAP {}", cluster.bootstrap_servers()));
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let done = match line.trim() {
            "down" => cluster.broker_down(BROKER),
            "up" => cluster.broker_up(BROKER),
            other => panic!("unknown mock-cluster command {other:?}"),
        };
        done.unwrap_or_else(|e| panic!("mock cluster {line}: {e}"));
        say(&format!("OK {}", line.trim()));
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// librdkafka's mock cluster in this process (one broker) with `topics` made (one partition
/// each): its owner (the cluster lives as long as it) and a binder declaration that reaches
/// it. The mock has no admin API (topics are made here, not by the binder) and answers a
/// fetch only when its wait runs out (10 ms here); a left member is noticed in 6 s.
pub fn in_process(topics: &[&str]) -> (BaseProducer, String) {
    let owner: BaseProducer = ClientConfig::new()
        .set("test.mock.num.brokers", "1")
        .create()
        .expect("librdkafka mock cluster");
    let cluster = owner.client().mock_cluster().expect("mock cluster");
    for topic in topics {
        cluster.create_topic(topic, 1, 1).expect("mock topic");
    }
    let binder = format!(
        "{{ type: kafka, environment: {{ brokers: \"{}\", auto-create-topics: false, consumer-properties: {{ fetch.wait.max.ms: \"10\", session.timeout.ms: \"6000\", heartbeat.interval.ms: \"1000\" }} }} }}",
        cluster.bootstrap_servers()
    );
    drop(cluster);
    (owner, binder)
}
