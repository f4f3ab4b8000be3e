//! The PostgreSQL inbox and outbox (`stream-postgres`) on a real PostgreSQL and each binder:
//! the memory binder, RabbitMQ and SQS (moto) as `scripts/brokers` starts them, and Kafka on
//! librdkafka's mock cluster.
//!
//! - inbox: one message delivered three times, and one whose first attempt fails after
//!   writing, change the database once each;
//! - outbox: rows committed while no relay ran (an app that died between commit and publish)
//!   are published once two relays start, as are rows committed while both run; per-key order
//!   holds; the outbox ends empty;
//! - a consumer SIGKILLed after its commit but before its ack (a child process): the broker
//!   redelivers, the inbox skips it, the database changed once;
//! - an application SIGKILLed right after committing outbox rows (its relay mid-way): a relay
//!   started afterwards publishes the rest, none lost;
//! - inbox rows expire after the retention.
//!
//! Each test works in a schema of its own, dropped at the end. PostgreSQL or a broker missing:
//! skipped with a message, or a failure under `CI=true`.

#[path = "support/brokers.rs"]
mod brokers;
#[path = "support/mock_cluster.rs"]
mod mock_cluster;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloud_stream::postgres::{self as pg, Inbox, Relay};
use cloud_stream::{HandlerError, Message, StreamApp};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

const CHILD_ENV: &str = "CLOUD_STREAM_PG_CHILD";

fn database_url() -> String {
    std::env::var("CLOUD_STREAM_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// A schema of the test database of one test's own.
struct Db {
    pool: PgPool,
    schema: String,
}

impl Db {
    /// A new schema with the library's tables and an `effects` table; `None` when skipped.
    async fn create() -> Option<Db> {
        let url = database_url();
        let options: PgConnectOptions = url.parse().expect("database URL");
        let addr = format!("{}:{}", options.get_host(), options.get_port());
        if !brokers::reachable("postgresql", &addr) {
            return None;
        }
        let schema = unique("cs_test_");
        let admin = PgPool::connect_with(options.clone())
            .await
            .expect("connect");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .expect("create schema");
        let db = Db {
            pool: Self::pool(&url, &schema).await,
            schema,
        };
        pg::migrate(&db.pool).await.expect("migrate");
        sqlx::query("CREATE TABLE effects (key text NOT NULL)")
            .execute(&db.pool)
            .await
            .expect("effects table");
        Some(db)
    }

    /// A pool whose connections work in `schema`.
    async fn pool(url: &str, schema: &str) -> PgPool {
        let options: PgConnectOptions = url.parse().expect("database URL");
        PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options.options([("search_path", schema)]))
            .await
            .expect("connect")
    }

    async fn effects(&self) -> HashMap<String, i64> {
        sqlx::query_as::<_, (String, i64)>("SELECT key, count(*) FROM effects GROUP BY key")
            .fetch_all(&self.pool)
            .await
            .expect("effects")
            .into_iter()
            .collect()
    }

    async fn drop(self) {
        let _ = sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .execute(&self.pool)
            .await;
    }
}

/// The idempotency key header the tests' producers set: a business key, as Kafka does not
/// carry Spring's `id` header (its consumers see `topic-partition-offset` as the `id`, the
/// same for a redelivery, different for a producer's resend).
const KEY: &str = "event-id";

fn inbox(pool: &PgPool) -> Inbox {
    Inbox::with_key_header(pool.clone(), "billing", KEY)
}

/// The handler every inbox test runs: records the message key in `effects`; a key starting
/// with `flaky` fails its first attempt after writing (the write must roll back).
fn effect(
    attempts: Arc<AtomicU32>,
) -> impl Fn(pg::Tx, Message<Value>) -> futures::future::BoxFuture<'static, Result<(), HandlerError>>
       + Send
       + Sync
       + 'static {
    move |tx, message| {
        let attempts = Arc::clone(&attempts);
        Box::pin(async move {
            let key = message.headers.get_str(KEY).unwrap_or("").to_owned();
            sqlx::query("INSERT INTO effects (key) VALUES ($1)")
                .bind(&key)
                .execute(&mut *tx.conn().await?)
                .await?;
            if key.starts_with("flaky") && attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(HandlerError::retryable(
                    "first attempt fails after its write",
                ));
            }
            Ok(())
        })
    }
}

