//! Bearer tokens meshgate issues after a Basic login: `mgt1.<payload>.<hmac>`, the
//! principal inside, signed with the server secret, expiring.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use meshgate_policy::{AttrValue, Principal};
use prost::Message;
use sha2::Sha256;

use crate::proto::attribute_value::Value;
use crate::proto::{AccessToken, AttributeValue};

const PREFIX: &str = "mgt1.";

#[derive(Clone)]
pub(super) struct TokenSigner {
    secret: Vec<u8>,
    ttl: Duration,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl TokenSigner {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        // A key of its own, derived from the server secret, so a token is never a ticket.
        let mut mac = keyed(secret);
        mac.update(b"meshgate bearer tokens");
        Self { secret: mac.finalize().into_bytes().to_vec(), ttl }
    }

    pub fn issue(&self, principal: &Principal) -> String {
        let attributes = principal
            .attributes
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    AttrValue::Utf8(text) => Value::Utf8(text.clone()),
                    AttrValue::Int64(int) => Value::Int64(*int),
                    AttrValue::Float64(float) => Value::Float64(*float),
                    AttrValue::Boolean(flag) => Value::Boolean(*flag),
                };
                (name.clone(), AttributeValue { value: Some(value) })
            })
            .collect();
        let token = AccessToken {
            name: principal.name.clone(),
            groups: principal.groups.clone(),
            attributes,
            expires_at_ms: now_ms().saturating_add(self.ttl.as_millis() as u64),
        };
        let payload = token.encode_to_vec();
        let mut mac = keyed(&self.secret);
        mac.update(&payload);
        let signature = mac.finalize().into_bytes();
        format!("{PREFIX}{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(signature))
    }

    /// The principal in a valid, unexpired token; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<Principal> {
        let (payload, signature) = token.strip_prefix(PREFIX)?.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut mac = keyed(&self.secret);
        mac.update(&payload);
        mac.verify_slice(&signature).ok()?;
        let token = AccessToken::decode(payload.as_slice()).ok()?;
        if token.expires_at_ms <= now_ms() {
            return None;
        }
        let mut principal = Principal::new(token.name);
        principal.groups = token.groups;
        for (name, value) in token.attributes {
            let value = match value.value? {
                Value::Utf8(text) => AttrValue::Utf8(text),
                Value::Int64(int) => AttrValue::Int64(int),
                Value::Float64(float) => AttrValue::Float64(float),
                Value::Boolean(flag) => AttrValue::Boolean(flag),
            };
            principal.attributes.insert(name, value);
        }
        Some(principal)
    }
}

fn keyed(secret: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}
