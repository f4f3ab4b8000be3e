//! The SQS/SNS binder against a real SQS/SNS endpoint (moto's server locally:
//! `scripts/brokers up sqs`; `CLOUD_STREAM_TEST_AWS_ENDPOINT`, default `http://127.0.0.1:4566`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cloud_stream::binder::{Binder, BinderEnvironment, BinderFactory};
use cloud_stream::binder_sqs::provision::Clients;
use cloud_stream::binder_sqs::{BinderSettings, DestinationMode, SqsBinder, SqsBinderFactory};
use cloud_stream::RawMessage;

use crate::target::Target;

/// The endpoint under test.
pub fn endpoint() -> String {
    std::env::var("CLOUD_STREAM_TEST_AWS_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:4566".to_owned())
}

fn reachable(endpoint: &str) -> bool {
    let hostport = endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap_or("");
    use std::net::ToSocketAddrs;
    hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
        .unwrap_or(false)
}

/// The target, or `None` (with a message) when no endpoint is reachable outside CI.
pub fn target() -> Option<SqsTarget> {
    let endpoint = endpoint();
    if reachable(&endpoint) {
        return Some(SqsTarget {
            endpoint,
            dead: Default::default(),
        });
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("sqs endpoint not reachable at {endpoint}; run scripts/brokers up sqs");
    }
    eprintln!("sqs endpoint not reachable at {endpoint}; skipping (run scripts/brokers up sqs)");
    None
}

/// SQS/SNS on moto (or any endpoint), dummy static credentials, 1 s long polls.
pub struct SqsTarget {
    endpoint: String,
    /// Dead letters already taken from each `destination`/`group` DLQ: reading a DLQ deletes
    /// what it returns, so the target remembers it (scenarios may ask twice).
    dead: Mutex<HashMap<(String, String), Vec<RawMessage>>>,
}

impl SqsTarget {
    fn environment(&self) -> serde_json::Value {
        serde_json::json!({
            "endpoint": self.endpoint,
            "region": "us-east-1",
            "access-key": "test",
            "secret-key": "test",
            "consumer": { "wait-time-seconds": 1 }
        })
    }

    /// A concrete binder for checks the SPI does not expose (dead-letter queues).
    pub async fn binder(&self) -> SqsBinder {
        let settings =
            BinderSettings::from_environment("probe", &BinderEnvironment::own(self.environment()))
                .expect("settings");
        SqsBinder::new(Clients::connect(settings).await)
    }
}

