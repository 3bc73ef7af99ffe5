//! OpenLineage run events (spec 2-0-2) for one query.
//!
//! - run: `runId` is the query id; a FAIL carries the `errorMessage` run facet;
//! - job: namespace `meshgate://<catalog>`, name `<principal>.<first 12 hex of the
//!   fingerprint>`, with the `sql` job facet (literals redacted);
//! - inputs: one dataset per product read, namespace `meshgate://<catalog>`, name
//!   `<domain>.<product>`, with the `version` facet (the product version served) and
//!   the `schema` facet (the columns read);
//! - outputs: the query's result, namespace `meshgate://<catalog>/results`, named like
//!   the job, with its columns (`schema`) and, when any result column passes a
//!   product column through unchanged, the `columnLineage` facet (1-2-0): that
//!   column's input field, transformation DIRECT/IDENTITY, `masking: true` when the
//!   caller saw the column masked. (Column lineage describes a dataset's own fields
//!   by its inputs, so it sits on the output.)

use serde_json::{Map, Value, json};

use crate::record::ProductRead;

pub const PRODUCER: &str = "https://github.com/meshgate/meshgate";
const RUN_EVENT: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
/// meshgate's own run facet: the purpose the query was run for (docs/ml.md).
const PURPOSE_FACET: &str = "https://github.com/meshgate/meshgate/blob/main/docs/ml.md#purpose-run-facet";
/// meshgate's own run facet: the training set a shard read belongs to (docs/ml.md).
const TRAINING_SET_FACET: &str = "https://github.com/meshgate/meshgate/blob/main/docs/ml.md#training-set-run-facet";
const SQL_FACET: &str = "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet";
const VERSION_FACET: &str =
    "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet";
const SCHEMA_FACET: &str = "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
const COLUMN_LINEAGE_FACET: &str =
    "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet";
const ERROR_FACET: &str =
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";

/// The product column a result column is, unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceColumn {
    pub domain: String,
    pub product: String,
    pub column: String,
}

/// One result column and, when it passes a product column through, that column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputColumn {
    pub name: String,
    pub source: Option<SourceColumn>,
}

/// What planning told about a query: the products it reads and its result columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Planned {
    pub products: Vec<ProductRead>,
    pub outputs: Vec<OutputColumn>,
}

/// The transition an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Start,
    Complete,
    Fail,
    /// Cancelled, or the client went away.
    Abort,
}

impl EventType {
    fn name(self) -> &'static str {
        match self {
            Self::Start => "START",
            Self::Complete => "COMPLETE",
            Self::Fail => "FAIL",
            Self::Abort => "ABORT",
        }
    }
}

/// Everything one event is built from.
#[derive(Debug, Clone)]
pub struct RunEvent {
    pub event_type: EventType,
    pub time: String,
    pub run_id: String,
    pub catalog: String,
    pub principal: String,
    pub fingerprint: String,
    /// The redacted SQL (none for a Substrait plan).
    pub redacted_sql: Option<std::sync::Arc<str>>,
    pub planned: Option<std::sync::Arc<Planned>>,
    /// For a FAIL: the message.
    pub error: Option<String>,
    /// What the call said the query is for (`principal.purpose`).
    pub purpose: Option<String>,
    /// The training set a shard read belongs to.
    pub training_set: Option<String>,
}

/// The job a query runs as: its principal and the start of its fingerprint.
pub fn job_name(principal: &str, fingerprint: &str) -> String {
    format!("{principal}.{}", fingerprint.get(..12).unwrap_or(fingerprint))
}

fn facet(schema_url: &str, body: Value) -> Value {
    let mut facet = json!({ "_producer": PRODUCER, "_schemaURL": schema_url });
    if let (Some(facet), Value::Object(body)) = (facet.as_object_mut(), body) {
        facet.extend(body);
    }
    facet
}

