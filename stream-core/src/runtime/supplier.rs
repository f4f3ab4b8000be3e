//! Running a supplier: polled every `poller.fixed-delay`, or driven by a stream.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::control::BindingState;
use super::output::SharedOutput;
use super::retry::RetryPolicy;
use crate::function::registry::apply_steps_to_all;
use crate::function::{CallContext, ErasedFunction, Handler, HandlerError};
use crate::message::RawMessage;
use crate::observe::METRIC_FAILED;

/// A running supplier binding.
pub(crate) struct SupplierRun {
    pub binding: String,
    pub source: Handler,
    /// Functions composed after the supplier (`supplier|fn`).
    pub steps: Vec<Arc<dyn ErasedFunction>>,
    pub ctx: Arc<CallContext>,
    pub output: SharedOutput,
    pub fixed_delay: Duration,
    pub initial_delay: Duration,
    pub max_messages_per_poll: u32,
    pub state: watch::Receiver<BindingState>,
    pub shutdown: CancellationToken,
    /// Retries for sending outputs (the supplier's value must not be lost on a transient
    /// broker error).
    pub send_policy: RetryPolicy,
}

impl SupplierRun {
    pub async fn run(mut self) {
        match self.source.clone() {
            Handler::PolledSupplier(s) => self.run_polled(s).await,
            Handler::StreamSupplier(slot) => {
                let factory = slot.lock().ok().and_then(|mut g| g.take());
                match factory {
                    Some(f) => {
                        let stream = f(Arc::clone(&self.ctx));
                        self.run_stream(stream).await
                    }
                    None => {
                        tracing::error!(binding = %self.binding, "stream supplier was already started once")
                    }
                }
            }
            _ => tracing::error!(binding = %self.binding, "not a supplier"),
        }
    }

    /// Waits while paused or stopped; false on shutdown.
    async fn wait_running(&mut self) -> bool {
        loop {
            if *self.state.borrow_and_update() == BindingState::Running {
                return true;
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return false,
                c = self.state.changed() => if c.is_err() { return false },
            }
        }
    }

    async fn run_polled(&mut self, supplier: Arc<dyn crate::function::ErasedSupplier>) {
        tokio::select! {
            _ = self.shutdown.cancelled() => return,
            _ = tokio::time::sleep(self.initial_delay) => {}
        }
        loop {
            if !self.wait_running().await {
                return;
            }
            for _ in 0..self.max_messages_per_poll.max(1) {
                let produced =
                    crate::function::handler::unwind_safe(|| supplier.call(Arc::clone(&self.ctx)))
                        .await;
                self.emit(produced).await;
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.fixed_delay) => {}
            }
        }
    }

    async fn run_stream(
        &mut self,
        mut stream: futures::stream::BoxStream<'static, Result<Vec<RawMessage>, HandlerError>>,
    ) {
        loop {
            if !self.wait_running().await {
                return;
            }
            let next = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                n = stream.next() => n,
            };
            match next {
                Some(item) => self.emit(item).await,
                None => {
                    tracing::info!(binding = %self.binding, "supplier stream ended");
                    return;
                }
            }
        }
    }

    async fn emit(&self, produced: Result<Vec<RawMessage>, HandlerError>) {
        let messages = match produced {
            Ok(m) if self.steps.is_empty() => Ok(m),
            Ok(m) => apply_steps_to_all(&self.steps, m, &self.ctx).await,
            Err(e) => Err(e),
        };
        let messages = match messages {
            Ok(m) => m,
            Err(e) => {
                metrics::counter!(METRIC_FAILED, "binding" => self.binding.clone()).increment(1);
                tracing::warn!(binding = %self.binding, error = %e, "supplier failed");
                return;
            }
        };
        for m in messages {
            let mut attempt = 1;
            loop {
                match self.output.send(m.clone(), None).await {
                    Ok(()) => break,
                    Err(e) if self.send_policy.should_retry(&e, attempt) => {
                        tracing::warn!(binding = %self.binding, error = %e, attempt, "supplier output not confirmed; retrying");
                        tokio::time::sleep(self.send_policy.backoff(attempt)).await;
                        attempt += 1;
                    }
                    Err(e) => {
                        metrics::counter!(METRIC_FAILED, "binding" => self.binding.clone())
                            .increment(1);
                        tracing::error!(binding = %self.binding, error = %e, attempts = attempt, "supplier output lost after retries");
                        break;
                    }
                }
            }
        }
    }
}
