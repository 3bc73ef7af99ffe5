//! The gateway's workers: their addresses and which of them answer. Queries are
//! planned over the live ones only; a worker that stops answering is left out until
//! it answers again (probed in the background, and at once when a query fails on
//! the network).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use datafusion::common::{DataFusionError, Result};
use datafusion_distributed::WorkerResolver;
use url::Url;

/// How long a probe waits for a worker's TCP handshake.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Worker {
    url: Url,
    /// `host:port`, what a probe connects to.
    address: String,
    live: AtomicBool,
}

/// The workers of one gateway; clones share liveness.
#[derive(Debug, Clone)]
pub struct WorkerSet {
    workers: Arc<[Worker]>,
}

/// A worker address that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("worker address {address:?}: {reason}")]
pub struct BadWorkerAddress {
    pub address: String,
    pub reason: String,
}

impl WorkerSet {
    /// The workers of a `--workers` flag (blank entries ignored); `None` without any.
    pub fn from_flag(addresses: &[String]) -> Result<Option<Self>, BadWorkerAddress> {
        if addresses.iter().all(|address| address.trim().is_empty()) {
            return Ok(None);
        }
        Self::parse(addresses.iter().map(String::as_str)).map(Some)
    }

    /// Workers from `http://host:port` (or bare `host:port`) addresses; every one is
    /// taken as live until a probe says otherwise.
    pub fn parse<'a>(addresses: impl IntoIterator<Item = &'a str>) -> Result<Self, BadWorkerAddress> {
        let mut workers = Vec::new();
        for address in addresses.into_iter().map(str::trim).filter(|a| !a.is_empty()) {
            let bad = |reason: &str| BadWorkerAddress { address: address.to_owned(), reason: reason.to_owned() };
            let text = if address.contains("://") { address.to_owned() } else { format!("http://{address}") };
            let url = Url::parse(&text).map_err(|error| bad(&error.to_string()))?;
            if url.scheme() != "http" {
                return Err(bad("workers are reached over http:// (plaintext gRPC on a private network)"));
            }
            let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
                return Err(bad("it names no host and port"));
            };
            if url.path() != "/" && !url.path().is_empty() {
                return Err(bad("a worker address has no path"));
            }
            let address = format!("{host}:{port}");
            if workers.iter().any(|w: &Worker| w.address == address) {
                return Err(bad("named twice"));
            }
            workers.push(Worker { url, address, live: AtomicBool::new(true) });
        }
        if workers.is_empty() {
            return Err(BadWorkerAddress { address: String::new(), reason: "no worker addresses given".into() });
        }
        Ok(Self { workers: workers.into() })
    }

    /// Every configured worker's URL.
    pub fn urls(&self) -> impl Iterator<Item = &Url> {
        self.workers.iter().map(|w| &w.url)
    }

    /// How many workers answered the last probe.
    pub fn live_count(&self) -> usize {
        self.workers.iter().filter(|w| w.live.load(Ordering::Relaxed)).count()
    }

    /// Connects to every worker now; records and returns who answered. A change is logged.
    pub async fn probe(&self) -> Vec<(Url, bool)> {
        let probes = self.workers.iter().map(|worker| async move {
            let connect = tokio::net::TcpStream::connect(worker.address.as_str());
            let live = matches!(tokio::time::timeout(PROBE_TIMEOUT, connect).await, Ok(Ok(_)));
            let was = worker.live.swap(live, Ordering::Relaxed);
            match (was, live) {
                (true, false) => {
                    tracing::warn!(worker = %worker.url, "worker is unreachable; queries go to the others")
                }
                (false, true) => tracing::info!(worker = %worker.url, "worker is reachable again"),
                _ => {}
            }
            (worker.url.clone(), live)
        });
        futures::future::join_all(probes).await
    }

    /// Probes the workers every `every` until the last clone of this set is dropped.
    pub fn watch(&self, every: Duration) {
        let weak = Arc::downgrade(&self.workers);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(workers) = weak.upgrade() else { return };
                WorkerSet { workers }.probe().await;
            }
        });
    }
}

impl WorkerResolver for WorkerSet {
    fn get_urls(&self) -> Result<Vec<Url>, DataFusionError> {
        let live: Vec<Url> =
            self.workers.iter().filter(|w| w.live.load(Ordering::Relaxed)).map(|w| w.url.clone()).collect();
        if live.is_empty() {
            return Err(DataFusionError::Execution("no distributed worker is reachable".into()));
        }
        Ok(live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_strictly() {
        let set = WorkerSet::parse(["127.0.0.1:7001", "http://localhost:7002/"]).unwrap();
        assert_eq!(
            set.urls().map(Url::as_str).collect::<Vec<_>>(),
            ["http://127.0.0.1:7001/", "http://localhost:7002/"]
        );
        assert!(WorkerSet::parse(["https://x:1"]).is_err());
        assert!(WorkerSet::parse(["x:1", "http://x:1"]).unwrap_err().reason.contains("twice"));
        assert!(WorkerSet::parse(["x:1/path"]).is_err());
        assert!(WorkerSet::parse([" "]).is_err());
        assert!(WorkerSet::from_flag(&[String::new(), " ".into()]).unwrap().is_none());
        assert_eq!(WorkerSet::from_flag(&["x:1".into(), "".into()]).unwrap().unwrap().urls().count(), 1);
    }

    #[tokio::test]
    async fn a_worker_that_does_not_answer_is_left_out_until_it_does() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = listener.local_addr().unwrap().to_string();
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let down = closed.local_addr().unwrap().to_string();
        drop(closed);
        let set = WorkerSet::parse([up.as_str(), down.as_str()]).unwrap();
        assert_eq!(set.get_urls().unwrap().len(), 2);
        set.probe().await;
        assert_eq!(set.get_urls().unwrap(), vec![Url::parse(&format!("http://{up}")).unwrap()]);
        drop(listener);
        set.probe().await;
        assert!(set.get_urls().is_err());
    }
}
