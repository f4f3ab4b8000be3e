//! `cloud-stream dlq list|peek|replay|purge` against RabbitMQ and SQS (moto), as `scripts/brokers` starts
//! them, and Kafka (librdkafka's mock cluster): an app
//! dead-letters two messages, and the commands, run on the app's own configuration file,
//! report them in the binding's DLQ and show them with Spring's error headers, leaving them
//! there; `replay` republishes them (one, then the rest in a run killed mid-way, losing
//! nothing), `purge --yes` empties the DLQ; a `--binding` the file does not have is a usage
//! error.
//! An unreachable broker is skipped with a message, or fails under `CI=true`.

#[path = "support/brokers.rs"]
mod brokers;
#[path = "support/mock_cluster.rs"]
mod mock_cluster;

use std::process::{Command, Output};
use std::time::Duration;

use cloud_stream::{HandlerError, StreamApp};
use serde_json::Value;

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloud-stream"))
        .args(args)
        .output()
        .expect("run cloud-stream")
}

/// An app configuration on `binder` whose consumer `fail` dead-letters after one attempt
/// (`extra`: the binder's own keys).
fn config(binder: &str, destination: &str, extra: &str) -> String {
    format!(
        "spring.cloud.function.definition: fail\nspring.cloud.stream.default-binder: b\nspring.cloud.stream.binders.b: {binder}\nspring.cloud.stream.bindings.fail-in-0: {{ destination: {destination}, group: g, consumer: {{ max-attempts: 1 }} }}\n{extra}"
    )
}

