//! RabbitMQ: raw lapin vs a cloud-stream Function binding on the same broker (docs/architecture.md §9).
//!
//! Run with `scripts/bench rabbit [N]` (default 20 000). One process, one multi-threaded tokio
//! runtime, two phases over the same workload — N JSON events of 1 KiB, each carrying its send
//! timestamp, through the same topology: driver → exchange `in` → queue `in.bench` → transform
//! (decode, uppercase a field, encode) → exchange `out` → queue `out.sink` → sink (decode,
//! record the end-to-end latency). Publisher confirms and manual acks everywhere; the transform
//! acks its input only after its output is confirmed.
//!
//! * **raw**: lapin written as well as we can: the driver runs `WINDOW` publishers each awaiting
//!   its own confirm (pipelined confirms); the transform consumes with prefetch `PREFETCH` and
//!   handles each delivery in its own task (decode, transform, publish, await that confirm, ack
//!   the input), so up to the prefetch are in flight; the sink records and acks each message
//!   without waiting for the ack to be written.
//! * **binder**: the same driver through `StreamBridge` (`WINDOW` concurrent senders), a Function
//!   binding `transform` and a consumer binding `sink`, both with `concurrency: CONCURRENCY`
//!   and `prefetch: PREFETCH`, `max-attempts: 1`.
//!
//! Runs `BENCH_ROUNDS` (default 3) alternating rounds, binder first; prints msgs/s and p50/p99
//! latency of every phase, then of each side's median round, the process peak RSS (`VmHWM`)
//! after the first binder phase (before any raw phase ran), the ratio and one `RESULT` line.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloud_stream::prelude::*;
use common::{now_ns, summarize, BoxResult, Event, PhaseResult};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::{Notify, Semaphore};

/// Messages in flight end to end (both phases): the driver runs `WINDOW` senders and sends a
/// new message only when the sink has received one (closed loop), so the latency measures the
/// path rather than an ever-growing backlog.
const WINDOW: usize = 64;
/// Consumer prefetch (both phases).
const PREFETCH: u16 = 128;
/// Handler concurrency of the binder phase (lanes).
const CONCURRENCY: u32 = 128;
/// Give up on a phase after this long.
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);

fn props() -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
}

