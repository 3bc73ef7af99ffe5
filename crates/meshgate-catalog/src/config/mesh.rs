//! The validated mesh configuration: what the rest of meshgate builds from.

use datafusion::arrow::datatypes::DataType;
use url::Url;

pub use super::acceleration::{Acceleration, Refresh, SpillConfig};
pub use super::contract::Contract;
pub use super::model::{Role, Status};

/// A validated mesh configuration.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    pub catalog: String,
    pub stores: Vec<StoreSettings>,
    pub domains: Vec<Domain>,
    /// The `auth` section as written; the protocol layer parses it.
    pub auth: Option<serde_norway::Value>,
    /// The `governance` section as written; the policy layer parses it.
    pub governance: Option<serde_norway::Value>,
    /// Directory of the mesh file: relative policy and key paths resolve against it.
    pub base_dir: std::path::PathBuf,
    /// Memory all accelerated products may hold together, in bytes.
    pub acceleration_budget: u64,
    /// Where copies that do not fit in memory are written, if anywhere.
    pub acceleration_spill: Option<SpillConfig>,
}

impl MeshConfig {
    pub fn products(&self) -> impl Iterator<Item = &Product> {
        self.domains.iter().flat_map(|domain| domain.products.iter())
    }
}

/// Object-store options for every location under `prefix`.
#[derive(Clone)]
pub struct StoreSettings {
    pub prefix: Url,
    /// Config path of this entry, for error messages.
    pub path: String,
    /// Option name → value, `${VAR}` references already expanded. May hold secrets.
    pub options: Vec<(String, String)>,
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.options.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("StoreSettings").field("prefix", &self.prefix.as_str()).field("options", &names).finish()
    }
}

/// A domain: one SQL schema.
#[derive(Debug, Clone)]
pub struct Domain {
    pub name: String,
    pub owner: String,
    pub description: String,
    pub products: Vec<Product>,
    /// Policy files (paths) or inline policies, as written.
    pub policies: Vec<serde_norway::Value>,
}

/// A data product: one SQL table.
#[derive(Debug, Clone)]
pub struct Product {
    pub domain: String,
    pub name: String,
    pub description: String,
    pub owner: String,
    pub version: String,
    pub status: Status,
    /// When a deprecated version stops being served (`YYYY-MM-DD`).
    pub sunset: Option<String>,
    pub tags: Vec<String>,
    pub location: Url,
    pub format: Format,
    pub partitions: Vec<(String, DataType)>,
    pub schema: Option<Vec<Column>>,
    /// Quality checks, freshness, schedule, on-failure behaviour and upstream sources.
    pub contract: Contract,
    /// Held in memory and served from there, when set.
    pub acceleration: Option<Acceleration>,
}

impl Product {
    /// `domain.product`, as users write it in SQL.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.domain, self.name)
    }
}

/// File format and its reading options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Csv {
        has_header: bool,
        delimiter: u8,
    },
    Ndjson,
    /// A Delta Lake table (its location is the table's root, holding `_delta_log/`).
    Delta,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv { .. } => "csv",
            Format::Ndjson => "ndjson",
            Format::Delta => "delta",
        }
    }
}

/// A declared column.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub data_type: DataType,
    pub nullable: bool,
    pub key: bool,
    pub description: String,
    pub tags: Vec<String>,
    pub role: Option<Role>,
    pub unit: Option<String>,
}
