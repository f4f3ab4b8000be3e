//! The endpoints, in Spring Boot's and Spring Cloud Stream's JSON shapes: health (overall,
//! per binder, per binding; 503 when DOWN), bindings (list, one, change state) and
//! Prometheus metrics. Errors are JSON (`{"error": ...}`) with a 4xx status.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Value};
use stream_core::config::redact_uris;
use stream_core::plan::Plan;
use stream_core::runtime::{AppHealth, BindingState, BindingsHandle, ControlError};

/// What the endpoints read: the bindings, the plan, the metrics.
pub struct App {
    /// Binding control and health.
    pub bindings: BindingsHandle,
    /// The delivery plan (destinations, groups, binders).
    pub plan: Plan,
    /// The Prometheus recorder's handle, when this process installed it.
    pub metrics: Option<PrometheusHandle>,
    /// The application's AsyncAPI document (with its declared payload schemas).
    pub asyncapi: Arc<Value>,
}

/// `GET /asyncapi`: the AsyncAPI 3.0 document of the running bindings.
pub async fn asyncapi(State(app): Shared) -> Response {
    Json(app.asyncapi.as_ref().clone()).into_response()
}

type Shared = State<Arc<App>>;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// A binding's status in health: its binder's when that is DOWN, else its state.
fn binding_status(health: &AppHealth, binder: Option<&str>, state: BindingState) -> &'static str {
    let binder_down = binder
        .and_then(|b| health.binders.get(b))
        .is_some_and(|s| s != "UP");
    match (binder_down, state) {
        (true, _) => "DOWN",
        (false, BindingState::Running) => "UP",
        (false, BindingState::Paused) => "PAUSED",
        (false, BindingState::Stopped) => "STOPPED",
    }
}

/// `GET /topology`: the self-contained page that draws the flow and its live counters.
pub async fn topology_page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("topology.html"),
    )
        .into_response()
}

/// Per-binding counters from the Prometheus text (`cloud_stream_<name>_total{binding="b"} n`).
fn counters(text: &str) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for line in text.lines().filter(|l| l.starts_with("cloud_stream_")) {
        let Some((metric, rest)) = line.split_once("{binding=\"") else {
            continue;
        };
        let Some((binding, value)) = rest.split_once("\"}") else {
            continue;
        };
        let name = metric.trim_start_matches("cloud_stream_");
        let (Some(name), Ok(n)) = (name.strip_suffix("_total"), value.trim().parse::<f64>()) else {
            continue;
        };
        let entry = out.entry(binding.to_owned()).or_insert_with(|| json!({}));
        entry[name] = json!(n);
    }
    out
}

/// `GET /topology.json`: the flow graph, each binding's status and counters, and the inputs'
/// backlogs as their binders count them now.
pub async fn topology_data(State(app): Shared) -> Response {
    let h = app.bindings.health().await;
    let bindings: serde_json::Map<String, Value> = h
        .bindings
        .iter()
        .map(|(name, state)| {
            let planned = app.plan.bindings.iter().find(|b| b.name == *name);
            let status = binding_status(&h, app.bindings.binder_of(name), *state);
            let controllable = planned.is_some_and(|b| b.direction == "input");
            (
                name.clone(),
                json!({"state": status, "controllable": controllable}),
            )
        })
        .collect();
    let counters = app
        .metrics
        .as_ref()
        .map(|m| counters(&m.render()))
        .unwrap_or_default();
    Json(json!({
        "status": if h.up { "UP" } else { "DOWN" },
        "graph": app.plan.flow(),
        "bindings": bindings,
        "counters": counters,
        "backlogs": app.bindings.backlogs().await,
    }))
    .into_response()
}

