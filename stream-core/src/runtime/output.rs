//! Sending on an output binding: ids and timestamps, trace context, partition selection, and the
//! broker confirm.

use std::sync::Arc;

use crate::binder::{BindError, Binder, Producer, Route, SendError};
use crate::expr::{EvalContext, Expression};
use crate::function::{HandlerError, Retry};
use crate::message::{header, now_millis, HeaderText, RawMessage};
use crate::observe::{fast_uuid, TraceContext, METRIC_PRODUCED};

/// How an output chooses partitions (`partition-key-expression` + `partition-count`).
#[derive(Clone, Debug)]
pub struct Partitioning {
    /// Computes the key from the message.
    pub key: Expression,
    /// Computes the partition from the key (`partition-selector-expression`; evaluated with
    /// the key in header `partition-key`), else `abs(hash(key)) % count`.
    pub selector: Option<Expression>,
    /// Number of partitions (≥ 1).
    pub count: u32,
}

/// Java's `String.hashCode`, so keys land on the same partitions as in a Spring producer.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// Spring's default partition selection: `abs(key.hashCode()) % count`.
pub fn select_partition(key: &str, count: u32) -> u32 {
    let count = count.max(1);
    java_string_hash(key).unsigned_abs() % count
}

impl Partitioning {
    /// The route of `message` (its key and partition).
    pub fn route(&self, message: &RawMessage) -> Result<Route, HandlerError> {
        let payload = if self.key.uses_payload() {
            Some(
                serde_json::from_slice::<serde_json::Value>(&message.payload).map_err(|e| {
                    HandlerError::permanent(format!(
                        "partition key expression `{}` needs a JSON payload: {e}",
                        self.key.source()
                    ))
                })?,
            )
        } else {
            None
        };
        let key = self
            .key
            .evaluate_to_key(&EvalContext {
                headers: &message.headers,
                payload: payload.as_ref(),
            })
            .map_err(HandlerError::permanent)?
            .ok_or_else(|| {
                HandlerError::permanent(format!(
                    "partition key expression `{}` evaluated to null",
                    self.key.source()
                ))
            })?;
        let partition = match &self.selector {
            None => select_partition(&key, self.count),
            Some(sel) => {
                let mut headers = message.headers.clone();
                headers.insert(header::PARTITION_KEY, key.as_str());
                let v = sel
                    .evaluate(&EvalContext {
                        headers: &headers,
                        payload: payload.as_ref(),
                    })
                    .map_err(HandlerError::permanent)?;
                let n = v.as_i64().ok_or_else(|| {
                    HandlerError::permanent(format!(
                        "partition selector `{}` did not yield an integer",
                        sel.source()
                    ))
                })?;
                u32::try_from(n.rem_euclid(i64::from(self.count.max(1)))).unwrap_or(0)
            }
        };
        Ok(Route {
            partition_key: Some(key),
            partition: Some(partition),
        })
    }
}

/// One bound output: a producer plus the binding's routing.
pub struct OutputSender {
    /// The binding name.
    pub binding: String,
    /// The destination.
    pub destination: String,
    producer: Box<dyn Producer>,
    partitioning: Option<Partitioning>,
    produced: metrics::Counter,
}

impl std::fmt::Debug for OutputSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputSender")
            .field("binding", &self.binding)
            .field("destination", &self.destination)
            .finish()
    }
}

/// Maps a send failure to a handler error: oversize messages are permanent, the rest retried.
pub(crate) fn send_error(e: SendError) -> HandlerError {
    let retry = match e {
        SendError::TooLarge { .. } => Retry::No,
        _ => Retry::Yes,
    };
    HandlerError::output(e, retry)
}

impl OutputSender {
    /// An output over `producer`.
    pub fn new(
        binding: String,
        destination: String,
        producer: Box<dyn Producer>,
        partitioning: Option<Partitioning>,
    ) -> Self {
        OutputSender {
            produced: metrics::counter!(METRIC_PRODUCED, "binding" => binding.clone()),
            binding,
            destination,
            producer,
            partitioning,
        }
    }

