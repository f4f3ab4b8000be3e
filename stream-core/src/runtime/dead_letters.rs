//! Replaying and purging a binding's dead letters (`cloud-stream dlq replay|purge`).
//!
//! The dead-letter queue is consumed as an ordinary subscription
//! ([`Binder::dead_letter_source`]). A replayed message is republished with the dead-letter
//! headers removed ([`DeadLetter::strip`]) and acked only once the broker confirmed the
//! republish, so an interrupted replay loses nothing: what was not acked stays in (or returns
//! to) the DLQ, and at worst one message is republished twice. A purge acks without
//! republishing.

use std::time::Duration;

use crate::binder::{
    BindError, Binder, ConsumerSpec, DeadLetter, ProducerSpec, Route, SendError, Subscription,
};

/// The group binders read a DLQ as, where they need one (Kafka, the memory binder): its
/// progress is how far replays and purges got.
pub const READER_GROUP: &str = "cloud-stream-dlq";

/// How long to wait for the next dead letter before taking the queue as drained.
pub const IDLE: Duration = Duration::from_secs(3);

/// What to do with each dead letter.
#[derive(Clone, Copy, Debug)]
pub enum Action<'a> {
    /// Republish to this destination, then remove from the DLQ.
    Replay {
        /// The destination (usually the binding's own).
        to: &'a str,
    },
    /// Remove from the DLQ.
    Purge,
}

/// Why a replay or purge stopped early (what was done before stays done).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeadLetterError {
    /// The binder has no dead-letter queue it can consume for the binding.
    #[error("no dead-letter queue this binder can consume for this binding")]
    NoSource,
    /// Binding the DLQ's consumer or the republishing producer failed.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The republish failed: the message stays in the DLQ.
    #[error("republishing failed (the message stays in the DLQ): {0}")]
    Send(#[from] SendError),
    /// Receiving or settling failed: the message returns to the DLQ.
    #[error("the dead-letter queue: {0}")]
    Consume(String),
}

/// Replays or purges up to `max` dead letters of the consumer binding (`destination`,
/// `group`, `spec`), stopping earlier when none arrives for [`IDLE`]; calls `progress` with
/// the count after each one. Returns how many were handled.
pub async fn drain(
    binder: &dyn Binder,
    (destination, group, spec): (&str, Option<&str>, &ConsumerSpec),
    action: Action<'_>,
    max: u64,
    mut progress: impl FnMut(u64),
) -> Result<u64, DeadLetterError> {
    let source = binder
        .dead_letter_source(destination, group, spec)
        .ok_or(DeadLetterError::NoSource)?;
    let reader = ConsumerSpec {
        binding: format!("{}-dlq", spec.binding),
        concurrency: 1,
        max_attempts: 1,
        binder_properties: source.consumer.clone(),
        ..ConsumerSpec::default()
    };
    let mut sub = binder
        .bind_consumer(&source.destination, source.group.as_deref(), &reader)
        .await?;
    let producer = match action {
        Action::Replay { to } => {
            let spec = ProducerSpec {
                binding: format!("{}-replay", spec.binding),
                partition_count: 1,
                ..ProducerSpec::default()
            };
            Some(binder.bind_producer(to, &spec).await?)
        }
        Action::Purge => None,
    };
    let result = settle_each(sub.as_mut(), producer.as_deref(), max, &mut progress).await;
    sub.close().await;
    if let Some(p) = producer {
        p.close().await;
    }
    result
}

async fn settle_each(
    sub: &mut dyn Subscription,
    producer: Option<&dyn crate::binder::Producer>,
    max: u64,
    progress: &mut impl FnMut(u64),
) -> Result<u64, DeadLetterError> {
    let mut done = 0;
    while done < max {
        let delivery = match tokio::time::timeout(IDLE, sub.next()).await {
            Err(_) | Ok(None) => break,
            Ok(Some(Err(e))) => return Err(DeadLetterError::Consume(e.to_string())),
            Ok(Some(Ok(d))) => d,
        };
        if let Some(producer) = producer {
            let mut message = delivery.message().clone();
            DeadLetter::strip(&mut message.headers);
            let route = Route {
                partition_key: message
                    .headers
                    .get_str(crate::message::header::PARTITION_KEY)
                    .map(str::to_owned),
                partition: None,
            };
            producer.send(message, route).await?;
        }
        delivery
            .ack()
            .await
            .map_err(|e| DeadLetterError::Consume(e.to_string()))?;
        done += 1;
        progress(done);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use crate::binder::DeadLetter;
    use crate::message::{header, Headers};

    #[test]
    fn strip_removes_what_dead_lettering_added_and_keeps_the_rest() {
        let mut headers = Headers::new()
            .with(header::ID, "m1")
            .with(header::PARTITION_KEY, "k")
            .with("x-death", "[..]")
            .with("x-first-death-queue", "q")
            .with(header::DELAYED_REDELIVERIES, "2")
            .with(header::DELAYED_UNTIL, "1764851234567");
        DeadLetter {
            error_message: "boom".into(),
            error_kind: "permanent".into(),
            attempts: 3,
        }
        .stamp(&mut headers, "orders", Some("billing"));
        headers.insert("x-original-partition", "0");
        DeadLetter::strip(&mut headers);
        let names: Vec<&str> = headers.iter().map(|(n, _)| n).collect();
        assert_eq!(names, [header::ID, header::PARTITION_KEY]);
    }
}
