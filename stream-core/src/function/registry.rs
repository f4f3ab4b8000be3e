//! The function registry and the resolution of `spring.cloud.function.definition` entries
//! (single functions and `a|b` compositions) into runnable pipelines.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use futures::stream::BoxStream;

use super::error::HandlerError;
use super::handler::{
    BoxFuture, CallContext, CallResult, ErasedFunction, ErasedSupplier, Invocation, Outputs,
};
use crate::binding::FunctionDefinition;
use crate::message::RawMessage;

/// A stream-driven supplier, started once when its binding starts.
pub type StreamFactory = Box<
    dyn FnOnce(Arc<CallContext>) -> BoxStream<'static, Result<Vec<RawMessage>, HandlerError>>
        + Send,
>;

/// A registered handler.
#[derive(Clone)]
pub enum Handler {
    /// Called every `poller.fixed-delay`.
    PolledSupplier(Arc<dyn ErasedSupplier>),
    /// Emits whenever its stream yields (taken once, at start).
    StreamSupplier(Arc<Mutex<Option<StreamFactory>>>),
    /// In → out.
    Function(Arc<dyn ErasedFunction>),
    /// In → nothing.
    Consumer(Arc<dyn ErasedFunction>),
}

impl Handler {
    fn kind(&self) -> &'static str {
        match self {
            Handler::PolledSupplier(_) | Handler::StreamSupplier(_) => "supplier",
            Handler::Function(_) => "function",
            Handler::Consumer(_) => "consumer",
        }
    }
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

/// Handlers by name.
#[derive(Clone, Debug, Default)]
pub struct FunctionRegistry {
    handlers: BTreeMap<String, Handler>,
}

/// A definition names a function that is not registered, or composes incompatible kinds.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The name is not registered.
    #[error("function `{name}` in definition `{definition}` is not registered{}", crate::config::did_you_mean(suggestion.as_deref()))]
    Unknown {
        /// The unknown name.
        name: String,
        /// The definition entry.
        definition: String,
        /// The closest registered name.
        suggestion: Option<String>,
    },
    /// A supplier appears after the first position or a consumer before the last.
    #[error("cannot compose `{definition}`: a {kind} `{name}` can only stand {position} of a composition")]
    BadComposition {
        /// The definition entry.
        definition: String,
        /// The misplaced function.
        name: String,
        /// Its kind.
        kind: &'static str,
        /// Where it may stand.
        position: &'static str,
    },
}

