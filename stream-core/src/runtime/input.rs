//! Running one input binding: intake from the binder, per-key lanes for concurrency, the
//! retry loop (the runtime is the single retry owner), output sending, and settling.
//!
//! Order: deliveries with the same ordering key (the binder's, else the `partition-key`
//! header) always go to the same lane, and a lane handles one delivery at a time, so per-key
//! order holds for any `concurrency`. Deliveries without a key go to any free lane.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::control::BindingState;
use super::inbox::{Claim, Claimed, Inbox};
use super::output::SharedOutput;
use super::retry::RetryPolicy;
use crate::binder::{
    delayed_redeliveries, BatchLimits, Binder, DeadLetter, Delivery, Subscription,
};
use crate::bridge::StreamBridge;
use crate::function::handler::unwind_safe;
use crate::function::{CallContext, ErasedFunction, HandlerError, Invocation};
use crate::message::{header, RawMessage};
use crate::observe::{BindingMetrics, CallObserver, HandlerCall, SecondsSince, TraceContext};
use crate::plan::EffectiveBinding;

/// Everything needed to handle one delivery of an input binding.
pub(crate) struct InputProcessor {
    pub binding: Arc<EffectiveBinding>,
    pub handler: Arc<dyn ErasedFunction>,
    pub ctx: Arc<CallContext>,
    pub policy: RetryPolicy,
    pub output: Option<SharedOutput>,
    pub bridge: StreamBridge,
    pub metrics: BindingMetrics,
    /// The idempotent consumer's inbox (`consumer.idempotent`).
    pub inbox: Option<Inbox>,
    /// The function definition bound, for the observer.
    pub function: Arc<str>,
    /// Sees each call (`StreamAppBuilder::call_observer`).
    pub observer: Option<Arc<dyn CallObserver>>,
}

impl InputProcessor {
    /// Handles `delivery`, or acks it unhandled when the inbox has seen its key.
    /// Handles `delivery` on the consuming task (one lane needs no worker); `false` when
    /// shutdown started meanwhile: the delivery then gets until the drain `deadline` to
    /// finish and, abandoned, is redelivered by the broker.
    async fn process_here(
        &self,
        destination: &str,
        delivery: Box<dyn Delivery>,
        deadline: &watch::Receiver<Option<tokio::time::Instant>>,
        cancelled: std::pin::Pin<&mut tokio_util::sync::WaitForCancellationFuture<'_>>,
    ) -> bool {
        let processing = self.process(destination, delivery);
        tokio::pin!(processing);
        tokio::select! {
            biased;
            _ = &mut processing => true,
            _ = cancelled => {
                let deadline = drain_deadline(deadline);
                if tokio::time::timeout_at(deadline, processing).await.is_err() {
                    tracing::warn!("shutdown deadline reached; abandoning the in-flight delivery (it will be redelivered)");
                }
                false
            }
        }
    }

    async fn process(&self, destination: &str, delivery: Box<dyn Delivery>) {
        let Some(inbox) = &self.inbox else {
            return self.handle(destination, delivery, None).await;
        };
        match inbox.claim(delivery.message()).await {
            Claim::Duplicate => {
                self.metrics.duplicates.increment(1);
                if let Err(e) = delivery.ack().await {
                    tracing::warn!(binding = %self.binding.name, error = %e, "ack of a duplicate failed; the broker will redeliver");
                }
            }
            Claim::New(key) => {
                let claimed = Claimed::new(inbox, key);
                self.handle(destination, delivery, Some(claimed)).await
            }
            Claim::Keyless => self.handle(destination, delivery, None).await,
        }
    }

