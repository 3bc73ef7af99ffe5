//! What the server serves right now: one engine (snapshot and policies) and its
//! authenticator, replaced as a whole when the configuration is reloaded. A request
//! takes the current pair once, so it never mixes two versions. Reload outcomes are
//! counted here for monitoring.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use meshgate_engine::Engine;

use crate::auth::Authenticator;

#[derive(Debug)]
pub struct Serving {
    pub engine: Arc<Engine>,
    pub auth: Arc<Authenticator>,
}

/// The shared, swappable [`Serving`], with the count of reloads that replaced it
/// and of reloads that were refused.
#[derive(Debug, Clone)]
pub struct Current(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    serving: RwLock<Arc<Serving>>,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    /// Unix seconds of the last successful reload; 0 before the first.
    last_reload: AtomicU64,
    last_failure: Mutex<Option<String>>,
}

impl Current {
    pub fn new(serving: Serving) -> Self {
        Self(Arc::new(Shared {
            serving: RwLock::new(Arc::new(serving)),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            last_reload: AtomicU64::new(0),
            last_failure: Mutex::new(None),
        }))
    }

    pub fn get(&self) -> Arc<Serving> {
        match self.0.serving.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Serves `serving` from now on; requests already running keep the old one.
    /// Counted as a successful reload.
    pub fn replace(&self, serving: Serving) {
        let serving = Arc::new(serving);
        match self.0.serving.write() {
            Ok(mut guard) => *guard = serving,
            Err(poisoned) => *poisoned.into_inner() = serving,
        }
        self.0.reloads.fetch_add(1, Ordering::Relaxed);
        self.0.last_reload.store(unix_now(), Ordering::Relaxed);
    }

    /// Records a reload that was refused (the serving state is unchanged).
    pub fn record_reload_failure(&self, message: impl Into<String>) {
        self.0.reload_failures.fetch_add(1, Ordering::Relaxed);
        let message = Some(message.into());
        match self.0.last_failure.lock() {
            Ok(mut guard) => *guard = message,
            Err(poisoned) => *poisoned.into_inner() = message,
        }
    }

    /// Successful reloads since start (the first load is not one).
    pub fn reloads(&self) -> u64 {
        self.0.reloads.load(Ordering::Relaxed)
    }

    /// Reloads refused since start.
    pub fn reload_failures(&self) -> u64 {
        self.0.reload_failures.load(Ordering::Relaxed)
    }

    /// When the last successful reload happened, in Unix seconds; `None` before the first.
    pub fn last_reload_unix_secs(&self) -> Option<u64> {
        Some(self.0.last_reload.load(Ordering::Relaxed)).filter(|secs| *secs > 0)
    }

    /// The errors of the last refused reload, as logged; `None` if none was refused.
    pub fn last_reload_failure(&self) -> Option<String> {
        match self.0.last_failure.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or(0)
}
