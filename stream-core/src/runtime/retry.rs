//! Retry policy: Spring's `max-attempts` and exponential back-off, owned by the runtime.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::ConsumerProperties;
use crate::function::HandlerError;

/// How one input binding retries a failed delivery in-process before dead-lettering it.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts including the first (≥ 1).
    pub max_attempts: u32,
    /// Wait before the second attempt.
    pub initial_interval: Duration,
    /// Factor applied to the wait after each attempt.
    pub multiplier: f64,
    /// Upper bound of the wait.
    pub max_interval: Duration,
    /// Whether unclassified errors are retried.
    pub default_retryable: bool,
    /// Error type name → retryable.
    pub retryable_exceptions: BTreeMap<String, bool>,
    /// `redelivery-delays`: after the attempts, a retryable failure goes back to the broker
    /// to come again after each of these in turn, then to the DLQ.
    pub redelivery_delays: Vec<Duration>,
}

impl RetryPolicy {
    /// The policy of a binding's consumer properties.
    pub fn from_consumer(c: &ConsumerProperties) -> Self {
        RetryPolicy {
            max_attempts: c.max_attempts.max(1),
            initial_interval: Duration::from_millis(c.back_off_initial_interval),
            multiplier: if c.back_off_multiplier.is_finite() && c.back_off_multiplier > 0.0 {
                c.back_off_multiplier
            } else {
                1.0
            },
            max_interval: Duration::from_millis(c.back_off_max_interval),
            default_retryable: c.default_retryable,
            retryable_exceptions: c.retryable_exceptions.clone(),
            redelivery_delays: c.redelivery_schedule(),
        }
    }

    /// The wait after failed attempt number `attempt` (1-based):
    /// `min(initial × multiplier^(attempt-1), max)`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let millis = self.initial_interval.as_millis() as f64 * self.multiplier.powi(exp);
        let capped = millis.min(self.max_interval.as_millis() as f64);
        if capped.is_finite() && capped >= 0.0 {
            Duration::from_millis(capped as u64)
        } else {
            self.max_interval
        }
    }

    /// Whether to try again after `error` failed attempt number `attempt`.
    pub fn should_retry(&self, error: &HandlerError, attempt: u32) -> bool {
        attempt < self.max_attempts && self.retryable(error)
    }

    /// Whether `error` may be retried at all (its own classification, else
    /// `retryable-exceptions`, else `default-retryable`).
    pub fn retryable(&self, error: &HandlerError) -> bool {
        error.should_retry(&self.retryable_exceptions, self.default_retryable)
    }

    /// The wait before the next delayed redelivery of a message that has had `done` of them
    /// and failed its last attempt with `error`; `None`: dead-letter it.
    pub fn redelivery_delay(&self, error: &HandlerError, done: u32) -> Option<Duration> {
        let delay = *self.redelivery_delays.get(usize::try_from(done).ok()?)?;
        self.retryable(error).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spring_defaults_back_off_exponentially_with_a_cap() {
        let p = RetryPolicy::from_consumer(&ConsumerProperties::default());
        assert_eq!(p.max_attempts, 3);
        assert_eq!(p.backoff(1), Duration::from_millis(1000));
        assert_eq!(p.backoff(2), Duration::from_millis(2000));
        assert_eq!(p.backoff(4), Duration::from_millis(8000));
        assert_eq!(p.backoff(5), Duration::from_millis(10000));
        assert_eq!(p.backoff(60), Duration::from_millis(10000));
    }

    #[test]
    fn redelivery_delays_in_turn_for_retryable_errors_only() {
        let p = RetryPolicy::from_consumer(&ConsumerProperties {
            redelivery_delays: vec![10_000, 60_000],
            ..ConsumerProperties::default()
        });
        let error = HandlerError::new("x");
        assert_eq!(p.redelivery_delay(&error, 0), Some(Duration::from_secs(10)));
        assert_eq!(p.redelivery_delay(&error, 1), Some(Duration::from_secs(60)));
        assert_eq!(p.redelivery_delay(&error, 2), None);
        assert_eq!(p.redelivery_delay(&HandlerError::permanent("x"), 0), None);
    }

    #[test]
    fn last_attempt_and_permanent_errors_stop() {
        let p = RetryPolicy::from_consumer(&ConsumerProperties::default());
        assert!(p.should_retry(&HandlerError::new("x"), 2));
        assert!(!p.should_retry(&HandlerError::new("x"), 3));
        assert!(!p.should_retry(&HandlerError::permanent("x"), 1));
    }
}
