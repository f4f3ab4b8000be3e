//! What every `scripts/bench <binder>` run shares: the clock in the events, latency summaries,
//! process CPU and peak RSS, the command line, alternating rounds with medians, and the final
//! `RESULT` line (a contract other tooling parses:
//! `RESULT binder=<b> raw_msgs_per_s=.. binder_msgs_per_s=.. ratio=.. raw_p99_ms=.. binder_p99_ms=.. binder_rss_mb=..`,
//! then, added later and so after those, `raw_p50_ms binder_p50_ms raw_cpu_us_per_msg
//! binder_cpu_us_per_msg`).
//!
//! Each bench binary includes this file with `mod common;` and uses part of it.
#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// Errors a bench phase may end with.
pub type BoxResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the first call in this process (events carry it as their send time).
pub fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// The benchmark event: it carries its send time, so the end of the pipeline can measure the
/// end-to-end latency.
#[derive(Debug, Serialize, Deserialize)]
pub struct Event {
    /// Sequence number.
    pub id: u64,
    /// When it was sent ([`now_ns`]).
    pub sent_ns: u64,
    /// An event type, uppercased by the broker benches' transform.
    pub kind: String,
    /// Payload text (padding for the 1 KiB events).
    pub body: String,
}

impl Event {
    /// About 100 bytes of JSON (the in-process bench).
    pub fn small(id: u64) -> Self {
        Event::with_body(id, "2 x widget for customer 42, ship express".to_owned())
    }

    /// 1 KiB of JSON (for id 0; larger ids add a few digits): the broker benches' workload.
    pub fn kib(id: u64) -> Self {
        static BODY: OnceLock<String> = OnceLock::new();
        let body = BODY.get_or_init(|| {
            let base =
                serde_json::to_vec(&Event::with_body(0, String::new())).map_or(64, |v| v.len());
            "x".repeat(1024usize.saturating_sub(base))
        });
        Event::with_body(id, body.clone())
    }

    fn with_body(id: u64, body: String) -> Self {
        Event {
            id,
            sent_ns: now_ns(),
            kind: "order.created".to_owned(),
            body,
        }
    }

    /// The broker benches' transform: cheap, so the broker path dominates.
    pub fn uppercase_kind(mut self) -> Self {
        self.kind = self.kind.to_uppercase();
        self
    }

    /// The in-process bench's transform.
    pub fn uppercase_body(mut self) -> Self {
        self.body = self.body.to_uppercase();
        self
    }
}

/// The end of a pipeline: records each event's end-to-end latency and signals when `n` arrived.
/// Cheap to clone (shared), so a consumer handler can own one.
#[derive(Clone)]
pub struct LatencySink {
    inner: Arc<SinkState>,
}

struct SinkState {
    n: usize,
    latencies: Mutex<Vec<u64>>,
    received: AtomicUsize,
    done: Notify,
}

impl LatencySink {
    /// A sink expecting `n` events.
    pub fn new(n: usize) -> Self {
        LatencySink {
            inner: Arc::new(SinkState {
                n,
                latencies: Mutex::new(Vec::with_capacity(n)),
                received: AtomicUsize::new(0),
                done: Notify::new(),
            }),
        }
    }

    /// Records an event sent at `sent_ns` (see [`now_ns`]).
    pub fn record(&self, sent_ns: u64) {
        let latency = now_ns().saturating_sub(sent_ns);
        if let Ok(mut l) = self.inner.latencies.lock() {
            l.push(latency);
        }
        if self.inner.received.fetch_add(1, Ordering::AcqRel) + 1 == self.inner.n {
            self.inner.done.notify_one();
        }
    }

    /// Events recorded so far.
    pub fn received(&self) -> usize {
        self.inner.received.load(Ordering::Acquire)
    }

    /// Forgets what was recorded (after a warm-up event).
    pub fn reset(&self) {
        self.inner.received.store(0, Ordering::Release);
        if let Ok(mut l) = self.inner.latencies.lock() {
            l.clear();
        }
    }

    /// Waits until `n` events arrived; panics after `timeout` (the phase is broken then).
    pub async fn wait(&self, timeout: Duration) {
        tokio::time::timeout(timeout, self.inner.done.notified())
            .await
            .expect("phase timed out before every event arrived");
    }

    /// The recorded latencies, in nanoseconds.
    pub fn take(&self) -> Vec<u64> {
        self.inner
            .latencies
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }
}

/// `window` senders through the app's `StreamBridge` to the output binding `load`, each
/// sending its share of `n` 1 KiB events as the window's permits allow.
pub fn bridge_driver(
    app: &cloud_stream::RunningApp,
    n: usize,
    window: usize,
    permits: &Arc<tokio::sync::Semaphore>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..window)
        .map(|k| {
            let (bridge, w) = (app.bridge(), Arc::clone(permits));
            tokio::spawn(async move {
                for id in (k..n).step_by(window) {
                    w.acquire().await.expect("window").forget();
                    bridge
                        .send("load", &Event::kib(id as u64))
                        .await
                        .expect("bridge send");
                }
            })
        })
        .collect()
}

/// Throughput and latency of one phase.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    /// Messages per second, first send to last receipt.
    pub msgs_per_s: f64,
    /// Median end-to-end latency.
    pub p50_ms: f64,
    /// 99th percentile end-to-end latency.
    pub p99_ms: f64,
    /// Wall time of the phase.
    pub elapsed: Duration,
    /// Process CPU time (user + system) per message, in microseconds (0 when unknown).
    pub cpu_us_per_msg: f64,
}

