//! On the wire like Spring Cloud Stream, checked with the raw clients (lapin, rdkafka, the AWS
//! SDK) on the real brokers: what a Spring binder or a plain client produces, a cloud-stream
//! binding consumes; what cloud-stream produces and dead-letters, a Spring consumer, a plain
//! client and Spring's DLQ tooling can read (README, "Wire format").
//!
//! The raw producers write what Spring's binders write, from their documented behaviour and
//! sources: on RabbitMQ the `content_type` property, persistent delivery and a header table;
//! on Kafka `contentType` JSON-quoted with `spring_json_header_types` (spring-kafka's header
//! mapper); on SQS a `contentType` String attribute (Spring Cloud AWS). Brokers as
//! `scripts/brokers` starts them (`CLOUD_STREAM_TEST_AMQP_URI`,
//! `CLOUD_STREAM_TEST_KAFKA_BROKERS`, `CLOUD_STREAM_TEST_AWS_ENDPOINT`); one that is not
//! reachable skips its tests with a message, or fails them under `CI=true`.
//!
//! Also on the wire, and kept in the conformance target beside the Rabbit binder's other
//! provisioning scenarios: a cloud-stream app and a Spring declaration sharing a group queue
//! in either order (`rabbit::shares_group_queues_with_spring_declarations_in_either_order`).

#[path = "support/brokers.rs"]
mod brokers;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use brokers::reachable;

use cloud_stream::{HandlerError, Headers, Message, RunningApp, StreamApp, StreamAppBuilder};

const WAIT: Duration = Duration::from_secs(30);

