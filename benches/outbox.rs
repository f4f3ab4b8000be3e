//! `scripts/bench outbox`: what the PostgreSQL outbox and inbox cost on RabbitMQ, against the
//! same work without them, in the same run (`scripts/brokers up rabbit postgres` first).
//!
//! **Outbox (`RESULT binder=outbox`)**: `WINDOW` writers each commit a transaction holding one
//! business row, then wait for a free slot (closed loop: a slot frees when the consumer
//! received an event).
//! * **raw**: the dual write the outbox replaces: commit, then `StreamBridge::send` (with
//!   confirm) right after.
//! * **binder**: the event written to the outbox in the same transaction; the relay (LISTEN/
//!   NOTIFY woken) publishes it.
//!
//! Latency is from the commit call to the consumer's receipt (commit-to-publish plus the
//! broker hop, the same hop on both sides).
//!
//! **Inbox (`RESULT binder=idempotent`)**: `StreamBridge` senders → a consumer binding with
//! default settings. **raw**: a plain handler; **binder**: the same handler behind
//! `Inbox::handler` (per message: begin, insert the inbox row, commit). Latency is end to end.
//!
//! Each comparison runs `BENCH_ROUNDS` (default 3) alternating rounds; medians are reported.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloud_stream::postgres::{self as pg, Inbox, Relay};
use cloud_stream::prelude::*;
use common::{now_ns, summarize, BoxResult, Event, LatencySink, PhaseResult};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::Semaphore;

/// Transactions (outbox) or messages (inbox) in flight.
const WINDOW: usize = 32;
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);

fn app_yaml(uri: &str, definition: &str, destination: &str) -> String {
    format!(
        r#"
spring.cloud.function.definition: {definition}
spring.cloud.stream:
  default-binder: rabbit
  binders.rabbit: {{ type: rabbit, environment: {{ uri: "{uri}" }} }}
  output-bindings: load
  bindings:
    load: {{ destination: {destination} }}
    sink-in-0: {{ destination: {destination}, group: bench }}
"#
    )
}

/// A consumer `sink` recording each event's latency from `started[id]` (0: from its `sent_ns`).
fn recording_sink(
    sink: &LatencySink,
    window: &Arc<Semaphore>,
    started: &Arc<Vec<AtomicU64>>,
) -> impl Fn(Event) -> std::future::Ready<Result<(), HandlerError>> + Send + Sync + 'static {
    let (s, w, started) = (sink.clone(), Arc::clone(window), Arc::clone(started));
    move |e: Event| {
        let at = started
            .get(e.id as usize)
            .map_or(0, |t| t.load(Ordering::Acquire));
        s.record(if at == 0 { e.sent_ns } else { at });
        w.add_permits(1);
        std::future::ready(Ok(()))
    }
}

/// One outbox phase: `WINDOW` writers commit `n` transactions; `via_outbox` puts the event in
/// the transaction (else it is sent after the commit).
async fn outbox_phase(
    uri: &str,
    pool: &PgPool,
    n: usize,
    tag: &str,
    via_outbox: bool,
) -> BoxResult<PhaseResult> {
    let destination = format!("outbox-{tag}");
    let window = Arc::new(Semaphore::new(WINDOW));
    let sink = LatencySink::new(n);
    let started: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let mut builder = StreamApp::builder()
        .env(Default::default())
        .config_yaml(&app_yaml(uri, "sink", &destination))
        .consumer("sink", recording_sink(&sink, &window, &started));
    if via_outbox {
        builder = builder.extension(Relay::new(pool.clone()).extension());
    }
    let app = builder.build().await?;
    let start = Instant::now();
    let writers: Vec<_> = (0..WINDOW)
        .map(|k| {
            let (pool, bridge, w) = (pool.clone(), app.bridge(), Arc::clone(&window));
            let (started, destination) = (Arc::clone(&started), destination.clone());
            tokio::spawn(async move {
                for id in (k..n).step_by(WINDOW) {
                    w.acquire().await.expect("window").forget();
                    let event = Event::kib(id as u64);
                    let mut tx = pool.begin().await.expect("begin");
                    sqlx::query("INSERT INTO bench_orders (id) VALUES ($1)")
                        .bind(id as i64)
                        .execute(&mut *tx)
                        .await
                        .expect("insert");
                    if via_outbox {
                        pg::outbox::send(&mut tx, &destination, &event)
                            .await
                            .expect("outbox");
                    }
                    started[id].store(now_ns(), Ordering::Release);
                    tx.commit().await.expect("commit");
                    if !via_outbox {
                        bridge.send(&destination, &event).await.expect("send");
                    }
                }
            })
        })
        .collect();
    sink.wait(PHASE_TIMEOUT).await;
    let elapsed = start.elapsed();
    for w in writers {
        w.await?;
    }
    app.shutdown().await;
    Ok(summarize(n, elapsed, sink.take()))
}

