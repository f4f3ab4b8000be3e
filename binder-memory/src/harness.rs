//! A test harness over a recording [`MemoryBroker`], in the spirit of Spring's test binder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use stream_core::message::{header, Message, RawMessage};
use stream_core::observe::{CallObserver, HandlerCall};
use stream_core::StreamAppBuilder;

use crate::binder::MemoryBinderFactory;
use crate::broker::MemoryBroker;

/// How often [`TestHarness::wait_for_dead_letters`] and [`TestHarness::wait_settled`] look.
const POLL: Duration = Duration::from_millis(5);

/// Why [`TestHarness::receive_json`] has no value.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// Nothing was sent to the destination in time.
    #[error("nothing sent to `{destination}` within {waited:?}")]
    Timeout {
        /// The destination.
        destination: String,
        /// How long the harness waited.
        waited: Duration,
    },
    /// What was sent is not JSON of the asked type.
    #[error("the message sent to `{destination}` is not the JSON expected: {source}")]
    Decode {
        /// The destination.
        destination: String,
        /// The decoding error.
        source: serde_json::Error,
    },
}

/// Drives an application in tests: register [`TestHarness::factory`] with the application (as the
/// `memory` binder type), then [`send`](TestHarness::send) input messages and
/// [`receive`](TestHarness::receive) what the application published.
///
/// The harness's broker records every message published to every destination (by the
/// application, by the harness, and dead letters) from the moment the harness is created,
/// independently of subscriptions; `receive` consumes those records in order. Queues and
/// subscriptions behave exactly as in production.
///
/// ```
/// # use std::time::Duration;
/// # use binder_memory::TestHarness;
/// # use stream_core::message::Message;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let harness = TestHarness::new();
/// harness.send("orders", Message::new("hello".into())).await;
/// let got = harness.receive("orders", Duration::from_secs(1)).await.unwrap();
/// assert_eq!(&got.payload[..], b"hello");
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TestHarness {
    broker: MemoryBroker,
    calls: Arc<CallLog>,
}

/// One recorded handler call (see [`TestHarness::calls`]).
#[derive(Clone, Debug)]
pub struct Call {
    /// The message the handler was called with.
    pub input: RawMessage,
    /// The delivery attempt, 1-based.
    pub attempt: u32,
    /// The error the call failed with (`None`: it succeeded, outputs confirmed).
    pub error: Option<String>,
}

/// Every handler call of the attached applications, by function definition.
#[derive(Debug, Default)]
struct CallLog {
    calls: Mutex<HashMap<String, Vec<Call>>>,
    added: tokio::sync::Notify,
}

impl CallObserver for CallLog {
    fn called(&self, call: HandlerCall<'_>) {
        let record = Call {
            input: call.input.clone(),
            attempt: call.attempt,
            error: call.outcome.err().map(|e| e.message().to_owned()),
        };
        // A poisoned log only lost a record of a test that already panicked.
        if let Ok(mut calls) = self.calls.lock() {
            calls
                .entry(call.function.to_owned())
                .or_default()
                .push(record);
        }
        self.added.notify_waiters();
    }
}

impl Default for TestHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHarness {
    /// A harness over a fresh recording broker (default capacity).
    pub fn new() -> Self {
        TestHarness::with_broker(MemoryBroker::recording())
    }

    /// A harness over `broker` (which should be [recording](MemoryBroker::recording) for
    /// `receive` to see anything).
    pub fn with_broker(broker: MemoryBroker) -> Self {
        TestHarness {
            broker,
            calls: Arc::default(),
        }
    }

    /// The broker (a cheap handle).
    pub fn broker(&self) -> MemoryBroker {
        self.broker.clone()
    }

    /// A binder factory whose binders all use this harness's broker.
    pub fn factory(&self) -> MemoryBinderFactory {
        MemoryBinderFactory::with_broker(self.broker.clone())
    }

    /// Attaches `builder`'s application to this harness: its memory binders use the harness's
    /// broker ([`factory`](Self::factory)) and its handler calls are recorded
    /// ([`calls`](Self::calls)).
    pub fn attach(&self, builder: StreamAppBuilder) -> StreamAppBuilder {
        let calls: Arc<dyn CallObserver> = self.calls.clone();
        builder
            .binder_factory(Arc::new(self.factory()))
            .call_observer(calls)
    }

    /// The calls of function `function` (its definition: `reserve`, or `a|b`) so far, in order,
    /// each attempt of a retried message on its own: how many, with what, and how each ended.
    /// Needs [`attach`](Self::attach).
    pub fn calls(&self, function: &str) -> Vec<Call> {
        self.calls
            .calls
            .lock()
            .map(|c| c.get(function).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Waits until `function` was called at least `n` times, then returns its calls; what
    /// there is when `timeout` passes.
    pub async fn wait_for_calls(&self, function: &str, n: usize, timeout: Duration) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let added = self.calls.added.notified();
            tokio::pin!(added);
            added.as_mut().enable();
            let calls = self.calls(function);
            if calls.len() >= n {
                return calls;
            }
            if tokio::time::timeout_at(deadline, added).await.is_err() {
                return self.calls(function);
            }
        }
    }

