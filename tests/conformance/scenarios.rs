//! The scenarios. Each takes the binder under test, uses unique destination names, and asserts
//! what DESIGN §6 promises. Scenarios build apps through [`start_app`], send and observe through
//! [`Probe`] (a second binder on the same broker), and never assert wall-clock speed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloud_stream::message::header;
use cloud_stream::{HandlerError, Message};
use serde_json::json;

use crate::target::{
    json, start_app, text, try_start_app, unique, value, Probe, Target, QUIET, WAIT,
};

pub async fn function_round_trip(t: &dyn Target) {
    let (input, output) = (unique("in"), unique("out"));
    let yaml = format!(
        "spring.cloud.function.definition: uppercase\nspring.cloud.stream.bindings:\n  uppercase-in-0: {{ destination: {input}, group: g }}\n  uppercase-out-0: {{ destination: {output} }}\n"
    );
    let probe = Probe::new(t).await;
    let mut out = probe.observe(&output).await;
    let app = start_app(t, &yaml, |b| {
        b.function("uppercase", |s: String| async move {
            Ok::<_, HandlerError>(s.to_uppercase())
        })
    })
    .await;
    probe.send(&input, [json(json!("hello"))]).await;
    let got = out.next(WAIT).await.expect("output");
    assert_eq!(value(&got), json!("HELLO"));
    assert!(got.headers.contains(header::ID), "output has an id");
    assert_eq!(
        got.headers.get_str(header::CONTENT_TYPE),
        Some("application/json")
    );
    app.shutdown().await;
}

pub async fn headers_and_content_type_round_trip(t: &dyn Target) {
    let (input, output) = (unique("in"), unique("out"));
    let yaml = format!(
        "spring.cloud.function.definition: echo\nspring.cloud.stream.bindings:\n  echo-in-0: {{ destination: {input}, group: g, content-type: text/plain }}\n  echo-out-0: {{ destination: {output}, content-type: text/plain }}\n"
    );
    let probe = Probe::new(t).await;
    let mut out = probe.observe(&output).await;
    let app = start_app(t, &yaml, |b| {
        b.function("echo", |m: Message<String>| async move {
            let tenant = m.headers.get_str("tenant").unwrap_or("none").to_owned();
            Ok::<_, HandlerError>(
                Message::new(format!("{}!", m.payload)).header("seen-tenant", tenant),
            )
        })
    })
    .await;
    let msg = cloud_stream::RawMessage::new(bytes::Bytes::from_static(b"plain text"))
        .header("content-type", "text/plain")
        .header("tenant", "acme")
        .header("correlation-id", "c-1");
    probe.send(&input, [msg]).await;
    let got = out.next(WAIT).await.expect("output");
    assert_eq!(text(&got), "plain text!");
    assert_eq!(
        got.headers.get_str(header::CONTENT_TYPE),
        Some("text/plain")
    );
    assert_eq!(got.headers.get_str("seen-tenant"), Some("acme"));
    assert_eq!(
        got.headers.get_str("tenant"),
        Some("acme"),
        "inbound headers propagate"
    );
    assert_eq!(got.headers.get_str("correlation-id"), Some("c-1"));
    app.shutdown().await;
}

/// Counts handler invocations and records the (tokio) instant of each.
#[derive(Clone, Default)]
struct Attempts(Arc<Mutex<Vec<tokio::time::Instant>>>);

