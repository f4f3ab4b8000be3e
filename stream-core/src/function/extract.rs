//! Extractors: what a handler may take besides its payload, as axum handlers take request parts.
//!
//! A handler's arguments may be, in any order and at most one payload:
//!
//! | argument         | what it holds                                                      |
//! |------------------|--------------------------------------------------------------------|
//! | `T`              | the payload, decoded with the binding's content type (`serde::Deserialize`) |
//! | `Message<T>`     | the payload with the inbound headers                               |
//! | [`State<S>`]     | the application state given to `StreamAppBuilder::with_state`      |
//! | [`Headers`]      | the inbound headers                                                |
//! | [`Header<H>`]    | one typed header ([`TypedHeader`]); a message without it is dead-lettered; `Option<Header<H>>` when it may be absent |
//! | [`Attempt`]      | the delivery attempt, 1-based                                      |
//! | [`BindingName`]  | the input binding's name, e.g. `uppercase-in-0`                    |
//! | [`TraceContext`] | the inbound W3C trace context (a new root when the message has none) |
//!
//! ```
//! use std::sync::Arc;
//! use stream_core::function::extract::{Attempt, State};
//! use stream_core::{HandlerError, Headers, StreamAppBuilder};
//!
//! #[derive(Clone, Default)]
//! struct Inventory(Arc<std::sync::Mutex<u32>>);
//!
//! let app = StreamAppBuilder::new()
//!     .with_state(Inventory::default())
//!     .consumer("reserve", |State(stock): State<Inventory>, Attempt(n): Attempt, qty: u32| async move {
//!         *stock.0.lock().map_err(|_| HandlerError::permanent("poisoned"))? += qty;
//!         tracing::info!(attempt = n, "reserved");
//!         Ok(())
//!     })
//!     .consumer("audit", |headers: Headers, line: String| async move {
//!         println!("{line} from {:?}", headers.get_str("source"));
//!         Ok(())
//!     });
//! # drop(app);
//! ```
//!
//! A handler argument that is none of these is a compile error that says what a handler takes.
//! A [`State<S>`] whose `S` was never given to `with_state` fails `build()`, naming the handler.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use super::handler::{CallContext, FromInput, Invocation};
use crate::convert::ConvertError;
use crate::message::{header, HeaderValue, Headers};
pub use crate::trace::TraceContext;

/// Marker: an extractor argument (not the payload). Users never name it.
#[derive(Debug)]
pub enum Extracted {}

/// What a handler argument other than the payload is taken from: the invocation and the
/// binding's context. Implement it to add an extractor of your own.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an extractor",
    label = "a supplier cannot take this: it has no input message",
    note = "a supplier's arguments can only be extractors (`State<S>`, `Headers`, `Attempt`, `BindingName`, `TraceContext`); a payload belongs to `.function(..)` or `.consumer(..)`"
)]
pub trait FromParts: Sized + Send + 'static {
    /// Extracts the value; an error dead-letters the message as undecodable.
    fn from_parts(input: Invocation<'_>, ctx: &CallContext) -> Result<Self, ConvertError>;

    /// The application state this extractor needs (checked by `build()`), if any.
    fn needs_state() -> Option<StateNeed> {
        None
    }
}

impl<T: FromParts> FromInput<Extracted> for T {
    fn from_input(input: Invocation<'_>, ctx: &CallContext) -> Result<Self, ConvertError> {
        T::from_parts(input, ctx)
    }

    fn needs_state() -> Option<StateNeed> {
        <T as FromParts>::needs_state()
    }
}

/// A state type a handler takes, for the check at `build()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateNeed {
    /// The state's type.
    pub type_id: TypeId,
    /// Its name, for the error message.
    pub type_name: &'static str,
}

/// The application states given to `StreamAppBuilder::with_state`, one per type. Cheap to
/// clone.
#[derive(Clone, Default)]
pub struct AppState(Arc<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AppState({} types)", self.0.len())
    }
}

impl AppState {
    /// Adds (or replaces) the state of type `S`.
    pub fn insert<S: Clone + Send + Sync + 'static>(&mut self, state: S) {
        Arc::make_mut(&mut self.0).insert(TypeId::of::<S>(), Arc::new(state));
    }

    /// The state of type `S`, if given.
    pub fn get<S: Clone + Send + Sync + 'static>(&self) -> Option<&S> {
        self.0.get(&TypeId::of::<S>())?.downcast_ref()
    }

    /// Whether a state of the needed type was given.
    pub fn has(&self, need: &StateNeed) -> bool {
        self.0.contains_key(&need.type_id)
    }
}

