//! Ids refused until they would have expired anyway: closed sessions. Stateless
//! cookies cannot be recalled from the client, so this server remembers the closed
//! ones (only until their own expiry, so the set stays small).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::tickets::now_ms;

#[derive(Debug, Clone, Default)]
pub struct Revocations {
    ids: Arc<Mutex<HashMap<Vec<u8>, u64>>>,
}

impl Revocations {
    /// Refuses `id` until `expires_at_ms`.
    pub fn insert(&self, id: Vec<u8>, expires_at_ms: u64) {
        let now = now_ms();
        if let Ok(mut ids) = self.ids.lock() {
            ids.retain(|_, expires| *expires > now);
            ids.insert(id, expires_at_ms);
        }
    }

    pub fn contains(&self, id: &[u8]) -> bool {
        self.ids.lock().map(|ids| ids.get(id).is_some_and(|expires| *expires > now_ms())).unwrap_or(true)
    }
}
