//! librdkafka's mock cluster hosted by a test process of its own, so that application processes
//! can be killed and restarted against one broker (shared by `tests/kafka_broker.rs` and
//! `tests/chaos.rs`, whose binaries re-execute themselves in this role).

use std::io::Write;

use cloud_stream::binder_kafka::rdkafka::producer::{BaseProducer, Producer as _};
use cloud_stream::binder_kafka::rdkafka::ClientConfig;

/// Runs the cluster: prints `BOOTSTRAP <addresses>` and keeps it alive until the parent
/// closes this process's stdin (or dies).
pub fn serve() {
    let owner: BaseProducer = ClientConfig::new()
        .set("test.mock.num.brokers", "1")
        .create()
        .expect("librdkafka mock cluster");
    let bootstrap = owner
        .client()
        .mock_cluster()
        .expect("mock cluster")
        .bootstrap_servers();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "BOOTSTRAP {bootstrap}");
    let _ = out.flush();
    drop(out);
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}
