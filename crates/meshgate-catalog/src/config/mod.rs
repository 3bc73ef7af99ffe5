//! The mesh configuration: the YAML model, loading and validation.

mod load;
mod mesh;
mod model;
pub mod types;
mod validate;

pub use load::{load_mesh, load_mesh_str};
pub use mesh::{Column, Domain, Format, MeshConfig, Product, Status, StoreSettings};
pub use validate::SUPPORTED_SCHEMES;
