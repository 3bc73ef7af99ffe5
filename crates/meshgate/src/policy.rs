//! `meshgate policy test`, `meshgate policy explain` and `meshgate hash-password`.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::TryStreamExt;
use meshgate_engine::Engine;
use meshgate_policy::identity::configured_principal;
use meshgate_policy::model::InlinePrincipalSpec;
use meshgate_policy::{Action, PolicyTest, Principal, configured_users};

use crate::cli::{PolicyCommand, PolicyExplainArgs, PolicyTestArgs};
use crate::load::{Tuning, demo_config, load_engine};

pub async fn run(command: PolicyCommand) -> ExitCode {
    match command {
        PolicyCommand::Test(args) => test(args).await,
        PolicyCommand::Explain(args) => explain(args).await,
    }
}

async fn load(config: Option<std::path::PathBuf>) -> Result<Engine, ExitCode> {
    let Some(config) = config.or_else(demo_config) else {
        eprintln!("meshgate: no --config given and the demo mesh (testdata/mesh.yaml) was not found");
        return Err(ExitCode::from(2));
    };
    let runtime = meshgate_engine::runtime(&meshgate_engine::RuntimeOptions::default()).map_err(|error| {
        eprintln!("meshgate: {error}");
        ExitCode::from(2)
    })?;
    load_engine(&config, runtime, &Tuning::default()).await.map_err(|errors| {
        eprint!("meshgate: {} is not valid\n{errors}", config.display());
        ExitCode::from(2)
    })
}

async fn test(args: PolicyTestArgs) -> ExitCode {
    let engine = match load(args.config).await {
        Ok(engine) => engine,
        Err(code) => return code,
    };
    let mut out = std::io::stdout().lock();
    let columnless: Vec<String> =
        engine.snapshot().products().filter_map(|entry| no_columns_warning(&engine, entry)).collect();
    for warning in &columnless {
        let _ = writeln!(out, "{warning}");
    }
    let tests = engine.policy().tests();
    let mut failed = 0;
    for case in tests {
        match run_case(&engine, case).await {
            Ok(()) => {
                let _ = writeln!(out, "  ok    {}: {}", case.source, case.name);
            }
            Err(why) => {
                failed += 1;
                let _ = writeln!(out, "  FAIL  {}: {}: {why}", case.source, case.name);
            }
        }
    }
    let _ = writeln!(out, "{} of {} policy tests passed", tests.len() - failed, tests.len());
    if !columnless.is_empty() {
        let _ = writeln!(out, "{} readable product(s) served with no columns to anyone", columnless.len());
    }
    if failed == 0 && columnless.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The warning line for a product someone may read but reads with zero columns, if
/// it is one: no column rule allows any of its columns to anyone, or every configured
/// user who may read it gets none (the rules that would allow one never apply to them).
pub(crate) fn no_columns_warning(engine: &Engine, entry: &meshgate_catalog::ProductEntry) -> Option<String> {
    let name = entry.product.qualified_name();
    let policy = engine.policy();
    // A product that could not be opened has no columns to serve, and its own problem.
    if datafusion::catalog::TableProvider::schema(entry.table.as_ref()).fields().is_empty() {
        return None;
    }
    if policy.serves_no_columns(entry) {
        return Some(format!(
            "  WARN  {name}: no column rule allows any of its columns to anyone, stewards included: every reader \
             gets its rows with zero columns; add a columns rule (for example {{ id: ..., select: \"*\", action: \
             allow }})"
        ));
    }
    let users = configured_users(engine.snapshot().config(), policy.attributes());
    let readers: Vec<&Principal> = users.values().filter(|user| policy.can_read(user, &entry.product)).collect();
    let sees_a_column = |user: &&Principal| {
        policy.decide(user, entry).columns.iter().any(|column| !matches!(column.action, Action::Deny))
    };
    if readers.is_empty() || readers.iter().any(sees_a_column) {
        return None;
    }
    let names: Vec<&str> = readers.iter().map(|user| user.name.as_str()).collect();
    Some(format!(
        "  WARN  {name}: the configured users who may read it ({}) get none of its columns: no column rule that \
         allows one applies to them, so they read its rows with zero columns",
        names.join(", ")
    ))
}

async fn run_case(engine: &Engine, case: &PolicyTest) -> Result<(), String> {
    let principal = Arc::new(case.principal.clone());
    let result = async {
        let query = engine.plan(&principal, &case.sql).await?;
        let batches: Vec<RecordBatch> =
            query.execute().await?.try_collect().await.map_err(meshgate_engine::EngineError::from)?;
        Ok::<_, meshgate_engine::EngineError>(batches)
    }
    .await;
    match (result, &case.expect_rows, &case.expect_error) {
        (Ok(batches), Some(expected), _) => {
            let mut got = rows_as_text(&batches).map_err(|e| e.to_string())?;
            let mut want: Vec<Vec<String>> = expected.iter().map(|row| row.iter().map(yaml_text).collect()).collect();
            got.sort();
            want.sort();
            if got == want { Ok(()) } else { Err(format!("expected rows {want:?}, got {got:?}")) }
        }
        (Ok(_), None, Some(error)) => Err(format!("expected an error containing \"{error}\", but the query succeeded")),
        (Err(error), _, Some(expected)) => {
            let message = error.to_string();
            if message.to_lowercase().contains(&expected.to_lowercase()) {
                Ok(())
            } else {
                Err(format!("expected an error containing \"{expected}\", got: {message}"))
            }
        }
        (Err(error), _, None) => Err(format!("query failed: {error}")),
        (Ok(_), None, None) => Ok(()),
    }
}

fn rows_as_text(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, datafusion::arrow::error::ArrowError> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
            .collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(row).to_string()).collect());
        }
    }
    Ok(rows)
}

