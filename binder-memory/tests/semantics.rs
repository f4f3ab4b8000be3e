//! Delivery semantics of the memory binder, through the binder SPI.

use std::collections::HashSet;
use std::time::Duration;

use binder_memory::{MemoryBinder, MemoryBinderFactory, MemoryBroker, TestHarness};
use bytes::Bytes;
use stream_core::binder::{
    BindError, Binder, BinderEnvironment, BinderFactory, ConsumerSpec, DeadLetter, Delivery,
    Health, Producer, ProducerSpec, Route, SendError, Subscription,
};
use stream_core::message::{header, Message, RawMessage};

fn msg(s: &str) -> RawMessage {
    Message::new(Bytes::from(s.to_owned()))
}

fn text(m: &RawMessage) -> String {
    String::from_utf8(m.payload.to_vec()).unwrap()
}

fn consumer(concurrency: u32) -> ConsumerSpec {
    ConsumerSpec {
        binding: "test-in-0".into(),
        concurrency,
        max_attempts: 3,
        ..ConsumerSpec::default()
    }
}

fn partitioned(index: u32, count: u32) -> ConsumerSpec {
    ConsumerSpec {
        partitioned: true,
        instance_index: index,
        instance_count: count,
        ..consumer(1)
    }
}

fn producer_spec(partitions: u32, required_groups: &[&str]) -> ProducerSpec {
    ProducerSpec {
        binding: "test-out-0".into(),
        partition_count: partitions,
        required_groups: required_groups.iter().map(|s| s.to_string()).collect(),
        ..ProducerSpec::default()
    }
}

async fn producer(b: &MemoryBinder, dest: &str) -> Box<dyn Producer> {
    b.bind_producer(dest, &producer_spec(1, &[])).await.unwrap()
}

async fn send(p: &dyn Producer, s: &str) {
    p.send(msg(s), Route::default()).await.unwrap();
}

async fn send_to(p: &dyn Producer, s: &str, partition: u32) {
    p.send(
        msg(s),
        Route {
            partition_key: None,
            partition: Some(partition),
        },
    )
    .await
    .unwrap();
}

/// The next delivery, failing the test if none comes within a (virtual) second.
async fn next(sub: &mut Box<dyn Subscription>) -> Box<dyn Delivery> {
    tokio::time::timeout(Duration::from_secs(1), sub.next())
        .await
        .expect("no delivery within 1s")
        .expect("subscription ended")
        .expect("consume error")
}

/// Whether `next()` stays pending for a (virtual) second.
async fn nothing_next(sub: &mut Box<dyn Subscription>) -> bool {
    tokio::time::timeout(Duration::from_secs(1), sub.next())
        .await
        .is_err()
}

async fn take_all(sub: &mut Box<dyn Subscription>, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let d = next(sub).await;
        out.push(text(d.message()));
        d.ack().await.unwrap();
    }
    out
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test(start_paused = true)]
async fn every_group_gets_every_message() {
    let b = MemoryBinder::new(MemoryBroker::new());
    let mut a = b
        .bind_consumer("orders", Some("a"), &consumer(1))
        .await
        .unwrap();
    let mut c = b
        .bind_consumer("orders", Some("b"), &consumer(1))
        .await
        .unwrap();
    let p = producer(&b, "orders").await;
    for s in names("m", 5) {
        send(&*p, &s).await;
    }
    assert_eq!(take_all(&mut a, 5).await, names("m", 5));
    assert_eq!(take_all(&mut c, 5).await, names("m", 5));
    assert!(nothing_next(&mut a).await);
    assert!(nothing_next(&mut c).await);
}

