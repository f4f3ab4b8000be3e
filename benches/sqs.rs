//! SQS/SNS binder vs the raw aws-sdk (docs/architecture.md §9), against the local endpoint (moto's server:
//! `scripts/brokers up sqs`; `CLOUD_STREAM_TEST_AWS_ENDPOINT`, default `http://127.0.0.1:4566`).
//!
//! Run with `scripts/bench sqs [N]` (default N = 2000: moto answers a few hundred calls per
//! second, so larger runs only take longer). One process, two phases over the same workload —
//! N JSON events of 1 KiB carrying a send timestamp, through two hops, as a Function binding
//! does:
//!
//! * **raw**: producer tasks `PublishBatch` (10) to topic `in` → queue `in-bench` (raw
//!   delivery) → transform pollers (`ReceiveMessage` 10, long poll) `PublishBatch` the
//!   transformed events to topic `out` then `DeleteMessageBatch` → queue `out-sink` → sink
//!   pollers record the latency and `DeleteMessageBatch`. Sends are confirmed (the batch
//!   response) before the deletes: at-least-once, like the binder.
//! * **binder**: concurrent `StreamBridge::send("bench-in")` → Function binding `transform`
//!   (`bench-in`, group `bench`) → `bench-out` → consumer binding `sink` (group `sink`);
//!   `max-attempts: 1`, `concurrency: 32`, 4 pollers per binding.
//!
//! Runs `BENCH_ROUNDS` (default 1: moto is slow) alternating rounds and reports each side by its
//! median round: msgs/s, p50/p99 end-to-end latency and CPU per message, the peak RSS (`VmHWM`)
//! after the first binder phase, and one `RESULT` line (see `common`).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloud_stream::binder::BinderEnvironment;
use cloud_stream::binder_sqs::aws_sdk_sns::types::PublishBatchRequestEntry;
use cloud_stream::binder_sqs::aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use cloud_stream::binder_sqs::provision::Clients;
use cloud_stream::binder_sqs::{naming, BinderSettings, DestinationMode};
use cloud_stream::prelude::*;
use common::{now_ns, summarize, BoxResult, Event, LatencySink, PhaseResult};
use futures::StreamExt;
use tokio::sync::Notify;

/// Give up on a phase after this long.
const PHASE_TIMEOUT: Duration = Duration::from_secs(900);
/// Concurrent producers / pollers per stage in the raw phase.
const RAW_PARALLEL: usize = 4;
/// Concurrent sends in flight in the binder phase (the binder batches what is ready).
const BINDER_IN_FLIGHT: usize = 64;

fn endpoint() -> String {
    std::env::var("CLOUD_STREAM_TEST_AWS_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:4566".to_owned())
}

fn environment() -> serde_json::Value {
    serde_json::json!({
        "endpoint": endpoint(), "region": "us-east-1", "access-key": "test", "secret-key": "test"
    })
}

async fn clients() -> Clients {
    let settings =
        BinderSettings::from_environment("bench", &BinderEnvironment::own(environment()))
            .expect("settings");
    Clients::connect(settings).await
}

