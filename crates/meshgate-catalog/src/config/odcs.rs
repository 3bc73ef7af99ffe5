//! An ODCS v3.1 data contract file beside a descriptor (`contract: orders.odcs.yaml`),
//! read as another source of a product's schema, quality checks and freshness SLA.
//!
//! Read: the schema object named like the product (or the only one): its
//! `properties` (`name`, `physicalType` or else `logicalType`, `description`,
//! `required`, `primaryKey`, `tags`, property-level `quality`) and its object-level
//! `quality`; quality entries of `type: library` (`metric`, or v3.0 `rule`:
//! `rowCount`, `nullValues`, `duplicateValues`, `invalidValues` with `validValues` or
//! `pattern`) and `type: sql` (`query`, `${object}`/`${property}` placeholders), with
//! `mustBe…` comparisons, `name`, `description` and `severity`; and `slaProperties`
//! entries `freshness` or `latency` (`value`, `unit`, `element`). Entries of `type:
//! text` or `custom` are documentation or another tool's and are skipped; anything
//! else the contract asks for and meshgate cannot check is an error.

use std::path::Path;

use serde_norway::{Mapping, Value};

use super::model::{ColumnSpec, FreshnessSpec, QualitySpec};
use super::types::parse_type;
use crate::error::ConfigError;

/// What a contract file contributes to a product.
#[derive(Debug, Default)]
pub(crate) struct OdcsContract {
    pub columns: Option<Vec<ColumnSpec>>,
    /// Each check with the config path of the entry it came from.
    pub quality: Vec<(String, QualitySpec)>,
    pub freshness: Option<FreshnessSpec>,
}

/// Reads the contract at `file` for `product`; `path` is the config path of the
/// descriptor's `contract` field.
pub(crate) fn read_contract(file: &Path, product: &str, path: &str, errors: &mut Vec<ConfigError>) -> OdcsContract {
    let mut reader = Reader { path, errors };
    let root = match std::fs::read_to_string(file)
        .map_err(|error| format!("cannot read {}: {error}", file.display()))
        .and_then(|text| serde_norway::from_str::<Value>(&text).map_err(|error| format!("invalid YAML: {error}")))
    {
        Ok(root) => root,
        Err(message) => {
            reader.error(path.to_owned(), message);
            return OdcsContract::default();
        }
    };
    reader.contract(&root, product)
}

struct Reader<'a> {
    path: &'a str,
    errors: &'a mut Vec<ConfigError>,
}

