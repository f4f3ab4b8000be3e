//! [`StreamAppBuilder::build`], step by step: load the configuration, resolve the functions,
//! derive and check their bindings, plan, connect the binders, bind the declared outputs, then
//! bind every function's input, output or supplier and start them together.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{PipelineFunction, PlannedIo, RunningApp, StreamAppBuilder};
use crate::binder::Binder;
use crate::binding::{apply_alias, binding_name, Direction, ROUTER_FUNCTION};
use crate::bridge::StreamBridge;
use crate::config::{suggest, LoadedConfig, StreamConfig};
use crate::convert::CodecRegistry;
use crate::error::Error;
use crate::expr::Expression;
use crate::function::extract::AppState;
use crate::function::{CallContext, Handler, Pipeline, RouterFunction};
use crate::observe::CallObserver;
use crate::plan::{build_plan, resolve_binding, AsyncApiInfo, EffectiveBinding, Plan};
use crate::runtime::binders::connect_all;
use crate::runtime::control::{BindingEntry, BindingState, BindingsHandle};
use crate::runtime::input::{InputProcessor, InputRun};
use crate::runtime::output::{bind_output_sender, OutputBindError, SharedOutput};
use crate::runtime::retry::RetryPolicy;
use crate::runtime::supplier::SupplierRun;

/// The connected binders, by binder name.
type Binders = Arc<BTreeMap<String, Arc<dyn Binder>>>;

/// The whole of `build`, in order.
pub(super) async fn run(app: StreamAppBuilder) -> Result<RunningApp, Error> {
    let loaded = load_config(&app)?;
    for extension in &app.extensions {
        extension.prepare(&loaded.root)?;
    }
    let config = Arc::new(loaded.config.clone());
    check_state(&app)?;
    let ios = resolve_functions(&app, &config)?;
    let bindings = derive_bindings(&ios);
    check_bindings(&config, &bindings)?;
    check_consumers(&app, &config, &ios)?;
    let plan = build_plan(&config, &app.binders, &bindings)?;
    for b in &plan.bindings {
        tracing::info!("delivery plan: {}", b.to_string().trim_end());
    }
    let binders = connect_binders(&app, &config, &loaded, &plan).await?;
    let bridge = bind_declared_outputs(&app.codecs, &config, &binders).await?;
    let mut wiring = Wiring::new(&app, &config, &binders, &bridge);
    for io in ios {
        wiring.bind(io).await?;
    }
    let info = AsyncApiInfo::from_properties(&loaded.root, "application");
    let servers = plan.servers(&config, &loaded.root, &app.binders);
    let asyncapi = plan.asyncapi(&info, &servers, &app.payloads);
    let mut running = wiring.start(plan, bridge, app.shutdown_timeout, loaded.root);
    running.asyncapi = Arc::new(asyncapi);
    for extension in &app.extensions {
        match extension.start(&running).await {
            Ok(guard) => running.extensions.extend(guard),
            Err(e) => {
                running.shutdown().await;
                return Err(e);
            }
        }
    }
    Ok(running)
}

/// Reads and validates the configuration with every registered binder's schemas.
fn load_config(app: &StreamAppBuilder) -> Result<LoadedConfig, Error> {
    let loaded = app
        .loader
        .clone()
        .binders_of(&app.binders)
        .known_bindings(app.candidate_binding_names())
        .load()?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    Ok(loaded)
}

/// Every registered handler's `State<S>` was given to `with_state` (a handler the router may
/// call is as much in use as a bound one).
fn check_state(app: &StreamAppBuilder) -> Result<(), Error> {
    for name in app.functions.names() {
        let needs = match app.functions.get(name) {
            Some(Handler::Function(f) | Handler::Consumer(f)) => f.needs_state(),
            Some(Handler::PolledSupplier(s)) => s.needs_state(),
            Some(Handler::StreamSupplier(_)) | None => Vec::new(),
        };
        if let Some(missing) = needs.iter().find(|n| !app.state.has(n)) {
            return Err(Error::MissingState {
                function: name.to_owned(),
                state: missing.type_name.to_owned(),
            });
        }
    }
    Ok(())
}

