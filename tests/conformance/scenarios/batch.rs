//! Batch scenarios: `batch-mode` bindings filled from each broker's own batching, their
//! failure semantics, and fan-out outputs (`Batch<U>`).

use std::collections::BTreeMap;
use std::time::Duration;

use cloud_stream::function::Batch;
use cloud_stream::message::header;
use cloud_stream::{HandlerError, Message};
use serde_json::json;

use super::{sorted, Seen};
use crate::target::{eventually, json, start_app, unique, value, Probe, Target, QUIET, WAIT};

/// A `batch-mode` binding's YAML for a batch handler `name`, with the binder's batch size.
fn batch_yaml(t: &dyn Target, name: &str, input: &str, consumer: &str, size: usize) -> String {
    let binding = format!("{name}-in-0");
    format!(
        "spring.cloud.function.definition: {name}\nspring.cloud.stream.bindings.{binding}: {{ destination: {input}, group: g, consumer: {{ batch-mode: true{consumer} }} }}\n{}",
        t.batch_size_yaml(&binding, size)
    )
}

/// Keyed numbers (one partition key, so every binder keeps their order).
fn keyed(range: std::ops::Range<u32>) -> Vec<cloud_stream::RawMessage> {
    range
        .map(|i| json(json!(i)).header(header::PARTITION_KEY, "k"))
        .collect()
}