#[async_trait]
impl Target for SqsTarget {
    fn binder_type(&self) -> &'static str {
        "sqs"
    }
    fn environment_yaml(&self) -> String {
        self.environment().to_string()
    }
    fn factory(&self) -> Arc<dyn BinderFactory> {
        Arc::new(SqsBinderFactory::new())
    }
    async fn probe_binder(&self) -> Arc<dyn Binder> {
        self.factory()
            .create("probe", &BinderEnvironment::own(self.environment()))
            .await
            .expect("sqs binder")
    }
    async fn dead_letters(
        &self,
        destination: &str,
        group: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<RawMessage> {
        let binder = self.binder().await;
        let key = (destination.to_owned(), group.to_owned());
        let known = |this: &Self| this.dead.lock().unwrap().get(&key).map_or(0, Vec::len);
        let store = |this: &Self, mut got: Vec<RawMessage>| {
            this.dead
                .lock()
                .unwrap()
                .entry(key.clone())
                .or_default()
                .append(&mut got);
        };
        let deadline = tokio::time::Instant::now() + timeout;
        while known(self) < n && tokio::time::Instant::now() < deadline {
            match binder
                .take_dead_letters(destination, Some(group), DestinationMode::Sns, false, 1)
                .await
            {
                Ok(got) => store(self, got),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        // Whatever else is already there is reported too.
        if let Ok(got) = binder
            .take_dead_letters(destination, Some(group), DestinationMode::Sns, false, 0)
            .await
        {
            store(self, got);
        }
        self.dead
            .lock()
            .unwrap()
            .get(&key)
            .cloned()
            .unwrap_or_default()
    }
    fn virtual_time(&self) -> bool {
        false
    }
    fn dead_letter_consumer_yaml(&self, binding: &str, destination: &str, group: &str) -> String {
        format!(
            "{}spring.cloud.stream.sqs.bindings.{binding}.consumer.destination-mode: sqs\n",
            crate::target::replay_binding(binding, &format!("{destination}-{group}-dlq"))
        )
    }
    fn batch_size_yaml(&self, binding: &str, size: usize) -> String {
        format!(
            "spring.cloud.stream.sqs.bindings.{binding}.consumer.max-number-of-messages: {size}\n"
        )
    }
}

crate::conformance_suite!(crate::sqs::target(), real);

/// SQS/SNS-specific checks (run only with a reachable endpoint).
mod specific {
    use std::time::Duration;

    use bytes::Bytes;
    use cloud_stream::binder::{
        BindError, BinderEnvironment, BinderFactory, ConsumerSpec, ProducerSpec, Route, SendError,
        Subscription,
    };
    use cloud_stream::binder_sqs::provision::Clients;
    use cloud_stream::binder_sqs::{BinderSettings, SqsBinderFactory};
    use cloud_stream::{HandlerError, RawMessage};
    use serde_json::json;

    use crate::outage_proxy::OutageProxy;
    use crate::target::{try_start_app, unique};

    fn spec(binding: &str, props: serde_json::Value) -> ConsumerSpec {
        ConsumerSpec {
            binding: binding.to_owned(),
            concurrency: 1,
            max_attempts: 3,
            instance_count: 1,
            binder_properties: props,
            ..Default::default()
        }
    }

    fn producer_spec(props: serde_json::Value) -> ProducerSpec {
        ProducerSpec {
            binding: "probe-out".to_owned(),
            partition_count: 1,
            binder_properties: props,
            ..Default::default()
        }
    }

    async fn next(
        sub: &mut Box<dyn Subscription>,
        wait: Duration,
    ) -> Option<Box<dyn cloud_stream::binder::Delivery>> {
        match tokio::time::timeout(wait, sub.next()).await {
            Ok(Some(Ok(d))) => Some(d),
            _ => None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_headers_and_binary_values_round_trip_exactly() {
        let Some(t) = super::target() else { return };
        let b = crate::target::Target::probe_binder(&t).await;
        let dest = unique("hdr");
        let mut sub = b
            .bind_consumer(&dest, Some("g"), &spec("h-in-0", json!({})))
            .await
            .unwrap();
        let mut m = RawMessage::new(Bytes::from_static(&[0, 255, 1, 2, 254]))
            .header("content-type", "application/octet-stream")
            .header("id", "m-1")
            .header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .header("bin", vec![9u8, 0, 7])
            .header("name with spaces:and colon", "x")
            .header("empty", "")
            .header("unicode", "grüße ✓");
        for i in 0..14 {
            m = m.header(format!("h{i}"), format!("value {i}"));
        }
        let p = b
            .bind_producer(&dest, &producer_spec(json!({})))
            .await
            .unwrap();
        p.send(m.clone(), Route::default()).await.unwrap();
        let mut d = next(&mut sub, Duration::from_secs(20))
            .await
            .expect("delivery");
        let got = d.take_message();
        d.ack().await.unwrap();
        assert_eq!(
            got, m,
            "every header and the binary payload come back exactly"
        );
        sub.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requeue_and_drop_redeliver_at_once() {
        let Some(t) = super::target() else { return };
        let b = crate::target::Target::probe_binder(&t).await;
        let dest = unique("rq");
        let mut sub = b
            .bind_consumer(&dest, Some("g"), &spec("r-in-0", json!({})))
            .await
            .unwrap();
        let p = b
            .bind_producer(&dest, &producer_spec(json!({})))
            .await
            .unwrap();
        p.send(RawMessage::new(Bytes::from_static(b"1")), Route::default())
            .await
            .unwrap();
        let d = next(&mut sub, Duration::from_secs(20))
            .await
            .expect("first");
        assert_eq!(d.redelivery_count(), 1);
        d.requeue().await.unwrap();
        let d = next(&mut sub, Duration::from_secs(5))
            .await
            .expect("redelivered after requeue");
        assert_eq!(d.redelivery_count(), 2);
        drop(d);
        let d = next(&mut sub, Duration::from_secs(5))
            .await
            .expect("redelivered after drop");
        assert_eq!(d.redelivery_count(), 3);
        d.ack().await.unwrap();
        assert!(
            next(&mut sub, Duration::from_secs(3)).await.is_none(),
            "deleted after ack"
        );
        sub.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn visibility_is_extended_while_a_handler_runs() {
        let Some(t) = super::target() else { return };
        let b = crate::target::Target::probe_binder(&t).await;
        let dest = unique("vis");
        let mut sub = b
            .bind_consumer(
                &dest,
                Some("g"),
                &spec("v-in-0", json!({ "visibility-timeout": 2 })),
            )
            .await
            .unwrap();
        let p = b
            .bind_producer(&dest, &producer_spec(json!({})))
            .await
            .unwrap();
        p.send(
            RawMessage::new(Bytes::from_static(b"slow")),
            Route::default(),
        )
        .await
        .unwrap();
        let d = next(&mut sub, Duration::from_secs(20))
            .await
            .expect("delivery");
        // Held three times the visibility timeout: never redelivered meanwhile.
        assert!(
            next(&mut sub, Duration::from_secs(6)).await.is_none(),
            "redelivered while in flight"
        );
        d.ack().await.unwrap();
        assert!(next(&mut sub, Duration::from_secs(3)).await.is_none());
        sub.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn anonymous_queue_is_removed_on_close() {
        let Some(t) = super::target() else { return };
        let b = crate::target::Target::probe_binder(&t).await;
        let clients = Clients::connect(
            BinderSettings::from_environment("c", &BinderEnvironment::own(t.environment()))
                .unwrap(),
        )
        .await;
        let dest = unique("anon");
        let prefix = format!("{dest}-anon-");
        let count = || async {
            clients
                .sqs
                .list_queues()
                .queue_name_prefix(&prefix)
                .send()
                .await
                .unwrap()
                .queue_urls()
                .len()
        };
        let sub = b
            .bind_consumer(&dest, None, &spec("a-in-0", json!({})))
            .await
            .unwrap();
        assert_eq!(count().await, 1, "temporary queue exists while bound");
        sub.close().await;
        assert_eq!(count().await, 0, "temporary queue removed on close");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqs_mode_is_a_work_queue() {
        let Some(t) = super::target() else { return };
        let b = crate::target::Target::probe_binder(&t).await;
        let dest = unique("work");
        let props = json!({ "destination-mode": "sqs" });
        let mut a = b
            .bind_consumer(&dest, Some("g1"), &spec("w-in-0", props.clone()))
            .await
            .unwrap();
        let mut c = b
            .bind_consumer(&dest, Some("g2"), &spec("w-in-0", props.clone()))
            .await
            .unwrap();
        let p = b.bind_producer(&dest, &producer_spec(props)).await.unwrap();
        for i in 0..10u8 {
            p.send(
                RawMessage::new(Bytes::from(vec![b'0' + i])),
                Route::default(),
            )
            .await
            .unwrap();
        }
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while seen.len() < 10 && tokio::time::Instant::now() < deadline {
            for sub in [&mut a, &mut c] {
                if let Some(mut d) = next(sub, Duration::from_millis(300)).await {
                    seen.push(d.take_message().payload.to_vec());
                    d.ack().await.unwrap();
                }
            }
        }
        seen.sort();
        assert_eq!(
            seen.len(),
            10,
            "each message once, whichever consumer: {seen:?}"
        );
        seen.dedup();
        assert_eq!(seen.len(), 10);
        a.close().await;
        c.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fifo_keeps_order_per_key_and_drops_duplicate_ids() {
        let Some(t) = super::target() else { return };
        let b = crate::target::Target::probe_binder(&t).await;
        let dest = unique("fifo");
        let props = json!({ "fifo": true });
        let mut sub = b
            .bind_consumer(&dest, Some("g"), &spec("f-in-0", props.clone()))
            .await
            .unwrap();
        let p = b.bind_producer(&dest, &producer_spec(props)).await.unwrap();
        for i in 0..6u32 {
            let m = RawMessage::new(Bytes::from(i.to_string())).header("id", format!("id-{i}"));
            let route = Route {
                partition_key: Some(format!("k{}", i % 2)),
                partition: None,
            };
            p.send(m, route).await.unwrap();
        }
        // The same id again: deduplicated by SQS.
        let dup = RawMessage::new(Bytes::from_static(b"0")).header("id", "id-0");
        p.send(
            dup,
            Route {
                partition_key: Some("k0".into()),
                partition: None,
            },
        )
        .await
        .unwrap();
        let mut per_key: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
        let mut n = 0;
        while let Some(mut d) = next(&mut sub, Duration::from_secs(5)).await {
            let key = d.ordering_key().expect("FIFO deliveries carry their group");
            let v: u32 = String::from_utf8_lossy(&d.take_message().payload)
                .parse()
                .unwrap();
            per_key.entry(key).or_default().push(v);
            d.ack().await.unwrap();
            n += 1;
        }
        assert_eq!(n, 6, "{per_key:?}");
        assert_eq!(per_key["k0"], vec![0, 2, 4]);
        assert_eq!(per_key["k1"], vec![1, 3, 5]);
        sub.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn oversized_message_is_rejected_before_sending() {
        let Some(t) = super::target() else { return };
        let b = crate::target::Target::probe_binder(&t).await;
        let p = b
            .bind_producer(&unique("big"), &producer_spec(json!({})))
            .await
            .unwrap();
        let m = RawMessage::new(Bytes::from(vec![b'a'; 300 * 1024]));
        match p.send(m, Route::default()).await {
            Err(SendError::TooLarge { limit, .. }) => assert_eq!(limit, 262_144),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unreachable_endpoint_is_down_and_bind_fails_typed() {
        // Needs no broker: a closed local port.
        let env = BinderEnvironment::own(json!({
            "endpoint": "http://127.0.0.1:9", "access-key": "test", "secret-key": "test"
        }));
        let b = SqsBinderFactory::new().create("down", &env).await.unwrap();
        assert!(!b.health().await.is_up());
        match b.bind_producer("x", &producer_spec(json!({}))).await {
            Err(BindError::Connect { .. }) => {}
            Err(e) => panic!("expected a Connect error, got {e}"),
            Ok(_) => panic!("bound against a closed port"),
        }
        match b
            .bind_consumer("x", Some("g"), &spec("x-in-0", json!({})))
            .await
        {
            Err(BindError::Connect { .. }) => {}
            Err(e) => panic!("expected a Connect error, got {e}"),
            Ok(_) => panic!("bound against a closed port"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn misspelt_binder_keys_fail_the_build_with_a_suggestion() {
        let Some(t) = super::target() else { return };
        let yaml = "spring.cloud.function.definition: sink\nspring.cloud.stream.bindings.sink-in-0: { destination: x, group: g }\nspring.cloud.stream.sqs.bindings.sink-in-0.consumer.wait-time-second: 1\n";
        let err = try_start_app(&t, yaml, |b| {
            b.consumer("sink", |_: String| async { Ok::<_, HandlerError>(()) })
        })
        .await
        .expect_err("unknown sqs consumer key");
        let msg = err.to_string();
        assert!(
            msg.contains("wait-time-second") && msg.contains("wait-time-seconds"),
            "{msg}"
        );
        let yaml = "spring.cloud.function.definition: sink\nspring.cloud.stream.bindings.sink-in-0: { destination: x, group: g }\n";
        let bad_env =
            format!("spring.cloud.stream.binders.under-test.environment.regoin: us-east-1\n{yaml}");
        let err = try_start_app(&t, &bad_env, |b| {
            b.consumer("sink", |_: String| async { Ok::<_, HandlerError>(()) })
        })
        .await
        .expect_err("unknown environment key");
        assert!(err.to_string().contains("region"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn provisioning_is_idempotent_with_policy_redrive_and_raw_delivery() {
        use cloud_stream::binder_sqs::aws_sdk_sqs::types::QueueAttributeName;
        let Some(t) = super::target() else { return };
        let b = crate::target::Target::probe_binder(&t).await;
        let clients = Clients::connect(
            BinderSettings::from_environment("c", &BinderEnvironment::own(t.environment()))
                .unwrap(),
        )
        .await;
        let dest = unique("prov");
        let mut s = spec("p-in-0", json!({}));
        s.max_attempts = 4;
        for _ in 0..2 {
            let sub = b.bind_consumer(&dest, Some("g"), &s).await.unwrap();
            sub.close().await;
        }
        let url = clients
            .sqs
            .get_queue_url()
            .queue_name(format!("{dest}-g"))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        let attrs = clients
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let attrs = attrs.attributes().unwrap();
        let redrive: serde_json::Value =
            serde_json::from_str(&attrs[&QueueAttributeName::RedrivePolicy]).unwrap();
        assert!(redrive["deadLetterTargetArn"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{dest}-g-dlq")));
        let max: u32 = redrive["maxReceiveCount"]
            .to_string()
            .trim_matches('"')
            .parse()
            .unwrap();
        assert!(
            max >= 50 && max > s.max_attempts,
            "backstop above max-attempts: {max}"
        );
        let policy = &attrs[&QueueAttributeName::Policy];
        assert!(
            policy.contains("sns.amazonaws.com") && policy.contains(&dest),
            "{policy}"
        );
        // CreateTopic is idempotent: it returns the existing topic's ARN.
        let topic = clients.topic(&dest, false).await.unwrap();
        let subs = clients
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(&topic)
            .send()
            .await
            .unwrap();
        assert_eq!(
            subs.subscriptions().len(),
            1,
            "binding twice subscribes once"
        );
        let sub_arn = subs.subscriptions()[0].subscription_arn().unwrap();
        let sa = clients
            .sns
            .get_subscription_attributes()
            .subscription_arn(sub_arn)
            .send()
            .await
            .unwrap();
        assert_eq!(
            sa.attributes()
                .unwrap()
                .get("RawMessageDelivery")
                .map(String::as_str),
            Some("true")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_auto_create_missing_resources_are_typed_errors() {
        let Some(t) = super::target() else { return };
        let mut env = t.environment();
        env["auto-create"] = json!(false);
        let strict = SqsBinderFactory::new()
            .create("strict", &BinderEnvironment::own(env))
            .await
            .unwrap();
        let dest = unique("nocreate");
        match strict.bind_producer(&dest, &producer_spec(json!({}))).await {
            Err(BindError::Provision { .. }) => {}
            Err(e) => panic!("expected a Provision error, got {e}"),
            Ok(_) => panic!("bound to a topic that does not exist"),
        }
        // Once provisioned (by a binder that may create), the strict binder finds everything.
        let b = crate::target::Target::probe_binder(&t).await;
        b.bind_consumer(&dest, Some("g"), &spec("n-in-0", json!({})))
            .await
            .unwrap()
            .close()
            .await;
        let mut sub = strict
            .bind_consumer(&dest, Some("g"), &spec("n-in-0", json!({})))
            .await
            .expect("existing resources are found");
        let p = strict
            .bind_producer(&dest, &producer_spec(json!({})))
            .await
            .expect("existing topic is found");
        p.send(RawMessage::new(Bytes::from_static(b"ok")), Route::default())
            .await
            .unwrap();
        let d = next(&mut sub, Duration::from_secs(20))
            .await
            .expect("delivery");
        d.ack().await.unwrap();
        sub.close().await;
    }

    /// A send made while the endpoint cannot be reached is made again until it is back (here
    /// after 2 s), as the other binders' sends ride out an outage: it resolves `Ok` and the
    /// message arrives, instead of failing and having the handler's input dead-lettered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_rides_out_an_endpoint_outage() {
        if crate::sqs::target().is_none() {
            return;
        }
        let endpoint = crate::sqs::endpoint();
        let proxy = OutageProxy::start(endpoint.trim_start_matches("http://")).await;
        let env = BinderEnvironment::own(json!({
            "endpoint": format!("http://{}", proxy.addr), "region": "us-east-1",
            "access-key": "test", "secret-key": "test"
        }));
        let binder = SqsBinderFactory::new()
            .create("outage", &env)
            .await
            .expect("binder");
        let dest = unique("outage");
        let mut sub = binder
            .bind_consumer(
                &dest,
                Some("g"),
                &spec("r-in-0", json!({ "wait-time-seconds": 1 })),
            )
            .await
            .expect("bind consumer");
        let spec = ProducerSpec {
            partition_count: 1,
            ..Default::default()
        };
        let producer = binder
            .bind_producer(&dest, &spec)
            .await
            .expect("bind producer");
        proxy.cut();
        let sending = tokio::spawn(async move {
            let sent = producer
                .send(
                    RawMessage::new(Bytes::from_static(b"during")),
                    Route::default(),
                )
                .await;
            (sent, producer)
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!sending.is_finished(), "the send waits for the endpoint");
        proxy.restore();
        let (sent, _producer) = tokio::time::timeout(Duration::from_secs(20), sending)
            .await
            .expect("the send resolves once the endpoint is back")
            .expect("join");
        sent.expect("sent after the outage");
        let d = loop {
            let next = tokio::time::timeout(Duration::from_secs(20), sub.next())
                .await
                .expect("a delivery in time")
                .expect("open");
            // Receive errors from the outage are reported; the loop goes on.
            if let Ok(d) = next {
                break d;
            }
        };
        assert_eq!(&d.message().payload[..], b"during");
        d.ack().await.expect("ack");
        sub.close().await;
    }
}
