//! The mesh configuration: the YAML model, loading and validation.

pub mod acceleration;
pub mod contract;
mod load;
mod mesh;
mod model;
mod odcs;
mod sql_check;
pub mod types;
mod validate;
mod validate_contract;

pub use load::{load_mesh, load_mesh_str};
pub use mesh::{
    Acceleration, Column, Contract, Domain, Format, MeshConfig, Product, Refresh, Role, Status, StoreSettings,
};
pub use validate::SUPPORTED_SCHEMES;

#[cfg(test)]
mod contract_tests;
