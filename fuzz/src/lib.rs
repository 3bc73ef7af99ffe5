//! What every meshgate fuzz target shares: the demo mesh loaded once and served by the
//! real gRPC service in-process (authentication, statement DoGets, the Flight SQL
//! service and the panic guard, without a listener), and the invariants every call
//! must keep.
//!
//! A panic anywhere aborts the process (libFuzzer's panic hook runs before the
//! server's own panic guard could turn it into an INTERNAL status), so "no panic"
//! holds for every target without saying so.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "fuzz harness: a broken set-up should stop the run")]

pub mod grpc;
pub mod mesh;
pub mod plans;

pub use grpc::{Call, Outcome};
pub use mesh::{Harness, harness};
