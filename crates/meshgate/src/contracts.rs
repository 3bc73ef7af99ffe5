//! `meshgate check`, data contracts: runs every product's quality checks and
//! freshness SLA now, one at a time, printing each result as it finishes and a
//! line every few seconds while a long check runs.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshgate_catalog::MeshSnapshot;
use meshgate_catalog::config::contract::Severity;
use meshgate_catalog::quality::{CheckResult, ProductChecks};

/// How often a check still running is reported.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What the checks found.
#[derive(Debug, Default)]
pub struct Summary {
    pub passed: usize,
    pub warn_failures: usize,
    /// `error` checks that failed or could not run: `check` exits non-zero.
    pub error_failures: usize,
}

pub async fn run(snapshot: &Arc<MeshSnapshot>) -> Summary {
    let mut summary = Summary::default();
    let products: Vec<_> = snapshot.products().filter(|entry| entry.product.contract.has_checks()).collect();
    if products.is_empty() {
        return summary;
    }
    say(format_args!("checking data contracts"));
    for entry in products {
        let product = &entry.product;
        let name = product.qualified_name();
        if let Some(problem) = entry.table.health().problem() {
            say(format_args!("  skip  {name}: its checks cannot run ({problem})"));
            summary.error_failures += 1;
            continue;
        }
        let checks = match ProductChecks::new(snapshot, entry) {
            Ok(checks) => checks,
            Err(error) => {
                say(format_args!("  FAIL  {name}: cannot run its checks: {error}"));
                summary.error_failures += 1;
                continue;
            }
        };
        say(format_args!("  {name} {} (on_failure: {})", product.version, product.contract.on_failure.as_str()));
        for check in checks.checks() {
            let result = with_progress(&check.name, checks.run_check(check)).await;
            report(&result, &mut summary);
        }
        if product.contract.freshness.is_some()
            && let Some(result) = with_progress("freshness", checks.run_freshness()).await
        {
            report(&result, &mut summary);
        }
    }
    let failed = summary.warn_failures + summary.error_failures;
    say(format_args!(
        "{} checks: {} passed, {failed} failed ({} error, {} warn)",
        summary.passed + failed,
        summary.passed,
        summary.error_failures,
        summary.warn_failures
    ));
    summary
}

/// Awaits `work`, printing a line every [`PROGRESS_EVERY`] while it runs.
async fn with_progress<T>(check: &str, work: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = ticks.tick() => say(format_args!("    …     {check} still running ({} s)", started.elapsed().as_secs())),
        }
    }
}

fn report(result: &CheckResult, summary: &mut Summary) {
    let severity = result.severity.as_str();
    let took = result.duration.as_millis();
    if result.passed {
        summary.passed += 1;
        let measured = result.measured.map(meshgate_catalog::config::contract::number).unwrap_or_default();
        say(format_args!(
            "    pass  {} [{severity}]: {} (measured {measured}, {took} ms)",
            result.check, result.expectation
        ));
        return;
    }
    match result.severity {
        Severity::Error => summary.error_failures += 1,
        Severity::Warn => summary.warn_failures += 1,
    }
    let label = if result.severity == Severity::Error { "FAIL" } else { "warn" };
    say(format_args!(
        "    {label}  {} [{severity}]: {}: {} ({took} ms)",
        result.check,
        result.expectation,
        result.failure_text()
    ));
}

fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}
