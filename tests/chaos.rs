//! Chaos on the real brokers, with the application in separate processes: a relay (a Function
//! binding `in` → `out`, group `relay`) is killed with SIGKILL a third of the way through a
//! stream and started again, and a relay with slow handlers is stopped with SIGTERM while
//! messages are in flight and started again. In both, every id sent must come out of the
//! relay (duplicates are allowed under at-least-once and counted); each run prints its
//! figures (sent, lost, duplicates, recovery time).
//!
//! Brokers: RabbitMQ and SQS/SNS (moto) as `scripts/brokers` starts them, Kafka as
//! librdkafka's mock cluster in a process of its own (tansu can skip records when a consumer
//! resumes inside a record batch, see `tests/kafka_broker.rs`). A broker that is not reachable
//! is skipped with a message, or fails the run under `CI=true`.
//!
//! Own `main` (`harness = false`): the binary re-executes itself as the relay, producer,
//! collector or mock-cluster process (`CHAOS_ROLE`).

#[path = "support/mock_cluster.rs"]
mod mock_cluster;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloud_stream::{HandlerError, StreamApp};

const ROLE: &str = "CHAOS_ROLE";
const BINDER_YAML: &str = "CHAOS_BINDER_YAML";
const WAIT: Duration = Duration::from_secs(90);

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(child(&role));
        return;
    }
    let mut failed = Vec::new();
    for (name, binder) in brokers() {
        for (scenario, delay_ms, signal) in [("kill -9", 0u64, "KILL"), ("SIGTERM", 100, "TERM")] {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rt.block_on(relay_interrupted(
                    &name, &binder, scenario, delay_ms, signal,
                ))
            }));
            match result {
                Ok(()) => println!("test {name} {scenario} ... ok"),
                Err(_) => {
                    println!("test {name} {scenario} ... FAILED");
                    failed.push(format!("{name} {scenario}"));
                }
            }
        }
    }
    if !failed.is_empty() {
        println!("failed: {failed:?}");
        std::process::exit(1);
    }
    println!("test result: ok");
}

/// `(name, binder YAML)` of each reachable broker (the Kafka one is started here).
fn brokers() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let amqp = std::env::var("CLOUD_STREAM_TEST_AMQP_URI")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    if reachable("rabbit", "127.0.0.1:5672") {
        out.push((
            "rabbit".to_owned(),
            format!("type: rabbit\n    environment: {{ uri: \"{amqp}\" }}"),
        ));
    }
    let aws = std::env::var("CLOUD_STREAM_TEST_AWS_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:4566".to_owned());
    let aws_addr = aws.trim_start_matches("http://").to_owned();
    if reachable("sqs", &aws_addr) {
        out.push((
            "sqs".to_owned(),
            format!("type: sqs\n    environment: {{ endpoint: \"{aws}\", region: us-east-1, access-key: test, secret-key: test, consumer: {{ wait-time-seconds: 1 }} }}"),
        ));
    }
    out.push(("kafka".to_owned(), "kafka".to_owned()));
    out
}

fn reachable(name: &str, addr: &str) -> bool {
    let ok = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!("{name} broker not reachable at {addr}; run scripts/brokers up {name}");
    }
    if !ok {
        eprintln!("SKIPPED: {name} broker not reachable at {addr}");
    }
    ok
}

/// The application YAML of a child: the binder under test plus `body`.
fn app_yaml(binder: &str, body: &str) -> String {
    format!("spring.cloud.stream.default-binder: b\nspring.cloud.stream.binders:\n  b:\n    {binder}\n{body}")
}

