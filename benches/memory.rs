//! Memory binder vs a bare tokio channel + serde_json (DESIGN §9, in-process row).
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
//! Prints msgs/s and p50/p99 latency for both, the process peak RSS (`VmHWM`) after the binder
//! phase (which runs second, so the figure covers both phases), and one `RESULT` line.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use cloud_stream::prelude::*;
use tokio::sync::{mpsc, Notify};

/// Capacity of each raw channel.
const RAW_CAPACITY: usize = 1024;
/// Give up on a phase after this long.
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);

static EPOCH: OnceLock<Instant> = OnceLock::new();

fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// The benchmark event: about 100 bytes of JSON.
#[derive(Debug, Serialize, Deserialize)]
struct Event {
    id: u64,
    sent_ns: u64,
    kind: String,
    body: String,
}

impl Event {
    fn new(id: u64) -> Self {
        Event {
            id,
            sent_ns: now_ns(),
            kind: "order.created".to_owned(),
            body: "2 x widget for customer 42, ship express".to_owned(),
        }
    }

    fn transform(mut self) -> Self {
        self.body = self.body.to_uppercase();
        self
    }
}

/// Throughput and latency of one phase.
struct PhaseResult {
    msgs_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    elapsed: Duration,
}

fn summarize(n: usize, elapsed: Duration, mut latencies_ns: Vec<u64>) -> PhaseResult {
    assert_eq!(latencies_ns.len(), n, "every message must be recorded");
    latencies_ns.sort_unstable();
    let pct = |p: f64| {
        let i = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
        latencies_ns[i] as f64 / 1e6
    };
    PhaseResult {
        msgs_per_s: n as f64 / elapsed.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        elapsed,
    }
}

async fn raw_phase(n: usize) -> PhaseResult {
    let (in_tx, mut in_rx) = mpsc::channel::<Vec<u8>>(RAW_CAPACITY);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(RAW_CAPACITY);
    let start = Instant::now();

    let producer = tokio::spawn(async move {
        for id in 0..n as u64 {
            let bytes = serde_json::to_vec(&Event::new(id)).expect("serialize");
            if in_tx.send(bytes).await.is_err() {
                break;
            }
        }
    });
    let transform = tokio::spawn(async move {
        while let Some(bytes) = in_rx.recv().await {
            let event: Event = serde_json::from_slice(&bytes).expect("deserialize");
            let out = serde_json::to_vec(&event.transform()).expect("serialize");
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
    summarize(n, elapsed, latencies)
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

async fn binder_phase(n: usize) -> Result<PhaseResult, cloud_stream::Error> {
    let latencies = Arc::new(Mutex::new(Vec::<u64>::with_capacity(n)));
    let received = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(Notify::new());

    let app = {
        let latencies = Arc::clone(&latencies);
        let received = Arc::clone(&received);
        let done = Arc::clone(&done);
        StreamApp::builder()
            .config_yaml(BINDER_CONFIG)
            .function("transform", |e: Event| async move {
                Ok::<_, HandlerError>(e.transform())
            })
            .consumer("sink", move |e: Event| {
                let latency = now_ns().saturating_sub(e.sent_ns);
                latencies.lock().expect("latencies").push(latency);
                if received.fetch_add(1, Ordering::AcqRel) + 1 == n {
                    done.notify_one();
                }
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
                .send("bench-in", &Event::new(id))
                .await
                .expect("bridge send");
        }
    });
    tokio::time::timeout(PHASE_TIMEOUT, done.notified())
        .await
        .expect("binder phase timed out");
    let elapsed = start.elapsed();
    producer.await.expect("producer task");
    app.shutdown().await;
    let latencies = std::mem::take(&mut *latencies.lock().expect("latencies"));
    Ok(summarize(n, elapsed, latencies))
}

/// Peak resident set size of this process, in MiB (`VmHWM`), if the platform reports it.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn message_count() -> usize {
    // `cargo bench` appends `--bench`; ignore flags.
    let arg = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let raw = arg.or_else(|| std::env::var("BENCH_MESSAGES").ok());
    match raw {
        Some(s) => s.replace('_', "").parse().unwrap_or_else(|_| {
            eprintln!("bench_memory: not a message count: {s}");
            std::process::exit(2)
        }),
        None => 1_000_000,
    }
}

fn print_phase(name: &str, r: &PhaseResult) {
    println!(
        "{name:<7} {:>12.0} msgs/s   p50 {:>8.3} ms   p99 {:>8.3} ms   ({:.2} s)",
        r.msgs_per_s,
        r.p50_ms,
        r.p99_ms,
        r.elapsed.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let n = message_count();
    if n == 0 {
        eprintln!("bench_memory: N must be at least 1");
        std::process::exit(2);
    }
    let sample = serde_json::to_vec(&Event::new(0))?.len();
    println!(
        "memory binder vs tokio mpsc + serde_json: {n} messages of ~{sample} B JSON, {} worker threads",
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );

    let raw = raw_phase(n).await;
    print_phase("raw", &raw);
    let raw_rss = peak_rss_mb();

    let binder = binder_phase(n).await?;
    print_phase("binder", &binder);
    let rss = peak_rss_mb();
    if let (Some(a), Some(b)) = (raw_rss, rss) {
        println!("peak RSS (VmHWM, whole process): {a:.1} MiB after raw, {b:.1} MiB after binder");
    }

    println!(
        "RESULT binder=memory raw_msgs_per_s={:.3} binder_msgs_per_s={:.3} ratio={:.3} raw_p99_ms={:.3} binder_p99_ms={:.3} binder_rss_mb={:.3}",
        raw.msgs_per_s,
        binder.msgs_per_s,
        binder.msgs_per_s / raw.msgs_per_s,
        raw.p99_ms,
        binder.p99_ms,
        rss.unwrap_or(0.0),
    );
    Ok(())
}
