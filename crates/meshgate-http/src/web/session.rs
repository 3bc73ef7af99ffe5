//! Who is calling the web API, and the session cookie.
//!
//! Any `/api` call may carry the same credentials as Flight in `Authorization`
//! (Basic, a meshgate `mgt2.` bearer token or a JWT). `POST /api/login` checks them
//! (or the login form's user and password) and answers with a session cookie holding
//! a meshgate bearer token for the same credential: it is resolved against the
//! current configuration on every request, so a removed user or a rotated password
//! ends the session (docs/governance.md, "Token lifecycle"). `POST /api/logout`
//! clears the cookie. Both refuse requests from other sites: they must be
//! `application/json` (a cross-site form cannot send that without a preflight
//! meshgate never answers) and, when the browser names an origin, from this one.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use meshgate_flight::Serving;
use meshgate_flight::auth::{AuthError, Authenticated, Refusal};
use meshgate_policy::Principal;
use serde::Deserialize;

use super::error::ApiError;
use crate::state::HttpState;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "meshgate_session";

/// Longer `Cookie` headers are refused (a meshgate token is a few hundred bytes).
const MAX_COOKIE_HEADER: usize = 8 * 1024;

/// An authenticated API call: the serving state it was authenticated against (used
/// for the whole request, so it never mixes two configurations) and its principal.
pub struct Caller {
    pub serving: Arc<Serving>,
    pub principal: Arc<Principal>,
}

impl FromRequestParts<HttpState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &HttpState) -> Result<Self, ApiError> {
        let serving = state.current.get();
        let authorization = match parts.headers.get(header::AUTHORIZATION) {
            Some(value) => Some(value.to_str().map(str::to_owned).map_err(|_| Refusal::BadHeader)),
            None => session_token(&parts.headers).transpose().map(|token| token.map(|token| format!("Bearer {token}"))),
        };
        let authorization = authorization.transpose().map_err(|refusal| refused(state, refusal))?;
        let authenticated = authenticate(state, &serving, authorization.as_deref())?;
        Ok(Self { principal: Arc::clone(authenticated.principal()), serving })
    }
}

/// Authenticates one `authorization` value (or none: anonymous access, if configured).
/// Refusals are counted like the Flight port's.
fn authenticate(state: &HttpState, serving: &Serving, authorization: Option<&str>) -> Result<Authenticated, AuthError> {
    serving.auth.authenticate_header(authorization).map_err(|refusal| refused(state, refusal))
}

fn refused(state: &HttpState, refusal: Refusal) -> AuthError {
    state.metrics.auth_refused(refusal);
    refusal.error()
}

/// The session cookie's token, if the request carries a non-empty one. A `Cookie`
/// header that is too long, or a session value that is not printable ASCII, is
/// refused like a bad token.
fn session_token(headers: &HeaderMap) -> Result<Option<&str>, Refusal> {
    for value in headers.get_all(header::COOKIE) {
        if value.len() > MAX_COOKIE_HEADER {
            return Err(Refusal::BadToken);
        }
        for pair in value.as_bytes().split(|byte| *byte == b';') {
            let pair = pair.trim_ascii();
            let Some(token) = pair.strip_prefix(COOKIE_NAME.as_bytes()).and_then(|rest| rest.strip_prefix(b"=")) else {
                continue;
            };
            if token.is_empty() {
                return Ok(None);
            }
            if !token.iter().all(|byte| byte.is_ascii_graphic()) {
                return Err(Refusal::BadToken);
            }
            return std::str::from_utf8(token).map(Some).map_err(|_| Refusal::BadToken);
        }
    }
    Ok(None)
}

/// The login form's body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginForm {
    user: String,
    password: String,
}

