//! Principals from verified client certificates (`auth.client_certificates`): a name
//! read from the certificate (its subject CN or a subject alternative name) becomes a
//! configured user, or the principal of the first rule whose pattern matches the
//! whole name. A token issued for such a principal records the name and a keyed
//! fingerprint of what mapped it, and is honoured only while the same entry still
//! maps that name.

use std::collections::BTreeMap;
use std::sync::Arc;

use meshgate_catalog::ConfigError;
use meshgate_policy::identity::{CertificateName, ClientCertificatesSpec, configured_principal};
use meshgate_policy::{AttrType, Principal};
use regex::Regex;

use super::basic::Users;
use super::token::TokenSigner;
use crate::tls::PeerCertificate;

#[derive(Debug)]
pub(super) struct CertificateMapping {
    name_from: CertificateName,
    users: bool,
    rules: Vec<Rule>,
    /// The fingerprint of the user entry, per user: `certificate`, the name source, the
    /// user's name.
    tokens: TokenSigner,
}

#[derive(Debug)]
struct Rule {
    pattern: Regex,
    /// The principal's groups and attributes; its name is the certificate's.
    principal: Principal,
    /// Fingerprint of the name source and the pattern.
    credential: Vec<u8>,
}

impl CertificateMapping {
    pub fn from_spec(
        spec: &ClientCertificatesSpec,
        attributes: &BTreeMap<String, AttrType>,
        tokens: &TokenSigner,
        errors: &mut Vec<ConfigError>,
    ) -> Self {
        let name_from = spec.name_from.as_str().as_bytes();
        let mut rules = Vec::new();
        for (index, rule) in spec.rules.iter().enumerate() {
            let path = format!("auth.client_certificates.rules[{index}]");
            let (principal, problems) = configured_principal("", &rule.groups, &rule.attributes, attributes);
            for (attr, problem) in problems {
                errors.push(ConfigError::new(format!("{path}.attributes.{attr}"), problem));
            }
            // Checked as written, for the message; used anchored.
            match Regex::new(&rule.pattern).and_then(|_| Regex::new(&format!("^(?:{})$", rule.pattern))) {
                Ok(pattern) => {
                    let credential = tokens.credential(&[b"certificate", name_from, b"rule", rule.pattern.as_bytes()]);
                    rules.push(Rule { pattern, principal, credential });
                }
                Err(error) => errors.push(ConfigError::new(
                    format!("{path}.match"),
                    format!("not a regular expression ({})", last_line(&error.to_string())),
                )),
            }
        }
        if !spec.users && spec.rules.is_empty() {
            errors.push(ConfigError::new(
                "auth.client_certificates",
                "maps no certificate to a principal: set `users: true` or add `rules`",
            ));
        }
        Self { name_from: spec.name_from, users: spec.users, rules, tokens: tokens.clone() }
    }

    /// The principal of the first of the certificate's names (of the configured kind)
    /// that maps, and the credential fingerprint of what mapped it.
    pub fn map(&self, certificate: &PeerCertificate, users: &Users) -> Option<(Arc<Principal>, Vec<u8>)> {
        let names = match self.name_from {
            CertificateName::SubjectCn => &certificate.subject_cn,
            CertificateName::SanDns => &certificate.san_dns,
            CertificateName::SanEmail => &certificate.san_email,
            CertificateName::SanUri => &certificate.san_uri,
        };
        names.iter().find_map(|name| self.principal(name, users))
    }

    /// The principal `name` maps to under the configuration of the moment (the user
    /// of that name when `users` is on, else the first matching rule), with the
    /// credential fingerprint of that entry.
    pub fn principal(&self, name: &str, users: &Users) -> Option<(Arc<Principal>, Vec<u8>)> {
        let name_from = self.name_from.as_str().as_bytes();
        if self.users
            && let Some(user) = users.principal(name)
        {
            return Some((user, self.tokens.credential(&[b"certificate", name_from, b"user", name.as_bytes()])));
        }
        let rule = self.rules.iter().find(|rule| rule.pattern.is_match(name))?;
        let mut principal = rule.principal.clone();
        principal.name = name.to_owned();
        Some((Arc::new(principal), rule.credential.clone()))
    }
}

/// regex's messages end with the reason: `error: unclosed character class`.
fn last_line(text: &str) -> &str {
    let line = text.lines().map(str::trim).rfind(|line| !line.is_empty()).unwrap_or(text);
    line.strip_prefix("error: ").unwrap_or(line)
}
