//! Bearer JWTs from an identity provider: pinned algorithms, issuer, audience,
//! `exp` and `nbf` checked; claims mapped to a principal with typed attributes.

use std::collections::BTreeMap;
use std::path::Path;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use meshgate_catalog::ConfigError;
use meshgate_policy::identity::JwtSpec;
use meshgate_policy::{AttrType, AttrValue, Principal};
use sha2::{Digest, Sha256};

#[derive(Debug)]
enum Keys {
    Secret(DecodingKey),
    Pem(DecodingKey),
    Jwks(JwkSet),
}

pub(super) struct JwtVerifier {
    algorithms: Vec<Algorithm>,
    keys: Vec<Keys>,
    validation: Validation,
    name_claim: String,
    groups_claim: String,
    /// attribute → (claim, type)
    attributes: BTreeMap<String, (String, AttrType)>,
    /// SHA-256 of everything that decides what a JWT proves: issuer, audience,
    /// algorithms, claim mapping and key material.
    settings: Vec<u8>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier").field("algorithms", &self.algorithms).finish_non_exhaustive()
    }
}

impl JwtVerifier {
    pub fn from_spec(
        spec: &JwtSpec,
        declared: &BTreeMap<String, AttrType>,
        base_dir: &Path,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Self> {
        let before = errors.len();
        let mut algorithms = Vec::new();
        for name in &spec.algorithms {
            match name.as_str() {
                "HS256" => algorithms.push(Algorithm::HS256),
                "RS256" => algorithms.push(Algorithm::RS256),
                "ES256" => algorithms.push(Algorithm::ES256),
                other => errors.push(ConfigError::new(
                    "auth.jwt.algorithms",
                    format!("'{other}' is not allowed (use HS256, RS256 or ES256)"),
                )),
            }
        }
        if spec.algorithms.is_empty() {
            errors.push(ConfigError::new("auth.jwt.algorithms", "pin at least one algorithm"));
        }
        let mut keys = Vec::new();
        let mut settings = Settings::default();
        settings.add("issuer", spec.issuer.as_bytes());
        settings.add("audience", spec.audience.as_bytes());
        for name in &spec.algorithms {
            settings.add("algorithm", name.as_bytes());
        }
        settings.add("name claim", spec.claims.name.as_bytes());
        settings.add("groups claim", spec.claims.groups.as_bytes());
        if let Some(variable) = &spec.secret_env {
            match std::env::var(variable) {
                Ok(secret) if !secret.is_empty() => {
                    settings.add("secret", secret.as_bytes());
                    keys.push(Keys::Secret(DecodingKey::from_secret(secret.as_bytes())))
                }
                _ => errors.push(ConfigError::new(
                    "auth.jwt.secret_env",
                    format!("environment variable {variable} is not set"),
                )),
            }
        }
        if let Some(file) = &spec.public_key_file {
            match std::fs::read(base_dir.join(file)) {
                Ok(pem) => match DecodingKey::from_rsa_pem(&pem).or_else(|_| DecodingKey::from_ec_pem(&pem)) {
                    Ok(key) => {
                        settings.add("public key", &pem);
                        keys.push(Keys::Pem(key))
                    }
                    Err(error) => errors.push(ConfigError::new(
                        "auth.jwt.public_key_file",
                        format!("{file}: not an RSA or EC public key in PEM ({error})"),
                    )),
                },
                Err(error) => {
                    errors.push(ConfigError::new("auth.jwt.public_key_file", format!("cannot read {file}: {error}")))
                }
            }
        }
        if let Some(file) = &spec.jwks_file {
            match std::fs::read_to_string(base_dir.join(file)).map_err(|e| e.to_string()).and_then(|text| {
                serde_json::from_str::<JwkSet>(&text).map(|set| (text, set)).map_err(|e| e.to_string())
            }) {
                Ok((text, set)) => {
                    settings.add("jwks", text.as_bytes());
                    keys.push(Keys::Jwks(set))
                }
                Err(error) => errors.push(ConfigError::new("auth.jwt.jwks_file", format!("{file}: {error}"))),
            }
        }
        if keys.is_empty() && spec.secret_env.is_none() && spec.public_key_file.is_none() && spec.jwks_file.is_none() {
            errors.push(ConfigError::new("auth.jwt", "give secret_env, public_key_file or jwks_file"));
        }
        let mut attributes = BTreeMap::new();
        for (attr, claim) in &spec.claims.attributes {
            match declared.get(attr) {
                Some(ty) => {
                    settings.add("attribute", attr.as_bytes());
                    settings.add("claim", claim.as_bytes());
                    settings.add("type", ty.name().as_bytes());
                    attributes.insert(attr.clone(), (claim.clone(), *ty));
                }
                None => errors.push(ConfigError::new(
                    format!("auth.jwt.claims.attributes.{attr}"),
                    "unknown attribute (declare it under governance.attributes)",
                )),
            }
        }
        if errors.len() > before {
            return None;
        }
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms.clone();
        validation.set_issuer(&[&spec.issuer]);
        validation.set_audience(&[&spec.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = 0;
        Some(Self {
            algorithms,
            keys,
            validation,
            name_claim: spec.claims.name.clone(),
            groups_claim: spec.claims.groups.clone(),
            attributes,
            settings: settings.0.finalize().to_vec(),
        })
    }

    /// A digest of these settings: equal for two verifiers exactly when they accept the
    /// same JWTs and map them to the same principals.
    pub fn settings(&self) -> &[u8] {
        &self.settings
    }

    /// The principal of a valid JWT and the JWT's expiry (`exp`, ms since the Unix epoch).
    pub fn verify(&self, token: &str) -> Option<(Principal, u64)> {
        let header = decode_header(token).ok()?;
        if !self.algorithms.contains(&header.alg) {
            return None;
        }
        let hmac = header.alg == Algorithm::HS256;
        // Validate with the token's own (pinned) algorithm: the key chosen below is of
        // that family, and jsonwebtoken refuses a list mixing families.
        let mut validation = self.validation.clone();
        validation.algorithms = vec![header.alg];
        let claims = self.keys.iter().find_map(|keys| {
            let key = match (keys, hmac) {
                (Keys::Secret(key), true) => key.clone(),
                (Keys::Pem(key), false) => key.clone(),
                (Keys::Jwks(set), false) => DecodingKey::from_jwk(set.find(header.kid.as_deref()?)?).ok()?,
                _ => return None,
            };
            decode::<serde_json::Value>(token, &key, &validation).ok()
        })?;
        let claims = claims.claims;
        let expires_at_ms =
            claims.get("exp").and_then(|exp| exp.as_u64().or_else(|| exp.as_f64().map(|f| f as u64)))?;
        let expires_at_ms = expires_at_ms.saturating_mul(1000);
        let name = claims.get(&self.name_claim)?.as_str()?.to_owned();
        let mut principal = Principal::new(name);
        if let Some(groups) = claims.get(&self.groups_claim).and_then(|g| g.as_array()) {
            principal.groups = groups.iter().filter_map(|g| g.as_str().map(str::to_owned)).collect();
        }
        for (attr, (claim, ty)) in &self.attributes {
            // A claim of another type leaves the attribute missing: it never loosens.
            let value = claims.get(claim).and_then(|value| serde_norway::to_value(value).ok());
            if let Some(value) = value.and_then(|value| AttrValue::from_yaml(&value, *ty)) {
                principal.attributes.insert(attr.clone(), value);
            }
        }
        Some((principal, expires_at_ms))
    }
}

/// Length-prefixed, labelled parts of the JWT settings, hashed.
#[derive(Default)]
struct Settings(Sha256);

impl Settings {
    fn add(&mut self, label: &str, value: &[u8]) {
        for part in [label.as_bytes(), value] {
            self.0.update((part.len() as u64).to_be_bytes());
            self.0.update(part);
        }
    }
}
