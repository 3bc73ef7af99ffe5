//! Running a product's checks: each one measured in the product's private session
//! on the files listed just before, as a [`CheckResult`]; and planning every check
//! at load, so a check that cannot run on the product's schema is a config error.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use datafusion::arrow::datatypes::DataType;
use datafusion::execution::context::SessionContext;

use super::book::FRESHNESS_CHECK;
use super::checks::{check_sql, measure, newest_sql, plan, private_context, result_problem, scalar};
use super::files::{age_seconds, epoch_seconds, file_snapshot, system_seconds};
use super::result::{CheckResult, FileSnapshot};
use crate::config::contract::{Check, Freshness, format_duration};
use crate::error::{ConfigError, ConfigErrors};
use crate::snapshot::{MeshSnapshot, ProductEntry};

/// One product's checks, ready to run.
pub struct ProductChecks {
    entry: Arc<ProductEntry>,
    ctx: SessionContext,
}

impl ProductChecks {
    pub fn new(snapshot: &MeshSnapshot, entry: &Arc<ProductEntry>) -> Result<Self, String> {
        let ctx = private_context(snapshot, entry).map_err(|error| super::checks::message(&error))?;
        Ok(Self { entry: Arc::clone(entry), ctx })
    }

    pub fn entry(&self) -> &Arc<ProductEntry> {
        &self.entry
    }

    /// The contract's checks, in order (freshness is run by [`Self::run_freshness`]).
    pub fn checks(&self) -> &[Check] {
        &self.entry.product.contract.checks
    }

    /// Runs one check now.
    pub async fn run_check(&self, check: &Check) -> CheckResult {
        let started = (SystemTime::now(), Instant::now());
        let files = file_snapshot(&self.ctx, &self.entry.product).await;
        let measured = match &files {
            Ok(_) => measure(&self.ctx, &check_sql(check, &self.entry.product.name)).await,
            Err(error) => Err(error.clone()),
        };
        let (measured, error) = match measured {
            Ok(value) => (Some(value), None),
            Err(error) => (None, Some(error)),
        };
        let passed = measured.is_some_and(|value| match check.expect.0.is_empty() {
            true => value == 1.0,
            false => check.expect.holds(value),
        });
        CheckResult { measured, passed, error, ..self.check_result(check, started, files.unwrap_or_default()) }
    }

    /// The result of `check` when it could not run.
    pub fn failed(&self, check: &Check, error: String) -> CheckResult {
        let started = (SystemTime::now(), Instant::now());
        CheckResult { error: Some(error), ..self.check_result(check, started, FileSnapshot::default()) }
    }

    /// A result of `check` describing it, not yet measured.
    fn check_result(&self, check: &Check, started: (SystemTime, Instant), files: FileSnapshot) -> CheckResult {
        CheckResult {
            check: check.name.clone(),
            kind: check.kind(),
            severity: check.severity,
            description: check.description.clone(),
            columns: check.columns(),
            expectation: check.expectation_text(),
            ..self.result(started, files)
        }
    }

    /// Measures the product's freshness now, if its contract has an SLA.
    pub async fn run_freshness(&self) -> Option<CheckResult> {
        let freshness = self.entry.product.contract.freshness.as_ref()?;
        let started = (SystemTime::now(), Instant::now());
        let files = file_snapshot(&self.ctx, &self.entry.product).await;
        let newest = match (&freshness.column, &files) {
            (_, Err(error)) => Err(error.clone()),
            (None, Ok(files)) => {
                files.newest.map(system_seconds).ok_or_else(|| "no data files to take the time of".to_owned())
            }
            (Some(column), Ok(_)) => scalar(&self.ctx, &newest_sql(column, &self.entry.product.name))
                .await
                .and_then(|value| epoch_seconds(&value).ok_or_else(|| format!("the product has no {column} yet"))),
        };
        let (measured, error) = match newest {
            Ok(newest) => (Some(age_seconds(newest, started.0)), None),
            Err(error) => (None, Some(error)),
        };
        let max_age = freshness.max_age.as_secs_f64();
        Some(CheckResult {
            check: FRESHNESS_CHECK.to_owned(),
            kind: "freshness",
            severity: freshness.severity,
            description: String::new(),
            columns: freshness.column.iter().cloned().collect(),
            expectation: freshness_text(freshness),
            passed: measured.is_some_and(|age| age <= max_age),
            measured,
            error,
            ..self.result(started, files.unwrap_or_default())
        })
    }

    fn result(&self, started: (SystemTime, Instant), files: FileSnapshot) -> CheckResult {
        let product = &self.entry.product;
        CheckResult {
            domain: product.domain.clone(),
            product: product.name.clone(),
            version: product.version.clone(),
            check: String::new(),
            kind: "",
            severity: Default::default(),
            description: String::new(),
            columns: Vec::new(),
            files,
            ran_at: started.0,
            duration: started.1.elapsed(),
            measured: None,
            expectation: String::new(),
            passed: false,
            error: None,
        }
    }
}

fn freshness_text(freshness: &Freshness) -> String {
    let age = format_duration(freshness.max_age);
    match &freshness.column {
        Some(column) => format!("newest {column} at most {age} old"),
        None => format!("newest file at most {age} old"),
    }
}

/// Plans every check of every readable product against its table: unknown columns,
/// type errors and SQL that reads anything else are configuration errors, by path.
pub async fn plan_contracts(snapshot: &MeshSnapshot) -> Result<(), ConfigErrors> {
    let mut errors = Vec::new();
    for entry in snapshot.products() {
        let contract = &entry.product.contract;
        let readable = entry.table.refusal().is_none()
            && !datafusion::catalog::TableProvider::schema(entry.table.as_ref()).fields().is_empty();
        if !contract.has_checks() || !readable {
            continue;
        }
        let ctx = match private_context(snapshot, entry) {
            Ok(ctx) => ctx,
            Err(error) => {
                errors.push(ConfigError::new(product_path(entry), super::checks::message(&error)));
                continue;
            }
        };
        for check in &contract.checks {
            match plan(&ctx, &check_sql(check, &entry.product.name)).await {
                Ok(schema) => {
                    if let Some(problem) = result_problem(check, &schema) {
                        errors.push(ConfigError::new(&check.path, problem));
                    }
                }
                Err(error) => errors.push(ConfigError::new(&check.path, super::checks::message(&error))),
            }
        }
        if let Some(column) = contract.freshness.as_ref().and_then(|f| f.column.as_ref()) {
            let path = format!("{}.freshness.column", product_path(entry));
            match plan(&ctx, &newest_sql(column, &entry.product.name)).await {
                Ok(schema) => {
                    let data_type = schema.fields().first().map(|f| f.data_type().clone());
                    if !matches!(data_type, Some(DataType::Date32 | DataType::Date64 | DataType::Timestamp(..))) {
                        let found = data_type.map(|t| t.to_string()).unwrap_or_default();
                        errors.push(ConfigError::new(path, format!("{column} is {found}, not a date or timestamp")));
                    }
                }
                Err(error) => errors.push(ConfigError::new(path, super::checks::message(&error))),
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ConfigErrors(errors)) }
}

fn product_path(entry: &ProductEntry) -> String {
    format!("domains.{}.products.{}", entry.product.domain, entry.product.name)
}