#[tokio::test(start_paused = true)]
async fn members_of_one_group_compete() {
    let b = MemoryBinder::new(MemoryBroker::new());
    let mut handles = Vec::new();
    for _ in 0..2 {
        let mut sub = b
            .bind_consumer("orders", Some("g"), &consumer(1))
            .await
            .unwrap();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Ok(Some(d)) = tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
                let d = d.unwrap();
                // Simulated handler work, so the other member gets a turn.
                tokio::time::sleep(Duration::from_millis(10)).await;
                got.push(text(d.message()));
                d.ack().await.unwrap();
            }
            got
        }));
    }
    let p = producer(&b, "orders").await;
    for s in names("m", 20) {
        send(&*p, &s).await;
    }
    let mut all = Vec::new();
    for h in handles {
        let got = h.await.unwrap();
        assert!(!got.is_empty(), "each member gets some work");
        assert!(got.len() < 20, "no member gets everything");
        all.extend(got);
    }
    assert_eq!(all.len(), 20, "exactly once in the group");
    let distinct: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(distinct.len(), 20, "no duplicates");
}

#[tokio::test(start_paused = true)]
async fn group_queue_is_durable() {
    let broker = MemoryBroker::new();
    let b = MemoryBinder::new(broker.clone());
    // Provisioned by the producer's required groups before any member binds.
    let p = b
        .bind_producer("orders", &producer_spec(1, &["late"]))
        .await
        .unwrap();
    send(&*p, "before-1").await;
    send(&*p, "before-2").await;
    assert_eq!(broker.queue_depth("orders", "late"), Some(2));
    let mut late = b
        .bind_consumer("orders", Some("late"), &consumer(1))
        .await
        .unwrap();
    assert_eq!(take_all(&mut late, 2).await, vec!["before-1", "before-2"]);

    // The group survives its only member leaving.
    late.close().await;
    send(&*p, "while-away").await;
    let mut back = b
        .bind_consumer("orders", Some("late"), &consumer(1))
        .await
        .unwrap();
    assert_eq!(take_all(&mut back, 1).await, vec!["while-away"]);
    assert_eq!(broker.groups("orders"), vec!["late".to_string()]);
}

#[tokio::test(start_paused = true)]
async fn anonymous_sees_only_new_messages() {
    let b = MemoryBinder::new(MemoryBroker::new());
    let p = producer(&b, "news").await;
    send(&*p, "old").await;
    let mut anon = b.bind_consumer("news", None, &consumer(1)).await.unwrap();
    send(&*p, "new").await;
    assert_eq!(take_all(&mut anon, 1).await, vec!["new"]);
    assert!(nothing_next(&mut anon).await);
}

