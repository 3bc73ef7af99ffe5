//! Authentication on every Flight RPC: Basic credentials (checked against argon2
//! hashes), bearer JWTs from an identity provider, anonymous access when configured,
//! verified client certificates (mutual TLS) mapped to principals, and the bearer
//! tokens the handshake answers any of them with. A token is resolved
//! against the current configuration on every call, so it never outlives or outranks
//! the credential it came from. Every failure looks the same.

mod basic;
mod certificate;
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

use crate::metrics::Metrics;
use crate::serving::Current;
use crate::tls::{PeerCertificate, TlsConnectInfo};

use basic::Users;
pub use basic::hash_password;
use certificate::CertificateMapping;
use jwt::JwtVerifier;
use token::{Grant, Origin, TokenSigner};

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

/// Why credentials were refused, counted in the metrics by [`Refusal::reason`]. The
/// caller only ever sees the [`AuthError`] it maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No credentials, and anonymous access is off.
    Missing,
    /// An `authorization` header that is not readable text or names an unknown scheme.
    BadHeader,
    /// Basic credentials that match no user.
    BadBasic,
    /// A meshgate bearer token that is forged, expired or no longer honoured.
    BadToken,
    /// A bearer JWT that does not verify (or JWTs are not configured).
    BadJwt,
    /// A client certificate no `auth.client_certificates` entry maps, and no other
    /// credentials.
    UnmappedCertificate,
}

impl Refusal {
    /// The metrics label: `missing`, `bad_header`, `bad_basic`, `bad_token`, `bad_jwt`.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::BadHeader => "bad_header",
            Refusal::BadBasic => "bad_basic",
            Refusal::BadToken => "bad_token",
            Refusal::BadJwt => "bad_jwt",
            Refusal::UnmappedCertificate => "unmapped_certificate",
        }
    }

    /// What the caller is told.
    pub fn error(self) -> AuthError {
        match self {
            Refusal::Missing => AuthError::Missing,
            _ => AuthError::Invalid,
        }
    }
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Self {
        refusal.error().into()
    }
}

/// Checks credentials and issues bearer tokens.
#[derive(Debug)]
pub struct Authenticator {
    users: Users,
    /// The anonymous principal and the credential fingerprint of its name.
    anonymous: Option<(Arc<Principal>, Vec<u8>)>,
    /// The verifier and the credential fingerprint of its settings.
    jwt: Option<(JwtVerifier, Vec<u8>)>,
    tokens: TokenSigner,
    /// Principals from client certificates (`auth.client_certificates`).
    certificates: Option<CertificateMapping>,
}

/// A call's principal and the credential behind it, so that a token issued for the
/// call records that credential (see `token.rs`).
#[derive(Debug, Clone)]
pub struct Authenticated {
    principal: Arc<Principal>,
    grant: Grant,
}

impl Authenticated {
    /// Who is calling.
    pub fn principal(&self) -> &Arc<Principal> {
        &self.principal
    }