/// Polls `check` every 50 ms until it holds or `secs` pass.
async fn eventually<F, Fut>(secs: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn app_yaml(binder: &str, definition: &str, bindings: &str) -> String {
    format!(
        "spring.cloud.function.definition: {definition}\nspring.cloud.stream.default-binder: b\nspring.cloud.stream.binders.b: {binder}\n{bindings}"
    )
}

fn bill_binding(destination: &str) -> String {
    format!("spring.cloud.stream.bindings.bill-in-0: {{ destination: {destination}, group: billing, consumer: {{ max-attempts: 3, back-off-initial-interval: 10 }} }}\n")
}

async fn inbox_scenario(binder: &str, destination: &str) {
    let Some(db) = Db::create().await else { return };
    let inbox = inbox(&db.pool);
    let attempts = Arc::new(AtomicU32::new(0));
    let app = StreamApp::builder()
        .config_yaml(&app_yaml(binder, "bill", &bill_binding(destination)))
        .consumer("bill", inbox.handler(effect(Arc::clone(&attempts))))
        .build()
        .await
        .expect("app");
    let bridge = app.bridge();
    for id in ["a", "a", "a", "flaky", "c"] {
        let message = Message::new(json!({"n": 1})).header(KEY, id);
        bridge
            .send_message(destination, message)
            .await
            .expect("send");
    }
    let done = eventually(30, || async {
        db.effects().await.len() == 3 && inbox.duplicates_skipped() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let effects = db.effects().await;
    app.shutdown().await;
    db.drop().await;
    assert!(
        done,
        "effects {effects:?}, duplicates {}",
        inbox.duplicates_skipped()
    );
    let once: HashMap<String, i64> = [("a", 1), ("flaky", 1), ("c", 1)]
        .map(|(k, n)| (k.to_owned(), n))
        .into();
    assert_eq!(effects, once);
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        2,
        "flaky: failed once, then succeeded"
    );
}

/// Handled keys are deleted after the inbox's retention by its cleanup extension; a message
/// with an expired key is handled again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_rows_expire_after_the_retention() {
    let Some(db) = Db::create().await else { return };
    let destination = unique("pg-ttl-");
    let inbox = inbox(&db.pool).retention(Duration::from_secs(1));
    let app = StreamApp::builder()
        .config_yaml(&app_yaml(MEMORY, "bill", &bill_binding(&destination)))
        .consumer("bill", inbox.handler(effect(Arc::default())))
        .extension(inbox.extension())
        .build()
        .await
        .expect("app");
    let send = || async {
        let message = Message::new(json!({"n": 1})).header(KEY, "old");
        app.bridge()
            .send_message(&destination, message)
            .await
            .expect("send");
    };
    send().await;
    let handled = eventually(10, || async {
        inbox.contains("old").await.unwrap_or(false)
    })
    .await;
    let expired = eventually(10, || async {
        !inbox.contains("old").await.unwrap_or(true)
    })
    .await;
    send().await;
    let again = eventually(10, || async { db.effects().await.get("old") == Some(&2) }).await;
    app.shutdown().await;
    db.drop().await;
    assert!(
        handled && expired && again,
        "handled {handled}, expired {expired}, handled again {again}"
    );
}

/// What the outbox test's consumer received: (id, key, seq).
type Received = Arc<Mutex<Vec<(String, String, u64)>>>;

/// The `collect` consumer: records (id, key, seq) of each message into `received`.
fn collector(
    received: &Received,
) -> impl Fn(Message<Value>) -> std::future::Ready<Result<(), HandlerError>> + Send + Sync + 'static
{
    let sink = Arc::clone(received);
    move |m: Message<Value>| {
        let id = m.headers.get_str("id").unwrap_or("").to_owned();
        let key = m.payload["key"].as_str().unwrap_or("").to_owned();
        let seq = m.payload["seq"].as_u64().unwrap_or(u64::MAX);
        sink.lock().unwrap().push((id, key, seq));
        std::future::ready(Ok(()))
    }
}

/// A row the bridge refuses for good (a destination `dynamic-destinations` does not allow)
/// goes to `cloud_stream_outbox_dead` with the error, and its key's later rows are published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_that_can_never_be_published_is_set_aside() {
    let Some(db) = Db::create().await else { return };
    let destination = unique("pg-dead-");
    let mut tx = db.pool.begin().await.expect("begin");
    for (seq, to) in [
        (0, destination.as_str()),
        (1, "forbidden"),
        (2, destination.as_str()),
    ] {
        let message = Message::new(json!({"key": "k", "seq": seq})).header("partition-key", "k");
        pg::outbox::send_message(&mut tx, to, &message)
            .await
            .expect("outbox");
    }
    tx.commit().await.expect("commit");
    let received: Received = Arc::default();
    let bindings = format!("spring.cloud.stream.dynamic-destinations: {destination}\nspring.cloud.stream.bindings.collect-in-0: {{ destination: {destination}, group: collectors }}\n");
    let app = StreamApp::builder()
        .config_yaml(&app_yaml(MEMORY, "collect", &bindings))
        .consumer("collect", collector(&received))
        .extension(Relay::new(db.pool.clone()).extension())
        .build()
        .await
        .expect("app");
    let both = eventually(30, || async { received.lock().unwrap().len() >= 2 }).await;
    let dead: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, destination, error FROM cloud_stream_outbox_dead")
            .fetch_all(&db.pool)
            .await
            .expect("dead rows");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM cloud_stream_outbox")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    app.shutdown().await;
    db.drop().await;
    let seqs: Vec<u64> = received.lock().unwrap().iter().map(|r| r.2).collect();
    assert!(both, "received {seqs:?}");
    assert_eq!(seqs, [0, 2], "the key goes on past the dead row, in order");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].1, "forbidden");
    assert!(dead[0].2.contains("not allowed"), "{dead:?}");
    assert_eq!(left, 0);
}

