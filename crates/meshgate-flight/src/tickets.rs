//! Signed, stateless, expiring tickets and prepared-statement handles.
//!
//! A ticket carries the SQL itself (no results are parked in server memory), the
//! principal it was issued to, an expiry and its purpose, all under an HMAC-SHA256
//! signature. Any replica with the same secret can redeem it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use prost::Message;
use sha2::Sha256;

use meshgate_policy::Principal;

use crate::error::FlightError;
use crate::proto::{Purpose, SignedEnvelope, StatementPayload};

const ENVELOPE_VERSION: u32 = 1;

/// Signs and verifies ticket and handle bytes.
#[derive(Clone)]
pub struct TicketSigner {
    secret: Vec<u8>,
    ttl: Duration,
}

impl std::fmt::Debug for TicketSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketSigner").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl TicketSigner {
    pub fn new(secret: impl Into<Vec<u8>>, ttl: Duration) -> Self {
        Self { secret: secret.into(), ttl }
    }

    /// A signer with a random secret: tickets are valid on this process only.
    pub fn random(ttl: Duration) -> Self {
        let secret: [u8; 32] = rand::random();
        Self::new(secret.to_vec(), ttl)
    }

    pub fn sign(&self, sql: &str, principal: &Principal, purpose: Purpose) -> Bytes {
        self.seal(StatementPayload { sql: sql.to_owned(), ..Default::default() }, principal, purpose)
    }

    /// Signs `payload` (the statement, its bound parameters (IPC bytes of one row),
    /// its partition, its session settings) for `principal`, with an expiry.
    pub fn seal(&self, mut payload: StatementPayload, principal: &Principal, purpose: Purpose) -> Bytes {
        payload.principal = fingerprint(principal);
        payload.expires_at_ms = now_ms().saturating_add(self.ttl.as_millis() as u64);
        payload.purpose = purpose as i32;
        payload.nonce = rand::random::<[u8; 8]>().to_vec();
        self.envelope(payload.encode_to_vec())
    }

    /// Wraps `payload` with its signature.
    pub fn envelope(&self, payload: Vec<u8>) -> Bytes {
        let signature = self.mac(&payload);
        Bytes::from(SignedEnvelope { version: ENVELOPE_VERSION, payload, signature }.encode_to_vec())
    }

    /// The payload of an envelope this signer made, or `None`.
    pub fn open(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let envelope = SignedEnvelope::decode(bytes).ok()?;
        if envelope.version != ENVELOPE_VERSION {
            return None;
        }
        let mut mac = self.keyed();
        mac.update(&envelope.payload);
        mac.verify_slice(&envelope.signature).ok()?;
        Some(envelope.payload)
    }

    /// How long what this signer signs stays valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Checks the signature, purpose, expiry and principal; returns the payload.
    pub fn verify(
        &self,
        bytes: &[u8],
        principal: &Principal,
        purpose: Purpose,
    ) -> Result<StatementPayload, FlightError> {
        let what = purpose_name(purpose);
        let invalid = || FlightError::InvalidTicket(format!("{what} is not valid"));
        let payload = self.open(bytes).ok_or_else(invalid)?;
        let payload = StatementPayload::decode(payload.as_slice()).map_err(|_| invalid())?;
        if payload.purpose != purpose as i32 {
            return Err(invalid());
        }
        if payload.principal != fingerprint(principal) {
            return Err(FlightError::OtherPrincipal(format!("this {what} was issued to another principal")));
        }
        if payload.expires_at_ms <= now_ms() {
            return Err(FlightError::InvalidTicket(format!("{what} has expired; run the statement again")));
        }
        Ok(payload)
    }

    fn keyed(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length, so this cannot fail.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    }

    fn mac(&self, payload: &[u8]) -> Vec<u8> {
        let mut mac = self.keyed();
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }
}

/// Binds tickets to the principal: name, groups and attributes.
pub fn fingerprint(principal: &Principal) -> String {
    use sha2::Digest;
    // Debug quotes every name and group, so two different principals never collide.
    let digest = Sha256::digest(format!("{principal:?}").as_bytes());
    digest.iter().take(16).map(|byte| format!("{byte:02x}")).collect()
}

fn purpose_name(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::PreparedStatement => "prepared statement handle",
        Purpose::Ticket | Purpose::Unspecified => "ticket",
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let ana = Principal::new("ana");
        let mallory = Principal::new("mallory");
        let signer = TicketSigner::new(b"secret".to_vec(), Duration::from_secs(60));
        let ticket = signer.sign("SELECT 1", &ana, Purpose::Ticket);
        assert_eq!(signer.verify(&ticket, &ana, Purpose::Ticket).unwrap().sql, "SELECT 1");
        assert!(matches!(signer.verify(&ticket, &mallory, Purpose::Ticket), Err(FlightError::OtherPrincipal(_))));
        let mut promoted = ana.clone();
        promoted.groups.push("steward".into());
        assert!(signer.verify(&ticket, &promoted, Purpose::Ticket).is_err());
        // Group names that print alike still bind differently.
        let mut two = Principal::new("ana");
        two.groups = vec!["a".into(), "b".into()];
        let mut one = Principal::new("ana");
        one.groups = vec!["a, b".into()];
        let bound = signer.sign("SELECT 1", &two, Purpose::Ticket);
        assert!(signer.verify(&bound, &one, Purpose::Ticket).is_err());
        assert!(signer.verify(&ticket, &ana, Purpose::PreparedStatement).is_err());
        let other = TicketSigner::new(b"other".to_vec(), Duration::from_secs(60));
        assert!(other.verify(&ticket, &ana, Purpose::Ticket).is_err());
        let mut tampered = ticket.to_vec();
        let last = tampered.len() - 40;
        tampered[last] ^= 1;
        assert!(signer.verify(&tampered, &ana, Purpose::Ticket).is_err());
        assert!(signer.verify(b"garbage", &ana, Purpose::Ticket).is_err());
        let expired = TicketSigner::new(b"secret".to_vec(), Duration::ZERO).sign("SELECT 1", &ana, Purpose::Ticket);
        let error = signer.verify(&expired, &ana, Purpose::Ticket).unwrap_err();
        assert!(error.to_string().contains("expired"));
    }
}