    /// Handles `delivery` to the end: success and ack, or dead-letter after the last attempt.
    /// A claimed inbox key is completed before the ack (else released when dropped).
    async fn handle(
        &self,
        destination: &str,
        delivery: Box<dyn Delivery>,
        claimed: Option<Claimed<'_>>,
    ) {
        let binding = self.binding.name.as_str();
        self.metrics.consumed.increment(1);
        // The trace context is worked out when first needed (an output, or an enabled span):
        // a consumer without outputs and spans off never looks for the inbound `traceparent`.
        // With an output it is needed anyway: made now, it costs no lazy initialisation (a
        // `Once` call; `OnceLock::from` makes one too) per delivery.
        // The delivery keeps the message (for a retry or the dead-letter hand-off) and lends
        // it: the handler decodes it before its future is made, so it is never copied.
        let message = delivery.message();
        let inbound_trace =
            || TraceContext::inbound_or_root(message.headers.get(header::TRACEPARENT));
        let eager = self.output.is_some().then(inbound_trace);
        let lazy = std::sync::OnceLock::new();
        let trace_of = || eager.unwrap_or_else(|| *lazy.get_or_init(inbound_trace));
        let group = self.binding.group.as_deref().unwrap_or("");
        let mut attempt = 1u32;
        let error = loop {
            let span = tracing::info_span!(
                "delivery",
                binding = %binding,
                destination = %destination,
                group = %group,
                attempt,
                trace_id = %trace_of().trace_id_hex(),
            );
            let started = Instant::now();
            // Each branch makes its future in place (no move of a future built before). A
            // disabled span (the usual case: no subscriber wants `info` spans) is not entered
            // around every poll.
            let input = Invocation::single(message, Some(attempt));
            let result = if span.is_disabled() {
                self.attempt(input, &trace_of).await
            } else {
                self.attempt(input, &trace_of)
                    .instrument(span.clone())
                    .await
            };
            self.metrics.handler_seconds.record(SecondsSince(started));
            self.observe(message, attempt, &result);
            let error = match result {
                Ok(()) => {
                    if let Some(c) = claimed {
                        c.complete();
                    }
                    return ack(delivery, &span).await;
                }
                Err(e) => e,
            };
            self.metrics.failed.increment(1);
            if !self.policy.should_retry(&error, attempt) {
                span.in_scope(
                    || tracing::warn!(error = %error, attempts = attempt, "attempts used up"),
                );
                break error;
            }
            let wait = self.policy.backoff(attempt);
            span.in_scope(|| tracing::info!(error = %error, retry_in_ms = wait.as_millis() as u64, "attempt failed; will retry"));
            tokio::time::sleep(wait).await;
            self.metrics.retried.increment(1);
            attempt += 1;
        };
        drop(claimed);
        self.give_up(delivery, &error, attempt).await;
    }

    /// After the last in-process attempt: hands `delivery` back to the broker for its next
    /// delayed redelivery (`redelivery-delays`) when `error` is retryable and one is left,
    /// else dead-letters it (counting the attempts of every earlier redelivery too).
    async fn give_up(&self, delivery: Box<dyn Delivery>, error: &HandlerError, attempt: u32) {
        let done = delayed_redeliveries(&delivery.message().headers);
        let Some(delay) = self.policy.redelivery_delay(error, done) else {
            let attempts = done
                .saturating_mul(self.policy.max_attempts)
                .saturating_add(attempt);
            return self.dead_letter(delivery, error, attempts).await;
        };
        let binding = self.binding.name.as_str();
        tracing::info!(binding, error = %error, redelivery = done + 1, in_ms = delay.as_millis() as u64, "handed back to the broker for a delayed redelivery");
        match delivery.redeliver_after(delay, done + 1).await {
            Ok(()) => self.metrics.retried.increment(1),
            Err(e) => {
                tracing::error!(binding, error = %e, "delayed redelivery failed; the broker will redeliver")
            }
        }
    }

    /// Moves `delivery` to the binding's dead letters after `attempts` failed with `error`.
    async fn dead_letter(&self, delivery: Box<dyn Delivery>, error: &HandlerError, attempts: u32) {
        let reason = DeadLetter {
            error_message: error.message().to_owned(),
            error_kind: error.kind().to_owned(),
            attempts,
        };
        match delivery.dead_letter(reason).await {
            Ok(()) => self.metrics.dead_lettered.increment(1),
            Err(e) => {
                tracing::error!(binding = %self.binding.name, error = %e, "dead-lettering failed; the broker will redeliver")
            }
        }
    }