async fn write_outbox(pool: &PgPool, destination: &str, from: u64, to: u64) {
    for seq in from..to {
        let key = format!("k{}", seq % 4);
        let mut tx = pool.begin().await.expect("begin");
        sqlx::query("INSERT INTO effects (key) VALUES ($1)")
            .bind(&key)
            .execute(&mut *tx)
            .await
            .expect("write");
        let message = Message::new(json!({"key": key, "seq": seq})).header("partition-key", key);
        pg::outbox::send_message(&mut tx, destination, &message)
            .await
            .expect("outbox");
        tx.commit().await.expect("commit");
    }
}

async fn outbox_scenario(binder: &str, destination: &str) {
    let Some(db) = Db::create().await else { return };
    // Committed while no relay runs: an app that died between its commit and the publish.
    write_outbox(&db.pool, destination, 0, 40).await;
    let received: Received = Arc::default();
    let bindings = format!("spring.cloud.stream.bindings.collect-in-0: {{ destination: {destination}, group: collectors }}\n");
    let app = StreamApp::builder()
        .config_yaml(&app_yaml(binder, "collect", &bindings))
        .consumer("collect", collector(&received))
        .extension(
            Relay::new(db.pool.clone())
                .poll_interval(Duration::from_millis(200))
                .extension(),
        )
        .build()
        .await
        .expect("app");
    // A second instance's relay, over the same outbox.
    let second = tokio_util::sync::CancellationToken::new();
    let relay = Relay::new(db.pool.clone()).poll_interval(Duration::from_millis(200));
    let (bridge, token) = (app.bridge(), second.clone());
    let second_task = tokio::spawn(async move { relay.run(bridge, token).await });
    // Committed while both relays run.
    write_outbox(&db.pool, destination, 40, 120).await;
    let all = eventually(60, || async { received.lock().unwrap().len() >= 120 }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM cloud_stream_outbox")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    second.cancel();
    let _ = second_task.await;
    app.shutdown().await;
    db.drop().await;
    let received = received.lock().unwrap().clone();
    assert!(all, "received {} of 120", received.len());
    let ids: HashSet<_> = received.iter().map(|(id, _, _)| id.clone()).collect();
    assert_eq!(ids.len(), 120, "120 distinct messages");
    assert_eq!(received.len(), 120, "none published twice");
    assert_eq!(left, 0, "the outbox is empty once published");
    let mut last: HashMap<String, u64> = HashMap::new();
    for (_, key, seq) in &received {
        if let Some(prev) = last.insert(key.clone(), *seq) {
            assert!(prev < *seq, "key {key}: {seq} after {prev}");
        }
    }
}

/// Runs the child process `role` (a test of this binary that acts only when [`CHILD_ENV`] is
/// set), runs `send` once it printed `READY`, and waits for it to die by SIGKILL.
async fn run_killed_child(
    role: &str,
    yaml: &str,
    db: &Db,
    env: &[(&str, &str)],
    send: impl std::future::Future<Output = ()>,
) {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([role, "--exact", "--nocapture"])
        .env(CHILD_ENV, yaml)
        .env("CLOUD_STREAM_PG_CHILD_SCHEMA", &db.schema)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let ready = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.trim() == "READY")
    });
    let ready = tokio::time::timeout(Duration::from_secs(60), ready).await;
    if !matches!(ready, Ok(Ok(true))) {
        let _ = child.kill();
        panic!("the child did not start");
    }
    send.await;
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert_eq!(
        status.signal(),
        Some(9),
        "the child died by SIGKILL: {status:?}"
    );
}