/// `GET /health`: Spring Boot's composite shape; 503 when a binder is DOWN.
pub async fn health(State(app): Shared) -> Response {
    let h = app.bindings.health().await;
    let binders: serde_json::Map<String, Value> = h
        .binders
        .iter()
        .map(|(name, s)| {
            let v = match s.strip_prefix("DOWN: ") {
                Some(reason) => {
                    json!({"status": "DOWN", "details": {"error": redact_uris(reason)}})
                }
                None => json!({"status": "UP"}),
            };
            (name.clone(), v)
        })
        .collect();
    let bindings: serde_json::Map<String, Value> = h
        .bindings
        .iter()
        .map(|(name, state)| {
            let status = binding_status(&h, app.bindings.binder_of(name), *state);
            (name.clone(), json!({ "status": status }))
        })
        .collect();
    let status = if h.up { "UP" } else { "DOWN" };
    let body = json!({
        "status": status,
        "components": {
            "binders": {"status": status, "components": binders},
            "bindings": {"status": status, "components": bindings},
        }
    });
    let code = if h.up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// One binding in Spring Cloud Stream's `/actuator/bindings` shape.
fn binding_json(app: &App, name: &str) -> Option<Value> {
    let state = app.bindings.state(name)?;
    let planned = app.plan.bindings.iter().find(|b| b.name == name);
    let input = planned.is_some_and(|b| b.direction == "input");
    let destination = planned
        .map(|b| b.destinations.join(","))
        .unwrap_or_default();
    Some(json!({
        "bindingName": name,
        "name": destination,
        "group": planned.and_then(|b| b.group.clone()),
        "pausable": input,
        "state": match state {
            BindingState::Running => "running",
            BindingState::Paused => "paused",
            BindingState::Stopped => "stopped",
        },
        "paused": state == BindingState::Paused,
        "input": input,
        "extendedInfo": planned.map(|b| json!({
            "bindingDestination": destination,
            "binder": b.binder,
            "binderType": b.binder_type,
            "contentType": b.content_type,
            "function": b.function,
            "dlq": b.dlq,
        })),
    }))
}

/// `GET /bindings`.
pub async fn bindings(State(app): Shared) -> Response {
    let all: Vec<Value> = app
        .bindings
        .names()
        .iter()
        .filter_map(|n| binding_json(&app, n))
        .collect();
    Json(all).into_response()
}

/// `GET /bindings/{name}`.
pub async fn binding(State(app): Shared, Path(name): Path<String>) -> Response {
    match binding_json(&app, &name) {
        Some(b) => Json(b).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no binding named `{name}`")),
    }
}

/// `POST /bindings/{name}` with `{"state": "STOPPED|STARTED|PAUSED|RESUMED"}`.
pub async fn change(State(app): Shared, Path(name): Path<String>, body: String) -> Response {
    let wanted = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("state")?.as_str().map(str::to_ascii_uppercase));
    let handle = &app.bindings;
    let done = match wanted.as_deref() {
        Some("STOPPED") => handle.stop(&name),
        Some("STARTED") => handle.start(&name),
        Some("PAUSED") => handle.pause(&name),
        Some("RESUMED") => handle.resume(&name),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                r#"expected a JSON body {"state": "STOPPED|STARTED|PAUSED|RESUMED"}"#,
            )
        }
    };
    match done {
        Ok(()) => binding(State(Arc::clone(&app)), Path(name)).await,
        Err(e @ ControlError::UnknownBinding { .. }) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// `GET /prometheus`: the text exposition format, with the backlog gauges counted afresh.
pub async fn prometheus(State(app): Shared) -> Response {
    match &app.metrics {
        Some(handle) => {
            stream_core::observe::publish_backlogs(&app.bindings.backlogs().await);
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                handle.render(),
            )
                .into_response()
        }
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "another metrics recorder was installed in this process before the actuator's",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_come_from_the_prometheus_text() {
        let text = "# TYPE cloud_stream_consumed_total counter\ncloud_stream_consumed_total{binding=\"a-in-0\"} 3\ncloud_stream_failed_total{binding=\"a-in-0\"} 1\ncloud_stream_handler_seconds{binding=\"a-in-0\",quantile=\"0.5\"} 0.1\nother 2\n";
        let c = counters(text);
        assert_eq!(c["a-in-0"], json!({"consumed": 3.0, "failed": 1.0}));
    }
}