    /// Handles a batch (`batch-mode`) to its end: acked once the handler succeeded and its
    /// outputs were confirmed, or dead-lettered after the last attempt. A handler error naming
    /// positions ([`HandlerError::only`]) acks the others and retries only those; messages
    /// that do not decode are dead-lettered at once and the rest handled without them.
    async fn process_batch(&self, destination: &str, mut pending: Deliveries) {
        self.metrics.consumed.increment(pending.len() as u64);
        let span =
            tracing::info_span!("batch", binding = %self.binding.name, destination = %destination);
        let mut attempt = 1u32;
        while !pending.is_empty() {
            let messages: Vec<&RawMessage> = pending.iter().map(|d| d.message()).collect();
            let input = Invocation {
                message: messages[0],
                attempt: Some(attempt),
                batch: &messages,
            };
            let trace = TraceContext::inbound_or_root(messages[0].headers.get(header::TRACEPARENT));
            let started = Instant::now();
            let result = self
                .attempt(input, &|| trace)
                .instrument(span.clone())
                .await;
            self.metrics.handler_seconds.record(SecondsSince(started));
            for message in &messages {
                self.observe(message, attempt, &result);
            }
            drop(messages);
            let error = match result {
                Ok(()) => break,
                Err(error) => error,
            };
            self.metrics.failed.increment(1);
            let (failed, rest) = split_failed(pending, error.failed_positions());
            if error.is_decode() {
                // The handler was not called: the rest are handled without these.
                for d in failed {
                    self.give_up(d, &error, attempt).await;
                }
                pending = rest;
                continue;
            }
            for d in rest {
                ack(d, &span).await;
            }
            pending = failed;
            if !self.policy.should_retry(&error, attempt) {
                span.in_scope(|| tracing::warn!(error = %error, attempts = attempt, messages = pending.len(), "the batch's attempts are used up"));
                for d in pending {
                    self.give_up(d, &error, attempt).await;
                }
                return;
            }
            let wait = self.policy.backoff(attempt);
            span.in_scope(|| tracing::info!(error = %error, retry_in_ms = wait.as_millis() as u64, messages = pending.len(), "batch failed; will retry"));
            tokio::time::sleep(wait).await;
            self.metrics.retried.increment(1);
            attempt += 1;
        }
        for d in pending {
            ack(d, &span).await;
        }
    }

    /// Shows one call's end to the observer, if any.
    fn observe(&self, input: &RawMessage, attempt: u32, result: &Result<(), HandlerError>) {
        if let Some(observer) = &self.observer {
            observer.called(HandlerCall {
                function: &self.function,
                binding: &self.binding.name,
                input,
                attempt,
                outcome: result.as_ref().map(|_| ()),
            });
        }
    }

    /// One attempt: invoke the handler and send every output, awaiting confirms.
    async fn attempt(
        &self,
        input: Invocation<'_>,
        trace: &(dyn Fn() -> TraceContext + Sync),
    ) -> Result<(), HandlerError> {
        let outputs = unwind_safe(|| self.handler.call(input, &self.ctx)).await?;
        for out in outputs {
            if let Some(dest) = out.headers.get_str(header::SENDTO_DESTINATION) {
                let dest = dest.to_owned();
                self.bridge
                    .send_raw_in_trace(None, &dest, out, Some(&trace()))
                    .await
                    .map_err(|e| HandlerError::output(&e, e.retry()))?;
                continue;
            }
            match &self.output {
                Some(o) => o.send(out, Some(&trace())).await?,
                None => {
                    tracing::debug!(binding = %self.binding.name, "output dropped: the binding has no output")
                }
            }
        }
        Ok(())
    }
}

/// Acknowledges `delivery` (at once when the binder can), warning in `span` if that fails.
async fn ack(mut delivery: Box<dyn Delivery>, span: &tracing::Span) {
    let acked = match delivery.try_ack() {
        Some(result) => result,
        None => delivery.ack().await,
    };
    if let Err(e) = acked {
        span.in_scope(|| tracing::warn!(error = %e, "ack failed; the broker will redeliver"));
    }
}

/// The ordering key of a delivery: the binder's, else the `partition-key` header.
fn ordering_key(delivery: &dyn Delivery) -> Option<u64> {
    let key = delivery.ordering_key().or_else(|| {
        delivery
            .message()
            .headers
            .get_str(header::PARTITION_KEY)
            .map(str::to_owned)
    })?;
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    Some(h.finish())
}

