//! Reading the mesh file and the domains' descriptor folders, collecting every
//! mistake with its path instead of stopping at the first.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_norway::Value;

use super::mesh::MeshConfig;
use super::model::{DomainSpec, MeshFile, ProductSpec};
use super::validate::Validator;
use crate::error::{ConfigError, ConfigErrors};

/// A product descriptor, where it came from, and the path to name it by.
pub(crate) struct SourcedProduct {
    pub spec: ProductSpec,
    pub path: String,
    /// Directory that relative locations are resolved against.
    pub base_dir: PathBuf,
}

/// A domain with all its descriptors gathered.
pub(crate) struct SourcedDomain {
    pub name: String,
    pub spec: DomainSpec,
    pub products: Vec<SourcedProduct>,
    /// Whether the domain's own fields parsed (else only its products are checked).
    pub header_ok: bool,
}

/// Loads and validates the mesh file at `path`, reporting every error found.
pub fn load_mesh(path: &Path) -> Result<MeshConfig, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigErrors(vec![ConfigError::new(path.display().to_string(), format!("cannot read: {error}"))])
    })?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    load_mesh_str(&text, &base_dir)
}

/// Loads and validates a mesh file's text; relative paths resolve against `base_dir`.
pub fn load_mesh_str(text: &str, base_dir: &Path) -> Result<MeshConfig, ConfigErrors> {
    let mut errors = Vec::new();
    let config = parse(text, base_dir, &mut errors);
    if errors.is_empty()
        && let Some(config) = config
    {
        return Ok(config);
    }
    Err(ConfigErrors(errors))
}

fn parse(text: &str, base_dir: &Path, errors: &mut Vec<ConfigError>) -> Option<MeshConfig> {
    let root: Value = match serde_norway::from_str(text) {
        Ok(value) => value,
        Err(error) => {
            errors.push(ConfigError::new("mesh file", format!("invalid YAML: {error}")));
            return None;
        }
    };
    let mesh: MeshFile = deserialize(root, "", errors)?;
    let mut domains = Vec::new();
    for (name, value) in mesh.domains.clone() {
        let path = format!("domains.{name}");
        // A domain whose own fields are wrong still has its products checked, so
        // one run reports every mistake.
        let (spec, header_ok) = match deserialize::<DomainSpec>(value.clone(), &path, errors) {
            Some(spec) => (spec, true),
            None => (salvage_domain(&value), false),
        };
        let products = gather_products(&path, &spec, base_dir, errors);
        domains.push(SourcedDomain { name, spec, products, header_ok });
    }
    Validator::new(errors).validate(&mesh, domains, base_dir)
}

fn gather_products(
    domain_path: &str,
    spec: &DomainSpec,
    base_dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> Vec<SourcedProduct> {
    let mut products = Vec::new();
    for (index, value) in spec.products.iter().enumerate() {
        let path = format!("{domain_path}.products.{}", product_label(value, index));
        if let Some(spec) = deserialize::<ProductSpec>(value.clone(), &path, errors) {
            products.push(SourcedProduct { spec, path, base_dir: base_dir.to_path_buf() });
        }
    }
    if let Some(dir) = &spec.products_dir {
        let dir_path = format!("{domain_path}.products_dir");
        let dir = base_dir.join(dir);
        for file in descriptor_files(&dir, &dir_path, errors) {
            let label = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let file_path = format!("{dir_path}/{label}");
            let value = match std::fs::read_to_string(&file)
                .map_err(|e| e.to_string())
                .and_then(|text| serde_norway::from_str::<Value>(&text).map_err(|e| e.to_string()))
            {
                Ok(value) => value,
                Err(error) => {
                    errors.push(ConfigError::new(file_path, format!("invalid descriptor: {error}")));
                    continue;
                }
            };
            let path = match value.get("name").and_then(Value::as_str) {
                Some(name) => format!("{domain_path}.products.{name}"),
                None => file_path,
            };
            if let Some(spec) = deserialize::<ProductSpec>(value, &path, errors) {
                let base_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
                products.push(SourcedProduct { spec, path, base_dir });
            }
        }
    }
    products
}

/// The product list and folder of a domain whose own fields did not parse.
fn salvage_domain(value: &Value) -> DomainSpec {
    DomainSpec {
        owner: String::new(),
        description: String::new(),
        products: value.get("products").and_then(Value::as_sequence).cloned().unwrap_or_default(),
        products_dir: value.get("products_dir").and_then(Value::as_str).map(str::to_owned),
        policies: Vec::new(),
    }
}

fn product_label(value: &Value, index: usize) -> String {
    match value.get("name").and_then(Value::as_str) {
        Some(name) => name.to_owned(),
        None => format!("[{index}]"),
    }
}

fn descriptor_files(dir: &Path, path: &str, errors: &mut Vec<ConfigError>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            errors.push(ConfigError::new(path, format!("cannot read directory {}: {error}", dir.display())));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|file| matches!(file.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    files
}

/// Deserializes `value` strictly, reporting a failure with its full path.
fn deserialize<T: DeserializeOwned>(value: Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<T> {
    match serde_path_to_error::deserialize(value) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            let inner = error.path().to_string();
            // "." is the value itself; "" the same, when the offending key is empty.
            let full = match (path.is_empty(), inner == "." || inner.is_empty()) {
                (true, true) => "mesh file".to_owned(),
                (true, false) => inner,
                (false, true) => path.to_owned(),
                (false, false) => format!("{path}.{inner}"),
            };
            errors.push(ConfigError::new(full, error.into_inner().to_string()));
            None
        }
    }
}