    /// How long the credential behind the call stays valid from now (a token issued
    /// for the call expires then too); zero once it has expired.
    pub fn remaining(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.grant.expires_at_ms.saturating_sub(crate::tickets::now_ms()))
    }
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
        let tokens = TokenSigner::new(secret, Duration::from_secs(spec.token_ttl_secs));
        let users = Users::from_spec(&spec.users, attributes, &tokens, &mut errors);
        let anonymous = spec.anonymous.as_ref().map(|anonymous| {
            let (principal, problems) =
                configured_principal(&anonymous.name, &anonymous.groups, &anonymous.attributes, attributes);
            for (attr, problem) in problems {
                errors.push(ConfigError::new(format!("auth.anonymous.attributes.{attr}"), problem));
            }
            (Arc::new(principal), tokens.credential(&[b"anonymous", anonymous.name.as_bytes()]))
        });
        let jwt = spec.jwt.as_ref().and_then(|jwt| {
            let verifier = JwtVerifier::from_spec(jwt, attributes, &config.base_dir, &mut errors)?;
            let credential = tokens.credential(&[b"jwt", verifier.settings()]);
            Some((verifier, credential))
        });
        let certificates = spec
            .client_certificates
            .as_ref()
            .map(|spec| CertificateMapping::from_spec(spec, attributes, &tokens, &mut errors));
        if spec.token_ttl_secs == 0 {
            errors.push(ConfigError::new("auth.token_ttl_secs", "must be at least 1"));
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Self { users, anonymous, jwt, tokens, certificates })
    }

    /// The principal behind a call's `authorization` header, and its credential.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Authenticated, Refusal> {
        let header = match metadata.get("authorization") {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| Refusal::BadHeader)?),
        };
        self.authenticate_header(header)
    }

    /// The principal behind an `authorization` header's value (HTTP requests use this
    /// too), and its credential.
    pub fn authenticate_header(&self, header: Option<&str>) -> Result<Authenticated, Refusal> {
        let header = header.map(str::trim);
        let (scheme, credentials) = header.map_or(("", ""), scheme_and_credentials);
        let no_credentials = header.is_none_or(without_credentials);
        if no_credentials {
            let (principal, credential) = self.anonymous.as_ref().ok_or(Refusal::Missing)?;
            let grant = self.tokens.grant(Origin::Anonymous, credential.clone(), None);
            return Ok(Authenticated { principal: Arc::clone(principal), grant });
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let (principal, credential) = self.users.verify(credentials).ok_or(Refusal::BadBasic)?;
            return Ok(Authenticated { principal, grant: self.tokens.grant(Origin::Basic, credential, None) });
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Refusal::BadHeader);
        }
        if TokenSigner::is_token(credentials) {
            return self.resolve(credentials).ok_or(Refusal::BadToken);
        }
        let (jwt, credential) = self.jwt.as_ref().ok_or(Refusal::BadJwt)?;
        let (principal, expires_at_ms) = jwt.verify(credentials).ok_or(Refusal::BadJwt)?;
        let grant = self.tokens.grant(Origin::Jwt, credential.clone(), Some(expires_at_ms));
        Ok(Authenticated { principal: Arc::new(principal), grant })
    }

    /// A meshgate token resolved against the configuration of the moment: a user's
    /// token takes the user's current groups and attributes and is refused once the
    /// user is gone or their password hash changed; an anonymous token is honoured only
    /// while anonymous access under that name is on (as the anonymous principal
    /// configured now); a JWT-born token keeps its claims, only while the JWT settings
    /// it was checked under are configured unchanged.
    fn resolve(&self, token: &str) -> Option<Authenticated> {
        let (grant, claimed) = self.tokens.verify(token)?;
        let principal = match grant.origin {
            Origin::Basic => self.users.current(&claimed.name, &grant.credential)?,
            Origin::Anonymous => {
                let (principal, credential) = self.anonymous.as_ref()?;
                (*credential == grant.credential && principal.name == claimed.name).then(|| Arc::clone(principal))?
            }
            Origin::Certificate => {
                let (principal, credential) = self.certificates.as_ref()?.principal(&claimed.name, &self.users)?;
                (credential == grant.credential).then_some(principal)?
            }
            Origin::Jwt => {
                let (_, credential) = self.jwt.as_ref()?;
                (*credential == grant.credential).then(|| Arc::new(claimed))?
            }
        };
        Some(Authenticated { principal, grant })
    }

    /// A call on a connection that may have presented a verified client certificate.
    /// Credentials in the `authorization` header decide when there are any; without
    /// them, a certificate is mapped by `auth.client_certificates` (refused, like any
    /// invalid credential, when nothing maps it); otherwise as [`Self::authenticate`].
    pub fn authenticate_call(
        &self,
        metadata: &MetadataMap,
        certificate: Option<&PeerCertificate>,
    ) -> Result<Authenticated, Refusal> {
        let credentials = match metadata.get("authorization").map(|value| value.to_str()) {
            None => false,
            Some(Ok(header)) => !without_credentials(header),
            Some(Err(_)) => true, // refused by `authenticate`
        };
        if let (false, Some(mapping), Some(certificate)) = (credentials, &self.certificates, certificate) {
            let (principal, credential) = mapping.map(certificate, &self.users).ok_or(Refusal::UnmappedCertificate)?;
            return Ok(Authenticated { principal, grant: self.tokens.grant(Origin::Certificate, credential, None) });
        }
        self.authenticate(metadata)
    }

    /// Whether `auth.client_certificates` is configured (it needs `--tls-client-ca`).
    pub fn maps_client_certificates(&self) -> bool {
        self.certificates.is_some()
    }

    /// A signed bearer token for an authenticated call: the same credential, login
    /// time and expiry (a token presented at the handshake is renewed, never extended).
    pub fn issue_token(&self, authenticated: &Authenticated) -> String {
        self.tokens.issue(&authenticated.principal, &authenticated.grant)
    }
}