/// The child: consumes with the inbox, and SIGKILLs itself once its handler committed (before
/// the runtime could ack). A no-op unless the parent set [`CHILD_ENV`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_child_killed_after_commit() {
    let Ok(yaml) = std::env::var(CHILD_ENV) else {
        return;
    };
    let schema = std::env::var("CLOUD_STREAM_PG_CHILD_SCHEMA").expect("schema");
    let pool = Db::pool(&database_url(), &schema).await;
    let handler = inbox(&pool).handler(effect(Arc::default()));
    let _app = StreamApp::builder()
        .config_yaml(&yaml)
        .consumer("bill", move |m: Message<Value>| {
            let committed = handler(m);
            async move {
                committed.await?;
                kill_self();
                Ok(())
            }
        })
        .build()
        .await
        .expect("child app");
    println!("READY");
    tokio::time::sleep(Duration::from_secs(120)).await;
    panic!("the child was not killed");
}

async fn sigkill_scenario(binder: &str, destination: &str) {
    let Some(db) = Db::create().await else { return };
    let yaml = app_yaml(binder, "bill", &bill_binding(destination));
    let sender = StreamApp::builder()
        .config_yaml(&app_yaml(binder, "", ""))
        .build()
        .await
        .expect("sender");
    let bridge = sender.bridge();
    let send = async {
        let message = Message::new(json!({"n": 1})).header(KEY, "once");
        bridge
            .send_message(destination, message)
            .await
            .expect("send");
    };
    run_killed_child("role_child_killed_after_commit", &yaml, &db, &[], send).await;
    let after_kill = db.effects().await;
    // The same consumer again: the broker redelivers the unacked message; the inbox skips it.
    let inbox = inbox(&db.pool);
    let calls = Arc::new(AtomicU32::new(0));
    let app = StreamApp::builder()
        .config_yaml(&yaml)
        .consumer("bill", inbox.handler(effect(Arc::clone(&calls))))
        .build()
        .await
        .expect("app");
    let redelivered = eventually(60, || async { inbox.duplicates_skipped() == 1 }).await;
    let effects = db.effects().await;
    app.shutdown().await;
    sender.shutdown().await;
    db.drop().await;
    let once: HashMap<String, i64> = [("once".to_owned(), 1)].into();
    assert_eq!(after_kill, once, "the child committed before it was killed");
    assert!(redelivered, "the broker redelivered the unacked message");
    assert_eq!(effects, once, "the redelivery changed nothing");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the handler did not run again"
    );
}

/// The child of [`writer_killed_scenario`]: commits 20 outbox rows with its relay running and
/// SIGKILLs itself right after the last commit, whatever its relay published by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_writer_killed_after_commit() {
    let Ok(yaml) = std::env::var(CHILD_ENV) else {
        return;
    };
    let schema = std::env::var("CLOUD_STREAM_PG_CHILD_SCHEMA").expect("schema");
    let destination = std::env::var("CLOUD_STREAM_PG_CHILD_DESTINATION").expect("destination");
    let pool = Db::pool(&database_url(), &schema).await;
    let _app = StreamApp::builder()
        .config_yaml(&yaml)
        .extension(Relay::new(pool.clone()).extension())
        .build()
        .await
        .expect("child app");
    println!("READY");
    write_outbox(&pool, &destination, 0, 20).await;
    kill_self();
}

/// SIGKILLs this (child) process: nothing after this point runs, no destructor, no ack.
fn kill_self() {
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status();
    std::thread::sleep(Duration::from_secs(60));
}