/// `POST /api/login`: a JSON body `{"user": ..., "password": ...}`, or `{}` with the
/// credentials in `Authorization`. Answers who logged in and sets the session cookie.
pub async fn login(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    same_site_json(&headers)?;
    let authorization = if body.trim_ascii().is_empty() || body.trim_ascii() == b"{}" {
        let header = headers.get(header::AUTHORIZATION).ok_or_else(|| refused(&state, Refusal::Missing))?;
        header.to_str().map_err(|_| refused(&state, Refusal::BadHeader))?.to_owned()
    } else {
        let form: LoginForm = serde_json::from_slice(&body).map_err(|error| {
            ApiError::BadRequest(format!(
                "the login body must be {{\"user\": \"...\", \"password\": \"...\"}}: {error}"
            ))
        })?;
        // Basic credentials cannot carry a user name with a colon.
        if form.user.is_empty() || form.user.contains(':') {
            return Err(refused(&state, Refusal::BadBasic).into());
        }
        format!("Basic {}", STANDARD.encode(format!("{}:{}", form.user, form.password)))
    };
    let serving = state.current.get();
    let authenticated = authenticate(&state, &serving, Some(&authorization))?;
    let max_age_secs = authenticated.remaining().as_secs();
    if max_age_secs == 0 {
        return Err(AuthError::Invalid.into());
    }
    let token = serving.auth.issue_token(&authenticated);
    let cookie = format!("{COOKIE_NAME}={token}; Max-Age={max_age_secs}; Path=/; HttpOnly; Secure; SameSite=Strict");
    let principal = authenticated.principal();
    let body = serde_json::json!({
        "user": principal.name,
        "groups": principal.groups,
        "expires_in_secs": max_age_secs,
    });
    let mut response = Json(body).into_response();
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(|_| AuthError::Invalid)?);
    Ok(response)
}

/// `POST /api/logout`: removes the session cookie from the browser.
pub async fn logout(headers: HeaderMap) -> Result<Response, ApiError> {
    same_site_json(&headers)?;
    let cookie = format!("{COOKIE_NAME}=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Strict");
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(|_| AuthError::Invalid)?);
    Ok(response)
}

/// CSRF protection for the requests that change the session: JSON only, and from
/// this site when the browser says where the request comes from.
fn same_site_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::NotJson);
    }
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return Err(ApiError::CrossSite(format!(
            "a request from another site (Sec-Fetch-Site: {}) may not log in or out",
            String::from_utf8_lossy(site.as_bytes())
        )));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).map(HeaderValue::as_bytes).unwrap_or_default();
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|origin| origin.split_once("://"))
            .map(|(_, authority)| authority.as_bytes())
            .unwrap_or_default();
        if host.is_empty() || origin_host != host {
            return Err(ApiError::CrossSite(format!(
                "a request from origin {} may not log in or out here",
                String::from_utf8_lossy(origin.as_bytes())
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn the_session_cookie_is_found_among_others_and_malformed_ones_are_refused() {
        let token = |pairs| session_token(&headers(pairs)).map(|token| token.map(str::to_owned));
        assert_eq!(token(&[("cookie", "a=1; meshgate_session=mgt2.x.y; b=2")]), Ok(Some("mgt2.x.y".into())));
        assert_eq!(token(&[("cookie", "a=1"), ("cookie", "meshgate_session=t")]), Ok(Some("t".into())));
        assert_eq!(token(&[("cookie", "meshgate_session_old=t; other=meshgate_session")]), Ok(None));
        assert_eq!(token(&[("cookie", "meshgate_session=")]), Ok(None));
        assert_eq!(token(&[]), Ok(None));
        assert_eq!(token(&[("cookie", "meshgate_session=a b")]), Err(Refusal::BadToken));
        let long = format!("meshgate_session={}", "x".repeat(MAX_COOKIE_HEADER));
        assert_eq!(token(&[("cookie", &long)]), Err(Refusal::BadToken));
    }

    #[test]
    fn only_same_site_json_may_log_in_or_out() {
        let json = ("content-type", "application/json; charset=utf-8");
        let host = ("host", "127.0.0.1:8080");
        assert!(same_site_json(&headers(&[json, host])).is_ok());
        assert!(same_site_json(&headers(&[json, host, ("origin", "http://127.0.0.1:8080")])).is_ok());
        assert!(same_site_json(&headers(&[json, host, ("sec-fetch-site", "same-origin")])).is_ok());
        assert!(matches!(same_site_json(&headers(&[host])), Err(ApiError::NotJson)));
        assert!(matches!(same_site_json(&headers(&[("content-type", "text/plain"), host])), Err(ApiError::NotJson)));
        for refused in [
            ("origin", "http://127.0.0.1:9999"),
            ("origin", "https://evil.example"),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site"),
        ] {
            assert!(
                matches!(same_site_json(&headers(&[json, host, refused])), Err(ApiError::CrossSite(_))),
                "{refused:?}"
            );
        }
    }
}
