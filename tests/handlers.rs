//! Handler ergonomics, end to end on the memory binder: shared state, extractors in any order,
//! and the errors a wrong handler shape or missing state gives.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cloud_stream::binder_memory::TestHarness;
use cloud_stream::prelude::*;

const WAIT: Duration = Duration::from_secs(5);

#[derive(Clone, Default)]
struct Counter(Arc<AtomicU32>);

struct Tenant(String);

impl TypedHeader for Tenant {
    const NAME: &'static str = "tenant";
    fn decode(value: &str) -> Result<Self, String> {
        match value.is_empty() {
            true => Err("an empty tenant".into()),
            false => Ok(Tenant(value.to_owned())),
        }
    }
}

/// An application on `harness`'s broker configured by `yaml` (no environment variables).
fn on(harness: &TestHarness, yaml: &str) -> StreamAppBuilder {
    StreamApp::builder()
        .env(Default::default())
        .binder_factory(Arc::new(harness.factory()))
        .config_yaml(yaml)
}

/// An application on `harness` running `definition`, with the bindings of every test here
/// (those of other functions are left out: a binding no function has is a typo to `build()`).
fn app(harness: &TestHarness, definition: &str) -> StreamAppBuilder {
    let bindings = [
        "greet-in-0: { destination: names, group: g }",
        "greet-out-0: { destination: greetings }",
        "bill-in-0: { destination: bills, group: g, consumer: { max-attempts: 1 } }",
    ];
    let mine: Vec<_> = bindings
        .iter()
        .filter(|b| b.starts_with(definition))
        .map(|b| format!("  {b}\n"))
        .collect();
    let yaml = format!(
        "spring.cloud.function.definition: {definition}\nspring.cloud.stream.bindings:\n{}",
        mine.concat()
    );
    on(harness, &yaml)
}

/// State, headers, the attempt and the binding name arrive beside the payload, whatever the
/// argument order; no clone-before-`move` is needed.
#[tokio::test]
async fn extractors_come_in_any_order_beside_the_payload() {
    let harness = TestHarness::new();
    let counter = Counter::default();
    let running = app(&harness, "greet")
        .with_state(counter.clone())
        .function(
            "greet",
            |binding: BindingName,
             name: String,
             State(calls): State<Counter>,
             Attempt(attempt): Attempt,
             headers: Headers| async move {
                let n = calls.0.fetch_add(1, Ordering::SeqCst) + 1;
                let from = headers.get_str("from").unwrap_or("nobody").to_owned();
                Ok::<_, HandlerError>(format!(
                    "hello {name} from {from} (call {n}, attempt {attempt}, {})",
                    &*binding
                ))
            },
        )
        .build()
        .await
        .expect("build");
    let message = Message::new(bytes::Bytes::from_static(b"\"ada\""))
        .header(header::CONTENT_TYPE, "application/json")
        .header("from", "bob");
    harness.send("names", message).await;
    let greeting: String = harness.receive_json("greetings", WAIT).await.expect("out");
    assert_eq!(
        greeting,
        "hello ada from bob (call 1, attempt 1, greet-in-0)"
    );
    assert_eq!(counter.0.load(Ordering::SeqCst), 1, "the state is shared");
    running.shutdown().await;
}

