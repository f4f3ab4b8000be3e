//! Typed handlers and their type-erased form.
//!
//! Users write plain async closures; [`HandlerFn`] calls them, [`FromInput`] takes each
//! argument from the message and [`IntoOutput`] encodes the result. The marker type parameters
//! ([`Plain`], [`Wrapped`], [`WrappedOption`], [`Extracted`](super::extract::Extracted)) only
//! let the compiler pick the right adapter; users never name them.
//!
//! | argument type | meaning                                      |
//! |---------------|----------------------------------------------|
//! | `T`           | the decoded payload                          |
//! | `Message<T>`  | the decoded payload with the inbound headers |
//! | an extractor  | `State<S>`, `Headers`, `Header<H>`, `Attempt`, `BindingName`, `TraceContext` (see [`extract`](super::extract)) |
//!
//! Arguments come in any order (a handler takes at most six).
//!
//! | output type          | meaning                                                      |
//! |----------------------|--------------------------------------------------------------|
//! | `U`                  | one message; `Option<U>` = `None` filters (no message), as does `()` |
//! | `Message<U>`         | one message with headers set by the handler                  |
//! | `Option<Message<U>>` | zero or one message with headers                             |

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use smallvec::SmallVec;

use super::batch::{BatchHandlerFn, FromBatch};
use super::error::HandlerError;
use super::extract::{AppState, StateNeed};
use crate::convert::{mime_essence, CodecRegistry, ConvertError, APPLICATION_JSON};
use crate::message::{header, Headers, Message, RawMessage};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The messages one function call produced: usually none or one, held without an allocation.
pub type Outputs = SmallVec<[RawMessage; 1]>;

/// One invocation of a function: the input message, borrowed (handlers decode it before
/// [`ErasedFunction::call`] returns, so the message stays with its delivery and is never
/// copied for the handler), and the delivery attempt when the call handles a delivery.
#[derive(Clone, Copy, Debug)]
pub struct Invocation<'a> {
    /// The input message (in a batch, the first one).
    pub message: &'a RawMessage,
    /// The delivery attempt (1-based) of the delivery being handled; `None` outside one.
    /// Handlers that take a [`Message`] see it as the `delivery-attempt` header.
    pub attempt: Option<u32>,
    /// Every message of a batch (`batch-mode`), in delivery order; empty for one message.
    pub batch: &'a [&'a RawMessage],
}

impl<'a> Invocation<'a> {
    /// An invocation of `message` outside any delivery (no attempt number).
    pub fn of(message: &'a RawMessage) -> Self {
        Self::single(message, None)
    }

    /// An invocation of one message at `attempt`.
    pub fn single(message: &'a RawMessage, attempt: Option<u32>) -> Self {
        Invocation {
            message,
            attempt,
            batch: &[],
        }
    }
}

/// Marker: the payload itself.
#[derive(Debug)]
pub enum Plain {}
/// Marker: a [`Message`] around the payload.
#[derive(Debug)]
pub enum Wrapped {}
/// Marker: an optional [`Message`].
#[derive(Debug)]
pub enum WrappedOption {}

/// What a handler invocation needs besides the message: codecs and content types.
#[derive(Clone, Debug)]
pub struct CallContext {
    /// The application's codecs.
    pub codecs: CodecRegistry,
    /// Content type assumed for inputs without a `content-type` header.
    pub input_content_type: String,
    /// Content type of outputs that do not set one.
    pub output_content_type: String,
    /// The input binding's name (empty outside one), for the `BindingName` extractor.
    pub binding: Arc<str>,
    /// The application's states, for the `State<S>` extractor.
    pub state: AppState,
}

impl Default for CallContext {
    fn default() -> Self {
        CallContext {
            codecs: CodecRegistry::new(),
            input_content_type: APPLICATION_JSON.to_owned(),
            output_content_type: APPLICATION_JSON.to_owned(),
            binding: Arc::from(""),
            state: AppState::default(),
        }
    }
}

