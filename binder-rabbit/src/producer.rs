//! The producer: persistent, confirmed publishes to the destination exchange.

use async_trait::async_trait;
use stream_core::binder::{Producer, Route, SendError};
use stream_core::expr::EvalContext;
use stream_core::message::RawMessage;

use crate::headers::to_properties;
use crate::props::ProducerProps;
use crate::publisher::Publisher;

/// A bound output (see [`crate::RabbitBinder`]).
pub struct RabbitProducer {
    pub(crate) publisher: Publisher,
    pub(crate) destination: String,
    pub(crate) exchange: String,
    pub(crate) props: ProducerProps,
}

impl RabbitProducer {
    /// The routing key of one message: `routing-key-expression` (else the destination name),
    /// suffixed `-<partition>` when the runtime chose a partition.
    fn routing_key(&self, message: &RawMessage, route: &Route) -> Result<String, SendError> {
        let base = match &self.props.routing_key {
            None => None,
            Some(expr) => {
                let payload = if expr.uses_payload() {
                    serde_json::from_slice::<serde_json::Value>(&message.payload).ok()
                } else {
                    None
                };
                let ctx = EvalContext {
                    headers: &message.headers,
                    payload: payload.as_ref(),
                };
                expr.evaluate_to_key(&ctx).map_err(|e| SendError::Broker {
                    destination: self.destination.clone(),
                    source: format!("routing-key-expression: {e}").into(),
                })?
            }
        };
        let base = base.unwrap_or_else(|| self.destination.clone());
        Ok(match route.partition {
            Some(n) => format!("{base}-{n}"),
            None => base,
        })
    }
}

#[async_trait]
impl Producer for RabbitProducer {
    async fn send(&self, message: RawMessage, route: Route) -> Result<(), SendError> {
        let routing_key = self.routing_key(&message, &route)?;
        let mode = self.props.delivery_mode;
        self.publisher
            .publish(
                &self.destination,
                &self.exchange,
                &routing_key,
                self.props.mandatory,
                &message.payload,
                || to_properties(&message, mode),
            )
            .await
    }

    async fn flush(&self) -> Result<(), SendError> {
        self.publisher.flush().await
    }

    async fn close(&self) {
        self.publisher.close().await;
    }
}
