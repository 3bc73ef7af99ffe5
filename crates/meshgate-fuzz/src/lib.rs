//! meshgate's fuzz targets ([`targets`]) and what they share: the demo mesh loaded once
//! and served by the real gRPC service in-process (authentication, statement DoGets,
//! the Flight SQL service and the panic guard, without a listener), and the invariants
//! every call must keep.
//!
//! Two drivers run the same targets: libFuzzer with coverage feedback (the cargo-fuzz
//! crate in fuzz/, `scripts/fuzz.sh`), and [`smoke`], a blind mutator built with the
//! workspace that the test suite runs for a few seconds a target. Under both, a panic
//! anywhere aborts the process (their panic hooks run before the server's own panic
//! guard could turn it into an INTERNAL status), so "no panic" holds for every target
//! without saying so.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "fuzz harness: a broken set-up should stop the run")]

pub mod grpc;
pub mod mesh;
pub mod plans;
pub mod smoke;
pub mod targets;

pub use grpc::{Call, Outcome};
pub use mesh::{Harness, harness};