impl Attempts {
    fn record(&self) -> usize {
        let mut v = self.0.lock().unwrap();
        v.push(tokio::time::Instant::now());
        v.len()
    }
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn gaps(&self) -> Vec<Duration> {
        let v = self.0.lock().unwrap();
        v.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

pub async fn dlq_after_max_attempts_with_error_headers(t: &dyn Target) {
    let input = unique("in");
    let yaml = format!(
        "spring.cloud.function.definition: fail\nspring.cloud.stream.bindings:\n  fail-in-0:\n    destination: {input}\n    group: g\n    consumer: {{ max-attempts: 4, back-off-initial-interval: 10, back-off-max-interval: 50 }}\n"
    );
    let attempts = Attempts::default();
    let a = attempts.clone();
    let app = start_app(t, &yaml, move |b| {
        b.consumer("fail", move |_: serde_json::Value| {
            let a = a.clone();
            async move {
                a.record();
                Err(HandlerError::new("boom: always fails"))
            }
        })
    })
    .await;
    Probe::new(t)
        .await
        .send(&input, [json(json!({"n": 1}))])
        .await;
    let dead = t.dead_letters(&input, "g", 1, WAIT).await;
    assert_eq!(dead.len(), 1, "dead-lettered once");
    assert_eq!(attempts.count(), 4, "exactly max-attempts attempts");
    let h = &dead[0].headers;
    assert_eq!(h.get_str(header::ORIGINAL_TOPIC), Some(input.as_str()));
    assert!(
        h.get_str(header::EXCEPTION_MESSAGE)
            .unwrap_or("")
            .contains("boom"),
        "{h:?}"
    );
    assert_eq!(h.get_str(header::ORIGINAL_ATTEMPTS), Some("4"));
    assert_eq!(value(&dead[0]), json!({"n": 1}), "payload intact");
    app.shutdown().await;
}

pub async fn backoff_spacing_follows_policy(t: &dyn Target) {
    let input = unique("in");
    let yaml = format!(
        "spring.cloud.function.definition: fail\nspring.cloud.stream.bindings:\n  fail-in-0:\n    destination: {input}\n    group: g\n    consumer: {{ max-attempts: 5, back-off-initial-interval: 100, back-off-multiplier: 3.0, back-off-max-interval: 1000 }}\n"
    );
    let attempts = Attempts::default();
    let a = attempts.clone();
    let app = start_app(t, &yaml, move |b| {
        b.consumer("fail", move |_: serde_json::Value| {
            let a = a.clone();
            async move {
                a.record();
                Err(HandlerError::retryable("transient"))
            }
        })
    })
    .await;
    Probe::new(t).await.send(&input, [json(json!(1))]).await;
    assert_eq!(t.dead_letters(&input, "g", 1, WAIT).await.len(), 1);
    let gaps = attempts.gaps();
    let expected = [100u64, 300, 900, 1000].map(Duration::from_millis);
    assert_eq!(gaps.len(), 4, "{gaps:?}");
    for (gap, want) in gaps.iter().zip(expected) {
        assert!(*gap >= want, "gap {gap:?} shorter than back-off {want:?}");
        if t.virtual_time() {
            assert!(
                *gap < want + Duration::from_millis(50),
                "gap {gap:?} vs {want:?}"
            );
        }
    }
    app.shutdown().await;
}

pub async fn permanent_error_skips_retries(t: &dyn Target) {
    let input = unique("in");
    let yaml = format!(
        "spring.cloud.function.definition: reject\nspring.cloud.stream.bindings:\n  reject-in-0: {{ destination: {input}, group: g, consumer: {{ max-attempts: 5 }} }}\n"
    );
    let attempts = Attempts::default();
    let a = attempts.clone();
    let app = start_app(t, &yaml, move |b| {
        b.consumer("reject", move |_: serde_json::Value| {
            let a = a.clone();
            async move {
                a.record();
                Err(HandlerError::permanent("invalid order"))
            }
        })
    })
    .await;
    Probe::new(t).await.send(&input, [json(json!(1))]).await;
    let dead = t.dead_letters(&input, "g", 1, WAIT).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(attempts.count(), 1, "no retry for a permanent error");
    assert_eq!(
        dead[0].headers.get_str(header::EXCEPTION_KIND),
        Some("permanent")
    );
    app.shutdown().await;
}

pub async fn undecodable_payload_is_dead_lettered_and_next_flows(t: &dyn Target) {
    #[derive(serde::Deserialize)]
    struct Order {
        id: u64,
    }
    let (input, output) = (unique("in"), unique("out"));
    let yaml = format!(
        "spring.cloud.function.definition: ids\nspring.cloud.stream.bindings:\n  ids-in-0: {{ destination: {input}, group: g }}\n  ids-out-0: {{ destination: {output} }}\n"
    );
    let probe = Probe::new(t).await;
    let mut out = probe.observe(&output).await;
    let calls = Attempts::default();
    let c = calls.clone();
    let app = start_app(t, &yaml, move |b| {
        b.function("ids", move |o: Order| {
            c.record();
            async move { Ok::<_, HandlerError>(o.id) }
        })
    })
    .await;
    let garbage = cloud_stream::RawMessage::new(bytes::Bytes::from_static(b"{not json"))
        .header("content-type", "application/json");
    probe.send(&input, [garbage, json(json!({"id": 7}))]).await;
    let got = out.next(WAIT).await.expect("the next message still flows");
    assert_eq!(value(&got), json!(7));
    let dead = t.dead_letters(&input, "g", 1, WAIT).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].headers.get_str(header::EXCEPTION_KIND),
        Some("decode")
    );
    assert_eq!(
        &dead[0].payload[..],
        b"{not json",
        "payload kept as received"
    );
    assert_eq!(calls.count(), 1, "the handler never saw the bad payload");
    app.shutdown().await;
}

