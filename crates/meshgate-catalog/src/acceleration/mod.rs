//! Accelerated products: a product's raw rows held in memory as Arrow, per data
//! snapshot and never per principal, and served from there. Governance is untouched:
//! a copy is read only through [`crate::ProductData::scan`], under the same
//! `ProductScanExec`, row filter, masks and barrier as the files.
//!
//! A copy is built beside the one serving and swapped in whole ([`refresh`]); queries
//! planned before keep the copy they took. A build that fails, or that would take more
//! memory than the product's `max_bytes` or the mesh's budget, keeps the copy there
//! was and says so ([`AccelerationStatus`]).

mod build;
mod copy;
mod memory;
mod scan;
mod spill;
mod status;
mod task;

pub use copy::AcceleratedCopy;
pub use memory::AccelerationMemory;
pub use scan::{AcceleratedScanExec, release_accelerated_copies};
pub use status::{AccelerationState, AccelerationStatus};
pub use task::{AccelerationTask, accelerate};
