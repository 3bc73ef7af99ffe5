//! Errors of the policy crate.

/// A governance failure at query time. Messages never include policy text.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PolicyError {
    /// The plan verifier found a product scan outside a barrier: the query fails closed.
    #[error("the query plan failed governance verification")]
    Unverified,
    /// EXPLAIN ANALYZE runs and times the hidden part of the plan; stewards only.
    #[error("EXPLAIN ANALYZE is available to data stewards only; use EXPLAIN")]
    ExplainAnalyzeRefused,
}
