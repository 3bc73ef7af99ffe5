//! `MeshSnapshot`: the immutable, loaded mesh — every product's table and health,
//! built from a validated [`MeshConfig`]. Queries bind to one snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::context::SessionContext;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionConfig;
use futures::StreamExt;

use crate::config::{Format, MeshConfig, Product, Status};
use crate::error::{ConfigErrors, ProblemKind, ProductError};
use crate::health::{Health, classify, declared_schema, no_data_files, schema_drift};
use crate::plain_strings::plain_schema;
use crate::product_table::ProductTable;
use crate::stores::{location_exists, register_stores};

/// How many products are opened at once while loading.
const LOAD_CONCURRENCY: usize = 8;

/// A loaded product: its descriptor and its table.
#[derive(Debug)]
pub struct ProductEntry {
    pub product: Product,
    pub table: Arc<ProductTable>,
    /// For a Delta product: the Delta version its table reads (the product's
    /// `version` stays the descriptor's).
    pub delta_version: Option<u64>,
    pub(crate) inventory: crate::inventory::InventoryCache,
    /// For a Delta product: its log as loaded at that version.
    delta: Option<deltalake_core::DeltaTable>,
    /// How building and refreshing its accelerated copy went (an accelerated product).
    pub acceleration: crate::acceleration::AccelerationStatus,
}

impl ProductEntry {
    pub(crate) fn new(product: Product, table: Arc<ProductTable>) -> Self {
        Self {
            product,
            table,
            delta_version: None,
            inventory: Default::default(),
            delta: None,
            acceleration: Default::default(),
        }
    }

    /// What a query answered from this product's accelerated copy is told when the
    /// copy may be behind the files: the last refresh failed.
    pub fn acceleration_warning(&self) -> Option<String> {
        let copy = self.table.accelerated()?;
        let problem = self.acceleration.outcome().problem?;
        let time = |at: std::time::SystemTime| {
            chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        Some(format!(
            "{} is answered from its accelerated copy of {}, which may be behind its files: refreshing it failed at {}: {}",
            self.product.qualified_name(),
            time(copy.loaded_at()),
            time(problem.at),
            // How far over its limits the data went is not for every reader.
            if problem.refused {
                "its data no longer fits in the memory (or local disk) set aside for it"
            } else {
                &problem.message
            }
        ))
    }

    pub(crate) fn with_delta(mut self, table: deltalake_core::DeltaTable, version: Option<u64>) -> Self {
        self.delta = Some(table);
        self.delta_version = version;
        self
    }

    pub(crate) fn delta_table(&self) -> Option<&deltalake_core::DeltaTable> {
        self.delta.as_ref()
    }
}

/// The loaded mesh.
#[derive(Debug)]
pub struct MeshSnapshot {
    config: MeshConfig,
    runtime: Arc<RuntimeEnv>,
    session_config: SessionConfig,
    /// domain → product name → its versions
    products: BTreeMap<String, BTreeMap<String, Versions>>,
    /// Delta versions pinned by queries (`events@v=42`), the last few opened.
    pins: crate::delta::PinCache,
}

impl MeshSnapshot {
    /// Registers the stores, opens every product's files (concurrently) and checks
    /// them against their declared schemas. A product that cannot be read is kept,
    /// marked unhealthy; only configuration errors fail the load.
    pub async fn load(
        config: MeshConfig,
        session_config: SessionConfig,
        runtime: Arc<RuntimeEnv>,
    ) -> Result<Self, ConfigErrors> {
        register_stores(&config, &runtime)?;
        let ctx = SessionContext::new_with_config_rt(session_config.clone(), Arc::clone(&runtime));
        let entries: Vec<ProductEntry> = futures::stream::iter(config.products().cloned())
            .map(|product| open_product(&ctx, product))
            .buffered(LOAD_CONCURRENCY)
            .collect()
            .await;
        let mut products: BTreeMap<String, BTreeMap<String, Versions>> = BTreeMap::new();
        for domain in &config.domains {
            products.entry(domain.name.clone()).or_default();
        }
        for entry in entries {
            products
                .entry(entry.product.domain.clone())
                .or_default()
                .entry(entry.product.name.clone())
                .or_default()
                .add(Arc::new(entry));
        }
        Ok(Self { config, runtime, session_config, products, pins: Default::default() })
    }

    pub fn catalog_name(&self) -> &str {
        &self.config.catalog
    }

    pub fn config(&self) -> &MeshConfig {
        &self.config
    }

    pub fn runtime(&self) -> &Arc<RuntimeEnv> {
        &self.runtime
    }

