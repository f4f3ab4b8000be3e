//! `StreamApp`: register handlers, load configuration, bind, run, shut down gracefully.
//!
//! ```no_run
//! # use stream_core::app::StreamAppBuilder;
//! # use stream_core::function::HandlerError;
//! # async fn demo() -> Result<(), stream_core::Error> {
//! StreamAppBuilder::new()
//!     .config_file("application.yaml")
//!     .function("uppercase", |s: String| async move { Ok::<_, HandlerError>(s.to_uppercase()) })
//!     .build()
//!     .await?
//!     .run_until_shutdown()
//!     .await
//! # }
//! ```

mod build;
mod extension;

pub use extension::{AppExtension, ExtensionGuard};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::binder::{Binder, BinderFactory, BinderRegistry};
use crate::binding::{
    binding_name, parse_definition, Direction, FunctionDefinition, ROUTER_FUNCTION,
};
use crate::bridge::StreamBridge;
use crate::config::{ConfigLoader, StreamConfig};
use crate::convert::{Codec, CodecRegistry};
use crate::error::Error;
use crate::function::batch::{BatchAdapter, BatchHandlerFn};
use crate::function::extract::AppState;
use crate::function::handler::{
    output_of, ConsumerAdapter, FunctionAdapter, PartsOnly, SupplierAdapter,
};
use crate::function::{
    CallContext, CallResult, ErasedFunction, FunctionRegistry, Handler, HandlerFn, IntoOutput,
    Invocation, Pipeline,
};
use crate::message::Headers;
use crate::plan::Plan;
use crate::runtime::control::BindingsHandle;
use crate::runtime::output::SharedOutput;

/// Default time in-flight work gets to finish at shutdown.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds a [`RunningApp`].
pub struct StreamAppBuilder {
    loader: ConfigLoader,
    functions: FunctionRegistry,
    binders: BinderRegistry,
    codecs: CodecRegistry,
    shutdown_timeout: Duration,
    extensions: Vec<Arc<dyn AppExtension>>,
    payloads: crate::plan::PayloadSchemas,
    state: AppState,
    observer: Option<Arc<dyn crate::observe::CallObserver>>,
}

impl Default for StreamAppBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for StreamAppBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamAppBuilder")
            .field("functions", &self.functions)
            .field("binders", &self.binders)
            .finish_non_exhaustive()
    }
}

/// One binding the application will create.
struct PlannedIo {
    pipeline: Pipeline,
    input: Option<String>,
    output: Option<String>,
    handler: Arc<dyn ErasedFunction>,
}

impl StreamAppBuilder {
    /// A builder with no handlers, no binder factories and no configuration file.
    pub fn new() -> Self {
        StreamAppBuilder {
            loader: ConfigLoader::new(),
            functions: FunctionRegistry::new(),
            binders: BinderRegistry::new(),
            codecs: CodecRegistry::new(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            extensions: Vec::new(),
            payloads: Default::default(),
            state: AppState::default(),
            observer: None,
        }
    }

    /// Declares binding `binding`'s payload type for the AsyncAPI document
    /// ([`RunningApp::asyncapi`], the actuator's `/actuator/asyncapi`): its JSON schema, from
    /// `schemars`, becomes the binding's message payload. Opt-in; a binding the application
    /// does not have is ignored.
    pub fn payload_schema<T: schemars::JsonSchema>(mut self, binding: &str) -> Self {
        self.payloads
            .insert(binding.to_owned(), crate::plan::payload_schema::<T>());
        self
    }

    /// Reads `application.yaml` (and `application-<profile>.yaml` beside it).
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.loader = self.loader.file(path);
        self
    }

    /// Adds inline YAML configuration (handy in tests).
    pub fn config_yaml(mut self, yaml: &str) -> Self {
        self.loader = self.loader.yaml_str("inline", yaml);
        self
    }

    /// Activates a profile.
    pub fn profile(mut self, profile: &str) -> Self {
        self.loader = self.loader.profiles([profile]);
        self
    }

    /// Sets a property (highest precedence), e.g. `("spring.cloud.stream.bindings.x.group", "g")`.
    pub fn property(mut self, key: &str, value: &str) -> Self {
        self.loader = self.loader.set(key, value);
        self
    }