fn unique() -> String {
    format!(
        "dlqcli-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbit() {
    if !brokers::reachable("rabbitmq", "127.0.0.1:5672") {
        return;
    }
    let uri = std::env::var("CLOUD_STREAM_TEST_AMQP_URI")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let destination = unique();
    let binder = format!("{{ type: rabbit, environment: {{ uri: \"{uri}\" }} }}");
    let extra = "spring.cloud.stream.rabbit.bindings.fail-in-0.consumer.auto-bind-dlq: true\n";
    let yaml = config(&binder, &destination, extra);
    list_and_peek(&yaml, &destination, &format!("{destination}.g.dlq")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs() {
    let endpoint = std::env::var("CLOUD_STREAM_TEST_AWS_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:4566".to_owned());
    if !brokers::reachable("sqs", endpoint.trim_start_matches("http://")) {
        return;
    }
    let destination = unique();
    let binder = format!("{{ type: sqs, environment: {{ endpoint: \"{endpoint}\", region: us-east-1, access-key: test, secret-key: s3cr3t, consumer: {{ wait-time-seconds: 1 }} }} }}");
    let yaml = config(&binder, &destination, "");
    list_and_peek(&yaml, &destination, &format!("{destination}-g-dlq")).await;
}

/// Kafka on librdkafka's mock cluster in this process (the CLI reaches it over TCP): its
/// watermarks are exact, where tansu's lag behind confirmed sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_mock() {
    let destination = unique();
    let dlq = format!("error.{destination}.g");
    let (_cluster, binder) = mock_cluster::in_process(&[&destination, &dlq]);
    let extra = "spring.cloud.stream.kafka.bindings.fail-in-0.consumer.enable-dlq: true\n";
    let yaml = config(&binder, &destination, extra);
    list_and_peek(&yaml, &destination, &dlq).await;
}

/// Runs the app of `yaml` until it dead-lettered two messages sent to `destination`, then the
/// CLI on the same file: `list` shows them in `dlq`, `peek` shows them and leaves them.
async fn list_and_peek(yaml: &str, destination: &str, dlq: &str) {
    let file = std::env::temp_dir().join(format!("{destination}.yaml"));
    std::fs::write(&file, yaml).expect("write the configuration");
    let app = StreamApp::builder()
        .env(Default::default())
        .config_yaml(yaml)
        .consumer("fail", |_: String| async {
            Err::<(), _>(HandlerError::permanent("always fails"))
        })
        .build()
        .await
        .expect("app starts");
    for i in 0..2 {
        app.bridge()
            .send(destination, &format!("doomed {i}"))
            .await
            .expect("send");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let b = app.bindings().backlogs().await;
        let dead = b.first().and_then(|r| r.backlog?.dead_letters);
        if dead == Some(2) || tokio::time::Instant::now() > deadline {
            break dead;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dead, Some(2), "both messages dead-lettered");
    app.shutdown().await;

    let path = file.to_str().expect("utf-8 path");
    let out = cli(&["dlq", "list", path, "--format", "json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let row = &rows[0];
    assert_eq!(row["binding"], "fail-in-0", "{rows}");
    assert_eq!(row["dlq"], dlq, "{rows}");
    assert_eq!(row["dead_letters"], 2, "{rows}");
    assert_eq!(row["pending"], 0, "{rows}");
    assert!(
        !text.contains("guest:guest") && !text.contains("s3cr3t"),
        "no credentials: {text}"
    );

    let table = cli(&["dlq", "list", path]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains(dlq), "{table}");

    let peek = cli(&["dlq", "peek", path, "--count", "5", "--format", "json"]);
    let text = String::from_utf8_lossy(&peek.stdout);
    assert!(
        peek.status.success(),
        "{}",
        String::from_utf8_lossy(&peek.stderr)
    );
    let peeked: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let messages = peeked[0]["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(messages.len(), 2, "{peeked}");
    assert_eq!(
        messages[0]["payload"], "\"doomed 0\"",
        "oldest first (JSON text): {peeked}"
    );
    assert_eq!(
        messages[0]["headers"]["x-exception-message"], "always fails",
        "Spring's error headers: {peeked}"
    );
    let again = cli(&["dlq", "list", path, "--format", "json"]);
    let again: Value = serde_json::from_slice(&again.stdout).expect("json");
    assert_eq!(again[0]["dead_letters"], 2, "peek leaves them: {again}");

    let unknown = cli(&["dlq", "list", path, "--binding", "nope-in-0"]);
    assert_eq!(unknown.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("fail-in-0"));
    replay_and_purge(path);
    let _ = std::fs::remove_file(&file);
}

/// (dead letters, pending) of the file's one binding, per `dlq list`.
fn counts(path: &str) -> (u64, u64) {
    let out = cli(&["dlq", "list", path, "--format", "json"]);
    let rows: Value = serde_json::from_slice(&out.stdout).expect("json");
    let n = |k: &str| rows[0][k].as_u64().unwrap_or_else(|| panic!("{k}: {rows}"));
    (n("dead_letters"), n("pending"))
}

/// With two dead letters in the DLQ (the app stopped): `replay --count 1` moves one back to
/// the binding's queue; a replay killed (SIGKILL) as soon as it reports progress loses
/// nothing; `purge` needs `--yes`, then empties the DLQ.
fn replay_and_purge(path: &str) {
    let one = cli(&["dlq", "replay", path, "--count", "1", "--format", "json"]);
    let text = String::from_utf8_lossy(&one.stdout);
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    let done: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(done[0]["count"], 1, "{done}");
    assert_eq!(counts(path), (1, 1), "one replayed to the binding's queue");
    let peek = cli(&["dlq", "peek", path, "--format", "json"]);
    let peeked: Value = serde_json::from_slice(&peek.stdout).expect("json");
    let left = peeked[0]["messages"].as_array().map_or(0, Vec::len);
    assert_eq!(left, 1, "peek shows what is left to replay: {peeked}");

    let mut killed = std::process::Command::new(env!("CARGO_BIN_EXE_cloud-stream"))
        .args(["dlq", "replay", path])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run cloud-stream");
    let stderr = killed.stderr.take().expect("stderr");
    let _ = std::io::BufRead::lines(std::io::BufReader::new(stderr)).next();
    let _ = killed.kill();
    let _ = killed.wait();
    let (dead, pending) = counts(path);
    assert!(
        dead + pending >= 2 && dead + pending <= 3,
        "an interrupted replay loses nothing (at most one republished twice): {dead} dead, {pending} pending"
    );

    let refused = cli(&["dlq", "purge", path]);
    assert_eq!(refused.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    let purge = cli(&["dlq", "purge", path, "--yes", "--format", "json"]);
    assert!(
        purge.status.success(),
        "{}",
        String::from_utf8_lossy(&purge.stderr)
    );
    let purged: Value = serde_json::from_slice(&purge.stdout).expect("json");
    assert_eq!(purged[0]["count"], dead, "{purged}");
    assert_eq!(counts(path).0, 0, "the DLQ is empty");
}
