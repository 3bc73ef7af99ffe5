//! What every HTTP handler shares.

use std::sync::Arc;

use meshgate_flight::{Current, Metrics};

/// Settings of the HTTP side.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Require valid credentials for `/metrics` too.
    pub metrics_auth: bool,
    /// The Flight URI the server advertises (its ready line), for the web page's
    /// connection snippets; `None` when unknown.
    pub flight_uri: Option<String>,
}

/// The state handlers see: the serving snapshot and credentials (swapped on reload),
/// the metrics the Flight service records, and the options.
#[derive(Debug, Clone)]
pub struct HttpState {
    pub current: Current,
    pub metrics: Arc<Metrics>,
    pub options: Arc<HttpOptions>,
}