impl RunEvent {
    pub fn to_json(&self) -> Value {
        let namespace = format!("meshgate://{}", self.catalog);
        let job_name = job_name(&self.principal, &self.fingerprint);
        let mut run = json!({ "runId": self.run_id });
        let mut run_facets = Map::new();
        if let Some(error) = &self.error {
            let body = json!({ "message": error, "programmingLanguage": "RUST" });
            run_facets.insert("errorMessage".into(), facet(ERROR_FACET, body));
        }
        if let Some(purpose) = &self.purpose {
            run_facets.insert("meshgate_purpose".into(), facet(PURPOSE_FACET, json!({ "purpose": purpose })));
        }
        if let Some(training_set) = &self.training_set {
            let body = json!({ "trainingSet": training_set });
            run_facets.insert("meshgate_training_set".into(), facet(TRAINING_SET_FACET, body));
        }
        if !run_facets.is_empty() {
            run["facets"] = Value::Object(run_facets);
        }
        let mut job = json!({ "namespace": namespace, "name": job_name });
        if let Some(sql) = &self.redacted_sql {
            job["facets"] =
                json!({ "sql": facet(SQL_FACET, json!({ "query": sql.as_ref(), "dialect": "datafusion" })) });
        }
        let mut event = json!({
            "eventType": self.event_type.name(),
            "eventTime": self.time,
            "producer": PRODUCER,
            "schemaURL": RUN_EVENT,
            "run": run,
            "job": job,
        });
        if let Some(planned) = &self.planned {
            event["inputs"] = Value::Array(planned.products.iter().map(|read| input(&namespace, read)).collect());
            event["outputs"] = Value::Array(output(&namespace, &job_name, planned).into_iter().collect());
        }
        event
    }
}

fn input(namespace: &str, read: &ProductRead) -> Value {
    let fields: Vec<Value> = read.columns.iter().map(|column| json!({ "name": column })).collect();
    let mut facets = Map::new();
    let version = read.version_read();
    if !version.is_empty() {
        facets.insert("version".into(), facet(VERSION_FACET, json!({ "datasetVersion": version })));
    }
    facets.insert("schema".into(), facet(SCHEMA_FACET, json!({ "fields": fields })));
    json!({ "namespace": namespace, "name": format!("{}.{}", read.domain, read.product), "facets": facets })
}