fn yaml_text(value: &serde_norway::Value) -> String {
    match value {
        serde_norway::Value::Null => "NULL".to_owned(),
        serde_norway::Value::Bool(flag) => flag.to_string(),
        serde_norway::Value::Number(number) => number.to_string(),
        serde_norway::Value::String(text) => text.clone(),
        other => serde_norway::to_string(other).unwrap_or_default().trim().to_owned(),
    }
}

/// A configured user's name, or a principal written as YAML.
fn principal_from(engine: &Engine, text: &str) -> Result<Principal, String> {
    let attributes = engine.policy().attributes();
    if let Some(principal) = configured_users(engine.snapshot().config(), attributes).remove(text) {
        return Ok(principal);
    }
    let inline: InlinePrincipalSpec = serde_norway::from_str(text)
        .map_err(|_| format!("'{text}' is neither a configured user nor a principal like {{name: x, groups: [a]}}"))?;
    let (principal, problems) = configured_principal(&inline.name, &inline.groups, &inline.attributes, attributes);
    match problems.first() {
        Some((attr, problem)) => Err(format!("attribute {attr}: {problem}")),
        None => Ok(principal),
    }
}

async fn explain(args: PolicyExplainArgs) -> ExitCode {
    let engine = match load(args.config).await {
        Ok(engine) => engine,
        Err(code) => return code,
    };
    let principal = match principal_from(&engine, &args.principal) {
        Ok(principal) => Arc::new(principal),
        Err(problem) => {
            eprintln!("meshgate: {problem}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    let policy = engine.policy();
    let _ = writeln!(out, "principal: {principal}");
    let _ = writeln!(out, "steward: {}", if policy.is_steward(&principal) { "yes" } else { "no" });
    let state = engine.session_state();
    let dialect = state.config().options().sql_parser.dialect;
    let references = state
        .sql_to_statement(&args.sql, &dialect)
        .and_then(|statement| state.resolve_table_references(&statement))
        .unwrap_or_default();
    for reference in references {
        let (Some(domain), table) = (reference.schema(), reference.table()) else { continue };
        let Some(entry) = engine.snapshot().product(domain, table) else {
            let _ = writeln!(out, "\n{reference}: no such product");
            continue;
        };
        let decision = policy.decide(&principal, entry);
        let _ = writeln!(out, "\n{}:", entry.product.qualified_name());
        let applied: Vec<String> =
            decision.grants.iter().map(|(id, effect)| format!("{effect:?} {id}").to_lowercase()).collect();
        let access = if decision.readable { "granted" } else { "denied (the product is invisible to this principal)" };
        let _ = writeln!(out, "  access: {access}; grants that apply: {}", list_or_none(&applied));
        let permissive: Vec<String> = decision.permissive.iter().map(|(id, f)| format!("{f} [{id}]")).collect();
        let restrictive: Vec<String> = decision.restrictive.iter().map(|(id, f)| format!("{f} [{id}]")).collect();
        let filter = match (permissive.is_empty(), restrictive.is_empty()) {
            (true, _) => "false (no permissive filter applies: no rows)".to_owned(),
            (false, true) => format!("({})", permissive.join(" OR ")),
            (false, false) => format!("({}) AND {}", permissive.join(" OR "), restrictive.join(" AND ")),
        };
        let _ = writeln!(out, "  row filter: {filter}");
        let _ = writeln!(out, "  columns:");
        for column in &decision.columns {
            let action = match &column.action {
                Action::Allow => "allow".to_owned(),
                Action::Deny => "deny".to_owned(),
                Action::Mask(mask) => format!("mask: {}", mask.describe()),
            };
            let rule = column.rule.as_deref().unwrap_or("no rule covers it");
            let _ = writeln!(out, "    {:<20} {action} [{rule}]", column.name);
        }
    }
    match engine.governed_plan_text(&principal, &args.sql).await {
        Ok(plan) => {
            let _ = writeln!(out, "\ngoverned plan:\n{plan}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            let _ = writeln!(out, "\nthe query fails for this principal: {error}");
            ExitCode::FAILURE
        }
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() { "none".to_owned() } else { items.join(", ") }
}

/// Reads one password from stdin and prints its argon2id hash.
pub fn hash_password() -> ExitCode {
    let mut password = String::new();
    if let Err(error) = std::io::stdin().read_to_string(&mut password) {
        eprintln!("meshgate: cannot read the password from stdin: {error}");
        return ExitCode::from(2);
    }
    let password = password.strip_suffix('\n').unwrap_or(&password);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        eprintln!("meshgate: the password is empty");
        return ExitCode::from(2);
    }
    match meshgate_flight::hash_password(password) {
        Ok(hash) => {
            let _ = writeln!(std::io::stdout(), "{hash}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("meshgate: {error}");
            ExitCode::from(2)
        }
    }
}