async fn raw_phase(uri: &str, n: usize, tag: &str) -> BoxResult<PhaseResult> {
    let conn = Arc::new(Connection::connect(uri, ConnectionProperties::default()).await?);
    let (ex_in, ex_out) = (format!("raw-in-{tag}"), format!("raw-out-{tag}"));
    let (q_in, q_out) = (format!("{ex_in}.bench"), format!("{ex_out}.sink"));
    let setup = conn.create_channel().await?;
    for (ex, q) in [(&ex_in, &q_in), (&ex_out, &q_out)] {
        setup
            .exchange_declare(
                ex.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        setup
            .queue_declare(
                q.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        setup
            .queue_bind(
                q.as_str().into(),
                ex.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }

    // Sink: decode, record, ack.
    let sink_ch = conn.create_channel().await?;
    sink_ch
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    let mut sink_consumer = sink_ch
        .basic_consume(
            q_out.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let window = Arc::new(Semaphore::new(WINDOW));
    let w = Arc::clone(&window);
    let sink = tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(n);
        let mut acks = Vec::with_capacity(n);
        while latencies.len() < n {
            let Some(Ok(d)) = sink_consumer.next().await else {
                break;
            };
            let e: Event = serde_json::from_slice(&d.data).expect("decode");
            latencies.push(now_ns().saturating_sub(e.sent_ns));
            w.add_permits(1);
            // Acks go out concurrently; the loop never waits on the I/O loop.
            acks.push(tokio::spawn(async move {
                d.acker.ack(BasicAckOptions::default()).await.expect("ack");
            }));
        }
        for a in acks {
            a.await.expect("ack task");
        }
        latencies
    });

    // Transform: publish each output at once; ack the input when its confirm arrives.
    let in_ch = conn.create_channel().await?;
    in_ch
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    let out_ch = conn.create_channel().await?;
    out_ch
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut in_consumer = in_ch
        .basic_consume(
            q_in.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let ex_out_t = ex_out.clone();
    let transform = tokio::spawn(async move {
        let mut done = 0;
        let mut acks = Vec::with_capacity(n);
        while done < n {
            let Some(Ok(d)) = in_consumer.next().await else {
                break;
            };
            // Each message is decoded, transformed, published, confirmed and acked in its own
            // task: up to `PREFETCH` in flight, confirms pipelined.
            let (out_ch, ex) = (out_ch.clone(), ex_out_t.clone());
            acks.push(tokio::spawn(async move {
                let e: Event = serde_json::from_slice(&d.data).expect("decode");
                let out = serde_json::to_vec(&e.uppercase_kind()).expect("encode");
                let c = out_ch
                    .basic_publish(
                        ex.as_str().into(),
                        ex.as_str().into(),
                        BasicPublishOptions::default(),
                        &out,
                        props(),
                    )
                    .await
                    .expect("publish")
                    .await
                    .expect("confirm");
                assert!(c.is_ack());
                d.acker.ack(BasicAckOptions::default()).await.expect("ack");
            }));
            done += 1;
        }
        for a in acks {
            a.await.expect("ack task");
        }
    });

    // Driver: WINDOW publishers, each awaiting its own confirm.
    let drv = conn.create_channel().await?;
    drv.confirm_select(ConfirmSelectOptions::default()).await?;
    let start = Instant::now();
    let mut drivers = Vec::new();
    for k in 0..WINDOW {
        let (drv, ex_in, w) = (drv.clone(), ex_in.clone(), Arc::clone(&window));
        drivers.push(tokio::spawn(async move {
            for id in (k..n).step_by(WINDOW) {
                w.acquire().await.expect("window").forget();
                let bytes = serde_json::to_vec(&Event::kib(id as u64)).expect("encode");
                let c = drv
                    .basic_publish(
                        ex_in.as_str().into(),
                        ex_in.as_str().into(),
                        BasicPublishOptions::default(),
                        &bytes,
                        props(),
                    )
                    .await
                    .expect("publish")
                    .await
                    .expect("confirm");
                assert!(c.is_ack());
            }
        }));
    }
    let latencies = tokio::time::timeout(PHASE_TIMEOUT, sink).await??;
    let elapsed = start.elapsed();
    for d in drivers {
        d.await?;
    }
    transform.await?;
    for q in [&q_in, &q_out] {
        setup
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await?;
    }
    for ex in [&ex_in, &ex_out] {
        setup
            .exchange_delete(ex.as_str().into(), ExchangeDeleteOptions::default())
            .await?;
    }
    for ch in [&setup, &sink_ch, &in_ch, &drv] {
        let _ = ch.close(200, "done".into()).await;
    }
    conn.close(200, "done".into()).await?;
    Ok(summarize(n, elapsed, latencies))
}

async fn binder_phase(uri: &str, n: usize, tag: &str) -> BoxResult<PhaseResult> {
    let (ex_in, ex_out) = (format!("cs-in-{tag}"), format!("cs-out-{tag}"));
    let config = format!(
        r#"
spring:
  cloud:
    function:
      definition: transform;sink
    stream:
      default-binder: rabbit
      binders:
        rabbit: {{ type: rabbit, environment: {{ uri: "{uri}" }} }}
      output-bindings: load
      bindings:
        load:            {{ destination: {ex_in} }}
        transform-in-0:  {{ destination: {ex_in}, group: bench, consumer: {{ max-attempts: 1, concurrency: {CONCURRENCY} }} }}
        transform-out-0: {{ destination: {ex_out} }}
        sink-in-0:       {{ destination: {ex_out}, group: sink, consumer: {{ max-attempts: 1, concurrency: {CONCURRENCY} }} }}
      rabbit:
        bindings:
          transform-in-0: {{ consumer: {{ prefetch: {PREFETCH}, auto-bind-dlq: false }} }}
          sink-in-0:      {{ consumer: {{ prefetch: {PREFETCH}, auto-bind-dlq: false }} }}
"#
    );
    let latencies = Arc::new(Mutex::new(Vec::<u64>::with_capacity(n)));
    let received = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(Notify::new());
    let window = Arc::new(Semaphore::new(WINDOW));
    let app = {
        let w = Arc::clone(&window);
        let latencies = Arc::clone(&latencies);
        let received = Arc::clone(&received);
        let done = Arc::clone(&done);
        StreamApp::builder()
            .env(Default::default())
            .config_yaml(&config)
            .function("transform", |e: Event| async move {
                Ok::<_, HandlerError>(e.uppercase_kind())
            })
            .consumer("sink", move |e: Event| {
                let latency = now_ns().saturating_sub(e.sent_ns);
                latencies.lock().expect("latencies").push(latency);
                w.add_permits(1);
                if received.fetch_add(1, Ordering::AcqRel) + 1 == n {
                    done.notify_one();
                }
                async { Ok(()) }
            })
            .build()
            .await?
    };
    let start = Instant::now();
    let mut drivers = Vec::new();
    for k in 0..WINDOW {
        let (bridge, w) = (app.bridge(), Arc::clone(&window));
        drivers.push(tokio::spawn(async move {
            for id in (k..n).step_by(WINDOW) {
                w.acquire().await.expect("window").forget();
                bridge
                    .send("load", &Event::kib(id as u64))
                    .await
                    .expect("bridge send");
            }
        }));
    }
    tokio::time::timeout(PHASE_TIMEOUT, done.notified()).await?;
    let elapsed = start.elapsed();
    for d in drivers {
        d.await?;
    }
    app.shutdown().await;
    // Remove the bench queues and exchanges.
    if let Ok(conn) = Connection::connect(uri, ConnectionProperties::default()).await {
        if let Ok(ch) = conn.create_channel().await {
            for q in [format!("{ex_in}.bench"), format!("{ex_out}.sink")] {
                let _ = ch
                    .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
            for ex in [&ex_in, &ex_out] {
                let _ = ch
                    .exchange_delete(ex.as_str().into(), ExchangeDeleteOptions::default())
                    .await;
            }
            let _ = ch.close(200, "done".into()).await;
        }
        let _ = conn.close(200, "done".into()).await;
    }
    let latencies = std::mem::take(&mut *latencies.lock().expect("latencies"));
    Ok(summarize(n, elapsed, latencies))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> BoxResult<()> {
    common::init_tracing();
    let n = common::message_count("rabbit", 20_000);
    let uri = std::env::var("CLOUD_STREAM_TEST_AMQP_URI")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let sample = serde_json::to_vec(&Event::kib(0))?.len();
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    println!(
        "rabbit: raw lapin vs cloud-stream Function binding: {n} messages of {sample} B JSON, confirms + manual acks, driver window {WINDOW}, prefetch {PREFETCH}, binder concurrency {CONCURRENCY}, {} worker threads",
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    let (uri, tag) = (uri.as_str(), tag.as_str());
    common::compare(
        "rabbit",
        n,
        common::rounds(3),
        |round| async move { binder_phase(uri, n, &format!("{tag}{round}")).await },
        |round| async move { raw_phase(uri, n, &format!("{tag}{round}")).await },
    )
    .await
}
