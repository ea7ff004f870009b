//! Generates the tonic client and server of `tests/proto/echo.proto`, the tests' own service (a
//! user's service as zoorpc sees it), with the feature `dev-tools` only: a user's build of the
//! facade compiles no proto and needs no `protoc`. `protoc` comes from `protoc-bin-vendored`
//! unless `PROTOC` is set.

#[cfg(feature = "dev-tools")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        // SAFETY: build scripts are single-threaded; nothing else reads the environment now.
        unsafe { std::env::set_var("PROTOC", protoc) };
    }
    println!("cargo:rerun-if-changed=tests/proto/echo.proto");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .file_descriptor_set_path(
            std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("echo_descriptor.bin"),
        )
        .compile_protos(&["tests/proto/echo.proto"], &["tests/proto"])?;
    Ok(())
}

#[cfg(not(feature = "dev-tools"))]
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
