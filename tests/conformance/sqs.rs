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
        let settings = BinderSettings::from_environment(
            "probe",
            &BinderEnvironment::own(self.environment()),
        )
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
        let mut store = |this: &Self, mut got: Vec<RawMessage>| {
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
}

crate::conformance_suite!(crate::sqs::target(), real);
