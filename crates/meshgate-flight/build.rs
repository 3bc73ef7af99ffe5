//! Compiles `proto/` with protox (pure Rust), so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = ["meshgate/v1/tickets.proto", "meshgate/v1/session.proto"];
    for file in files {
        // Relative to this package, so every checkout sharing a target directory
        // watches its own copy.
        println!("cargo:rerun-if-changed=../../proto/{file}");
    }
    let descriptors = protox::compile(files.map(|file| proto_dir.join(file)), [&proto_dir])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
