//! meshgate-engine: plans and runs SQL over a mesh snapshot in a locked DataFusion
//! session — read-only queries over the mesh's products, nothing else.

mod asof;
mod balance;
mod bounded;
mod complexity;
mod contracts;
mod date_diff;
mod delta_pins;
pub mod distributed;
mod engine;
mod error;
mod functions;
mod lineage;
mod partitions;
mod physical_reuse;
mod plan_cache;
mod point_in_time;
mod reads;
mod runtime;
mod shards;
mod spill;
mod split_hash;
mod sql_guard;
mod substrait;
mod system;
mod training;
mod unsupported;
mod yielding;

pub use complexity::{MAX_DEPTH, PLANNING_STACK_BYTES};
pub use engine::{
    DEFAULT_TIME_ZONE, Engine, PlanSettings, Query, QueryTimedOut, ResultShape, check_time_zone, session_config,
};
pub use error::EngineError;
pub use lineage::ColumnSource;
pub use reads::ProductRead;
pub use runtime::{RuntimeOptions, memory_peak, parse_byte_size, runtime, spill_bytes};
pub use substrait::substrait_version;
pub use system::{SYSTEM_SCHEMA, SystemSources, SystemTable};
pub use training::{ProductSnapshot, TrainingSnapshot};