/// One inbox phase: `StreamBridge` senders → consumer `sink`, behind the inbox when
/// `idempotent`.
async fn inbox_phase(
    uri: &str,
    pool: &PgPool,
    n: usize,
    tag: &str,
    idempotent: bool,
) -> BoxResult<PhaseResult> {
    let destination = format!("inbox-{tag}");
    let window = Arc::new(Semaphore::new(WINDOW));
    let sink = LatencySink::new(n);
    let record = recording_sink(&sink, &window, &Arc::new(Vec::new()));
    let builder = StreamApp::builder()
        .env(Default::default())
        .config_yaml(&app_yaml(uri, "sink", &destination));
    let builder = if idempotent {
        let inbox = Inbox::new(pool.clone(), format!("bench-{tag}"));
        builder.consumer(
            "sink",
            inbox.handler(move |_tx, m: Message<Event>| record(m.payload)),
        )
    } else {
        builder.consumer("sink", record)
    };
    let app = builder.build().await?;
    let start = Instant::now();
    let senders = common::bridge_driver(&app, n, WINDOW, &window);
    sink.wait(PHASE_TIMEOUT).await;
    let elapsed = start.elapsed();
    for s in senders {
        s.await?;
    }
    app.shutdown().await;
    Ok(summarize(n, elapsed, sink.take()))
}

/// A pool working in a new schema `schema` with the library's tables and `bench_orders`.
async fn bench_pool(url: &str, schema: &str) -> BoxResult<PgPool> {
    let admin = PgPool::connect(url).await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await?;
    let options: PgConnectOptions = url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(WINDOW as u32 + 4)
        .connect_with(options.options([("search_path", schema)]))
        .await?;
    pg::migrate(&pool).await?;
    sqlx::query("CREATE TABLE bench_orders (id bigint NOT NULL)")
        .execute(&pool)
        .await?;
    Ok(pool)
}

#[tokio::main]
async fn main() -> BoxResult<()> {
    common::init_tracing();
    let n = common::message_count("outbox", 5_000);
    let uri = std::env::var("CLOUD_STREAM_TEST_AMQP_URI")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let url = std::env::var("CLOUD_STREAM_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let schema = format!("cs_bench_{tag}");
    let pool = bench_pool(&url, &schema).await?;
    let rounds = common::rounds(3);
    let (uri, tag, pool) = (uri.as_str(), tag.as_str(), &pool);
    println!("outbox: commit then send (raw) vs the event in the transaction, published by the relay (binder): {n} transactions, 1 KiB JSON, RabbitMQ, window {WINDOW}");
    let outbox = common::compare(
        "outbox",
        n,
        rounds,
        |round| async move { outbox_phase(uri, pool, n, &format!("{tag}b{round}"), true).await },
        |round| async move { outbox_phase(uri, pool, n, &format!("{tag}r{round}"), false).await },
    )
    .await;
    println!("inbox: a plain consumer (raw) vs the same consumer behind the PostgreSQL inbox (binder): {n} messages, 1 KiB JSON, RabbitMQ, default consumer settings, window {WINDOW}");
    let inbox = common::compare(
        "idempotent",
        n,
        rounds,
        |round| async move { inbox_phase(uri, pool, n, &format!("{tag}b{round}"), true).await },
        |round| async move { inbox_phase(uri, pool, n, &format!("{tag}r{round}"), false).await },
    )
    .await;
    let admin = PgPool::connect(&url).await?;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await?;
    outbox.and(inbox)
}
