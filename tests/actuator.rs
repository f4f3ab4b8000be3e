//! The actuator over real HTTP, against apps on the memory binder, RabbitMQ and Kafka (tansu):
//! health, bindings (read and change state), Prometheus metrics, JSON errors for bad requests,
//! no secrets in any response. Brokers as `scripts/brokers` starts them; an unreachable one is
//! skipped with a message, or fails under `CI=true`.

use std::time::Duration;

use cloud_stream::actuator::ActuatorServer;
use cloud_stream::{HandlerError, RunningApp, StreamApp};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(30);

/// One HTTP/1.1 request; the status and the body.
async fn http(app: &RunningApp, method: &str, path: &str, body: &str) -> (u16, String) {
    let addr = app
        .extension::<ActuatorServer>()
        .expect("the actuator runs")
        .local_addr();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", addr.port()))
        .await
        .expect("connect to the actuator");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut response))
        .await
        .expect("a response in time")
        .expect("read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn json(app: &RunningApp, method: &str, path: &str, body: &str) -> (u16, Value) {
    let (status, text) = http(app, method, path, body).await;
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
    (status, value)
}

fn reachable(name: &str, addr: &str) -> bool {
    let ok = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!("{name} not reachable at {addr}; run scripts/brokers up");
    }
    if !ok {
        eprintln!("SKIPPED: {name} not reachable at {addr}");
    }
    ok
}

/// An app with a function `upper` (group `g`) and the actuator on a free port, every
/// endpoint exposed.
async fn app(binder: &str) -> RunningApp {
    let dest = format!("act-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let yaml = format!(
        "management.server: {{ port: 0, address: 127.0.0.1 }}\nmanagement.endpoints.web.exposure.include: \"*\"\nspring.cloud.stream.default-binder: b\nspring.cloud.stream.binders.b: {binder}\nspring.cloud.function.definition: upper\nspring.cloud.stream.bindings:\n  upper-in-0: {{ destination: {dest}, group: g }}\n  upper-out-0: {{ destination: {dest}-out }}\n"
    );
    StreamApp::builder()
        .env(Default::default())
        .config_yaml(&yaml)
        .function("upper", |s: String| async move {
            Ok::<_, HandlerError>(s.to_uppercase())
        })
        .build()
        .await
        .unwrap_or_else(|e| panic!("app starts: {e}"))
}

/// Everything the endpoints promise, on one app.
async fn endpoints_work(app: RunningApp) {
    let (status, health) = json(&app, "GET", "/actuator/health", "").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "UP");
    assert_eq!(
        health["components"]["binders"]["components"]["b"]["status"],
        "UP"
    );
    let bindings_health = &health["components"]["bindings"]["components"];
    assert_eq!(bindings_health["upper-in-0"]["status"], "UP", "{health}");

    let (status, list) = json(&app, "GET", "/actuator/bindings", "").await;
    assert_eq!(status, 200);
    let input = list
        .as_array()
        .and_then(|l| l.iter().find(|b| b["bindingName"] == "upper-in-0"))
        .unwrap_or_else(|| panic!("upper-in-0 in {list}"))
        .clone();
    assert_eq!(input["group"], "g");
    assert_eq!(input["state"], "running");
    assert_eq!(input["input"], true);
    assert_eq!(input["extendedInfo"]["function"], "upper");

    let (status, paused) = json(
        &app,
        "POST",
        "/actuator/bindings/upper-in-0",
        r#"{"state":"PAUSED"}"#,
    )
    .await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["state"], "paused");
    let (_, health) = json(&app, "GET", "/actuator/health", "").await;
    assert_eq!(
        health["components"]["bindings"]["components"]["upper-in-0"]["status"],
        "PAUSED"
    );
    let (status, resumed) = json(
        &app,
        "POST",
        "/actuator/bindings/upper-in-0",
        r#"{"state":"resumed"}"#,
    )
    .await;
    assert_eq!((status, resumed["state"].as_str()), (200, Some("running")));

    let (status, err) = json(&app, "POST", "/actuator/bindings/upper-in-0", "{\"state\":").await;
    assert_eq!(status, 400, "{err}");
    assert!(err["error"]
        .as_str()
        .is_some_and(|e| e.contains("STOPPED|STARTED")));
    let (status, err) = json(&app, "GET", "/actuator/bindings/nope", "").await;
    assert_eq!(status, 404, "{err}");
    let (status, err) = json(
        &app,
        "POST",
        "/actuator/bindings/nope",
        r#"{"state":"STOPPED"}"#,
    )
    .await;
    assert_eq!(status, 404, "{err}");

    app.bridge().send("upper-in-0", "warm-up").await.ok();
    let (status, metrics) = http(&app, "GET", "/actuator/prometheus", "").await;
    assert_eq!(status, 200, "{metrics}");
    assert!(metrics.contains("cloud_stream_"), "{metrics}");
    for (_, path) in [
        ("", "/actuator/health"),
        ("", "/actuator/bindings"),
        ("", "/actuator/prometheus"),
    ] {
        let (_, body) = http(&app, "GET", path, "").await;
        assert!(
            !body.contains("s3cr3t") && !body.contains("guest:guest"),
            "{path}: {body}"
        );
    }
    let (status, _) = http(&app, "GET", "/actuator/env", "").await;
    assert_eq!(status, 404, "only the actuator's endpoints exist");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory() {
    endpoints_work(app("{ type: memory }").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbit() {
    if !reachable("rabbitmq", "127.0.0.1:5672") {
        return;
    }
    let uri = std::env::var("CLOUD_STREAM_TEST_AMQP_URI")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    endpoints_work(
        app(&format!(
            "{{ type: rabbit, environment: {{ uri: \"{uri}\" }} }}"
        ))
        .await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka() {
    let brokers = std::env::var("CLOUD_STREAM_TEST_KAFKA_BROKERS")
        .unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    if !reachable("kafka", brokers.split(',').next().unwrap_or_default()) {
        return;
    }
    endpoints_work(
        app(&format!(
            "{{ type: kafka, environment: {{ brokers: \"{brokers}\" }} }}"
        ))
        .await,
    )
    .await;
}

/// Off unless `management.server.port` is set; exposure follows Spring Boot (health only
/// by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_by_default_and_health_only_unless_exposed() {
    let plain = StreamApp::builder()
        .env(Default::default())
        .config_yaml("spring.cloud.function.definition: upper\n")
        .function("upper", |s: String| async move { Ok::<_, HandlerError>(s) })
        .build()
        .await
        .expect("app");
    assert!(plain.extension::<ActuatorServer>().is_none());
    plain.shutdown().await;
    let health_only = StreamApp::builder()
        .env(Default::default())
        .config_yaml("management.server: { port: 0, address: 127.0.0.1 }\nspring.cloud.function.definition: upper\n")
        .function("upper", |s: String| async move { Ok::<_, HandlerError>(s) })
        .build()
        .await
        .expect("app");
    assert_eq!(
        http(&health_only, "GET", "/actuator/health", "").await.0,
        200
    );
    assert_eq!(
        http(&health_only, "GET", "/actuator/bindings", "").await.0,
        404
    );
    health_only.shutdown().await;
    let bad = StreamApp::builder()
        .env(Default::default())
        .config_yaml("management.server.port: http\nspring.cloud.function.definition: upper\n")
        .function("upper", |s: String| async move { Ok::<_, HandlerError>(s) })
        .build()
        .await;
    let err = bad.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("management.server.port"), "{err}");
}
