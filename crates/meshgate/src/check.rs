//! `meshgate check`: validates a mesh file and its data, prints every problem.

use std::io::Write;
use std::process::ExitCode;

use futures::TryStreamExt;

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
    let engine = match load_engine(&args.config, runtime).await {
        Ok(engine) => engine,
        Err(errors) => {
            let _ = write!(out, "{} is not valid\n{errors}", args.config.display());
            return ExitCode::FAILURE;
        }
    };
    let snapshot = engine.snapshot();
    let _ = writeln!(out, "{}: configuration valid; checking data", args.config.display());
    let mut failures = 0;
    for entry in snapshot.products() {
        let name = entry.product.qualified_name();
        let format = entry.product.format.name();
        let line = match entry.table.health().problem() {
            Some(problem) => Err(problem.to_string()),
            None => count_rows(&engine, &name).await,
        };
        match line {
            Ok(rows) => {
                let columns = datafusion_schema_len(&entry.table);
                let _ = writeln!(out, "  ok    {name} ({format}, {columns} columns, {rows} rows)");
            }
            Err(problem) => {
                failures += 1;
                let _ = writeln!(out, "  FAIL  {name} ({format}): {problem}");
            }
        }
    }
    let total = snapshot.products().count();
    let _ = writeln!(out, "{} of {total} products healthy", total - failures);
    if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn datafusion_schema_len(table: &meshgate_catalog::ProductTable) -> usize {
    datafusion::catalog::TableProvider::schema(table).fields().len()
}

/// Reads the product end to end through the engine, as a query would.
async fn count_rows(engine: &meshgate_engine::Engine, name: &str) -> Result<u64, String> {
    let query = engine.plan(&format!("SELECT count(*) FROM {name}")).await.map_err(|e| e.to_string())?;
    let batches: Vec<_> = query
        .execute()
        .await
        .map_err(|e| e.to_string())?
        .try_collect()
        .await
        .map_err(|e| meshgate_engine::EngineError::from(e).to_string())?;
    batches
        .first()
        .and_then(|batch| batch.column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>())
        .map(|counts| counts.value(0) as u64)
        .ok_or_else(|| "count returned no rows".to_owned())
}
