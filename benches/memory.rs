//! Memory binder vs a bare tokio channel + serde_json (docs/architecture.md §9, in-process row).
//!
//! Run with `scripts/bench memory [N]` (or `cargo bench --bench memory -- N`). One process, one
//! multi-threaded tokio runtime, two phases over the same workload — N small JSON events
//! (~100 B) each carrying a send timestamp:
//!
//! * **raw**: producer task → serialize → bounded `mpsc` (1024) → transform task (deserialize,
//!   uppercase a field, serialize) → bounded `mpsc` (1024) → sink task (deserialize, record the
//!   end-to-end latency).
//! * **binder**: `StreamBridge::send("bench-in")` → memory binder → Function binding `transform`
//!   (`bench-in`, group `bench`) → `bench-out` → consumer binding `sink` (group `sink`) recording
//!   the latency; `max-attempts: 1`.
//!
//! Runs `BENCH_ROUNDS` (default 5: a round is short, and background noise on a small machine moves
//! single rounds by 10-20%) alternating rounds and reports each side by its median round; prints
//! msgs/s, p50/p99 latency and CPU per message for each, the peak RSS (`VmHWM`) after the first
//! binder phase, and one `RESULT` line (see `common`).

mod common;

use std::time::{Duration, Instant};

use cloud_stream::prelude::*;
use common::{now_ns, summarize, BoxResult, Event, LatencySink, PhaseResult};
use tokio::sync::mpsc;

/// Capacity of each raw channel.
const RAW_CAPACITY: usize = 1024;
/// Give up on a phase after this long.
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);

async fn raw_phase(n: usize) -> BoxResult<PhaseResult> {
    let (in_tx, mut in_rx) = mpsc::channel::<Vec<u8>>(RAW_CAPACITY);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(RAW_CAPACITY);
    let start = Instant::now();

    let producer = tokio::spawn(async move {
        for id in 0..n as u64 {
            let bytes = serde_json::to_vec(&Event::small(id)).expect("serialize");
            if in_tx.send(bytes).await.is_err() {
                break;
            }
        }
    });
    let transform = tokio::spawn(async move {
        while let Some(bytes) = in_rx.recv().await {
            let event: Event = serde_json::from_slice(&bytes).expect("deserialize");
            let out = serde_json::to_vec(&event.uppercase_body()).expect("serialize");
            if out_tx.send(out).await.is_err() {
                break;
            }
        }
    });
    let sink = tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(n);
        while latencies.len() < n {
            let Some(bytes) = out_rx.recv().await else {
                break;
            };
            let event: Event = serde_json::from_slice(&bytes).expect("deserialize");
            latencies.push(now_ns().saturating_sub(event.sent_ns));
        }
        latencies
    });

    let latencies = tokio::time::timeout(PHASE_TIMEOUT, sink)
        .await
        .expect("raw phase timed out")
        .expect("sink task");
    let elapsed = start.elapsed();
    producer.await.expect("producer task");
    transform.await.expect("transform task");
    Ok(summarize(n, elapsed, latencies))
}

const BINDER_CONFIG: &str = r#"
spring:
  cloud:
    function:
      definition: transform;sink
    stream:
      bindings:
        transform-in-0:  { destination: bench-in, group: bench, consumer: { max-attempts: 1 } }
        transform-out-0: { destination: bench-out }
        sink-in-0:       { destination: bench-out, group: sink, consumer: { max-attempts: 1 } }
"#;

async fn binder_phase(n: usize) -> BoxResult<PhaseResult> {
    let sink = LatencySink::new(n);

    let app = {
        let sink = sink.clone();
        StreamApp::builder()
            .config_yaml(BINDER_CONFIG)
            .function("transform", |e: Event| async move {
                Ok::<_, HandlerError>(e.uppercase_body())
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
        for id in 0..n as u64 {
            bridge
                .send("bench-in", &Event::small(id))
                .await
                .expect("bridge send");
        }
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
    let n = common::message_count("memory", 1_000_000);
    let sample = serde_json::to_vec(&Event::small(0))?.len();
    println!(
        "memory binder vs tokio mpsc + serde_json: {n} messages of ~{sample} B JSON, {} worker threads",
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    common::compare(
        "memory",
        n,
        common::rounds(5),
        |_| binder_phase(n),
        |_| raw_phase(n),
    )
    .await
}
