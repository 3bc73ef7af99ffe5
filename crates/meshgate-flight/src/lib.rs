//! meshgate-flight: the Arrow Flight SQL face of meshgate. A thin adapter: each RPC
//! decodes, delegates to the engine or catalog, and encodes; errors become gRPC
//! statuses in one place ([`error::to_status`]).

mod actions;
mod audit;
pub mod auth;
mod cancel;
mod column_metadata;
mod connection_limits;
pub mod error;
mod flight_service;
mod frames;
mod ipc_guard;
mod keys;
mod metadata;
mod metrics;
mod panic_guard;
mod parameters;
mod request_limits;
mod results;
mod revocations;
mod server;
mod service;
mod serving;
mod session;
mod sql_info;
mod statement_route;
mod tickets;
pub mod tls;
mod training;
mod updates;
mod warnings;
mod xdbc_types;

/// Messages of `proto/meshgate/v1/`: tickets and sessions.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/meshgate.v1.rs"));
}

pub use audit::PURPOSE_HEADER;
pub use auth::{Authenticator, hash_password};
pub use connection_limits::ConnectionLimits;
pub use error::FlightError;
pub use metrics::{Metrics, ProductState, product_states};
pub use server::{ServerOptions, grpc_service, serve};
pub use service::{MeshFlightSqlService, ServiceOptions};
pub use serving::{Current, Serving};
pub use session::ENDPOINTS_HEADER;
pub use tickets::TicketSigner;