/// The functions to bind (the definition, composed), plus the router when routing is on.
fn resolve_functions(
    app: &StreamAppBuilder,
    config: &StreamConfig,
) -> Result<Vec<PlannedIo>, Error> {
    let registry = Arc::new(app.functions.clone());
    let aliases = &config.stream.function.bindings;
    let name_of = |f: &str, d| apply_alias(&binding_name(f, d, 0), aliases);
    let mut ios = Vec::new();
    for def in app.definitions(config)? {
        if def.parts.len() == 1 && def.parts[0] == ROUTER_FUNCTION {
            continue;
        }
        let pipeline = registry.resolve(&def)?;
        let name = pipeline.name.clone();
        ios.push(PlannedIo {
            input: pipeline
                .has_input()
                .then(|| name_of(&name, Direction::Input)),
            output: pipeline
                .has_output
                .then(|| name_of(&name, Direction::Output)),
            handler: Arc::new(PipelineFunction(Arc::new(pipeline.clone()))),
            pipeline,
        });
    }
    let routing = config.stream.function.routing.enabled
        || config
            .function
            .definition
            .as_deref()
            .is_some_and(|d| d.split(';').any(|p| p.trim() == ROUTER_FUNCTION));
    if routing {
        ios.push(router(config, registry, &name_of)?);
    }
    Ok(ios)
}

/// The router's bindings: `functionRouter-in-0`, and its output only when configured.
fn router(
    config: &StreamConfig,
    registry: Arc<crate::function::FunctionRegistry>,
    name_of: &dyn Fn(&str, Direction) -> String,
) -> Result<PlannedIo, Error> {
    let expression = match &config.function.routing_expression {
        Some(src) => Some(Expression::parse(src).map_err(|source| Error::Expression {
            key: "spring.cloud.function.routing-expression".to_owned(),
            source,
        })?),
        None => None,
    };
    let out_name = name_of(ROUTER_FUNCTION, Direction::Output);
    let output = config
        .stream
        .bindings
        .contains_key(&out_name)
        .then_some(out_name);
    Ok(PlannedIo {
        pipeline: Pipeline {
            name: ROUTER_FUNCTION.to_owned(),
            source: None,
            steps: Vec::new(),
            has_output: output.is_some(),
        },
        input: Some(name_of(ROUTER_FUNCTION, Direction::Input)),
        output,
        handler: Arc::new(RouterFunction::new(registry, expression)),
    })
}

/// The bindings the functions really have (a supplier has no input, a consumer no output).
fn derive_bindings(ios: &[PlannedIo]) -> Vec<(String, Direction)> {
    let inputs = ios
        .iter()
        .filter_map(|io| io.input.clone())
        .map(|n| (n, Direction::Input));
    let outputs = ios
        .iter()
        .filter_map(|io| io.output.clone())
        .map(|n| (n, Direction::Output));
    inputs.chain(outputs).collect()
}

/// Typo protection: every configured binding belongs to a function, the router, or the
/// `input-bindings`/`output-bindings` lists.
fn check_bindings(config: &StreamConfig, all: &[(String, Direction)]) -> Result<(), Error> {
    let declared: BTreeSet<String> = declared_names(config.stream.output_bindings.as_deref())
        .chain(declared_names(config.stream.input_bindings.as_deref()))
        .collect();
    let known: BTreeSet<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    let stray = config
        .stream
        .bindings
        .keys()
        .find(|n| !known.contains(n.as_str()) && !declared.contains(*n));
    let Some(name) = stray else { return Ok(()) };
    Err(Error::UnknownBinding {
        binding: name.clone(),
        suggestion: suggest(name, known.iter().copied()),
        known: if known.is_empty() {
            "(none; declare StreamBridge outputs in spring.cloud.stream.output-bindings)".to_owned()
        } else {
            known.iter().copied().collect::<Vec<_>>().join(", ")
        },
    })
}