/// A typed header is parsed before the handler runs; a message without it (or with a value
/// that does not parse) is dead-lettered as undecodable, never retried.
#[tokio::test]
async fn typed_header_missing_or_bad_is_dead_lettered_as_undecodable() {
    let harness = TestHarness::new();
    let billed = Counter::default();
    let running = app(&harness, "bill")
        .with_state(billed.clone())
        .consumer(
            "bill",
            |Header(tenant): Header<Tenant>, amount: u64, State(b): State<Counter>| async move {
                assert_eq!(tenant.0, "acme");
                b.0.fetch_add(amount as u32, Ordering::SeqCst);
                Ok(())
            },
        )
        .build()
        .await
        .expect("build");
    let bill = |tenant: Option<&str>| {
        let m = Message::new(bytes::Bytes::from_static(b"5"));
        match tenant {
            Some(t) => m.header("tenant", t),
            None => m,
        }
    };
    harness.send("bills", bill(Some("acme"))).await;
    harness.send("bills", bill(None)).await;
    harness.send("bills", bill(Some(""))).await;
    let binary = Message::new(bytes::Bytes::from_static(b"5")).header("tenant", vec![0xff, 0xfe]);
    harness.send("bills", binary).await;
    let dead = harness
        .wait_for_dead_letters("bills", Some("g"), 3, WAIT)
        .await;
    assert_eq!(dead.len(), 3, "every bad message dead-lettered");
    let reasons: Vec<_> = dead
        .iter()
        .map(|d| d.headers.get_str(header::EXCEPTION_MESSAGE).unwrap_or(""))
        .collect();
    assert!(reasons[0].contains("no such header"), "{reasons:?}");
    assert!(reasons[1].contains("an empty tenant"), "{reasons:?}");
    assert!(reasons[2].contains("not UTF-8"), "{reasons:?}");
    for d in &dead {
        assert_eq!(d.headers.get_str(header::EXCEPTION_KIND), Some("decode"));
    }
    assert_eq!(
        billed.0.load(Ordering::SeqCst),
        5,
        "the good one was billed"
    );
    running.shutdown().await;
}

/// A handler that takes `State<S>` fails `build()` when no `S` was given, naming both.
#[tokio::test]
async fn missing_state_fails_build_naming_the_handler_and_type() {
    let harness = TestHarness::new();
    let err = app(&harness, "bill")
        .consumer("bill", |_: u64, _: State<Counter>| async { Ok(()) })
        .build()
        .await
        .expect_err("no state given");
    let msg = err.to_string();
    assert!(
        msg.contains("`bill`")
            && msg.contains("State<handlers::Counter>")
            && msg.contains("with_state"),
        "{msg}"
    );
}

/// Suppliers take extractors too (their state), and no payload.
#[tokio::test]
async fn supplier_takes_state() {
    let harness = TestHarness::new();
    let yaml = "spring.cloud.function.definition: tick
spring.cloud.stream.bindings.tick-out-0.destination: ticks
spring.cloud.stream.poller.fixed-delay: 10
";
    let running = on(&harness, yaml)
        .with_state(Counter::default())
        .supplier("tick", |State(c): State<Counter>| async move {
            Ok::<_, HandlerError>(c.0.fetch_add(1, Ordering::SeqCst))
        })
        .build()
        .await
        .expect("build");
    let first: u32 = harness.receive_json("ticks", WAIT).await.expect("tick");
    let second: u32 = harness.receive_json("ticks", WAIT).await.expect("tick");
    assert_eq!((first, second), (0, 1));
    running.shutdown().await;
}

/// The harness records each handler's calls (with what, which attempt, how it ended) and waits
/// until everything a message caused has settled, downstream hops and retries included.
#[tokio::test(start_paused = true)]
async fn harness_records_calls_and_waits_until_settled() {
    let harness = TestHarness::new();
    let yaml = "spring.cloud.function.definition: greet;shout
spring.cloud.stream.bindings:
  greet-in-0: { destination: names, group: g }
  greet-out-0: { destination: greetings }
  shout-in-0: { destination: greetings, group: g, consumer: { max-attempts: 2, back-off-initial-interval: 1000 } }
";
    let running = harness
        .attach(
            StreamApp::builder()
                .env(Default::default())
                .config_yaml(yaml),
        )
        .function("greet", |name: String| async move {
            Ok::<_, HandlerError>(format!("hello {name}"))
        })
        .consumer("shout", |line: String, Attempt(n): Attempt| async move {
            match (line.contains("bob"), n) {
                (true, 1) => Err(HandlerError::retryable("bob needs two tries")),
                _ => Ok(()),
            }
        })
        .build()
        .await
        .expect("build");
    harness.send_json("names", "ada").await.expect("send");
    harness.send_json("names", "bob").await.expect("send");
    assert!(harness.wait_settled(WAIT).await, "settles");
    let greet = harness.calls("greet");
    assert_eq!(greet.len(), 2);
    assert_eq!(&greet[1].input.payload[..], b"\"bob\"");
    let shout = harness.calls("shout");
    let summary: Vec<_> = shout
        .iter()
        .map(|c| (c.attempt, c.error.is_some()))
        .collect();
    assert_eq!(summary, [(1, false), (1, true), (2, false)], "{shout:?}");
    assert_eq!(harness.wait_for_calls("shout", 3, WAIT).await.len(), 3);
    running.shutdown().await;
}

