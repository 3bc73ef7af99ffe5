//! Bearer tokens meshgate issues at the handshake: `mgt2.<payload>.<hmac>`, signed with
//! a key derived from the server secret.
//!
//! A token never outlives or outranks the credential it came from. It records that
//! credential (its [`Origin`] and a keyed fingerprint of the configuration entry that
//! accepted it), when it was presented and when it expires; renewing a token copies
//! all three. The authenticator resolves every token against the current
//! configuration (`Authenticator::authenticate`): only a JWT-born token carries groups
//! and attributes, the others take them from the configuration of the moment.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use meshgate_policy::{AttrValue, Principal};
use prost::Message;
use sha2::Sha256;

use crate::proto::attribute_value::Value;
use crate::proto::{AccessToken, AttributeValue, TokenOrigin};
use crate::tickets::now_ms;

/// `mgt1.` tokens carried the principal alone and are no longer accepted.
const PREFIX: &str = "mgt2.";

/// Which credential a token was issued from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// Basic credentials of a configured user.
    Basic,
    /// A JWT from the configured identity provider.
    Jwt,
    /// No credentials, where anonymous access is configured.
    Anonymous,
    /// A verified client certificate mapped by `auth.client_certificates`.
    Certificate,
}

/// The credential behind a call, as a token issued for the call records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Grant {
    pub origin: Origin,
    /// A keyed fingerprint of the configuration entry that accepted the credential
    /// ([`TokenSigner::credential`]).
    pub credential: Vec<u8>,
    /// When the credential was presented (the login), ms since the Unix epoch.
    pub issued_at_ms: u64,
    /// When the credential stops being valid, ms since the Unix epoch.
    pub expires_at_ms: u64,
}

#[derive(Clone)]
pub(super) struct TokenSigner {
    /// Signs tokens.
    key: Vec<u8>,
    /// Fingerprints credentials, so a token shows nothing usable offline about them.
    fingerprints: Vec<u8>,
    ttl: Duration,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl TokenSigner {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        // Keys of their own, derived from the server secret, so a token is never a ticket.
        Self {
            key: derive(secret, b"meshgate bearer tokens"),
            fingerprints: derive(secret, b"meshgate credentials"),
            ttl,
        }
    }

    /// A grant for a credential presented now: it lasts the token lifetime, or less
    /// when the credential itself expires sooner (`credential_expires_at_ms`).
    pub fn grant(&self, origin: Origin, credential: Vec<u8>, credential_expires_at_ms: Option<u64>) -> Grant {
        let now = now_ms();
        let lifetime = now.saturating_add(self.ttl.as_millis() as u64);
        let expires_at_ms = credential_expires_at_ms.map_or(lifetime, |expiry| expiry.min(lifetime));
        Grant { origin, credential, issued_at_ms: now, expires_at_ms }
    }

    /// A keyed fingerprint of a configuration entry given as its parts.
    pub fn credential(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = keyed(&self.fingerprints);
        for part in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes()[..16].to_vec()
    }

