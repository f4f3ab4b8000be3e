//! Kafka: raw rdkafka vs a cloud-stream Function binding, same broker, same run (docs/architecture.md §9).
//!
//! Run with `scripts/bench kafka [N]` (default 20 000) against the broker at
//! `CLOUD_STREAM_TEST_KAFKA_BROKERS` (default `127.0.0.1:9092`, tansu from
//! `scripts/brokers up kafka`), or with `scripts/bench kafka --mock [N]` against librdkafka's
//! mock cluster in this process (`RESULT binder=kafka-mock`): tansu is slower than either
//! client, so on it both sides run at its pace and the ratio says little about us; the mock
//! cluster keeps up with the clients, so there the ratio measures the client paths. Both phases move N events of 1 KiB JSON through the same
//! topology, on fresh topics (3 partitions each, created through the admin API):
//!
//! * **raw**: an idempotent `FutureProducer` (acks=all) sends to `in` with many sends in flight,
//!   each awaiting its delivery report; a transform `StreamConsumer` (group, auto-commit of
//!   stored offsets) deserializes, transforms, produces to `out` awaiting the delivery report
//!   (up to 64 in flight), then stores the offset; a sink `StreamConsumer` records the
//!   end-to-end latency.
//! * **binder**: `StreamBridge::send` (bounded concurrency, each awaiting its confirm) →
//!   Function binding `transform` (`concurrency: 64`, `max-attempts: 1`) → consumer binding
//!   `sink` recording the latency; the binder commits only completed prefixes.
//!
//! Runs `BENCH_ROUNDS` (default 3) alternating rounds and reports each side by its median round:
//! msgs/s, p50/p99 latency and CPU per message, the peak RSS after the first binder phase, and
//! the `RESULT` line (see `common`).

mod common;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cloud_stream::binder_kafka::rdkafka::admin::{
    AdminClient, AdminOptions, NewTopic, TopicReplication,
};
use cloud_stream::binder_kafka::rdkafka::client::DefaultClientContext;
use cloud_stream::binder_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
use cloud_stream::binder_kafka::rdkafka::message::Message as _;
use cloud_stream::binder_kafka::rdkafka::producer::{
    BaseProducer, FutureProducer, FutureRecord, Producer as _,
};
use cloud_stream::binder_kafka::rdkafka::util::Timeout;
use cloud_stream::binder_kafka::rdkafka::ClientConfig;
use cloud_stream::prelude::*;
use common::{now_ns, summarize, BoxResult, Event, LatencySink, PhaseResult};
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use tokio::sync::Semaphore;

const PHASE_TIMEOUT: Duration = Duration::from_secs(600);
const IN_FLIGHT: usize = 64;
/// Events in flight end to end (both phases): the producer sends again only when the sink has
/// received one (closed loop), so latency measures the path, not a backlog, and the mock
/// cluster (which keeps only the last few MiB of each partition) never drops unread events.
const WINDOW: usize = 1024;
const PARTITIONS: i32 = 3;

fn unique(base: &str) -> String {
    format!(
        "{base}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Settings of every consumer (raw and binder) on the mock cluster, which answers a fetch only
/// when `fetch.wait.max.ms` runs out rather than when data arrives, and whose empty answers
/// librdkafka backs off from: librdkafka's defaults (500 ms each) would set the pace.
const MOCK_CONSUMER: &[(&str, &str)] =
    &[("fetch.wait.max.ms", "5"), ("fetch.error.backoff.ms", "5")];

/// The in-process mock cluster's owner (`--mock`).
static MOCK: OnceLock<BaseProducer> = OnceLock::new();

async fn create_topics(brokers: &str, topics: &[&str]) {
    // The mock cluster does not serve the admin API's CreateTopics: it is told directly.
    if let Some(cluster) = MOCK.get().and_then(|owner| owner.client().mock_cluster()) {
        for t in topics {
            cluster
                .create_topic(t, PARTITIONS, 1)
                .expect("create mock topic");
        }
        return;
    }
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, PARTITIONS, TopicReplication::Fixed(1)))
        .collect();
    admin
        .create_topics(&new, &AdminOptions::new())
        .await
        .expect("create topics");
}

fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

