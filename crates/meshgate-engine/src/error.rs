//! Errors of the engine: what went wrong with a query, in terms a user can act on.

use datafusion::common::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;
use meshgate_catalog::ProductError;
use meshgate_policy::PolicyError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The SQL does not parse or plan (syntax, unknown column, type mismatch…).
    #[error("{0}")]
    InvalidSql(String),
    /// A statement or feature outside the read-only query surface.
    #[error("{what} is not allowed: meshgate serves read-only queries over the mesh's products")]
    Refused { what: String },
    /// A construct that parses but that meshgate would not compute correctly
    /// (see `unsupported`): refused with what to write instead.
    #[error("{what} is not supported: {instead}")]
    Unsupported { what: String, instead: String },
    /// A statement nested too deeply to plan safely (see `complexity`).
    #[error("query too complex: {0}")]
    TooComplex(String),
    /// A table that does not exist (or that the caller may not see).
    #[error("table {name} not found{hint}")]
    TableNotFound { name: String, hint: String },
    /// A product that cannot be read.
    #[error(transparent)]
    Product(#[from] ProductError),
    /// A product whose failing quality checks block it (`on_failure: block`).
    #[error("{0}")]
    Degraded(String),
    /// The query ran past the memory it may use.
    #[error("the query needs more memory than meshgate's memory limit allows and could not spill: {0}")]
    ResourcesExhausted(String),
    /// A failure while executing the query (division by zero, bad cast…).
    #[error("{0}")]
    Execution(String),
    /// Governance refused the query (EXPLAIN ANALYZE by a non-steward, a plan that
    /// failed verification).
    #[error(transparent)]
    Governance(#[from] PolicyError),
    /// The query ran past the configured query timeout.
    #[error("{0}")]
    TimedOut(String),
    /// A partition ticket whose statement now plans into other partitions (for
    /// example after a reload): the client must run the statement again.
    #[error("the result is partitioned differently now; run the statement again")]
    PartitioningChanged,
    /// A query asked for as shards that cannot be read that way (docs/ml.md).
    #[error("this query cannot be read as shards: {0}")]
    NotShardable(String),
    /// A shard ticket whose driving product's files changed since the shards were
    /// described: reading it would mix two versions of the data.
    #[error("the files of {0} changed since the shards were planned; plan the shards again")]
    ShardsChanged(String),
    /// A distributed worker stopped answering mid-query (the next queries avoid it).
    #[error("{0}")]
    WorkerUnavailable(String),
    /// A bug or an unexpected state inside meshgate; details are logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<DataFusionError> for EngineError {
    fn from(error: DataFusionError) -> Self {
        if let DataFusionError::External(inner) = error.find_root()
            && let Some(policy) = inner.downcast_ref::<PolicyError>()
        {
            return EngineError::Governance(policy.clone());
        }
        if let DataFusionError::External(inner) = error.find_root()
            && let Some(timed_out) = inner.downcast_ref::<crate::engine::QueryTimedOut>()
        {
            return EngineError::TimedOut(timed_out.to_string());
        }
        if let DataFusionError::External(inner) = error.find_root()
            && let Some(lost) = inner.downcast_ref::<crate::distributed::WorkerLost>()
        {
            return EngineError::WorkerUnavailable(lost.to_string());
        }
        if let Some(product) = find_product_error(&error) {
            return EngineError::Product(product.clone());
        }
        if let DataFusionError::SQL(parser, _) = error.find_root()
            && matches!(**parser, ParserError::RecursionLimitExceeded)
        {
            return EngineError::TooComplex(format!(
                "parentheses, subqueries or function calls nest deeper than {} levels",
                crate::complexity::PARSER_RECURSION_LIMIT
            ));
        }
        if meshgate_catalog::disk_full(&error) {
            // The spill directory's disk: nothing the message should say more about.
            return EngineError::ResourcesExhausted(
                "the server's spill space is full; the query could not spill its intermediate results".into(),
            );
        }
        if let Some(spill) = meshgate_catalog::spill_failure(&error) {
            // The spill directory cannot be used: the query needed it and the server
            // cannot give it (the directory is named in the server's log).
            return EngineError::ResourcesExhausted(spill.to_string());
        }
        if meshgate_catalog::evaluating_an_expression(&error) {
            // The query's own expression failed (in the reader, for a pushed-down filter).
            return EngineError::Execution(strip_backtrace(&error));
        }
        match error.find_root() {
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_)
            | DataFusionError::Configuration(_) => EngineError::InvalidSql(strip_backtrace(&error)),
            DataFusionError::ResourcesExhausted(message) => EngineError::ResourcesExhausted(message.clone()),
            DataFusionError::ArrowError(..) | DataFusionError::Execution(_) => {
                EngineError::Execution(strip_backtrace(&error))
            }
            _ => EngineError::Internal(strip_backtrace(&error)),
        }
    }
}

/// The product error inside a (possibly wrapped) DataFusion error.
fn find_product_error(error: &DataFusionError) -> Option<&ProductError> {
    let mut current: &(dyn std::error::Error + 'static) = error;
    loop {
        if let Some(product) = current.downcast_ref::<ProductError>() {
            return Some(product);
        }
        if let Some(DataFusionError::External(inner)) = current.downcast_ref::<DataFusionError>()
            && let Some(product) = inner.downcast_ref::<ProductError>()
        {
            return Some(product);
        }
        current = current.source()?;
    }
}

fn strip_backtrace(error: &DataFusionError) -> String {
    error.find_root().strip_backtrace()
}

#[cfg(test)]
mod tests {
    use meshgate_catalog::ProblemKind;

    use super::*;

    #[test]
    fn product_errors_are_found_under_context() {
        let product = ProductError { product: "sales.orders".into(), kind: ProblemKind::Corrupt, detail: "bad".into() };
        let wrapped =
            DataFusionError::Context("while reading".into(), Box::new(DataFusionError::External(Box::new(product))));
        assert!(matches!(EngineError::from(wrapped), EngineError::Product(p) if p.product == "sales.orders"));
        let plan = DataFusionError::Plan("No field named x".into());
        assert!(matches!(EngineError::from(plan), EngineError::InvalidSql(m) if m.contains("No field named x")));
    }
}