#[tokio::test(start_paused = true)]
async fn partitions_route_to_partitioned_instances() {
    let broker = MemoryBroker::new();
    let b = MemoryBinder::new(broker.clone());
    let p = b
        .bind_producer("events", &producer_spec(3, &[]))
        .await
        .unwrap();
    assert_eq!(broker.partition_count("events"), Some(3));
    let mut i0 = b
        .bind_consumer("events", Some("g"), &partitioned(0, 2))
        .await
        .unwrap();
    let mut i1 = b
        .bind_consumer("events", Some("g"), &partitioned(1, 2))
        .await
        .unwrap();
    for round in 0..2 {
        for part in 0..3 {
            send_to(&*p, &format!("p{part}-{round}"), part).await;
        }
    }
    // Instance 1 of 2 owns partition 1 only, in order.
    let mut got1 = Vec::new();
    for _ in 0..2 {
        let d = next(&mut i1).await;
        assert_eq!(d.ordering_key().as_deref(), Some("1"));
        got1.push(text(d.message()));
        d.ack().await.unwrap();
    }
    assert_eq!(got1, vec!["p1-0", "p1-1"]);
    assert!(nothing_next(&mut i1).await);
    // Instance 0 owns partitions 0 and 2; each partition stays in order.
    let mut by_part: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for _ in 0..4 {
        let d = next(&mut i0).await;
        let key = d.ordering_key().expect("partitioned destination has a key");
        by_part.entry(key).or_default().push(text(d.message()));
        d.ack().await.unwrap();
    }
    assert_eq!(by_part["0"], vec!["p0-0", "p0-1"]);
    assert_eq!(by_part["2"], vec!["p2-0", "p2-1"]);
    assert!(nothing_next(&mut i0).await);

    // A route past the partition count grows the destination.
    send_to(&*p, "p5", 5).await;
    assert_eq!(broker.partition_count("events"), Some(6));
    let d = next(&mut i1).await; // 5 % 2 == 1
    assert_eq!(text(d.message()), "p5");
    assert_eq!(d.ordering_key().as_deref(), Some("5"));
    d.ack().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn single_partition_has_no_ordering_key_and_non_partitioned_member_reads_all() {
    let b = MemoryBinder::new(MemoryBroker::new());
    let mut sub = b
        .bind_consumer("plain", Some("g"), &consumer(1))
        .await
        .unwrap();
    let p = producer(&b, "plain").await;
    send(&*p, "x").await;
    let d = next(&mut sub).await;
    assert_eq!(d.ordering_key(), None);
    assert_eq!(d.redelivery_count(), 1);
    d.ack().await.unwrap();

    let p3 = b
        .bind_producer("multi", &producer_spec(3, &[]))
        .await
        .unwrap();
    let mut all = b
        .bind_consumer("multi", Some("g"), &consumer(4))
        .await
        .unwrap();
    for part in 0..3 {
        send_to(&*p3, &format!("p{part}"), part).await;
    }
    let mut got = take_all(&mut all, 3).await;
    got.sort();
    assert_eq!(got, vec!["p0", "p1", "p2"]);
}

#[tokio::test(start_paused = true)]
async fn requeue_goes_to_the_front() {
    let b = MemoryBinder::new(MemoryBroker::new());
    let mut sub = b
        .bind_consumer("orders", Some("g"), &consumer(1))
        .await
        .unwrap();
    let p = producer(&b, "orders").await;
    for s in ["a", "b", "c"] {
        send(&*p, s).await;
    }
    let d = next(&mut sub).await;
    assert_eq!(text(d.message()), "a");
    assert_eq!(d.redelivery_count(), 1);
    d.requeue().await.unwrap();
    let d = next(&mut sub).await;
    assert_eq!(text(d.message()), "a", "requeued message comes back first");
    assert_eq!(d.redelivery_count(), 2);
    d.requeue().await.unwrap();
    let d = next(&mut sub).await;
    assert_eq!(d.redelivery_count(), 3);
    d.ack().await.unwrap();
    assert_eq!(take_all(&mut sub, 2).await, vec!["b", "c"]);
    assert!(nothing_next(&mut sub).await);
}

#[tokio::test(start_paused = true)]
async fn dropping_an_unsettled_delivery_redelivers_it() {
    let broker = MemoryBroker::new();
    let b = MemoryBinder::new(broker.clone());
    let mut sub = b
        .bind_consumer("orders", Some("g"), &consumer(1))
        .await
        .unwrap();
    let p = producer(&b, "orders").await;
    send(&*p, "a").await;
    send(&*p, "b").await;
    let d = next(&mut sub).await;
    assert_eq!(broker.in_flight("orders", "g"), Some(1));
    drop(d); // crash before settling
    assert_eq!(broker.in_flight("orders", "g"), Some(0));
    let d = next(&mut sub).await;
    assert_eq!(text(d.message()), "a");
    assert_eq!(d.redelivery_count(), 2);
    d.ack().await.unwrap();
    assert_eq!(take_all(&mut sub, 1).await, vec!["b"]);
}

#[tokio::test(start_paused = true)]
async fn closed_member_leaves_and_its_unsettled_delivery_goes_to_another() {
    let b = MemoryBinder::new(MemoryBroker::new());
    let mut m1 = b
        .bind_consumer("orders", Some("g"), &consumer(1))
        .await
        .unwrap();
    let mut m2 = b
        .bind_consumer("orders", Some("g"), &consumer(1))
        .await
        .unwrap();
    let p = producer(&b, "orders").await;
    send(&*p, "a").await;
    let d = next(&mut m1).await;
    m1.close().await;
    drop(d);
    let d = next(&mut m2).await;
    assert_eq!(text(d.message()), "a");
    assert_eq!(d.redelivery_count(), 2);
    d.ack().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn dead_letter_goes_to_the_group_dlq_with_headers() {
    let h = TestHarness::new();
    let binder = h
        .factory()
        .create("memory", &BinderEnvironment::own(serde_json::json!({})))
        .await
        .unwrap();
    let mut sub = binder
        .bind_consumer("orders", Some("stock"), &consumer(1))
        .await
        .unwrap();
    let mut dlq_sub = binder
        .bind_consumer("orders.stock.dlq", Some("ops"), &consumer(1))
        .await
        .unwrap();
    h.send("orders", msg("bad").header("trace", "t1")).await;
    let d = next(&mut sub).await;
    d.dead_letter(DeadLetter {
        error_message: "cannot parse".into(),
        error_kind: "decode".into(),
        attempts: 3,
    })
    .await
    .unwrap();

    let check = |m: &RawMessage| {
        assert_eq!(text(m), "bad");
        assert_eq!(m.headers.get_str("trace"), Some("t1"));
        assert_eq!(m.headers.get_str(header::ORIGINAL_TOPIC), Some("orders"));
        assert_eq!(m.headers.get_str(header::ORIGINAL_GROUP), Some("stock"));
        assert_eq!(
            m.headers.get_str(header::EXCEPTION_MESSAGE),
            Some("cannot parse")
        );
        assert_eq!(m.headers.get_str(header::EXCEPTION_KIND), Some("decode"));
        assert_eq!(m.headers.get_str(header::ORIGINAL_ATTEMPTS), Some("3"));
    };
    let dl = h.dead_letters("orders", Some("stock"));
    assert_eq!(dl.len(), 1);
    check(&dl[0]);
    check(
        &h.receive("orders.stock.dlq", Duration::from_secs(1))
            .await
            .expect("recorded on the DLQ destination"),
    );
    let d = next(&mut dlq_sub).await;
    check(d.message());
    d.ack().await.unwrap();

    // The original is gone.
    assert!(nothing_next(&mut sub).await);
    let broker = h.broker();
    assert_eq!(broker.queue_depth("orders", "stock"), Some(0));
    assert_eq!(broker.in_flight("orders", "stock"), Some(0));
    assert!(h.dead_letters("orders", Some("other")).is_empty());
}

#[tokio::test(start_paused = true)]
async fn anonymous_dead_letter_goes_to_dest_dlq() {
    let h = TestHarness::new();
    let binder = h
        .factory()
        .create("memory", &BinderEnvironment::own(serde_json::json!({})))
        .await
        .unwrap();
    let mut sub = binder
        .bind_consumer("news", None, &consumer(1))
        .await
        .unwrap();
    h.send("news", msg("x")).await;
    next(&mut sub)
        .await
        .dead_letter(DeadLetter {
            error_message: "boom".into(),
            error_kind: "permanent".into(),
            attempts: 1,
        })
        .await
        .unwrap();
    let m = h.receive("news.dlq", Duration::from_secs(1)).await.unwrap();
    assert_eq!(m.headers.get_str(header::ORIGINAL_TOPIC), Some("news"));
    assert_eq!(m.headers.get_str(header::ORIGINAL_GROUP), None);
    assert_eq!(h.dead_letters("news", None).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn full_queue_makes_send_wait() {
    let broker = MemoryBroker::with_capacity(2);
    let b = MemoryBinder::new(broker.clone());
    let mut sub = b
        .bind_consumer("orders", Some("g"), &consumer(1))
        .await
        .unwrap();
    let p = producer(&b, "orders").await;
    send(&*p, "1").await;
    send(&*p, "2").await;
    assert!(
        tokio::time::timeout(Duration::from_secs(5), p.send(msg("3"), Route::default()))
            .await
            .is_err(),
        "third send must wait while the queue is full"
    );
    let third = tokio::spawn(async move {
        p.send(msg("3"), Route::default()).await.unwrap();
        p
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!third.is_finished());
    let d = next(&mut sub).await; // takes one: room for one more
    let _p = tokio::time::timeout(Duration::from_secs(1), third)
        .await
        .expect("send resolves once a consumer took a message")
        .unwrap();
    d.ack().await.unwrap();
    assert_eq!(take_all(&mut sub, 2).await, vec!["2", "3"]);
}

#[tokio::test(start_paused = true)]
async fn prefetch_bounds_unsettled_deliveries() {
    let b = MemoryBinder::new(MemoryBroker::new());
    let mut sub = b
        .bind_consumer("orders", Some("g"), &consumer(1))
        .await
        .unwrap();
    let p = producer(&b, "orders").await;
    for s in names("m", 5) {
        send(&*p, &s).await;
    }
    // concurrency 1 → prefetch 2.
    let d0 = next(&mut sub).await;
    let d1 = next(&mut sub).await;
    assert!(
        nothing_next(&mut sub).await,
        "third unsettled delivery must wait"
    );
    d0.ack().await.unwrap();
    let d2 = next(&mut sub).await;
    assert_eq!(text(d2.message()), "m2");
    d1.ack().await.unwrap();
    d2.ack().await.unwrap();

    // The `prefetch` binder property overrides it.
    let spec = ConsumerSpec {
        binder_properties: serde_json::json!({ "prefetch": 1 }),
        ..consumer(8)
    };
    let mut one = b.bind_consumer("orders", Some("h"), &spec).await.unwrap();
    send(&*p, "h1").await;
    send(&*p, "h2").await;
    let d = next(&mut one).await;
    assert!(nothing_next(&mut one).await);
    d.ack().await.unwrap();
    assert_eq!(take_all(&mut one, 1).await, vec!["h2"]);
}

#[tokio::test(start_paused = true)]
async fn closing_an_anonymous_subscription_removes_its_queue() {
    let broker = MemoryBroker::with_capacity(2);
    let b = MemoryBinder::new(broker.clone());
    let anon = b.bind_consumer("news", None, &consumer(1)).await.unwrap();
    let p = producer(&b, "news").await;
    send(&*p, "seen").await;
    assert_eq!(broker.anonymous_count("news"), 1);
    assert_eq!(broker.anonymous_depth("news"), 1);
    anon.close().await;
    assert_eq!(broker.anonymous_count("news"), 0);
    // With capacity 2 these would block if the queue were still there.
    for s in names("later", 5) {
        tokio::time::timeout(Duration::from_secs(1), p.send(msg(&s), Route::default()))
            .await
            .expect("no queue left to fill")
            .unwrap();
    }
    assert_eq!(broker.anonymous_depth("news"), 0);

    // Dropping works the same way.
    let anon = b.bind_consumer("news", None, &consumer(1)).await.unwrap();
    assert_eq!(broker.anonymous_count("news"), 1);
    drop(anon);
    assert_eq!(broker.anonymous_count("news"), 0);
}

#[tokio::test(start_paused = true)]
async fn closing_the_anonymous_queue_releases_a_waiting_producer() {
    let broker = MemoryBroker::with_capacity(1);
    let b = MemoryBinder::new(broker.clone());
    let anon = b.bind_consumer("news", None, &consumer(1)).await.unwrap();
    let p = producer(&b, "news").await;
    send(&*p, "1").await;
    let blocked = tokio::spawn(async move { p.send(msg("2"), Route::default()).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!blocked.is_finished());
    anon.close().await;
    tokio::time::timeout(Duration::from_secs(1), blocked)
        .await
        .expect("released")
        .unwrap()
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_ends_subscriptions_and_sends() {
    let broker = MemoryBroker::with_capacity(1);
    let b = MemoryBinder::new(broker.clone());
    assert_eq!(b.health().await, Health::Up);
    let mut sub = b
        .bind_consumer("orders", Some("g"), &consumer(1))
        .await
        .unwrap();
    let waiting = tokio::spawn(async move { sub.next().await.is_none() });
    let p = producer(&b, "other").await;
    let _g = b
        .bind_consumer("other", Some("g"), &consumer(1))
        .await
        .unwrap();
    send(&*p, "fills").await;
    let blocked = tokio::spawn(async move { p.send(msg("x"), Route::default()).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    broker.shutdown();
    assert!(waiting.await.unwrap(), "next() returns None after shutdown");
    assert!(matches!(blocked.await.unwrap(), Err(SendError::Closed)));
    assert!(!b.health().await.is_up());
    assert!(b
        .bind_consumer("orders", Some("g"), &consumer(1))
        .await
        .is_err());
}

#[tokio::test(start_paused = true)]
async fn harness_receive_times_out_in_virtual_time() {
    let h = TestHarness::new();
    let start = tokio::time::Instant::now();
    assert!(h
        .receive("nothing", Duration::from_secs(30))
        .await
        .is_none());
    assert!(start.elapsed() >= Duration::from_secs(30));
    assert!(h
        .receive_n("nothing", 3, Duration::from_secs(5))
        .await
        .is_empty());
}

#[tokio::test(start_paused = true)]
async fn harness_records_what_the_app_sends_and_feeds_its_inputs() {
    let h = TestHarness::new();
    let factory = h.factory();
    let binder = factory
        .create("memory", &BinderEnvironment::own(serde_json::Value::Null))
        .await
        .unwrap();
    // "App": consumes `orders` in group `stock`, emits to `stock-reserved`.
    let mut input = binder
        .bind_consumer("orders", Some("stock"), &consumer(1))
        .await
        .unwrap();
    let output = binder
        .bind_producer("stock-reserved", &producer_spec(1, &[]))
        .await
        .unwrap();
    let app = tokio::spawn(async move {
        while let Some(Ok(d)) = input.next().await {
            let v: serde_json::Value = serde_json::from_slice(&d.message().payload).unwrap();
            assert_eq!(
                d.message().headers.get_str(header::CONTENT_TYPE),
                Some("application/json")
            );
            let out = serde_json::json!({ "order_id": v["id"] });
            output
                .send(Message::new(Bytes::from(out.to_string())), Route::default())
                .await
                .unwrap();
            d.ack().await.unwrap();
        }
    });
    for id in 1..=3 {
        h.send_json("orders", &serde_json::json!({ "id": id }))
            .await
            .unwrap();
    }
    let got = h
        .receive_n("stock-reserved", 3, Duration::from_secs(1))
        .await;
    let ids: Vec<serde_json::Value> = got
        .iter()
        .map(|m| {
            serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap()["order_id"].clone()
        })
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
    // Inputs are recorded too, independently of the app having consumed them.
    assert_eq!(
        h.receive_n("orders", 5, Duration::from_secs(1)).await.len(),
        3
    );
    h.send_json("orders", &serde_json::json!({ "id": 4 }))
        .await
        .unwrap();
    h.clear();
    assert!(h
        .receive("orders", Duration::from_millis(10))
        .await
        .is_none());
    h.broker().shutdown();
    app.await.unwrap();
}

#[tokio::test]
async fn factory_shares_brokers_by_name_and_reads_environment() {
    let f = MemoryBinderFactory::new();
    assert_eq!(f.binder_type(), "memory");
    let caps = f.capabilities();
    assert!(caps.durable_groups && caps.anonymous_sees_only_new && caps.native_partitions);
    assert!(!caps.native_delay && !caps.transactions);

    let _a = f
        .create(
            "local",
            &BinderEnvironment::own(serde_json::json!({ "capacity": "3" })),
        )
        .await
        .unwrap();
    let _a2 = f
        .create("local", &BinderEnvironment::own(serde_json::json!({})))
        .await
        .unwrap();
    let _b = f
        .create("other", &BinderEnvironment::own(serde_json::json!({})))
        .await
        .unwrap();
    let local = f.broker("local").unwrap();
    assert_eq!(local.capacity(), 3);
    assert!(f.broker("local").unwrap().same_broker(&local));
    assert!(!f.broker("other").unwrap().same_broker(&local));

    match f
        .create(
            "bad",
            &BinderEnvironment::own(serde_json::json!({ "capacityy": 3 })),
        )
        .await
    {
        Err(BindError::Config { key, .. }) => {
            assert_eq!(key, "spring.cloud.stream.binders.bad.environment.capacityy")
        }
        other => panic!("expected a config error, got {:?}", other.map(|_| ())),
    }
    assert!(f
        .create(
            "bad",
            &BinderEnvironment::own(serde_json::json!({ "capacity": 0 }))
        )
        .await
        .is_err());

    let shared = MemoryBroker::new();
    let fs = MemoryBinderFactory::with_broker(shared.clone());
    fs.create("x", &BinderEnvironment::own(serde_json::json!({})))
        .await
        .unwrap();
    assert!(fs.broker("y").unwrap().same_broker(&shared));

    let plan = f.plan_consumer("orders", Some("stock"), &ConsumerSpec::default());
    assert_eq!(plan.dlq.as_deref(), Some("orders.stock.dlq"));
    assert!(plan
        .resources
        .contains(&"memory destination orders".to_string()));
    assert!(plan
        .resources
        .contains(&"group queue orders.stock".to_string()));
    let plan = f.plan_producer("orders", &producer_spec(1, &[]));
    assert_eq!(
        plan.resources,
        vec!["memory destination orders".to_string()]
    );
}

#[tokio::test]
async fn partitioned_consumer_with_bad_index_is_refused() {
    let b = MemoryBinder::new(MemoryBroker::new());
    assert!(matches!(
        b.bind_consumer("e", Some("g"), &partitioned(2, 2)).await,
        Err(BindError::Config { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn waiting_publisher_is_woken_when_members_stop_taking() {
    // Capacity 16: taking wakes publishers only at 12 queued, but a member that may take no
    // more (prefetch 2) wakes them at once, so room is never left unused.
    let broker = MemoryBroker::with_capacity(16);
    let b = MemoryBinder::new(broker.clone());
    let mut sub = b
        .bind_consumer("orders", Some("g"), &consumer(1))
        .await
        .unwrap();
    let p = producer(&b, "orders").await;
    for i in 0..16 {
        send(&*p, &i.to_string()).await;
    }
    let waiting = tokio::spawn(async move {
        p.send(msg("16"), Route::default()).await.unwrap();
        p
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished(), "the queue is full");
    let (d1, d2) = (next(&mut sub).await, next(&mut sub).await);
    assert!(nothing_next(&mut sub).await, "prefetch is full");
    let _p = tokio::time::timeout(Duration::from_secs(1), waiting)
        .await
        .expect("the idle member woke the publisher")
        .unwrap();
    assert_eq!(broker.queue_depth("orders", "g"), Some(15));
    d1.ack().await.unwrap();
    d2.ack().await.unwrap();
}

#[tokio::test]
async fn non_waiting_fast_paths() {
    let broker = MemoryBroker::with_capacity(1);
    let b = MemoryBinder::new(broker.clone());
    let mut sub = b
        .bind_consumer("orders", Some("g"), &consumer(1))
        .await
        .unwrap();
    let p = producer(&b, "orders").await;
    assert!(sub.try_next().is_none(), "nothing queued");
    assert!(matches!(p.try_send(msg("a"), Route::default()), Ok(Ok(()))));
    let (back, _) = p
        .try_send(msg("b"), Route::default())
        .expect_err("full: the message is handed back");
    assert_eq!(text(&back), "b");
    let mut d = sub.try_next().expect("ready").unwrap();
    assert_eq!(text(d.message()), "a");
    assert_eq!(broker.in_flight("orders", "g"), Some(1));
    assert!(matches!(d.try_ack(), Some(Ok(()))));
    drop(d); // settled: dropping does not requeue
    assert_eq!(broker.in_flight("orders", "g"), Some(0));
    assert_eq!(broker.queue_depth("orders", "g"), Some(0));
}