    /// Replaces the environment variables the configuration reads (tests).
    pub fn env(mut self, vars: BTreeMap<String, String>) -> Self {
        self.loader = self.loader.env(vars);
        self
    }

    /// Registers a binder factory (its `type` becomes usable in `binders.<name>.type`).
    pub fn binder_factory(mut self, factory: Arc<dyn BinderFactory>) -> Self {
        self.binders.register(factory);
        self
    }

    /// Registers a codec for another content type.
    pub fn codec(mut self, codec: Arc<dyn Codec>) -> Self {
        self.codecs.register(codec);
        self
    }

    /// Starts `extension` with the application (after the bindings) and stops it at
    /// shutdown; see [`AppExtension`].
    pub fn extension(mut self, extension: Arc<dyn AppExtension>) -> Self {
        self.extensions.push(extension);
        self
    }

    /// How long in-flight work may take to finish at shutdown (default 30 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Gives handlers a shared state they take as [`State<S>`](crate::function::State): one
    /// value per type (a second `with_state` of the same type replaces the first). Give what
    /// is cheap to clone: a pool, a client, an `Arc`.
    pub fn with_state<S: Clone + Send + Sync + 'static>(mut self, state: S) -> Self {
        self.state.insert(state);
        self
    }

    /// Shows every handler call of an input binding to `observer` when it ends (tests use
    /// `TestHarness::attach`, which records them).
    pub fn call_observer(mut self, observer: Arc<dyn crate::observe::CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Registers a function: its arguments are the payload (or `Message<T>`) and any
    /// extractors, its result the output (see [`crate::function::handler`] for the types).
    pub fn function<F, Args, M, MO>(mut self, name: &str, f: F) -> Self
    where
        F: HandlerFn<Args, M>,
        F::Output: IntoOutput<MO>,
        Args: 'static,
        M: 'static,
        MO: 'static,
    {
        let adapter = FunctionAdapter::<F, Args, M, MO>::new(f);
        self.functions
            .insert(name, Handler::Function(Arc::new(adapter)));
        self
    }

    /// Registers a consumer: a handler returning `Result<(), HandlerError>`.
    pub fn consumer<F, Args, M>(mut self, name: &str, f: F) -> Self
    where
        F: HandlerFn<Args, M, Output = ()>,
        Args: 'static,
        M: 'static,
    {
        let adapter = ConsumerAdapter::<F, Args, M>::new(f);
        self.functions
            .insert(name, Handler::Consumer(Arc::new(adapter)));
        self
    }

    /// Registers a batch function: it takes `Vec<T>` or `Vec<Message<T>>` (and extractors) and
    /// its binding needs `consumer.batch-mode: true` (see [`crate::function::batch`]). Its
    /// result is one output message, or one per item of a [`Batch`](crate::function::Batch).
    pub fn batch_function<F, Args, M, MO>(mut self, name: &str, f: F) -> Self
    where
        F: BatchHandlerFn<Args, M>,
        F::Output: IntoOutput<MO>,
        Args: 'static,
        M: 'static,
        MO: 'static,
    {
        let adapter = BatchAdapter::<F, Args, M, MO>::new(f, false);
        self.functions
            .insert(name, Handler::Function(Arc::new(adapter)));
        self
    }

    /// Registers a batch consumer: it takes `Vec<T>` or `Vec<Message<T>>` (and extractors),
    /// returns `Result<(), HandlerError>`, and its binding needs `consumer.batch-mode: true`.
    /// [`HandlerError::only`](crate::HandlerError::only) fails some of the batch's messages and acknowledges the others.
    pub fn batch_consumer<F, Args, M>(mut self, name: &str, f: F) -> Self
    where
        F: BatchHandlerFn<Args, M, Output = ()>,
        Args: 'static,
        M: 'static,
    {
        let adapter = BatchAdapter::<F, Args, M, crate::function::handler::Plain>::new(f, true);
        self.functions
            .insert(name, Handler::Consumer(Arc::new(adapter)));
        self
    }

    /// Registers a supplier polled every `poller.fixed-delay` (default 1000 ms); returning
    /// `None` (for `Option` outputs) sends nothing that time. Its arguments, if any, are
    /// extractors such as `State<S>`.
    pub fn supplier<F, Args, M, MO>(mut self, name: &str, f: F) -> Self
    where
        F: HandlerFn<Args, M>,
        M: PartsOnly + 'static,
        F::Output: IntoOutput<MO>,
        Args: 'static,
        MO: 'static,
    {
        let adapter = SupplierAdapter::<F, Args, M, MO>::new(f);
        self.functions
            .insert(name, Handler::PolledSupplier(Arc::new(adapter)));
        self
    }

    /// Registers a supplier driven by a stream: each item is sent as it comes.
    pub fn supplier_stream<S, O, MO>(mut self, name: &str, stream: S) -> Self
    where
        S: Stream<Item = O> + Send + 'static,
        O: IntoOutput<MO>,
        MO: 'static,
    {
        let factory: crate::function::registry::StreamFactory =
            Box::new(move |ctx: Arc<CallContext>| {
                stream
                    .map(move |item| {
                        // Same finishing as a polled supplier's output.
                        output_of(item, &ctx, &Headers::new()).map(|out| out.into_vec())
                    })
                    .boxed()
            });
        self.functions.insert(
            name,
            Handler::StreamSupplier(Arc::new(Mutex::new(Some(factory)))),
        );
        self
    }

    /// The definitions to bind: `spring.cloud.function.definition`, else the only registered
    /// handler (Spring's autodetect), else none.
    fn definitions(&self, config: &StreamConfig) -> Result<Vec<FunctionDefinition>, Error> {
        if let Some(d) = &config.function.definition {
            return parse_definition(d).map_err(|e| {
                Error::Config(crate::config::ConfigError {
                    issues: vec![crate::config::ConfigIssue::new(
                        "spring.cloud.function.definition",
                        e.to_string(),
                    )],
                })
            });
        }
        let names: Vec<&str> = self.functions.names().collect();
        match names.as_slice() {
            [one] if config.stream.function.autodetect != Some(false) => {
                Ok(vec![FunctionDefinition {
                    parts: vec![(*one).to_owned()],
                }])
            }
            [] => Ok(Vec::new()),
            many => {
                tracing::warn!(functions = ?many, "several functions are registered and spring.cloud.function.definition is not set; none is bound");
                Ok(Vec::new())
            }
        }
    }

    /// Names every registered function's bindings would have (for env-var mapping).
    fn candidate_binding_names(&self) -> Vec<String> {
        self.functions
            .names()
            .chain(std::iter::once(ROUTER_FUNCTION))
            .flat_map(|n| {
                [
                    binding_name(n, Direction::Input, 0),
                    binding_name(n, Direction::Output, 0),
                ]
            })
            .collect()
    }

    /// Validates the configuration, connects the binders, binds every function and starts
    /// consuming. Logs each binding's delivery plan. The steps are in `app/build.rs` (named
    /// functions, in order).
    pub async fn build(self) -> Result<RunningApp, Error> {
        build::run(self).await
    }
}

