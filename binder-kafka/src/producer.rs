//! The producer: idempotent, `send` resolves on the delivery report.

use std::time::Duration;

use async_trait::async_trait;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use stream_core::binder::{Producer, Route, SendError};
use stream_core::expr::{EvalContext, Expression};
use stream_core::message::{header, RawMessage};

use crate::headers;

/// A producer bound to one topic.
pub struct KafkaProducer {
    producer: FutureProducer,
    topic: String,
    key_expression: Option<Expression>,
    close_timeout: Duration,
    max_message_bytes: usize,
}

impl std::fmt::Debug for KafkaProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaProducer")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaProducer {
    /// A producer sending to `topic` through `producer`.
    pub fn new(
        producer: FutureProducer,
        topic: &str,
        key_expression: Option<Expression>,
        close_timeout: Duration,
        max_message_bytes: usize,
    ) -> Self {
        KafkaProducer {
            producer,
            topic: topic.to_owned(),
            key_expression,
            close_timeout,
            max_message_bytes,
        }
    }

    fn key_of(&self, message: &RawMessage, route: &Route) -> Option<String> {
        if let Some(k) = &route.partition_key {
            return Some(k.clone());
        }
        let Some(expr) = self.key_expression.as_ref() else {
            return message
                .headers
                .get_str(header::PARTITION_KEY)
                .map(str::to_owned);
        };
        let payload = if expr.uses_payload() {
            serde_json::from_slice::<serde_json::Value>(&message.payload).ok()
        } else {
            None
        };
        let ctx = EvalContext {
            headers: &message.headers,
            payload: payload.as_ref(),
        };
        match expr.evaluate_to_key(&ctx) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(topic = %self.topic, error = %e, "message-key-expression failed; sending without a key");
                None
            }
        }
    }
}

/// Sends one record to `topic` and awaits its delivery report.
pub async fn send_record(
    producer: &FutureProducer,
    topic: &str,
    message: &RawMessage,
    key: Option<&[u8]>,
    partition: Option<i32>,
    max_message_bytes: usize,
) -> Result<(), SendError> {
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
        .payload(&message.payload[..])
        .headers(headers::to_record(&message.headers));
    if let Some(k) = key {
        record = record.key(k);
    }
    if let Some(p) = partition {
        record = record.partition(p);
    }
    match producer.send(record, Timeout::Never).await {
        Ok(_) => Ok(()),
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {
            Err(SendError::TooLarge {
                size: message.payload.len(),
                limit: max_message_bytes,
            })
        }
        Err((e, _)) => Err(SendError::Broker {
            destination: topic.to_owned(),
            source: Box::new(e),
        }),
    }
}

#[async_trait]
impl Producer for KafkaProducer {
    async fn send(&self, message: RawMessage, route: Route) -> Result<(), SendError> {
        let key = self.key_of(&message, &route);
        let partition = route.partition.map(|p| p as i32);
        send_record(
            &self.producer,
            &self.topic,
            &message,
            key.as_deref().map(str::as_bytes),
            partition,
            self.max_message_bytes,
        )
        .await
    }

    async fn flush(&self) -> Result<(), SendError> {
        let p = self.producer.clone();
        let timeout = self.close_timeout;
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || p.flush(timeout))
            .await
            .map_err(|e| SendError::Broker {
                destination: topic.clone(),
                source: Box::new(e),
            })?
            .map_err(|e| SendError::Broker {
                destination: topic,
                source: Box::new(e),
            })
    }

    async fn close(&self) {
        if let Err(e) = self.flush().await {
            tracing::warn!(topic = %self.topic, error = %e, "flush at close failed");
        }
    }
}
