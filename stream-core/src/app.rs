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

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::binder::{Binder, BinderFactory, BinderRegistry};
use crate::binding::{
    apply_alias, binding_name, parse_definition, Direction, FunctionDefinition, ROUTER_FUNCTION,
};
use crate::bridge::{bind_output_sender, OutputBindError, StreamBridge};
use crate::config::{ConfigLoader, StreamConfig};
use crate::convert::{Codec, CodecRegistry};
use crate::error::Error;
use crate::expr::Expression;
use crate::function::handler::{finish_output, ConsumerAdapter, FunctionAdapter, SupplierAdapter};
use crate::function::{
    CallContext, CallResult, ErasedFunction, FromInput, FunctionRegistry, Handler, HandlerError,
    IntoOutput, Invocation, Pipeline, RouterFunction,
};
use crate::message::Headers;
use crate::plan::{build_plan, resolve_binding, EffectiveBinding, Plan};
use crate::runtime::binders::connect_all;
use crate::runtime::control::{BindingEntry, BindingState, BindingsHandle};
use crate::runtime::input::{InputProcessor, InputRun};
use crate::runtime::output::SharedOutput;
use crate::runtime::retry::RetryPolicy;
use crate::runtime::supplier::SupplierRun;

/// Default time in-flight work gets to finish at shutdown.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds a [`RunningApp`].
pub struct StreamAppBuilder {
    loader: ConfigLoader,
    functions: FunctionRegistry,
    binders: BinderRegistry,
    codecs: CodecRegistry,
    shutdown_timeout: Duration,
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
        }
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

    /// How long in-flight work may take to finish at shutdown (default 30 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Registers a function `In -> Out` (see [`crate::function::handler`] for the types).
    pub fn function<F, Fut, I, O, MI, MO>(mut self, name: &str, f: F) -> Self
    where
        F: Fn(I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, HandlerError>> + Send + 'static,
        I: FromInput<MI>,
        O: IntoOutput<MO>,
        MI: 'static,
        MO: 'static,
    {
        let adapter = FunctionAdapter::<F, I, O, MI, MO>::new(f);
        self.functions
            .insert(name, Handler::Function(Arc::new(adapter)));
        self
    }

    /// Registers a consumer `In -> ()`.
    pub fn consumer<F, Fut, I, MI>(mut self, name: &str, f: F) -> Self
    where
        F: Fn(I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
        I: FromInput<MI>,
        MI: 'static,
    {
        let adapter = ConsumerAdapter::<F, I, MI>::new(f);
        self.functions
            .insert(name, Handler::Consumer(Arc::new(adapter)));
        self
    }

    /// Registers a supplier polled every `poller.fixed-delay` (default 1000 ms); returning
    /// `None` (for `Option` outputs) sends nothing that time.
    pub fn supplier<F, Fut, O, MO>(mut self, name: &str, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, HandlerError>> + Send + 'static,
        O: IntoOutput<MO>,
        MO: 'static,
    {
        let adapter = SupplierAdapter::<F, O, MO>::new(f);
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
                        item.into_output(&ctx)
                            .map(|enc| {
                                // Same finishing as a polled supplier's output.
                                enc.map(|e| vec![finish_output(e, Headers::new())])
                                    .unwrap_or_default()
                            })
                            .map_err(|e| HandlerError::output(e, crate::function::Retry::No))
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
    /// consuming. Logs each binding's delivery plan.
    pub async fn build(self) -> Result<RunningApp, Error> {
        let mut loader = self.loader.clone();
        for (t, schema) in self.binders.schemas() {
            loader = loader.binder_schema(t, schema);
        }
        let loaded = loader
            .binder_types(self.binders.types())
            .known_bindings(self.candidate_binding_names())
            .load()?;
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        let config = Arc::new(loaded.config);
        let registry = Arc::new(self.functions.clone());

        // Resolve what to bind.
        let aliases = &config.stream.function.bindings;
        let mut ios = Vec::new();
        for def in self.definitions(&config)? {
            if def.parts.len() == 1 && def.parts[0] == ROUTER_FUNCTION {
                continue;
            }
            let pipeline = registry.resolve(&def)?;
            let name = pipeline.name.clone();
            let input = pipeline
                .has_input()
                .then(|| apply_alias(&binding_name(&name, Direction::Input, 0), aliases));
            let output = pipeline
                .has_output
                .then(|| apply_alias(&binding_name(&name, Direction::Output, 0), aliases));
            let handler: Arc<dyn ErasedFunction> =
                Arc::new(PipelineFunction(Arc::new(pipeline.clone())));
            ios.push(PlannedIo {
                pipeline,
                input,
                output,
                handler,
            });
        }
        let routing = config.stream.function.routing.enabled
            || config
                .function
                .definition
                .as_deref()
                .map(|d| d.split(';').any(|p| p.trim() == ROUTER_FUNCTION))
                .unwrap_or(false);
        if routing {
            let expression = match &config.function.routing_expression {
                Some(src) => Some(Expression::parse(src).map_err(|source| Error::Expression {
                    key: "spring.cloud.function.routing-expression".to_owned(),
                    source,
                })?),
                None => None,
            };
            let router = RouterFunction::new(Arc::clone(&registry), expression);
            let out_name = apply_alias(
                &binding_name(ROUTER_FUNCTION, Direction::Output, 0),
                aliases,
            );
            ios.push(PlannedIo {
                pipeline: Pipeline {
                    name: ROUTER_FUNCTION.to_owned(),
                    source: None,
                    steps: Vec::new(),
                    has_output: config.stream.bindings.contains_key(&out_name),
                },
                input: Some(apply_alias(
                    &binding_name(ROUTER_FUNCTION, Direction::Input, 0),
                    aliases,
                )),
                output: config
                    .stream
                    .bindings
                    .contains_key(&out_name)
                    .then_some(out_name),
                handler: Arc::new(router),
            });
        }

        // Typo protection: every configured binding must belong to something.
        let mut all: Vec<(String, Direction)> = Vec::new();
        for io in &ios {
            if let Some(i) = &io.input {
                all.push((i.clone(), Direction::Input));
            }
            if let Some(o) = &io.output {
                all.push((o.clone(), Direction::Output));
            }
        }
        let declared_outputs: BTreeSet<String> =
            declared_names(config.stream.output_bindings.as_deref())
                .chain(declared_names(config.stream.input_bindings.as_deref()))
                .collect();
        let known: BTreeSet<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        for name in config.stream.bindings.keys() {
            if known.contains(name.as_str()) || declared_outputs.contains(name) {
                continue;
            }
            let suggestion = known
                .iter()
                .map(|k| (strsim::jaro_winkler(k, name), *k))
                .filter(|(s, _)| *s > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, k)| k.to_owned());
            return Err(Error::UnknownBinding {
                binding: name.clone(),
                suggestion,
                known: if known.is_empty() {
                    "(none; declare StreamBridge outputs in spring.cloud.stream.output-bindings)"
                        .to_owned()
                } else {
                    known.iter().copied().collect::<Vec<_>>().join(", ")
                },
            });
        }

        // The delivery plan, logged.
        let plan = build_plan(&config, &self.binders, &all)?;
        for b in &plan.bindings {
            tracing::info!("delivery plan: {}", b.to_string().trim_end());
        }

        // Connect the binders the bindings use, plus the default one (for StreamBridge).
        let mut needed: BTreeMap<String, String> = BTreeMap::new();
        for b in &plan.bindings {
            needed.insert(b.binder.clone(), b.binder_type.clone());
        }
        for b in plan.binders.iter().filter(|b| b.default) {
            needed.insert(b.name.clone(), b.binder_type.clone());
        }
        let binders = Arc::new(connect_all(&config, &loaded.root, &self.binders, &needed).await?);
        // `output-bindings` are bound now, as Spring does: their destinations are provisioned
        // before anything runs and a bad one fails the start, not the first send.
        let mut declared = BTreeMap::new();
        for name in declared_names(config.stream.output_bindings.as_deref()) {
            let eff = resolve_binding(&config, &name, Direction::Output)?;
            declared.insert(name, bind_output(&eff, &binders).await?);
        }
        let bridge = StreamBridge::new(
            Arc::clone(&config),
            Arc::clone(&binders),
            self.codecs.clone(),
            declared,
        );

        let shutdown = CancellationToken::new();
        let (deadline_tx, deadline_rx) = watch::channel(None);
        // Every binding is bound before any of them starts, so a supplier or an early output
        // never publishes to a group that is not provisioned yet.
        let mut starts: Vec<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>> = Vec::new();
        let mut entries = BTreeMap::new();
        let mut outputs: Vec<SharedOutput> = Vec::new();

        for io in ios {
            let output = match &io.output {
                Some(name) => {
                    let eff = resolve_binding(&config, name, Direction::Output)?;
                    let o = bind_output(&eff, &binders).await?;
                    outputs.push(Arc::clone(&o));
                    Some((eff, o))
                }
                None => None,
            };
            let in_eff = match &io.input {
                Some(name) => Some(resolve_binding(&config, name, Direction::Input)?),
                None => None,
            };
            let driver = io.input.clone().or_else(|| io.output.clone());
            let Some(driver_name) = driver else { continue };
            let auto_startup = match (&in_eff, &output) {
                (Some(i), _) => i.consumer.auto_startup,
                (None, Some((o, _))) => o.producer.auto_startup,
                _ => true,
            };
            let initial = if auto_startup {
                BindingState::Running
            } else {
                BindingState::Stopped
            };
            let (state_tx, state_rx) = watch::channel(initial);
            if let (Some(out_name), true) = (&io.output, io.input.is_some()) {
                let (follower, _) = watch::channel(BindingState::Running);
                entries.insert(
                    out_name.clone(),
                    BindingEntry {
                        direction: Direction::Output,
                        binder: output
                            .as_ref()
                            .map(|(e, _)| e.binder.clone())
                            .unwrap_or_default(),
                        state: follower,
                        controllable: false,
                    },
                );
            }
            match in_eff {
                Some(eff) => {
                    let binder = binder_of(&binders, &eff)?;
                    let ctx = Arc::new(CallContext {
                        codecs: self.codecs.clone(),
                        input_content_type: eff.content_type.clone(),
                        output_content_type: output
                            .as_ref()
                            .map(|(o, _)| o.content_type.clone())
                            .unwrap_or_else(|| eff.content_type.clone()),
                    });
                    let eff = Arc::new(eff);
                    let processor = Arc::new(InputProcessor {
                        binding: Arc::clone(&eff),
                        handler: Arc::clone(&io.handler),
                        ctx,
                        policy: RetryPolicy::from_consumer(&eff.consumer),
                        output: output.as_ref().map(|(_, o)| Arc::clone(o)),
                        bridge: bridge.clone(),
                        metrics: crate::observe::BindingMetrics::new(&eff.name),
                    });
                    for destination in &eff.destinations {
                        let initial = if auto_startup {
                            let sub = binder
                                .bind_consumer(
                                    destination,
                                    eff.group.as_deref(),
                                    &eff.consumer_spec(),
                                )
                                .await
                                .map_err(|source| Error::Bind {
                                    binding: eff.name.clone(),
                                    source,
                                })?;
                            Some(sub)
                        } else {
                            None
                        };
                        let run = InputRun {
                            processor: Arc::clone(&processor),
                            binder: Arc::clone(&binder),
                            destination: destination.clone(),
                            state: state_rx.clone(),
                            // A child token per binding: the runtime checks it before every
                            // delivery, and a token's state sits behind a lock, which bindings
                            // on other workers would otherwise all take.
                            shutdown: shutdown.child_token(),
                            deadline: deadline_rx.clone(),
                            retry_interval: Duration::from_secs(
                                config.stream.binding_retry_interval,
                            ),
                        };
                        starts.push(Box::pin(run.run(initial)));
                    }
                    entries.insert(
                        driver_name,
                        BindingEntry {
                            direction: Direction::Input,
                            binder: eff.binder.clone(),
                            state: state_tx,
                            controllable: true,
                        },
                    );
                }
                None => {
                    let Some((eff, out)) = output else { continue };
                    let Some(source) = io.pipeline.source.clone() else {
                        continue;
                    };
                    let poller = eff
                        .producer
                        .poller
                        .clone()
                        .unwrap_or_else(|| config.poller.clone());
                    let run = SupplierRun {
                        binding: eff.name.clone(),
                        source,
                        steps: io.pipeline.steps.clone(),
                        ctx: Arc::new(CallContext {
                            codecs: self.codecs.clone(),
                            input_content_type: eff.content_type.clone(),
                            output_content_type: eff.content_type.clone(),
                        }),
                        output: out,
                        fixed_delay: Duration::from_millis(poller.fixed_delay),
                        initial_delay: Duration::from_millis(poller.initial_delay),
                        max_messages_per_poll: poller.max_messages_per_poll,
                        state: state_rx,
                        shutdown: shutdown.clone(),
                        send_policy: RetryPolicy::from_consumer(&config.stream.default.consumer),
                    };
                    starts.push(Box::pin(run.run()));
                    entries.insert(
                        driver_name,
                        BindingEntry {
                            direction: Direction::Output,
                            binder: eff.binder.clone(),
                            state: state_tx,
                            controllable: true,
                        },
                    );
                }
            }
        }

        let mut tasks = JoinSet::new();
        for start in starts {
            tasks.spawn(start);
        }
        Ok(RunningApp {
            handle: BindingsHandle {
                entries: Arc::new(entries),
                binders: Arc::clone(&binders),
            },
            bridge,
            plan,
            shutdown,
            deadline: deadline_tx,
            tasks,
            outputs,
            binders,
            shutdown_timeout: self.shutdown_timeout,
        })
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
}

fn binder_of(
    binders: &BTreeMap<String, Arc<dyn Binder>>,
    eff: &EffectiveBinding,
) -> Result<Arc<dyn Binder>, Error> {
    binders
        .get(&eff.binder)
        .cloned()
        .ok_or_else(|| Error::UnknownBinderType {
            binder: eff.binder.clone(),
            binder_type: eff.binder_type.clone(),
            available: binders.keys().cloned().collect::<Vec<_>>().join(", "),
        })
}

/// The binding names of an `input-bindings`/`output-bindings` list (`a;b`).
fn declared_names(list: Option<&str>) -> impl Iterator<Item = String> + '_ {
    list.into_iter()
        .flat_map(|l| l.split(';'))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

async fn bind_output(
    eff: &EffectiveBinding,
    binders: &BTreeMap<String, Arc<dyn Binder>>,
) -> Result<SharedOutput, Error> {
    let binder = binder_of(binders, eff)?;
    bind_output_sender(binder.as_ref(), eff)
        .await
        .map_err(|e| match e {
            OutputBindError::Expression { source, .. } => Error::Expression {
                key: format!(
                    "spring.cloud.stream.bindings.{}.producer.partition-key-expression",
                    eff.name
                ),
                source,
            },
            OutputBindError::Bind { source, .. } => Error::Bind {
                binding: eff.name.clone(),
                source,
            },
        })
}

/// A running application.
pub struct RunningApp {
    handle: BindingsHandle,
    bridge: StreamBridge,
    plan: Plan,
    shutdown: CancellationToken,
    deadline: watch::Sender<Option<tokio::time::Instant>>,
    tasks: JoinSet<()>,
    outputs: Vec<SharedOutput>,
    binders: Arc<BTreeMap<String, Arc<dyn Binder>>>,
    shutdown_timeout: Duration,
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
        tracing::info!("shutdown complete");
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