/// Deliveries of one batch, in delivery order.
type Deliveries = Vec<Box<dyn Delivery>>;

/// The deliveries at `positions` (all of them when `None`, or when no position is in range:
/// nothing is acked on a handler's word that names no message of the batch) and the rest.
fn split_failed(pending: Deliveries, positions: Option<&[usize]>) -> (Deliveries, Deliveries) {
    let Some(positions) = positions.filter(|p| p.iter().any(|i| *i < pending.len())) else {
        return (pending, Vec::new());
    };
    let (failed, rest): (Vec<_>, Vec<_>) = pending
        .into_iter()
        .enumerate()
        .partition(|(i, _)| positions.contains(i));
    let unnumbered = |v: Vec<(usize, Box<dyn Delivery>)>| v.into_iter().map(|(_, d)| d).collect();
    (unnumbered(failed), unnumbered(rest))
}

/// Fills a batch after its `first` delivery: every delivery ready now, then, while it is not
/// full, each next one that comes within `receive_timeout`.
async fn fill_batch(
    sub: &mut dyn Subscription,
    first: Box<dyn Delivery>,
    limits: BatchLimits,
) -> Deliveries {
    let mut batch = vec![first];
    while batch.len() < limits.max_messages {
        let next = match sub.try_next() {
            Some(next) => Some(next),
            None if limits.receive_timeout.is_zero() => None,
            None => tokio::time::timeout(limits.receive_timeout, sub.next())
                .await
                .ok()
                .flatten(),
        };
        match next {
            Some(Ok(d)) => batch.push(d),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "receive failed; handling the batch received so far");
                break;
            }
            None => break,
        }
    }
    batch
}

/// Lanes: one sequential worker per unit of concurrency.
struct Lanes {
    senders: Vec<mpsc::Sender<Box<dyn Delivery>>>,
    tasks: JoinSet<()>,
    next: usize,
}

impl Lanes {
    fn start(processor: &Arc<InputProcessor>, destination: &str, count: u32) -> Self {
        let mut senders = Vec::new();
        let mut tasks = JoinSet::new();
        for _ in 0..count.max(1) {
            let (tx, mut rx) = mpsc::channel::<Box<dyn Delivery>>(1);
            let p = Arc::clone(processor);
            let dest = destination.to_owned();
            tasks.spawn(async move {
                while let Some(d) = rx.recv().await {
                    p.process(&dest, d).await;
                }
            });
            senders.push(tx);
        }
        Lanes {
            senders,
            tasks,
            next: 0,
        }
    }

    /// Hands `delivery` to its lane; waits while that lane is busy (backpressure).
    async fn dispatch(&mut self, delivery: Box<dyn Delivery>) {
        let n = self.senders.len();
        let lane = match ordering_key(delivery.as_ref()) {
            Some(h) => (h % n as u64) as usize,
            None => {
                // Any free lane, starting after the last one used.
                let mut delivery = delivery;
                for i in 0..n {
                    let lane = (self.next + i) % n;
                    match self.senders[lane].try_send(delivery) {
                        Ok(()) => {
                            self.next = (lane + 1) % n;
                            return;
                        }
                        Err(mpsc::error::TrySendError::Full(d))
                        | Err(mpsc::error::TrySendError::Closed(d)) => delivery = d,
                    }
                }
                let lane = self.next;
                self.next = (lane + 1) % n;
                // A closed lane drops the delivery, which the binder requeues.
                let _ = self.senders[lane].send(delivery).await;
                return;
            }
        };
        let _ = self.senders[lane].send(delivery).await;
    }

    /// Stops intake and lets the lanes finish what they hold, until `deadline`; whatever is
    /// still running then is abandoned (dropped deliveries are redelivered by the broker).
    async fn drain(mut self, deadline: Option<tokio::time::Instant>) {
        self.senders.clear();
        let all_done = async { while self.tasks.join_next().await.is_some() {} };
        match deadline {
            None => all_done.await,
            Some(d) => {
                if tokio::time::timeout_at(d, all_done).await.is_err() {
                    tracing::warn!("shutdown deadline reached; abandoning in-flight deliveries (they will be redelivered)");
                    self.tasks.abort_all();
                    while self.tasks.join_next().await.is_some() {}
                }
            }
        }
    }
}

