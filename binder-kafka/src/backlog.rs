//! Reading a binding's queues from outside: a group's lag on a topic
//! (from the brokers' watermarks and the group's committed offsets), and the first records of
//! a topic (for `dlq peek`). Blocking calls: run them on a blocking thread.

use std::time::Duration;

use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use stream_core::message::RawMessage;

/// How long each broker request of a count may take.
const TIMEOUT: Duration = Duration::from_secs(2);

fn partitions<C: ClientContext>(client: &Client<C>, topic: &str) -> Option<Vec<i32>> {
    let md = client.fetch_metadata(Some(topic), TIMEOUT).ok()?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())?;
    Some(t.partitions().iter().map(|p| p.id()).collect())
}

fn count(from: i64, high: i64) -> u64 {
    u64::try_from(high.saturating_sub(from)).unwrap_or(0)
}

/// The lag on `topic` of the group `config` names (`group.id`): per partition, the high
/// watermark minus the committed offset (the low watermark where the group committed
/// nothing), summed. The client asks for offsets only; it never joins the group.
pub fn lag(config: &ClientConfig, topic: &str) -> Option<u64> {
    let consumer: BaseConsumer = config.create().ok()?;
    let ps = partitions(consumer.client(), topic)?;
    let mut tpl = TopicPartitionList::new();
    for p in &ps {
        tpl.add_partition(topic, *p);
    }
    let committed = consumer.committed_offsets(tpl, TIMEOUT).ok()?;
    let mut total = 0u64;
    for p in ps {
        let (low, high) = consumer.fetch_watermarks(topic, p, TIMEOUT).ok()?;
        let from = match committed.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o.max(low),
            _ => low,
        };
        total = total.saturating_add(count(from, high));
    }
    Some(total)
}

/// Up to `count` records of `topic` from where the group `config` names got to (its beginning
/// where it committed nothing), partition by partition in offset order, read by a client that
/// is assigned the partitions (no group joined, nothing committed, so the records stay for
/// every consumer). Stops at `count` or when the topic
/// yields nothing for a moment.
pub fn first_records(config: &ClientConfig, topic: &str, count: usize) -> Option<Vec<RawMessage>> {
    let consumer: BaseConsumer = config.create().ok()?;
    let mut all = TopicPartitionList::new();
    for p in partitions(consumer.client(), topic)? {
        all.add_partition(topic, p);
    }
    // Where the config's group got to (nothing committed: the beginning).
    let committed = consumer.committed_offsets(all.clone(), TIMEOUT).ok()?;
    let mut tpl = TopicPartitionList::new();
    for e in all.elements() {
        let from = match committed
            .find_partition(topic, e.partition())
            .map(|c| c.offset())
        {
            Some(Offset::Offset(o)) => Offset::Offset(o),
            _ => Offset::Beginning,
        };
        tpl.add_partition_offset(topic, e.partition(), from).ok()?;
    }
    consumer.assign(&tpl).ok()?;
    let mut out = Vec::new();
    while out.len() < count {
        let Some(polled) = consumer.poll(TIMEOUT) else {
            break;
        };
        let Ok(m) = polled else {
            break;
        };
        out.push(RawMessage::with_headers(
            bytes::Bytes::copy_from_slice(m.payload().unwrap_or(&[])),
            crate::headers::from_record(&m),
        ));
    }
    Some(out)
}
