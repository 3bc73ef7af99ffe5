//! The server's Prometheus metrics, recorded by the Flight service and rendered by
//! the HTTP side (`/metrics`).
//!
//! What queries do is recorded as it happens, never waiting on a scrape: a query's
//! end is one atomic counter (its (outcome, code) series is resolved once), one
//! histogram observation and one count per product it read (the product's series is
//! found under a shared read lock, written only by the product's first query); rows
//! and bytes are atomic adds as they are sent. What the server holds (reloads, memory, spill files, each product's
//! health and freshness) is read from the serving snapshot when `/metrics` is
//! scraped ([`scrape`]), so a scrape never touches the query path.

mod products;
mod scrape;

use std::sync::OnceLock;
use std::time::Duration;

use meshgate_audit::Outcome;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};
use tonic::Code;

use crate::auth::Refusal;
use crate::serving::Current;

pub use products::{ProductState, product_states};

/// Query latency buckets, in seconds: a millisecond point lookup to a five-minute scan.
const LATENCY_BUCKETS: [f64; 16] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

const OUTCOMES: [Outcome; 4] = [Outcome::Ok, Outcome::Refused, Outcome::Failed, Outcome::Cancelled];

/// gRPC codes run from 0 (OK) to 16 (UNAUTHENTICATED).
const CODES: usize = 17;

/// The product a query read, as its metrics label it: domain, product, version.
pub(crate) type ProductLabels = [String; 3];

/// Every metric meshgate records, in one registry (the scrape-time ones are added
/// when rendering).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    queries: IntCounterVec,
    /// `queries`' series, each resolved on first use, by outcome then code.
    query_series: Vec<OnceLock<IntCounter>>,
    latency: Histogram,
    rows: IntCounter,
    bytes: IntCounter,
    active_streams: IntGauge,
    product_queries: IntCounterVec,
    auth_failures: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let metrics = Self {
            queries: register(
                &registry,
                IntCounterVec::new(
                    Opts::new("meshgate_queries_total", "Queries ended, by outcome and gRPC status code."),
                    &["outcome", "code"],
                ),
            ),
            query_series: (0..OUTCOMES.len() * CODES).map(|_| OnceLock::new()).collect(),
            latency: register(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "meshgate_query_duration_seconds",
                        "Time from a query's arrival to its end (planning, execution and streaming), every outcome.",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                ),
            ),
            rows: register(&registry, IntCounter::new("meshgate_rows_sent_total", "Result rows sent to clients.")),
            bytes: register(
                &registry,
                IntCounter::new("meshgate_bytes_sent_total", "Result bytes sent to clients (Flight data messages)."),
            ),
            active_streams: register(
                &registry,
                IntGauge::new("meshgate_active_streams", "Query result streams open now (DoGet of a statement)."),
            ),
            product_queries: register(
                &registry,
                IntCounterVec::new(
                    Opts::new("meshgate_product_queries_total", "Planned queries that read the product, any outcome."),
                    &["domain", "product", "version"],
                ),
            ),
            auth_failures: register(
                &registry,
                IntCounterVec::new(
                    Opts::new("meshgate_auth_failures_total", "Calls refused for their credentials, by reason."),
                    &["reason"],
                ),
            ),
            registry,
        };
        // Present from the start, so a rate over them has a first sample.
        metrics.query_series(Outcome::Ok, Code::Ok);
        metrics
    }

    /// A query ended: counted by outcome and code, its duration observed, and one
    /// query counted for each product it read.
    pub(crate) fn query_ended(&self, outcome: Outcome, code: Code, elapsed: Duration, reads: &[ProductLabels]) {
        self.query_series(outcome, code).inc();
        self.latency.observe(elapsed.as_secs_f64());
        for read in reads {
            self.product_queries.with_label_values(read).inc();
        }
    }

    /// A result stream opened.
    pub(crate) fn stream_opened(&self) {
        self.active_streams.inc();
    }

    /// A result stream closed; the streams still open.
    pub(crate) fn stream_closed(&self) -> i64 {
        self.active_streams.dec();
        self.active_streams.get()
    }

    pub(crate) fn rows_sent(&self, rows: u64) {
        self.rows.inc_by(rows);
    }

    pub(crate) fn bytes_sent(&self, bytes: u64) {
        self.bytes.inc_by(bytes);
    }

    /// Credentials were refused (on the Flight port or the HTTP side).
    pub fn auth_refused(&self, refusal: Refusal) {
        self.auth_failures.with_label_values(&[refusal.reason()]).inc();
    }

    /// Every metric in the Prometheus text format: the recorded ones, then those read
    /// from what `current` serves now.
    pub fn render(&self, current: &Current) -> Result<String, prometheus::Error> {
        let mut families = self.registry.gather();
        families.extend(scrape::families(current));
        TextEncoder::new().encode_to_string(&families)
    }

    fn query_series(&self, outcome: Outcome, code: Code) -> &IntCounter {
        let outcome_index = OUTCOMES.iter().position(|known| *known == outcome).unwrap_or_default();
        let code_index = (code as usize).min(CODES - 1);
        self.query_series[outcome_index * CODES + code_index]
            .get_or_init(|| self.queries.with_label_values(&[outcome.name(), crate::error::code_name(code)]))
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers a metric built from fixed, valid names (checked by the tests).
#[expect(clippy::expect_used, reason = "metric names, labels and buckets are constants; the tests build them")]
fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: prometheus::Result<M>) -> M {
    let metric = metric.expect("a metric with a valid name");
    registry.register(Box::new(metric.clone())).expect("each metric registered once");
    metric
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn recorded_figures_render_with_their_labels() {
        let metrics = Metrics::new();
        let reads = [["sales".to_owned(), "orders".to_owned(), "1.0.0".to_owned()]];
        metrics.query_ended(Outcome::Ok, Code::Ok, Duration::from_millis(3), &reads);
        metrics.query_ended(Outcome::Refused, Code::NotFound, Duration::from_millis(1), &[]);
        metrics.query_ended(Outcome::Ok, Code::Ok, Duration::from_millis(40), &reads);
        metrics.rows_sent(10);
        metrics.bytes_sent(400);
        metrics.stream_opened();
        metrics.stream_opened();
        assert_eq!(metrics.stream_closed(), 1);
        metrics.auth_refused(Refusal::BadBasic);

        let families = metrics.registry.gather();
        let text = TextEncoder::new().encode_to_string(&families).unwrap();
        assert_eq!(value(&text, r#"meshgate_queries_total{code="OK",outcome="ok"}"#), Some(2.0));
        assert_eq!(value(&text, r#"meshgate_queries_total{code="NOT_FOUND",outcome="refused"}"#), Some(1.0));
        assert_eq!(value(&text, "meshgate_query_duration_seconds_count"), Some(3.0));
        assert_eq!(value(&text, r#"meshgate_query_duration_seconds_bucket{le="0.005"}"#), Some(2.0));
        assert_eq!(value(&text, "meshgate_rows_sent_total"), Some(10.0));
        assert_eq!(value(&text, "meshgate_bytes_sent_total"), Some(400.0));
        assert_eq!(value(&text, "meshgate_active_streams"), Some(1.0));
        let product = r#"meshgate_product_queries_total{domain="sales",product="orders",version="1.0.0"}"#;
        assert_eq!(value(&text, product), Some(2.0));
        assert_eq!(value(&text, r#"meshgate_auth_failures_total{reason="bad_basic"}"#), Some(1.0));
    }
}
