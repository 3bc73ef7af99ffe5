//! Bearer JWTs from an identity provider: pinned algorithms, issuer, audience,
//! `exp` and `nbf` checked; claims mapped to a principal with typed attributes.

use std::collections::BTreeMap;
use std::path::Path;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use meshgate_catalog::ConfigError;
use meshgate_policy::identity::JwtSpec;
use meshgate_policy::{AttrType, AttrValue, Principal};

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
        if let Some(variable) = &spec.secret_env {
            match std::env::var(variable) {
                Ok(secret) if !secret.is_empty() => {
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
                    Ok(key) => keys.push(Keys::Pem(key)),
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
            match std::fs::read_to_string(base_dir.join(file))
                .map_err(|e| e.to_string())
                .and_then(|text| serde_json::from_str::<JwkSet>(&text).map_err(|e| e.to_string()))
            {
                Ok(set) => keys.push(Keys::Jwks(set)),
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
        })
    }

    pub fn verify(&self, token: &str) -> Option<Principal> {
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
        Some(principal)
    }
}