/// A handler argument type decoded from a raw message: any `serde::Deserialize` type, or
/// [`Message<T>`] for the headers as well. Anything else is a compile error that says so
/// (`` `NotSerde` cannot be a handler's input ``, with a note on what a handler takes):
///
/// ```compile_fail,E0277
/// struct NotSerde;
/// let _ = stream_core::StreamAppBuilder::new()
///     .consumer("c", |_: NotSerde| async { Ok(()) });
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler's input",
    label = "this handler's argument",
    note = "a handler argument is the payload (a type that implements `serde::Deserialize`, decoded with the binding's content type), `Message<T>` to see the headers as well, or an extractor such as `State<S>` or `Headers`"
)]
pub trait FromInput<M>: Sized + Send + 'static {
    /// Decodes the invocation's message (the `content-type` header wins over the binding's
    /// content type).
    fn from_input(input: Invocation<'_>, ctx: &CallContext) -> Result<Self, ConvertError>;

    /// The application state this argument needs (`State<S>`), checked by `build()`.
    fn needs_state() -> Option<StateNeed> {
        None
    }
}

fn input_content_type<'a>(message: &'a RawMessage, ctx: &'a CallContext) -> &'a str {
    message
        .headers
        .content_type()
        .unwrap_or(&ctx.input_content_type)
}

impl<T: DeserializeOwned + Send + 'static> FromInput<Plain> for T {
    fn from_input(input: Invocation<'_>, ctx: &CallContext) -> Result<Self, ConvertError> {
        let message = input.message;
        ctx.codecs
            .decode(&message.payload, input_content_type(message, ctx))
    }
}

impl<T: DeserializeOwned + Send + 'static> FromInput<Wrapped> for Message<T> {
    fn from_input(input: Invocation<'_>, ctx: &CallContext) -> Result<Self, ConvertError> {
        let message = input.message;
        let payload = ctx
            .codecs
            .decode(&message.payload, input_content_type(message, ctx))?;
        // Only handlers that take a `Message` see headers, so the attempt is added here
        // rather than on every delivery (adding to shared headers copies them).
        let mut headers = message.headers.clone();
        if let Some(attempt) = input.attempt {
            headers.insert(header::DELIVERY_ATTEMPT, attempt.to_string());
        }
        Ok(Message { payload, headers })
    }
}

/// An output message before the runtime adds propagated headers.
#[derive(Debug)]
pub struct Encoded {
    /// The encoded payload.
    pub payload: Bytes,
    /// Headers the handler set (including `content-type`).
    pub headers: Headers,
}

/// Encoded messages of one handler result: usually none or one, held without an allocation.
pub type EncodedOutputs = SmallVec<[Encoded; 1]>;

/// A handler return type encoded into raw messages: any `serde::Serialize` type (one message),
/// [`Message<T>`] (one, with headers), `Option<Message<T>>` (`None` sends nothing) or
/// [`Batch<U>`] (one message per item). Anything else is a compile error that says so:
///
/// ```compile_fail,E0277
/// struct NotSerde;
/// let _ = stream_core::StreamAppBuilder::new()
///     .function("f", |_: String| async { Ok::<_, stream_core::HandlerError>(NotSerde) });
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler's output",
    label = "this handler's output",
    note = "a handler returns `Result<T, HandlerError>` where `T` implements `serde::Serialize`, or is `Message<T>` (with headers), `Option<Message<T>>` (`None` sends nothing) or `Batch<T>` (one message per item)"
)]
pub trait IntoOutput<M>: Send + 'static {
    /// Encodes the value, adding the messages it stands for to `out` (none for a filter).
    fn into_output(self, ctx: &CallContext, out: &mut EncodedOutputs) -> Result<(), ConvertError>;
}

/// Encodes a value; a value that serializes to `null` (`None`, `()`) is "no message", as a
/// Spring function returning `null`.
fn encode_value<T: Serialize>(
    value: &T,
    content_type: &str,
    codecs: &CodecRegistry,
) -> Result<Option<Bytes>, ConvertError> {
    let essence = mime_essence(content_type);
    if essence == APPLICATION_JSON {
        // Fast path: one serialization, null detected on the bytes.
        let bytes = codecs.encode(value, content_type)?;
        return Ok((bytes.as_slice() != b"null").then(|| Bytes::from(bytes)));
    }
    let json = serde_json::to_value(value).map_err(|e| ConvertError::Encode {
        content_type: essence.into_owned(),
        message: e.to_string(),
    })?;
    if json.is_null() {
        return Ok(None);
    }
    Ok(Some(Bytes::from(codecs.encode(&json, content_type)?)))
}

