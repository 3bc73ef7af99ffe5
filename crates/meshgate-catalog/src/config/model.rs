//! The mesh file and product descriptors as written by people: parsed strictly
//! (`deny_unknown_fields`), checked afterwards by [`super::validate`].

use std::collections::BTreeMap;

use serde::Deserialize;

/// The mesh file: catalog name, object-store settings and domains.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeshFile {
    #[serde(default = "default_catalog")]
    pub catalog: String,
    #[serde(default)]
    pub stores: BTreeMap<String, BTreeMap<String, String>>,
    /// Domains stay raw here so each is checked on its own and all errors reported.
    #[serde(default)]
    pub domains: BTreeMap<String, serde_norway::Value>,
    /// Who may connect; parsed by the protocol layer.
    pub auth: Option<serde_norway::Value>,
    /// Principal attributes, stewards and mesh-wide policies; parsed by the policy layer.
    pub governance: Option<serde_norway::Value>,
}

fn default_catalog() -> String {
    "mesh".to_owned()
}

/// A domain: its owner, and its products inline and/or in its own folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainSpec {
    pub owner: String,
    #[serde(default)]
    pub description: String,
    /// Products stay raw here so each is checked on its own and all errors reported.
    #[serde(default)]
    pub products: Vec<serde_norway::Value>,
    pub products_dir: Option<String>,
    /// The domain's policy files (paths relative to the mesh file) or inline policies.
    #[serde(default)]
    pub policies: Vec<serde_norway::Value>,
}

/// One data product descriptor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub owner: Option<String>,
    #[serde(default = "default_version")]
    pub version: String,
    #[serde(default)]
    pub status: Status,
    #[serde(default)]
    pub tags: Vec<String>,
    pub location: String,
    pub format: FormatName,
    pub csv: Option<CsvSpec>,
    #[serde(default)]
    pub partitions: Vec<PartitionSpec>,
    pub schema: Option<Vec<ColumnSpec>>,
}

fn default_version() -> String {
    "0.1.0".to_owned()
}

/// Lifecycle of a product.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Draft,
    #[default]
    Active,
    Deprecated,
    Retired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Active => "active",
            Status::Deprecated => "deprecated",
            Status::Retired => "retired",
        }
    }
}

/// File format of a product's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatName {
    Parquet,
    Csv,
    #[serde(alias = "json")]
    Ndjson,
}

/// CSV reading options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvSpec {
    #[serde(default = "default_true")]
    pub has_header: bool,
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
}

fn default_true() -> bool {
    true
}

fn default_delimiter() -> char {
    ','
}

/// A hive partition column (`…/name=value/…`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
}

/// A declared column of the product's schema contract.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    #[serde(default = "default_true")]
    pub nullable: bool,
    #[serde(default)]
    pub key: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
}