    /// Completes the headers (`id`, `timestamp`, `traceparent`, partition) and sends; resolves
    /// when the broker confirmed.
    pub async fn send(
        &self,
        mut message: RawMessage,
        trace: Option<&TraceContext>,
    ) -> Result<(), HandlerError> {
        // The values are kept as they are and written out as text only when read.
        let partition_key = message.headers.stamp_output(
            || HeaderText::uuid(fast_uuid()),
            || HeaderText::number(now_millis()),
            |current| {
                HeaderText::trace(
                    trace
                        .map(TraceContext::child)
                        .unwrap_or_else(|| TraceContext::continue_or_start_from(current)),
                )
            },
        );
        let route = match &self.partitioning {
            Some(p) => {
                let route = p.route(&message)?;
                if let Some(k) = &route.partition_key {
                    message.headers.insert(header::PARTITION_KEY, k.as_str());
                }
                if let Some(n) = route.partition {
                    message.headers.insert(header::PARTITION, n.to_string());
                }
                route
            }
            None => Route {
                partition_key,
                partition: None,
            },
        };
        match self.producer.try_send(message, route) {
            Ok(confirmed) => confirmed,
            Err((message, route)) => self.producer.send(message, route).await,
        }
        .map_err(send_error)?;
        self.produced.increment(1);
        Ok(())
    }

    /// Waits for outstanding confirms.
    pub async fn flush(&self) -> Result<(), SendError> {
        self.producer.flush().await
    }

    /// Closes the producer.
    pub async fn close(&self) {
        self.producer.close().await;
    }
}

/// Shared handle to an output.
pub type SharedOutput = Arc<OutputSender>;

/// Why an output binding could not be bound (see [`bind_output_sender`]).
pub(crate) enum OutputBindError {
    /// `partition-key-expression` or `partition-selector-expression` does not parse.
    Expression {
        /// The binding's destination.
        destination: String,
        /// The parse error.
        source: crate::expr::ExprError,
    },
    /// The binder refused the producer.
    Bind {
        /// The binding's destination.
        destination: String,
        /// The cause.
        source: BindError,
    },
}

/// Binds the producer of an output binding (function outputs, `output-bindings` and the
/// bridge's dynamic destinations alike): its first destination, with its partitioning. The
/// expressions are parsed before the producer is bound, so a bad one binds nothing.
pub(crate) async fn bind_output_sender(
    binder: &dyn Binder,
    eff: &crate::plan::EffectiveBinding,
) -> Result<SharedOutput, OutputBindError> {
    let destination = eff
        .destinations
        .first()
        .cloned()
        .unwrap_or_else(|| eff.name.clone());
    let partitioning = match partitioning_of(eff) {
        Ok(p) => p,
        Err(source) => {
            return Err(OutputBindError::Expression {
                destination,
                source,
            })
        }
    };
    let producer = match binder
        .bind_producer(&destination, &eff.producer_spec())
        .await
    {
        Ok(p) => p,
        Err(source) => {
            return Err(OutputBindError::Bind {
                destination,
                source,
            })
        }
    };
    Ok(Arc::new(OutputSender::new(
        eff.name.clone(),
        destination,
        producer,
        partitioning,
    )))
}

/// The partitioning of an output binding, if `partition-key-expression` is set.
pub(crate) fn partitioning_of(
    b: &crate::plan::EffectiveBinding,
) -> Result<Option<Partitioning>, crate::expr::ExprError> {
    let Some(src) = &b.producer.partition_key_expression else {
        return Ok(None);
    };
    let key = crate::expr::Expression::parse(src)?;
    let selector = b
        .producer
        .partition_selector_expression
        .as_deref()
        .map(crate::expr::Expression::parse)
        .transpose()?;
    Ok(Some(Partitioning {
        key,
        selector,
        count: b.producer.partition_count.max(1),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_known_values() {
        // Values of "abc".hashCode() and "hello".hashCode() in Java.
        assert_eq!(java_string_hash("abc"), 96354);
        assert_eq!(java_string_hash("hello"), 99162322);
        assert_eq!(java_string_hash(""), 0);
        assert!(select_partition("anything", 4) < 4);
        assert_eq!(select_partition("x", 0), 0);
    }
}
