//! Delayed redeliveries (`redelivery-delays`): after the in-process attempts, a failed message
//! goes back to the broker and comes again later, while the consumer goes on; then the DLQ.

use std::time::Duration;

use cloud_stream::binder::delayed_redeliveries;
use cloud_stream::message::header;
use cloud_stream::{HandlerError, Message};
use serde_json::json;

use super::{consumer_yaml, Seen};
use crate::target::{json, start_app, try_start_app, unique, value, Probe, Target, QUIET, WAIT};

/// One handler call: the payload, the redeliveries it had, when.
type Call = (String, u32, tokio::time::Instant);

/// `bad` always fails, `flaky` fails until redelivered once, `good` never fails. `good` is
/// handled while `bad` and `flaky` wait; `flaky` succeeds on its redelivery; `bad` comes twice
/// more, each time after its delay, then is dead-lettered with every attempt counted.
pub async fn delayed_redeliveries_do_not_block_then_dead_letter(t: &dyn Target) {
    let input = unique("in");
    let consumer =
        ", consumer: { max-attempts: 2, back-off-initial-interval: 10, redelivery-delays: [1s, 2s] }";
    let yaml = consumer_yaml("hold", &input, Some("g"), consumer);
    if !t.capabilities().delayed_redelivery {
        let refused = try_start_app(t, &yaml, |b| {
            b.consumer("hold", |_: String| async { Ok(()) })
        });
        let err = refused
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("redelivery-delays"), "refused at build: {err}");
        println!(
            "{}: capabilities.delayed_redelivery is false; redelivery-delays is refused at build",
            t.binder_type()
        );
        return;
    }
    let calls: Seen<Call> = Seen::new();
    let c = calls.clone();
    let app = start_app(t, &yaml, move |b| {
        b.consumer("hold", move |m: Message<String>| {
            let redeliveries = delayed_redeliveries(&m.headers);
            c.push((m.payload.clone(), redeliveries, tokio::time::Instant::now()));
            let fail = m.payload == "bad" || (m.payload == "flaky" && redeliveries == 0);
            async move {
                match fail {
                    true => Err(HandlerError::retryable("not yet")),
                    false => Ok(()),
                }
            }
        })
    })
    .await;
    let messages = ["bad", "flaky", "good"].map(|p| json(json!(p)));
    Probe::new(t).await.send(&input, messages).await;
    let dead = t.dead_letters(&input, "g", 1, WAIT).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(dead.len(), 1, "only `bad` is dead-lettered");
    assert_eq!(value(&dead[0]), json!("bad"));
    let h = &dead[0].headers;
    assert_eq!(h.get_str(header::ORIGINAL_ATTEMPTS), Some("6"), "{h:?}");
    assert_eq!(h.get_str(header::DELAYED_REDELIVERIES), Some("2"), "{h:?}");
    let all = calls.all();
    let of = |p: &str| -> Vec<(u32, tokio::time::Instant)> {
        all.iter()
            .filter(|c| c.0 == p)
            .map(|c| (c.1, c.2))
            .collect()
    };
    let rounds = |p: &str| of(p).iter().map(|c| c.0).collect::<Vec<_>>();
    assert_eq!(rounds("bad"), [0, 0, 1, 1, 2, 2], "{all:?}");
    assert_eq!(rounds("flaky"), [0, 0, 1], "{all:?}");
    assert_eq!(rounds("good"), [0], "{all:?}");
    let (bad, good) = (of("bad"), of("good"));
    assert!(
        good[0].1 < bad[2].1,
        "the consumer went on while `bad` waited"
    );
    // Each redelivery comes no sooner than its delay (a little early only by clock rounding).
    let slack = Duration::from_millis(100);
    assert!(
        bad[2].1 - bad[1].1 + slack >= Duration::from_secs(1),
        "{all:?}"
    );
    assert!(
        bad[4].1 - bad[3].1 + slack >= Duration::from_secs(2),
        "{all:?}"
    );
    app.shutdown().await;
}

/// The redelivery count lives in the message, not in the process: a message handed back by
/// one application instance comes to the next one (same group) with its count, and that one
/// dead-letters it after the last delay (the memory binder's instance finishes it itself
/// before it stops: its messages live in the process).
pub async fn delayed_redelivery_count_survives_a_restart(t: &dyn Target) {
    let input = unique("in");
    let consumer = ", consumer: { max-attempts: 1, redelivery-delays: [2s] }";
    let yaml = consumer_yaml("hold", &input, Some("g"), consumer);
    if !t.capabilities().delayed_redelivery {
        println!(
            "{}: no delayed redelivery (see the scenario above)",
            t.binder_type()
        );
        return;
    }
    let seen: Seen<(u8, u32)> = Seen::new();
    let failing = |app: u8, seen: Seen<(u8, u32)>| {
        move |m: Message<String>| {
            seen.push((app, delayed_redeliveries(&m.headers)));
            async { Err::<(), _>(HandlerError::retryable("down")) }
        }
    };
    let first = start_app(t, &yaml, |b| b.consumer("hold", failing(1, seen.clone()))).await;
    Probe::new(t).await.send(&input, [json(json!("bad"))]).await;
    assert!(
        crate::target::eventually(WAIT, || seen.len() >= 1).await,
        "first instance called"
    );
    first.shutdown().await;
    let second = start_app(t, &yaml, |b| b.consumer("hold", failing(2, seen.clone()))).await;
    let dead = t.dead_letters(&input, "g", 1, WAIT).await;
    assert_eq!(dead.len(), 1, "{:?}", seen.all());
    // An in-process broker's graceful shutdown first finishes what the process holds, the
    // waiting redelivery included; a broker holds it for the next instance.
    let next = if t.capabilities().in_process { 1 } else { 2 };
    let expected = [(1, 0), (next, 1)];
    assert_eq!(seen.all(), expected, "redelivery 1 came with its count");
    let h = &dead[0].headers;
    assert_eq!(h.get_str(header::DELAYED_REDELIVERIES), Some("1"), "{h:?}");
    assert_eq!(h.get_str(header::ORIGINAL_ATTEMPTS), Some("2"), "{h:?}");
    second.shutdown().await;
}