/// What each input binding asks of its handler and binder can be done: a batch handler is
/// bound only with `batch-mode: true` and a `batch-mode` binding only to a batch handler (the
/// mismatch fails here, not as dead letters at run time); `redelivery-delays` only on a binder
/// that can redeliver later.
fn check_consumers(
    app: &StreamAppBuilder,
    config: &StreamConfig,
    ios: &[PlannedIo],
) -> Result<(), Error> {
    for io in ios {
        let Some(input) = &io.input else { continue };
        let eff = resolve_binding(config, input, Direction::Input)?;
        check_redelivery(app, &eff)?;
        let consumer = &eff.consumer;
        let message = match (io.pipeline.is_batch(), consumer.batch_mode) {
            (true, false) => format!(
                "`{}` takes a batch (`Vec<T>`) but this binding is not in batch mode: set it to true",
                io.pipeline.name
            ),
            (false, true) => format!(
                "this binding is in batch mode but `{}` takes one message: register a batch handler (`batch_consumer`/`batch_function` taking `Vec<T>`) or remove batch-mode",
                io.pipeline.name
            ),
            (true, true) if consumer.idempotent => {
                "`idempotent` is not supported in batch mode yet: remove one of them".to_owned()
            }
            _ => continue,
        };
        return Err(Error::BatchMode {
            binding: input.clone(),
            message,
        });
    }
    Ok(())
}

/// `redelivery-delays` needs a binder whose manifest says `delayed_redelivery`.
fn check_redelivery(app: &StreamAppBuilder, eff: &EffectiveBinding) -> Result<(), Error> {
    let capable = app
        .binders
        .get(&eff.binder_type)
        .is_none_or(|f| f.capabilities().delayed_redelivery);
    if eff.consumer.redelivery_delays.is_empty() || capable {
        return Ok(());
    }
    Err(Error::Bind {
        binding: eff.name.clone(),
        source: crate::binder::BindError::Unsupported(format!(
            "`consumer.redelivery-delays`: the {} binder cannot hand a message back to come later (capabilities.delayed_redelivery = false); use max-attempts and back-off",
            eff.binder_type
        )),
    })
}

/// Connects every binder a binding names (functions' and `output-bindings`), plus the default
/// one (for `StreamBridge`).
async fn connect_binders(
    app: &StreamAppBuilder,
    config: &StreamConfig,
    loaded: &LoadedConfig,
    plan: &Plan,
) -> Result<Binders, Error> {
    let mut needed: BTreeMap<String, String> = BTreeMap::new();
    for b in &plan.bindings {
        needed.insert(b.binder.clone(), b.binder_type.clone());
    }
    for b in plan.binders.iter().filter(|b| b.default) {
        needed.insert(b.name.clone(), b.binder_type.clone());
    }
    for name in declared_names(config.stream.output_bindings.as_deref()) {
        let eff = resolve_binding(config, &name, Direction::Output)?;
        needed.insert(eff.binder, eff.binder_type);
    }
    let connected = connect_all(config, &loaded.root, &app.binders, &needed).await?;
    Ok(Arc::new(connected))
}

/// `output-bindings` are bound now, as Spring does: their destinations are provisioned before
/// anything runs and a bad one fails the start, not the first send.
async fn bind_declared_outputs(
    codecs: &CodecRegistry,
    config: &Arc<StreamConfig>,
    binders: &Binders,
) -> Result<StreamBridge, Error> {
    let mut declared = BTreeMap::new();
    for name in declared_names(config.stream.output_bindings.as_deref()) {
        let eff = resolve_binding(config, &name, Direction::Output)?;
        declared.insert(name, bind_output(&eff, binders).await?);
    }
    Ok(StreamBridge::new(
        Arc::clone(config),
        Arc::clone(binders),
        codecs.clone(),
        declared,
    ))
}