/// Whether an `authorization` header carries no credentials: the Bearer scheme with
/// nothing (or the `None` some clients send) after it.
fn without_credentials(header: &str) -> bool {
    let (scheme, credentials) = scheme_and_credentials(header);
    scheme.eq_ignore_ascii_case("bearer") && (credentials.is_empty() || credentials == "None")
}

/// `Scheme credentials` split at the first space.
fn scheme_and_credentials(header: &str) -> (&str, &str) {
    let header = header.trim();
    header.split_once(' ').map(|(scheme, credentials)| (scheme, credentials.trim())).unwrap_or((header, ""))
}

/// A tonic interceptor: authenticates the call with the current authenticator and
/// hands the principal (and the [`Authenticated`] call) to the service through the
/// request's extensions. Refusals are counted in `metrics` by reason.
pub fn interceptor(
    current: Current,
    metrics: Arc<Metrics>,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |mut request: Request<()>| {
        let connection = request.extensions().get::<TlsConnectInfo>();
        let certificate = connection.and_then(|connection| connection.client_certificate.clone());
        let serving = current.get();
        let authenticated =
            serving.auth.authenticate_call(request.metadata(), certificate.as_deref()).inspect_err(|refusal| {
                metrics.auth_refused(*refusal);
            })?;
        request.extensions_mut().insert(Arc::clone(&authenticated.principal));
        request.extensions_mut().insert(authenticated);
        Ok(request)
    }
}

/// The authenticated principal of a request (set by [`interceptor`]).
pub fn principal_of<T>(request: &Request<T>) -> Result<Arc<Principal>, Status> {
    request.extensions().get::<Arc<Principal>>().cloned().ok_or_else(|| AuthError::Missing.into())
}

