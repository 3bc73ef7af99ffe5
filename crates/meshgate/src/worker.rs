//! `meshgate worker`: runs the stages of distributed queries for gateways that share
//! its secret (docs/distributed.md).

use std::io::Write;
use std::process::ExitCode;

use meshgate_engine::distributed::{WorkerOptions, serve_worker};
use tokio::net::TcpListener;

use crate::cli::WorkerArgs;
use crate::load::demo_config;
use crate::serve::{TICKET_SECRET_ENV, shutdown_signal};

pub async fn run(args: WorkerArgs) -> ExitCode {
    let Some(path) = args.config.clone().or_else(demo_config) else {
        eprintln!("meshgate: no --config given and the demo mesh (testdata/mesh.yaml) was not found");
        return ExitCode::from(2);
    };
    let Some(secret) = std::env::var(TICKET_SECRET_ENV).ok().filter(|secret| !secret.is_empty()) else {
        eprintln!(
            "meshgate: a worker needs {TICKET_SECRET_ENV}, the secret its gateways sign stage requests with \
             (the same value as theirs)"
        );
        return ExitCode::from(2);
    };
    let config = match meshgate_catalog::load_mesh(&path) {
        Ok(config) => config,
        Err(errors) => {
            eprint!("meshgate: {} is not valid\n{errors}", path.display());
            return ExitCode::from(2);
        }
    };
    let options = meshgate_engine::RuntimeOptions {
        memory_limit: args.memory_limit,
        spill_dir: args.spill_dir.clone(),
        ..meshgate_engine::RuntimeOptions::default()
    };
    let runtime = match meshgate_engine::runtime(&options) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("meshgate: {error}");
            return ExitCode::from(2);
        }
    };
    if let Err(errors) = meshgate_catalog::register_stores(&config, &runtime) {
        eprint!("meshgate: {} is not valid\n{errors}", path.display());
        return ExitCode::from(2);
    }
    let listener = match TcpListener::bind(args.bind).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("meshgate: cannot listen on {}: {error}", args.bind);
            return ExitCode::from(2);
        }
    };
    let stop = shutdown_signal();
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| args.bind.to_string());
    // The one line on stdout: scripts and tests wait for it to know the worker is ready.
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "meshgate worker listening on http://{address}").and_then(|()| stdout.flush()).is_err() {
        tracing::warn!("cannot write the ready line to stdout");
    }
    drop(stdout);
    tracing::info!(%address, config = %path.display(), "serving distributed stages");
    let options = WorkerOptions {
        secret: secret.into_bytes(),
        runtime,
        domains: config.domains.iter().map(|domain| domain.name.clone()).collect(),
        catalog: config.catalog.clone(),
    };
    match serve_worker(listener, options, stop).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "worker failed");
            ExitCode::FAILURE
        }
    }
}
