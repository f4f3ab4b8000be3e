//! Chaos on the real brokers, with the application in separate processes: a relay (a Function
//! binding `in` → `out`, group `relay`) is interrupted a third of the way through a stream in
//! three ways: killed with SIGKILL and started again; stopped with SIGTERM while slow handlers
//! are in flight and started again; and the broker goes away and comes back while the
//! producer, the relay and the collector keep running and recover by themselves. In each,
//! every id sent must come out of the relay (duplicates are allowed under at-least-once and
//! counted); each run prints its figures (sent, lost, duplicates, recovery time).
//!
//! Brokers: RabbitMQ and SQS/SNS (moto) as `scripts/brokers` starts them, Kafka as
//! librdkafka's mock cluster in a process of its own (tansu can skip records when a consumer
//! resumes inside a record batch, see `tests/kafka_broker.rs`). A broker that is not reachable
//! is skipped with a message, or fails the run under `CI=true`. The broker "restart" is
//! `scripts/brokers down rabbit` (checked: the port is closed) and `up rabbit` on RabbitMQ, the mock cluster's broker taken down and up
//! on Kafka (its log and offsets kept, like a restarted Kafka's disk), and on SQS an outage of
//! the endpoint at a proxy in this process (moto loses every queue on restart; real SQS does
//! not restart, it becomes unreachable). Arguments filter the scenarios by name
//! (`cargo test --all-features --test chaos -- "kafka broker"`).
//!
//! Own `main` (`harness = false`): the binary re-executes itself as the relay, producer,
//! collector or mock-cluster process (`CHAOS_ROLE`).

#[path = "support/brokers.rs"]
mod brokers;
#[path = "support/mock_cluster.rs"]
mod mock_cluster;
#[path = "support/outage_proxy.rs"]
mod outage_proxy;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brokers::{connects, reachable};
use cloud_stream::{HandlerError, StreamApp};
use outage_proxy::OutageProxy;

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
    let scenarios = [
        ("kill -9", Interruption::Signal("KILL")),
        ("SIGTERM", Interruption::Signal("TERM")),
        ("broker restart", Interruption::BrokerRestart),
    ];
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    for (name, binder) in brokers() {
        for (scenario, how) in scenarios {
            let test = format!("{name} {scenario}");
            if !filters.is_empty() && !filters.iter().any(|f| test.contains(f.as_str())) {
                continue;
            }
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rt.block_on(relay_interrupted(&name, &binder, scenario, how))
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
    let aws = aws_endpoint();
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

fn aws_endpoint() -> String {
    std::env::var("CLOUD_STREAM_TEST_AWS_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:4566".to_owned())
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
                send_until_confirmed(&app, i).await;
            }
            app.shutdown().await;
            say("SENT");
        }
        ["mock-cluster"] => mock_cluster::serve(),
        other => panic!("unknown role {other:?}"),
    }
}

