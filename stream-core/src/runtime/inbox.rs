//! The idempotent consumer (an inbox): a binding with `consumer.idempotent: true` handles each
//! message key once per group. The key is `idempotent-key-expression` evaluated on the message
//! (default `headers['id']`); a message whose key was already handled successfully is acked
//! without calling the handler; a failed attempt records nothing, so a redelivery is handled
//! again. While a key is being handled, a duplicate of it waits for the outcome.
//!
//! The store is in memory, per binding: bounded (`idempotent-capacity` keys, the oldest
//! forgotten first) and keys expire after `idempotent-retention`. It sees the duplicates one
//! process receives (redeliveries after a failed ack, a rebalance, a visibility timeout, a
//! producer's resend), not those another instance or a restarted process receives.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::ConsumerProperties;
use crate::expr::{EvalContext, Expression};
use crate::message::RawMessage;

/// The key expression when none is configured: the message's `id` header.
const DEFAULT_KEY: &str = "headers['id']";

/// A key's state.
enum Entry {
    /// Being handled now.
    InFlight,
    /// Handled successfully; remembered until then.
    Done(Instant),
}

/// What [`Inbox::claim`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The key is new (or its handling failed before): handle it, then
    /// [`Inbox::complete`] it (or [`Inbox::release`] it; see [`Claimed`]).
    New(String),
    /// Already handled successfully: ack without handling.
    Duplicate,
    /// The message has no key: handle it as usual.
    Keyless,
}

/// A key being handled: completed on success, released when dropped otherwise (a failure,
/// or the handling cancelled at shutdown or by stopping the binding), so that a redelivery
/// never waits for it forever.
pub(crate) struct Claimed<'a> {
    inbox: &'a Inbox,
    key: Option<String>,
}

impl<'a> Claimed<'a> {
    /// Claims `key` of `inbox` (returned by [`Claim::New`]).
    pub(crate) fn new(inbox: &'a Inbox, key: String) -> Self {
        Claimed {
            inbox,
            key: Some(key),
        }
    }

    /// The handling succeeded: remember the key.
    pub(crate) fn complete(mut self) {
        if let Some(key) = self.key.take() {
            self.inbox.complete(key);
        }
    }
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.inbox.release(&key);
        }
    }
}

/// One binding's inbox.
pub(crate) struct Inbox {
    key: Expression,
    retention: Duration,
    capacity: usize,
    entries: Mutex<(HashMap<String, Entry>, VecDeque<String>)>,
    settled: Notify,
}

impl Inbox {
    /// The inbox of a consumer binding, `None` unless `idempotent`. The key expression was
    /// checked when the configuration loaded.
    pub(crate) fn of(consumer: &ConsumerProperties) -> Option<Inbox> {
        if !consumer.idempotent {
            return None;
        }
        let source = consumer
            .idempotent_key_expression
            .as_deref()
            .unwrap_or(DEFAULT_KEY);
        let key = Expression::parse(source).ok()?;
        Some(Inbox {
            key,
            retention: Duration::from_millis(consumer.idempotent_retention),
            capacity: consumer.idempotent_capacity.max(1) as usize,
            entries: Mutex::new((HashMap::new(), VecDeque::new())),
            settled: Notify::new(),
        })
    }

    fn key_of(&self, message: &RawMessage) -> Option<String> {
        let payload = self
            .key
            .uses_payload()
            .then(|| serde_json::from_slice::<serde_json::Value>(&message.payload).ok())
            .flatten();
        let ctx = EvalContext {
            headers: &message.headers,
            payload: payload.as_ref(),
        };
        self.key.evaluate_to_key(&ctx).ok().flatten()
    }

    /// Whether `message` is new, a duplicate, or keyless; waits while its key is in flight.
    pub(crate) async fn claim(&self, message: &RawMessage) -> Claim {
        let Some(key) = self.key_of(message) else {
            return Claim::Keyless;
        };
        loop {
            // Registered before the look, so a settle in between is not missed.
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            {
                let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
                match guard.0.get(&key) {
                    Some(Entry::Done(until)) if *until > Instant::now() => return Claim::Duplicate,
                    Some(Entry::InFlight) => {}
                    _ => {
                        guard.0.insert(key.clone(), Entry::InFlight);
                        return Claim::New(key);
                    }
                }
            }
            settled.await;
        }
    }

    /// Records `key` as handled (before the ack: a crash in between makes the redelivery a
    /// duplicate, which is right, the handler succeeded).
    pub(crate) fn complete(&self, key: String) {
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (entries, order) = &mut *guard;
        entries.insert(key.clone(), Entry::Done(Instant::now() + self.retention));
        order.push_back(key);
        while order.len() > self.capacity {
            if let Some(oldest) = order.pop_front() {
                if matches!(entries.get(&oldest), Some(Entry::Done(_))) {
                    entries.remove(&oldest);
                }
            }
        }
        drop(guard);
        self.settled.notify_waiters();
    }

    /// Forgets `key` after a failed handling: a redelivery is handled again.
    pub(crate) fn release(&self, key: &str) {
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(guard.0.get(key), Some(Entry::InFlight)) {
            guard.0.remove(key);
        }
        drop(guard);
        self.settled.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn inbox(capacity: u32) -> Inbox {
        let consumer = ConsumerProperties {
            idempotent: true,
            idempotent_key_expression: Some("payload.id".to_owned()),
            idempotent_retention: 60_000,
            idempotent_capacity: capacity,
            ..Default::default()
        };
        Inbox::of(&consumer).expect("idempotent")
    }

    fn msg(json: &str) -> RawMessage {
        RawMessage::new(Bytes::from(json.to_owned()))
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_is_handled_once_until_it_expires_and_failures_record_nothing() {
        let inbox = inbox(10);
        assert_eq!(
            inbox.claim(&msg(r#"{"id":1}"#)).await,
            Claim::New("1".into())
        );
        inbox.release("1");
        assert_eq!(
            inbox.claim(&msg(r#"{"id":1}"#)).await,
            Claim::New("1".into())
        );
        inbox.complete("1".into());
        assert_eq!(inbox.claim(&msg(r#"{"id":1}"#)).await, Claim::Duplicate);
        assert_eq!(inbox.claim(&msg(r#"{"x":1}"#)).await, Claim::Keyless);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(
            inbox.claim(&msg(r#"{"id":1}"#)).await,
            Claim::New("1".into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_duplicate_waits_for_the_key_in_flight() {
        let inbox = std::sync::Arc::new(inbox(10));
        assert_eq!(
            inbox.claim(&msg(r#"{"id":7}"#)).await,
            Claim::New("7".into())
        );
        let i = std::sync::Arc::clone(&inbox);
        let waiting = tokio::spawn(async move { i.claim(&msg(r#"{"id":7}"#)).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished());
        inbox.complete("7".into());
        assert_eq!(waiting.await.unwrap(), Claim::Duplicate);
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_keys_are_forgotten_past_the_capacity() {
        let inbox = inbox(2);
        for id in 1..=3 {
            let json = format!(r#"{{"id":{id}}}"#);
            assert!(matches!(inbox.claim(&msg(&json)).await, Claim::New(_)));
            inbox.complete(id.to_string());
        }
        assert!(matches!(
            inbox.claim(&msg(r#"{"id":1}"#)).await,
            Claim::New(_)
        ));
        assert_eq!(inbox.claim(&msg(r#"{"id":3}"#)).await, Claim::Duplicate);
    }
}
