//! The producer: `Publish` (sns mode) or `SendMessage` (sqs mode), confirmed before `send`
//! resolves, batched (`PublishBatch`/`SendMessageBatch`, up to 10 entries and 256 KiB) when
//! several messages are ready at once. While the endpoint cannot be reached, a send is made
//! again with back-off for up to [`DEFAULT_SEND_RETRY`], as the other binders' sends ride out
//! a broker outage (so a handler's output does not fail, and its input is not dead-lettered,
//! over a short outage); an error the service answered with fails at once.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use stream_core::binder::{Backoff, Producer, Route, SendError, DEFAULT_SEND_RETRY};
use stream_core::message::{header, RawMessage};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::headers::{self, Attr, Encoded};
use crate::provision::{describe, is_connect_error, Clients, PARTITION_ATTRIBUTE};

/// The largest message SQS and SNS accept (body + attributes), bytes.
pub const MAX_MESSAGE_BYTES: usize = 262_144;
/// Entries per batch call.
const MAX_BATCH: usize = 10;
/// Batch calls in flight at once per producer (standard destinations; FIFO sends one at a
/// time to keep order). Messages that become ready while all are busy form the next batch.
const MAX_IN_FLIGHT: usize = 4;

/// Where a producer sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendTarget {
    /// An SNS topic (ARN).
    Topic(String),
    /// An SQS queue (URL).
    Queue(String),
}

/// One message ready to go.
pub(crate) struct Outgoing {
    pub encoded: Encoded,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    pub done: oneshot::Sender<Result<(), Failed>>,
}

/// Why a message was not sent; `unreachable` hands it back when the endpoint could not be
/// reached, to be sent again.
pub(crate) struct Failed {
    error: SendError,
    unreachable: Option<Encoded>,
}

impl Outgoing {
    /// Reports the outcome of sending this message: `Err((error, unreachable))`.
    fn finish(self, result: Result<(), (SendError, bool)>) {
        let _ = self
            .done
            .send(result.map_err(|(error, unreachable)| Failed {
                error,
                unreachable: unreachable.then_some(self.encoded),
            }));
    }
}

/// A producer bound to one topic or queue.
pub struct SqsProducer {
    destination: String,
    fifo: bool,
    via_sns: bool,
    tx: mpsc::Sender<Outgoing>,
    closed: AtomicBool,
}

impl fmt::Debug for SqsProducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqsProducer")
            .field("destination", &self.destination)
            .field("fifo", &self.fifo)
            .finish()
    }
}

/// A value usable as a FIFO group or deduplication id (≤ 128 characters of
/// alphanumerics and punctuation); anything else is replaced by a stable hash.
pub(crate) fn fifo_id(raw: &str) -> String {
    let ok = !raw.is_empty() && raw.len() <= 128 && raw.chars().all(|c| c.is_ascii_graphic());
    if ok {
        raw.to_owned()
    } else {
        let mut h = DefaultHasher::new();
        raw.hash(&mut h);
        format!("h{:016x}", h.finish())
    }
}