fn consumer(brokers: &str, group: &str, topic: &str, auto_store: bool) -> StreamConsumer {
    let mut config = ClientConfig::new();
    if MOCK.get().is_some() {
        for (k, v) in MOCK_CONSUMER {
            config.set(*k, *v);
        }
    }
    let c: StreamConsumer = config
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set(
            "enable.auto.offset.store",
            if auto_store { "true" } else { "false" },
        )
        .create()
        .expect("consumer");
    c.subscribe(&[topic]).expect("subscribe");
    c
}

async fn raw_phase(brokers: &str, n: usize) -> BoxResult<PhaseResult> {
    let (tin, tout) = (unique("bench-raw-in"), unique("bench-raw-out"));
    create_topics(brokers, &[&tin, &tout]).await;
    let sink = consumer(brokers, &unique("raw-sink"), &tout, true);
    let transform = Arc::new(consumer(brokers, &unique("raw-transform"), &tin, false));
    let out_producer = producer(brokers);
    let window = Arc::new(Semaphore::new(WINDOW));
    let (t_in, w) = (tin.clone(), Arc::clone(&window));
    let p = producer(brokers);
    let tf = Arc::clone(&transform);
    let transformer = tokio::spawn(async move {
        let permits = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut done = 0usize;
        while done < n + 1 {
            let m = tf.recv().await.expect("raw transform recv");
            let event: Event = serde_json::from_slice(m.payload().unwrap_or(&[])).expect("json");
            let (topic, partition, offset) = (m.topic().to_owned(), m.partition(), m.offset());
            drop(m);
            let permit = Arc::clone(&permits).acquire_owned().await.expect("permit");
            let (p, t, tf2) = (out_producer.clone(), tout.clone(), Arc::clone(&tf));
            tokio::spawn(async move {
                let out = serde_json::to_vec(&event.uppercase_kind()).expect("serialize");
                p.send(FutureRecord::<(), _>::to(&t).payload(&out), Timeout::Never)
                    .await
                    .expect("raw transform send");
                let _ = tf2.store_offset(&topic, partition, offset);
                drop(permit);
            });
            done += 1;
        }
    });
    // As in the binder phase: one warm-up event through the whole path (both groups joined,
    // producers connected) before timing; it is not counted.
    p.send(
        FutureRecord::<(), _>::to(&tin).payload(&serde_json::to_vec(&Event::kib(u64::MAX))?),
        Timeout::Never,
    )
    .await
    .map_err(|(e, _)| e)?;
    tokio::time::timeout(PHASE_TIMEOUT, sink.recv()).await??;
    let start = Instant::now();
    let produce = tokio::spawn(async move {
        let mut pending = FuturesUnordered::new();
        for id in 0..n as u64 {
            w.acquire().await.expect("window").forget();
            let payload = serde_json::to_vec(&Event::kib(id)).expect("serialize");
            let p = p.clone();
            let t = t_in.clone();
            pending.push(async move {
                p.send(
                    FutureRecord::<(), _>::to(&t).payload(&payload),
                    Timeout::Never,
                )
                .await
                .expect("raw send");
            });
            // Reap finished sends without waiting.
            while pending.next().now_or_never().flatten().is_some() {}
        }
        while pending.next().await.is_some() {}
    });
    let mut latencies = Vec::with_capacity(n);
    let sink_all = async {
        while latencies.len() < n {
            let m = sink.recv().await.expect("raw sink recv");
            let e: Event = serde_json::from_slice(m.payload().unwrap_or(&[])).expect("json");
            latencies.push(now_ns().saturating_sub(e.sent_ns));
            window.add_permits(1);
        }
    };
    tokio::time::timeout(PHASE_TIMEOUT, sink_all)
        .await
        .expect("raw phase timed out");
    let elapsed = start.elapsed();
    produce.await.expect("producer");
    transformer.await.expect("transformer");
    Ok(summarize(n, elapsed, latencies))
}