fn unique(base: &str) -> String {
    format!(
        "{base}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

async fn publish_batch(c: &Clients, topic_arn: &str, bodies: Vec<String>) {
    let mut req = c.sns.publish_batch().topic_arn(topic_arn);
    for (i, b) in bodies.into_iter().enumerate() {
        let e = PublishBatchRequestEntry::builder()
            .id(i.to_string())
            .message(b)
            .build()
            .expect("entry");
        req = req.publish_batch_request_entries(e);
    }
    let out = req.send().await.expect("PublishBatch");
    assert!(
        out.failed().is_empty(),
        "publish failures: {:?}",
        out.failed()
    );
}

async fn delete_batch(c: &Clients, queue_url: &str, receipts: Vec<String>) {
    if receipts.is_empty() {
        return;
    }
    let mut req = c.sqs.delete_message_batch().queue_url(queue_url);
    for (i, r) in receipts.into_iter().enumerate() {
        let e = DeleteMessageBatchRequestEntry::builder()
            .id(i.to_string())
            .receipt_handle(r)
            .build()
            .expect("entry");
        req = req.entries(e);
    }
    let out = req.send().await.expect("DeleteMessageBatch");
    assert!(
        out.failed().is_empty(),
        "delete failures: {:?}",
        out.failed()
    );
}

/// Receives up to 10 (long poll 1 s): (receipt, body) pairs.
async fn receive(c: &Clients, queue_url: &str) -> Vec<(String, String)> {
    let out = c
        .sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("ReceiveMessage");
    out.messages()
        .iter()
        .filter_map(|m| Some((m.receipt_handle()?.to_owned(), m.body()?.to_owned())))
        .collect()
}

async fn raw_phase(n: usize) -> BoxResult<PhaseResult> {
    let c = clients().await;
    let (input, output) = (unique("raw-in"), unique("raw-out"));
    let in_res = c
        .provision_consumer(&input, Some("bench"), DestinationMode::Sns, false, None, 50)
        .await
        .expect("provision in");
    let out_res = c
        .provision_consumer(&output, Some("sink"), DestinationMode::Sns, false, None, 50)
        .await
        .expect("provision out");
    let in_topic = c
        .topic(&naming::topic("", &input, false), false)
        .await
        .expect("topic");
    let out_topic = c
        .topic(&naming::topic("", &output, false), false)
        .await
        .expect("topic");

    let latencies = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let received = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(Notify::new());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    // Transform pollers.
    for _ in 0..RAW_PARALLEL {
        let (c, url, topic, stop) = (
            c.clone(),
            in_res.queue.url.clone(),
            out_topic.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                let got = receive(&c, &url).await;
                if got.is_empty() {
                    continue;
                }
                let mut bodies = Vec::with_capacity(got.len());
                let mut receipts = Vec::with_capacity(got.len());
                for (r, b) in got {
                    let e: Event = serde_json::from_str(&b).expect("event");
                    bodies.push(serde_json::to_string(&e.uppercase_kind()).expect("json"));
                    receipts.push(r);
                }
                publish_batch(&c, &topic, bodies).await;
                delete_batch(&c, &url, receipts).await;
            }
        }));
    }
    // Sink pollers.
    for _ in 0..RAW_PARALLEL {
        let (c, url, stop) = (c.clone(), out_res.queue.url.clone(), stop.clone());
        let (latencies, received, done) = (latencies.clone(), received.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                let got = receive(&c, &url).await;
                let mut receipts = Vec::with_capacity(got.len());
                for (r, b) in got {
                    let e: Event = serde_json::from_str(&b).expect("event");
                    latencies
                        .lock()
                        .expect("latencies")
                        .push(now_ns().saturating_sub(e.sent_ns));
                    receipts.push(r);
                }
                let k = receipts.len();
                delete_batch(&c, &url, receipts).await;
                if k > 0 && received.fetch_add(k, Ordering::AcqRel) + k >= n {
                    done.notify_one();
                }
            }
        }));
    }
    let start = Instant::now();
    // Producers: batches of 10, RAW_PARALLEL at a time.
    let producer = {
        let c = c.clone();
        tokio::spawn(async move {
            futures::stream::iter(
                (0..n as u64)
                    .collect::<Vec<_>>()
                    .chunks(10)
                    .map(|ids| ids.to_vec())
                    .collect::<Vec<_>>(),
            )
            .map(|ids| {
                let c = c.clone();
                let topic = in_topic.clone();
                async move {
                    let bodies = ids
                        .into_iter()
                        .map(|id| serde_json::to_string(&Event::kib(id)).expect("json"))
                        .collect();
                    publish_batch(&c, &topic, bodies).await;
                }
            })
            .buffer_unordered(RAW_PARALLEL)
            .collect::<Vec<_>>()
            .await;
        })
    };
    tokio::time::timeout(PHASE_TIMEOUT, done.notified())
        .await
        .expect("raw phase timed out");
    let elapsed = start.elapsed();
    producer.await.expect("producer");
    stop.store(true, Ordering::Release);
    for t in tasks {
        let _ = t.await;
    }
    let latencies = std::mem::take(&mut *latencies.lock().expect("latencies"));
    Ok(summarize(n, elapsed, latencies))
}

async fn binder_phase(n: usize) -> BoxResult<PhaseResult> {
    let (input, output) = (unique("bench-in"), unique("bench-out"));
    let yaml = format!(
        r#"
spring:
  cloud:
    function:
      definition: transform;sink
    stream:
      default-binder: sqs
      binders:
        sqs:
          type: sqs
          environment: {env}
      bindings:
        transform-in-0:  {{ destination: {input}, group: bench, consumer: {{ max-attempts: 1, concurrency: 32 }} }}
        transform-out-0: {{ destination: {output} }}
        sink-in-0:       {{ destination: {output}, group: sink, consumer: {{ max-attempts: 1, concurrency: 32 }} }}
        bench-in:        {{ destination: {input} }}
      output-bindings: bench-in
      sqs:
        default:
          consumer: {{ wait-time-seconds: 1, pollers: {RAW_PARALLEL} }}
"#,
        env = environment()
    );
    let sink = LatencySink::new(n);
    let app = {
        let sink = sink.clone();
        StreamApp::builder()
            .config_yaml(&yaml)
            .function("transform", |e: Event| async move {
                Ok::<_, HandlerError>(e.uppercase_kind())
            })
            .consumer("sink", move |e: Event| {
                sink.record(e.sent_ns);
                async { Ok(()) }
            })
            .build()
            .await?
    };
    let bridge = app.bridge();
    let start = Instant::now();
    let producer = tokio::spawn(async move {
        futures::stream::iter(0..n as u64)
            .map(|id| {
                let bridge = bridge.clone();
                async move {
                    bridge
                        .send("bench-in", &Event::kib(id))
                        .await
                        .expect("bridge send");
                }
            })
            .buffer_unordered(BINDER_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await;
    });
    sink.wait(PHASE_TIMEOUT).await;
    let elapsed = start.elapsed();
    producer.await.expect("producer task");
    app.shutdown().await;
    Ok(summarize(n, elapsed, sink.take()))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> BoxResult<()> {
    common::init_tracing();
    let n = common::message_count("sqs", 2000);
    let c = clients().await;
    if let Err(e) = c.ping().await {
        eprintln!(
            "bench sqs: endpoint {} not reachable ({e}); run scripts/brokers up sqs",
            endpoint()
        );
        std::process::exit(2);
    }
    let sample = serde_json::to_vec(&Event::kib(0))?.len();
    println!(
        "sqs binder vs raw aws-sdk (SNS topic -> SQS queue, two hops) at {}: {n} messages of {sample} B JSON, {} worker threads",
        endpoint(),
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    common::compare(
        "sqs",
        n,
        common::rounds(1),
        |_| binder_phase(n),
        |_| raw_phase(n),
    )
    .await
}