/// Sends `i` until the broker confirms it, as a producer that must not drop its message
/// does while the broker is away (a failed send may have arrived: a duplicate at worst).
async fn send_until_confirmed(app: &cloud_stream::RunningApp, i: u32) {
    let deadline = Instant::now() + WAIT;
    while let Err(e) = app.bridge().send("feed", &i).await {
        assert!(Instant::now() < deadline, "send {i} never confirmed: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
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

    /// Writes `line` to the process's stdin.
    fn tell(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to child");
        stdin.flush().expect("flush child stdin");
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

/// How the relay's run is interrupted a third of the way through.
#[derive(Clone, Copy)]
enum Interruption {
    /// The relay process gets the signal (`KILL`, `TERM`) and is started again.
    Signal(&'static str),
    /// The broker goes away for a while and comes back; the apps recover by themselves.
    BrokerRestart,
}

/// The broker a scenario runs on, and what it takes to interrupt it.
struct Broker {
    /// The binder YAML the child processes use.
    binder: String,
    /// The Kafka mock cluster's process (Kafka only).
    cluster: Option<Proc>,
    /// The proxy that cuts the endpoint (SQS only: moto keeps no state across a restart).
    proxy: Option<OutageProxy>,
}

impl Broker {
    async fn start(name: &str, binder: &str) -> Broker {
        match name {
            "kafka" => {
                let cluster = Proc::spawn("mock-cluster", "");
                let bootstrap = cluster.wait_for("BOOTSTRAP ").await;
                let bootstrap = bootstrap.trim_start_matches("BOOTSTRAP ").to_owned();
                let binder = format!("type: kafka\n    environment: {{ brokers: \"{bootstrap}\", auto-create-topics: false, consumer-properties: {{ session.timeout.ms: \"6000\", heartbeat.interval.ms: \"1000\" }} }}");
                Broker {
                    binder,
                    cluster: Some(cluster),
                    proxy: None,
                }
            }
            "sqs" => {
                let proxy = OutageProxy::start(&aws_endpoint().replace("http://", "")).await;
                let binder = binder.replace(&aws_endpoint(), &format!("http://{}", proxy.addr));
                Broker {
                    binder,
                    cluster: None,
                    proxy: Some(proxy),
                }
            }
            _ => Broker {
                binder: binder.to_owned(),
                cluster: None,
                proxy: None,
            },
        }
    }

    /// Takes the broker away and brings it back: RabbitMQ is stopped and started
    /// (`scripts/brokers down rabbit`, `up rabbit`), the Kafka mock cluster's broker is taken
    /// down and up, the SQS endpoint is cut at the proxy; the last two for [`OUTAGE`].
    async fn restart(&mut self, name: &str) {
        if let Some(cluster) = &mut self.cluster {
            cluster.tell("down");
            cluster.wait_for("OK down").await;
            tokio::time::sleep(OUTAGE).await;
            cluster.tell("up");
            cluster.wait_for("OK up").await;
        } else if let Some(proxy) = &self.proxy {
            proxy.cut();
            tokio::time::sleep(OUTAGE).await;
            proxy.restore();
        } else {
            // `down`, then a check that the broker is really gone (a restart that did not
            // happen would pass for a perfect recovery), then `up`.
            let name = name.to_owned();
            tokio::task::spawn_blocking(move || {
                brokers::script("down", &name);
                let deadline = Instant::now() + WAIT;
                while connects("127.0.0.1:5672") {
                    assert!(
                        Instant::now() < deadline,
                        "{name} still accepts connections"
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
                brokers::script("up", &name);
            })
            .await
            .expect("join");
        }
    }
}

/// How long the Kafka broker and the SQS endpoint stay away.
const OUTAGE: Duration = Duration::from_secs(5);

/// Relays `n` messages, interrupted a third of the way through; every id sent comes out.
/// Recovery is the time from the relay's restart, or the broker's return, to the next
/// message out.
async fn relay_interrupted(name: &str, binder: &str, scenario: &str, how: Interruption) {
    let mut broker = Broker::start(name, binder).await;
    let binder = broker.binder.clone();
    let delay_ms = if matches!(how, Interruption::Signal("TERM")) {
        100
    } else {
        0
    };
    let n: u32 = if name == "sqs" { 300 } else { 2000 };
    let n = if delay_ms > 0 { n.min(200) } else { n };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (input, output) = (
        format!("chaos-in-{}", &id[..8]),
        format!("chaos-out-{}", &id[..8]),
    );
    let relay_role = format!("relay|{input}|{output}|{delay_ms}");
    let collector = Proc::spawn(&format!("collect|{output}"), &binder);
    collector.wait_for("READY").await;
    let mut relay = Proc::spawn(&relay_role, &binder);
    relay.wait_for("READY").await;
    let producer = Proc::spawn(&format!("produce|{input}|{n}"), &binder);
    let deadline = Instant::now() + WAIT;
    while (collector.got().len() as u32) < n / 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = collector.got().len();
    // Recovery counts from the signal (the restart is part of it) or from the broker's return.
    let mut back_at = Instant::now();
    let mut outage = None;
    match how {
        Interruption::Signal(signal) => {
            relay.signal(signal);
            if signal == "TERM" {
                relay.wait_for("STOPPED").await;
            }
            drop(relay);
            relay = Proc::spawn(&relay_role, &binder);
            relay.wait_for("READY").await;
        }
        Interruption::BrokerRestart => {
            broker.restart(name).await;
            outage = Some(back_at.elapsed());
            back_at = Instant::now();
        }
    }
    let back = collector.got().len();
    let deadline = Instant::now() + WAIT;
    let mut recovery = None;
    loop {
        let got = collector.got();
        if recovery.is_none() && got.len() > back {
            recovery = Some(back_at.elapsed());
        }
        let distinct: BTreeSet<u32> = got.iter().copied().collect();
        if distinct.len() as u32 >= n || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    producer.wait_for("SENT").await;
    drop(relay);
    let got = collector.got();
    let distinct: BTreeSet<u32> = got.iter().copied().collect();
    let lost = (0..n).filter(|i| !distinct.contains(i)).count();
    // A broker's outage (down until its `up` returned) is printed apart: the clients may
    // reconnect while the broker is still finishing its start, so recovery can be ~0.
    let outage = outage.map_or(String::new(), |o: Duration| {
        format!(", outage {:.1} s", o.as_secs_f64())
    });
    println!(
        "{name} {scenario} at {before} of {n}: sent {n}, lost {lost}, duplicates {}{outage}, recovery {:.1} s",
        got.len() - distinct.len(),
        recovery.unwrap_or_default().as_secs_f64(),
    );
    assert_eq!(lost, 0, "{name} {scenario}: every id sent came out");
}