impl<T: Serialize + Send + 'static> IntoOutput<Plain> for T {
    fn into_output(self, ctx: &CallContext, out: &mut EncodedOutputs) -> Result<(), ConvertError> {
        let content_type = &ctx.output_content_type;
        if let Some(payload) = encode_value(&self, content_type, &ctx.codecs)? {
            let headers = Headers::single(header::CONTENT_TYPE, content_type.as_str().into());
            out.push(Encoded { payload, headers });
        }
        Ok(())
    }
}

impl<T: Serialize + Send + 'static> IntoOutput<Wrapped> for Message<T> {
    fn into_output(self, ctx: &CallContext, out: &mut EncodedOutputs) -> Result<(), ConvertError> {
        let mut headers = self.headers;
        let content_type = headers
            .get_str(header::CONTENT_TYPE)
            .unwrap_or(&ctx.output_content_type)
            .to_owned();
        if let Some(payload) = encode_value(&self.payload, &content_type, &ctx.codecs)? {
            headers.insert(header::CONTENT_TYPE, content_type);
            out.push(Encoded { payload, headers });
        }
        Ok(())
    }
}

impl<T: Serialize + Send + 'static> IntoOutput<WrappedOption> for Option<Message<T>> {
    fn into_output(self, ctx: &CallContext, out: &mut EncodedOutputs) -> Result<(), ConvertError> {
        match self {
            Some(m) => m.into_output(ctx, out),
            None => Ok(()),
        }
    }
}

/// Many output messages from one call: each item is its own broker message (in order), and
/// the input is acknowledged only once every one of them is confirmed. A plain `Vec<U>` stays
/// one message (a JSON array), as in Spring. Items are payloads or [`Message`]s.
///
/// ```
/// use stream_core::function::Batch;
/// let _ = stream_core::StreamAppBuilder::new()
///     .function("split", |line: String| async move {
///         Ok::<_, stream_core::HandlerError>(Batch(line.split(' ').map(str::to_owned).collect()))
///     });
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch<U>(pub Vec<U>);

impl<U> FromIterator<U> for Batch<U> {
    fn from_iter<I: IntoIterator<Item = U>>(items: I) -> Self {
        Batch(items.into_iter().collect())
    }
}

/// Marker: one message per item of a [`Batch`].
#[derive(Debug)]
pub struct Each<M>(std::marker::PhantomData<M>);

impl<U: IntoOutput<M>, M: 'static> IntoOutput<Each<M>> for Batch<U> {
    fn into_output(self, ctx: &CallContext, out: &mut EncodedOutputs) -> Result<(), ConvertError> {
        self.0
            .into_iter()
            .try_for_each(|item| item.into_output(ctx, out))
    }
}

/// Whether `name` is a header that describes one particular message and is never copied from
/// input to output. (A `match`, which compares lengths before bytes, is cheaper than a scan of
/// a list: it runs for every input header of every output.) `traceparent` is one: the runtime
/// gives every output its own, a child of the delivery's trace context.
fn not_propagated(name: &str) -> bool {
    matches!(
        name,
        header::ID
            | header::TIMESTAMP
            | header::TRACEPARENT
            | header::CONTENT_TYPE
            | header::SPRING_CONTENT_TYPE
            | header::SPRING_JSON_HEADER_TYPES
            | header::DELIVERY_ATTEMPT
            | header::DELAYED_REDELIVERIES
            | header::DELAYED_UNTIL
            | header::PARTITION
            | header::PARTITION_KEY
            | header::ORIGINAL_TOPIC
            | header::ORIGINAL_GROUP
            | header::EXCEPTION_MESSAGE
            | header::EXCEPTION_KIND
            | header::ORIGINAL_ATTEMPTS
    )
}

/// Builds the output message: handler headers win, input headers are propagated (as Spring
/// Cloud Function does) except per-message ones.
///
/// Adds to the handler's headers in place (no text is copied: names and values are shared).
pub(crate) fn finish_output(encoded: Encoded, input_headers: &Headers) -> RawMessage {
    let headers = Headers::derive(encoded.headers, input_headers, |name| !not_propagated(name));
    Message {
        payload: encoded.payload,
        headers,
    }
}