impl Reader<'_> {
    fn error(&mut self, path: String, message: impl Into<String>) {
        self.errors.push(ConfigError::new(path, message));
    }

    fn contract(&mut self, root: &Value, product: &str) -> OdcsContract {
        let mut out = OdcsContract::default();
        match root.get("apiVersion").and_then(Value::as_str) {
            Some(version) if version.starts_with("v3.") => {}
            Some(version) => self.error(
                format!("{}.apiVersion", self.path),
                format!("'{version}' is not an ODCS v3 contract (apiVersion v3.x)"),
            ),
            None => self.error(self.path.to_owned(), "not an ODCS contract: it has no apiVersion"),
        }
        let objects = root.get("schema").and_then(Value::as_sequence).cloned().unwrap_or_default();
        let named = |object: &&Value| {
            [object.get("name"), object.get("physicalName")].into_iter().flatten().any(|n| n.as_str() == Some(product))
        };
        let object = objects.iter().find(named).or(if objects.len() == 1 { objects.first() } else { None });
        match object {
            Some(object) => self.object(object, &mut out),
            None if objects.is_empty() => {}
            None => self.error(
                format!("{}.schema", self.path),
                format!("has no schema object named {product} (name or physicalName)"),
            ),
        }
        out.freshness = self.sla(root);
        out
    }

    fn object(&mut self, object: &Value, out: &mut OdcsContract) {
        let object_path = format!("{}.schema.{}", self.path, text(object, "name").unwrap_or("[0]"));
        if let Some(properties) = object.get("properties").and_then(Value::as_sequence) {
            let mut columns = Vec::new();
            for (index, property) in properties.iter().enumerate() {
                let Some(name) = text(property, "name") else {
                    self.error(format!("{object_path}.properties.[{index}]"), "a property needs a name");
                    continue;
                };
                let property_path = format!("{object_path}.properties.{name}");
                if let Some(column) = self.column(property, name, &property_path) {
                    columns.push(column);
                }
                for (i, entry) in sequence(property, "quality").iter().enumerate() {
                    let entry_path = format!("{property_path}.quality.[{i}]");
                    if let Some(spec) = self.quality(entry, Some(name), &entry_path) {
                        out.quality.push((entry_path, spec));
                    }
                }
            }
            out.columns = Some(columns);
        }
        for (i, entry) in sequence(object, "quality").iter().enumerate() {
            let entry_path = format!("{object_path}.quality.[{i}]");
            if let Some(spec) = self.quality(entry, None, &entry_path) {
                out.quality.push((entry_path, spec));
            }
        }
    }

    fn column(&mut self, property: &Value, name: &str, path: &str) -> Option<ColumnSpec> {
        let physical = text(property, "physicalType").filter(|t| parse_type(t).is_ok());
        let logical = text(property, "logicalType").and_then(logical_type);
        let Some(data_type) = physical.or(logical) else {
            self.error(
                path.to_owned(),
                "needs a physicalType meshgate knows (int64, utf8, decimal(15, 2), …) or a logicalType \
                 (string, integer, number, boolean, date, timestamp)",
            );
            return None;
        };
        Some(ColumnSpec {
            name: name.to_owned(),
            data_type: data_type.to_owned(),
            nullable: !flag(property, "required"),
            key: flag(property, "primaryKey"),
            description: text(property, "description").unwrap_or_default().to_owned(),
            tags: sequence(property, "tags").iter().filter_map(|t| t.as_str().map(str::to_owned)).collect(),
            role: None,
            unit: None,
        })
    }

    /// One ODCS quality entry as a meshgate check, parsed by the descriptor's own model.
    fn quality(&mut self, entry: &Value, property: Option<&str>, path: &str) -> Option<QualitySpec> {
        let mut check = Mapping::new();
        let mut set = |key: &str, value: Value| {
            check.insert(Value::from(key), value);
        };
        let metric = text(entry, "metric").or_else(|| text(entry, "rule"));
        let arguments = entry.get("arguments");
        let argument = |name: &str| arguments.and_then(|a| a.get(name)).or_else(|| entry.get(name)).cloned();
        match (text(entry, "type").unwrap_or("library"), metric) {
            ("text" | "custom", _) => return None,
            ("sql", _) => {
                let query = text(entry, "query").unwrap_or_default();
                let query = match property {
                    Some(column) => query.replace("${property}", column).replace("{property}", column),
                    None => query.to_owned(),
                };
                set("type", "sql".into());
                set("query", query.into());
            }
            ("library", Some("rowCount")) if property.is_none() => set("type", "row_count".into()),
            ("library", Some("nullValues")) if property.is_some() => set("type", "not_null".into()),
            ("library", Some("duplicateValues")) => {
                set("type", "unique".into());
                match (property, argument("properties")) {
                    (_, Some(columns)) => set("columns", columns),
                    (Some(column), None) => set("column", column.into()),
                    (None, None) => {
                        self.error(path.to_owned(), "duplicateValues on an object needs arguments.properties");
                        return None;
                    }
                }
            }
            ("library", Some("invalidValues")) if property.is_some() => {
                match (argument("validValues"), argument("pattern")) {
                    (Some(values), None) => {
                        set("type", "allowed_values".into());
                        set("values", values);
                    }
                    (None, Some(pattern)) => {
                        set("type", "regex".into());
                        set("pattern", pattern);
                    }
                    _ => {
                        self.error(path.to_owned(), "invalidValues needs validValues or pattern (one of them)");
                        return None;
                    }
                }
            }
            (kind, metric) => {
                let what = metric.map_or(format!("type {kind}"), |m| format!("metric {m}"));
                let place = if property.is_some() { "on a property" } else { "on an object" };
                self.error(path.to_owned(), format!("{what} {place} is not a check meshgate can run"));
                return None;
            }
        }
        if let Some(column) = property
            && !check.contains_key("column")
            && !check.contains_key("columns")
            && matches!(check.get("type").and_then(Value::as_str), Some("not_null" | "allowed_values" | "regex"))
        {
            check.insert("column".into(), column.into());
        }
        if text(entry, "unit").is_some_and(|unit| unit != "rows") {
            self.error(format!("{path}.unit"), "meshgate counts rows; percentages are not supported");
            return None;
        }
        for key in [
            "name",
            "description",
            "mustBe",
            "mustNotBe",
            "mustBeGreaterThan",
            "mustBeGreaterOrEqualTo",
            "mustBeGreaterThanOrEqualTo",
            "mustBeLessThan",
            "mustBeLessOrEqualTo",
            "mustBeLessThanOrEqualTo",
            "mustBeBetween",
            "mustNotBeBetween",
        ] {
            if let Some(value) = entry.get(key) {
                check.insert(key.into(), value.clone());
            }
        }
        match text(entry, "severity").map(str::to_ascii_lowercase).as_deref() {
            None => {}
            Some("error" | "critical" | "high") => {
                check.insert("severity".into(), "error".into());
            }
            Some("warning" | "warn" | "info" | "low" | "medium") => {
                check.insert("severity".into(), "warn".into());
            }
            Some(other) => {
                self.error(format!("{path}.severity"), format!("'{other}' is not a severity (error or warning)"));
                return None;
            }
        }
        match serde_path_to_error::deserialize::<_, QualitySpec>(Value::Mapping(check)) {
            Ok(spec) => Some(spec),
            Err(error) => {
                self.error(path.to_owned(), error.into_inner().to_string());
                None
            }
        }
    }

    /// The freshness SLA from `slaProperties` (`freshness` or `latency`).
    fn sla(&mut self, root: &Value) -> Option<FreshnessSpec> {
        let entries = sequence(root, "slaProperties");
        let (index, entry) =
            entries.iter().enumerate().find(|(_, e)| matches!(text(e, "property"), Some("freshness" | "latency")))?;
        let path = format!("{}.slaProperties.[{index}]", self.path);
        let value = match entry.get("value") {
            Some(Value::Number(n)) if n.as_u64().is_some() => n.to_string(),
            _ => {
                self.error(format!("{path}.value"), "must be a whole number");
                return None;
            }
        };
        let unit = match text(entry, "unit").map(str::to_ascii_lowercase).as_deref() {
            Some("s" | "sec" | "second" | "seconds") => "s",
            Some("m" | "min" | "minute" | "minutes") => "m",
            Some("h" | "hr" | "hour" | "hours") => "h",
            Some("d" | "day" | "days") | None => "d",
            Some(other) => {
                self.error(format!("{path}.unit"), format!("'{other}' is not a unit meshgate reads (s, m, h, d)"));
                return None;
            }
        };
        // `element` names the event-time column, as `object.property` or `property`.
        let column = text(entry, "element").map(|e| e.rsplit('.').next().unwrap_or(e).to_owned());
        Some(FreshnessSpec { column, max_age: format!("{value}{unit}"), severity: Default::default() })
    }
}

fn text<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

fn flag(value: &Value, key: &str) -> bool {
    value.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn sequence(value: &Value, key: &str) -> Vec<Value> {
    value.get(key).and_then(Value::as_sequence).cloned().unwrap_or_default()
}

/// An ODCS logical type as a meshgate type name.
fn logical_type(logical: &str) -> Option<&'static str> {
    Some(match logical {
        "string" => "utf8",
        "integer" => "int64",
        "number" => "float64",
        "boolean" => "bool",
        "date" => "date32",
        "timestamp" => "timestamp",
        _ => return None,
    })
}