/// What binding the functions builds up: every binding is bound before any of them starts,
/// so a supplier or an early output never publishes to a group that is not provisioned yet.
struct Wiring {
    config: Arc<StreamConfig>,
    binders: Binders,
    bridge: StreamBridge,
    codecs: CodecRegistry,
    state: AppState,
    observer: Option<Arc<dyn CallObserver>>,
    shutdown: CancellationToken,
    /// Stops the sources (suppliers) first at shutdown, before the consumers.
    sources: CancellationToken,
    deadline: (
        watch::Sender<Option<tokio::time::Instant>>,
        watch::Receiver<Option<tokio::time::Instant>>,
    ),
    starts: Vec<Pin<Box<dyn Future<Output = ()> + Send>>>,
    source_starts: Vec<Pin<Box<dyn Future<Output = ()> + Send>>>,
    entries: BTreeMap<String, BindingEntry>,
    outputs: Vec<SharedOutput>,
}

impl Wiring {
    fn new(
        app: &StreamAppBuilder,
        config: &Arc<StreamConfig>,
        binders: &Binders,
        bridge: &StreamBridge,
    ) -> Self {
        Wiring {
            config: Arc::clone(config),
            binders: Arc::clone(binders),
            bridge: bridge.clone(),
            codecs: app.codecs.clone(),
            state: app.state.clone(),
            observer: app.observer.clone(),
            shutdown: CancellationToken::new(),
            sources: CancellationToken::new(),
            deadline: watch::channel(None),
            starts: Vec::new(),
            source_starts: Vec::new(),
            entries: BTreeMap::new(),
            outputs: Vec::new(),
        }
    }

    /// Binds one function: its output (if any), then its input or its supplier.
    async fn bind(&mut self, io: PlannedIo) -> Result<(), Error> {
        let output = match &io.output {
            Some(name) => {
                let eff = resolve_binding(&self.config, name, Direction::Output)?;
                let o = bind_output(&eff, &self.binders).await?;
                self.outputs.push(Arc::clone(&o));
                Some((eff, o))
            }
            None => None,
        };
        let input = match &io.input {
            Some(name) => Some(resolve_binding(&self.config, name, Direction::Input)?),
            None => None,
        };
        if let (Some(out_name), Some(_)) = (&io.output, &io.input) {
            // The output of a function follows its input's state; it is not controlled alone.
            let binder = output
                .as_ref()
                .map(|(e, _)| e.binder.clone())
                .unwrap_or_default();
            let entry = entry(
                Direction::Output,
                binder,
                watch::channel(BindingState::Running).0,
            );
            self.entries.insert(
                out_name.clone(),
                BindingEntry {
                    controllable: false,
                    ..entry
                },
            );
        }
        match (input, output) {
            (Some(eff), output) => self.bind_input(io, eff, output).await,
            (None, Some((eff, out))) => {
                self.bind_supplier(io, eff, out);
                Ok(())
            }
            (None, None) => Ok(()),
        }
    }

    /// What `eff`'s handler calls see: the codecs, the binding's content types (outputs take
    /// `output`'s when there is one), its name and the application's states.
    fn call_context(
        &self,
        eff: &EffectiveBinding,
        output: Option<&EffectiveBinding>,
    ) -> Arc<CallContext> {
        Arc::new(CallContext {
            codecs: self.codecs.clone(),
            input_content_type: eff.content_type.clone(),
            output_content_type: output.unwrap_or(eff).content_type.clone(),
            binding: Arc::from(eff.name.as_str()),
            state: self.state.clone(),
        })
    }