/// Encodes a handler's return value into its output messages (none when it filtered).
pub(crate) fn output_of<O: IntoOutput<M>, M>(
    out: O,
    ctx: &CallContext,
    input_headers: &Headers,
) -> Result<Outputs, HandlerError> {
    let mut encoded = EncodedOutputs::new();
    out.into_output(ctx, &mut encoded)
        .map_err(|e| HandlerError::output(e, super::error::Retry::No))?;
    Ok(encoded
        .into_iter()
        .map(|e| finish_output(e, input_headers))
        .collect())
}

/// A function or consumer with its types erased: raw message in, raw messages out.
pub trait ErasedFunction: Send + Sync {
    /// Calls the handler. The input is decoded before this returns (an undecodable one makes
    /// a future that fails with a `decode` error), so the future does not borrow it.
    fn call(&self, input: Invocation<'_>, ctx: &Arc<CallContext>) -> BoxFuture<CallResult>;

    /// The application states the handler takes (`State<S>`), checked by `build()`.
    fn needs_state(&self) -> Vec<StateNeed> {
        Vec::new()
    }

    /// Whether the handler takes a batch (`Vec<T>`; its binding needs `batch-mode: true`).
    fn is_batch(&self) -> bool {
        false
    }
}

/// What a function call resolves to: its outputs, or why it failed.
pub type CallResult = Result<Outputs, HandlerError>;

/// Runs a handler call to its end with panics turned into [`HandlerError::panicked`]: a panic
/// while the call makes its future or while the future runs fails this call only, and the
/// binding goes on (retries and dead-lettering as for any error).
pub async fn unwind_safe<T>(
    make: impl FnOnce() -> BoxFuture<Result<T, HandlerError>>,
) -> Result<T, HandlerError> {
    use futures::FutureExt;
    use std::panic::AssertUnwindSafe;
    // The handler's state is not observed after a panic: the message is retried or
    // dead-lettered, so unwind safety of what the closure captured does not matter.
    match std::panic::catch_unwind(AssertUnwindSafe(make)) {
        Ok(fut) => AssertUnwindSafe(fut)
            .catch_unwind()
            .await
            .unwrap_or_else(|p| Err(HandlerError::panicked(p.as_ref()))),
        Err(p) => Err(HandlerError::panicked(p.as_ref())),
    }
}

/// A future that fails at once with `error` (an input that could not be decoded).
pub(crate) fn failed(error: HandlerError) -> BoxFuture<CallResult> {
    Box::pin(std::future::ready(Err(error)))
}

/// A supplier with its types erased: produces zero or more raw messages per call.
pub trait ErasedSupplier: Send + Sync {
    /// Calls the supplier once.
    fn call(&self, ctx: Arc<CallContext>) -> BoxFuture<Result<Vec<RawMessage>, HandlerError>>;

    /// The application states the supplier takes (`State<S>`), checked by `build()`.
    fn needs_state(&self) -> Vec<StateNeed> {
        Vec::new()
    }
}

/// An async function or closure cloud-stream can call with a message: each argument is taken
/// from the invocation (the payload, [`Message<T>`], or an [extractor](super::extract)), in any
/// order; it returns a future of `Result<T, HandlerError>`. Implemented for functions of up to
/// six arguments; users never implement it.
#[diagnostic::on_unimplemented(
    message = "this cannot be a cloud-stream handler",
    label = "not a handler",
    note = "a handler is an async fn or closure returning `Result<T, HandlerError>`; each argument is the payload (a `serde::Deserialize` type), `Message<T>` (payload and headers) or an extractor: `State<S>`, `Headers`, `Header<H>`, `Attempt`, `BindingName`, `TraceContext`",
    note = "give each argument on its own, not as one tuple, and annotate its type: `|order: Order, headers: Headers, State(db): State<Db>| async move {{ .. }}`"
)]
pub trait HandlerFn<Args, M>: Send + Sync + 'static {
    /// What the handler's future yields on success.
    type Output;
    /// The handler's future.
    type Future: Future<Output = Result<Self::Output, HandlerError>> + Send + 'static;
    /// Takes every argument from `input` and calls the handler (an argument that cannot be
    /// taken is an error and the handler is not called).
    fn invoke(
        &self,
        input: Invocation<'_>,
        ctx: &CallContext,
    ) -> Result<Self::Future, ConvertError>;
    /// The application states the arguments need (checked by `build()`).
    fn needs_state() -> Vec<StateNeed>;
}

