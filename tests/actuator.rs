//! The actuator over real HTTP, against apps on the memory binder, RabbitMQ, Kafka (tansu) and
//! SQS (moto):
//! health, bindings (read and change state), Prometheus metrics (with the backlog gauge rising
//! while the input is stopped and draining once it starts), JSON errors for bad requests, no
//! secrets in any response. Brokers as `scripts/brokers` starts them; an unreachable one is
//! skipped with a message, or fails under `CI=true`.

#[path = "support/brokers.rs"]
mod brokers;
#[path = "support/mock_cluster.rs"]
mod mock_cluster;

use std::time::Duration;

use brokers::reachable;

use cloud_stream::actuator::ActuatorServer;
use cloud_stream::{HandlerError, RunningApp, StreamApp};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(30);

/// One request to the app's actuator; the status and the body.
async fn http(app: &RunningApp, method: &str, path: &str, body: &str) -> (u16, String) {
    let addr = app
        .extension::<ActuatorServer>()
        .expect("the actuator runs")
        .local_addr();
    request(("127.0.0.1", addr.port()), method, path, body).await
}

/// One HTTP/1.1 request to `addr`; the status and the body.
async fn request(addr: (&str, u16), method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        addr.0,
        addr.1,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    // Read to the end of the body: by `Content-Length` (Chromium keeps the connection open),
    // else until the server closes.
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    let complete = |raw: &[u8]| {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let length = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })?;
        Some(body.len() >= length)
    };
    loop {
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("a response in time")
            .expect("read");
        raw.extend_from_slice(&chunk[..n]);
        if n == 0 || complete(&raw) == Some(true) {
            break;
        }
    }
    let response = String::from_utf8_lossy(&raw).into_owned();
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

/// An app with a function `upper` (group `g`) and the actuator on a free port, every
/// endpoint exposed.
async fn app(binder: &str) -> RunningApp {
    let dest = format!("act-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    app_on(binder, &dest).await
}

/// [`app`] on the destination `dest` (its output on `<dest>-out`).
async fn app_on(binder: &str, dest: &str) -> RunningApp {
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

/// A payload type declared with `payload_schema` (schemars, opt-in).
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[allow(dead_code)] // only its schema is used
struct Order {
    id: u64,
    items: Vec<Item>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[allow(dead_code)]
struct Item {
    sku: String,
    qty: u32,
}

/// `/actuator/asyncapi` serves the running app's AsyncAPI document with the payload schemas
/// the application declared (nested types inline), and the official AsyncAPI 3.0 schema
/// accepts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asyncapi_endpoint_carries_declared_payload_schemas() {
    let yaml = "management.server: { port: 0, address: 127.0.0.1 }\nmanagement.endpoints.web.exposure.include: asyncapi\nspring.application.name: orders\nspring.cloud.function.definition: take\nspring.cloud.stream.bindings.take-in-0: { destination: orders, group: g }\n";
    let app = StreamApp::builder()
        .env(Default::default())
        .config_yaml(yaml)
        .consumer("take", |_: serde_json::Value| async { Ok(()) })
        .payload_schema::<Order>("take-in-0")
        .build()
        .await
        .unwrap_or_else(|e| panic!("app starts: {e}"));
    let (status, doc) = json(&app, "GET", "/actuator/asyncapi", "").await;
    app.shutdown().await;
    assert_eq!(status, 200);
    assert_eq!(doc["info"]["title"], "orders");
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/asyncapi/3.0.0-without-id.json"
        ))
        .expect("schema"),
    )
    .expect("schema json");
    let validator = jsonschema::validator_for(&schema).expect("the AsyncAPI schema compiles");
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{doc}");
    let payloads: Vec<&Value> = doc["channels"]
        .as_object()
        .into_iter()
        .flat_map(|c| c.values())
        .flat_map(|c| {
            c["messages"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.values())
        })
        .filter_map(|m| m.get("payload"))
        .collect();
    assert!(!payloads.is_empty(), "{doc}");
    let order = payloads[0];
    assert_eq!(order["title"], "Order", "{order}");
    assert_eq!(
        order["properties"]["items"]["items"]["properties"]["sku"]["type"], "string",
        "{order}"
    );
}