    /// A token for `grant`. The principal's groups and attributes are written only for
    /// a JWT grant: the others are resolved from the configuration on every call.
    pub fn issue(&self, principal: &Principal, grant: &Grant) -> String {
        let (groups, attributes) = match grant.origin {
            Origin::Jwt => (principal.groups.clone(), principal.attributes.iter().map(encode_attribute).collect()),
            Origin::Basic | Origin::Anonymous | Origin::Certificate => Default::default(),
        };
        let token = AccessToken {
            name: principal.name.clone(),
            groups,
            attributes,
            expires_at_ms: grant.expires_at_ms,
            origin: TokenOrigin::from(grant.origin) as i32,
            credential: grant.credential.clone(),
            issued_at_ms: grant.issued_at_ms,
        };
        let payload = token.encode_to_vec();
        let mut mac = keyed(&self.key);
        mac.update(&payload);
        let signature = mac.finalize().into_bytes();
        format!("{PREFIX}{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(signature))
    }

    /// Whether `bearer` is in the form of a meshgate token (valid or not).
    pub fn is_token(bearer: &str) -> bool {
        bearer.starts_with(PREFIX)
    }

    /// The grant and claimed principal of a genuine token that has not expired, neither
    /// by its own expiry nor by the current token lifetime counted from its login;
    /// `None` for anything else. The caller resolves the grant against the
    /// configuration.
    pub fn verify(&self, token: &str) -> Option<(Grant, Principal)> {
        let (payload, signature) = token.strip_prefix(PREFIX)?.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut mac = keyed(&self.key);
        mac.update(&payload);
        mac.verify_slice(&signature).ok()?;
        let token = AccessToken::decode(payload.as_slice()).ok()?;
        let origin = match TokenOrigin::try_from(token.origin).ok()? {
            TokenOrigin::Basic => Origin::Basic,
            TokenOrigin::Jwt => Origin::Jwt,
            TokenOrigin::Anonymous => Origin::Anonymous,
            TokenOrigin::Certificate => Origin::Certificate,
            TokenOrigin::Unspecified => return None,
        };
        let now = now_ms();
        let lifetime_end = token.issued_at_ms.saturating_add(self.ttl.as_millis() as u64);
        if token.credential.is_empty() || token.expires_at_ms <= now || lifetime_end <= now {
            return None;
        }
        let mut principal = Principal::new(token.name);
        principal.groups = token.groups;
        for (name, value) in token.attributes {
            principal.attributes.insert(name, decode_attribute(value)?);
        }
        let grant = Grant {
            origin,
            credential: token.credential,
            issued_at_ms: token.issued_at_ms,
            expires_at_ms: token.expires_at_ms,
        };
        Some((grant, principal))
    }
}

impl From<Origin> for TokenOrigin {
    fn from(origin: Origin) -> Self {
        match origin {
            Origin::Basic => TokenOrigin::Basic,
            Origin::Jwt => TokenOrigin::Jwt,
            Origin::Anonymous => TokenOrigin::Anonymous,
            Origin::Certificate => TokenOrigin::Certificate,
        }
    }
}

fn encode_attribute((name, value): (&String, &AttrValue)) -> (String, AttributeValue) {
    let value = match value {
        AttrValue::Utf8(text) => Value::Utf8(text.clone()),
        AttrValue::Int64(int) => Value::Int64(*int),
        AttrValue::Float64(float) => Value::Float64(*float),
        AttrValue::Boolean(flag) => Value::Boolean(*flag),
    };
    (name.clone(), AttributeValue { value: Some(value) })
}

fn decode_attribute(value: AttributeValue) -> Option<AttrValue> {
    Some(match value.value? {
        Value::Utf8(text) => AttrValue::Utf8(text),
        Value::Int64(int) => AttrValue::Int64(int),
        Value::Float64(float) => AttrValue::Float64(float),
        Value::Boolean(flag) => AttrValue::Boolean(flag),
    })
}

fn derive(secret: &[u8], purpose: &[u8]) -> Vec<u8> {
    let mut mac = keyed(secret);
    mac.update(purpose);
    mac.finalize().into_bytes().to_vec()
}

fn keyed(secret: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn jane() -> Principal {
        let mut jane = Principal::new("jane");
        jane.groups = vec!["analyst".into()];
        jane.attributes.insert("region_key".into(), AttrValue::Int64(3));
        jane
    }

    /// A token signed like `signer` would, with `edit` applied to its contents.
    fn forged(signer: &TokenSigner, token: &str, edit: impl FnOnce(&mut AccessToken)) -> String {
        let payload = token.strip_prefix(PREFIX).unwrap().split_once('.').unwrap().0;
        let mut decoded = AccessToken::decode(URL_SAFE_NO_PAD.decode(payload).unwrap().as_slice()).unwrap();
        edit(&mut decoded);
        let payload = decoded.encode_to_vec();
        let mut mac = keyed(&signer.key);
        mac.update(&payload);
        let signature = mac.finalize().into_bytes();
        format!("{PREFIX}{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(signature))
    }

    #[test]
    fn a_jwt_grant_carries_its_claims_and_a_basic_one_only_the_name() {
        let signer = TokenSigner::new(b"secret", HOUR);
        let credential = signer.credential(&[b"jwt", b"config"]);
        let grant = signer.grant(Origin::Jwt, credential.clone(), None);
        let (verified, principal) = signer.verify(&signer.issue(&jane(), &grant)).unwrap();
        assert_eq!((verified, principal), (grant, jane()));

        let grant = signer.grant(Origin::Basic, credential, None);
        let (verified, principal) = signer.verify(&signer.issue(&jane(), &grant)).unwrap();
        assert_eq!(verified, grant);
        assert_eq!(principal, Principal::new("jane"));
    }

    #[test]
    fn a_grant_expires_with_its_credential_or_the_lifetime_whichever_is_first() {
        let signer = TokenSigner::new(b"secret", HOUR);
        let now = now_ms();
        let soon = now + 5_000;
        assert_eq!(signer.grant(Origin::Jwt, vec![1], Some(soon)).expires_at_ms, soon);
        let later = signer.grant(Origin::Jwt, vec![1], Some(now + 10 * 3_600_000)).expires_at_ms;
        assert!(later >= now + 3_600_000 && later < now + 3_700_000, "{later} vs {now}");
        let expired = signer.grant(Origin::Jwt, vec![1], Some(now - 1));
        assert!(signer.verify(&signer.issue(&jane(), &expired)).is_none());
    }

    #[test]
    fn a_shorter_lifetime_applies_to_tokens_already_issued() {
        let long = TokenSigner::new(b"secret", HOUR);
        let mut grant = long.grant(Origin::Basic, vec![1], None);
        grant.issued_at_ms -= 120_000; // logged in two minutes ago
        let token = long.issue(&jane(), &grant);
        assert!(long.verify(&token).is_some());
        assert!(TokenSigner::new(b"secret", Duration::from_secs(60)).verify(&token).is_none());
    }

    #[test]
    fn refused_tokens() {
        let signer = TokenSigner::new(b"secret", HOUR);
        let grant = signer.grant(Origin::Basic, signer.credential(&[b"basic", b"jane"]), None);
        let token = signer.issue(&jane(), &grant);
        assert!(signer.verify(&token).is_some());
        // Another secret, a tampered payload, garbage.
        assert!(TokenSigner::new(b"other", HOUR).verify(&token).is_none());
        let (head, signature) = token.rsplit_once('.').unwrap();
        let mut flipped = head.to_owned();
        let last = flipped.pop().unwrap();
        flipped.push(if last == 'A' { 'B' } else { 'A' });
        assert!(signer.verify(&format!("{flipped}.{signature}")).is_none());
        assert!(signer.verify("mgt2.x.y").is_none());
        // Genuinely signed, but of the old form (no origin), without a credential, or
        // of an origin this version does not know.
        assert!(signer.verify(&forged(&signer, &token, |t| t.origin = 0)).is_none());
        assert!(signer.verify(&forged(&signer, &token, |t| t.credential.clear())).is_none());
        assert!(signer.verify(&forged(&signer, &token, |t| t.origin = 9)).is_none());
        // The old prefix is no token at all.
        assert!(!TokenSigner::is_token(&token.replacen("mgt2.", "mgt1.", 1)));
    }

    #[test]
    fn credentials_are_keyed_and_unambiguous() {
        let signer = TokenSigner::new(b"secret", HOUR);
        let a = signer.credential(&[b"basic", b"ab", b"c"]);
        assert_ne!(a, signer.credential(&[b"basic", b"a", b"bc"]));
        assert_ne!(a, TokenSigner::new(b"other", HOUR).credential(&[b"basic", b"ab", b"c"]));
        assert_eq!(a, TokenSigner::new(b"secret", Duration::from_secs(1)).credential(&[b"basic", b"ab", b"c"]));
    }
}