/// The argument kinds of a supplier: extractors only, as a supplier has no input message. (It
/// fixes every marker to `Extracted`, so a payload argument fails as "not an extractor", with
/// [`FromParts`](super::extract::FromParts)'s hint.)
pub trait PartsOnly {}

/// Implements a handler trait for every `Fn` of the arities below: `$Trait` takes each
/// argument with `$From::$from` (failing with `$Err`).
macro_rules! handler_fn {
    ($Trait:ident, $From:ident :: $from:ident, $Err:ty; $($A:ident $M:ident),*) => {
        impl<F, Fut, O, $($A: $From<$M>, $M: 'static,)*> $Trait<($($A,)*), ($($M,)*)> for F
        where
            F: Fn($($A),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<O, HandlerError>> + Send + 'static,
        {
            type Output = O;
            type Future = Fut;

            #[allow(non_snake_case, unused_variables)]
            fn invoke(&self, input: Invocation<'_>, ctx: &CallContext) -> Result<Fut, $Err> {
                $(let $A = $A::$from(input, ctx)?;)*
                Ok(self($($A),*))
            }

            #[allow(unused_mut)]
            fn needs_state() -> Vec<StateNeed> {
                let mut needs = Vec::new();
                $(needs.extend(<$A as $From<$M>>::needs_state());)*
                needs
            }
        }
    };
}

/// Both handler traits and the supplier marker, for one arity.
macro_rules! handler_fns {
    ($($A:ident $M:ident),*) => {
        handler_fn!(HandlerFn, FromInput::from_input, ConvertError; $($A $M),*);
        handler_fn!(BatchHandlerFn, FromBatch::from_batch, HandlerError; $($A $M),*);
        impl PartsOnly for ($(handler_fns!(@extracted $M),)*) {}
    };
    (@extracted $M:ident) => { super::extract::Extracted };
}

handler_fns!();
handler_fns!(A1 M1);
handler_fns!(A1 M1, A2 M2);
handler_fns!(A1 M1, A2 M2, A3 M3);
handler_fns!(A1 M1, A2 M2, A3 M3, A4 M4);
handler_fns!(A1 M1, A2 M2, A3 M3, A4 M4, A5 M5);
handler_fns!(A1 M1, A2 M2, A3 M3, A4 M4, A5 M5, A6 M6);

/// A handler `(args…) -> Out` adapted to [`ErasedFunction`].
pub(crate) struct FunctionAdapter<F, Args, M, MO> {
    /// Called in [`ErasedFunction::call`] itself (the future it returns owns only the
    /// handler's future), so no shared handle to it is needed.
    f: F,
    _types: std::marker::PhantomData<fn(Args, M, MO)>,
}

impl<F, Args, M, MO> FunctionAdapter<F, Args, M, MO> {
    pub(crate) fn new(f: F) -> Self {
        FunctionAdapter {
            f,
            _types: std::marker::PhantomData,
        }
    }
}

impl<F, Args, M, MO> ErasedFunction for FunctionAdapter<F, Args, M, MO>
where
    F: HandlerFn<Args, M>,
    F::Output: IntoOutput<MO>,
    Args: 'static,
    M: 'static,
    MO: 'static,
{
    fn call(&self, input: Invocation<'_>, ctx: &Arc<CallContext>) -> BoxFuture<CallResult> {
        let call = match self.f.invoke(input, ctx) {
            Ok(call) => call,
            Err(e) => return failed(HandlerError::decode(e)),
        };
        let input_headers = input.message.headers.clone();
        let ctx = Arc::clone(ctx);
        Box::pin(async move { output_of(call.await?, &ctx, &input_headers) })
    }

    fn needs_state(&self) -> Vec<StateNeed> {
        F::needs_state()
    }
}

/// A handler `(args…) -> ()` adapted to [`ErasedFunction`] (it never produces output).
pub(crate) struct ConsumerAdapter<F, Args, M> {
    /// Called in [`ErasedFunction::call`] itself, as for [`FunctionAdapter`].
    f: F,
    _types: std::marker::PhantomData<fn(Args, M)>,
}

impl<F, Args, M> ConsumerAdapter<F, Args, M> {
    pub(crate) fn new(f: F) -> Self {
        ConsumerAdapter {
            f,
            _types: std::marker::PhantomData,
        }
    }
}

impl<F, Args, M> ErasedFunction for ConsumerAdapter<F, Args, M>
where
    F: HandlerFn<Args, M, Output = ()>,
    Args: 'static,
    M: 'static,
{
    fn call(&self, input: Invocation<'_>, ctx: &Arc<CallContext>) -> BoxFuture<CallResult> {
        let call = match self.f.invoke(input, ctx) {
            Ok(call) => call,
            Err(e) => return failed(HandlerError::decode(e)),
        };
        Box::pin(async move {
            call.await?;
            Ok(Outputs::new())
        })
    }

    fn needs_state(&self) -> Vec<StateNeed> {
        F::needs_state()
    }
}

/// A supplier `(extractors…) -> Out` adapted to [`ErasedSupplier`].
pub(crate) struct SupplierAdapter<F, Args, M, MO> {
    f: F,
    _types: std::marker::PhantomData<fn(Args, M, MO)>,
}

impl<F, Args, M, MO> SupplierAdapter<F, Args, M, MO> {
    pub(crate) fn new(f: F) -> Self {
        SupplierAdapter {
            f,
            _types: std::marker::PhantomData,
        }
    }
}

impl<F, Args, M, MO> ErasedSupplier for SupplierAdapter<F, Args, M, MO>
where
    F: HandlerFn<Args, M>,
    M: PartsOnly + 'static,
    F::Output: IntoOutput<MO>,
    Args: 'static,
    MO: 'static,
{
    fn call(&self, ctx: Arc<CallContext>) -> BoxFuture<Result<Vec<RawMessage>, HandlerError>> {
        // Extractors see an empty message: no headers, no attempt.
        let none = RawMessage::new(Bytes::new());
        let call = match self.f.invoke(Invocation::of(&none), &ctx) {
            Ok(call) => call,
            Err(e) => return Box::pin(std::future::ready(Err(HandlerError::decode(e)))),
        };
        Box::pin(async move { Ok(output_of(call.await?, &ctx, &Headers::new())?.into_vec()) })
    }

    fn needs_state(&self) -> Vec<StateNeed> {
        F::needs_state()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct In {
        n: u32,
    }
    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Out {
        doubled: u32,
    }

    fn raw(json: &str) -> RawMessage {
        Message::new(Bytes::from(json.to_owned())).header("trace-me", "yes")
    }

    fn erase<F, Args: 'static, M: 'static, MO: 'static>(f: F) -> Arc<dyn ErasedFunction>
    where
        F: HandlerFn<Args, M>,
        F::Output: IntoOutput<MO>,
    {
        Arc::new(FunctionAdapter::<F, Args, M, MO>::new(f))
    }

    #[tokio::test]
    async fn plain_in_plain_out_propagates_headers() {
        let f = erase(|i: In| async move { Ok(Out { doubled: i.n * 2 }) });
        let out = f
            .call(Invocation::of(&raw(r#"{"n":2}"#)), &Arc::default())
            .await
            .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0].payload[..], br#"{"doubled":4}"#);
        assert_eq!(out[0].headers.get_str("trace-me"), Some("yes"));
        assert_eq!(
            out[0].headers.get_str(header::CONTENT_TYPE),
            Some(APPLICATION_JSON)
        );
    }

    #[tokio::test]
    async fn option_none_filters_and_message_sets_headers() {
        let filter = erase(|i: In| async move { Ok((i.n > 5).then_some(Out { doubled: i.n })) });
        assert!(filter
            .call(Invocation::of(&raw(r#"{"n":2}"#)), &Arc::default())
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            filter
                .call(Invocation::of(&raw(r#"{"n":9}"#)), &Arc::default())
                .await
                .unwrap()
                .len(),
            1
        );

        let with_headers = erase(|m: Message<In>| async move {
            Ok(Message::new(Out {
                doubled: m.payload.n,
            })
            .header("k", "v"))
        });
        let out = with_headers
            .call(Invocation::of(&raw(r#"{"n":1}"#)), &Arc::default())
            .await
            .unwrap();
        assert_eq!(out[0].headers.get_str("k"), Some("v"));
        assert_eq!(out[0].headers.get_str("trace-me"), Some("yes"));
    }

    #[tokio::test]
    async fn undecodable_input_is_a_permanent_decode_error() {
        let f = erase(|i: In| async move { Ok(i.n) });
        let err = f
            .call(Invocation::of(&raw("not json")), &Arc::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "decode");
        assert!(!err.should_retry(&Default::default(), true));
    }
}
