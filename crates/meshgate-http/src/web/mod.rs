//! The catalog web page: login and the session cookie (`session.rs`), the JSON API
//! the page reads (`api.rs`, built by SQL on the system tables as the caller:
//! `query.rs`), code snippets (`snippets.rs`) and the embedded static files
//! (`assets.rs`, from `crates/meshgate-http/assets/`). Every response carries the
//! security headers below.

mod api;
mod assets;
mod error;
mod query;
mod session;
mod snippets;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::state::HttpState;

/// Request bodies (the login form) above this are refused with 413.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// Scripts, styles, images and API calls from this origin only; no inline script,
/// no framing, no form posts elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/app.css", get(assets::stylesheet))
        .route("/assets/app.js", get(assets::script))
        .route("/assets/icon.svg", get(assets::icon))
        .route("/api/login", post(session::login))
        .route("/api/logout", post(session::logout))
        .route("/api/me", get(api::me))
        .route("/api/catalog", get(api::catalog))
        .route("/api/products/{domain}/{name}", get(api::product))
        .route("/api/{*rest}", get(no_such_call).post(no_such_call))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(map_response(security_headers))
}

async fn no_such_call() -> Response {
    error::ApiError::NotFound("no such API call".into()).into_response()
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
        (HeaderName::from_static("cross-origin-resource-policy"), "same-origin"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // API answers depend on who asks: never cached.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
