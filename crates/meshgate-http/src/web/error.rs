//! What a web API call answers when it fails: a status and a JSON body
//! `{"error": "..."}` naming the problem. Internal detail is logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use meshgate_engine::EngineError;
use meshgate_flight::auth::AuthError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No credentials, or credentials that are not (or no longer) valid.
    #[error(transparent)]
    Unauthenticated(#[from] AuthError),
    /// A state-changing request from another site (CSRF).
    #[error("{0}")]
    CrossSite(String),
    /// A body that is not the expected JSON.
    #[error("{0}")]
    BadRequest(String),
    /// A state-changing request that is not `application/json`.
    #[error("send the request body as application/json")]
    NotJson,
    /// A product that does not exist or that the caller may not read.
    #[error("{0}")]
    NotFound(String),
    /// The catalog's system tables could not be read.
    #[error("the catalog could not be read; the server log has the details")]
    Engine(#[from] EngineError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::CrossSite(_) => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Engine(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Engine(error) => tracing::error!("web API: reading the catalog failed: {error}"),
            Self::CrossSite(reason) => tracing::warn!("web API: cross-site request refused: {reason}"),
            _ => {}
        }
        let status = self.status();
        let mut response = (status, Json(serde_json::json!({ "error": self.to_string() }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            // Never `Basic`: browsers would answer it with their own login dialog.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"meshgate\""));
        }
        response
    }
}
