//! Authentication on every Flight RPC: Basic credentials (checked against argon2
//! hashes) answered with a signed bearer token, bearer JWTs from an identity
//! provider, or anonymous access when configured. Every failure looks the same.

mod basic;
mod jwt;
mod token;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meshgate_catalog::{ConfigError, ConfigErrors, MeshConfig};
use meshgate_policy::identity::{AuthSpec, configured_principal};
use meshgate_policy::{AttrType, Principal};
use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

use crate::serving::Current;

use basic::Users;
pub use basic::hash_password;
use jwt::JwtVerifier;
use token::TokenSigner;

/// Why a call was not authenticated. The message never says which part was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("credentials required: log in with Basic credentials (Flight Handshake) or send a bearer token")]
    Missing,
    #[error("invalid credentials")]
    Invalid,
}

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        Status::unauthenticated(error.to_string())
    }
}

/// Checks credentials and issues bearer tokens.
#[derive(Debug)]
pub struct Authenticator {
    users: Users,
    anonymous: Option<Arc<Principal>>,
    jwt: Option<JwtVerifier>,
    tokens: TokenSigner,
}

impl Authenticator {
    /// Builds from the mesh file's `auth` section; every mistake is reported by path.
    pub fn from_config(
        config: &MeshConfig,
        attributes: &BTreeMap<String, AttrType>,
        secret: &[u8],
    ) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let spec: AuthSpec = match &config.auth {
            None => AuthSpec::default(),
            Some(value) => match serde_path_to_error::deserialize(value.clone()) {
                Ok(spec) => spec,
                Err(error) => {
                    let inner = error.path().to_string();
                    let path = if inner == "." { "auth".to_owned() } else { format!("auth.{inner}") };
                    return Err(ConfigErrors(vec![ConfigError::new(path, error.into_inner().to_string())]));
                }
            },
        };
        let users = Users::from_spec(&spec.users, attributes, &mut errors);
        let anonymous = spec.anonymous.as_ref().map(|anonymous| {
            let (principal, problems) =
                configured_principal(&anonymous.name, &anonymous.groups, &anonymous.attributes, attributes);
            for (attr, problem) in problems {
                errors.push(ConfigError::new(format!("auth.anonymous.attributes.{attr}"), problem));
            }
            Arc::new(principal)
        });
        let jwt =
            spec.jwt.as_ref().and_then(|jwt| JwtVerifier::from_spec(jwt, attributes, &config.base_dir, &mut errors));
        if spec.token_ttl_secs == 0 {
            errors.push(ConfigError::new("auth.token_ttl_secs", "must be at least 1"));
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let tokens = TokenSigner::new(secret, Duration::from_secs(spec.token_ttl_secs));
        Ok(Self { users, anonymous, jwt, tokens })
    }

    /// The principal behind a call's `authorization` header.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Arc<Principal>, AuthError> {
        let header = match metadata.get("authorization") {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| AuthError::Invalid)?.trim()),
        };
        let (scheme, credentials) = match header {
            None => ("", ""),
            Some(header) => header.split_once(' ').map(|(s, c)| (s, c.trim())).unwrap_or((header, "")),
        };
        let no_credentials = header.is_none()
            || (scheme.eq_ignore_ascii_case("bearer") && (credentials.is_empty() || credentials == "None"));
        if no_credentials {
            return self.anonymous.clone().ok_or(AuthError::Missing);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            return self.users.verify(credentials).ok_or(AuthError::Invalid);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Invalid);
        }
        if let Some(principal) = self.tokens.verify(credentials) {
            return Ok(Arc::new(principal));
        }
        match &self.jwt {
            Some(jwt) => jwt.verify(credentials).map(Arc::new).ok_or(AuthError::Invalid),
            None => Err(AuthError::Invalid),
        }
    }

    /// A signed, expiring bearer token carrying `principal`.
    pub fn issue_token(&self, principal: &Principal) -> String {
        self.tokens.issue(principal)
    }
}

/// A tonic interceptor: authenticates the call with the current authenticator and
/// hands the principal to the service through the request's extensions.
pub fn interceptor(current: Current) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |mut request: Request<()>| {
        let principal = current.get().auth.authenticate(request.metadata())?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// The authenticated principal of a request (set by [`Authenticator::interceptor`]).
pub fn principal_of<T>(request: &Request<T>) -> Result<Arc<Principal>, Status> {
    request.extensions().get::<Arc<Principal>>().cloned().ok_or_else(|| AuthError::Missing.into())
}