    pub fn session_config(&self) -> &SessionConfig {
        &self.session_config
    }

    pub(crate) fn pins(&self) -> &crate::delta::PinCache {
        &self.pins
    }

    /// Domain names, sorted.
    pub fn domain_names(&self) -> impl Iterator<Item = &str> {
        self.products.keys().map(String::as_str)
    }

    /// The current version of each product of a domain, sorted by name; `None` for
    /// an unknown domain.
    pub fn domain_products(&self, domain: &str) -> Option<impl Iterator<Item = &Arc<ProductEntry>>> {
        self.products.get(domain).map(|products| products.values().filter_map(Versions::current))
    }

    /// The product a table name reads: `orders` is its current version, `orders@2`
    /// the newest 2.x, `orders@2.1` the newest 2.1.x, `orders@2.1.0` exactly that one.
    /// A retired version reads nothing (see [`MeshSnapshot::retired`]).
    pub fn product(&self, domain: &str, table: &str) -> Option<&Arc<ProductEntry>> {
        let entry = self.resolve(domain, table)?;
        (entry.product.status != Status::Retired).then_some(entry)
    }

    /// When `table` names a retired version: that version and the product's current one
    /// (if any), so the refusal can point to it.
    pub fn retired(&self, domain: &str, table: &str) -> Option<(&Arc<ProductEntry>, Option<&Arc<ProductEntry>>)> {
        let entry = self.resolve(domain, table)?;
        if entry.product.status != Status::Retired {
            return None;
        }
        let current = self.products.get(domain)?.get(&entry.product.name)?.current();
        Some((entry, current))
    }

    fn resolve(&self, domain: &str, table: &str) -> Option<&Arc<ProductEntry>> {
        let (name, pin) = match table.split_once('@') {
            Some((name, pin)) => (name, Some(pin)),
            None => (table, None),
        };
        let versions = self.products.get(domain)?.get(name)?;
        match pin {
            None => versions.current(),
            Some(pin) => versions.pinned(pin),
        }
    }

    /// The current version of every product, by domain then name.
    pub fn products(&self) -> impl Iterator<Item = &Arc<ProductEntry>> {
        self.products.values().flat_map(|products| products.values().filter_map(Versions::current))
    }

    /// Every version of every product (retired ones included), by domain, name, then
    /// version.
    pub fn all_versions(&self) -> impl Iterator<Item = &Arc<ProductEntry>> {
        self.products.values().flat_map(|products| products.values().flat_map(|versions| versions.entries.iter()))
    }

    /// The loaded entry of exactly this product version.
    pub fn version_of(&self, domain: &str, name: &str, version: &str) -> Option<&Arc<ProductEntry>> {
        self.products.get(domain)?.get(name)?.entries.iter().find(|entry| entry.product.version == version)
    }
}

/// The versions of one product, oldest first.
#[derive(Debug, Default)]
struct Versions {
    entries: Vec<Arc<ProductEntry>>,
}

impl Versions {
    fn add(&mut self, entry: Arc<ProductEntry>) {
        self.entries.push(entry);
        self.entries.sort_by_key(|entry| version_key(&entry.product.version));
    }

    /// What the plain name reads: the newest active version, else the newest one that
    /// is not retired.
    fn current(&self) -> Option<&Arc<ProductEntry>> {
        let newest = |status: Option<Status>| {
            self.entries.iter().rev().find(|entry| match status {
                Some(status) => entry.product.status == status,
                None => entry.product.status != Status::Retired,
            })
        };
        newest(Some(Status::Active)).or_else(|| newest(None))
    }

