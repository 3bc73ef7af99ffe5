//! The server's Prometheus metrics, recorded by the Flight service and rendered by
//! the HTTP side (`/metrics`).

use prometheus::Registry;

/// Every metric meshgate exports, in one registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    pub fn new() -> Self {
        Self { registry: Registry::new_custom(Some("meshgate".to_owned()), None).unwrap_or_default() }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
