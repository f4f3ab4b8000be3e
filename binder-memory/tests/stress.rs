//! The broker on a multi-threaded runtime: no lost wake-ups, no loss, no duplicates.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use binder_memory::{MemoryBinder, MemoryBroker};
use bytes::Bytes;
use stream_core::binder::{Binder, ConsumerSpec, Producer, ProducerSpec, Route};
use stream_core::message::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_producers_members_and_groups_under_backpressure() {
    const PER_PRODUCER: usize = 2_000;
    const PRODUCERS: usize = 3;
    let broker = MemoryBroker::with_capacity(8);
    let b = MemoryBinder::new(broker.clone());
    let spec = ConsumerSpec {
        binding: "s-in-0".into(),
        concurrency: 2,
        ..ConsumerSpec::default()
    };
    let mut members = Vec::new();
    for group in ["a", "b"] {
        for _ in 0..3 {
            let mut sub = b.bind_consumer("load", Some(group), &spec).await.unwrap();
            members.push((
                group,
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    while let Ok(Some(d)) =
                        tokio::time::timeout(Duration::from_secs(2), sub.next()).await
                    {
                        let d = d.unwrap();
                        let s = String::from_utf8(d.message().payload.to_vec()).unwrap();
                        // Every 7th first delivery is requeued once: exercises redelivery.
                        if d.redelivery_count() == 1 && s.len() % 7 == 0 {
                            d.requeue().await.unwrap();
                            continue;
                        }
                        got.push(s);
                        d.ack().await.unwrap();
                    }
                    got
                }),
            ));
        }
    }
    let pspec = ProducerSpec {
        binding: "s-out-0".into(),
        partition_count: 4,
        ..ProducerSpec::default()
    };
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let producer: Arc<dyn Producer> = Arc::from(b.bind_producer("load", &pspec).await.unwrap());
        producers.push(tokio::spawn(async move {
            for i in 0..PER_PRODUCER {
                let route = Route {
                    partition_key: None,
                    partition: Some((i % 4) as u32),
                };
                producer
                    .send(Message::new(Bytes::from(format!("p{p}-{i}"))), route)
                    .await
                    .unwrap();
            }
        }));
    }
    for p in producers {
        tokio::time::timeout(Duration::from_secs(60), p)
            .await
            .expect("producers finish")
            .unwrap();
    }
    let mut per_group: std::collections::HashMap<&str, Vec<String>> = Default::default();
    for (group, h) in members {
        per_group.entry(group).or_default().extend(h.await.unwrap());
    }
    for group in ["a", "b"] {
        let all = &per_group[group];
        assert_eq!(
            all.len(),
            PER_PRODUCER * PRODUCERS,
            "group {group} got everything once"
        );
        let distinct: HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len(), "group {group} has no duplicates");
        assert_eq!(broker.queue_depth("load", group), Some(0));
        assert_eq!(broker.in_flight("load", group), Some(0));
    }
}
