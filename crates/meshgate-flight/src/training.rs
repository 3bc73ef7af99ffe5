//! The `meshgate.training_snapshot` action: what a training set's manifest records
//! about the data behind its query (docs/ml.md). The body is JSON `{"sql": "..."}`;
//! the call's settings (schema, purpose, provenance) apply as they do to the query.

use std::sync::Arc;

use arrow::temporal_conversions::timestamp_ms_to_datetime;
use arrow_flight::Action;
use meshgate_engine::{PlanSettings, TrainingSnapshot};
use meshgate_policy::Principal;
use serde_json::{Value, json};
use tonic::Request;

use crate::error::FlightError;
use crate::service::MeshFlightSqlService;
use crate::service::statements::acting_for;

/// Answers the action: the snapshot as UTF-8 JSON.
pub(crate) async fn snapshot(
    service: &MeshFlightSqlService,
    request: &Request<Action>,
    principal: &Arc<Principal>,
) -> Result<Vec<u8>, FlightError> {
    let body: Value = serde_json::from_slice(&request.get_ref().body).map_err(|error| {
        FlightError::BadRequest(format!("meshgate.training_snapshot: the body must be JSON {{\"sql\": ...}}: {error}"))
    })?;
    let Some(sql) = body.get("sql").and_then(Value::as_str) else {
        return Err(FlightError::BadRequest("meshgate.training_snapshot: the body has no \"sql\" string".into()));
    };
    let settings = service.settings(request, principal)?;
    let acting = acting_for(principal, settings.purpose.as_deref().unwrap_or_default());
    let plan_settings = PlanSettings {
        default_schema: settings.schema,
        time_zone: settings.time_zone,
        timeout: settings.query_timeout,
        provenance: settings.provenance,
    };
    let snapshot = service.engine().training_snapshot(&acting, sql, &plan_settings).await?;
    Ok(to_json(&snapshot).to_string().into_bytes())
}

fn to_json(snapshot: &TrainingSnapshot) -> Value {
    let products: Vec<Value> = snapshot
        .products
        .iter()
        .map(|product| {
            let files: Option<Vec<Value>> = product.files.as_ref().map(|files| {
                files
                    .iter()
                    .map(|file| {
                        let modified = timestamp_ms_to_datetime(file.modified_ms)
                            .map(|at| at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
                        json!({"path": file.path, "size": file.size, "modified": modified, "e_tag": file.e_tag})
                    })
                    .collect()
            });
            json!({
                "domain": product.domain,
                "product": product.product,
                "version": product.version,
                "delta_version": product.delta_version,
                "files": files,
                "files_digest": product.files_digest,
            })
        })
        .collect();
    json!({"products": products, "policy_fingerprint": snapshot.policy_fingerprint})
}