impl Clone for StreamAppBuilder {
    fn clone(&self) -> Self {
        StreamAppBuilder {
            loader: self.loader.clone(),
            functions: self.functions.clone(),
            binders: self.binders.clone(),
            codecs: self.codecs.clone(),
            shutdown_timeout: self.shutdown_timeout,
            extensions: self.extensions.clone(),
            payloads: self.payloads.clone(),
            state: self.state.clone(),
            observer: self.observer.clone(),
        }
    }
}

/// A pipeline as one erased function.
struct PipelineFunction(Arc<Pipeline>);

impl ErasedFunction for PipelineFunction {
    fn call(
        &self,
        input: Invocation<'_>,
        ctx: &Arc<CallContext>,
    ) -> crate::function::handler::BoxFuture<CallResult> {
        self.0.apply(input, ctx)
    }

    fn is_batch(&self) -> bool {
        self.0.is_batch()
    }
}

/// A running application.
pub struct RunningApp {
    handle: BindingsHandle,
    bridge: StreamBridge,
    plan: Plan,
    shutdown: CancellationToken,
    sources: CancellationToken,
    deadline: watch::Sender<Option<tokio::time::Instant>>,
    tasks: JoinSet<()>,
    source_tasks: JoinSet<()>,
    outputs: Vec<SharedOutput>,
    binders: Arc<BTreeMap<String, Arc<dyn Binder>>>,
    shutdown_timeout: Duration,
    properties: Arc<serde_json::Value>,
    extensions: Vec<ExtensionGuard>,
    asyncapi: Arc<serde_json::Value>,
}

