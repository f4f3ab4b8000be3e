//! RabbitMQ: raw lapin vs cloud-stream bindings on the same broker (docs/architecture.md §9).
//!
//! Run with `scripts/bench rabbit [--tuned] [N]` (default 20 000). One process, one
//! multi-threaded tokio runtime, N JSON events of 1 KiB each carrying its send timestamp, and
//! at most `WINDOW` events in flight end to end (a sender sends again only when the sink has
//! received one: closed loop, so the latency measures the path rather than a backlog).
//!
//! **Default workload (`RESULT binder=rabbit`): what a user gets without tuning.** Driver →
//! exchange → queue → consumer that decodes, records the latency and acks.
//! * **raw**: a lapin publisher with confirms (`WINDOW` publishers, each awaiting its own
//!   confirm); a lapin consumer with prefetch `DEFAULT_PREFETCH` (the binder's default for
//!   `concurrency: 1`) that decodes and acks without waiting for the ack's write.
//! * **binder**: `StreamBridge::send` from `WINDOW` senders and a consumer binding with every
//!   setting left at its default (`concurrency: 1`, default prefetch, `max-attempts: 3`).
//!
//! **Tuned workload (`--tuned`, `RESULT binder=rabbit-tuned`)**: a Function in the middle,
//! with per-message concurrency on both sides: driver → exchange `in` → queue `in.bench` → transform
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
//! Both workloads run `BENCH_ROUNDS` (default 3) alternating rounds, binder first; print msgs/s
//! and p50/p99 latency of every phase, then of each side's median round, the process peak RSS (`VmHWM`)
//! after the first binder phase (before any raw phase ran), the ratio and one `RESULT` line.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloud_stream::prelude::*;
use common::{now_ns, summarize, BoxResult, Event, LatencySink, PhaseResult};
use futures::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

/// Messages in flight end to end (all phases).
const WINDOW: usize = 64;
/// The binder's default prefetch for `concurrency: 1` (the raw consumer of the default
/// workload uses the same).
const DEFAULT_PREFETCH: u16 = cloud_stream::binder_rabbit::MIN_DEFAULT_PREFETCH as u16;
/// Consumer prefetch (tuned workload, both phases).
const PREFETCH: u16 = 128;
/// Handler concurrency of the tuned binder phase (lanes).
const CONCURRENCY: u32 = 128;
/// Give up on a phase after this long.
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);

fn props() -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
}

/// Declares a durable topic exchange and a durable queue bound to it with `#`.
async fn declare(ch: &Channel, ex: &str, q: &str) -> BoxResult<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(
        ex.into(),
        ExchangeKind::Topic,
        durable,
        FieldTable::default(),
    )
    .await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(q.into(), durable, FieldTable::default())
        .await?;
    ch.queue_bind(
        q.into(),
        ex.into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    Ok(())
}

