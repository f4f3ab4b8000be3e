//! Observability: metric names and the per-delivery span; the trace context is in
//! [`crate::trace`] (re-exported here).
//!
//! Every delivery runs in a `tracing` span `delivery` with the fields `binding`, `destination`,
//! `group` and `attempt`. The inbound `traceparent` header (or a new trace, when absent) is
//! continued: each output carries a `traceparent` with the same trace id and a new span id.
//! Metrics go through the `metrics` facade (install any recorder, e.g. a Prometheus exporter),
//! labelled with `binding`.

pub(crate) use crate::trace::fast_uuid;
pub use crate::trace::TraceContext;

use crate::function::HandlerError;
use crate::message::RawMessage;
use crate::runtime::BacklogReport;

/// One handler call of an input binding, as a [`CallObserver`] sees it.
#[derive(Debug)]
pub struct HandlerCall<'a> {
    /// The function definition bound (`reserve`, or `a|b` for a composition).
    pub function: &'a str,
    /// The input binding.
    pub binding: &'a str,
    /// The message the handler was called with.
    pub input: &'a RawMessage,
    /// The delivery attempt, 1-based.
    pub attempt: u32,
    /// Whether the call (outputs confirmed included) succeeded.
    pub outcome: Result<(), &'a HandlerError>,
}

/// Sees every handler call of an application after it ended (given with
/// `StreamAppBuilder::call_observer`); `binder_memory::TestHarness` records them for tests.
/// Called on the delivery's task: keep it quick.
pub trait CallObserver: Send + Sync + 'static {
    /// One call ended.
    fn called(&self, call: HandlerCall<'_>);
}

/// Counter: messages handed to a handler (first attempts only).
pub const METRIC_CONSUMED: &str = "cloud_stream_consumed_total";
/// Counter: messages confirmed by the broker on output.
pub const METRIC_PRODUCED: &str = "cloud_stream_produced_total";
/// Counter: failed handler attempts.
pub const METRIC_FAILED: &str = "cloud_stream_failed_total";
/// Counter: retries (attempts after the first).
pub const METRIC_RETRIED: &str = "cloud_stream_retried_total";
/// Counter: messages dead-lettered.
pub const METRIC_DEAD_LETTERED: &str = "cloud_stream_dead_lettered_total";
/// Counter: duplicates an idempotent binding acked without handling.
pub const METRIC_DUPLICATES: &str = "cloud_stream_duplicates_total";
/// Histogram: handler latency in seconds (per attempt, outputs included).
pub const METRIC_HANDLER_SECONDS: &str = "cloud_stream_handler_seconds";
/// Gauge: messages waiting for an input binding on one destination ([`Backlog::pending`](crate::binder::Backlog::pending)),
/// labelled `binding` and `destination`; set by [`publish_backlogs`].
pub const METRIC_BACKLOG: &str = "cloud_stream_backlog_messages";
/// Gauge: messages in an input binding's dead-letter queue ([`Backlog::dead_letters`](crate::binder::Backlog::dead_letters)).
pub const METRIC_DEAD_LETTER_BACKLOG: &str = "cloud_stream_dead_letter_messages";

/// Sets the backlog gauges from `reports` (what [`BindingsHandle::backlogs`] found): a count
/// the binder does not give leaves its gauge unset; one it did not give in time is NaN, so a
/// dashboard never shows a stale count as current.
///
/// [`BindingsHandle::backlogs`]: crate::runtime::BindingsHandle::backlogs
pub fn publish_backlogs(reports: &[BacklogReport]) {
    for r in reports {
        let labels = [
            ("binding", r.binding.clone()),
            ("destination", r.destination.clone()),
        ];
        let Some(backlog) = r.backlog else {
            metrics::gauge!(METRIC_BACKLOG, &labels).set(f64::NAN);
            metrics::gauge!(METRIC_DEAD_LETTER_BACKLOG, &labels).set(f64::NAN);
            continue;
        };
        if let Some(n) = backlog.pending {
            metrics::gauge!(METRIC_BACKLOG, &labels).set(n as f64);
        }
        if let Some(n) = backlog.dead_letters {
            metrics::gauge!(METRIC_DEAD_LETTER_BACKLOG, &labels).set(n as f64);
        }
    }
}

/// The metric handles of one input binding, registered once (not per message).
#[derive(Clone)]
pub struct BindingMetrics {
    /// [`METRIC_CONSUMED`].
    pub consumed: metrics::Counter,
    /// [`METRIC_FAILED`].
    pub failed: metrics::Counter,
    /// [`METRIC_RETRIED`].
    pub retried: metrics::Counter,
    /// [`METRIC_DEAD_LETTERED`].
    pub dead_lettered: metrics::Counter,
    /// [`METRIC_DUPLICATES`].
    pub duplicates: metrics::Counter,
    /// [`METRIC_HANDLER_SECONDS`].
    pub handler_seconds: metrics::Histogram,
}

impl BindingMetrics {
    /// Registers the handles labelled `binding`.
    pub fn new(binding: &str) -> Self {
        let b = binding.to_owned();
        BindingMetrics {
            consumed: metrics::counter!(METRIC_CONSUMED, "binding" => b.clone()),
            failed: metrics::counter!(METRIC_FAILED, "binding" => b.clone()),
            retried: metrics::counter!(METRIC_RETRIED, "binding" => b.clone()),
            dead_lettered: metrics::counter!(METRIC_DEAD_LETTERED, "binding" => b.clone()),
            duplicates: metrics::counter!(METRIC_DUPLICATES, "binding" => b.clone()),
            handler_seconds: metrics::histogram!(METRIC_HANDLER_SECONDS, "binding" => b),
        }
    }
}

/// The seconds elapsed since an instant, read from the clock only when a histogram records
/// them: a histogram of the `metrics` no-op recorder (no recorder installed) never calls
/// [`metrics::IntoF64::into_f64`], so it costs no clock read per delivery.
#[derive(Clone, Copy, Debug)]
pub struct SecondsSince(pub std::time::Instant);

impl metrics::IntoF64 for SecondsSince {
    fn into_f64(self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

impl std::fmt::Debug for BindingMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindingMetrics").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_since_reads_the_clock_when_recorded() {
        use metrics::IntoF64;
        let an_hour_ago = std::time::Instant::now()
            .checked_sub(std::time::Duration::from_secs(3600))
            .unwrap_or_else(std::time::Instant::now);
        let seconds = SecondsSince(an_hour_ago).into_f64();
        assert!((0.0..3700.0).contains(&seconds), "{seconds}");
    }
}