/// The result as a dataset, with its column lineage; none for a result without columns.
fn output(namespace: &str, job_name: &str, planned: &Planned) -> Option<Value> {
    if planned.outputs.is_empty() {
        return None;
    }
    let fields: Vec<Value> = planned.outputs.iter().map(|column| json!({ "name": column.name })).collect();
    let mut facets = Map::new();
    facets.insert("schema".into(), facet(SCHEMA_FACET, json!({ "fields": fields })));
    let mut lineage = Map::new();
    for output in &planned.outputs {
        let Some(source) = &output.source else { continue };
        let Some(read) = planned.products.iter().find(|r| r.domain == source.domain && r.product == source.product)
        else {
            continue;
        };
        let input = json!({
            "namespace": namespace,
            "name": format!("{}.{}", source.domain, source.product),
            "field": source.column,
            "transformations": [{
                "type": "DIRECT",
                "subtype": "IDENTITY",
                "masking": read.masked.contains(&source.column),
            }],
        });
        let entry = lineage.entry(output.name.clone()).or_insert_with(|| json!({ "inputFields": [] }));
        if let Some(inputs) = entry["inputFields"].as_array_mut()
            && !inputs.contains(&input)
        {
            inputs.push(input);
        }
    }
    if !lineage.is_empty() {
        facets.insert("columnLineage".into(), facet(COLUMN_LINEAGE_FACET, json!({ "fields": lineage })));
    }
    Some(json!({ "namespace": format!("{namespace}/results"), "name": job_name, "facets": facets }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn planned() -> Planned {
        Planned {
            products: vec![ProductRead {
                domain: "sales".into(),
                product: "orders".into(),
                version: "1.0.0".into(),
                delta_version: None,
                columns: vec!["o_orderkey".into(), "o_totalprice".into()],
                masked: vec!["o_totalprice".into()],
                rules: vec!["readers".into()],
            }],
            outputs: vec![
                OutputColumn {
                    name: "k".into(),
                    source: Some(SourceColumn {
                        domain: "sales".into(),
                        product: "orders".into(),
                        column: "o_orderkey".into(),
                    }),
                },
                OutputColumn {
                    name: "o_totalprice".into(),
                    source: Some(SourceColumn {
                        domain: "sales".into(),
                        product: "orders".into(),
                        column: "o_totalprice".into(),
                    }),
                },
                OutputColumn { name: "twice".into(), source: None },
            ],
        }
    }

    fn event(event_type: EventType, error: Option<&str>) -> Value {
        RunEvent {
            event_type,
            time: "2026-12-02T02:15:00.123Z".into(),
            run_id: "0b6f1a52-8f5e-4d0c-9a51-6f0a3e4c2b7d".into(),
            catalog: "mesh".into(),
            principal: "carl".into(),
            fingerprint: "0123456789abcdef0123".into(),
            redacted_sql: Some(Arc::from("SELECT o_orderkey AS k FROM sales.orders WHERE o_totalprice > ?")),
            planned: Some(Arc::new(planned())),
            error: error.map(str::to_owned),
            purpose: Some("churn model".into()),
            training_set: Some("3f2a/train/0-of-8".into()),
        }
        .to_json()
    }

    #[test]
    fn a_complete_event_names_job_inputs_and_column_lineage() {
        let event = event(EventType::Complete, None);
        assert_eq!(event["eventType"], "COMPLETE");
        assert_eq!(event["job"]["namespace"], "meshgate://mesh");
        assert_eq!(event["job"]["name"], "carl.0123456789ab");
        assert_eq!(
            event["job"]["facets"]["sql"]["query"],
            "SELECT o_orderkey AS k FROM sales.orders WHERE o_totalprice > ?"
        );
        let input = &event["inputs"][0];
        assert_eq!(input["name"], "sales.orders");
        assert_eq!(input["facets"]["version"]["datasetVersion"], "1.0.0");
        assert_eq!(input["facets"]["schema"]["fields"][1]["name"], "o_totalprice");
        let lineage = &event["outputs"][0]["facets"]["columnLineage"]["fields"];
        assert_eq!(lineage["k"]["inputFields"][0]["field"], "o_orderkey");
        assert_eq!(lineage["k"]["inputFields"][0]["transformations"][0]["masking"], false);
        assert_eq!(lineage["o_totalprice"]["inputFields"][0]["transformations"][0]["masking"], true);
        assert!(lineage.get("twice").is_none());
        // No error facet on a COMPLETE; the purpose the query ran for, in meshgate's own facet.
        assert!(event["run"]["facets"].get("errorMessage").is_none());
        assert_eq!(event["run"]["facets"]["meshgate_purpose"]["purpose"], "churn model");
        assert_eq!(event["run"]["facets"]["meshgate_purpose"]["_schemaURL"], PURPOSE_FACET);
        assert_eq!(event["run"]["facets"]["meshgate_training_set"]["trainingSet"], "3f2a/train/0-of-8");
    }

    #[test]
    fn a_delta_read_names_its_delta_version() {
        let mut read = planned().products.remove(0);
        read.delta_version = Some(42);
        assert_eq!(input("meshgate://mesh", &read)["facets"]["version"]["datasetVersion"], "1.0.0+delta.42");
        read.version = "1.0.0+build.7".into();
        assert_eq!(input("meshgate://mesh", &read)["facets"]["version"]["datasetVersion"], "1.0.0+build.7.delta.42");
    }

    #[test]
    fn a_fail_event_carries_the_error() {
        let event = event(EventType::Fail, Some("Divide by zero"));
        assert_eq!(event["eventType"], "FAIL");
        assert_eq!(event["run"]["facets"]["errorMessage"]["message"], "Divide by zero");
        assert_eq!(event["run"]["facets"]["errorMessage"]["_producer"], PRODUCER);
    }
}
