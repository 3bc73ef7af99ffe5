//! Stage tokens: how a worker knows a stage request comes from a meshgate gateway.
//!
//! The gateway signs a short-lived token with the ticket secret (`MESHGATE_TICKET_SECRET`,
//! shared by the gateway and its workers) for each distributed query and sends it with
//! every request to a worker; workers send it on to the workers they read from. A
//! worker refuses any request without a valid, unexpired token: it serves the gateway
//! and its fellow workers, never a user.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The gRPC metadata key the token travels in.
pub const WORKER_TOKEN_HEADER: &str = "x-meshgate-worker-token";

const VERSION: &str = "mgw1";

/// Why a worker refused a stage request (sent back as UNAUTHENTICATED).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    #[error("stage request refused: it carries no meshgate worker token ({WORKER_TOKEN_HEADER})")]
    Missing,
    #[error("stage request refused: its worker token is malformed")]
    Malformed,
    #[error("stage request refused: its worker token is not signed with this worker's secret")]
    BadSignature,
    #[error("stage request refused: its worker token expired")]
    Expired,
}

/// Signs and checks stage tokens with one secret.
#[derive(Clone)]
pub struct StageTokens {
    secret: std::sync::Arc<[u8]>,
}

impl std::fmt::Debug for StageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StageTokens { secret: <secret> }")
    }
}

impl StageTokens {
    pub fn new(secret: &[u8]) -> Self {
        Self { secret: std::sync::Arc::from(secret) }
    }

    /// A token valid for `ttl` from now: `mgw1.<expiry unix seconds>.<nonce>.<hmac>`.
    pub fn mint(&self, ttl: Duration) -> String {
        let expiry = unix_now().saturating_add(ttl.as_secs().max(1));
        let nonce = hex(&rand::random::<[u8; 12]>());
        let body = format!("{VERSION}.{expiry}.{nonce}");
        let mac = hex(&self.mac(&body));
        format!("{body}.{mac}")
    }

    /// Checks `token`'s signature (in constant time) and expiry.
    pub fn verify(&self, token: Option<&str>) -> Result<(), TokenRefusal> {
        let token = token.ok_or(TokenRefusal::Missing)?;
        let (body, mac) = token.rsplit_once('.').ok_or(TokenRefusal::Malformed)?;
        let mut parts = body.split('.');
        let (Some(VERSION), Some(expiry), Some(_nonce), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenRefusal::Malformed);
        };
        let expiry: u64 = expiry.parse().map_err(|_| TokenRefusal::Malformed)?;
        let mac = unhex(mac).ok_or(TokenRefusal::Malformed)?;
        let mut check = self.keyed();
        check.update(body.as_bytes());
        check.verify_slice(&mac).map_err(|_| TokenRefusal::BadSignature)?;
        if unix_now() > expiry {
            return Err(TokenRefusal::Expired);
        }
        Ok(())
    }

    fn keyed(&self) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(b"meshgate worker stage token\0");
        mac
    }

    fn mac(&self, body: &str) -> Vec<u8> {
        let mut mac = self.keyed();
        mac.update(body.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_their_secret_and_before_expiry() {
        let tokens = StageTokens::new(b"one secret");
        let token = tokens.mint(Duration::from_secs(60));
        assert_eq!(tokens.verify(Some(&token)), Ok(()));
        assert_eq!(StageTokens::new(b"another").verify(Some(&token)), Err(TokenRefusal::BadSignature));
        assert_eq!(tokens.verify(None), Err(TokenRefusal::Missing));
        assert_eq!(tokens.verify(Some("mgw1.1.2")), Err(TokenRefusal::Malformed));
        // A later expiry with the old signature is refused.
        let (body, mac) = token.rsplit_once('.').unwrap_or_default();
        let mut parts: Vec<&str> = body.split('.').collect();
        let later = format!("{}", u64::MAX);
        parts[1] = &later;
        assert_eq!(tokens.verify(Some(&format!("{}.{mac}", parts.join(".")))), Err(TokenRefusal::BadSignature));
        // An expired token, correctly signed.
        let body = format!("{VERSION}.{}.00", unix_now() - 10);
        let expired = format!("{body}.{}", hex(&tokens.mac(&body)));
        assert_eq!(tokens.verify(Some(&expired)), Err(TokenRefusal::Expired));
    }
}
