//! meshgate-engine: plans and runs SQL over a mesh snapshot in a locked DataFusion
//! session — read-only queries over the mesh's products, nothing else.

mod date_diff;
mod engine;
mod error;
mod functions;
mod lineage;
mod partitions;
mod plan_cache;
mod runtime;
mod sql_guard;
mod substrait;

pub use engine::{Engine, Query, ResultShape, session_config};
pub use error::EngineError;
pub use lineage::ColumnSource;
pub use runtime::{RuntimeOptions, parse_byte_size, runtime};
pub use substrait::substrait_version;
