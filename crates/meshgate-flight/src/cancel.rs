//! CancelFlightInfo: the queries behind a FlightInfo's tickets stop.
//!
//! Tickets are stateless, so a ticket is known here only while its stream runs; a
//! cancelled ticket is remembered until it expires, so redeeming it later fails too.
//! Cancelling reaches the streams this server runs (a replica behind a load balancer
//! cancels only its own).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt, stream};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::error::FlightError;
use crate::tickets::now_ms;

type TicketId = [u8; 32];

#[derive(Debug)]
struct Entry {
    token: CancellationToken,
    /// Streams of this ticket running now.
    running: usize,
    expires_at_ms: u64,
}

/// The tickets running on this server, and the ones cancelled before they expire.
#[derive(Debug, Clone, Default)]
pub struct Cancellations {
    entries: Arc<Mutex<HashMap<TicketId, Entry>>>,
}

/// One running stream's registration; dropping it (the stream ended or the client
/// went away) forgets the ticket unless it was cancelled.
pub struct Running {
    registry: Cancellations,
    id: TicketId,
    pub token: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(mut entries) = self.registry.entries.lock()
            && let Some(entry) = entries.get_mut(&self.id)
        {
            entry.running = entry.running.saturating_sub(1);
            if entry.running == 0 && !entry.token.is_cancelled() {
                entries.remove(&self.id);
            }
        }
    }
}

impl Cancellations {
    /// Registers a stream of `handle` starting; refuses a cancelled ticket.
    pub fn start(&self, handle: &[u8], expires_at_ms: u64) -> Result<Running, FlightError> {
        let id = ticket_id(handle);
        let mut entries = self.entries.lock().map_err(|_| FlightError::Internal("cancellation registry".into()))?;
        let entry =
            entries.entry(id).or_insert_with(|| Entry { token: CancellationToken::new(), running: 0, expires_at_ms });
        if entry.token.is_cancelled() {
            return Err(FlightError::Cancelled);
        }
        entry.running += 1;
        Ok(Running { registry: self.clone(), id, token: entry.token.clone() })
    }

    /// Cancels `handle`'s streams now and refuses it from now on; true if any ran.
    pub fn cancel(&self, handle: &[u8], expires_at_ms: u64) -> bool {
        let now = now_ms();
        let Ok(mut entries) = self.entries.lock() else { return false };
        entries.retain(|_, entry| entry.running > 0 || entry.expires_at_ms > now);
        let entry = entries.entry(ticket_id(handle)).or_insert_with(|| Entry {
            token: CancellationToken::new(),
            running: 0,
            expires_at_ms,
        });
        entry.token.cancel();
        entry.running > 0
    }
}

fn ticket_id(handle: &[u8]) -> TicketId {
    Sha256::digest(handle).into()
}

/// `items` until `running` is cancelled, then one error and the end: the query's
/// stream is dropped, so it stops and its memory returns.
pub fn until_cancelled<T: Send + 'static>(
    items: impl Stream<Item = Result<T, FlightError>> + Send + 'static,
    running: Running,
) -> impl Stream<Item = Result<T, FlightError>> + Send + 'static {
    let items = Box::pin(items);
    stream::unfold(Some((items, running)), |state| async move {
        let (mut items, running) = state?;
        let token = running.token.clone();
        tokio::select! {
            biased;
            () = token.cancelled() => Some((Err(FlightError::Cancelled), None)),
            item = items.next() => item.map(|item| (item, Some((items, running)))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancelling_stops_a_running_stream_and_refuses_the_ticket_after() {
        let registry = Cancellations::default();
        let expires = now_ms() + 60_000;
        let running = registry.start(b"ticket", expires).unwrap();
        let endless = stream::repeat_with(|| Ok::<u32, FlightError>(1));
        let mut stream = Box::pin(until_cancelled(endless, running));
        assert!(matches!(stream.next().await, Some(Ok(1))));
        assert!(registry.cancel(b"ticket", expires));
        assert!(matches!(stream.next().await, Some(Err(FlightError::Cancelled))));
        assert!(stream.next().await.is_none());
        assert!(matches!(registry.start(b"ticket", expires), Err(FlightError::Cancelled)));
        // Other tickets are untouched, and finished ones are forgotten.
        drop(registry.start(b"other", expires).unwrap());
        assert!(registry.entries.lock().unwrap().len() == 1);
    }
}
