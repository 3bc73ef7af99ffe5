//! `meshgate serve`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use meshgate_catalog::quality::QualityBook;
use meshgate_engine::distributed::{Distribution, DistributionOptions, WorkerSet};
use meshgate_flight::tls::TlsHandle;
use meshgate_flight::{MeshFlightSqlService, ServerOptions, TicketSigner};
use std::io::Write;
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::http::HttpSide;
use crate::load::demo_config;
use crate::reload::{Loader, Reloader};

/// Environment variable holding the secret tickets and bearer tokens are signed with;
/// replicas that share it can redeem each other's. Without it a random secret is used.
pub(crate) const TICKET_SECRET_ENV: &str = "MESHGATE_TICKET_SECRET";

pub async fn run(args: ServeArgs) -> ExitCode {
    let Some(config) = args.config.clone().or_else(demo_config) else {
        eprintln!("meshgate: no --config given and the demo mesh (testdata/mesh.yaml) was not found");
        return ExitCode::from(2);
    };
    // One rustls crypto provider (aws-lc-rs) for every TLS user in the process.
    meshgate_flight::tls::install_crypto_provider();
    let tls = match args.tls_files().map(TlsHandle::load).transpose() {
        Ok(tls) => tls,
        Err(error) => {
            eprintln!("meshgate: TLS: {error}");
            return ExitCode::from(2);
        }
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
    let distribution = match distribution(&args).await {
        Ok(distribution) => distribution,
        Err(message) => {
            eprintln!("meshgate: {message}");
            return ExitCode::from(2);
        }
    };
    let audit = match open_audit(&args) {
        Ok(audit) => audit,
        Err(error) => {
            eprintln!("meshgate: {error}");
            return ExitCode::from(2);
        }
    };
    // Quality results outlive reloads; each snapshot's checks run in the background.
    let loader = Loader {
        config: config.clone(),
        runtime,
        tuning: args.tuning(),
        secret: secret.clone(),
        quality: Arc::new(QualityBook::new()),
        audit: audit.clone(),
        tls: tls.clone(),
        acceleration: meshgate_catalog::acceleration::AccelerationMemory::new(),
        listing_ttl: Duration::from_secs(args.listing_ttl_secs.max(1)),
        distribution,
    };
    let serving = match loader.load(None).await {
        Ok(serving) => serving,
        Err(errors) => {
            eprint!("meshgate: {} is not valid\n{errors}", config.display());
            return ExitCode::from(2);
        }
    };
    let reloader = Reloader::start(loader, serving);
    let signer = TicketSigner::new(secret, Duration::from_secs(args.ticket_ttl_secs));
    let metrics = Arc::new(meshgate_flight::Metrics::new());
    let options = args.service_options(audit.clone(), Arc::clone(&metrics));
    let service = match MeshFlightSqlService::new(reloader.current().clone(), signer, options) {
        Ok(service) => service,
        Err(error) => {
            eprintln!("meshgate: {error}");
            return ExitCode::from(2);
        }
    };
    reloader.reload_on_hangup();
    if args.no_watch {
        tracing::info!("not watching the configuration (--no-watch): reload with SIGHUP");
    } else if let Err(error) = crate::watch::start(Arc::clone(&reloader), &config) {
        tracing::warn!(%error, "cannot watch the configuration; reload with SIGHUP");
    }
    let listener = match TcpListener::bind(args.bind).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("meshgate: cannot listen on {}: {error}", args.bind);
            return ExitCode::from(2);
        }
    };
    let http = match HttpSide::bind(args.http_bind).await {
        Ok(http) => http,
        Err(error) => {
            eprintln!("meshgate: {error}");
            return ExitCode::from(2);
        }
    };
    // Listening for SIGTERM and Ctrl-C before saying so: a stop right after the ready
    // line is a graceful one.
    let stop_requested = shutdown_signal();
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| args.bind.to_string());
    // The one line on stdout: scripts and tests wait for it to know the server is ready.
    let mut stdout = std::io::stdout().lock();
    let scheme = if tls.is_some() { "grpc+tls" } else { "grpc" };
    if writeln!(stdout, "meshgate listening on {scheme}://{address}").and_then(|()| stdout.flush()).is_err() {
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
    if let Some(http) = http {
        let mut stop_rx = stop_rx.clone();
        let stopped = async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        };
        let options = args.http_options(format!("{scheme}://{address}"));
        http.start(reloader.current().clone(), metrics, options, stopped, &mut stdout);
    }
    let options = ServerOptions { tls, limits: args.connection_limits(), ..ServerOptions::default() };
    let server = meshgate_flight::serve(listener, service, options, shutdown);
    tokio::pin!(server);
    let result = tokio::select! {
        result = &mut server => result,
        () = stop_requested => {
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

/// The workers of `--workers`, probed once (each one's state is logged) and then
/// every two seconds; `None` without workers.
async fn distribution(args: &ServeArgs) -> Result<Option<Arc<Distribution>>, String> {
    let Some(workers) = WorkerSet::from_flag(&args.workers).map_err(|error| format!("--workers: {error}"))? else {
        return Ok(None);
    };
    let Some(secret) = std::env::var(TICKET_SECRET_ENV).ok().filter(|secret| !secret.is_empty()) else {
        return Err(format!(
            "--workers needs {TICKET_SECRET_ENV}: the secret stage requests are signed with, shared with the workers"
        ));
    };
    for (url, live) in workers.probe().await {
        if live {
            tracing::info!(worker = %url, "distributed worker reachable");
        } else {
            tracing::warn!(worker = %url, "distributed worker unreachable; queries go to the others until it answers");
        }
    }
    workers.watch(Duration::from_secs(2));
    let options = DistributionOptions {
        workers,
        min_bytes: args.distribute_min_bytes as u64,
        partition_bytes: args.distribute_partition_bytes,
        secret: secret.into_bytes(),
    };
    Ok(Some(Arc::new(Distribution::new(options))))
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

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is called, not
/// when the future is first polled, so no signal is missed in between.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            let terminated = async {
                match terminate {
                    Ok(mut terminate) => {
                        terminate.recv().await;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                        std::future::pending::<()>().await;
                    }
                }
            };
            let interrupted = async {
                match interrupt {
                    Ok(mut interrupt) => {
                        interrupt.recv().await;
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            };
            tokio::select! {
                () = terminated => {}
                () = interrupted => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