    /// Waits until everything sent so far has settled: every consumed queue is empty with
    /// nothing in flight (handlers, their retries and back-off, and what their outputs caused
    /// downstream), seen twice in a row; `false` if that does not happen within `timeout`.
    /// Wolverine's tracked session, for the memory binder.
    pub async fn wait_settled(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut quiet_looks = 0;
        while quiet_looks < 2 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
            quiet_looks = if self.is_quiet() { quiet_looks + 1 } else { 0 };
        }
        true
    }

    /// Whether no queue with consumers holds a message queued or in flight (a queue nobody
    /// consumes, such as a dead-letter destination, is not work that can settle).
    fn is_quiet(&self) -> bool {
        self.broker.held_for_members() == 0
    }

    /// Publishes `message` to `destination` (partition 0) as a producer would, waiting for room.
    ///
    /// # Panics
    /// If the broker was shut down.
    pub async fn send(&self, destination: &str, message: RawMessage) {
        self.broker
            .publish(destination, message, 0)
            .await
            .unwrap_or_else(|e| panic!("TestHarness::send to {destination}: {e}"));
    }

    /// Serializes `value` as JSON and publishes it with `content-type: application/json`.
    pub async fn send_json<T: serde::Serialize + ?Sized>(
        &self,
        destination: &str,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        let payload = serde_json::to_vec(value)?;
        let message =
            Message::new(Bytes::from(payload)).header(header::CONTENT_TYPE, "application/json");
        self.send(destination, message).await;
        Ok(())
    }

    /// The next message recorded as sent to `destination` (oldest first), waiting up to
    /// `timeout`; `None` if none arrives in time. Works under `tokio::time::pause()`.
    pub async fn receive(&self, destination: &str, timeout: Duration) -> Option<RawMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.receive_until(destination, deadline).await
    }

    /// The next message recorded as sent to `destination`, decoded from JSON as `T`, waiting
    /// up to `timeout`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use binder_memory::TestHarness;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let harness = TestHarness::new();
    /// harness.send_json("orders", &serde_json::json!({"id": 7})).await.unwrap();
    /// let order: serde_json::Value = harness.receive_json("orders", Duration::from_secs(1)).await.unwrap();
    /// assert_eq!(order["id"], 7);
    /// # }
    /// ```
    pub async fn receive_json<T: serde::de::DeserializeOwned>(
        &self,
        destination: &str,
        timeout: Duration,
    ) -> Result<T, ReceiveError> {
        let message =
            self.receive(destination, timeout)
                .await
                .ok_or_else(|| ReceiveError::Timeout {
                    destination: destination.to_owned(),
                    waited: timeout,
                })?;
        serde_json::from_slice(&message.payload).map_err(|source| ReceiveError::Decode {
            destination: destination.to_owned(),
            source,
        })
    }

    /// Up to `n` messages recorded as sent to `destination`, waiting up to `timeout` in total;
    /// fewer if the time runs out.
    pub async fn receive_n(
        &self,
        destination: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<RawMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.receive_until(destination, deadline).await {
                Some(m) => out.push(m),
                None => break,
            }
        }
        out
    }

    async fn receive_until(
        &self,
        destination: &str,
        deadline: tokio::time::Instant,
    ) -> Option<RawMessage> {
        let dest = self.broker.destination(destination);
        let wait = async {
            loop {
                let recorded = dest.recorded.notified();
                tokio::pin!(recorded);
                recorded.as_mut().enable();
                if let Some(m) = dest.pop_record() {
                    return Some(m);
                }
                if self.broker.is_shut_down() {
                    return None;
                }
                recorded.await;
            }
        };
        tokio::time::timeout_at(deadline, wait).await.ok().flatten()
    }

    /// The messages dead-lettered from binding `destination`/`group` so far (with their `x-…`
    /// headers), oldest first. Not consumed by reading.
    pub fn dead_letters(&self, destination: &str, group: Option<&str>) -> Vec<RawMessage> {
        self.broker.dead_letters(destination, group)
    }

    /// Waits until at least `n` messages were dead-lettered from binding `destination`/`group`
    /// (retries and back-off included; under `tokio::time::pause()` in virtual time), then
    /// returns them all, oldest first; what there is when `timeout` passes.
    pub async fn wait_for_dead_letters(
        &self,
        destination: &str,
        group: Option<&str>,
        n: usize,
        timeout: Duration,
    ) -> Vec<RawMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let dead = self.dead_letters(destination, group);
            if dead.len() >= n || tokio::time::Instant::now() >= deadline {
                return dead;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Forgets every recorded message and dead letter (queues and subscriptions are untouched).
    pub fn clear(&self) {
        self.broker.clear_records();
    }
}