fn unique(base: &str) -> String {
    format!(
        "{base}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// Whether `addr` accepts connections; unreachable fails under `CI=true`, else skips.
/// Starts an app on the binder `binder` (YAML of its `binders.b` entry) with `body`.
async fn start(
    binder: &str,
    body: &str,
    configure: impl FnOnce(StreamAppBuilder) -> StreamAppBuilder,
) -> RunningApp {
    let yaml = format!(
        "spring.cloud.stream.default-binder: b\nspring.cloud.stream.binders:\n  b:\n    {binder}\n{body}"
    );
    configure(
        StreamApp::builder()
            .env(Default::default())
            .config_yaml(&yaml),
    )
    .build()
    .await
    .unwrap_or_else(|e| panic!("app starts: {e}"))
}

/// What a consumer binding saw: payloads (as text) and headers.
type Seen = Arc<Mutex<Vec<(String, Headers)>>>;

/// A consumer `sink` taking any payload as text, recording it with its headers.
fn recording(b: StreamAppBuilder, seen: &Seen) -> StreamAppBuilder {
    let seen = Arc::clone(seen);
    b.consumer("sink", move |m: Message<String>| {
        let seen = Arc::clone(&seen);
        async move {
            seen.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((m.payload.clone(), m.headers.clone()));
            Ok::<_, HandlerError>(())
        }
    })
}

async fn first_seen(seen: &Seen) -> (String, Headers) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(first) = seen.lock().unwrap_or_else(|e| e.into_inner()).first() {
            return first.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing consumed in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A consumer `reject` that fails every message permanently (one attempt: straight to the DLQ).
fn rejecting(b: StreamAppBuilder) -> StreamAppBuilder {
    b.consumer("reject", |_: serde_json::Value| async {
        Err::<(), _>(HandlerError::permanent("no thanks"))
    })
}

mod rabbit {
    use super::*;
    use lapin::options::{
        BasicGetOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions,
    };
    use lapin::types::{AMQPValue, FieldTable, LongString};
    use lapin::{BasicProperties, Channel, Connection};

    fn uri() -> String {
        std::env::var("CLOUD_STREAM_TEST_AMQP_URI")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
    }

    fn binder() -> String {
        format!("type: rabbit\n    environment: {{ uri: \"{}\" }}", uri())
    }

    async fn channel() -> Option<(Connection, Channel)> {
        if !reachable("rabbitmq", "127.0.0.1:5672") {
            return None;
        }
        let conn = Connection::connect(&uri(), Default::default())
            .await
            .expect("raw connect");
        let ch = conn.create_channel().await.expect("raw channel");
        Some((conn, ch))
    }

    /// The header table value of `name` as text.
    fn text(props: &BasicProperties, name: &str) -> Option<String> {
        match props.headers().as_ref()?.inner().get(name)? {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            AMQPValue::ShortString(s) => Some(s.to_string()),
            other => Some(format!("{other:?}")),
        }
    }

    /// A message published as Spring's Rabbit binder publishes it (to the destination's topic
    /// exchange, routing key the destination, `content_type` property, persistent, headers in
    /// the table) is consumed with its content type and headers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn consumes_what_spring_publishes() {
        let Some((conn, ch)) = channel().await else {
            return;
        };
        let dest = unique("interop-in");
        let seen = Seen::default();
        let body = format!("spring.cloud.function.definition: sink\nspring.cloud.stream.bindings.sink-in-0: {{ destination: {dest}, group: g }}\n");
        let app = start(&binder(), &body, |b| recording(b, &seen)).await;
        let mut table = FieldTable::default();
        table.insert(
            "tenant".into(),
            AMQPValue::LongString(LongString::from(&b"acme"[..])),
        );
        let props = BasicProperties::default()
            .with_content_type("text/plain".into())
            .with_delivery_mode(2)
            .with_headers(table);
        ch.basic_publish(
            dest.as_str().into(),
            dest.as_str().into(),
            BasicPublishOptions::default(),
            b"hello",
            props,
        )
        .await
        .expect("raw publish")
        .await
        .expect("raw confirm");
        let (payload, headers) = first_seen(&seen).await;
        assert_eq!(payload, "hello");
        assert_eq!(headers.get_str("content-type"), Some("text/plain"));
        assert_eq!(headers.get_str("tenant"), Some("acme"));
        app.shutdown().await;
        let _ = conn.close(200, "done".into()).await;
    }

    /// What cloud-stream publishes reaches a plain consumer bound to the destination's
    /// exchange: the payload as JSON, `content_type` and `message_id` properties, persistent,
    /// user headers in the table, no Spring-named copy of the content type.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn plain_consumers_read_what_cloud_stream_publishes() {
        let Some((conn, ch)) = channel().await else {
            return;
        };
        let dest = unique("interop-out");
        let body = format!("spring.cloud.stream.output-bindings: out\nspring.cloud.stream.bindings.out.destination: {dest}\n");
        let app = start(&binder(), &body, |b| b).await;
        let queue = unique("plain");
        ch.queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("raw queue");
        ch.queue_bind(
            queue.as_str().into(),
            dest.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("raw bind");
        let msg = Message::new(serde_json::json!({"n": 1})).header("tenant", "acme");
        app.bridge().send_message("out", msg).await.expect("send");
        let got = get_one(&ch, &queue).await;
        assert_eq!(got.data, br#"{"n":1}"#);
        let p = &got.properties;
        assert_eq!(
            p.content_type().as_ref().map(|c| c.as_str()),
            Some("application/json")
        );
        assert_eq!(p.delivery_mode(), &Some(2));
        assert!(p.message_id().is_some(), "message_id");
        assert_eq!(text(p, "tenant").as_deref(), Some("acme"));
        assert_eq!(text(p, "contentType"), None);
        app.shutdown().await;
        let _ = conn.close(200, "done".into()).await;
    }

    async fn get_one(ch: &Channel, queue: &str) -> lapin::message::BasicGetMessage {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = ch
                .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                .await
                .expect("raw get");
            if let Some(m) = got {
                return m;
            }
            assert!(tokio::time::Instant::now() < deadline, "nothing on {queue}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A dead letter in `<destination>.<group>.dlq` carries what Spring's DLQ tooling and its
    /// republish-from-DLQ pattern read: the payload unchanged, `x-exception-message`,
    /// `x-exception-stacktrace`, `x-original-exchange`, `x-original-routingKey`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dead_letters_carry_springs_headers() {
        let Some((conn, ch)) = channel().await else {
            return;
        };
        let dest = unique("interop-dlq");
        let body = format!("spring.cloud.function.definition: reject\nspring.cloud.stream.bindings.reject-in-0: {{ destination: {dest}, group: g, consumer: {{ max-attempts: 1 }} }}\n");
        let app = start(&binder(), &body, rejecting).await;
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        ch.basic_publish(
            dest.as_str().into(),
            dest.as_str().into(),
            BasicPublishOptions::default(),
            br#"{"n":1}"#,
            props,
        )
        .await
        .expect("raw publish")
        .await
        .expect("raw confirm");
        let got = get_one(&ch, &format!("{dest}.g.dlq")).await;
        assert_eq!(got.data, br#"{"n":1}"#);
        let p = &got.properties;
        assert!(text(p, "x-exception-message").is_some_and(|m| m.contains("no thanks")));
        assert!(text(p, "x-exception-stacktrace").is_some_and(|m| m.contains("no thanks")));
        assert_eq!(
            text(p, "x-original-exchange").as_deref(),
            Some(dest.as_str())
        );
        assert_eq!(
            text(p, "x-original-routingKey").as_deref(),
            Some(dest.as_str())
        );
        app.shutdown().await;
        let _ = conn.close(200, "done".into()).await;
    }
}

mod kafka {
    use super::*;
    use cloud_stream::binder_kafka::rdkafka::config::ClientConfig;
    use cloud_stream::binder_kafka::rdkafka::consumer::{Consumer as _, StreamConsumer};
    use cloud_stream::binder_kafka::rdkafka::message::{
        BorrowedMessage, Header, Headers as _, Message as _, OwnedHeaders,
    };
    use cloud_stream::binder_kafka::rdkafka::producer::{FutureProducer, FutureRecord};
    use cloud_stream::binder_kafka::rdkafka::Timestamp;

    fn brokers() -> Option<String> {
        let b = std::env::var("CLOUD_STREAM_TEST_KAFKA_BROKERS")
            .unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
        let first = b.split(',').next().unwrap_or_default().to_owned();
        reachable("kafka", &first).then_some(b)
    }

    fn binder(brokers: &str) -> String {
        format!("type: kafka\n    environment: {{ brokers: \"{brokers}\" }}")
    }

    fn raw_consumer(brokers: &str, topic: &str) -> StreamConsumer {
        let c: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", unique("raw-reader"))
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("raw consumer");
        c.subscribe(&[topic]).expect("subscribe");
        c
    }

    async fn next(c: &StreamConsumer) -> BorrowedMessage<'_> {
        tokio::time::timeout(WAIT, c.recv())
            .await
            .expect("a record in time")
            .expect("a record")
    }

    fn header<'a>(m: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a [u8]> {
        m.headers()?.iter().find(|h| h.key == name)?.value
    }

    /// A record as Spring's Kafka binder writes it (`contentType` JSON-quoted, described in
    /// `spring_json_header_types`, a binary key) is consumed as text with its content type;
    /// a plain client's record (no headers at all) is read as JSON, the binding's default.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn consumes_what_spring_and_plain_clients_produce() {
        let Some(brokers) = brokers() else { return };
        let topic = unique("interop-in");
        let seen = Seen::default();
        let body = format!("spring.cloud.function.definition: sink\nspring.cloud.stream.bindings.sink-in-0: {{ destination: {topic}, group: g }}\n");
        let app = start(&binder(&brokers), &body, |b| recording(b, &seen)).await;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .expect("raw producer");
        let spring_headers = OwnedHeaders::new()
            .insert(Header {
                key: "contentType",
                value: Some(&b"\"text/plain\""[..]),
            })
            .insert(Header {
                key: "spring_json_header_types",
                value: Some(&br#"{"contentType":"java.lang.String"}"#[..]),
            });
        let key = 1000i64.to_be_bytes();
        producer
            .send(
                FutureRecord::to(&topic)
                    .key(&key[..])
                    .payload("hello")
                    .headers(spring_headers),
                WAIT,
            )
            .await
            .expect("raw send");
        let (payload, headers) = first_seen(&seen).await;
        assert_eq!(payload, "hello");
        assert_eq!(headers.get_str("content-type"), Some("text/plain"));
        // No id on the wire: the record's coordinates, the same on every redelivery.
        assert_eq!(headers.get_str("id"), Some(format!("{topic}-0-0").as_str()));
        producer
            .send(FutureRecord::<(), _>::to(&topic).payload("\"plain\""), WAIT)
            .await
            .expect("raw send");
        let deadline = tokio::time::Instant::now() + WAIT;
        while seen.lock().unwrap_or_else(|e| e.into_inner()).len() < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "plain record consumed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(seen.lock().unwrap_or_else(|e| e.into_inner())[1].0, "plain");
        app.shutdown().await;
    }

    /// A cloud-stream binding with default settings joins a consumer group that another
    /// client (here raw rdkafka with the `range` assignor, which Spring's Kafka clients also
    /// offer by default) consumes: the group splits the partitions between them and every
    /// record is consumed by one of the two.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shares_a_consumer_group_with_another_client() {
        let Some(brokers) = brokers() else { return };
        let (topic, group) = (unique("interop-group"), unique("g"));
        let seen = Seen::default();
        let env = format!(
            "type: kafka\n    environment: {{ brokers: \"{brokers}\", min-partition-count: 2 }}"
        );
        let body = format!("spring.cloud.function.definition: sink\nspring.cloud.stream.bindings.sink-in-0: {{ destination: {topic}, group: {group} }}\n");
        let app = start(&env, &body, |b| recording(b, &seen)).await;
        let other: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", &group)
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "range")
            .create()
            .expect("raw consumer");
        other.subscribe(&[&topic]).expect("subscribe");
        let theirs: Arc<Mutex<Vec<String>>> = Arc::default();
        let split = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (t, s) = (Arc::clone(&theirs), Arc::clone(&split));
        let reader = tokio::spawn(async move {
            loop {
                // Polling drives the rebalance; the group has split once this member holds
                // one of the two partitions.
                let polled = tokio::time::timeout(Duration::from_millis(200), other.recv()).await;
                if other.assignment().is_ok_and(|a| a.count() == 1) {
                    s.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                if let Ok(Ok(m)) = polled {
                    let text = String::from_utf8_lossy(m.payload().unwrap_or_default());
                    t.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(text.into_owned());
                }
            }
        });
        let deadline = tokio::time::Instant::now() + WAIT;
        while !split.load(std::sync::atomic::Ordering::SeqCst) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the group never split"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .expect("raw producer");
        let n = 40;
        for i in 0..n {
            let key = format!("k{i}");
            producer
                .send(
                    FutureRecord::to(&topic)
                        .key(&key)
                        .payload(&format!("\"m{i}\"")),
                    WAIT,
                )
                .await
                .expect("raw send");
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        let (ours, other_count) = loop {
            let ours: Vec<String> = seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(p, _)| p.clone())
                .collect();
            let theirs = theirs.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let all: std::collections::BTreeSet<String> = ours
                .iter()
                .cloned()
                .chain(theirs.iter().map(|t| t.trim_matches('"').to_owned()))
                .collect();
            if all.len() >= n || tokio::time::Instant::now() >= deadline {
                assert_eq!(all.len(), n, "every record consumed by one of the two");
                break (ours.len(), theirs.len());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        println!("group {group}: cloud-stream {ours}, other client {other_count}");
        assert!(ours > 0 && other_count > 0, "both members got partitions");
        reader.abort();
        app.shutdown().await;
    }

    /// What cloud-stream produces, as a Spring consumer and a plain client read it: the content
    /// type under Spring's `contentType` in plain text (Spring's converters read it), user
    /// headers as UTF-8, no `id`, `timestamp` or `partition` record headers (Spring reserves
    /// the first two), the record's own `CreateTime` timestamp.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spring_and_plain_consumers_read_what_cloud_stream_produces() {
        let Some(brokers) = brokers() else { return };
        let topic = unique("interop-out");
        let body = format!("spring.cloud.stream.output-bindings: out\nspring.cloud.stream.bindings.out.destination: {topic}\n");
        let app = start(&binder(&brokers), &body, |b| b).await;
        let msg = Message::new(serde_json::json!({"n": 1})).header("tenant", "acme");
        app.bridge().send_message("out", msg).await.expect("send");
        let reader = raw_consumer(&brokers, &topic);
        let m = next(&reader).await;
        assert_eq!(m.payload(), Some(&br#"{"n":1}"#[..]));
        assert_eq!(header(&m, "contentType"), Some(&b"application/json"[..]));
        assert_eq!(header(&m, "tenant"), Some(&b"acme"[..]));
        for reserved in ["id", "timestamp", "partition", "content-type"] {
            assert_eq!(
                header(&m, reserved),
                None,
                "{reserved} is not a record header"
            );
        }
        assert!(matches!(m.timestamp(), Timestamp::CreateTime(t) if t > 0));
        app.shutdown().await;
    }

    /// A dead letter in `error.<destination>.<group>` as Spring's DLQ tooling reads it: the
    /// record key unchanged (a Java `LongSerializer` key), `x-original-partition` as a 4-byte
    /// and `x-original-offset`/`x-original-timestamp` as 8-byte big-endian integers, the
    /// timestamp type, the error as message, stack trace and type name.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dead_letters_carry_springs_headers_in_springs_encodings() {
        let Some(brokers) = brokers() else { return };
        let topic = unique("interop-dlq");
        let body = format!("spring.cloud.function.definition: reject\nspring.cloud.stream.bindings.reject-in-0: {{ destination: {topic}, group: g, consumer: {{ max-attempts: 1 }} }}\nspring.cloud.stream.kafka.bindings.reject-in-0.consumer.enable-dlq: true\n");
        let app = start(&binder(&brokers), &body, rejecting).await;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .expect("raw producer");
        let key = 1000i64.to_be_bytes();
        producer
            .send(
                FutureRecord::to(&topic).key(&key[..]).payload("{\"n\":1}"),
                WAIT,
            )
            .await
            .expect("raw send");
        let reader = raw_consumer(&brokers, &format!("error.{topic}.g"));
        let m = next(&reader).await;
        assert_eq!(m.key(), Some(&key[..]), "the binary key is kept");
        assert_eq!(m.payload(), Some(&b"{\"n\":1}"[..]));
        let get = |name: &str| {
            header(&m, name)
                .unwrap_or_else(|| panic!("no {name}"))
                .to_vec()
        };
        assert_eq!(get("x-original-partition"), 0i32.to_be_bytes().to_vec());
        assert_eq!(get("x-original-offset"), 0i64.to_be_bytes().to_vec());
        assert_eq!(get("x-original-timestamp").len(), 8);
        assert_eq!(get("x-original-timestamp-type"), b"CreateTime".to_vec());
        assert_eq!(get("x-original-topic"), topic.as_bytes().to_vec());
        assert!(String::from_utf8_lossy(&get("x-exception-message")).contains("no thanks"));
        assert!(String::from_utf8_lossy(&get("x-exception-stacktrace")).contains("no thanks"));
        assert!(!get("x-exception-fqcn").is_empty());
        app.shutdown().await;
    }
}

mod sqs {
    use super::*;
    use cloud_stream::binder_sqs::aws_sdk_sqs::types::{
        MessageAttributeValue, MessageSystemAttributeName,
    };
    use cloud_stream::binder_sqs::aws_sdk_sqs::Client;

    fn endpoint() -> Option<String> {
        let e = std::env::var("CLOUD_STREAM_TEST_AWS_ENDPOINT")
            .unwrap_or_else(|_| "http://127.0.0.1:4566".to_owned());
        reachable("sqs", e.trim_start_matches("http://")).then_some(e)
    }

    /// The binder on queues (`destination-mode: sqs`), as Spring Cloud AWS users have them.
    fn binder(endpoint: &str) -> String {
        format!("type: sqs\n    environment: {{ endpoint: \"{endpoint}\", region: us-east-1, access-key: test, secret-key: test, consumer: {{ wait-time-seconds: 1, destination-mode: sqs }}, producer: {{ destination-mode: sqs }} }}")
    }

    async fn client(endpoint: &str) -> Client {
        let creds = cloud_stream::binder_sqs::aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "interop",
        );
        let conf = cloud_stream::binder_sqs::aws_sdk_sqs::Config::builder()
            .behavior_version_latest()
            .region(cloud_stream::binder_sqs::aws_sdk_sqs::config::Region::new(
                "us-east-1",
            ))
            .endpoint_url(endpoint)
            .credentials_provider(creds)
            .build();
        Client::from_conf(conf)
    }

    async fn queue_url(c: &Client, name: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(out) = c.get_queue_url().queue_name(name).send().await {
                return out.queue_url().unwrap_or_default().to_owned();
            }
            assert!(tokio::time::Instant::now() < deadline, "no queue {name}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// One message from `queue`, with every attribute.
    async fn receive(
        c: &Client,
        queue: &str,
    ) -> cloud_stream::binder_sqs::aws_sdk_sqs::types::Message {
        let url = queue_url(c, queue).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let out = c
                .receive_message()
                .queue_url(&url)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("raw receive");
            if let Some(m) = out.messages.unwrap_or_default().into_iter().next() {
                return m;
            }
            assert!(tokio::time::Instant::now() < deadline, "nothing on {queue}");
        }
    }

    fn attr(
        m: &cloud_stream::binder_sqs::aws_sdk_sqs::types::Message,
        name: &str,
    ) -> Option<String> {
        m.message_attributes()?
            .get(name)?
            .string_value()
            .map(str::to_owned)
    }

    fn text_attr(v: &str) -> MessageAttributeValue {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .expect("attribute")
    }

    /// A message sent as Spring Cloud AWS sends it (`contentType` String attribute, user
    /// headers as attributes) is consumed as text with its content type and headers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn consumes_what_spring_cloud_aws_sends() {
        let Some(endpoint) = endpoint() else { return };
        let queue = unique("interop-in");
        let seen = Seen::default();
        let body = format!("spring.cloud.function.definition: sink\nspring.cloud.stream.bindings.sink-in-0: {{ destination: {queue}, group: g }}\n");
        let app = start(&binder(&endpoint), &body, |b| recording(b, &seen)).await;
        let c = client(&endpoint).await;
        let url = queue_url(&c, &queue).await;
        c.send_message()
            .queue_url(&url)
            .message_body("hello")
            .message_attributes("contentType", text_attr("text/plain"))
            .message_attributes("tenant", text_attr("acme"))
            .send()
            .await
            .expect("raw send");
        let (payload, headers) = first_seen(&seen).await;
        assert_eq!(payload, "hello");
        assert_eq!(headers.get_str("content-type"), Some("text/plain"));
        assert_eq!(headers.get_str("tenant"), Some("acme"));
        app.shutdown().await;
    }

    /// What cloud-stream sends, as a plain client (and Spring Cloud AWS) reads it: the body as
    /// text, `contentType` and user headers as String attributes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn plain_consumers_read_what_cloud_stream_sends() {
        let Some(endpoint) = endpoint() else { return };
        let queue = unique("interop-out");
        let body = format!("spring.cloud.stream.output-bindings: out\nspring.cloud.stream.bindings.out.destination: {queue}\n");
        let app = start(&binder(&endpoint), &body, |b| b).await;
        let msg = Message::new(serde_json::json!({"n": 1})).header("tenant", "acme");
        app.bridge().send_message("out", msg).await.expect("send");
        let c = client(&endpoint).await;
        let m = receive(&c, &queue).await;
        assert_eq!(m.body(), Some(r#"{"n":1}"#));
        assert_eq!(attr(&m, "contentType").as_deref(), Some("application/json"));
        assert_eq!(attr(&m, "tenant").as_deref(), Some("acme"));
        assert_eq!(attr(&m, "content-type"), None);
        app.shutdown().await;
    }

    /// A dead letter in `<queue>-dlq` carries the payload unchanged and the error and origin
    /// as String attributes a plain DLQ reader sees.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dead_letters_carry_the_error_as_attributes() {
        let Some(endpoint) = endpoint() else { return };
        let queue = unique("interop-dlq");
        let body = format!("spring.cloud.function.definition: reject\nspring.cloud.stream.bindings.reject-in-0: {{ destination: {queue}, group: g, consumer: {{ max-attempts: 1 }} }}\n");
        let app = start(&binder(&endpoint), &body, rejecting).await;
        let c = client(&endpoint).await;
        let url = queue_url(&c, &queue).await;
        c.send_message()
            .queue_url(&url)
            .message_body(r#"{"n":1}"#)
            .send()
            .await
            .expect("raw send");
        let m = receive(&c, &format!("{queue}-dlq")).await;
        assert_eq!(m.body(), Some(r#"{"n":1}"#));
        assert!(attr(&m, "x-exception-message").is_some_and(|e| e.contains("no thanks")));
        assert_eq!(
            attr(&m, "x-original-topic").as_deref(),
            Some(queue.as_str())
        );
        assert_eq!(attr(&m, "x-original-group").as_deref(), Some("g"));
        app.shutdown().await;
    }
}
