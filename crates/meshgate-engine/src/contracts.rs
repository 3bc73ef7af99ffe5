//! Data contracts at query time: a product whose quality checks failed is refused
//! (`on_failure: block`) or served with a warning the client can read.

use meshgate_catalog::quality::{Gate, QualityBook};

use crate::error::EngineError;
use crate::reads::ProductRead;

/// The warnings a query over `reads` carries, or the refusal of the first product
/// its contract blocks.
pub(crate) fn contract_warnings(book: &QualityBook, reads: &[ProductRead]) -> Result<Vec<String>, EngineError> {
    let mut warnings = Vec::new();
    for read in reads {
        match book.gate(&read.domain, &read.product, &read.version) {
            Gate::Clear => {}
            Gate::Warn(warning) => warnings.push(warning),
            Gate::Block(message) => return Err(EngineError::Degraded(message)),
        }
    }
    Ok(warnings)
}
