//! Compiles `proto/` with protox (pure Rust), so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time: the compiled build script is shared by every checkout that
    // uses the same target directory, so a path baked in at compile time would point
    // at whichever checkout built it first.
    let proto_dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
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
