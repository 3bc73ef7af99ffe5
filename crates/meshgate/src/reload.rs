//! Reloading the configuration while serving: the next snapshot is loaded whole,
//! swapped in, and its background work (quality checks) started; a reload with
//! any error is refused whole and the previous configuration keeps serving.
//! Reloads are serialized: a SIGHUP arriving during a reload waits for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::execution::runtime_env::RuntimeEnv;
use meshgate_catalog::quality::{QualityBook, QualityTask};
use meshgate_catalog::{Backoff, ConfigError, ConfigErrors, RecoveryTask};
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
}

impl Loader {
    /// Loads the mesh, its policies and its users; logs what was loaded.
    pub async fn load(&self) -> Result<Serving, ConfigErrors> {
        let engine = load_engine(&self.config, Arc::clone(&self.runtime), &self.tuning).await?;
        let engine = Arc::new(engine.with_quality(Arc::clone(&self.quality)).with_audit(self.audit.clone()));
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

/// The background work of the snapshot serving now: its quality checks and the
/// retries of its unavailable products. Dropping it stops both.
struct Background {
    _checks: QualityTask,
    _recovery: RecoveryTask,
}

impl Background {
    fn start(quality: &Arc<QualityBook>, serving: &Serving) -> Self {
        let snapshot = serving.engine.snapshot();
        Self {
            _checks: QualityTask::start(Arc::clone(quality), Arc::clone(snapshot)),
            _recovery: RecoveryTask::start(Arc::clone(snapshot), Backoff::default(), Arc::clone(quality)),
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
        let background = Background::start(&loader.quality, &serving);
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
        match self.loader.load().await {
            Ok(serving) => {
                // The previous snapshot's background work stops; the new one's starts.
                let next = Background::start(&self.loader.quality, &serving);
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