/// The authenticated call behind a request (set by [`interceptor`]).
pub fn authenticated_of<T>(request: &Request<T>) -> Result<Authenticated, Status> {
    request.extensions().get::<Authenticated>().cloned().ok_or_else(|| AuthError::Missing.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    use meshgate_policy::AttrValue;
    use tonic::metadata::MetadataValue;

    fn authenticator(auth: &str) -> Authenticator {
        let config = MeshConfig {
            catalog: "mesh".into(),
            stores: Vec::new(),
            domains: Vec::new(),
            auth: Some(serde_norway::from_str(auth).unwrap()),
            governance: None,
            base_dir: std::env::temp_dir(),
            acceleration_budget: meshgate_catalog::config::acceleration::DEFAULT_BUDGET,
            acceleration_spill: None,
        };
        let attributes = BTreeMap::from([("segment".to_owned(), AttrType::Utf8)]);
        Authenticator::from_config(&config, &attributes, b"server secret").unwrap()
    }

    fn users(ana: &str, hash: &str) -> String {
        format!("{{ users: [ {ana}, {{ name: sam, password_hash: '{hash}', groups: [analyst] }} ] }}")
    }

    fn call(authorization: Option<&str>) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        if let Some(value) = authorization {
            metadata.insert("authorization", MetadataValue::try_from(value).unwrap());
        }
        metadata
    }

    fn basic(user: &str, password: &str) -> String {
        use base64::Engine;
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
    }

    #[test]
    fn a_user_token_follows_the_users_current_entry() {
        let hash = hash_password("pw").unwrap();
        let ana = format!(
            "{{ name: ana, password_hash: '{hash}', groups: [analyst, pii_reader], attributes: {{ segment: A }} }}"
        );
        let before = authenticator(&users(&ana, &hash));
        let login = before.authenticate(&call(Some(&basic("ana", "pw")))).unwrap();
        let token = format!("Bearer {}", before.issue_token(&login));
        assert_eq!(before.authenticate(&call(Some(&token))).unwrap().principal.groups, ["analyst", "pii_reader"]);

        // Demoted: the token takes the groups and attributes configured now.
        let demoted =
            format!("{{ name: ana, password_hash: '{hash}', groups: [analyst], attributes: {{ segment: B }} }}");
        let after = authenticator(&users(&demoted, &hash));
        let principal = after.authenticate(&call(Some(&token))).unwrap().principal;
        assert_eq!(principal.groups, ["analyst"]);
        assert_eq!(principal.attributes.get("segment"), Some(&AttrValue::Utf8("B".into())));

        // Password rotated, or the user removed: refused like any invalid credential.
        let rotated = hash_password("new").unwrap();
        let rotated = format!("{{ name: ana, password_hash: '{rotated}', groups: [analyst] }}");
        assert_eq!(
            authenticator(&users(&rotated, &hash)).authenticate(&call(Some(&token))).unwrap_err(),
            Refusal::BadToken
        );
        let removed = authenticator(&format!("{{ users: [ {{ name: sam, password_hash: '{hash}' }} ] }}"));
        assert_eq!(removed.authenticate(&call(Some(&token))).unwrap_err(), Refusal::BadToken);
    }

    #[test]
    fn refusals_say_why_and_clients_see_only_missing_or_invalid() {
        let hash = hash_password("pw").unwrap();
        let auth = authenticator(&format!("{{ users: [ {{ name: ana, password_hash: '{hash}' }} ] }}"));
        let refusal = |header: Option<&str>| auth.authenticate(&call(header)).unwrap_err();
        assert_eq!(refusal(None), Refusal::Missing);
        assert_eq!(refusal(Some("Bearer ")), Refusal::Missing);
        assert_eq!(refusal(Some(&basic("ana", "wrong"))), Refusal::BadBasic);
        assert_eq!(refusal(Some("Digest abc")), Refusal::BadHeader);
        assert_eq!(refusal(Some("Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln")), Refusal::BadJwt);
        let token = auth.issue_token(&auth.authenticate(&call(Some(&basic("ana", "pw")))).unwrap());
        let forged = format!("{}{}", &token[..token.len() - 1], if token.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(refusal(Some(&format!("Bearer {forged}"))), Refusal::BadToken);
        assert_eq!(Refusal::Missing.error(), AuthError::Missing);
        for invalid in [Refusal::BadHeader, Refusal::BadBasic, Refusal::BadToken, Refusal::BadJwt] {
            assert_eq!(invalid.error(), AuthError::Invalid);
        }
    }

    #[test]
    fn renewal_copies_the_grant() {
        let hash = hash_password("pw").unwrap();
        let auth =
            authenticator(&format!("{{ token_ttl_secs: 60, users: [ {{ name: ana, password_hash: '{hash}' }} ] }}"));
        let login = auth.authenticate(&call(Some(&basic("ana", "pw")))).unwrap();
        let renewed = auth.authenticate(&call(Some(&format!("Bearer {}", auth.issue_token(&login))))).unwrap();
        assert_eq!(renewed.grant, login.grant);
        assert_eq!(renewed.principal, login.principal);
    }

    #[test]
    fn an_anonymous_token_needs_anonymous_access_under_the_same_name() {
        let on = authenticator("{ anonymous: { name: guest, groups: [public] } }");
        let anonymous = on.authenticate(&call(None)).unwrap();
        let token = format!("Bearer {}", on.issue_token(&anonymous));
        assert_eq!(on.authenticate(&call(Some(&token))).unwrap().principal.groups, ["public"]);
        let demoted = authenticator("{ anonymous: { name: guest } }");
        assert!(demoted.authenticate(&call(Some(&token))).unwrap().principal.groups.is_empty());
        for other in ["{}", "{ anonymous: { name: visitor, groups: [public] } }"] {
            assert_eq!(authenticator(other).authenticate(&call(Some(&token))).unwrap_err(), Refusal::BadToken);
        }
    }

    fn certificate(cn: &str) -> PeerCertificate {
        PeerCertificate { subject_cn: vec![cn.to_owned()], ..PeerCertificate::default() }
    }

    #[test]
    fn a_certificate_principal_and_its_token_follow_the_configuration_of_the_moment() {
        let hash = hash_password("pw").unwrap();
        let config = |users: &str, rules: &str| {
            format!(
                "{{ users: [ {users} ], client_certificates: {{ users: true, rules: [ {rules} ] }} }}",
                users = users.replace("HASH", &hash)
            )
        };
        let ana = "{ name: ana, password_hash: 'HASH', groups: [analyst] }";
        let auth = authenticator(&config(ana, "{ match: 'svc-[a-z]+', groups: [ml], attributes: { segment: A } }"));
        let call_with = |auth: &Authenticator, header: Option<&str>, cn: &str| {
            auth.authenticate_call(&call(header), Some(&certificate(cn)))
        };

        // A user's name becomes the user; a rule's match a principal of that name.
        assert_eq!(call_with(&auth, None, "ana").unwrap().principal.groups, ["analyst"]);
        let trainer = call_with(&auth, None, "svc-trainer").unwrap();
        assert_eq!(
            (trainer.principal.name.as_str(), &trainer.principal.groups[..]),
            ("svc-trainer", &["ml".to_owned()][..])
        );
        assert_eq!(trainer.principal.attributes.get("segment"), Some(&AttrValue::Utf8("A".into())));
        // The pattern matches the whole name; what nothing maps is refused.
        for unmapped in ["x-svc-trainer", "svc-trainer2", "carl"] {
            assert_eq!(call_with(&auth, None, unmapped).unwrap_err(), Refusal::UnmappedCertificate, "{unmapped}");
        }
        // Credentials in the header decide; an empty bearer is none.
        assert_eq!(call_with(&auth, Some(&basic("ana", "pw")), "svc-trainer").unwrap().principal.name, "ana");
        assert_eq!(call_with(&auth, Some(&basic("ana", "no")), "svc-trainer").unwrap_err(), Refusal::BadBasic);
        assert_eq!(call_with(&auth, Some("Bearer None"), "svc-trainer").unwrap().principal.name, "svc-trainer");

        // Its token takes the rule's groups of the moment, and ends with the rule or user.
        let token = format!("Bearer {}", auth.issue_token(&trainer));
        let ana_token = format!("Bearer {}", auth.issue_token(&call_with(&auth, None, "ana").unwrap()));
        assert_eq!(auth.authenticate(&call(Some(&token))).unwrap().principal.name, "svc-trainer");
        let regrouped = authenticator(&config(ana, "{ match: 'svc-[a-z]+', groups: [analyst] }"));
        assert_eq!(regrouped.authenticate(&call(Some(&token))).unwrap().principal.groups, ["analyst"]);
        let narrowed = authenticator(&config(ana, "{ match: 'svc-[a-z]+-prod' }"));
        assert_eq!(narrowed.authenticate(&call(Some(&token))).unwrap_err(), Refusal::BadToken);
        assert_eq!(narrowed.authenticate(&call(Some(&ana_token))).unwrap().principal.name, "ana");
        let without_ana = authenticator(&config("", "{ match: '.*' }"));
        assert_eq!(without_ana.authenticate(&call(Some(&ana_token))).unwrap_err(), Refusal::BadToken);
        // Without client_certificates a certificate is no credential.
        assert_eq!(
            authenticator("{}").authenticate_call(&call(None), Some(&certificate("ana"))).unwrap_err(),
            Refusal::Missing
        );
    }

    #[test]
    fn the_name_comes_from_the_configured_part_of_the_certificate() {
        let auth = authenticator(
            "{ client_certificates: { name_from: san_email, rules: [ { match: '.*@ml[.]example[.]com' } ] } }",
        );
        let mut certificate = certificate("ml@ml.example.com");
        assert_eq!(auth.authenticate_call(&call(None), Some(&certificate)).unwrap_err(), Refusal::UnmappedCertificate);
        certificate.san_email = vec!["ops@example.com".into(), "trainer@ml.example.com".into()];
        assert_eq!(
            auth.authenticate_call(&call(None), Some(&certificate)).unwrap().principal.name,
            "trainer@ml.example.com"
        );
    }
}
