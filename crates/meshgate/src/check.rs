//! `meshgate check`: validates a mesh file and its data, prints every problem.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::CheckArgs;
use crate::load::load_engine;

pub async fn run(args: CheckArgs) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let runtime = match meshgate_engine::runtime(&meshgate_engine::RuntimeOptions::default()) {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(out, "meshgate: {error}");
            return ExitCode::from(2);
        }
    };
    let engine = match load_engine(&args.config, runtime, &crate::load::Tuning::default()).await {
        Ok(engine) => engine,
        Err(errors) => {
            let _ = write!(out, "{} is not valid\n{errors}", args.config.display());
            return ExitCode::FAILURE;
        }
    };
    let snapshot = engine.snapshot();
    let _ = writeln!(out, "{}: configuration valid; checking data", args.config.display());
    let mut failures = 0;
    let mut columnless = 0;
    for entry in snapshot.products() {
        let name = entry.product.qualified_name();
        let format = entry.product.format.name();
        let line = match entry.table.health().problem() {
            Some(problem) => Err(problem.to_string()),
            None => count_rows(&engine, entry).await,
        };
        match line {
            Ok(rows) => match crate::policy::no_columns_warning(&engine, entry) {
                Some(warning) => {
                    columnless += 1;
                    let _ = writeln!(out, "{warning}");
                }
                None => {
                    let columns = datafusion_schema_len(&entry.table);
                    let _ = writeln!(out, "  ok    {name} ({format}, {columns} columns, {rows} rows)");
                }
            },
            Err(problem) => {
                failures += 1;
                let _ = writeln!(out, "  FAIL  {name} ({format}): {problem}");
            }
        }
    }
    let total = snapshot.products().count();
    let _ = writeln!(out, "{} of {total} products healthy", total - failures - columnless);
    if columnless > 0 {
        let _ = writeln!(out, "{columnless} readable product(s) served with no columns to anyone");
    }
    let unreachable = check_workers(&args.workers, &mut out).await;
    drop(out);
    let contracts = crate::contracts::run(snapshot).await;
    if failures + columnless + unreachable == 0 && contracts.error_failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn datafusion_schema_len(table: &meshgate_catalog::ProductTable) -> usize {
    datafusion::catalog::TableProvider::schema(table).fields().len()
}

/// Reads the product end to end, as a query would. `check` is an operator's tool run
/// on the configuration itself, so it counts the raw rows, not one principal's view.
async fn count_rows(engine: &meshgate_engine::Engine, entry: &meshgate_catalog::ProductEntry) -> Result<u64, String> {
    let snapshot = engine.snapshot();
    let ctx = datafusion::prelude::SessionContext::new_with_config_rt(
        snapshot.session_config().clone().with_information_schema(false),
        std::sync::Arc::clone(snapshot.runtime()),
    );
    let table: std::sync::Arc<dyn datafusion::catalog::TableProvider> = entry.table.clone();
    let counted = async {
        let frame = ctx.read_table(table)?.count().await?;
        Ok::<_, datafusion::error::DataFusionError>(frame as u64)
    };
    counted.await.map_err(|e| meshgate_engine::EngineError::from(e).to_string())
}

/// Probes each of `--workers`; prints a line per worker and returns how many failed.
async fn check_workers(addresses: &[String], out: &mut impl Write) -> usize {
    let workers = match meshgate_engine::distributed::WorkerSet::from_flag(addresses) {
        Ok(None) => return 0,
        Ok(Some(workers)) => workers,
        Err(error) => {
            let _ = writeln!(out, "  FAIL  --workers: {error}");
            return 1;
        }
    };
    let mut unreachable = 0;
    for (url, live) in workers.probe().await {
        if live {
            let _ = writeln!(out, "  ok    worker {url} (answers)");
        } else {
            unreachable += 1;
            let _ = writeln!(out, "  FAIL  worker {url}: unreachable");
        }
    }
    unreachable
}