/// When in-flight work must be finished by, once shutdown started (30 s if no deadline was set).
fn drain_deadline(
    deadline: &watch::Receiver<Option<tokio::time::Instant>>,
) -> tokio::time::Instant {
    let d = *deadline.borrow();
    d.unwrap_or_else(|| tokio::time::Instant::now() + std::time::Duration::from_secs(30))
}

/// Shared state of a running input binding.
pub(crate) struct InputRun {
    pub processor: Arc<InputProcessor>,
    pub binder: Arc<dyn Binder>,
    pub destination: String,
    pub state: watch::Receiver<BindingState>,
    pub shutdown: CancellationToken,
    /// Set when shutdown starts: the drain deadline.
    pub deadline: watch::Receiver<Option<tokio::time::Instant>>,
    pub retry_interval: std::time::Duration,
}

enum Exit {
    Shutdown,
    Stopped,
    Closed,
}

impl InputRun {
    /// Runs until shutdown, re-binding after `stop`/`start`. `initial` is the subscription
    /// bound at start-up (so messages sent right after `build()` are not missed); `None` when
    /// the binding does not start automatically.
    pub async fn run(mut self, initial: Option<Box<dyn Subscription>>) {
        let mut pending = initial;
        loop {
            if !self.wait_until_running().await {
                if let Some(sub) = pending {
                    sub.close().await;
                }
                return;
            }
            let sub = match pending.take() {
                Some(sub) => sub,
                None => match self.subscribe().await {
                    Some(sub) => sub,
                    None => return,
                },
            };
            let exit = self.consume(sub).await;
            if matches!(exit, Exit::Shutdown) {
                return;
            }
            if matches!(exit, Exit::Closed) {
                tracing::warn!(binding = %self.processor.binding.name, destination = %self.destination, "subscription closed by the binder");
                return;
            }
        }
    }

    /// Waits for `Running`; false on shutdown.
    async fn wait_until_running(&mut self) -> bool {
        loop {
            if *self.state.borrow_and_update() == BindingState::Running {
                return true;
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return false,
                changed = self.state.changed() => if changed.is_err() { return false },
            }
        }
    }