/// Batches come from what the broker has ready, never larger than the binder's batch size;
/// every message is handled once and in order.
pub async fn batch_consumer_receives_batches_in_order(t: &dyn Target) {
    let input = unique("in");
    let batches: Seen<Vec<u32>> = Seen::new();
    let b = batches.clone();
    let yaml = batch_yaml(t, "store", &input, "", 4);
    let app = start_app(t, &yaml, move |builder| {
        builder.batch_consumer("store", move |items: Vec<u32>| {
            let b = b.clone();
            async move {
                let first = b.len() == 0;
                b.push(items);
                if first {
                    // Meanwhile the rest arrive and wait in the broker's own batching.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Ok(())
            }
        })
    })
    .await;
    Probe::new(t).await.send(&input, keyed(0..12)).await;
    let count = || batches.all().iter().map(Vec::len).sum::<usize>();
    assert!(
        eventually(WAIT, || count() >= 12).await,
        "{:?}",
        batches.all()
    );
    tokio::time::sleep(QUIET).await;
    let all = batches.all();
    let flat: Vec<u32> = all.iter().flatten().copied().collect();
    assert_eq!(
        flat,
        (0..12).collect::<Vec<_>>(),
        "once each, in order: {all:?}"
    );
    assert!(all.iter().all(|b| b.len() <= 4), "batch size 4: {all:?}");
    assert!(
        all.iter().any(|b| b.len() > 1),
        "batches of several: {all:?}"
    );
    app.shutdown().await;
}

/// A batch consumer names the positions that failed: the others are acknowledged once, the
/// failed one is retried, then dead-lettered; a message that does not decode is dead-lettered
/// at once and the rest are handled without it.
pub async fn batch_partial_failure_acks_the_rest(t: &dyn Target) {
    let input = unique("in");
    let calls: Seen<Vec<u32>> = Seen::new();
    let c = calls.clone();
    let consumer = ", max-attempts: 2, back-off-initial-interval: 10";
    let yaml = batch_yaml(t, "check", &input, consumer, 10);
    let app = start_app(t, &yaml, move |builder| {
        builder.batch_consumer("check", move |items: Vec<u32>| {
            c.push(items.clone());
            let bad: Vec<usize> = (0..items.len()).filter(|i| items[*i] == 3).collect();
            async move {
                match bad.is_empty() {
                    true => Ok(()),
                    false => Err(HandlerError::new("three is bad").only(bad)),
                }
            }
        })
    })
    .await;
    let mut messages = keyed(0..6);
    messages.insert(2, json(json!("not a number")));
    Probe::new(t).await.send(&input, messages).await;
    let dead = t.dead_letters(&input, "g", 2, WAIT).await;
    tokio::time::sleep(QUIET).await;
    let by_kind: BTreeMap<String, (serde_json::Value, String)> = dead
        .iter()
        .map(|d| {
            let h = |n| d.headers.get_str(n).unwrap_or("").to_owned();
            (
                h(header::EXCEPTION_KIND),
                (value(d), h(header::ORIGINAL_ATTEMPTS)),
            )
        })
        .collect();
    assert_eq!(dead.len(), 2, "{by_kind:?}");
    assert_eq!(by_kind["decode"], (json!("not a number"), "1".to_owned()));
    assert_eq!(by_kind["error"], (json!(3), "2".to_owned()));
    let handled: Vec<u32> = calls
        .all()
        .into_iter()
        .flatten()
        .filter(|v| *v != 3)
        .collect();
    assert_eq!(
        sorted(handled),
        vec![0, 1, 2, 4, 5],
        "the others handled once"
    );
    let threes = calls
        .all()
        .into_iter()
        .flatten()
        .filter(|v| *v == 3)
        .count();
    assert_eq!(
        threes,
        2,
        "the failed one alone is retried: {:?}",
        calls.all()
    );
    app.shutdown().await;
}

/// An error for the whole batch retries the batch, then dead-letters each of its messages with
/// the error headers.
pub async fn batch_failure_dead_letters_each_message(t: &dyn Target) {
    let input = unique("in");
    let consumer = ", max-attempts: 3, back-off-initial-interval: 10";
    let yaml = batch_yaml(t, "reject", &input, consumer, 10);
    let app = start_app(t, &yaml, |builder| {
        builder.batch_consumer("reject", |_: Vec<Message<u32>>| async {
            Err(HandlerError::new("the whole batch is refused"))
        })
    })
    .await;
    Probe::new(t).await.send(&input, keyed(0..3)).await;
    let dead = t.dead_letters(&input, "g", 3, WAIT).await;
    let mut values: Vec<u64> = dead.iter().filter_map(|d| value(d).as_u64()).collect();
    values.sort_unstable();
    assert_eq!(values, vec![0, 1, 2], "each message dead-lettered");
    for d in &dead {
        assert_eq!(d.headers.get_str(header::ORIGINAL_ATTEMPTS), Some("3"));
        let message = d.headers.get_str(header::EXCEPTION_MESSAGE).unwrap_or("");
        assert!(message.contains("refused"), "{:?}", d.headers);
    }
    app.shutdown().await;
}

/// A `Batch<U>` output is one broker message per item (the output topic may have several
/// partitions, so their order is not checked here).
pub async fn batch_output_sends_each_item(t: &dyn Target) {
    let (input, output) = (unique("in"), unique("out"));
    let yaml = format!(
        "spring.cloud.function.definition: split\nspring.cloud.stream.bindings:\n  split-in-0: {{ destination: {input}, group: g }}\n  split-out-0: {{ destination: {output} }}\n"
    );
    let probe = Probe::new(t).await;
    let mut out = probe.observe(&output).await;
    let app = start_app(t, &yaml, |builder| {
        builder.function("split", |n: u32| async move {
            Ok::<_, HandlerError>(
                (0..n)
                    .map(|i| Message::new(i).header("part", i.to_string()))
                    .collect::<Batch<_>>(),
            )
        })
    })
    .await;
    probe.send(&input, [json(json!(3))]).await;
    let got = out.take(3, WAIT).await;
    let mut parts: Vec<(u64, Option<String>)> = got
        .iter()
        .map(|m| {
            let part = m.headers.get_str("part").map(str::to_owned);
            (value(m).as_u64().unwrap_or(99), part)
        })
        .collect();
    parts.sort();
    let expected: Vec<(u64, Option<String>)> = (0..3).map(|i| (i, Some(i.to_string()))).collect();
    assert_eq!(parts, expected);
    out.assert_quiet(QUIET).await;
    app.shutdown().await;
}
