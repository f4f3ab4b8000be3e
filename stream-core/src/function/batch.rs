//! Batch handlers: with `consumer.batch-mode: true` a binding hands its handler every message
//! its broker has ready (up to the binder's batch size) in one call.
//!
//! A batch handler takes `Vec<T>` (the payloads) or `Vec<Message<T>>` (with each message's
//! headers), besides any extractors, which see the batch's first message. Register it with
//! `StreamAppBuilder::batch_consumer` or `batch_function`; `build()` fails when a batch handler
//! is bound without `batch-mode: true`, or a one-message handler with it.
//!
//! ```
//! use stream_core::{HandlerError, StreamAppBuilder};
//!
//! let app = StreamAppBuilder::new()
//!     .batch_consumer("store", |readings: Vec<f64>| async move {
//!         // One insert for the whole batch; an error fails (retries, then dead-letters) it all.
//!         println!("storing {} readings", readings.len());
//!         Ok(())
//!     })
//!     .batch_consumer("check", |orders: Vec<String>| async move {
//!         // Only the listed positions failed: the others are acknowledged.
//!         let bad: Vec<usize> = (0..orders.len()).filter(|i| orders[*i].is_empty()).collect();
//!         match bad.is_empty() {
//!             true => Ok(()),
//!             false => Err(HandlerError::new("empty order").only(bad)),
//!         }
//!     });
//! # drop(app);
//! ```
//!
//! Failures: an error fails the whole batch, which is retried as a batch (`max-attempts`,
//! back-off), then each of its messages is dead-lettered. A batch consumer's error made with
//! [`HandlerError::only`] names the positions that failed: the others are acknowledged and
//! only those are retried, then dead-lettered. A message that does not decode is dead-lettered
//! at once and the handler gets the rest. A batch function's error always fails the whole
//! batch: its output was not produced.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::error::HandlerError;
use super::extract::{Extracted, FromParts, StateNeed};
use super::handler::{
    failed, output_of, BoxFuture, CallContext, CallResult, ErasedFunction, FromInput, IntoOutput,
    Invocation, Plain, Wrapped,
};
use crate::convert::ConvertError;
use crate::message::{Headers, Message};

/// A batch handler's argument: `Vec<T>` (payloads), `Vec<Message<T>>` (with headers) or an
/// extractor (taken from the batch's first message).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a batch handler's argument",
    label = "this batch handler's argument",
    note = "a batch handler takes the batch as `Vec<T>` (`T: serde::Deserialize`) or `Vec<Message<T>>` (with headers), besides extractors such as `State<S>`"
)]
pub trait FromBatch<M>: Sized + Send + 'static {
    /// Takes the argument from a batch invocation. Messages that do not decode fail it with a
    /// `decode` error naming their positions ([`HandlerError::failed_positions`]).
    fn from_batch(input: Invocation<'_>, ctx: &CallContext) -> Result<Self, HandlerError>;

    /// The application state this argument needs (`State<S>`), checked by `build()`.
    fn needs_state() -> Option<StateNeed> {
        None
    }
}

impl<T: DeserializeOwned + Send + 'static> FromBatch<Plain> for Vec<T> {
    fn from_batch(input: Invocation<'_>, ctx: &CallContext) -> Result<Self, HandlerError> {
        decode_each(input, |one| <T as FromInput<Plain>>::from_input(one, ctx))
    }
}

impl<T: DeserializeOwned + Send + 'static> FromBatch<Wrapped> for Vec<Message<T>> {
    fn from_batch(input: Invocation<'_>, ctx: &CallContext) -> Result<Self, HandlerError> {
        decode_each(input, |one| {
            <Message<T> as FromInput<Wrapped>>::from_input(one, ctx)
        })
    }
}

impl<P: FromParts> FromBatch<Extracted> for P {
    fn from_batch(input: Invocation<'_>, ctx: &CallContext) -> Result<Self, HandlerError> {
        P::from_parts(input, ctx).map_err(HandlerError::decode)
    }

    fn needs_state() -> Option<StateNeed> {
        <P as FromParts>::needs_state()
    }
}

/// Decodes every message of the batch with `one`; the positions that fail are named in one
/// `decode` error (with the first failure's message).
fn decode_each<T>(
    input: Invocation<'_>,
    mut one: impl FnMut(Invocation<'_>) -> Result<T, ConvertError>,
) -> Result<Vec<T>, HandlerError> {
    let mut items = Vec::with_capacity(input.batch.len());
    let mut bad = Vec::new();
    let mut first_error = None;
    for (position, message) in input.batch.iter().enumerate() {
        match one(Invocation::single(message, input.attempt)) {
            Ok(item) => items.push(item),
            Err(e) => {
                bad.push(position);
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        None => Ok(items),
        Some(e) => Err(HandlerError::decode(e).only(bad)),
    }
}

/// An async function or closure cloud-stream can call with a batch: one argument is the batch
/// (`Vec<T>` or `Vec<Message<T>>`), the others extractors, in any order; it returns a future
/// of `Result<T, HandlerError>`. Implemented for functions of up to six arguments.
#[diagnostic::on_unimplemented(
    message = "this cannot be a cloud-stream batch handler",
    label = "not a batch handler",
    note = "a batch handler is an async fn or closure returning `Result<T, HandlerError>` that takes the batch as `Vec<T>` or `Vec<Message<T>>`, besides extractors such as `State<S>`"
)]
pub trait BatchHandlerFn<Args, M>: Send + Sync + 'static {
    /// What the handler's future yields on success.
    type Output;
    /// The handler's future.
    type Future: Future<Output = Result<Self::Output, HandlerError>> + Send + 'static;
    /// Takes every argument from the batch `input` and calls the handler.
    fn invoke(
        &self,
        input: Invocation<'_>,
        ctx: &CallContext,
    ) -> Result<Self::Future, HandlerError>;
    /// The application states the arguments need (checked by `build()`).
    fn needs_state() -> Vec<StateNeed>;
}

/// A batch handler adapted to [`ErasedFunction`].
pub(crate) struct BatchAdapter<F, Args, M, MO> {
    f: F,
    /// A consumer's failed positions are kept; a function's error fails the whole batch.
    consumer: bool,
    _types: PhantomData<fn(Args, M, MO)>,
}

impl<F, Args, M, MO> BatchAdapter<F, Args, M, MO> {
    /// A batch function (`consumer: false`) or consumer.
    pub(crate) fn new(f: F, consumer: bool) -> Self {
        BatchAdapter {
            f,
            consumer,
            _types: PhantomData,
        }
    }
}

impl<F, Args, M, MO> ErasedFunction for BatchAdapter<F, Args, M, MO>
where
    F: BatchHandlerFn<Args, M>,
    F::Output: IntoOutput<MO>,
    Args: 'static,
    M: 'static,
    MO: 'static,
{
    fn call(&self, input: Invocation<'_>, ctx: &Arc<CallContext>) -> BoxFuture<CallResult> {
        let call = match self.f.invoke(input, ctx) {
            Ok(call) => call,
            Err(e) => return failed(e),
        };
        let ctx = Arc::clone(ctx);
        let consumer = self.consumer;
        Box::pin(async move {
            let out = call
                .await
                .map_err(|e| if consumer { e } else { e.whole() })?;
            // No input headers are propagated: a batch has many, and none is the output's.
            output_of(out, &ctx, &Headers::new())
        })
    }

    fn needs_state(&self) -> Vec<StateNeed> {
        F::needs_state()
    }

    fn is_batch(&self) -> bool {
        true
    }
}