    /// Binds, retrying every `binding-retry-interval` while the broker refuses.
    async fn subscribe(&self) -> Option<Box<dyn Subscription>> {
        let b = &self.processor.binding;
        let spec = b.consumer_spec();
        loop {
            match self
                .binder
                .bind_consumer(&self.destination, b.group.as_deref(), &spec)
                .await
            {
                Ok(s) => return Some(s),
                Err(e) => {
                    tracing::error!(binding = %b.name, destination = %self.destination, error = %e, retry_in_s = self.retry_interval.as_secs(), "cannot bind consumer");
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(self.retry_interval.max(std::time::Duration::from_millis(100))) => {}
                    }
                }
            }
        }
    }

    /// Waits out a pause: `Some(exit)` when consuming must end, `None` once running.
    async fn until_running(&mut self) -> Option<Exit> {
        loop {
            let state = *self.state.borrow_and_update();
            match state {
                BindingState::Stopped => return Some(Exit::Stopped),
                BindingState::Running => return None,
                BindingState::Paused => tokio::select! {
                    _ = self.shutdown.cancelled() => return Some(Exit::Shutdown),
                    changed = self.state.changed() => if changed.is_err() { return Some(Exit::Shutdown) },
                },
            }
        }
    }

    /// Batch mode: one batch at a time, so order holds across the binding; filled as the
    /// subscription's [`BatchLimits`] say.
    async fn consume_batches(&mut self, mut sub: Box<dyn Subscription>) -> Exit {
        let limits = sub.batch_limits();
        let exit = loop {
            if let Some(exit) = self.until_running().await {
                break exit;
            }
            let next = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break Exit::Shutdown,
                changed = self.state.changed() => match changed {
                    Ok(()) => continue,
                    Err(_) => break Exit::Shutdown,
                },
                next = sub.next() => next,
            };
            let first = match next {
                Some(Ok(first)) => first,
                Some(Err(e)) => {
                    tracing::warn!(binding = %self.processor.binding.name, error = %e, "receive failed");
                    tokio::select! {
                        _ = self.shutdown.cancelled() => break Exit::Shutdown,
                        _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => continue,
                    }
                }
                None => break Exit::Closed,
            };
            let batch = fill_batch(sub.as_mut(), first, limits).await;
            let processing = self.processor.process_batch(&self.destination, batch);
            tokio::pin!(processing);
            tokio::select! {
                biased;
                _ = &mut processing => {}
                _ = self.shutdown.cancelled() => {
                    let deadline = drain_deadline(&self.deadline);
                    if tokio::time::timeout_at(deadline, processing).await.is_err() {
                        tracing::warn!("shutdown deadline reached; abandoning the in-flight batch (it will be redelivered)");
                    }
                    break Exit::Shutdown;
                }
            }
        };
        sub.close().await;
        exit
    }

    async fn consume(&mut self, mut sub: Box<dyn Subscription>) -> Exit {
        if self.processor.binding.consumer.batch_mode {
            return self.consume_batches(sub).await;
        }
        let concurrency = self.processor.binding.consumer.concurrency.max(1);
        // One lane needs no worker task: the delivery is processed right here, which saves a
        // task hand-off (and often a thread wake-up) per message.
        let mut lanes = (concurrency > 1)
            .then(|| Lanes::start(&self.processor, &self.destination, concurrency));
        let exit = 'bound: loop {
            if let Some(exit) = self.until_running().await {
                break exit;
            }
            // Running: take deliveries until the state changes or shutdown starts. The two
            // watch futures are created once per running phase, not once per delivery.
            let shutdown = self.shutdown.clone();
            let cancelled = shutdown.cancelled();
            tokio::pin!(cancelled);
            // A second receiver at the same version tells whether the state changed without
            // polling `changed` (which holds the first).
            let state = self.state.clone();
            let changed = self.state.changed();
            tokio::pin!(changed);
            loop {
                // Fast path: a delivery is ready and neither shutdown nor a state change is
                // pending (those go through the select below, which sees them first), so no
                // future is polled or boxed to get it. The budget keeps this loop from
                // hogging its worker while deliveries keep coming.
                let ready = if shutdown.is_cancelled() || state.has_changed().unwrap_or(true) {
                    None
                } else {
                    sub.try_next()
                };
                let next = match ready {
                    Some(next) => {
                        tokio::task::coop::consume_budget().await;
                        Some(next)
                    }
                    None => tokio::select! {
                        biased;
                        _ = &mut cancelled => break 'bound Exit::Shutdown,
                        result = &mut changed => {
                            if result.is_err() {
                                break 'bound Exit::Shutdown;
                            }
                            continue 'bound;
                        }
                        next = sub.next() => next,
                    },
                };
                match next {
                    Some(Ok(delivery)) => match lanes.as_mut() {
                        Some(lanes) => {
                            tokio::select! {
                                biased;
                                // Shutdown while every lane is busy: the delivery is dropped
                                // unsettled, so the broker redelivers it.
                                _ = &mut cancelled => break 'bound Exit::Shutdown,
                                _ = lanes.dispatch(delivery) => {}
                            }
                        }
                        None => {
                            let (to, deadline) = (&self.destination, &self.deadline);
                            let done = self.processor.process_here(
                                to,
                                delivery,
                                deadline,
                                cancelled.as_mut(),
                            );
                            if !done.await {
                                break 'bound Exit::Shutdown;
                            }
                        }
                    },
                    Some(Err(e)) => {
                        tracing::warn!(binding = %self.processor.binding.name, error = %e, "receive failed");
                        tokio::select! {
                            _ = &mut cancelled => break 'bound Exit::Shutdown,
                            _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                        }
                    }
                    None => break 'bound Exit::Closed,
                }
            }
        };
        if let Some(lanes) = lanes {
            let deadline = match exit {
                Exit::Shutdown => Some(drain_deadline(&self.deadline)),
                _ => None,
            };
            lanes.drain(deadline).await;
        }
        sub.close().await;
        exit
    }
}
