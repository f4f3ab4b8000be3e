//! RabbitMQ restart mid-stream (`rabbitmqctl stop_app` / `start_app`): health turns DOWN and
//! back UP, every confirmed send is delivered (zero loss; duplicates are allowed by
//! at-least-once and counted).
//!
//! Its own test target so the restart cannot disturb the conformance suite:
//! `cargo test --features rabbit --test rabbit_reconnect`.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloud_stream::{HandlerError, StreamApp};

fn uri() -> String {
    std::env::var("CLOUD_STREAM_TEST_AMQP_URI")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

fn rabbitmqctl(args: &[&str]) -> bool {
    Command::new("rabbitmqctl")
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Starts the broker app again however the test ends.
struct RestartGuard;

impl Drop for RestartGuard {
    fn drop(&mut self) {
        rabbitmqctl(&["-q", "start_app"]);
    }
}

fn broker_available() -> bool {
    let up = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:5672".parse().expect("address"),
        Duration::from_secs(2),
    )
    .is_ok();
    let ctl = Command::new("rabbitmqctl")
        .args(["-q", "status"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if up && ctl {
        return true;
    }
    let msg = "rabbit broker (with rabbitmqctl) not reachable at 127.0.0.1:5672; run scripts/brokers up rabbit";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

async fn wait_for(timeout: Duration, mut cond: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream_loses_nothing() {
    if !broker_available() {
        return;
    }
    const N: u32 = 300;
    let dest = format!(
        "reconnect-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let yaml = format!(
        "spring:\n  cloud:\n    function.definition: sink\n    stream:\n      default-binder: rabbit\n      binders:\n        rabbit: {{ type: rabbit, environment: {{ uri: \"{}\" }} }}\n      output-bindings: out\n      bindings:\n        sink-in-0: {{ destination: {dest}, group: g, consumer: {{ concurrency: 2 }} }}\n        out: {{ destination: {dest} }}\n",
        uri()
    );
    let seen: Arc<Mutex<Vec<u32>>> = Arc::default();
    let s = seen.clone();
    let app = StreamApp::builder()
        .env(Default::default())
        .config_yaml(&yaml)
        .consumer("sink", move |v: u32| {
            s.lock().unwrap().push(v);
            async { Ok::<_, HandlerError>(()) }
        })
        .build()
        .await
        .expect("app starts");
    let bindings = app.bindings();
    assert!(bindings.health().await.up, "UP at start");

    let confirmed = Arc::new(AtomicU32::new(0));
    let bridge = app.bridge();
    let c = confirmed.clone();
    let sender = tokio::spawn(async move {
        for i in 0..N {
            bridge
                .send("out", &i)
                .await
                .map_err(|e| format!("send {i}: {e}"))?;
            c.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok::<_, String>(())
    });

    assert!(
        wait_for(Duration::from_secs(30), async || confirmed
            .load(Ordering::SeqCst)
            >= 100)
        .await,
        "first 100 sends confirmed"
    );
    let _guard = RestartGuard;
    let stopped = tokio::task::spawn_blocking(|| rabbitmqctl(&["-q", "stop_app"]))
        .await
        .expect("join");
    assert!(stopped, "rabbitmqctl stop_app");
    let at_stop = confirmed.load(Ordering::SeqCst);
    assert!(
        wait_for(Duration::from_secs(15), async || !bindings
            .health()
            .await
            .up)
        .await,
        "health turns DOWN while the broker is stopped"
    );
    let down = bindings.health().await;
    println!("while stopped: {:?}", down.binders);
    assert!(
        !format!("{down:?}").contains("guest:guest"),
        "no password in health"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        confirmed.load(Ordering::SeqCst) <= at_stop + 1,
        "no send is confirmed while the broker is stopped"
    );
    let started = tokio::task::spawn_blocking(|| rabbitmqctl(&["-q", "start_app"]))
        .await
        .expect("join");
    assert!(started, "rabbitmqctl start_app");
    assert!(
        wait_for(Duration::from_secs(60), async || bindings.health().await.up).await,
        "health turns UP after the broker is back"
    );

    sender
        .await
        .expect("sender task")
        .expect("every send is eventually confirmed");
    assert_eq!(confirmed.load(Ordering::SeqCst), N);
    let all_seen = wait_for(Duration::from_secs(60), async || {
        seen.lock().unwrap().iter().collect::<BTreeSet<_>>().len() == N as usize
    })
    .await;
    let got = seen.lock().unwrap().clone();
    let distinct: BTreeSet<u32> = got.iter().copied().collect();
    let missing: Vec<u32> = (0..N).filter(|i| !distinct.contains(i)).collect();
    println!(
        "received {} deliveries, {} distinct, {} duplicates",
        got.len(),
        distinct.len(),
        got.len() - distinct.len()
    );
    assert!(all_seen && missing.is_empty(), "lost: {missing:?}");
    app.shutdown().await;
}