impl FunctionRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` under `name` (replacing any previous one).
    pub fn insert(&mut self, name: impl Into<String>, handler: Handler) {
        self.handlers.insert(name.into(), handler);
    }

    /// The handler named `name`.
    pub fn get(&self, name: &str) -> Option<&Handler> {
        self.handlers.get(name)
    }

    /// Registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }

    /// Number of registered handlers.
    pub fn len(&self) -> usize {
        self.handlers.len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    fn suggest(&self, name: &str) -> Option<String> {
        self.handlers
            .keys()
            .map(|k| (strsim::jaro_winkler(k, name), k))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, k)| k.clone())
    }

    /// Resolves one definition entry into a pipeline.
    pub fn resolve(&self, def: &FunctionDefinition) -> Result<Pipeline, ResolveError> {
        let definition = def.name();
        let mut source = None;
        let mut steps: Vec<Arc<dyn ErasedFunction>> = Vec::new();
        let mut has_output = true;
        let last = def.parts.len().saturating_sub(1);
        for (i, name) in def.parts.iter().enumerate() {
            let handler = self.get(name).ok_or_else(|| ResolveError::Unknown {
                name: name.clone(),
                definition: definition.clone(),
                suggestion: self.suggest(name),
            })?;
            let misplaced = |kind, position| ResolveError::BadComposition {
                definition: definition.clone(),
                name: name.clone(),
                kind,
                position,
            };
            match handler {
                Handler::PolledSupplier(_) | Handler::StreamSupplier(_) => {
                    if i != 0 {
                        return Err(misplaced("supplier", "first"));
                    }
                    source = Some(handler.clone());
                }
                Handler::Function(f) | Handler::Consumer(f) if f.is_batch() && i != 0 => {
                    return Err(misplaced("batch function", "first"));
                }
                Handler::Function(f) => steps.push(Arc::clone(f)),
                Handler::Consumer(f) => {
                    if i != last {
                        return Err(misplaced("consumer", "last"));
                    }
                    steps.push(Arc::clone(f));
                    has_output = false;
                }
            }
        }
        Ok(Pipeline {
            name: definition,
            source,
            steps,
            has_output,
        })
    }
}

/// A resolved definition entry: an optional supplier followed by functions (the last may be
/// a consumer).
#[derive(Clone)]
pub struct Pipeline {
    /// The definition name (`a|b`), the prefix of its binding names.
    pub name: String,
    /// The supplier at the head, if any (then the pipeline has no input binding).
    pub source: Option<Handler>,
    /// Functions applied in order to each message.
    pub steps: Vec<Arc<dyn ErasedFunction>>,
    /// Whether the pipeline ends in an output binding (false when it ends in a consumer).
    pub has_output: bool,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.name)
            .field("source", &self.source)
            .field("steps", &self.steps.len())
            .field("has_output", &self.has_output)
            .finish()
    }
}

impl Pipeline {
    /// Whether the pipeline takes its input as a batch (its first step is a batch handler).
    pub fn is_batch(&self) -> bool {
        self.steps.first().is_some_and(|f| f.is_batch())
    }

    /// Whether the pipeline has an input binding.
    pub fn has_input(&self) -> bool {
        self.source.is_none()
    }

    /// Runs the invocation's message through every step. Intermediate results travel as JSON
    /// with their headers (as Spring Cloud Function composes); the last step encodes with the
    /// binding's output content type. The first step decodes the input before this returns.
    pub fn apply(&self, input: Invocation<'_>, ctx: &Arc<CallContext>) -> BoxFuture<CallResult> {
        apply_steps(&self.steps, input, ctx)
    }
}

/// Calls the first of `steps` on `input`, then each further step on every output of the one
/// before (fanning out when a step yields several). No steps: the input passes unchanged.
pub(crate) fn apply_steps(
    steps: &[Arc<dyn ErasedFunction>],
    input: Invocation<'_>,
    ctx: &Arc<CallContext>,
) -> BoxFuture<CallResult> {
    let Some((first, rest)) = steps.split_first() else {
        let unchanged: Outputs = std::iter::once(input.message.clone()).collect();
        return Box::pin(std::future::ready(Ok(unchanged)));
    };
    if rest.is_empty() {
        return first.call(input, ctx);
    }
    let intermediate = Arc::new(CallContext {
        output_content_type: crate::convert::APPLICATION_JSON.to_owned(),
        ..(**ctx).clone()
    });
    let head = first.call(input, &intermediate);
    let rest = rest.to_vec();
    let ctx = Arc::clone(ctx);
    let attempt = input.attempt;
    Box::pin(async move {
        let mut current = head.await?;
        let last = rest.len() - 1;
        for (i, step) in rest.iter().enumerate() {
            let step_ctx = if i == last { &ctx } else { &intermediate };
            let mut next = Outputs::new();
            for message in &current {
                next.extend(
                    step.call(Invocation::single(message, attempt), step_ctx)
                        .await?,
                );
            }
            current = next;
        }
        Ok(current)
    })
}

/// Runs each of `inputs` (a supplier's messages) through `steps`, collecting every output.
pub(crate) async fn apply_steps_to_all(
    steps: &[Arc<dyn ErasedFunction>],
    inputs: Vec<RawMessage>,
    ctx: &Arc<CallContext>,
) -> Result<Vec<RawMessage>, HandlerError> {
    if steps.is_empty() {
        return Ok(inputs);
    }
    let mut outputs = Vec::with_capacity(inputs.len());
    for message in &inputs {
        outputs.extend(apply_steps(steps, Invocation::of(message), ctx).await?);
    }
    Ok(outputs)
}
