//! Basic credentials against configured users' argon2 hashes.

use std::collections::BTreeMap;
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use meshgate_catalog::ConfigError;
use meshgate_policy::identity::{UserSpec, configured_principal};
use meshgate_policy::{AttrType, Principal};

use super::token::TokenSigner;

/// Clients differ on padding (the Go driver sends none): accept both.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Hashed when the user is unknown, so both failures take as long.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$bWVzaGdhdGVkdW1teQ$3l8Kz1u3b0nqjNfnWqN4b6vN0Qy2lI3sOQZ8yJ0ZbQk";

#[derive(Debug, Default)]
pub(super) struct Users {
    by_name: BTreeMap<String, User>,
}

#[derive(Debug)]
struct User {
    password_hash: String,
    principal: Arc<Principal>,
    /// Fingerprint of name and password hash: a token issued to this user is honoured
    /// only while both are configured unchanged.
    credential: Vec<u8>,
}

impl Users {
    pub fn from_spec(
        users: &[UserSpec],
        attributes: &BTreeMap<String, AttrType>,
        signer: &TokenSigner,
        errors: &mut Vec<ConfigError>,
    ) -> Self {
        let mut by_name = BTreeMap::new();
        for (index, user) in users.iter().enumerate() {
            let path = format!("auth.users[{index}]");
            if let Err(error) = PasswordHash::new(&user.password_hash) {
                errors.push(ConfigError::new(
                    format!("{path}.password_hash"),
                    format!("not an argon2 hash ({error}); make one with `meshgate hash-password`"),
                ));
            }
            let (principal, problems) = configured_principal(&user.name, &user.groups, &user.attributes, attributes);
            for (attr, problem) in problems {
                errors.push(ConfigError::new(format!("{path}.attributes.{attr}"), problem));
            }
            let credential = signer.credential(&[b"basic", user.name.as_bytes(), user.password_hash.as_bytes()]);
            let entry = User { password_hash: user.password_hash.clone(), principal: Arc::new(principal), credential };
            if by_name.insert(user.name.clone(), entry).is_some() {
                errors.push(ConfigError::new(format!("{path}.name"), format!("duplicate user '{}'", user.name)));
            }
        }
        Self { by_name }
    }

    /// The user's principal and credential fingerprint when `credentials` (base64
    /// `user:password`) match.
    pub fn verify(&self, credentials: &str) -> Option<(Arc<Principal>, Vec<u8>)> {
        let decoded = BASE64.decode(credentials).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (name, password) = decoded.split_once(':')?;
        let user = self.by_name.get(name);
        let hash = user.map_or(DUMMY_HASH, |user| user.password_hash.as_str());
        let parsed = PasswordHash::new(hash).ok()?;
        let matches = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        user.filter(|_| matches).map(|user| (Arc::clone(&user.principal), user.credential.clone()))
    }

    /// The principal of the user called `name`, whatever their password.
    pub fn principal(&self, name: &str) -> Option<Arc<Principal>> {
        self.by_name.get(name).map(|user| Arc::clone(&user.principal))
    }

    /// The principal configured now for a token issued to `name` from `credential`:
    /// `None` when the user is gone or their password hash changed.
    pub fn current(&self, name: &str, credential: &[u8]) -> Option<Arc<Principal>> {
        self.by_name.get(name).filter(|user| user.credential == credential).map(|user| Arc::clone(&user.principal))
    }
}

/// An argon2id hash of `password` in PHC format, for `auth.users[].password_hash`.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|hash| hash.to_string()).map_err(|e| e.to_string())
}
