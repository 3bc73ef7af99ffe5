//! `meshgate serve`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::runtime_env::RuntimeEnv;
use meshgate_catalog::ConfigErrors;
use meshgate_catalog::quality::{QualityBook, QualityTask};
use meshgate_flight::{Authenticator, Current, MeshFlightSqlService, ServerOptions, Serving, TicketSigner};
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::load::{Tuning, demo_config, load_engine};

/// Environment variable holding the secret tickets and bearer tokens are signed with;
/// replicas that share it can redeem each other's. Without it a random secret is used.
const TICKET_SECRET_ENV: &str = "MESHGATE_TICKET_SECRET";

pub async fn run(args: ServeArgs) -> ExitCode {
    let Some(config) = args.config.clone().or_else(demo_config) else {
        eprintln!("meshgate: no --config given and the demo mesh (testdata/mesh.yaml) was not found");
        return ExitCode::from(2);
    };
    let runtime = match meshgate_engine::runtime(&args.runtime_options()) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("meshgate: {error}");
            return ExitCode::from(2);
        }
    };
    let secret: Vec<u8> = match std::env::var(TICKET_SECRET_ENV) {
        Ok(secret) if !secret.is_empty() => secret.into_bytes(),
        _ => rand::random::<[u8; 32]>().to_vec(),
    };
    let audit = match open_audit(&args) {
        Ok(audit) => audit,
        Err(error) => {
            eprintln!("meshgate: {error}");
            return ExitCode::from(2);
        }
    };
    // Quality results outlive reloads; each snapshot's checks run in the background.
    let quality = Arc::new(QualityBook::new());
    let serving = match load_serving(&config, &runtime, &args.tuning(), &secret, &quality, &audit).await {
        Ok(serving) => serving,
        Err(errors) => {
            eprint!("meshgate: {} is not valid\n{errors}", config.display());
            return ExitCode::from(2);
        }
    };
    let checks = QualityTask::start(Arc::clone(&quality), Arc::clone(serving.engine.snapshot()));
    let current = Current::new(serving);
    let signer = TicketSigner::new(secret.clone(), Duration::from_secs(args.ticket_ttl_secs));
    let service = match MeshFlightSqlService::new(current.clone(), signer, args.service_options(audit.clone())) {
        Ok(service) => service,
        Err(error) => {
            eprintln!("meshgate: {error}");
            return ExitCode::from(2);
        }
    };
    let tuning = args.tuning();
    let audit_of_reloads = audit.clone();
    let reloads =
        Reloads { current, config: config.clone(), runtime, tuning, secret, quality, audit: audit_of_reloads, checks };
    tokio::spawn(reload_on_hangup(reloads));
    let listener = match TcpListener::bind(args.bind).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("meshgate: cannot listen on {}: {error}", args.bind);
            return ExitCode::from(2);
        }
    };
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| args.bind.to_string());
    // The one line on stdout: scripts and tests wait for it to know the server is ready.
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "meshgate listening on grpc://{address}").and_then(|()| stdout.flush()).is_err() {
        tracing::warn!("cannot write the ready line to stdout");
    }
    tracing::info!(%address, "serving Flight SQL");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = {
        let mut stop_rx = stop_rx.clone();
        async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        }
    };
    let server = meshgate_flight::serve(listener, service, ServerOptions::default(), shutdown);
    tokio::pin!(server);
    let result = tokio::select! {
        result = &mut server => result,
        () = shutdown_signal() => {
            tracing::info!(grace_secs = args.shutdown_grace_secs, "shutting down: no new calls, in-flight streams may finish");
            let _ = stop_tx.send(true);
            match tokio::time::timeout(Duration::from_secs(args.shutdown_grace_secs), &mut server).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!("grace period over: cancelling the remaining streams");
                    Ok(())
                }
            }
        }
    };
    // The audit log and lineage file: what is queued is written and fsync'ed.
    if tokio::task::spawn_blocking(move || audit.shutdown()).await.is_err() {
        tracing::error!("closing the audit log failed");
    }
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// Opens the audit log (re-reading its files for the query log and usage) and the
/// lineage sinks.
fn open_audit(args: &ServeArgs) -> Result<meshgate_audit::Audit, meshgate_audit::AuditError> {
    let audit = meshgate_audit::Audit::open(&args.audit_options())?;
    let rebuilt = audit.rebuilt();
    if let Some(dir) = &args.audit_dir {
        tracing::info!(dir = %dir.display(), records = rebuilt.records, "audit log open");
    }
    if rebuilt.malformed > 0 {
        tracing::warn!(lines = rebuilt.malformed, "audit log lines that are not records were skipped");
    }
    Ok(audit)
}

/// Loads the mesh, its policies and its users; logs what was loaded.
async fn load_serving(
    config: &Path,
    runtime: &Arc<RuntimeEnv>,
    tuning: &Tuning,
    secret: &[u8],
    quality: &Arc<QualityBook>,
    audit: &meshgate_audit::Audit,
) -> Result<Serving, ConfigErrors> {
    let engine = load_engine(config, Arc::clone(runtime), tuning).await?;
    let engine = Arc::new(engine.with_quality(Arc::clone(quality)).with_audit(audit.clone()));
    let auth = Arc::new(Authenticator::from_config(engine.snapshot().config(), engine.policy().attributes(), secret)?);
    let snapshot = engine.snapshot();
    for entry in snapshot.products() {
        if let Some(problem) = entry.table.health().problem() {
            tracing::warn!(product = %entry.product.qualified_name(), "{problem}");
        }
    }
    let products = snapshot.products().count();
    tracing::info!(config = %config.display(), domains = snapshot.domain_names().count(), products, "mesh loaded");
    Ok(Serving { engine, auth })
}

/// On SIGHUP, reloads the mesh file, descriptors, policies and users. A reload with
/// any error is refused whole: the previous configuration keeps serving.
async fn reload_on_hangup(reloads: Reloads) {
    #[cfg(unix)]
    {
        let Reloads { current, config, runtime, tuning, secret, quality, audit, mut checks } = reloads;
        let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload by restarting");
            return;
        };
        while hangup.recv().await.is_some() {
            tracing::info!(config = %config.display(), "SIGHUP: reloading the configuration");
            match load_serving(&config, &runtime, &tuning, &secret, &quality, &audit).await {
                Ok(serving) => {
                    // The previous snapshot's checks stop; the new one's start.
                    let next = QualityTask::start(Arc::clone(&quality), Arc::clone(serving.engine.snapshot()));
                    current.replace(serving);
                    drop(std::mem::replace(&mut checks, next));
                    tracing::info!("reloaded; new queries use the new configuration");
                }
                Err(errors) => {
                    tracing::error!("reload refused, the previous configuration keeps serving:\n{errors}");
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = reloads;
}

/// What reloading needs: the serving state to replace, how to load the next one,
/// and the quality checks of the one serving now.
struct Reloads {
    current: Current,
    config: PathBuf,
    runtime: Arc<RuntimeEnv>,
    tuning: Tuning,
    secret: Vec<u8>,
    quality: Arc<QualityBook>,
    /// The recorded queries the system tables read.
    audit: meshgate_audit::Audit,
    checks: QualityTask,
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
