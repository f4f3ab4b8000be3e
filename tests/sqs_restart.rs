//! The SQS/SNS binder across a restart of the endpoint (moto's server): health goes DOWN while
//! it is stopped, binds fail with a typed `Connect` error, receive loops report errors instead
//! of dying, and health is UP again after the restart. moto keeps no state across a restart
//! (real SQS does), so the check after the restart is that binding again re-provisions
//! everything and messages flow, not that old queues survived.
//!
//! Own test target: it stops the shared broker, so it must not run beside the conformance
//! suite (cargo runs test binaries one after another).
#![cfg(feature = "sqs")]

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use cloud_stream::binder::{
    BindError, Binder, BinderEnvironment, BinderFactory, ConsumerSpec, ProducerSpec, Route,
    Subscription,
};
use cloud_stream::binder_sqs::SqsBinderFactory;
use cloud_stream::RawMessage;

fn endpoint() -> String {
    std::env::var("CLOUD_STREAM_TEST_AWS_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:4566".to_owned())
}

fn brokers(verb: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/brokers");
    let status = Command::new(script)
        .args([verb, "sqs"])
        .status()
        .expect("run scripts/brokers");
    assert!(status.success(), "scripts/brokers {verb} sqs failed");
}

fn reachable() -> bool {
    let e = endpoint();
    let hostport = e
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or("")
        .to_owned();
    use std::net::ToSocketAddrs;
    hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

fn unique(base: &str) -> String {
    format!(
        "{base}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

fn consumer_spec() -> ConsumerSpec {
    ConsumerSpec {
        binding: "r-in-0".into(),
        concurrency: 1,
        max_attempts: 3,
        instance_count: 1,
        binder_properties: serde_json::json!({ "wait-time-seconds": 1 }),
        ..Default::default()
    }
}

async fn round_trip(binder: &dyn Binder) -> Box<dyn Subscription> {
    let dest = unique("restart");
    let mut sub = binder
        .bind_consumer(&dest, Some("g"), &consumer_spec())
        .await
        .expect("bind consumer");
    let producer = binder
        .bind_producer(
            &dest,
            &ProducerSpec {
                partition_count: 1,
                ..Default::default()
            },
        )
        .await
        .expect("bind producer");
    producer
        .send(
            RawMessage::new(Bytes::from_static(b"ping")),
            Route::default(),
        )
        .await
        .expect("send");
    let d = tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .expect("a delivery in time")
        .expect("open")
        .expect("delivery");
    assert_eq!(&d.message().payload[..], b"ping");
    d.ack().await.expect("ack");
    sub
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_an_endpoint_restart() {
    if !reachable() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "sqs endpoint not reachable at {}; run scripts/brokers up sqs",
                endpoint()
            );
        }
        eprintln!(
            "sqs endpoint not reachable at {}; skipping (run scripts/brokers up sqs)",
            endpoint()
        );
        return;
    }
    let env = BinderEnvironment::own(serde_json::json!({
        "endpoint": endpoint(), "region": "us-east-1", "access-key": "test", "secret-key": "test"
    }));
    let binder = SqsBinderFactory::new()
        .create("restart", &env)
        .await
        .expect("binder");
    assert!(binder.health().await.is_up());
    let mut old = round_trip(binder.as_ref()).await;

    brokers("down");
    let result = std::panic::AssertUnwindSafe(async {
        let health = binder.health().await;
        assert!(!health.is_up(), "health while stopped: {health:?}");
        match binder
            .bind_producer(
                "x",
                &ProducerSpec {
                    partition_count: 1,
                    ..Default::default()
                },
            )
            .await
        {
            Err(BindError::Connect { .. }) => {}
            Err(e) => panic!("expected a Connect error, got {e}"),
            Ok(_) => panic!("bound while the endpoint is down"),
        }
        // The receive loop reports the failure and keeps going.
        let next = tokio::time::timeout(Duration::from_secs(30), old.next()).await;
        assert!(
            matches!(next, Ok(Some(Err(_)))),
            "a receive error while down"
        );
    });
    let outcome = futures::FutureExt::catch_unwind(result).await;
    brokers("up");
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }

    assert!(binder.health().await.is_up(), "health after the restart");
    // moto lost its state: binding again re-provisions and messages flow.
    let fresh = round_trip(binder.as_ref()).await;
    fresh.close().await;
    old.close().await;
}
