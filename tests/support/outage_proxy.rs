//! A TCP proxy in front of a broker endpoint that the test can cut and restore: an outage of
//! the endpoint as its clients see it (open connections reset, new ones refused) while the
//! broker keeps its state. Used where restarting the broker would wipe what it holds (moto
//! keeps no state across a restart; real SQS does not restart, it becomes unreachable).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// The proxy; dropping it stops it.
pub struct OutageProxy {
    /// `127.0.0.1:<port>` to give the clients instead of the broker's address.
    pub addr: String,
    open: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl OutageProxy {
    /// Starts forwarding every connection to `target` (`host:port`).
    pub async fn start(target: &str) -> OutageProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let open = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (o, l, target) = (Arc::clone(&open), Arc::clone(&links), target.to_owned());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !o.load(Ordering::SeqCst) {
                    drop(client); // refused while the endpoint is cut
                    continue;
                }
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect(&target).await {
                        let mut client = client;
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
                let mut links = l.lock().unwrap_or_else(|e| e.into_inner());
                links.retain(|h| !h.is_finished());
                links.push(link.abort_handle());
            }
        })
        .abort_handle();
        OutageProxy {
            addr,
            open,
            links,
            accept,
        }
    }

    /// Cuts the endpoint: every open connection is dropped and new ones are closed at once.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for link in self
            .links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            link.abort();
        }
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for OutageProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
