//! POSTing lineage events to an HTTP endpoint (Marquez: `…/api/v1/lineage`) from a
//! bounded queue drained by one background task. A full queue, an endpoint that is
//! down, slow (each POST has a short timeout) or answers with an error: the event is
//! dropped and counted. Queries never wait for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Url;
use tokio::sync::mpsc;

use crate::error::AuditError;

/// Events waiting to be posted before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 1024;
/// How long one POST may take, connecting included.
pub const POST_TIMEOUT: Duration = Duration::from_secs(2);

/// Counters of what happened to the events.
#[derive(Debug, Default)]
pub struct Delivery {
    posted: AtomicU64,
    dropped: AtomicU64,
}

impl Delivery {
    /// Events the endpoint accepted (a 2xx answer).
    pub fn posted(&self) -> u64 {
        self.posted.load(Ordering::Relaxed)
    }

    /// Events not delivered: the queue was full, or the POST failed.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn drop_one(&self, why: &str, detail: &dyn std::fmt::Display) {
        let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        // The first drop, then one in a thousand.
        if dropped % 1000 == 1 {
            tracing::warn!(dropped, %detail, "lineage event dropped: {why}");
        }
    }
}

/// The queue's sending side.
#[derive(Debug)]
pub(crate) struct HttpSink {
    tx: mpsc::Sender<Vec<u8>>,
    delivery: Arc<Delivery>,
}

/// `text` as an endpoint URL: absolute, http or https.
pub fn parse_url(text: &str) -> Result<Url, AuditError> {
    let invalid = |reason: String| AuditError::LineageUrl { url: text.to_owned(), reason };
    let url = Url::parse(text).map_err(|error| invalid(error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!("the scheme is {}, not http or https", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("there is no host".into()));
    }
    Ok(url)
}

impl HttpSink {
    /// Starts the posting task on `runtime`.
    pub(crate) fn spawn(url: Url, capacity: usize, runtime: &tokio::runtime::Handle) -> Result<Self, AuditError> {
        let client = reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            .connect_timeout(POST_TIMEOUT)
            .build()
            .map_err(|error| AuditError::LineageClient(error.to_string()))?;
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(capacity);
        let delivery = Arc::new(Delivery::default());
        let counts = Arc::clone(&delivery);
        runtime.spawn(async move {
            while let Some(body) = rx.recv().await {
                let sent = client
                    .post(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => {
                        counts.posted.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(response) => counts.drop_one("the endpoint refused it", &response.status()),
                    Err(error) => counts.drop_one("the endpoint cannot be reached", &error),
                }
            }
        });
        Ok(Self { tx, delivery })
    }

    /// Queues one event; drops it (counted) when the queue is full.
    pub(crate) fn offer(&self, body: Vec<u8>) {
        match self.tx.try_send(body) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.delivery.drop_one("the queue is full", &QUEUE_CAPACITY),
            Err(mpsc::error::TrySendError::Closed(_)) => self.delivery.drop_one("the sender stopped", &"closed"),
        }
    }

    pub(crate) fn delivery(&self) -> &Arc<Delivery> {
        &self.delivery
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(parse_url("http://localhost:5000/api/v1/lineage").is_ok());
        assert!(parse_url("https://marquez.example/api/v1/lineage").is_ok());
        for bad in ["not a url", "ftp://host/x", "localhost:5000", "http://"] {
            let error = parse_url(bad).unwrap_err().to_string();
            assert!(error.contains(bad), "{error}");
        }
    }

    /// Nothing drains the queue (the runtime never runs the posting task): the queue
    /// fills, and what does not fit is dropped and counted, without blocking.
    #[test]
    fn a_full_queue_drops_and_counts() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = parse_url(&format!("http://{}/api/v1/lineage", listener.local_addr().unwrap())).unwrap();
        let sink = runtime.block_on(async { HttpSink::spawn(url, 4, &tokio::runtime::Handle::current()) }).unwrap();
        for n in 0..20 {
            sink.offer(format!("{{\"n\":{n}}}").into_bytes());
        }
        // Nothing ran yet on the runtime: 4 queued, 16 dropped.
        assert_eq!(sink.delivery().dropped(), 16);
        assert_eq!(sink.delivery().posted(), 0);
    }

    /// A receiver that answers 200: events arrive, in order, as JSON bodies.
    #[test]
    fn events_are_posted() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = parse_url(&format!("http://{}/api/v1/lineage", listener.local_addr().unwrap())).unwrap();
        let sink = HttpSink::spawn(url, 16, runtime.handle()).unwrap();
        sink.offer(b"{\"n\":1}".to_vec());
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(&request).contains("{\"n\":1}") {
            let read = stream.read(&mut buffer).unwrap();
            assert!(read > 0, "connection closed: {}", String::from_utf8_lossy(&request));
            request.extend_from_slice(&buffer[..read]);
        }
        let text = String::from_utf8_lossy(&request).to_lowercase();
        assert!(text.starts_with("post /api/v1/lineage "), "{text}");
        assert!(text.contains("content-type: application/json"), "{text}");
        stream.write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n").unwrap();
        // Wait (bounded by the POST timeout) for the answer to be counted.
        let deadline = std::time::Instant::now() + POST_TIMEOUT * 2;
        while sink.delivery().posted() == 0 && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!((sink.delivery().posted(), sink.delivery().dropped()), (1, 0));
    }
}
