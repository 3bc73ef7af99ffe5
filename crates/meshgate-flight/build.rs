//! Compiles `proto/` with protox (pure Rust), so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let file = proto_dir.join("meshgate/v1/tickets.proto");
    // Relative to this package, so every checkout sharing a target directory watches
    // its own copy.
    println!("cargo:rerun-if-changed=../../proto/meshgate/v1/tickets.proto");
    let descriptors = protox::compile([&file], [&proto_dir])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
