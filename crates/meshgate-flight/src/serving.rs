//! What the server serves right now: one engine (snapshot and policies) and its
//! authenticator, replaced as a whole when the configuration is reloaded. A request
//! takes the current pair once, so it never mixes two versions.

use std::sync::{Arc, RwLock};

use meshgate_engine::Engine;

use crate::auth::Authenticator;

#[derive(Debug)]
pub struct Serving {
    pub engine: Arc<Engine>,
    pub auth: Arc<Authenticator>,
}

/// The shared, swappable [`Serving`].
#[derive(Debug, Clone)]
pub struct Current(Arc<RwLock<Arc<Serving>>>);

impl Current {
    pub fn new(serving: Serving) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(serving))))
    }

    pub fn get(&self) -> Arc<Serving> {
        match self.0.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Serves `serving` from now on; requests already running keep the old one.
    pub fn replace(&self, serving: Serving) {
        let serving = Arc::new(serving);
        match self.0.write() {
            Ok(mut guard) => *guard = serving,
            Err(poisoned) => *poisoned.into_inner() = serving,
        }
    }
}
