//! Actuator endpoints for cloud-stream, as Spring Boot and Spring Cloud Stream serve them:
//! `GET {base}/health` (overall, per binder, per binding; HTTP 503 when DOWN, so it can be a
//! readiness probe), `GET {base}/bindings`, `GET`/`POST {base}/bindings/{name}` (state
//! `STOPPED|STARTED|PAUSED|RESUMED`) and `GET {base}/prometheus` (every metric the runtime
//! records, plus the backlog gauges `cloud_stream_backlog_messages` and
//! `cloud_stream_dead_letter_messages` per input binding and destination, counted by the
//! binders at each scrape: queue depth, consumer lag, DLQ depth), and `GET {base}/topology`: one self-contained page (no CDN, works offline) that
//! draws the event flow with live counters and binding states, with pause/resume/stop/start
//! buttons (its data: `GET {base}/topology.json`).
//!
//! Off unless `management.server.port` is set. Spring Boot's keys:
//!
//! ```yaml
//! management:
//!   server: { port: 8081, address: 127.0.0.1 }   # port 0 picks a free one
//!   endpoints.web:
//!     base-path: /actuator                       # the default
//!     exposure.include: health,bindings,prometheus  # default: health; `*` for all
//! ```
//!
//! With the facade's `actuator` feature, `StreamApp::builder()` registers [`Actuator`];
//! otherwise add it with `.extension(Arc::new(Actuator))`. The running server is
//! `app.extension::<ActuatorServer>()` (its [`ActuatorServer::local_addr`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod endpoints;
mod settings;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use stream_core::app::{AppExtension, ExtensionGuard};
use stream_core::{Error, RunningApp};

pub use settings::Settings;

/// The actuator extension (see the crate docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct Actuator;

/// The running actuator server; stops when dropped (at the application's shutdown).
#[derive(Debug)]
pub struct ActuatorServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl ActuatorServer {
    /// The address the server listens on (the actual port when `0` was configured).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ActuatorServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The process's Prometheus recorder: installed once, by the first application that exposes
/// `prometheus`; `None` when another recorder was installed first.
fn recorder() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::warn!(error = %e, "actuator: cannot install the Prometheus recorder");
                None
            }
        })
        .clone()
}

fn router(settings: &Settings, app: Arc<endpoints::App>) -> Router {
    let mut routes = Router::new();
    if settings.exposes("health") {
        routes = routes.route("/health", get(endpoints::health));
    }
    if settings.exposes("bindings") {
        routes = routes.route("/bindings", get(endpoints::bindings)).route(
            "/bindings/{name}",
            get(endpoints::binding).post(endpoints::change),
        );
    }
    if settings.exposes("prometheus") {
        routes = routes.route("/prometheus", get(endpoints::prometheus));
    }
    if settings.exposes("asyncapi") {
        routes = routes.route("/asyncapi", get(endpoints::asyncapi));
    }
    if settings.exposes("topology") {
        routes = routes
            .route("/topology", get(endpoints::topology_page))
            .route("/topology.json", get(endpoints::topology_data));
    }
    // axum nests only below the root; `base-path: /` serves the endpoints at the root.
    let routes = match settings.base_path.as_str() {
        "/" => routes,
        base => Router::new().nest(base, routes),
    };
    routes.with_state(app)
}

#[async_trait]
impl AppExtension for Actuator {
    fn prepare(&self, properties: &serde_json::Value) -> Result<(), Error> {
        let settings = Settings::from_properties(properties)?;
        // Before the bindings register their metrics: those made earlier go nowhere.
        if settings.port.is_some() && settings.reads_metrics() {
            recorder();
        }
        Ok(())
    }

    async fn start(&self, app: &RunningApp) -> Result<Option<ExtensionGuard>, Error> {
        let settings = Settings::from_properties(app.properties())?;
        let Some(port) = settings.port else {
            return Ok(None);
        };
        let bind = format!("{}:{port}", settings.address);
        let listener =
            tokio::net::TcpListener::bind(&bind)
                .await
                .map_err(|e| Error::Extension {
                    extension: "management.server.port".to_owned(),
                    message: format!("cannot listen on {bind}: {e}"),
                })?;
        let addr = listener.local_addr().map_err(|e| Error::Extension {
            extension: "actuator".to_owned(),
            message: e.to_string(),
        })?;
        let state = Arc::new(endpoints::App {
            bindings: app.bindings(),
            plan: app.plan().clone(),
            asyncapi: Arc::new(app.asyncapi().clone()),
            metrics: settings.reads_metrics().then(recorder).flatten(),
        });
        let routes = router(&settings, state);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, routes).await {
                tracing::warn!(error = %e, "actuator server stopped");
            }
        });
        tracing::info!(%addr, base = %settings.base_path, endpoints = ?settings.exposed, "actuator listening");
        Ok(Some(Box::new(ActuatorServer { addr, task })))
    }
}