async fn binder_phase(brokers: &str, n: usize) -> BoxResult<PhaseResult> {
    let (tin, tout) = (unique("bench-in"), unique("bench-out"));
    create_topics(brokers, &[&tin, &tout]).await;
    let yaml = format!(
        r#"
spring:
  cloud:
    function:
      definition: transform;sink
    stream:
      default-binder: kafka
      binders:
        kafka: {{ type: kafka, environment: {{ brokers: "{brokers}"{provisioning} }} }}
      bindings:
        transform-in-0:  {{ destination: {tin}, group: {g1}, consumer: {{ max-attempts: 1, concurrency: {IN_FLIGHT} }} }}
        transform-out-0: {{ destination: {tout} }}
        sink-in-0:       {{ destination: {tout}, group: {g2}, consumer: {{ max-attempts: 1 }} }}
"#,
        // The mock cluster has no admin API: the topics are made up front, as on tansu.
        provisioning = if MOCK.get().is_some() {
            let props: Vec<String> = MOCK_CONSUMER
                .iter()
                .map(|(k, v)| format!("{k}: \"{v}\""))
                .collect();
            format!(
                ", auto-create-topics: false, consumer-properties: {{ {} }}",
                props.join(", ")
            )
        } else {
            String::new()
        },
        g1 = unique("transform"),
        g2 = unique("sink"),
    );
    let sink = LatencySink::new(n);
    let window = Arc::new(Semaphore::new(WINDOW));
    let app = {
        let (sink, w) = (sink.clone(), Arc::clone(&window));
        StreamApp::builder()
            .env(Default::default())
            .config_yaml(&yaml)
            .function("transform", |e: Event| async move {
                Ok::<_, HandlerError>(e.uppercase_kind())
            })
            .consumer("sink", move |e: Event| {
                sink.record(e.sent_ns);
                w.add_permits(1);
                async { Ok(()) }
            })
            .build()
            .await?
    };
    let bridge = app.bridge();
    // Resolve the bridge's producer binding once before timing (the raw phase also creates its
    // producer up front); the warm-up event is not counted.
    bridge
        .send(&tin, &Event::kib(u64::MAX))
        .await
        .expect("warm-up send");
    while sink.received() < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sink.reset();
    window.acquire().await?.forget(); // the permit the warm-up event gave back
    let start = Instant::now();
    let (t, w) = (tin.clone(), Arc::clone(&window));
    let producer = tokio::spawn(async move {
        let mut pending = FuturesUnordered::new();
        for id in 0..n as u64 {
            w.acquire().await.expect("window").forget();
            let b = bridge.clone();
            let t = t.clone();
            pending.push(async move { b.send(&t, &Event::kib(id)).await.expect("bridge send") });
            while pending.next().now_or_never().flatten().is_some() {}
        }
        while pending.next().await.is_some() {}
    });
    sink.wait(PHASE_TIMEOUT).await;
    let elapsed = start.elapsed();
    producer.await.expect("producer task");
    app.shutdown().await;
    Ok(summarize(n, elapsed, sink.take()))
}

/// Starts librdkafka's mock cluster (`PARTITIONS` brokers, owned by [`MOCK`] for the whole
/// run) and returns its bootstrap servers.
fn mock_cluster() -> BoxResult<String> {
    let owner: BaseProducer = ClientConfig::new()
        .set("test.mock.num.brokers", PARTITIONS.to_string())
        .create()?;
    let owner = MOCK.get_or_init(|| owner);
    let cluster = owner.client().mock_cluster();
    Ok(cluster
        .ok_or("librdkafka made no mock cluster")?
        .bootstrap_servers())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> BoxResult<()> {
    common::init_tracing();
    let n = common::message_count("kafka", 20_000);
    let mock = std::env::args().any(|a| a == "--mock");
    let brokers = match mock {
        true => mock_cluster()?,
        false => std::env::var("CLOUD_STREAM_TEST_KAFKA_BROKERS")
            .unwrap_or_else(|_| "127.0.0.1:9092".to_owned()),
    };
    let sample = serde_json::to_vec(&Event::kib(0))?.len();
    println!(
        "kafka binder vs raw rdkafka at {brokers}{}: {n} messages of {sample} B JSON, in -> transform -> out -> sink, {} worker threads",
        if mock { " (librdkafka mock cluster, in process)" } else { "" },
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    let brokers = brokers.as_str();
    common::compare(
        if mock { "kafka-mock" } else { "kafka" },
        n,
        common::rounds(3),
        |_| binder_phase(brokers, n),
        |_| raw_phase(brokers, n),
    )
    .await
}