/// An application killed (SIGKILL) right after committing outbox rows, its relay mid-way: a
/// relay started afterwards publishes the rest; every row arrives (at least once).
async fn writer_killed_scenario(binder: &str, destination: &str) {
    let Some(db) = Db::create().await else { return };
    let received: Received = Arc::default();
    let bindings = format!("spring.cloud.stream.bindings.collect-in-0: {{ destination: {destination}, group: collectors }}\n");
    let collector = StreamApp::builder()
        .config_yaml(&app_yaml(binder, "collect", &bindings))
        .consumer("collect", collector(&received))
        .build()
        .await
        .expect("collector");
    run_killed_child(
        "role_writer_killed_after_commit",
        &app_yaml(binder, "", ""),
        &db,
        &[("CLOUD_STREAM_PG_CHILD_DESTINATION", destination)],
        async {},
    )
    .await;
    let left_by_child: i64 = sqlx::query_scalar("SELECT count(*) FROM cloud_stream_outbox")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    let stop = tokio_util::sync::CancellationToken::new();
    let relay = Relay::new(db.pool.clone());
    let (bridge, token) = (collector.bridge(), stop.clone());
    let restarted = tokio::spawn(async move { relay.run(bridge, token).await });
    let all = eventually(60, || async {
        let seqs: HashSet<u64> = received.lock().unwrap().iter().map(|r| r.2).collect();
        seqs.len() == 20
    })
    .await;
    stop.cancel();
    let _ = restarted.await;
    collector.shutdown().await;
    db.drop().await;
    let seqs: HashSet<u64> = received.lock().unwrap().iter().map(|r| r.2).collect();
    println!(
        "writer killed after commit: {left_by_child} of 20 rows left unpublished by the child"
    );
    assert!(all, "0 lost: received {seqs:?}");
}

fn rabbit_binder() -> Option<String> {
    if !brokers::reachable("rabbitmq", "127.0.0.1:5672") {
        return None;
    }
    let uri = std::env::var("CLOUD_STREAM_TEST_AMQP_URI")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    Some(format!(
        "{{ type: rabbit, environment: {{ uri: \"{uri}\" }} }}"
    ))
}

fn sqs_binder() -> Option<String> {
    let endpoint = std::env::var("CLOUD_STREAM_TEST_AWS_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:4566".to_owned());
    if !brokers::reachable("sqs", endpoint.trim_start_matches("http://")) {
        return None;
    }
    Some(format!("{{ type: sqs, environment: {{ endpoint: \"{endpoint}\", region: us-east-1, access-key: test, secret-key: s3cr3t, consumer: {{ wait-time-seconds: 1, visibility-timeout: 2 }} }} }}"))
}

const MEMORY: &str = "{ type: memory }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_memory() {
    inbox_scenario(MEMORY, &unique("pg-in-")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_rabbit() {
    let Some(binder) = rabbit_binder() else {
        return;
    };
    inbox_scenario(&binder, &unique("pg-in-")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_sqs() {
    let Some(binder) = sqs_binder() else { return };
    inbox_scenario(&binder, &unique("pg-in-")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_kafka_mock() {
    let destination = unique("pg-in-");
    let (_cluster, binder) = mock_cluster::in_process(&[&destination]);
    inbox_scenario(&binder, &destination).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_memory() {
    outbox_scenario(MEMORY, &unique("pg-out-")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_rabbit() {
    let Some(binder) = rabbit_binder() else {
        return;
    };
    outbox_scenario(&binder, &unique("pg-out-")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_sqs() {
    let Some(binder) = sqs_binder() else { return };
    outbox_scenario(&binder, &unique("pg-out-")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_kafka_mock() {
    let destination = unique("pg-out-");
    let (_cluster, binder) = mock_cluster::in_process(&[&destination]);
    outbox_scenario(&binder, &destination).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_commit_rabbit() {
    let Some(binder) = rabbit_binder() else {
        return;
    };
    sigkill_scenario(&binder, &unique("pg-kill-")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_commit_sqs() {
    let Some(binder) = sqs_binder() else { return };
    sigkill_scenario(&binder, &unique("pg-kill-")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_commit_kafka_mock() {
    let destination = unique("pg-kill-");
    let (_cluster, binder) = mock_cluster::in_process(&[&destination]);
    sigkill_scenario(&binder, &destination).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_killed_after_commit_rabbit() {
    let Some(binder) = rabbit_binder() else {
        return;
    };
    writer_killed_scenario(&binder, &unique("pg-crash-")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_killed_after_commit_kafka_mock() {
    let destination = unique("pg-crash-");
    let (_cluster, binder) = mock_cluster::in_process(&[&destination]);
    writer_killed_scenario(&binder, &destination).await;
}