/// Everything the endpoints promise, on one app; the backlog scenario where `backlog` says so.
async fn endpoints_work(app: RunningApp, backlog: bool) {
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
    if backlog {
        backlog_is_counted(&app, input["name"].as_str().unwrap_or_default()).await;
    }
    app.shutdown().await;
}

/// The input binding's backlog gauge at the next scrape (`None` while absent).
async fn backlog_of(app: &RunningApp) -> Option<f64> {
    let (_, metrics) = http(app, "GET", "/actuator/prometheus", "").await;
    metrics
        .lines()
        .find(|l| {
            l.starts_with("cloud_stream_backlog_messages{") && l.contains("binding=\"upper-in-0\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Scrapes until `wanted` holds for the backlog gauge; the last value when it never did.
async fn backlog_until(app: &RunningApp, wanted: impl Fn(f64) -> bool) -> Option<f64> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = backlog_of(app).await;
        if now.is_some_and(&wanted) || tokio::time::Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// With the input stopped, three messages sent to its destination show as its backlog (the
/// broker's count: queue depth, or the group's lag); started again, the backlog drains to 0.
async fn backlog_is_counted(app: &RunningApp, destination: &str) {
    let stop = r#"{"state":"STOPPED"}"#;
    assert_eq!(
        http(app, "POST", "/actuator/bindings/upper-in-0", stop)
            .await
            .0,
        200
    );
    for i in 0..3 {
        app.bridge()
            .send(destination, &format!("waiting {i}"))
            .await
            .expect("send while stopped");
    }
    let waiting = backlog_until(app, |n| n >= 3.0).await;
    assert!(
        waiting.is_some_and(|n| n >= 3.0),
        "backlog while stopped: {waiting:?}"
    );
    let start = r#"{"state":"STARTED"}"#;
    assert_eq!(
        http(app, "POST", "/actuator/bindings/upper-in-0", start)
            .await
            .0,
        200
    );
    let drained = backlog_until(app, |n| n == 0.0).await;
    assert_eq!(
        drained,
        Some(0.0),
        "backlog after the binding started again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory() {
    endpoints_work(app("{ type: memory }").await, true).await;
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
        true,
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
        // tansu's high watermark reads 1 after 3 confirmed sends, so the lag cannot be
        // checked there: `kafka_mock` checks it on librdkafka's mock cluster.
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs() {
    let endpoint = std::env::var("CLOUD_STREAM_TEST_AWS_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:4566".to_owned());
    let hostport = endpoint.trim_start_matches("http://").to_owned();
    if !reachable("sqs", &hostport) {
        return;
    }
    endpoints_work(
        app(&format!(
            "{{ type: sqs, environment: {{ endpoint: \"{endpoint}\", region: us-east-1, access-key: test, secret-key: s3cr3t }} }}"
        ))
        .await,
        true,
    )
    .await;
}

/// The Kafka backlog (the group's lag) on librdkafka's mock cluster in this process, whose
/// watermarks are exact; the other checks run on tansu (`kafka`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_mock() {
    let dest = format!("act-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let (_cluster, binder) = mock_cluster::in_process(&[&dest, &format!("{dest}-out")]);
    let app = app_on(&binder, &dest).await;
    let destination = app.plan().bindings.iter().find(|b| b.name == "upper-in-0");
    let destination = destination
        .map(|b| b.destinations.join(","))
        .unwrap_or_default();
    backlog_is_counted(&app, &destination).await;
    app.shutdown().await;
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
    // `base-path: /` serves the endpoints at the root (axum cannot nest there).
    let at_root = StreamApp::builder()
        .env(Default::default())
        .config_yaml("management.server: { port: 0, address: 127.0.0.1 }\nmanagement.endpoints.web.base-path: /\nspring.cloud.function.definition: upper\n")
        .function("upper", |s: String| async move { Ok::<_, HandlerError>(s) })
        .build()
        .await
        .expect("app");
    assert_eq!(http(&at_root, "GET", "/health", "").await.0, 200);
    at_root.shutdown().await;
    // A base path in route syntax is a configuration error, not a router panic.
    let bad_base = StreamApp::builder()
        .env(Default::default())
        .config_yaml("management.server.port: 0\nmanagement.endpoints.web.base-path: \"/a{b}\"\nspring.cloud.function.definition: upper\n")
        .function("upper", |s: String| async move { Ok::<_, HandlerError>(s) })
        .build()
        .await;
    let err = bad_base.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("management.endpoints.web.base-path"), "{err}");
    let bad = StreamApp::builder()
        .env(Default::default())
        .config_yaml("management.server.port: http\nspring.cloud.function.definition: upper\n")
        .function("upper", |s: String| async move { Ok::<_, HandlerError>(s) })
        .build()
        .await;
    let err = bad.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("management.server.port"), "{err}");
}

/// Headless Chromium driven over the DevTools protocol.
mod browser {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};

    use futures::{SinkExt, StreamExt};
    use serde_json::{json, Value};
    use tokio_tungstenite::tungstenite::Message as Frame;

    /// The browser binary (`CHROMIUM`, else `chromium` on the PATH); a missing one fails under
    /// `CI=true` (`scripts/prereqs` installs it) and skips otherwise.
    pub fn binary() -> Option<String> {
        let bin = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned());
        let found = Command::new(&bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found && std::env::var("CI").as_deref() == Ok("true") {
            panic!("{bin} not installed; scripts/prereqs installs Debian's chromium");
        }
        if !found {
            eprintln!("SKIPPED: {bin} not installed (scripts/prereqs installs it)");
        }
        found.then_some(bin)
    }

    /// A headless browser process; killed when dropped.
    pub struct Browser {
        child: Child,
        port: u16,
        _profile: std::path::PathBuf,
    }

    impl Drop for Browser {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self._profile);
        }
    }

    impl Browser {
        pub fn start(bin: &str) -> Browser {
            let profile =
                std::env::temp_dir().join(format!("cs-chromium-{}", uuid::Uuid::new_v4()));
            let mut child = Command::new(bin)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                ])
                .arg("--remote-debugging-port=0")
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg("about:blank")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start chromium");
            // The DevTools port is announced on stderr, which is drained for the browser's life.
            let stderr = child.stderr.take().expect("stderr");
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(url) = line.strip_prefix("DevTools listening on ws://") {
                        let port = url.split(['/', ':']).nth(1).and_then(|p| p.parse().ok());
                        let _ = tx.send(port);
                    }
                }
            });
            let port = rx
                .recv_timeout(std::time::Duration::from_secs(30))
                .ok()
                .flatten()
                .expect("chromium's DevTools port");
            Browser {
                child,
                port,
                _profile: profile,
            }
        }

        /// Opens `url` in a new tab and connects to it.
        pub async fn open(&self, url: &str) -> Page {
            let (status, body) = super::request(
                ("127.0.0.1", self.port),
                "PUT",
                &format!("/json/new?{url}"),
                "",
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let target: Value = serde_json::from_str(&body).expect("target json");
            let ws = target["webSocketDebuggerUrl"]
                .as_str()
                .expect("page websocket");
            let (socket, _) = tokio_tungstenite::connect_async(ws)
                .await
                .expect("devtools");
            Page { socket, next: 0 }
        }
    }

    /// A tab.
    pub struct Page {
        socket: tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        next: u64,
    }

    impl Page {
        /// Calls a DevTools method; its `result`.
        pub async fn call(&mut self, method: &str, params: Value) -> Value {
            self.try_call(method, params)
                .await
                .unwrap_or_else(|e| panic!("{method}: {e}"))
        }

        /// Calls a DevTools method; its `result`, or its `error`.
        async fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
            self.next += 1;
            let id = self.next;
            let msg = json!({"id": id, "method": method, "params": params}).to_string();
            self.socket.send(Frame::text(msg)).await.expect("send");
            while let Some(frame) = self.socket.next().await {
                let Ok(Frame::Text(text)) = frame else {
                    continue;
                };
                let reply: Value = serde_json::from_str(text.as_str()).expect("json");
                if reply["id"] == id {
                    return match reply.get("error") {
                        Some(e) => Err(e.clone()),
                        None => Ok(reply["result"].clone()),
                    };
                }
            }
            panic!("devtools closed during {method}");
        }

        /// Evaluates `expression` in the page (awaiting a promise); its value. Tried again
        /// while the tab is still navigating to its page (its first context is destroyed).
        pub async fn eval(&mut self, expression: &str) -> Value {
            let params =
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true});
            for _ in 0..100 {
                match self.try_call("Runtime.evaluate", params.clone()).await {
                    Ok(r) => {
                        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
                        return r["result"]["value"].clone();
                    }
                    Err(e) if e["message"].as_str().is_some_and(|m| m.contains("context")) => {
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("{expression}: {e}"),
                }
            }
            panic!("{expression}: the page never settled");
        }
    }
}