/// Summarizes a phase from the latencies of its first `n` messages.
pub fn summarize(n: usize, elapsed: Duration, mut latencies_ns: Vec<u64>) -> PhaseResult {
    assert!(
        latencies_ns.len() >= n && n > 0,
        "every message must be recorded ({} of {n})",
        latencies_ns.len()
    );
    latencies_ns.truncate(n);
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
        cpu_us_per_msg: 0.0,
    }
}

/// CPU time (user + system) this process has used so far, in microseconds (0 off Linux).
pub fn cpu_us() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // The fields after the command name (in parentheses); utime and stime are the 14th and
    // 15th fields overall, counted in USER_HZ (100 on Linux) ticks.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) * 10_000.0
}

/// Peak resident set size of this process, in MiB (`VmHWM`), if the platform reports it.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Logs at `warn` unless `RUST_LOG` says otherwise.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
}

/// The message count: the first non-flag argument (`cargo bench` adds `--bench`), else
/// `BENCH_MESSAGES`, else `default`. Exits 2 on a malformed or zero count.
pub fn message_count(bench: &str, default: usize) -> usize {
    let arg = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let n = match arg.or_else(|| std::env::var("BENCH_MESSAGES").ok()) {
        Some(s) => s.replace('_', "").parse().unwrap_or_else(|_| {
            eprintln!("bench {bench}: not a message count: {s}");
            std::process::exit(2)
        }),
        None => default,
    };
    if n == 0 {
        eprintln!("bench {bench}: N must be at least 1");
        std::process::exit(2);
    }
    n
}

/// Rounds per side (`BENCH_ROUNDS`, else `default`).
pub fn rounds(default: usize) -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|r: &usize| *r > 0)
        .unwrap_or(default)
}

/// Prints one phase's figures.
pub fn print_phase(name: &str, r: &PhaseResult) {
    println!(
        "{name:<9} {:>10.0} msgs/s   p50 {:>9.3} ms   p99 {:>9.3} ms   ({:.2} s, {:.1} us CPU/msg in this process)",
        r.msgs_per_s,
        r.p50_ms,
        r.p99_ms,
        r.elapsed.as_secs_f64(),
        r.cpu_us_per_msg
    );
}

/// The round with the median throughput.
fn median(mut results: Vec<PhaseResult>) -> PhaseResult {
    results.sort_by(|a, b| a.msgs_per_s.total_cmp(&b.msgs_per_s));
    let mid = results.len() / 2;
    results.swap_remove(mid)
}

async fn measured<F: Future<Output = BoxResult<PhaseResult>>>(
    n: usize,
    phase: F,
) -> BoxResult<PhaseResult> {
    let before = cpu_us();
    let mut r = phase.await?;
    r.cpu_us_per_msg = (cpu_us() - before) / n as f64;
    Ok(r)
}

/// Runs `rounds` alternating rounds (binder first, so the peak RSS taken after the first
/// binder phase is the binder's own), reports each side by its median round (which keeps the
/// comparison fair on a machine whose CPU is shared), and prints the `RESULT` line.
///
/// Each phase gets the round number, for unique resource names.
pub async fn compare<B, BF, R, RF>(
    binder_name: &str,
    n: usize,
    rounds: usize,
    mut binder_phase: B,
    mut raw_phase: R,
) -> BoxResult<()>
where
    B: FnMut(usize) -> BF,
    BF: Future<Output = BoxResult<PhaseResult>>,
    R: FnMut(usize) -> RF,
    RF: Future<Output = BoxResult<PhaseResult>>,
{
    let (mut raws, mut binders, mut binder_rss) = (Vec::new(), Vec::new(), None);
    for round in 0..rounds.max(1) {
        let b = measured(n, binder_phase(round)).await?;
        print_phase(&format!("binder#{}", round + 1), &b);
        if round == 0 {
            binder_rss = peak_rss_mb();
        }
        binders.push(b);
        let a = measured(n, raw_phase(round)).await?;
        print_phase(&format!("raw#{}", round + 1), &a);
        raws.push(a);
    }
    let (raw, binder) = (median(raws), median(binders));
    println!("median of {} round(s):", rounds.max(1));
    print_phase("raw", &raw);
    print_phase("binder", &binder);
    if let (Some(b), Some(all)) = (binder_rss, peak_rss_mb()) {
        println!(
            "peak RSS (VmHWM): {b:.1} MiB after the first binder phase, {all:.1} MiB after all phases"
        );
    }
    let ratio = binder.msgs_per_s / raw.msgs_per_s;
    println!(
        "ratio {ratio:.3} (binder/raw msgs/s), p99 delta {:+.3} ms",
        binder.p99_ms - raw.p99_ms
    );
    println!(
        "RESULT binder={binder_name} raw_msgs_per_s={:.3} binder_msgs_per_s={:.3} ratio={ratio:.3} raw_p99_ms={:.3} binder_p99_ms={:.3} binder_rss_mb={:.3} raw_p50_ms={:.3} binder_p50_ms={:.3} raw_cpu_us_per_msg={:.1} binder_cpu_us_per_msg={:.1}",
        raw.msgs_per_s,
        binder.msgs_per_s,
        raw.p99_ms,
        binder.p99_ms,
        binder_rss.unwrap_or(0.0),
        raw.p50_ms,
        binder.p50_ms,
        raw.cpu_us_per_msg,
        binder.cpu_us_per_msg,
    );
    Ok(())
}