/// The child processes:
/// - `relay|<in>|<out>|<delay ms>`: relays `in` (group `relay`) to `out`, each call taking the
///   delay; prints `READY`; shuts down gracefully on SIGTERM and prints `STOPPED`;
/// - `collect|<out>`: prints `GOT <i>` for each message on `out` (group `collector`);
/// - `produce|<in>|<n>`: sends `0..n` to `in` (confirmed) and prints `SENT`;
/// - `mock-cluster`: librdkafka's mock cluster, printing `BOOTSTRAP <addr>`, alive until its
///   stdin closes.
async fn child(role: &str) {
    let binder = std::env::var(BINDER_YAML).unwrap_or_default();
    let parts: Vec<&str> = role.split('|').collect();
    match parts.as_slice() {
        ["relay", input, output, delay] => {
            let delay = Duration::from_millis(delay.parse().expect("delay"));
            let yaml = app_yaml(&binder, &format!("spring.cloud.function.definition: relay\nspring.cloud.stream.bindings:\n  relay-in-0: {{ destination: {input}, group: relay, consumer: {{ concurrency: 4 }} }}\n  relay-out-0: {{ destination: {output} }}\n"));
            let app = StreamApp::builder()
                .env(Default::default())
                .config_yaml(&yaml)
                .function("relay", move |v: u32| async move {
                    tokio::time::sleep(delay).await;
                    Ok::<_, HandlerError>(v)
                })
                .build()
                .await
                .unwrap_or_else(|e| panic!("relay did not start: {e}"));
            say("READY");
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("signal");
            term.recv().await;
            app.shutdown().await;
            say("STOPPED");
        }
        ["collect", output] => {
            let yaml = app_yaml(&binder, &format!("spring.cloud.function.definition: sink\nspring.cloud.stream.bindings.sink-in-0: {{ destination: {output}, group: collector, consumer: {{ concurrency: 4 }} }}\n"));
            let _app = StreamApp::builder()
                .env(Default::default())
                .config_yaml(&yaml)
                .consumer("sink", |v: u32| async move {
                    say(&format!("GOT {v}"));
                    Ok(())
                })
                .build()
                .await
                .unwrap_or_else(|e| panic!("collector did not start: {e}"));
            say("READY");
            std::future::pending::<()>().await;
        }
        ["produce", input, n] => {
            let n: u32 = n.parse().expect("count");
            let yaml = app_yaml(&binder, &format!("spring.cloud.stream.output-bindings: feed\nspring.cloud.stream.bindings.feed: {{ destination: {input}, producer: {{ required-groups: relay }} }}\n"));
            let app = StreamApp::builder()
                .env(Default::default())
                .config_yaml(&yaml)
                .build()
                .await
                .unwrap_or_else(|e| panic!("producer did not start: {e}"));
            for i in 0..n {
                app.bridge().send("feed", &i).await.expect("confirmed send");
            }
            app.shutdown().await;
            say("SENT");
        }
        ["mock-cluster"] => mock_cluster::serve(),
        other => panic!("unknown role {other:?}"),
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A child process and the lines it prints.
struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(role: &str, binder: &str) -> Proc {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .env(ROLE, role)
            .env(BINDER_YAML, binder)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                l.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        Proc { child, lines }
    }

    async fn wait_for(&self, line: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let found = self
                .lines
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .find(|l| l.starts_with(line))
                .cloned();
            if let Some(l) = found {
                return l;
            }
            assert!(Instant::now() < deadline, "no `{line}` in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn got(&self) -> Vec<u32> {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(|l| l.strip_prefix("GOT ")?.parse().ok())
            .collect()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal}");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Relays `n` messages; the relay is interrupted by `signal` a third of the way through and
/// started again. Every id sent comes out.
async fn relay_interrupted(
    broker: &str,
    binder: &str,
    scenario: &str,
    delay_ms: u64,
    signal: &str,
) {
    let (_cluster, binder) = match broker {
        "kafka" => {
            let cluster = Proc::spawn("mock-cluster", "");
            let bootstrap = cluster.wait_for("BOOTSTRAP ").await;
            let bootstrap = bootstrap.trim_start_matches("BOOTSTRAP ").to_owned();
            let yaml = format!("type: kafka\n    environment: {{ brokers: \"{bootstrap}\", auto-create-topics: false, consumer-properties: {{ session.timeout.ms: \"6000\", heartbeat.interval.ms: \"1000\" }} }}");
            (Some(cluster), yaml)
        }
        _ => (None, binder.to_owned()),
    };
    let n: u32 = if broker == "sqs" { 300 } else { 2000 };
    let n = if delay_ms > 0 { n.min(200) } else { n };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (input, output) = (
        format!("chaos-in-{}", &id[..8]),
        format!("chaos-out-{}", &id[..8]),
    );
    let collector = Proc::spawn(&format!("collect|{output}"), &binder);
    collector.wait_for("READY").await;
    let relay = Proc::spawn(&format!("relay|{input}|{output}|{delay_ms}"), &binder);
    relay.wait_for("READY").await;
    let producer = Proc::spawn(&format!("produce|{input}|{n}"), &binder);
    let deadline = Instant::now() + WAIT;
    while (collector.got().len() as u32) < n / 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    relay.signal(signal);
    let stopped_at = Instant::now();
    if signal == "TERM" {
        relay.wait_for("STOPPED").await;
    }
    drop(relay);
    let before = collector.got().len();
    let restarted = Proc::spawn(&format!("relay|{input}|{output}|{delay_ms}"), &binder);
    restarted.wait_for("READY").await;
    let deadline = Instant::now() + WAIT;
    let mut recovery = None;
    loop {
        let got = collector.got();
        if recovery.is_none() && got.len() > before {
            recovery = Some(stopped_at.elapsed());
        }
        let distinct: BTreeSet<u32> = got.iter().copied().collect();
        if distinct.len() as u32 >= n || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    producer.wait_for("SENT").await;
    let got = collector.got();
    let distinct: BTreeSet<u32> = got.iter().copied().collect();
    let lost = (0..n).filter(|i| !distinct.contains(i)).count();
    println!(
        "{broker} {scenario} at {before} of {n}: sent {n}, lost {lost}, duplicates {}, recovery {:.1} s",
        got.len() - distinct.len(),
        recovery.unwrap_or_default().as_secs_f64(),
    );
    assert_eq!(lost, 0, "{broker} {scenario}: every id sent came out");
}