/// A channel with `prefetch` consuming `q` (manual acks).
async fn consume(conn: &Connection, q: &str, prefetch: u16) -> BoxResult<(Channel, Consumer)> {
    let ch = conn.create_channel().await?;
    ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
    let consumer = ch
        .basic_consume(
            q.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((ch, consumer))
}

/// Deletes a bench queue and its exchange (best effort).
async fn remove(ch: &Channel, ex: &str, q: &str) {
    let _ = ch
        .queue_delete(q.into(), QueueDeleteOptions::default())
        .await;
    let _ = ch
        .exchange_delete(ex.into(), ExchangeDeleteOptions::default())
        .await;
}

/// Deletes the (exchange, queue) pairs a binder phase declared, over a connection of its own.
async fn remove_all(uri: &str, pairs: &[(&str, &str)]) {
    let Ok(conn) = Connection::connect(uri, ConnectionProperties::default()).await else {
        return;
    };
    if let Ok(ch) = conn.create_channel().await {
        for (ex, q) in pairs {
            remove(&ch, ex, q).await;
        }
        let _ = ch.close(200, "done".into()).await;
    }
    let _ = conn.close(200, "done".into()).await;
}

/// Publishes `bytes` to `ex` (routing key: the exchange's name) and awaits the broker's ack.
async fn publish_confirmed(ch: &Channel, ex: &str, bytes: &[u8]) {
    let c = ch
        .basic_publish(
            ex.into(),
            ex.into(),
            BasicPublishOptions::default(),
            bytes,
            props(),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    assert!(c.is_ack());
}

/// `WINDOW` raw publishers with confirms, each sending its share of `n` events to `ex` as the
/// window allows.
fn raw_driver(drv: &Channel, ex: &str, n: usize, window: &Arc<Semaphore>) -> Vec<JoinHandle<()>> {
    (0..WINDOW)
        .map(|k| {
            let (drv, ex, w) = (drv.clone(), ex.to_owned(), Arc::clone(window));
            tokio::spawn(async move {
                for id in (k..n).step_by(WINDOW) {
                    w.acquire().await.expect("window").forget();
                    let bytes = serde_json::to_vec(&Event::kib(id as u64)).expect("encode");
                    publish_confirmed(&drv, &ex, &bytes).await;
                }
            })
        })
        .collect()
}

/// Default workload, raw: lapin publisher with confirms → queue → consumer that decodes and
/// awaits each ack.
async fn raw_default(uri: &str, n: usize, tag: &str) -> BoxResult<PhaseResult> {
    let conn = Connection::connect(uri, ConnectionProperties::default()).await?;
    let ex = format!("raw-{tag}");
    let q = format!("{ex}.bench");
    let setup = conn.create_channel().await?;
    declare(&setup, &ex, &q).await?;
    let (ch, mut consumer) = consume(&conn, &q, DEFAULT_PREFETCH).await?;
    let window = Arc::new(Semaphore::new(WINDOW));
    let sink = LatencySink::new(n);
    let (w, s) = (Arc::clone(&window), sink.clone());
    let consuming = tokio::spawn(async move {
        while s.received() < n {
            let Some(Ok(d)) = consumer.next().await else {
                break;
            };
            let e: Event = serde_json::from_slice(&d.data).expect("decode");
            s.record(e.sent_ns);
            w.add_permits(1);
            // The ack is queued for lapin's I/O loop without waiting for its write, as
            // the binder does.
            let _ = d.ack(BasicAckOptions::default()).now_or_never();
        }
    });
    let drv = conn.create_channel().await?;
    drv.confirm_select(ConfirmSelectOptions::default()).await?;
    let start = Instant::now();
    let drivers = raw_driver(&drv, &ex, n, &window);
    sink.wait(PHASE_TIMEOUT).await;
    let elapsed = start.elapsed();
    for d in drivers {
        d.await?;
    }
    consuming.await?;
    remove(&setup, &ex, &q).await;
    for c in [&setup, &ch, &drv] {
        let _ = c.close(200, "done".into()).await;
    }
    conn.close(200, "done".into()).await?;
    Ok(summarize(n, elapsed, sink.take()))
}

/// Default workload, binder: `StreamBridge` → consumer binding with default settings.
async fn binder_default(uri: &str, n: usize, tag: &str) -> BoxResult<PhaseResult> {
    let ex = format!("cs-{tag}");
    let config = format!(
        r#"
spring:
  cloud:
    function:
      definition: sink
    stream:
      default-binder: rabbit
      binders:
        rabbit: {{ type: rabbit, environment: {{ uri: "{uri}" }} }}
      output-bindings: load
      bindings:
        load:      {{ destination: {ex} }}
        sink-in-0: {{ destination: {ex}, group: bench }}
"#
    );
    let window = Arc::new(Semaphore::new(WINDOW));
    let sink = LatencySink::new(n);
    let (w, s) = (Arc::clone(&window), sink.clone());
    let app = StreamApp::builder()
        .env(Default::default())
        .config_yaml(&config)
        .consumer("sink", move |e: Event| {
            s.record(e.sent_ns);
            w.add_permits(1);
            async { Ok(()) }
        })
        .build()
        .await?;
    let start = Instant::now();
    let drivers = common::bridge_driver(&app, n, WINDOW, &window);
    sink.wait(PHASE_TIMEOUT).await;
    let elapsed = start.elapsed();
    for d in drivers {
        d.await?;
    }
    app.shutdown().await;
    remove_all(uri, &[(&ex, &format!("{ex}.bench"))]).await;
    Ok(summarize(n, elapsed, sink.take()))
}

async fn raw_tuned(uri: &str, n: usize, tag: &str) -> BoxResult<PhaseResult> {
    let conn = Arc::new(Connection::connect(uri, ConnectionProperties::default()).await?);
    let (ex_in, ex_out) = (format!("raw-in-{tag}"), format!("raw-out-{tag}"));
    let (q_in, q_out) = (format!("{ex_in}.bench"), format!("{ex_out}.sink"));
    let setup = conn.create_channel().await?;
    for (ex, q) in [(&ex_in, &q_in), (&ex_out, &q_out)] {
        declare(&setup, ex, q).await?;
    }

    // Sink: decode, record, ack.
    let (sink_ch, mut sink_consumer) = consume(&conn, &q_out, PREFETCH).await?;
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
    let (in_ch, mut in_consumer) = consume(&conn, &q_in, PREFETCH).await?;
    let out_ch = conn.create_channel().await?;
    out_ch
        .confirm_select(ConfirmSelectOptions::default())
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
                publish_confirmed(&out_ch, &ex, &out).await;
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
    let drivers = raw_driver(&drv, &ex_in, n, &window);
    let latencies = tokio::time::timeout(PHASE_TIMEOUT, sink).await??;
    let elapsed = start.elapsed();
    for d in drivers {
        d.await?;
    }
    transform.await?;
    for (ex, q) in [(&ex_in, &q_in), (&ex_out, &q_out)] {
        remove(&setup, ex, q).await;
    }
    for ch in [&setup, &sink_ch, &in_ch, &drv] {
        let _ = ch.close(200, "done".into()).await;
    }
    conn.close(200, "done".into()).await?;
    Ok(summarize(n, elapsed, latencies))
}

async fn binder_tuned(uri: &str, n: usize, tag: &str) -> BoxResult<PhaseResult> {
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
    let drivers = common::bridge_driver(&app, n, WINDOW, &window);
    tokio::time::timeout(PHASE_TIMEOUT, done.notified()).await?;
    let elapsed = start.elapsed();
    for d in drivers {
        d.await?;
    }
    app.shutdown().await;
    remove_all(
        uri,
        &[
            (&ex_in, &format!("{ex_in}.bench")),
            (&ex_out, &format!("{ex_out}.sink")),
        ],
    )
    .await;
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
    let threads = std::thread::available_parallelism().map_or(0, |p| p.get());
    if std::env::args().any(|a| a == "--tuned") {
        println!("rabbit (tuned): raw lapin vs cloud-stream Function binding: {n} messages of {sample} B JSON, confirms + manual acks, window {WINDOW}, prefetch {PREFETCH}, binder concurrency {CONCURRENCY}, {threads} worker threads");
    } else {
        println!("rabbit (default settings): raw lapin vs cloud-stream consumer binding: {n} messages of {sample} B JSON, confirms + manual acks, window {WINDOW}, prefetch {DEFAULT_PREFETCH}, {threads} worker threads");
    }
    let (uri, tag) = (uri.as_str(), tag.as_str());
    let rounds = common::rounds(3);
    if std::env::args().any(|a| a == "--tuned") {
        return common::compare(
            "rabbit-tuned",
            n,
            rounds,
            |round| async move { binder_tuned(uri, n, &format!("{tag}{round}")).await },
            |round| async move { raw_tuned(uri, n, &format!("{tag}{round}")).await },
        )
        .await;
    }
    common::compare(
        "rabbit",
        n,
        rounds,
        |round| async move { binder_default(uri, n, &format!("{tag}{round}")).await },
        |round| async move { raw_default(uri, n, &format!("{tag}{round}")).await },
    )
    .await
}
