//! The mesh file's `auth` section: configured users (with their principals), the
//! anonymous principal if enabled, JWT settings and the client-certificate rules.
//! Credentials are checked by the protocol layer; this module only turns
//! configuration into principals.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::principal::{AttrType, AttrValue, Principal};

/// The `auth` section. A field left out, or the whole section, takes its value from
/// [`AuthSpec::default`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSpec {
    pub token_ttl_secs: u64,
    pub users: Vec<UserSpec>,
    pub anonymous: Option<AnonymousSpec>,
    pub jwt: Option<JwtSpec>,
    pub client_certificates: Option<ClientCertificatesSpec>,
}

/// No users, no anonymous access, no JWT, no principals from client certificates;
/// tokens live an hour.
impl Default for AuthSpec {
    fn default() -> Self {
        Self { token_ttl_secs: 3600, users: Vec::new(), anonymous: None, jwt: None, client_certificates: None }
    }
}

/// Principals from verified client certificates (mutual TLS): a name is read from the
/// certificate, then becomes a configured user (`users: true`) or the principal of the
/// first rule whose pattern matches the whole name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCertificatesSpec {
    #[serde(default)]
    pub name_from: CertificateName,
    #[serde(default)]
    pub users: bool,
    #[serde(default)]
    pub rules: Vec<CertificateRuleSpec>,
}

/// Which of a certificate's names is the principal's name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateName {
    /// The subject's common name (CN).
    #[default]
    SubjectCn,
    /// A DNS name among the subject alternative names.
    SanDns,
    /// An e-mail address (rfc822Name) among the subject alternative names.
    SanEmail,
    /// A URI (a SPIFFE ID, say) among the subject alternative names.
    SanUri,
}

impl CertificateName {
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateName::SubjectCn => "subject_cn",
            CertificateName::SanDns => "san_dns",
            CertificateName::SanEmail => "san_email",
            CertificateName::SanUri => "san_uri",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateRuleSpec {
    /// A regular expression the whole name must match.
    #[serde(rename = "match")]
    pub pattern: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_norway::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub name: String,
    pub password_hash: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_norway::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnonymousSpec {
    #[serde(default = "default_anonymous")]
    pub name: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_norway::Value>,
}

fn default_anonymous() -> String {
    "anonymous".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSpec {
    pub issuer: String,
    pub audience: String,
    pub algorithms: Vec<String>,
    pub public_key_file: Option<String>,
    pub jwks_file: Option<String>,
    pub secret_env: Option<String>,
    #[serde(default)]
    pub claims: ClaimsSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsSpec {
    #[serde(default = "default_name_claim")]
    pub name: String,
    #[serde(default = "default_groups_claim")]
    pub groups: String,
    /// Principal attribute → claim name.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl Default for ClaimsSpec {
    fn default() -> Self {
        Self { name: default_name_claim(), groups: default_groups_claim(), attributes: BTreeMap::new() }
    }
}

fn default_name_claim() -> String {
    "sub".to_owned()
}

fn default_groups_claim() -> String {
    "groups".to_owned()
}

/// Builds a principal from configured attributes, checking each against its declared
/// type; mistakes are returned as (attribute, message).
pub fn configured_principal(
    name: &str,
    groups: &[String],
    attributes: &BTreeMap<String, serde_norway::Value>,
    declared: &BTreeMap<String, AttrType>,
) -> (Principal, Vec<(String, String)>) {
    let mut principal = Principal::new(name);
    principal.groups = groups.to_vec();
    let mut problems = Vec::new();
    for (attr, value) in attributes {
        match declared.get(attr) {
            None => problems.push((attr.clone(), "unknown attribute (declare it under governance.attributes)".into())),
            Some(ty) => match AttrValue::from_yaml(value, *ty) {
                Some(value) => {
                    principal.attributes.insert(attr.clone(), value);
                }
                None => problems.push((attr.clone(), format!("must be a {}", ty.name()))),
            },
        }
    }
    (principal, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_auth_section_is_an_empty_one() {
        let empty: AuthSpec = serde_norway::from_str("{}").unwrap();
        let missing = AuthSpec::default();
        assert_eq!(missing.token_ttl_secs, empty.token_ttl_secs);
        assert!(missing.users.is_empty() && missing.anonymous.is_none() && missing.jwt.is_none());
    }
}
