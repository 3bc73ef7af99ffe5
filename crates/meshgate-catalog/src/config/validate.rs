//! Checks a parsed configuration and turns it into [`MeshConfig`], collecting every
//! error with its path.

use std::collections::BTreeSet;
use std::path::Path;

use url::Url;

use super::load::{SourcedDomain, SourcedProduct};
use super::mesh::{Column, Domain, Format, MeshConfig, Product, StoreSettings};
use super::model::{ColumnSpec, FormatName, MeshFile};
use super::odcs::read_contract;
use super::sql_check::Scope;
use super::types::parse_type;
use super::validate_contract::{ContractSpec, ContractValidator};
use crate::error::ConfigError;

/// Schema names no domain may take: the system tables' and SQL's own.
pub const RESERVED_SCHEMAS: [&str; 2] = ["mesh_catalog", "information_schema"];

/// URL schemes a product location or store prefix may use.
pub const SUPPORTED_SCHEMES: [&str; 6] = ["file", "s3", "gs", "az", "http", "https"];

pub(crate) struct Validator<'a> {
    errors: &'a mut Vec<ConfigError>,
    /// The mesh file's `acceleration.default`, under every product's own section.
    acceleration_default: Option<super::acceleration::AccelerationSpec>,
    /// The mesh file sets `acceleration.spill`.
    spill_configured: bool,
}