impl SqsProducer {
    /// A producer sending to `target` (spawns its sender task).
    pub(crate) fn new(
        clients: Clients,
        destination: String,
        target: SendTarget,
        fifo: bool,
    ) -> Self {
        let (tx, rx) = mpsc::channel(256);
        let via_sns = matches!(target, SendTarget::Topic(_));
        tokio::spawn(sender_loop(clients, destination.clone(), target, fifo, rx));
        SqsProducer {
            destination,
            fifo,
            via_sns,
            tx,
            closed: AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl Producer for SqsProducer {
    async fn send(&self, message: RawMessage, route: Route) -> Result<(), SendError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(SendError::Closed);
        }
        let mut extra = Vec::new();
        if let Some(p) = route.partition {
            extra.push((PARTITION_ATTRIBUTE.to_owned(), p.to_string()));
        }
        let encoded = headers::encode(&message, &extra, !self.via_sns);
        let size = encoded.size();
        if size > MAX_MESSAGE_BYTES {
            return Err(SendError::TooLarge {
                size,
                limit: MAX_MESSAGE_BYTES,
            });
        }
        let (group_id, dedup_id) = if self.fifo {
            let key = route
                .partition_key
                .clone()
                .or_else(|| {
                    message
                        .headers
                        .get_str(header::PARTITION_KEY)
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "default".to_owned());
            let id = message
                .headers
                .get_str(header::ID)
                .map(str::to_owned)
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            (Some(fifo_id(&key)), Some(fifo_id(&id)))
        } else {
            (None, None)
        };
        let deadline = tokio::time::Instant::now() + DEFAULT_SEND_RETRY;
        let (mut encoded, mut backoff) = (encoded, Backoff::default());
        loop {
            let (done, wait) = oneshot::channel();
            let (group_id, dedup_id) = (group_id.clone(), dedup_id.clone());
            let out = Outgoing {
                encoded,
                group_id,
                dedup_id,
                done,
            };
            self.tx.send(out).await.map_err(|_| SendError::Closed)?;
            let failed = match wait.await.map_err(|_| SendError::Closed)? {
                Ok(()) => return Ok(()),
                Err(failed) => failed,
            };
            let pause = backoff.next_delay();
            let gives_up = tokio::time::Instant::now() + pause > deadline;
            match failed.unreachable {
                Some(back) if !gives_up && !self.closed.load(Ordering::SeqCst) => {
                    tracing::warn!(destination = %self.destination, error = %failed.error, retry_in_ms = pause.as_millis() as u64, "endpoint unreachable; sending again");
                    tokio::time::sleep(pause).await;
                    encoded = back;
                }
                _ => return Err(failed.error),
            }
        }
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }
}

async fn sender_loop(
    clients: Clients,
    destination: String,
    target: SendTarget,
    fifo: bool,
    mut rx: mpsc::Receiver<Outgoing>,
) {
    let limit = Arc::new(Semaphore::new(if fifo { 1 } else { MAX_IN_FLIGHT }));
    let ctx = Arc::new((clients, destination, target));
    // A message that did not fit the previous batch (size limit) starts the next one.
    let mut carry: Option<Outgoing> = None;
    loop {
        // Wait for a free call slot first: while calls are in flight, ready messages pile up
        // in the channel and go out together (no lingering when the broker keeps up).
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
            return;
        };
        let first = match carry.take() {
            Some(m) => m,
            None => match rx.recv().await {
                Some(m) => m,
                None => return,
            },
        };
        let mut size = first.encoded.size();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) if size + m.encoded.size() > MAX_MESSAGE_BYTES => {
                    carry = Some(m);
                    break;
                }
                Ok(m) => {
                    size += m.encoded.size();
                    batch.push(m);
                }
                Err(_) => break,
            }
        }
        let ctx2 = Arc::clone(&ctx);
        let task = async move {
            send_batch(&ctx2, batch).await;
            drop(permit);
        };
        if fifo {
            task.await;
        } else {
            tokio::spawn(task);
        }
    }
}

fn broker_error(destination: &str, text: String) -> SendError {
    SendError::Broker {
        destination: destination.to_owned(),
        source: text.into(),
    }
}

fn sqs_attr(a: &Attr) -> Option<aws_sdk_sqs::types::MessageAttributeValue> {
    let b = aws_sdk_sqs::types::MessageAttributeValue::builder();
    match a {
        Attr::Text(s) => b.data_type("String").string_value(s),
        Attr::Binary(v) => b
            .data_type("Binary")
            .binary_value(aws_sdk_sqs::primitives::Blob::new(v.clone())),
    }
    .build()
    .ok()
}

fn sns_attr(a: &Attr) -> Option<aws_sdk_sns::types::MessageAttributeValue> {
    let b = aws_sdk_sns::types::MessageAttributeValue::builder();
    match a {
        Attr::Text(s) => b.data_type("String").string_value(s),
        Attr::Binary(v) => b
            .data_type("Binary")
            .binary_value(aws_sdk_sns::primitives::Blob::new(v.clone())),
    }
    .build()
    .ok()
}

async fn send_batch(ctx: &(Clients, String, SendTarget), batch: Vec<Outgoing>) {
    let (clients, destination, target) = ctx;
    if batch.len() == 1 {
        let Some(m) = batch.into_iter().next() else {
            return;
        };
        let r = send_one(clients, destination, target, &m).await;
        m.finish(r);
        return;
    }
    let result = match target {
        SendTarget::Queue(url) => send_sqs_batch(clients, url, &batch).await,
        SendTarget::Topic(arn) => send_sns_batch(clients, arn, &batch).await,
    };
    match result {
        Err((text, unreachable)) => fail_all(batch, destination, text, unreachable),
        Ok(failed) => {
            for (i, m) in batch.into_iter().enumerate() {
                let id = i.to_string();
                let r = match failed.iter().find(|(f, _)| *f == id) {
                    Some((_, why)) => Err((broker_error(destination, why.clone()), false)),
                    None => Ok(()),
                };
                m.finish(r);
            }
        }
    }
}

/// What a batch send gives back: the entries that failed (id, why), or why the whole call
/// failed and whether the endpoint was unreachable.
type BatchResult = Result<Vec<(String, String)>, (String, bool)>;

/// SendMessageBatch of `batch` to the queue at `url`.
async fn send_sqs_batch(clients: &Clients, url: &str, batch: &[Outgoing]) -> BatchResult {
    let mut req = clients.sqs.send_message_batch().queue_url(url);
    for (i, m) in batch.iter().enumerate() {
        let mut e = aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
            .id(i.to_string())
            .message_body(&m.encoded.body)
            .set_message_group_id(m.group_id.clone())
            .set_message_deduplication_id(m.dedup_id.clone());
        for (n, a) in &m.encoded.attributes {
            if let Some(v) = sqs_attr(a) {
                e = e.message_attributes(n, v);
            }
        }
        req = req.entries(e.build().map_err(|err| (err.to_string(), false))?);
    }
    let out = req.send().await.map_err(|e| failure(&e))?;
    let failed = out.failed().iter().map(|f| (f.id(), f.code(), f.message()));
    Ok(failed_entries(failed))
}

