//! The RabbitMQ binder against the real broker (`scripts/brokers up rabbit`), plus
//! rabbit-specific scenarios.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cloud_stream::binder::{
    Binder, BinderEnvironment, BinderFactory, ConsumerSpec, ProducerSpec, Route, SendError,
};
use cloud_stream::binder_rabbit::{RabbitBinder, RabbitBinderFactory};
use cloud_stream::{HandlerError, RawMessage};
use serde_json::json;

use crate::target::{json, start_app, try_start_app, unique, Probe, Target, WAIT};

/// The broker URI (`CLOUD_STREAM_TEST_AMQP_URI`, default the local RabbitMQ).
fn uri() -> String {
    std::env::var("CLOUD_STREAM_TEST_AMQP_URI")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// The virtual host of [`uri`] (`%2f` is `/`), for the tests that spell out Spring's keys.
fn vhost() -> String {
    let uri = uri();
    let path = uri
        .split_once("://")
        .map_or("", |(_, rest)| rest)
        .split_once('/')
        .map_or("", |(_, v)| v);
    match path {
        "" | "%2f" | "%2F" => "/".to_owned(),
        v => v.replace("%2f", "/").replace("%2F", "/"),
    }
}

/// The RabbitMQ binder on the local broker.
pub struct RabbitTarget {
    uri: String,
    /// Dead letters already taken off each DLQ (reading a queue consumes it; scenarios expect
    /// the dead-letter history to stay readable).
    taken: std::sync::Mutex<std::collections::HashMap<String, Vec<RawMessage>>>,
}

/// `Some` when the broker is reachable; otherwise a panic under `CI=true`, else a skip notice.
pub fn target() -> Option<RabbitTarget> {
    let uri = uri();
    // host:port of `scheme://[user:pass@]host[:port][/vhost]`.
    let authority = uri
        .split_once("://")
        .map_or(uri.as_str(), |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let addr = if host_port.contains(':') {
        host_port.to_owned()
    } else if uri.starts_with("amqps://") {
        format!("{host_port}:5671")
    } else {
        format!("{host_port}:5672")
    };
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(&addr)
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    if reachable {
        return Some(RabbitTarget {
            uri,
            taken: Default::default(),
        });
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("rabbit broker not reachable at {addr}; run scripts/brokers up rabbit");
    }
    eprintln!("SKIPPED: rabbit broker not reachable at {addr}; run scripts/brokers up rabbit");
    None
}

impl RabbitTarget {
    fn env(&self) -> BinderEnvironment {
        BinderEnvironment::own(json!({ "uri": self.uri }))
    }

    /// A concrete binder (for reading dead-letter queues).
    pub async fn binder(&self) -> RabbitBinder {
        RabbitBinder::connect("probe", &self.env())
            .await
            .expect("rabbit binder")
    }
}

#[async_trait]
impl Target for RabbitTarget {
    fn binder_type(&self) -> &'static str {
        "rabbit"
    }
    fn environment_yaml(&self) -> String {
        format!("{{ uri: \"{}\" }}", self.uri)
    }
    fn factory(&self) -> Arc<dyn BinderFactory> {
        Arc::new(RabbitBinderFactory::new())
    }
    async fn probe_binder(&self) -> Arc<dyn Binder> {
        Arc::new(self.binder().await)
    }
    async fn dead_letters(
        &self,
        destination: &str,
        group: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<RawMessage> {
        let binder = self.binder().await;
        let queue = format!("{destination}.{group}.dlq");
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let fresh = match binder.take_from_queue(&queue, usize::MAX).await {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("reading {queue}: {e}");
                    Vec::new()
                }
            };
            let found = {
                let mut taken = self.taken.lock().unwrap();
                let all = taken.entry(queue.clone()).or_default();
                all.extend(fresh);
                all.clone()
            };
            if found.len() >= n || tokio::time::Instant::now() >= deadline {
                binder.close().await;
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    fn virtual_time(&self) -> bool {
        false
    }
    fn dead_letter_consumer_yaml(&self, binding: &str, destination: &str, group: &str) -> String {
        format!(
            "spring.cloud.stream.bindings.{binding}: {{ destination: DLX, group: \"{destination}.{group}.dlq\" }}\nspring.cloud.stream.rabbit.bindings.{binding}.consumer: {{ queue-name-group-only: true, exchange-type: direct, binding-routing-key: \"{destination}.{group}\", auto-bind-dlq: false }}\n"
        )
    }
    fn batch_size_yaml(&self, binding: &str, size: usize) -> String {
        crate::target::batch_size_key("rabbit", binding, size)
    }
}

crate::conformance_suite!(crate::rabbit::target(), real);

// ---- rabbit-specific scenarios ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_rabbit_binding_key_fails_build_with_suggestion() {
    let Some(t) = target() else { return };
    let input = unique("in");
    let yaml = format!(
        "spring.cloud.function.definition: x\nspring.cloud.stream.bindings:\n  x-in-0: {{ destination: {input}, group: g }}\nspring.cloud.stream.rabbit.bindings.x-in-0.consumer.prefech: 5\n"
    );
    let result = try_start_app(&t, &yaml, |b| {
        b.consumer("x", |_: u32| async { Ok::<_, HandlerError>(()) })
    })
    .await;
    let err = match result {
        Ok(_) => panic!("build must fail"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("prefech") && err.contains("prefetch"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_environment_key_and_bad_host_fail_with_typed_errors() {
    let Some(_t) = target() else { return };
    let f = RabbitBinderFactory::new();
    let e = f
        .create(
            "r",
            &BinderEnvironment::own(json!({"spring": {"rabbitmq": {"hots": "x"}}})),
        )
        .await
        .err()
        .expect("unknown key")
        .to_string();
    assert!(
        e.contains("spring.rabbitmq.hots") && e.contains("did you mean `host`"),
        "{e}"
    );
    // Nothing listens on port 1: a connect error, with the password hidden.
    let e = f
        .create(
            "r",
            &BinderEnvironment::own(json!({"uri": "amqp://guest:s3cret@127.0.0.1:1/%2f"})),
        )
        .await
        .err()
        .expect("connect error");
    assert!(
        matches!(e, cloud_stream::binder::BindError::Connect { .. }),
        "{e}"
    );
    assert!(!format!("{e} {e:?}").contains("s3cret"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mandatory_unroutable_send_is_an_error() {
    let Some(t) = target() else { return };
    let binder = t.binder().await;
    let dest = unique("nowhere");
    let producer = binder
        .bind_producer(
            &dest,
            &ProducerSpec {
                binding: "o".into(),
                partition_count: 1,
                binder_properties: json!({"mandatory": true}),
                ..Default::default()
            },
        )
        .await
        .expect("producer");
    let r = producer.send(json(json!(1)), Route::default()).await;
    assert!(matches!(r, Err(SendError::Unroutable { .. })), "{r:?}");
    // With a queue bound it goes through.
    let _sub = binder
        .bind_consumer(
            &dest,
            Some("g"),
            &ConsumerSpec {
                binding: "i".into(),
                concurrency: 1,
                ..Default::default()
            },
        )
        .await
        .expect("consumer");
    producer
        .send(json(json!(2)), Route::default())
        .await
        .expect("routable now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republish_to_dlq_false_lets_the_broker_dead_letter() {
    let Some(t) = target() else { return };
    let input = unique("in");
    let yaml = format!(
        "spring.cloud.function.definition: fail\nspring.cloud.stream.bindings:\n  fail-in-0: {{ destination: {input}, group: g, consumer: {{ max-attempts: 1 }} }}\nspring.cloud.stream.rabbit.bindings.fail-in-0.consumer.republish-to-dlq: false\n"
    );
    let app = start_app(&t, &yaml, |b| {
        b.consumer("fail", |_: u32| async {
            Err::<(), _>(HandlerError::new("nope"))
        })
    })
    .await;
    Probe::new(&t).await.send(&input, [json(json!(7))]).await;
    let dead = t.dead_letters(&input, "g", 1, WAIT).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(crate::target::value(&dead[0]), json!(7));
    assert!(
        dead[0].headers.contains("x-death"),
        "broker dead-lettering adds x-death: {:?}",
        dead[0].headers
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_key_expression_and_binding_routing_key() {
    let Some(t) = target() else { return };
    let dest = unique("rk");
    let yaml = format!(
        "spring.cloud.function.definition: only\nspring.cloud.stream.output-bindings: out\nspring.cloud.stream.bindings:\n  only-in-0: {{ destination: {dest}, group: g }}\n  out: {{ destination: {dest} }}\nspring.cloud.stream.rabbit.bindings:\n  only-in-0.consumer.binding-routing-key: red\n  out.producer.routing-key-expression: \"headers['color']\"\n"
    );
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let app = start_app(&t, &yaml, move |b| {
        b.consumer("only", move |v: u32| {
            s.lock().unwrap().push(v);
            async { Ok::<_, HandlerError>(()) }
        })
    })
    .await;
    let bridge = app.bridge();
    for (i, color) in ["red", "blue", "red"].iter().enumerate() {
        bridge
            .send_message(
                "out",
                cloud_stream::Message::new(i as u32).header("color", *color),
            )
            .await
            .expect("send");
    }
    assert!(crate::target::eventually(WAIT, || seen.lock().unwrap().len() >= 2).await);
    tokio::time::sleep(crate::target::QUIET).await;
    let mut got = seen.lock().unwrap().clone();
    got.sort_unstable();
    assert_eq!(got, vec![0, 2], "only red messages are routed to the queue");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_up_and_down_after_close() {
    let Some(t) = target() else { return };
    let binder = t.binder().await;
    assert!(binder.health().await.is_up());
    binder.close().await;
    assert!(!binder.health().await.is_up());
}

/// Round trip through an app whose binder is configured by `binders_yaml` (no `uri`).
async fn round_trip_with(binders_yaml: &str) {
    let (input, output) = (unique("in"), unique("out"));
    let yaml = format!(
        "{binders_yaml}spring.cloud.function.definition: up\nspring.cloud.stream.default-binder: r\nspring.cloud.stream.bindings:\n  up-in-0: {{ destination: {input}, group: g }}\n  up-out-0: {{ destination: {output} }}\n"
    );
    let t = target().expect("checked by the caller");
    let probe = Probe::new(&t).await;
    let mut out = probe.observe(&output).await;
    let app = cloud_stream::StreamApp::builder()
        .env(Default::default())
        .config_yaml(&yaml)
        .function("up", |s: String| async move {
            Ok::<_, HandlerError>(s.to_uppercase())
        })
        .build()
        .await
        .expect("app starts");
    probe.send(&input, [json(json!("hi"))]).await;
    let got = out.next(WAIT).await.expect("output");
    assert_eq!(crate::target::value(&got), json!("HI"));
    app.shutdown().await;
}

/// Building an app with `binders_yaml` fails fast with a connection error that hides the
/// password.
async fn build_fails_without_secret(binders_yaml: &str, secret: &str) {
    let yaml = format!(
        "{binders_yaml}spring.cloud.stream.binding-retry-interval: 0\nspring.cloud.function.definition: up\nspring.cloud.stream.default-binder: r\nspring.cloud.stream.bindings.up-in-0: {{ destination: {}, group: g }}\n",
        unique("in")
    );
    let result = cloud_stream::StreamApp::builder()
        .env(Default::default())
        .config_yaml(&yaml)
        .consumer("up", |_: u32| async { Ok::<_, HandlerError>(()) })
        .build()
        .await;
    let err = match result {
        Ok(_) => panic!("wrong credentials must not connect"),
        Err(e) => format!("{e} {e:?}"),
    };
    assert!(!err.contains(secret), "{err}");
    assert!(err.contains("cannot connect"), "a connection error: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spring_rabbitmq_keys_in_environment() {
    if target().is_none() {
        return;
    }
    build_fails_without_secret(
        "spring.cloud.stream.binders.r:\n  type: rabbit\n  environment:\n    spring.rabbitmq: { host: 127.0.0.1, port: 5672, username: guest, password: Wr0ngPass }\n",
        "Wr0ngPass",
    )
    .await;
    round_trip_with(&format!(
        "spring.cloud.stream.binders.r:\n  type: rabbit\n  environment:\n    spring.rabbitmq: {{ host: 127.0.0.1, port: 5672, username: guest, password: guest, virtual-host: \"{}\" }}\n",
        vhost()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spring_rabbitmq_keys_inherited_from_the_application() {
    if target().is_none() {
        return;
    }
    build_fails_without_secret(
        "spring.rabbitmq: { host: 127.0.0.1, password: Wr0ngPass }\nspring.cloud.stream.binders.r: { type: rabbit }\n",
        "Wr0ngPass",
    )
    .await;
    round_trip_with(&format!(
        "spring.rabbitmq: {{ addresses: \"127.0.0.1:5672\", username: guest, password: guest, virtual-host: \"{}\" }}\nspring.cloud.stream.binders.r: {{ type: rabbit }}\n",
        vhost()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_queue_with_dlq() {
    let Some(t) = target() else { return };
    let input = unique("in");
    let yaml = format!(
        "spring.cloud.function.definition: fail\nspring.cloud.stream.bindings:\n  fail-in-0: {{ destination: {input}, group: g, consumer: {{ max-attempts: 2, back-off-initial-interval: 10 }} }}\nspring.cloud.stream.rabbit.bindings.fail-in-0.consumer: {{ quorum: {{ enabled: true }}, ttl: 60000, max-length: 1000 }}\n"
    );
    let app = start_app(&t, &yaml, |b| {
        b.consumer("fail", |v: u32| async move {
            if v == 13 {
                Err(HandlerError::new("unlucky"))
            } else {
                Ok(())
            }
        })
    })
    .await;
    Probe::new(&t)
        .await
        .send(&input, [json(json!(1)), json(json!(13))])
        .await;
    let dead = t.dead_letters(&input, "g", 1, WAIT).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(crate::target::value(&dead[0]), json!(13));
    assert_eq!(
        dead[0].headers.get_str("x-original-attempts"),
        Some("2"),
        "{:?}",
        dead[0].headers
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_required_groups_keep_messages_for_late_consumers() {
    let Some(t) = target() else { return };
    let dest = unique("parts");
    let producer_yaml = format!(
        "spring.cloud.stream.output-bindings: parts-out\nspring.cloud.stream.bindings:\n  parts-out:\n    destination: {dest}\n    producer: {{ partition-key-expression: \"headers['key']\", partition-count: 2, required-groups: [g] }}\n"
    );
    let producer = start_app(&t, &producer_yaml, |b| b).await;
    let bridge = producer.bridge();
    for i in 0..20u32 {
        bridge
            .send_message(
                "parts-out",
                cloud_stream::Message::new(i).header("key", format!("k{}", i % 5)),
            )
            .await
            .expect("send");
    }
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut consumers = Vec::new();
    for index in 0..2 {
        let s = seen.clone();
        let yaml = format!(
            "spring.cloud.function.definition: part\nspring.cloud.stream.bindings:\n  part-in-0: {{ destination: {dest}, group: g, consumer: {{ partitioned: true, instance-count: 2, instance-index: {index} }} }}\n"
        );
        consumers.push(
            start_app(&t, &yaml, move |b| {
                b.consumer("part", move |v: u32| {
                    s.lock().unwrap().push((index, v));
                    async { Ok::<_, HandlerError>(()) }
                })
            })
            .await,
        );
    }
    assert!(crate::target::eventually(WAIT, || seen.lock().unwrap().len() >= 20).await);
    tokio::time::sleep(crate::target::QUIET).await;
    let got = seen.lock().unwrap().clone();
    let mut values: Vec<u32> = got.iter().map(|(_, v)| *v).collect();
    values.sort_unstable();
    assert_eq!(values, (0..20).collect::<Vec<_>>(), "all kept, none twice");
    assert!(got.iter().any(|(i, _)| *i == 0) && got.iter().any(|(i, _)| *i == 1));
    for c in consumers {
        c.shutdown().await;
    }
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_uri_attempts_tls_and_fails_cleanly_on_a_plain_port() {
    let Some(_t) = target() else { return };
    // 5672 speaks plain AMQP: the TLS handshake must fail with a typed, redacted error (no
    // panic, e.g. for a missing crypto provider).
    let e = RabbitBinderFactory::new()
        .create(
            "tls",
            &BinderEnvironment::own(json!({"uri": "amqps://guest:tls-s3cret@127.0.0.1:5672/%2f"})),
        )
        .await
        .err()
        .expect("no TLS on the plain port");
    assert!(
        matches!(e, cloud_stream::binder::BindError::Connect { .. }),
        "{e}"
    );
    assert!(!format!("{e} {e:?}").contains("tls-s3cret"), "{e:?}");
    println!("amqps on a plain port: {e}");
}

/// Declares `<dest>.g` as a Spring application does: the topic exchange, the durable queue
/// with `args` (none with Spring's defaults; dead-letter arguments with `autoBindDlq: true`),
/// bound with `#`.
async fn declare_as_spring(ch: &lapin::Channel, dest: &str, args: lapin::types::FieldTable) {
    use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let fields = lapin::types::FieldTable::default;
    ch.exchange_declare(dest.into(), lapin::ExchangeKind::Topic, durable, fields())
        .await
        .expect("exchange");
    let queue = format!("{dest}.g");
    let options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(queue.as_str().into(), options, args)
        .await
        .expect("Spring's queue declaration");
    ch.queue_bind(
        queue.as_str().into(),
        dest.into(),
        "#".into(),
        QueueBindOptions::default(),
        fields(),
    )
    .await
    .expect("binding");
}

/// A consumer on `<dest>.g` that dead-letters `0` and keeps the rest: it starts, consumes and
/// dead-letters on a queue declared by someone else.
async fn consume_on_shared_queue(t: &RabbitTarget, dest: &str) {
    let yaml = format!(
        "spring.cloud.function.definition: pick\nspring.cloud.stream.bindings.pick-in-0: {{ destination: {dest}, group: g, consumer: {{ max-attempts: 1 }} }}\n"
    );
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let app = start_app(t, &yaml, move |b| {
        b.consumer("pick", move |v: u32| {
            let s = Arc::clone(&s);
            async move {
                if v == 0 {
                    return Err(HandlerError::permanent("zero"));
                }
                s.lock().unwrap_or_else(|e| e.into_inner()).push(v);
                Ok(())
            }
        })
    })
    .await;
    Probe::new(t)
        .await
        .send(dest, [json(json!(0)), json(json!(1))])
        .await;
    let dead = t.dead_letters(dest, "g", 1, WAIT).await;
    assert_eq!(dead.len(), 1, "{dest}: dead letter kept");
    // What Spring's republish-from-DLQ pattern reads to send it back.
    let h = &dead[0].headers;
    assert_eq!(h.get_str("x-original-exchange"), Some(dest), "{h:?}");
    assert!(h.get_str("x-original-routingKey").is_some(), "{h:?}");
    let trace = h.get_str("x-exception-stacktrace").unwrap_or("");
    assert!(trace.contains("zero"), "{h:?}");
    let got = crate::target::eventually(WAIT, || {
        !seen.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    })
    .await;
    assert!(got, "{dest}: consumed");
    app.shutdown().await;
}

/// A cloud-stream service joins a group queue a Spring service declared (with Spring's
/// defaults, or with `autoBindDlq: true`), and a Spring service with default settings can
/// declare the queue cloud-stream made: either start order works, and dead letters still reach
/// `<queue>.dlq` (the runtime republishes them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_group_queues_with_spring_declarations_in_either_order() {
    use lapin::types::{AMQPValue, FieldTable, LongString};
    let Some(t) = target() else { return };
    let conn = lapin::Connection::connect(&uri(), Default::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    let spring_default = unique("springdefault");
    declare_as_spring(&ch, &spring_default, FieldTable::default()).await;
    consume_on_shared_queue(&t, &spring_default).await;

    let spring_dlq = unique("springdlq");
    let mut args = FieldTable::default();
    let text = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes()));
    args.insert("x-dead-letter-exchange".into(), text("DLX"));
    args.insert(
        "x-dead-letter-routing-key".into(),
        text(&format!("{spring_dlq}.g")),
    );
    declare_as_spring(&ch, &spring_dlq, args).await;
    consume_on_shared_queue(&t, &spring_dlq).await;

    let ours_first = unique("oursfirst");
    consume_on_shared_queue(&t, &ours_first).await;
    declare_as_spring(&ch, &ours_first, FieldTable::default()).await;
    let _ = conn.close(200, "done".into()).await;
}

/// Acks are coalesced per channel (one `multiple` ack for a run of handled deliveries), but a
/// delivery still being handled never holds back the acks of those after it: with prefetch 2
/// and message 0 waiting for message 2 (three lanes, so 2 gets one of its own), message 1's ack
/// must go out on its own, or the broker never sends message 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_delivery_does_not_hold_back_later_acks() {
    let Some(t) = target() else { return };
    let input = unique("in");
    let yaml = format!(
        "spring.cloud.function.definition: work\nspring.cloud.stream.bindings:\n  work-in-0: {{ destination: {input}, group: g, consumer: {{ concurrency: 3, max-attempts: 1 }} }}\nspring.cloud.stream.rabbit.bindings.work-in-0.consumer.prefetch: 2\n"
    );
    let handled = Arc::new(std::sync::Mutex::new(Vec::new()));
    let third = Arc::new(tokio::sync::Notify::new());
    let (h, n) = (Arc::clone(&handled), Arc::clone(&third));
    let app = start_app(&t, &yaml, move |b| {
        b.consumer("work", move |v: u32| {
            let (h, n) = (Arc::clone(&h), Arc::clone(&n));
            async move {
                if v == 0 {
                    tokio::time::timeout(WAIT, n.notified())
                        .await
                        .map_err(|_| HandlerError::new("message 2 never came"))?;
                }
                if v == 2 {
                    n.notify_one();
                }
                h.lock().unwrap().push(v);
                Ok::<(), HandlerError>(())
            }
        })
    })
    .await;
    let probe = Probe::new(&t).await;
    probe.send(&input, [json(json!(0))]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    probe.send(&input, [json(json!(1)), json(json!(2))]).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while handled.lock().unwrap().len() < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut seen = handled.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(seen, [0, 1, 2], "every message handled once");
    assert!(t
        .dead_letters(&input, "g", 0, Duration::ZERO)
        .await
        .is_empty());
    app.shutdown().await;
}