pub async fn trace_context_round_trip(t: &dyn Target) {
    let (input, output) = (unique("in"), unique("out"));
    let yaml = format!(
        "spring.cloud.function.definition: id\nspring.cloud.stream.bindings:\n  id-in-0: {{ destination: {input}, group: g }}\n  id-out-0: {{ destination: {output} }}\n"
    );
    let probe = Probe::new(t).await;
    let mut out = probe.observe(&output).await;
    let app = start_app(t, &yaml, |b| {
        b.function("id", |v: serde_json::Value| async move {
            Ok::<_, HandlerError>(v)
        })
    })
    .await;
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    probe
        .send(
            &input,
            [json(json!(1)).header("traceparent", parent), json(json!(2))],
        )
        .await;
    let first = out.next(WAIT).await.expect("first");
    let tp = first
        .headers
        .get_str("traceparent")
        .expect("traceparent written");
    assert!(
        tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{tp}"
    );
    assert_ne!(tp, parent, "a new span id for this hop");
    let second = out.next(WAIT).await.expect("second");
    let tp2 = second
        .headers
        .get_str("traceparent")
        .expect("a trace is started when absent");
    assert!(
        cloud_stream::observe::TraceContext::parse(tp2).is_some(),
        "{tp2}"
    );
    app.shutdown().await;
}

pub async fn retry_then_success_sends_once(t: &dyn Target) {
    let (input, output) = (unique("in"), unique("out"));
    let yaml = format!(
        "spring.cloud.function.definition: flaky\nspring.cloud.stream.bindings:\n  flaky-in-0: {{ destination: {input}, group: g, consumer: {{ back-off-initial-interval: 10 }} }}\n  flaky-out-0: {{ destination: {output} }}\n"
    );
    let probe = Probe::new(t).await;
    let mut out = probe.observe(&output).await;
    let calls = Arc::new(AtomicU32::new(0));
    let c = Arc::clone(&calls);
    let app = start_app(t, &yaml, move |b| {
        b.function("flaky", move |v: u32| {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(HandlerError::new("first attempt fails"))
                } else {
                    Ok(v + 1)
                }
            }
        })
    })
    .await;
    probe.send(&input, [json(json!(41))]).await;
    assert_eq!(value(&out.next(WAIT).await.expect("output")), json!(42));
    out.assert_quiet(QUIET).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(t
        .dead_letters(&input, "g", 0, Duration::ZERO)
        .await
        .is_empty());
    app.shutdown().await;
}

pub async fn unknown_binding_key_fails_build(t: &dyn Target) {
    let yaml = "spring.cloud.function.definition: uppercase\nspring.cloud.stream.bindings:\n  upercase-in-0: { destination: x }\n";
    let err = try_start_app(t, yaml, |b| {
        b.function(
            "uppercase",
            |s: String| async move { Ok::<_, HandlerError>(s) },
        )
    })
    .await
    .expect_err("a binding that matches no function is an error");
    let msg = err.to_string();
    assert!(
        msg.contains("upercase-in-0") && msg.contains("uppercase-in-0"),
        "{msg}"
    );
}

#[allow(dead_code)]
fn _unused(_: BTreeMap<(), ()>, _: BTreeSet<()>) {}
