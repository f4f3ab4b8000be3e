//! The smallest cloud-stream Function application, on the in-memory binder.
//!
//! `uppercase` is bound from destination `words` to `upper-words`; `log`, a consumer in the same
//! application, prints what arrives on `upper-words`. `main` sends a few strings with the
//! `StreamBridge`, waits for their uppercased versions, shuts down and exits 0.
//!
//! ```text
//! cargo run --example uppercase
//! ```

use std::time::Duration;

use cloud_stream::prelude::*;
use tokio::sync::mpsc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `RUST_LOG=info` shows the delivery plan that `build()` logs.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();

    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/uppercase/application.yaml"
    );
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<String>();

    let app = StreamApp::builder()
        .config_file(config)
        .function("uppercase", |s: String| async move {
            Ok::<_, HandlerError>(s.to_uppercase())
        })
        .consumer("log", move |s: String| {
            let seen_tx = seen_tx.clone();
            async move {
                println!("uppercase -> {s}");
                let _ = seen_tx.send(s);
                Ok(())
            }
        })
        .build()
        .await?;

    let words = ["hello", "cloud stream", "from rust"];
    let bridge = app.bridge();
    for w in words {
        println!("send      -> {w}");
        bridge.send("words", w).await?;
    }

    let mut got = Vec::new();
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while got.len() < words.len() {
            match seen.recv().await {
                Some(s) => got.push(s),
                None => break,
            }
        }
    })
    .await;
    app.shutdown().await;
    if waited.is_err() || got.len() != words.len() {
        eprintln!("only {} of {} words came back", got.len(), words.len());
        std::process::exit(1);
    }
    println!("done: {} words uppercased", got.len());
    Ok(())
}