/// The topology page in a real browser (headless Chromium): it draws every node of the flow
/// with its counters, and its Pause button pauses the binding. Set `TOPOLOGY_SCREENSHOT` to a
/// path to keep a picture of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_page_draws_the_flow_and_its_buttons_work_in_chromium() {
    use cloud_stream::runtime::BindingState;
    let Some(bin) = browser::binary() else { return };
    let app = app("{ type: memory }").await;
    let nodes = app.plan().flow().nodes.len();
    let port = app
        .extension::<ActuatorServer>()
        .expect("actuator")
        .local_addr()
        .port();
    let browser = browser::Browser::start(&bin);
    let mut page = browser
        .open(&format!("http://127.0.0.1:{port}/actuator/topology"))
        .await;
    let drawn = page
        .eval(&format!(
            "new Promise((ok, fail) => {{ const t0 = Date.now(); const t = () => {{ const n = document.querySelectorAll('[data-node]').length; if (n >= {nodes}) ok(n); else if (Date.now() - t0 > 20000) fail(new Error('drew ' + n)); else setTimeout(t, 50); }}; t(); }})"
        ))
        .await;
    assert_eq!(drawn, nodes, "every node of the flow is drawn");
    let labels = page
        .eval(
            "[...document.querySelectorAll('[data-node] text')].map(t => t.textContent).join('|')",
        )
        .await;
    assert!(
        labels.as_str().is_some_and(|l| l.contains("upper")
            && l.contains(" · failed ")
            && l.contains(".g.dlq")),
        "{labels}"
    );
    let in_dlq = page
        .eval("new Promise((ok, fail) => { const t0 = Date.now(); const t = () => { const c = document.querySelector('tr[data-binding=\"upper-in-0\"] td[data-col=\"in-dlq\"]'); if (c && c.textContent !== '') ok(c.textContent); else if (Date.now() - t0 > 20000) fail(new Error('no DLQ depth shown')); else setTimeout(t, 50); }; t(); })")
        .await;
    assert_eq!(
        in_dlq, "0",
        "the input's DLQ depth, from the binder, is shown"
    );
    page.eval("document.querySelector('button[data-binding=\"upper-in-0\"][data-state=\"PAUSED\"]').click(); true")
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.bindings().state("upper-in-0") != Some(BindingState::Paused) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Pause button paused the binding"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Ok(path) = std::env::var("TOPOLOGY_SCREENSHOT") {
        use base64::Engine as _;
        let shot = page
            .call(
                "Page.captureScreenshot",
                serde_json::json!({"format": "png"}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .expect("png");
        std::fs::write(path, png).expect("write screenshot");
    }
    app.shutdown().await;
}
