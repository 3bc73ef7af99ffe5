//! Mesh files and policies as YAML: any text is loaded strictly, and refused with
//! every error at a path and with a message; a file that loads has its policies and
//! users checked against the demo mesh's products, with the same guarantees.

use crate::harness;
use crate::mesh::{SECRET, repo_root};
use meshgate_catalog::{ConfigErrors, load_mesh_str};
use meshgate_flight::auth::Authenticator;
use meshgate_policy::load_policies;

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if leaves_the_sandbox(text) {
        return;
    }
    let harness = harness();
    let config = match load_mesh_str(text, &repo_root().join("testdata")) {
        Ok(config) => config,
        Err(errors) => return explained(&errors, text),
    };
    if let Err(errors) = load_policies(&config, harness.engine.snapshot()) {
        explained(&errors, text);
    }
    if let Err(errors) = Authenticator::from_config(&config, harness.engine.policy().attributes(), SECRET) {
        explained(&errors, text);
    }
}

/// Every error names where it is and what is wrong.
fn explained(errors: &ConfigErrors, text: &str) {
    assert!(!errors.0.is_empty(), "refused without an error: {text:?}");
    for error in &errors.0 {
        assert!(!error.path.is_empty() && !error.message.is_empty(), "an error without a path or message: {error:?}");
    }
}

/// Paths outside testdata/ (absolute, `..`, `~`): the loader reads the files a mesh
/// names, and an operator's config may name any; fuzzing stays in the repo's files.
fn leaves_the_sandbox(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.contains("..")
        || text.contains('~')
        || text.contains('\\')
        || bytes.iter().enumerate().any(|(at, &byte)| {
            byte == b'/' && (at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || b"_-.".contains(&bytes[at - 1])))
        })
}
