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
    /// The memory budget for accelerated products, and a default for every product.
    pub acceleration: Option<super::acceleration::MeshAccelerationSpec>,
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
    /// The date (`2027-03-31`) a deprecated version stops being served.
    pub sunset: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub location: String,
    pub format: FormatName,
    pub csv: Option<CsvSpec>,
    #[serde(default)]
    pub partitions: Vec<PartitionSpec>,
    pub schema: Option<Vec<ColumnSpec>>,
    /// The owner's quality checks (ODCS v3 `quality`).
    #[serde(default)]
    pub quality: Vec<QualitySpec>,
    /// How recent the newest data must be.
    pub freshness: Option<FreshnessSpec>,
    /// How often the checks run again in the background (`15m`); default: at load only.
    pub schedule: Option<String>,
    /// What a failing `error` check does to queries on the product.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Sources the product is derived from (`domain.product` or free-form).
    #[serde(default)]
    pub upstream: Vec<String>,
    /// An ODCS v3.1 contract file (relative to the descriptor) supplying schema,
    /// quality and SLA.
    pub contract: Option<String>,
    /// Hold the product in memory (overrides the mesh file's default field by field).
    pub acceleration: Option<super::acceleration::AccelerationSpec>,
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
    /// A Delta Lake table: its log names the files of each version.
    Delta,
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
    /// The column's role for machine learning.
    pub role: Option<Role>,
    /// Unit of measure (`USD`, `kg`, `days`).
    pub unit: Option<String>,
}

/// A column's role for machine learning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    EntityKey,
    EventTime,
    /// When a feature row was computed: among rows with the same event time, the
    /// latest created wins in point-in-time joins.
    CreatedAt,
    Feature,
    Label,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::EntityKey => "entity_key",
            Role::EventTime => "event_time",
            Role::Feature => "feature",
            Role::Label => "label",
            Role::CreatedAt => "created_at",
        }
    }
}

/// What a failing `error` check does to queries on its product.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Served, with a warning to the client.
    #[default]
    Warn,
    /// Refused until the checks pass again.
    Block,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Warn => "warn",
            OnFailure::Block => "block",
        }
    }
}

/// How serious a failing check is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[serde(alias = "warning", alias = "info")]
    Warn,
    #[default]
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

/// The kinds of quality check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckType {
    RowCount,
    NotNull,
    Unique,
    AllowedValues,
    Range,
    Regex,
    Sql,
}

/// One quality check as written. Fields apply by `type`; validation reports those
/// that do not. Comparisons follow ODCS v3 (`mustBe`, `mustBeGreaterThan`, …).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualitySpec {
    #[serde(rename = "type")]
    pub kind: CheckType,
    pub name: Option<String>,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    pub description: String,
    pub column: Option<String>,
    pub columns: Option<Vec<String>>,
    pub min: Option<serde_norway::Value>,
    pub max: Option<serde_norway::Value>,
    pub values: Option<Vec<serde_norway::Value>>,
    pub pattern: Option<String>,
    pub expression: Option<String>,
    pub query: Option<String>,
    #[serde(alias = "mustBe")]
    pub must_be: Option<serde_norway::Value>,
    #[serde(alias = "mustNotBe")]
    pub must_not_be: Option<serde_norway::Value>,
    #[serde(alias = "mustBeGreaterThan")]
    pub must_be_greater_than: Option<serde_norway::Value>,
    #[serde(alias = "mustBeGreaterOrEqualTo", alias = "mustBeGreaterThanOrEqualTo")]
    pub must_be_greater_or_equal_to: Option<serde_norway::Value>,
    #[serde(alias = "mustBeLessThan")]
    pub must_be_less_than: Option<serde_norway::Value>,
    #[serde(alias = "mustBeLessOrEqualTo", alias = "mustBeLessThanOrEqualTo")]
    pub must_be_less_or_equal_to: Option<serde_norway::Value>,
    #[serde(alias = "mustBeBetween")]
    pub must_be_between: Option<Vec<serde_norway::Value>>,
    #[serde(alias = "mustNotBeBetween")]
    pub must_not_be_between: Option<Vec<serde_norway::Value>>,
}

/// A freshness SLA: the newest event (or file) may be at most `max_age` old.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshnessSpec {
    /// Event-time column; without it, the newest file's modification time.
    pub column: Option<String>,
    pub max_age: String,
    #[serde(default)]
    pub severity: Severity,
}
