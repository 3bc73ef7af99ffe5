//! `meshgate`: the federated Flight SQL gateway for a data mesh.

mod check;
mod cli;
mod contracts;
mod http;
mod load;
mod policy;
mod reload;
mod serve;
mod watch;
mod worker;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    // Planning and execution recurse over the statement's syntax tree and plan: every
    // runtime thread gets the stack the deepest statement meshgate accepts needs
    // (address space only; pages are touched as used). Deeper ones are refused.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(meshgate_engine::PLANNING_STACK_BYTES)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("meshgate: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    // The command runs on a thread with the same stack as the runtime's (the main
    // thread's is smaller); a panic in it is an internal error, not an abort.
    let command = std::thread::Builder::new()
        .name("meshgate".into())
        .stack_size(meshgate_engine::PLANNING_STACK_BYTES)
        .spawn(move || {
            runtime.block_on(async {
                match cli.command {
                    Command::Serve(args) => serve::run(*args).await,
                    Command::Worker(args) => worker::run(args).await,
                    Command::Check(args) => check::run(args).await,
                    Command::Policy(command) => policy::run(command).await,
                    Command::HashPassword => policy::hash_password(),
                }
            })
        });
    match command.map(|thread| thread.join()) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => {
            eprintln!("meshgate: internal error: the command panicked");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("meshgate: cannot start: {error}");
            ExitCode::from(2)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