impl<'a> Validator<'a> {
    pub fn new(errors: &'a mut Vec<ConfigError>) -> Self {
        Self { errors, acceleration_default: None, spill_configured: false }
    }

    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError::new(path, message));
    }

    pub fn validate(mut self, mesh: &MeshFile, domains: Vec<SourcedDomain>, base_dir: &Path) -> Option<MeshConfig> {
        self.identifier("catalog", &mesh.catalog);
        let stores = self.stores(mesh);
        let acceleration_budget = super::acceleration::budget(mesh.acceleration.as_ref(), self.errors);
        let acceleration_spill = super::acceleration::spill(mesh.acceleration.as_ref(), base_dir, self.errors);
        self.spill_configured = mesh.acceleration.as_ref().is_some_and(|spec| spec.spill.is_some());
        super::acceleration::check_default(mesh.acceleration.as_ref(), self.spill_configured, self.errors);
        self.acceleration_default = mesh.acceleration.as_ref().and_then(|spec| spec.default.clone());
        let domains: Vec<Domain> = domains.into_iter().map(|domain| self.domain(&mesh.catalog, domain)).collect();
        if let Some(spill) = &acceleration_spill {
            self.spill_apart_from_products(&spill.directory, &domains);
        }
        self.errors.is_empty().then(|| MeshConfig {
            catalog: mesh.catalog.clone(),
            stores,
            domains,
            auth: mesh.auth.clone(),
            governance: mesh.governance.clone(),
            base_dir: base_dir.to_path_buf(),
            acceleration_budget,
            acceleration_spill,
        })
    }

    /// Spilled copies hold raw rows (masked columns unmasked, hidden rows kept): their
    /// directory must not be, or be inside, or hold a product's folder, as written or
    /// with symbolic links followed.
    fn spill_apart_from_products(&mut self, directory: &Path, domains: &[Domain]) {
        let overlap = |a: &Path, b: &Path| a.starts_with(b) || b.starts_with(a);
        let resolved_directory = resolve_links(directory);
        for product in domains.iter().flat_map(|domain| &domain.products) {
            let Ok(folder) = product.location.to_file_path() else { continue };
            if overlap(directory, &folder) || overlap(&resolved_directory, &resolve_links(&folder)) {
                self.error(
                    "acceleration.spill.directory",
                    format!(
                        "{} overlaps the location of {}.{} ({}): spilled copies must be kept apart from product data",
                        directory.display(),
                        product.domain,
                        product.name,
                        folder.display()
                    ),
                );
            }
        }
    }

    fn identifier(&mut self, path: &str, name: &str) -> bool {
        let mut chars = name.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            self.error(
                path,
                format!(
                    "'{name}' is not a valid name (use lowercase letters, digits and _, not starting with a digit)"
                ),
            );
        }
        valid
    }

    fn stores(&mut self, mesh: &MeshFile) -> Vec<StoreSettings> {
        let mut stores = Vec::new();
        for (prefix, options) in &mesh.stores {
            let path = format!("stores.{prefix}");
            let Some(url) = self.url(&path, prefix) else { continue };
            if url.scheme() == "file" {
                self.error(&path, "local files need no store settings");
                continue;
            }
            let mut expanded = Vec::new();
            for (name, value) in options {
                match expand_env(value) {
                    Ok(value) => expanded.push((name.clone(), value)),
                    Err(variable) => {
                        self.error(format!("{path}.{name}"), format!("environment variable {variable} is not set"))
                    }
                }
            }
            stores.push(StoreSettings { prefix: url, path, options: expanded });
        }
        stores
    }

    fn url(&mut self, path: &str, text: &str) -> Option<Url> {
        match Url::parse(text) {
            Ok(url) if SUPPORTED_SCHEMES.contains(&url.scheme()) => {
                if url.scheme() != "file" && url.host_str().is_none_or(str::is_empty) {
                    self.error(path, format!("'{text}' names no bucket or host"));
                    return None;
                }
                Some(url)
            }
            Ok(url) => {
                self.error(
                    path,
                    format!("unsupported scheme '{}' (use file, s3, gs, az, http or https)", url.scheme()),
                );
                None
            }
            Err(error) => {
                self.error(path, format!("invalid URL '{text}': {error}"));
                None
            }
        }
    }

    fn domain(&mut self, catalog: &str, domain: SourcedDomain) -> Domain {
        let path = format!("domains.{}", domain.name);
        self.identifier(&path, &domain.name);
        if RESERVED_SCHEMAS.contains(&domain.name.as_str()) {
            self.error(
                &path,
                format!("'{}' is reserved for meshgate's own tables; name the domain otherwise", domain.name),
            );
        }
        if domain.header_ok && domain.spec.owner.trim().is_empty() {
            self.error(format!("{path}.owner"), "must not be empty");
        }
        if domain.header_ok && domain.spec.products.is_empty() && domain.spec.products_dir.is_none() {
            self.error(&path, "lists no products and no products_dir");
        }
        let mut names = BTreeSet::new();
        let mut products = Vec::new();
        for sourced in domain.products {
            // Several versions of a product may be served; each version once.
            if !names.insert((sourced.spec.name.clone(), sourced.spec.version.clone())) {
                self.error(
                    &sourced.path,
                    format!(
                        "duplicate product '{}' version {} in domain {}",
                        sourced.spec.name, sourced.spec.version, domain.name
                    ),
                );
                continue;
            }
            if let Some(product) = self.product(catalog, &domain.name, &domain.spec.owner, sourced) {
                products.push(product);
            }
        }
        Domain {
            name: domain.name,
            owner: domain.spec.owner,
            description: domain.spec.description,
            products,
            policies: domain.spec.policies,
        }
    }

    fn product(&mut self, catalog: &str, domain: &str, domain_owner: &str, sourced: SourcedProduct) -> Option<Product> {
        let SourcedProduct { mut spec, path, base_dir } = sourced;
        let before = self.errors.len();
        self.identifier(&format!("{path}.name"), &spec.name);
        if !is_semver(&spec.version) {
            self.error(
                format!("{path}.version"),
                format!("'{}' is not a semantic version (major.minor.patch)", spec.version),
            );
        }
        let location = self.location(&format!("{path}.location"), &spec.location, &base_dir);
        let format = match (spec.format, &spec.csv) {
            (FormatName::Csv, csv) => {
                let (has_header, delimiter) = csv.as_ref().map_or((true, ','), |c| (c.has_header, c.delimiter));
                if !delimiter.is_ascii() {
                    self.error(format!("{path}.csv.delimiter"), "must be a single ASCII character");
                }
                Format::Csv { has_header, delimiter: delimiter as u8 }
            }
            (_, Some(_)) => {
                self.error(format!("{path}.csv"), "csv options need format: csv");
                Format::Parquet
            }
            (FormatName::Parquet, None) => Format::Parquet,
            (FormatName::Ndjson, None) => Format::Ndjson,
            (FormatName::Delta, None) => Format::Delta,
        };
        let location = match location {
            Some(url) if format == Format::Delta => self.delta_location(&path, &spec, url),
            other => other,
        };
        let odcs = spec.contract.as_ref().map(|file| {
            read_contract(&base_dir.join(file), &spec.name, &format!("{path}.contract"), &mut *self.errors)
        });
        let mut freshness = spec.freshness.clone();
        let mut contract_quality = Vec::new();
        if let Some(odcs) = odcs {
            match (&spec.schema, odcs.columns) {
                (Some(_), Some(_)) => {
                    self.error(format!("{path}.schema"), "is declared here and in the contract file; keep one of them")
                }
                (None, columns) => spec.schema = columns,
                (Some(_), None) => {}
            }
            match (&freshness, odcs.freshness) {
                (Some(_), Some(_)) => self.error(
                    format!("{path}.freshness"),
                    "is declared here and in the contract file (slaProperties); keep one of them",
                ),
                (None, from_contract) => freshness = from_contract,
                (Some(_), None) => {}
            }
            contract_quality = odcs.quality;
        }
        let mut seen = BTreeSet::new();
        let schema = spec.schema.as_ref().map(|columns| {
            if columns.is_empty() {
                self.error(format!("{path}.schema"), "declares no columns");
            }
            columns.iter().filter_map(|column| self.column(&path, column, &mut seen)).collect::<Vec<_>>()
        });
        let mut partitions = Vec::new();
        for partition in &spec.partitions {
            let column_path = format!("{path}.partitions.{}", partition.name);
            self.identifier(&column_path, &partition.name);
            if !seen.insert(partition.name.clone()) {
                self.error(&column_path, format!("column '{}' is declared twice", partition.name));
            }
            match parse_type(&partition.data_type) {
                Ok(data_type) => partitions.push((partition.name.clone(), data_type)),
                Err(message) => self.error(format!("{column_path}.type"), message),
            }
        }
        if let Some(sunset) = &spec.sunset
            && !is_date(sunset)
        {
            self.error(format!("{path}.sunset"), format!("'{sunset}' is not a date (YYYY-MM-DD)"));
        }
        let declared = spec.schema.is_some().then_some(&seen);
        let contract = ContractValidator {
            errors: &mut *self.errors,
            path: &path,
            scope: Scope { catalog, domain, product: &spec.name },
            columns: declared,
        }
        .contract(&ContractSpec {
            quality: &spec.quality,
            contract_quality: &contract_quality,
            freshness: freshness.as_ref(),
            schedule: spec.schedule.as_deref(),
            on_failure: spec.on_failure,
            upstream: &spec.upstream,
        });
        let acceleration = super::acceleration::resolve(
            &format!("{path}.acceleration"),
            spec.acceleration.as_ref(),
            self.acceleration_default.as_ref(),
            self.spill_configured,
            self.errors,
        );
        if self.errors.len() != before {
            return None;
        }
        Some(Product {
            domain: domain.to_owned(),
            name: spec.name,
            description: spec.description,
            owner: spec.owner.unwrap_or_else(|| domain_owner.to_owned()),
            version: spec.version,
            status: spec.status,
            sunset: spec.sunset,
            tags: spec.tags,
            location: location?,
            format,
            partitions,
            schema,
            contract,
            acceleration,
        })
    }

    /// A Delta table's location is the table's root folder; its partitions come from
    /// its log, and it must be on a store that can list (`_delta_log/`).
    fn delta_location(&mut self, path: &str, spec: &super::model::ProductSpec, mut url: Url) -> Option<Url> {
        if !spec.partitions.is_empty() {
            self.error(format!("{path}.partitions"), "a Delta table's partitions come from its log; leave them out");
        }
        if matches!(url.scheme(), "http" | "https") {
            self.error(
                format!("{path}.location"),
                format!(
                    "format: delta needs a store that can list its _delta_log folder; {} locations cannot (use file, s3, gs or az)",
                    url.scheme()
                ),
            );
            return None;
        }
        if !url.path().ends_with('/') {
            let folder = format!("{}/", url.path());
            url.set_path(&folder);
        }
        Some(url)
    }

    fn location(&mut self, path: &str, text: &str, base_dir: &Path) -> Option<Url> {
        if text.contains("://") {
            return self.url(path, text);
        }
        if let Some((scheme, _)) = text.split_once(':')
            && scheme.len() > 1
            && scheme.chars().all(|c| c.is_ascii_alphanumeric())
        {
            self.error(path, format!("unsupported scheme '{scheme}' (use file, s3, gs, az, http or https)"));
            return None;
        }
        let joined = base_dir.join(text);
        let absolute = std::path::absolute(&joined).unwrap_or(joined);
        let normalized = normalize(&absolute);
        let directory = text.ends_with('/') || normalized.is_dir();
        let url = if directory { Url::from_directory_path(&normalized) } else { Url::from_file_path(&normalized) };
        match url {
            Ok(url) => Some(url),
            Err(()) => {
                self.error(path, format!("'{text}' is not a valid local path"));
                None
            }
        }
    }

    fn column(&mut self, product_path: &str, spec: &ColumnSpec, seen: &mut BTreeSet<String>) -> Option<Column> {
        let path = format!("{product_path}.schema.{}", spec.name);
        if !self.identifier(&path, &spec.name) {
            return None;
        }
        if !seen.insert(spec.name.clone()) {
            self.error(&path, format!("column '{}' is declared twice", spec.name));
            return None;
        }
        match parse_type(&spec.data_type) {
            Ok(data_type) => Some(Column {
                name: spec.name.clone(),
                data_type,
                nullable: spec.nullable,
                key: spec.key,
                description: spec.description.clone(),
                tags: spec.tags.clone(),
                role: spec.role,
                unit: spec.unit.clone(),
            }),
            Err(message) => {
                self.error(format!("{path}.type"), message);
                None
            }
        }
    }
}

