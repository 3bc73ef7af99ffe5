//! Reloading the configuration while serving: the next snapshot is loaded whole,
//! swapped in, and its background work (quality checks) started; a reload with
//! any error is refused whole and the previous configuration keeps serving.
//! Reloads are serialized: a SIGHUP arriving during a reload waits for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::execution::runtime_env::RuntimeEnv;
use meshgate_catalog::acceleration::{AccelerationMemory, AccelerationTask, accelerate};
use meshgate_catalog::quality::{QualityBook, QualityTask};
use meshgate_catalog::{Backoff, ConfigError, ConfigErrors, MeshSnapshot, RecoveryTask};
use meshgate_flight::tls::TlsHandle;
use meshgate_flight::{Authenticator, Current, Serving};

use crate::load::{Tuning, load_engine};

/// How to load a serving state from the configuration.
pub struct Loader {
    pub config: PathBuf,
    pub runtime: Arc<RuntimeEnv>,
    pub tuning: Tuning,
    pub secret: Vec<u8>,
    /// Quality results outlive reloads.
    pub quality: Arc<QualityBook>,
    /// The recorded queries the system tables read.
    pub audit: meshgate_audit::Audit,
    /// The Flight port's TLS certificates, re-read on every reload.
    pub tls: Option<TlsHandle>,
    /// Memory held by accelerated products, across reloads.
    pub acceleration: Arc<AccelerationMemory>,
    /// How often `on_change` accelerated products look at their files.
    pub listing_ttl: std::time::Duration,
    /// The distributed workers, across reloads (none: every query runs here).
    pub distribution: Option<Arc<meshgate_engine::distributed::Distribution>>,
}

impl Loader {
    /// Loads the mesh, its policies and its users, and builds the accelerated products'
    /// copies (taking over those of `previous` whose files did not change); logs what
    /// was loaded.
    pub async fn load(&self, previous: Option<&MeshSnapshot>) -> Result<Serving, ConfigErrors> {
        let engine = load_engine(&self.config, Arc::clone(&self.runtime), &self.tuning).await?;
        let engine = engine.with_quality(Arc::clone(&self.quality)).with_audit(self.audit.clone());
        let engine = Arc::new(engine.with_distribution(self.distribution.clone()));
        let auth = Arc::new(Authenticator::from_config(
            engine.snapshot().config(),
            engine.policy().attributes(),
            &self.secret,
        )?);
        if auth.maps_client_certificates() && !self.tls.as_ref().is_some_and(TlsHandle::requires_client_certificates) {
            return Err(ConfigErrors(vec![ConfigError::new(
                "auth.client_certificates",
                "clients present no certificates: start meshgate serve with --tls-client-ca",
            )]));
        }
        let snapshot = engine.snapshot();
        accelerate(snapshot, &self.acceleration, previous).await;
        for entry in snapshot.products() {
            if let Some(problem) = entry.table.health().problem() {
                tracing::warn!(product = %entry.product.qualified_name(), "{problem}");
            }
        }
        let products = snapshot.products().count();
        tracing::info!(config = %self.config.display(), domains = snapshot.domain_names().count(), products, "mesh loaded");
        Ok(Serving { engine, auth })
    }

    pub fn config(&self) -> &Path {
        &self.config
    }
}

/// The background work of the snapshot serving now: its quality checks, the
/// retries of its unavailable products and the refreshes of its accelerated ones.
/// Dropping it stops them.
struct Background {
    _checks: QualityTask,
    _recovery: RecoveryTask,
    _acceleration: AccelerationTask,
}

impl Background {
    fn start(loader: &Loader, serving: &Serving) -> Self {
        let snapshot = serving.engine.snapshot();
        let memory = Arc::clone(&loader.acceleration);
        Self {
            _checks: QualityTask::start(Arc::clone(&loader.quality), Arc::clone(snapshot)),
            _recovery: RecoveryTask::start(Arc::clone(snapshot), Backoff::default(), Arc::clone(&loader.quality)),
            _acceleration: AccelerationTask::start(Arc::clone(snapshot), memory, loader.listing_ttl),
        }
    }
}

/// Loads the next snapshot and swaps it in, one reload at a time.
pub struct Reloader {
    current: Current,
    loader: Loader,
    /// Held for the whole of a reload, so two never overlap.
    background: tokio::sync::Mutex<Background>,
}

impl Reloader {
    /// Starts serving `serving` (already loaded by `loader`) and its background work.
    pub fn start(loader: Loader, serving: Serving) -> Arc<Self> {
        let background = Background::start(&loader, &serving);
        let current = Current::new(serving);
        Arc::new(Self { current, loader, background: tokio::sync::Mutex::new(background) })
    }

    /// What the server serves; requests take it once each.
    pub fn current(&self) -> &Current {
        &self.current
    }

    /// Reloads the mesh file, descriptors, policies and users. On any error the
    /// previous configuration keeps serving and the errors are logged with their paths.
    pub async fn reload(&self, cause: &str) -> Result<(), ConfigErrors> {
        let mut background = self.background.lock().await;
        self.reload_tls();
        tracing::info!(config = %self.loader.config().display(), "{cause}: reloading the configuration");
        let previous = self.current.get();
        match self.loader.load(Some(previous.engine.snapshot())).await {
            Ok(serving) => {
                // The previous snapshot's background work stops; the new one's starts.
                let next = Background::start(&self.loader, &serving);
                self.current.replace(serving);
                *background = next;
                tracing::info!("reloaded; new queries use the new configuration");
                Ok(())
            }
            Err(errors) => {
                tracing::error!("reload refused, the previous configuration keeps serving:\n{errors}");
                self.current.record_reload_failure(errors.to_string());
                Err(errors)
            }
        }
    }

    /// Re-reads the TLS certificate, key and client CA; on an error the ones in use stay
    /// (counted as a refused reload).
    fn reload_tls(&self) {
        let Some(tls) = &self.loader.tls else { return };
        match tls.reload() {
            Ok(()) => tracing::info!(cert = %tls.cert_path().display(), "TLS certificates reloaded"),
            Err(error) => {
                tracing::error!("TLS certificates not reloaded, the previous ones stay in use: {error}");
                self.current.record_reload_failure(error.to_string());
            }
        }
    }

    /// Reloads on every SIGHUP, for as long as the server runs.
    pub fn reload_on_hangup(self: &Arc<Self>) {
        #[cfg(unix)]
        {
            let reloader = Arc::clone(self);
            tokio::spawn(async move {
                let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
                    tracing::warn!("cannot listen for SIGHUP; reload by restarting");
                    return;
                };
                while hangup.recv().await.is_some() {
                    let _ = reloader.reload("SIGHUP").await;
                }
            });
        }
    }
}