/// An app on `harness` with one input binding `<function>-in-0` (its consumer settings in
/// `consumer`).
fn batch_app(harness: &TestHarness, definition: &str, consumer: &str) -> StreamAppBuilder {
    let yaml = format!(
        "spring.cloud.function.definition: {definition}\nspring.cloud.stream.bindings:\n  {definition}-in-0: {{ destination: readings, group: g, consumer: {{ {consumer} }} }}\n"
    );
    on(harness, &yaml)
}

/// A batch handler and its binding's `batch-mode` must agree, or `build()` says how to fix it.
#[tokio::test]
async fn batch_mode_and_handler_must_agree_at_build() {
    let harness = TestHarness::new();
    let batch_handler = |_: Vec<u32>| async { Ok(()) };
    let cases: [(&str, bool, &str); 3] = [
        ("max-attempts: 1", true, "not in batch mode"),
        ("batch-mode: true", false, "takes one message"),
        ("batch-mode: true, idempotent: true", true, "idempotent"),
    ];
    for (consumer, batch, expected) in cases {
        let builder = batch_app(&harness, "store", consumer);
        let builder = match batch {
            true => builder.batch_consumer("store", batch_handler),
            false => builder.consumer("store", |_: u32| async { Ok(()) }),
        };
        let err = builder.build().await.expect_err("mismatch");
        let msg = err.to_string();
        assert!(
            msg.contains("store-in-0.consumer.batch-mode") && msg.contains(expected),
            "{msg}"
        );
    }
    let err = on(&harness, "spring.cloud.function.definition: upper|store\n")
        .function("upper", |s: String| async move { Ok::<_, HandlerError>(s) })
        .batch_consumer("store", batch_handler)
        .build()
        .await
        .expect_err("a batch handler only heads a composition");
    assert!(err.to_string().contains("first"), "{err}");
}

/// A batch function sees each message's headers (`Vec<Message<T>>`) and the state, and its
/// `Batch<U>` result is one message per item.
#[tokio::test(start_paused = true)]
async fn batch_function_takes_messages_and_state() {
    let harness = TestHarness::new();
    let yaml = "spring.cloud.function.definition: total
spring.cloud.stream.bindings:
  total-in-0: { destination: readings, group: g, consumer: { batch-mode: true } }
  total-out-0: { destination: totals }
";
    let running = harness
        .attach(
            StreamApp::builder()
                .env(Default::default())
                .config_yaml(yaml),
        )
        .with_state(Counter::default())
        .batch_function(
            "total",
            |State(calls): State<Counter>, readings: Vec<Message<u32>>| async move {
                calls.0.fetch_add(1, Ordering::SeqCst);
                let per_sensor = readings.iter().map(|m| {
                    let sensor = m.headers.get_str("sensor").unwrap_or("?").to_owned();
                    format!("{sensor}={}", m.payload)
                });
                Ok::<_, HandlerError>(per_sensor.collect::<Batch<String>>())
            },
        )
        .build()
        .await
        .expect("build");
    for (sensor, v) in [("a", 1u32), ("b", 2), ("c", 3)] {
        let m = Message::new(bytes::Bytes::from(v.to_string()))
            .header(header::CONTENT_TYPE, "application/json")
            .header("sensor", sensor);
        harness.send("readings", m).await;
    }
    assert!(harness.wait_settled(WAIT).await, "settles");
    let mut got = Vec::new();
    while let Ok(line) = harness
        .receive_json::<String>("totals", Duration::from_millis(100))
        .await
    {
        got.push(line);
    }
    assert_eq!(got, ["a=1", "b=2", "c=3"]);
    assert_eq!(
        harness.calls("total").len(),
        3,
        "one call record per message"
    );
    running.shutdown().await;
}