/// Shared application state (a clone of what `StreamAppBuilder::with_state` was given):
/// `|State(db): State<Db>, order: Order| async move { … }`. Give state that is cheap to clone
/// (handles, `Arc`s), as with axum.
#[derive(Clone, Copy, Debug, Default)]
pub struct State<S>(pub S);

impl<S> Deref for State<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.0
    }
}

impl<S: Clone + Send + Sync + 'static> FromParts for State<S> {
    fn from_parts(_: Invocation<'_>, ctx: &CallContext) -> Result<Self, ConvertError> {
        // `build()` checked that every handler's state was given; a handler called outside an
        // application (a unit test of an adapter) can still lack it.
        ctx.state
            .get::<S>()
            .cloned()
            .map(State)
            .ok_or_else(|| ConvertError::Extract {
                what: format!("State<{}>", std::any::type_name::<S>()),
                message: "no such state was given to `with_state`".into(),
            })
    }

    fn needs_state() -> Option<StateNeed> {
        Some(StateNeed {
            type_id: TypeId::of::<S>(),
            type_name: std::any::type_name::<S>(),
        })
    }
}

impl FromParts for Headers {
    fn from_parts(input: Invocation<'_>, _: &CallContext) -> Result<Self, ConvertError> {
        Ok(input.message.headers.clone())
    }
}

/// The delivery attempt being handled, 1-based (1 outside a delivery, e.g. a supplier).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt(pub u32);

impl FromParts for Attempt {
    fn from_parts(input: Invocation<'_>, _: &CallContext) -> Result<Self, ConvertError> {
        Ok(Attempt(input.attempt.unwrap_or(1)))
    }
}

/// The name of the binding the message came in on (`<function>-in-<index>` or a configured
/// name); empty outside a binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingName(pub Arc<str>);

impl Deref for BindingName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl FromParts for BindingName {
    fn from_parts(_: Invocation<'_>, ctx: &CallContext) -> Result<Self, ConvertError> {
        Ok(BindingName(Arc::clone(&ctx.binding)))
    }
}

impl FromParts for TraceContext {
    fn from_parts(input: Invocation<'_>, _: &CallContext) -> Result<Self, ConvertError> {
        Ok(TraceContext::inbound_or_root(
            input.message.headers.get(header::TRACEPARENT),
        ))
    }
}

/// A header with a name and a type: implement it on a newtype, then take [`Header<H>`].
///
/// ```
/// use stream_core::function::extract::{Header, TypedHeader};
///
/// struct TenantId(String);
/// impl TypedHeader for TenantId {
///     const NAME: &'static str = "tenant-id";
///     fn decode(value: &str) -> Result<Self, String> {
///         Ok(TenantId(value.to_owned()))
///     }
/// }
/// let _ = stream_core::StreamAppBuilder::new()
///     .consumer("bill", |Header(tenant): Header<TenantId>, amount: u64| async move {
///         println!("{} owes {amount}", tenant.0);
///         Ok(())
///     });
/// ```
pub trait TypedHeader: Sized + Send + 'static {
    /// The header's name.
    const NAME: &'static str;
    /// Parses the header's text; the error says what was expected.
    fn decode(value: &str) -> Result<Self, String>;
}

/// One typed header of the inbound message (see [`TypedHeader`]). A message without it, or
/// with a value that does not decode, is dead-lettered as undecodable; take
/// `Option<Header<H>>` when it may be absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<H>(pub H);

/// Why header `H` could not be taken.
fn header_error<H: TypedHeader>(message: impl Into<String>) -> ConvertError {
    ConvertError::Extract {
        what: format!("header `{}`", H::NAME),
        message: message.into(),
    }
}

fn decode_header<H: TypedHeader>(value: &HeaderValue) -> Result<H, ConvertError> {
    let text = value
        .as_str()
        .ok_or_else(|| header_error::<H>("the value is not UTF-8 text"))?;
    H::decode(text).map_err(header_error::<H>)
}

impl<H: TypedHeader> FromParts for Header<H> {
    fn from_parts(input: Invocation<'_>, _: &CallContext) -> Result<Self, ConvertError> {
        let value = input
            .message
            .headers
            .get(H::NAME)
            .ok_or_else(|| header_error::<H>("the message has no such header"))?;
        decode_header(value).map(Header)
    }
}

impl<H: TypedHeader> FromParts for Option<Header<H>> {
    fn from_parts(input: Invocation<'_>, _: &CallContext) -> Result<Self, ConvertError> {
        match input.message.headers.get(H::NAME) {
            Some(value) => decode_header(value).map(|h| Some(Header(h))),
            None => Ok(None),
        }
    }
}
