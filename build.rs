//! Generates what the package compiles in besides its sources:
//! - always: the descriptors `zoorpc xds` serves by reflection (`build/xds_descriptors.rs`:
//!   the ADS service's files, out of the `envoy-types` package the build uses);
//! - with the feature `dev-tools` only: the tonic client and server of `tests/proto/echo.proto`,
//!   the tests' own service (a user's service as zoorpc sees it), so a user's build of the
//!   facade compiles no proto and needs no `protoc`. `protoc` comes from `protoc-bin-vendored`
//!   unless `PROTOC` is set.

#[path = "build/xds_descriptors.rs"]
mod xds_descriptors;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Not every source of the package: only what each part names (cargo rebuilds and so
    // reruns the script itself when build.rs or build/ changes).
    println!("cargo:rerun-if-changed=build.rs");
    xds_descriptors::write(&std::path::PathBuf::from(std::env::var("OUT_DIR")?))?;
    #[cfg(feature = "dev-tools")]
    echo()?;
    Ok(())
}

#[cfg(feature = "dev-tools")]
fn echo() -> Result<(), Box<dyn std::error::Error>> {
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