/// Expands `${NAME}` from the environment; a value without it is returned as is.
fn expand_env(value: &str) -> Result<String, String> {
    match value.trim().strip_prefix("${").and_then(|rest| rest.strip_suffix('}')) {
        Some(name) => std::env::var(name).map_err(|_| name.to_owned()),
        None => Ok(value.to_owned()),
    }
}

fn is_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let number = |part: &str, digits: usize, range: std::ops::RangeInclusive<u32>| {
        part.len() == digits && part.parse::<u32>().is_ok_and(|value| range.contains(&value))
    };
    parts.len() == 3 && number(parts[0], 4, 1..=9999) && number(parts[1], 2, 1..=12) && number(parts[2], 2, 1..=31)
}

fn is_semver(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()))
}

/// Removes `.` and `..` components without touching the filesystem.
/// `path` with its longest existing ancestor's symbolic links followed (the rest of
/// it may not exist yet).
fn resolve_links(path: &Path) -> std::path::PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(resolved) = existing.canonicalize() {
            return rest.iter().rev().fold(resolved, |path, part| path.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// `path` without `.` and `..` parts, lexically (it may not exist yet).
pub(super) fn normalize(path: &Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_and_env() {
        assert!(is_semver("1.2.3"));
        assert!(is_semver("1.2.3-rc.1"));
        assert!(!is_semver("1.2"));
        assert_eq!(expand_env("plain"), Ok("plain".to_owned()));
        assert_eq!(expand_env("${MESHGATE_SURELY_UNSET_VAR}"), Err("MESHGATE_SURELY_UNSET_VAR".to_owned()));
    }
}