/// PublishBatch of `batch` to the topic `arn`.
async fn send_sns_batch(clients: &Clients, arn: &str, batch: &[Outgoing]) -> BatchResult {
    let mut req = clients.sns.publish_batch().topic_arn(arn);
    for (i, m) in batch.iter().enumerate() {
        let mut e = aws_sdk_sns::types::PublishBatchRequestEntry::builder()
            .id(i.to_string())
            .message(&m.encoded.body)
            .set_message_group_id(m.group_id.clone())
            .set_message_deduplication_id(m.dedup_id.clone());
        for (n, a) in &m.encoded.attributes {
            if let Some(v) = sns_attr(a) {
                e = e.message_attributes(n, v);
            }
        }
        let entry = e.build().map_err(|err| (err.to_string(), false))?;
        req = req.publish_batch_request_entries(entry);
    }
    let out = req.send().await.map_err(|e| failure(&e))?;
    let failed = out.failed().iter().map(|f| (f.id(), f.code(), f.message()));
    Ok(failed_entries(failed))
}

/// The failed entries of a batch answer as (id, `code: message`).
fn failed_entries<'a>(
    failed: impl Iterator<Item = (&'a str, &'a str, Option<&'a str>)>,
) -> Vec<(String, String)> {
    failed
        .map(|(id, code, message)| (id.to_owned(), format!("{code}: {}", message.unwrap_or(""))))
        .collect()
}

fn fail_all(batch: Vec<Outgoing>, destination: &str, text: String, unreachable: bool) {
    for m in batch {
        m.finish(Err((broker_error(destination, text.clone()), unreachable)));
    }
}

/// An SDK error as the text reported and whether the endpoint could not be reached.
fn failure<E: std::error::Error, R>(e: &aws_sdk_sqs::error::SdkError<E, R>) -> (String, bool)
where
    aws_sdk_sqs::error::SdkError<E, R>: std::error::Error,
{
    (describe(e), is_connect_error(e))
}

/// [`failure`] as the error of a send to `destination`.
fn send_failure<E: std::error::Error, R>(
    destination: &str,
    e: &aws_sdk_sqs::error::SdkError<E, R>,
) -> (SendError, bool)
where
    aws_sdk_sqs::error::SdkError<E, R>: std::error::Error,
{
    let (text, unreachable) = failure(e);
    (broker_error(destination, text), unreachable)
}

async fn send_one(
    clients: &Clients,
    destination: &str,
    target: &SendTarget,
    m: &Outgoing,
) -> Result<(), (SendError, bool)> {
    match target {
        SendTarget::Queue(url) => {
            let mut req = clients
                .sqs
                .send_message()
                .queue_url(url)
                .message_body(&m.encoded.body)
                .set_message_group_id(m.group_id.clone())
                .set_message_deduplication_id(m.dedup_id.clone());
            for (n, a) in &m.encoded.attributes {
                if let Some(v) = sqs_attr(a) {
                    req = req.message_attributes(n, v);
                }
            }
            req.send()
                .await
                .map(|_| ())
                .map_err(|e| send_failure(destination, &e))
        }
        SendTarget::Topic(arn) => {
            let mut req = clients
                .sns
                .publish()
                .topic_arn(arn)
                .message(&m.encoded.body)
                .set_message_group_id(m.group_id.clone())
                .set_message_deduplication_id(m.dedup_id.clone());
            for (n, a) in &m.encoded.attributes {
                if let Some(v) = sns_attr(a) {
                    req = req.message_attributes(n, v);
                }
            }
            req.send()
                .await
                .map(|_| ())
                .map_err(|e| send_failure(destination, &e))
        }
    }
}

/// Sends one already-encoded message to a queue (used for dead letters).
pub(crate) async fn send_to_queue(
    clients: &Clients,
    queue_url: &str,
    encoded: &Encoded,
    group_id: Option<String>,
    dedup_id: Option<String>,
    delay_seconds: Option<i32>,
) -> Result<(), String> {
    let mut req = clients
        .sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(&encoded.body)
        .set_message_group_id(group_id)
        .set_message_deduplication_id(dedup_id)
        .set_delay_seconds(delay_seconds);
    for (n, a) in &encoded.attributes {
        if let Some(v) = sqs_attr(a) {
            req = req.message_attributes(n, v);
        }
    }
    req.send().await.map(|_| ()).map_err(|e| describe(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_ids() {
        assert_eq!(fifo_id("key-1"), "key-1");
        let long = "x".repeat(200);
        assert_eq!(fifo_id(&long), fifo_id(&long));
        assert!(fifo_id(&long).len() <= 128);
        assert_ne!(fifo_id("a b"), "a b");
    }
}
