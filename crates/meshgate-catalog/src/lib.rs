//! meshgate-catalog: the mesh configuration (parsed strictly, validated with every
//! error reported by path), object stores, and data products as DataFusion tables.
//!
//! It knows nothing of principals or protocols; the engine and policy layers build
//! on the [`MeshSnapshot`] it produces.

pub mod acceleration;
pub mod config;
mod data_pins;
mod delta;
mod error;
mod files;
mod health;
mod inventory;
mod plain_strings;
mod product_table;
mod provenance;
pub mod quality;
mod recovery;
mod scan_exec;
mod snapshot;
mod sql_catalog;
mod stores;

pub use config::{MeshConfig, load_mesh, load_mesh_str};
pub use data_pins::DataPins;
pub use delta::DeltaPin;
pub use error::{ConfigError, ConfigErrors, PinError, ProblemKind, ProductError, SpillError};
pub use files::ProductFile;
pub use health::{Health, disk_full, evaluating_an_expression, spill_failure};
pub use inventory::Inventory;
pub use product_table::{DataIdentity, ProductData, ProductTable};
pub use provenance::{SOURCE_FILE, SOURCE_ROW, provenance_fields, with_provenance};
pub use recovery::{Backoff, RecoveryTask};
pub use scan_exec::{ProductScanExec, reads_product_data};
pub use snapshot::{MeshSnapshot, ProductEntry};
pub use sql_catalog::{DomainSchema, MeshCatalog};
pub use stores::register_stores;
