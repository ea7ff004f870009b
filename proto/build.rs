//! Generates the tonic client/server and the reflection descriptor set from `hello.proto`.
//! `protoc` comes from the `protoc-bin-vendored` crate unless `PROTOC` is set, so a fresh
//! machine needs nothing installed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        // SAFETY: build scripts are single-threaded; nothing else reads the environment now.
        unsafe { std::env::set_var("PROTOC", protoc) };
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed=proto/hello.proto");
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("hello_descriptor.bin"))
        .compile_protos(&["proto/hello.proto"], &["proto"])?;
    Ok(())
}