    async fn bind_input(
        &mut self,
        io: PlannedIo,
        eff: EffectiveBinding,
        output: Option<(EffectiveBinding, SharedOutput)>,
    ) -> Result<(), Error> {
        let binder = binder_of(&self.binders, &eff)?;
        let auto_startup = eff.consumer.auto_startup;
        let (state_tx, state_rx) = watch::channel(initial_state(auto_startup));
        let ctx = self.call_context(&eff, output.as_ref().map(|(o, _)| o));
        let eff = Arc::new(eff);
        let processor = Arc::new(InputProcessor {
            binding: Arc::clone(&eff),
            handler: Arc::clone(&io.handler),
            ctx,
            policy: RetryPolicy::from_consumer(&eff.consumer),
            output: output.as_ref().map(|(_, o)| Arc::clone(o)),
            bridge: self.bridge.clone(),
            metrics: crate::observe::BindingMetrics::new(&eff.name),
            inbox: crate::runtime::inbox::Inbox::of(&eff.consumer),
            function: Arc::from(io.pipeline.name.as_str()),
            observer: self.observer.clone(),
        });
        for destination in &eff.destinations {
            let initial = match auto_startup {
                true => Some(
                    binder
                        .bind_consumer(destination, eff.group.as_deref(), &eff.consumer_spec())
                        .await
                        .map_err(|source| Error::Bind {
                            binding: eff.name.clone(),
                            source,
                        })?,
                ),
                false => None,
            };
            let run = InputRun {
                processor: Arc::clone(&processor),
                binder: Arc::clone(&binder),
                destination: destination.clone(),
                state: state_rx.clone(),
                // A child token per binding: the runtime checks it before every delivery, and
                // a token's state sits behind a lock, which bindings on other workers would
                // otherwise all take.
                shutdown: self.shutdown.child_token(),
                deadline: self.deadline.1.clone(),
                retry_interval: Duration::from_secs(self.config.stream.binding_retry_interval),
            };
            self.starts.push(Box::pin(run.run(initial)));
        }
        let name = io.input.unwrap_or_else(|| eff.name.clone());
        let e = BindingEntry {
            input: Some(Arc::clone(&eff)),
            ..entry(Direction::Input, eff.binder.clone(), state_tx)
        };
        self.entries.insert(name, e);
        Ok(())
    }

    fn bind_supplier(&mut self, io: PlannedIo, eff: EffectiveBinding, out: SharedOutput) {
        let Some(source) = io.pipeline.source.clone() else {
            return;
        };
        let (state_tx, state_rx) = watch::channel(initial_state(eff.producer.auto_startup));
        let poller = eff
            .producer
            .poller
            .clone()
            .unwrap_or_else(|| self.config.poller.clone());
        let run = SupplierRun {
            binding: eff.name.clone(),
            source,
            steps: io.pipeline.steps.clone(),
            ctx: self.call_context(&eff, None),
            output: out,
            fixed_delay: Duration::from_millis(poller.fixed_delay),
            initial_delay: Duration::from_millis(poller.initial_delay),
            max_messages_per_poll: poller.max_messages_per_poll,
            state: state_rx,
            shutdown: self.sources.clone(),
            send_policy: RetryPolicy::from_consumer(&self.config.stream.default.consumer),
        };
        self.source_starts.push(Box::pin(run.run()));
        let name = io.output.unwrap_or_else(|| eff.name.clone());
        self.entries
            .insert(name, entry(Direction::Output, eff.binder.clone(), state_tx));
    }

    /// Starts every bound binding at once.
    fn start(
        self,
        plan: Plan,
        bridge: StreamBridge,
        shutdown_timeout: Duration,
        properties: serde_json::Value,
    ) -> RunningApp {
        let mut tasks = JoinSet::new();
        for start in self.starts {
            tasks.spawn(start);
        }
        let mut source_tasks = JoinSet::new();
        for start in self.source_starts {
            source_tasks.spawn(start);
        }
        RunningApp {
            handle: BindingsHandle {
                entries: Arc::new(self.entries),
                binders: Arc::clone(&self.binders),
            },
            bridge,
            plan,
            shutdown: self.shutdown,
            sources: self.sources,
            deadline: self.deadline.0,
            tasks,
            source_tasks,
            outputs: self.outputs,
            binders: self.binders,
            shutdown_timeout,
            properties: Arc::new(properties),
            extensions: Vec::new(),
            asyncapi: Arc::default(),
        }
    }
}

fn initial_state(auto_startup: bool) -> BindingState {
    match auto_startup {
        true => BindingState::Running,
        false => BindingState::Stopped,
    }
}

fn entry(direction: Direction, binder: String, state: watch::Sender<BindingState>) -> BindingEntry {
    BindingEntry {
        direction,
        binder,
        state,
        controllable: true,
        input: None,
    }
}

fn binder_of(binders: &Binders, eff: &EffectiveBinding) -> Result<Arc<dyn Binder>, Error> {
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

async fn bind_output(eff: &EffectiveBinding, binders: &Binders) -> Result<SharedOutput, Error> {
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
