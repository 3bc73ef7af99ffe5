//! Operations endpoints: `/healthz` (the process is up), `/readyz` (what the
//! serving snapshot can serve) and `/metrics` (Prometheus text format, behind the
//! same credentials as the rest with `--http-metrics-auth`).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use meshgate_flight::ProductState;
use meshgate_flight::auth::Refusal;
use serde_json::{Value, json};

use crate::limits::error_response;
use crate::state::HttpState;

/// The Prometheus text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn routes() -> Router<HttpState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
}

async fn healthz() -> Response {
    no_store(axum::Json(json!({ "status": "ok" })).into_response())
}

/// 200 while some product can be served, 503 when none can; the products that are
/// not fully well are listed either way.
async fn readyz(State(state): State<HttpState>) -> Response {
    let serving = state.current.get();
    let snapshot = serving.engine.snapshot();
    let states = meshgate_flight::product_states(&serving);
    let servable = states.iter().filter(|state| state.servable).count();
    let ready = servable > 0;
    let body = json!({
        "ready": ready,
        "catalog": snapshot.catalog_name(),
        "snapshot_loaded": true,
        "domains": snapshot.domain_names().count(),
        "products": snapshot.products().count(),
        "product_versions": states.len(),
        "servable_versions": servable,
        "reloads": state.current.reloads(),
        "reload_failures": state.current.reload_failures(),
        "degraded": states.iter().filter(|state| state.degraded()).map(degraded).collect::<Vec<_>>(),
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    no_store((status, axum::Json(body)).into_response())
}

fn degraded(state: &ProductState) -> Value {
    json!({
        "product": format!("{}.{}", state.domain, state.product),
        "version": state.version,
        "servable": state.servable,
        "problem": state.problem,
        "quality": state.quality.map(|quality| quality.as_str()),
        "freshness": state.freshness.as_str(),
        "freshness_age_seconds": state.freshness_age_seconds,
        "failing_checks": state.failing_checks,
    })
}

async fn metrics(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    if state.options.metrics_auth
        && let Err(refusal) = authenticate(&state, &headers)
    {
        state.metrics.auth_refused(refusal);
        let mut response = error_response(StatusCode::UNAUTHORIZED, refusal.error().to_string());
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"meshgate\""));
        return response;
    }
    match state.metrics.render(&state.current) {
        Ok(text) => no_store(([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response()),
        Err(error) => {
            tracing::error!(%error, "cannot render the metrics");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "the metrics could not be rendered")
        }
    }
}

/// The request's `authorization` header checked like a Flight call's (Basic, a
/// meshgate bearer token or a JWT; anonymous access when configured).
fn authenticate(state: &HttpState, headers: &HeaderMap) -> Result<(), Refusal> {
    let header = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| Refusal::BadHeader)?),
    };
    state.current.get().auth.authenticate_header(header).map(|_| ())
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
