//! The locked SQL surface: only queries (and EXPLAIN/DESCRIBE of them) over the
//! mesh's own tables. Everything else is refused before planning, by name.

use datafusion::common::TableReference;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use crate::error::EngineError;

/// Refuses any statement that is not a read-only query.
pub fn check_statement(statement: &Statement, sql: &str) -> Result<(), EngineError> {
    match statement {
        Statement::Statement(inner) => match inner.as_ref() {
            SqlStatement::Query(_)
            | SqlStatement::ExplainTable { .. }
            | SqlStatement::ShowTables { .. }
            | SqlStatement::ShowColumns { .. }
            | SqlStatement::ShowVariable { .. } => Ok(()),
            SqlStatement::Explain { statement, .. } => check_statement(&Statement::Statement(statement.clone()), sql),
            _ => Err(refused(sql)),
        },
        Statement::Explain(explain) => check_statement(&explain.statement, sql),
        Statement::CreateExternalTable(_) => Err(EngineError::Refused { what: "CREATE EXTERNAL TABLE".into() }),
        Statement::CopyTo(_) => Err(EngineError::Refused { what: "COPY".into() }),
        Statement::Reset(_) => Err(EngineError::Refused { what: "RESET".into() }),
    }
}

/// `SHOW SCHEMAS` (and `SHOW DATABASES`, its MySQL and Spark name), which DataFusion
/// does not plan, as the query on `information_schema.schemata` it stands for: the
/// schemas of the principal's governed catalog, so only the domains they can read.
pub fn rewrite_show_schemas(statement: &mut Statement) -> Result<(), EngineError> {
    use datafusion::sql::sqlparser::ast::{ShowStatementFilter, ShowStatementFilterPosition};
    let Statement::Statement(inner) = statement else { return Ok(()) };
    let (SqlStatement::ShowSchemas { show_options, .. } | SqlStatement::ShowDatabases { show_options, .. }) =
        inner.as_ref()
    else {
        return Ok(());
    };
    let filter = match &show_options.filter_position {
        None => String::new(),
        Some(ShowStatementFilterPosition::Infix(filter) | ShowStatementFilterPosition::Suffix(filter)) => {
            match filter {
                ShowStatementFilter::Like(pattern) => format!(" WHERE schema_name LIKE {}", quoted(pattern)),
                ShowStatementFilter::ILike(pattern) => format!(" WHERE schema_name ILIKE {}", quoted(pattern)),
                _ => String::new(),
            }
        }
    };
    let plain = show_options.show_in.is_none()
        && show_options.starts_with.is_none()
        && show_options.limit.is_none()
        && show_options.limit_from.is_none()
        && (show_options.filter_position.is_none() || !filter.is_empty());
    if !plain {
        return Err(EngineError::InvalidSql(
            "SHOW SCHEMAS takes LIKE or ILIKE here, not IN, STARTS WITH, LIMIT or WHERE: for those, query \
             information_schema.schemata"
                .into(),
        ));
    }
    let sql = format!("SELECT catalog_name, schema_name FROM information_schema.schemata{filter} ORDER BY schema_name");
    let mut parsed = datafusion::sql::parser::DFParser::parse_sql(&sql)?;
    if let Some(query) = parsed.pop_front() {
        *statement = query;
    }
    Ok(())
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Names a refused statement by its leading keywords (`CREATE VIEW`, `SET`, `INSERT`).
fn refused(sql: &str) -> EngineError {
    let words: Vec<String> = sql
        .split_whitespace()
        .map(|word| word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_'))
        .filter(|word| !word.is_empty())
        .take(4)
        .map(str::to_ascii_uppercase)
        .collect();
    let mut what: Vec<&str> = words.iter().take(1).map(String::as_str).collect();
    if matches!(what.first(), Some(&("CREATE" | "DROP" | "ALTER"))) {
        let rest = words.iter().skip(1).map(String::as_str);
        what.extend(
            rest.take_while(|w| {
                matches!(*w, "OR" | "REPLACE" | "EXTERNAL" | "TEMPORARY" | "TEMP" | "UNIQUE" | "MATERIALIZED")
            })
            .collect::<Vec<_>>(),
        );
        if let Some(object) = words.get(what.len()) {
            what.push(object);
        }
    }
    let what = if what.is_empty() { "this statement".to_owned() } else { what.join(" ") };
    EngineError::Refused { what }
}

/// Whether a table reference names a file or URL rather than a table.
pub fn is_url_table(reference: &TableReference) -> bool {
    let name = reference.table();
    name.contains("://")
        || name.contains('/')
        || name.contains('\\')
        || [".parquet", ".csv", ".json", ".ndjson", ".avro", ".arrow"]
            .iter()
            .any(|ext| name.to_ascii_lowercase().ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refused_statements() {
        let what = |sql| match refused(sql) {
            EngineError::Refused { what } => what,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(what("create view v as select 1"), "CREATE VIEW");
        assert_eq!(what("CREATE OR REPLACE TABLE t (a int)"), "CREATE OR REPLACE TABLE");
        assert_eq!(what("set datafusion.execution.batch_size = 1"), "SET");
        assert_eq!(what("  insert into x values (1)"), "INSERT");
    }

    #[test]
    fn show_schemas_becomes_a_query_on_schemata() {
        let rewritten = |sql: &str| {
            let mut statement = datafusion::sql::parser::DFParser::parse_sql(sql).unwrap().pop_front().unwrap();
            rewrite_show_schemas(&mut statement).map(|()| statement.to_string())
        };
        let all = rewritten("SHOW SCHEMAS").unwrap();
        assert!(all.contains("FROM information_schema.schemata") && !all.contains("WHERE"), "{all}");
        let like = rewritten("SHOW DATABASES LIKE 'sa''%'").unwrap();
        assert!(like.contains("WHERE schema_name LIKE 'sa''%'"), "{like}");
        assert!(matches!(rewritten("SHOW SCHEMAS IN mesh"), Err(EngineError::InvalidSql(_))));
        assert_eq!(rewritten("SHOW TABLES").unwrap(), "SHOW TABLES");
    }

    #[test]
    fn recognises_url_tables() {
        assert!(is_url_table(&TableReference::bare("s3://bucket/x.parquet")));
        assert!(is_url_table(&TableReference::bare("/etc/passwd")));
        assert!(is_url_table(&TableReference::bare("data.csv")));
        assert!(!is_url_table(&TableReference::partial("sales", "orders")));
    }
}