    /// The newest version whose number starts with `pin` (whole components).
    fn pinned(&self, pin: &str) -> Option<&Arc<ProductEntry>> {
        let wanted: Vec<&str> = pin.split('.').collect();
        self.entries.iter().rev().find(|entry| {
            let core = entry.product.version.split(['-', '+']).next().unwrap_or_default();
            let parts: Vec<&str> = core.split('.').collect();
            entry.product.version == pin || (wanted.len() <= parts.len() && parts[..wanted.len()] == wanted[..])
        })
    }
}

/// Orders semantic versions numerically (1.10.0 after 1.9.0).
fn version_key(version: &str) -> Vec<u64> {
    version.split(['-', '+']).next().unwrap_or_default().split('.').map(|part| part.parse().unwrap_or(0)).collect()
}

pub(crate) async fn open_product(ctx: &SessionContext, product: Product) -> ProductEntry {
    let state = ctx.state();
    if product.format == Format::Delta {
        return crate::delta::open_product(&state, product).await;
    }
    let name = product.qualified_name();
    let location = product.location.to_string();
    let opened = async {
        let url = ListingTableUrl::parse(&location)?;
        if !location_exists(&state, &product.location, &url).await? {
            return Ok(None);
        }
        let options = listing_options(&product, &state);
        let found = options.infer_schema(&state, &url).await;
        Ok::<_, datafusion::error::DataFusionError>(Some((url, options, found)))
    }
    .await;
    let (url, options, found) = match opened {
        Ok(Some(parts)) => parts,
        Ok(None) => return unreadable(product, unavailable(&name, "its location does not exist")),
        Err(error) => return unreadable(product, classify(&name, &location, &error)),
    };
    let views = state.table_options().parquet.global.schema_force_view_types;
    let (found, mut health) = match found {
        // An existing location without data files yet: a declared schema describes the
        // (empty) product; without one there is nothing to serve.
        Err(error) if no_data_files(&error) && product.schema.is_some() => (None, Health::Healthy),
        Ok(schema) if schema.fields().is_empty() && product.schema.is_some() => (None, Health::Healthy),
        Ok(schema) if schema.fields().is_empty() => {
            return unreadable(product, unavailable(&name, "no data files found at its location"));
        }
        Ok(schema) if !views => (Some(Arc::new(plain_schema(&schema))), Health::Healthy),
        Ok(schema) => (Some(schema), Health::Healthy),
        Err(error) => (None, Health::Unhealthy(classify(&name, &location, &error))),
    };
    let schema: SchemaRef = match (&product.schema, &found) {
        (Some(declared), found) => {
            if let Some(found) = found {
                let drift = schema_drift(declared, found, product.format);
                if !drift.is_empty() {
                    health = Health::Unhealthy(ProductError {
                        product: name.clone(),
                        kind: ProblemKind::SchemaDrift,
                        detail: drift.join("; "),
                    });
                }
            }
            Arc::new(declared_schema(declared, found.as_ref(), product.format))
        }
        (None, Some(found)) => Arc::clone(found),
        (None, None) => {
            let problem = health.problem().cloned().unwrap_or_else(|| ProductError {
                product: name.clone(),
                kind: ProblemKind::Unavailable,
                detail: "its schema could not be read".into(),
            });
            return unreadable(product, problem);
        }
    };
    let listing = ListingTableConfig::new(url).with_listing_options(options).with_schema(Arc::clone(&schema));
    match ListingTable::try_new(listing) {
        Ok(table) => {
            let table_schema = table.schema();
            let inner: Arc<dyn TableProvider> = Arc::new(table);
            let table = ProductTable::new(name, location, table_schema, Some(inner), health);
            ProductEntry::new(product, Arc::new(table))
        }
        Err(error) => unreadable(product, classify(&name, &location, &error)),
    }
}

fn unavailable(product: &str, detail: &str) -> ProductError {
    ProductError { product: product.to_owned(), kind: ProblemKind::Unavailable, detail: detail.to_owned() }
}

pub(crate) fn unreadable(product: Product, problem: ProductError) -> ProductEntry {
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::empty());
    let table = ProductTable::new(
        problem.product.clone(),
        product.location.to_string(),
        schema,
        None,
        Health::Unhealthy(problem),
    );
    ProductEntry::new(product, Arc::new(table))
}

/// The extension of the files a product reads: a location naming one file reads that
/// file whatever its extension; a folder reads the files of its format.
pub(crate) fn file_extension(product: &Product) -> &'static str {
    if !product.location.path().ends_with('/') {
        return "";
    }
    match product.format {
        Format::Parquet => ".parquet",
        Format::Csv { .. } => ".csv",
        Format::Ndjson => ".json",
        // Its log names its files; listing reads only the Parquet files under it.
        Format::Delta => ".parquet",
    }
}

fn listing_options(product: &Product, state: &datafusion::execution::SessionState) -> ListingOptions {
    let format: Arc<dyn FileFormat> = match product.format {
        // (Delta products are opened from their log, never listed; their files are Parquet.)
        Format::Parquet | Format::Delta => {
            Arc::new(ParquetFormat::default().with_options(state.table_options().parquet.clone()))
        }
        Format::Csv { has_header, delimiter } => {
            Arc::new(CsvFormat::default().with_has_header(has_header).with_delimiter(delimiter))
        }
        Format::Ndjson => Arc::new(JsonFormat::default()),
    };
    let extension = file_extension(product);
    ListingOptions::new(format).with_file_extension(extension).with_table_partition_cols(product.partitions.clone())
}
