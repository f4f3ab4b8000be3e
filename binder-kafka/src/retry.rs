//! Delayed redeliveries on Kafka (`redelivery-delays`): a retry topic per delay,
//! `<destination>.<group>.retry-<ms>ms`, and a subscription that reads them beside the main
//! topic. Every record of one retry topic waits the same delay, so they come due in the order
//! they were written: a record not yet due holds back only its own retry topic, never the
//! main topic (spring-kafka's non-blocking retries work the same way).

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{FuturesUnordered, StreamExt};
use stream_core::binder::{BatchLimits, ConsumeError, Delivery, Subscription};
use stream_core::message::{header, now_millis};

/// The retry topic of `destination`/`group` for `delay`.
pub fn retry_topic(destination: &str, group: &str, delay: Duration) -> String {
    format!("{destination}.{group}.retry-{}ms", delay.as_millis())
}

type Next = Option<Result<Box<dyn Delivery>, ConsumeError>>;

/// One retry topic's subscription and the record it holds until due.
struct RetryTopic {
    sub: Box<dyn Subscription>,
    held: Option<(tokio::time::Instant, Box<dyn Delivery>)>,
}

/// The main subscription and its retry topics' (see the module docs).
pub struct WithRetryTopics {
    main: Box<dyn Subscription>,
    retries: Vec<RetryTopic>,
}

/// What one wait for the next delivery gave.
enum Step {
    Main(Next),
    Retry(usize, Next),
    Due,
}

impl WithRetryTopics {
    /// Reads `main` and each of `retries`.
    pub fn new(main: Box<dyn Subscription>, retries: Vec<Box<dyn Subscription>>) -> Self {
        let retries = retries
            .into_iter()
            .map(|sub| RetryTopic { sub, held: None })
            .collect();
        WithRetryTopics { main, retries }
    }

    /// A held record that is due now, if any.
    fn due(&mut self) -> Option<Box<dyn Delivery>> {
        let now = tokio::time::Instant::now();
        let r = self
            .retries
            .iter_mut()
            .find(|r| r.held.as_ref().is_some_and(|(due, _)| *due <= now))?;
        r.held.take().map(|(_, d)| d)
    }

    /// Waits for the main topic, a retry topic not holding a record, or the earliest held
    /// record's due time.
    async fn step(&mut self) -> Step {
        let wake = self
            .retries
            .iter()
            .filter_map(|r| r.held.as_ref().map(|(due, _)| *due))
            .min();
        let mut pending: FuturesUnordered<_> = self
            .retries
            .iter_mut()
            .enumerate()
            .filter(|(_, r)| r.held.is_none())
            .map(|(i, r)| async move { (i, r.sub.next().await) })
            .collect();
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            next = self.main.next() => Step::Main(next),
            Some((i, next)) = pending.next(), if !pending.is_empty() => Step::Retry(i, next),
            _ = tokio::time::sleep_until(wake.unwrap_or(far)), if wake.is_some() => Step::Due,
        }
    }
}

/// When a retry record is due ([`header::DELAYED_UNTIL`]; now without it).
fn due_at(delivery: &dyn Delivery) -> tokio::time::Instant {
    let until = delivery
        .message()
        .headers
        .get_str(header::DELAYED_UNTIL)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    // Due times cross processes, so they are wall-clock times.
    let wait = until.saturating_sub(now_millis());
    tokio::time::Instant::now() + Duration::from_millis(wait)
}

#[async_trait]
impl Subscription for WithRetryTopics {
    // Cancel-safe: each subscription's `next` is, and a record taken is held in `self`.
    async fn next(&mut self) -> Next {
        loop {
            if let Some(d) = self.due() {
                return Some(Ok(d));
            }
            match self.step().await {
                Step::Main(next) | Step::Retry(_, next @ (None | Some(Err(_)))) => return next,
                Step::Retry(i, Some(Ok(d))) => {
                    let due = due_at(d.as_ref());
                    if due <= tokio::time::Instant::now() {
                        return Some(Ok(d));
                    }
                    self.retries[i].held = Some((due, d));
                }
                Step::Due => {}
            }
        }
    }

    fn try_next(&mut self) -> Next {
        self.due().map(Ok).or_else(|| self.main.try_next())
    }

    fn batch_limits(&self) -> BatchLimits {
        self.main.batch_limits()
    }

    async fn close(self: Box<Self>) {
        self.main.close().await;
        for r in self.retries {
            // A held record is dropped unsettled: its retry topic hands it out again.
            drop(r.held);
            r.sub.close().await;
        }
    }
}