impl std::fmt::Debug for RunningApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningApp")
            .field("bindings", &self.handle)
            .finish_non_exhaustive()
    }
}

impl RunningApp {
    /// The `StreamBridge` for sending to any destination.
    pub fn bridge(&self) -> StreamBridge {
        self.bridge.clone()
    }

    /// Pause/resume/stop/start bindings and read health.
    pub fn bindings(&self) -> BindingsHandle {
        self.handle.clone()
    }

    /// The delivery plan the application was built with.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The running extension of type `T` (what its [`AppExtension::start`] returned), e.g.
    /// the actuator's server with its address.
    pub fn extension<T: 'static>(&self) -> Option<&T> {
        self.extensions.iter().find_map(|g| g.downcast_ref::<T>())
    }

    /// The application's whole property tree, as loaded (placeholders resolved, keys
    /// kebab-case): where extensions read their own settings (e.g. `management.*`).
    pub fn properties(&self) -> &serde_json::Value {
        &self.properties
    }

    /// The AsyncAPI 3.0 document of the running bindings, with the payload schemas declared
    /// with [`StreamAppBuilder::payload_schema`] (titled `spring.application.name`).
    pub fn asyncapi(&self) -> &serde_json::Value {
        &self.asyncapi
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_shutdown(self) -> Result<(), Error> {
        wait_for_signal().await?;
        tracing::info!("shutdown signal received; draining");
        self.shutdown().await;
        Ok(())
    }

    /// Graceful shutdown: stop intake, let in-flight deliveries finish within the shutdown
    /// timeout (unfinished ones are left unsettled, so the broker redelivers them), settle,
    /// flush and close producers, close binders.
    pub async fn shutdown(mut self) {
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        // Sources first: once the suppliers stopped, nothing new enters from inside.
        self.sources.cancel();
        let sources_done = async { while self.source_tasks.join_next().await.is_some() {} };
        if tokio::time::timeout_at(deadline, sources_done)
            .await
            .is_err()
        {
            self.source_tasks.abort_all();
        }
        self.drain_in_process(deadline).await;
        self.deadline.send_replace(Some(deadline));
        self.shutdown.cancel();
        let drained = async { while self.tasks.join_next().await.is_some() {} };
        // The input tasks honour the deadline themselves; this bound is a backstop.
        if tokio::time::timeout_at(deadline + Duration::from_secs(1), drained)
            .await
            .is_err()
        {
            tracing::warn!("bindings did not stop in time; aborting");
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        for o in &self.outputs {
            if let Err(e) = o.flush().await {
                tracing::warn!(binding = %o.binding, error = %e, "flush failed at shutdown");
            }
            o.close().await;
        }
        self.bridge.close().await;
        for b in self.binders.values() {
            b.close().await;
        }
        // Extensions (the actuator) stop last, so health can be read during the drain.
        self.extensions.clear();
        tracing::info!("shutdown complete");
    }
}

impl RunningApp {
    /// Lets consumers handle what in-process binders (the memory binder) still hold for them,
    /// until `deadline`: a broker keeps its messages across a restart, the process does not.
    async fn drain_in_process(&self, deadline: tokio::time::Instant) {
        let held = || -> usize { self.binders.values().map(|b| b.held_in_process()).sum() };
        while held() > 0 {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    messages = held(),
                    "shutdown deadline reached with messages held in process"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[cfg(unix)]
async fn wait_for_signal() -> Result<(), Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signal)?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.map_err(Error::Signal),
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> Result<(), Error> {
    tokio::signal::ctrl_c().await.map_err(Error::Signal)
}
