//! The descriptors `zoorpc xds` describes by server reflection: the file of
//! `envoy.service.discovery.v3.AggregatedDiscoveryService` and every file it imports,
//! transitively, taken from the descriptor set `envoy-types` publishes inside its package
//! (`src/generated/types.bin`, 3.4 MB of every Envoy proto; the crate has no API for it) and
//! written to `$OUT_DIR/ads_descriptors.bin` (24 files, 250 KB).
//!
//! Which `envoy-types`: the one this package is built against, found by `cargo metadata`
//! (`--offline --locked`: it reads what the build already resolved and downloaded, and writes
//! nothing) as the dependency `envoy_types` of this package in the resolve, never by looking
//! through cargo's caches. The build running this script holds no lock `cargo metadata` waits
//! for (`cargo build`, `test`, `clippy`, a fresh clone's build and `outside/`'s all ran it in
//! under a second); should another cargo hold the package cache for long (a download), the
//! wait ends after [`METADATA_LIMIT`] in the fallback below, never in a hung build.
//!
//! The resolve is this package's own (its workspace's `Cargo.lock`): built as a dependency of
//! another workspace whose lock picks another `envoy-types` 0.7 release, the descriptors come
//! from the one this package's lock names if it is downloaded (a field a newer release added
//! is then missing from what reflection describes), or else not at all (below).
//!
//! Not found (e.g. `cargo metadata` cannot run, or a future `envoy-types` moved the file): the
//! build goes on with a cargo warning and an empty set, and `zoorpc xds` then says at start that
//! its reflection describes health and reflection only. The program works the same; zoorpc's
//! own tests fail on it (they list the ADS service by reflection).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use prost::Message;
use prost_types::FileDescriptorSet;

/// The file of the ADS service in Envoy's descriptor set.
const ADS_FILE: &str = "envoy/service/discovery/v3/ads.proto";
/// The one service the descriptors keep (any other a file of the closure defines is not served).
const ADS_SERVICE: &str = "AggregatedDiscoveryService";
/// Where `envoy-types` keeps its descriptor set, inside its package.
const TYPES_BIN: &str = "src/generated/types.bin";
/// The longest `cargo metadata` may take (about 0.5 s here).
const METADATA_LIMIT: Duration = Duration::from_secs(120);
/// What `zoorpc xds` includes.
pub const OUT_FILE: &str = "ads_descriptors.bin";

/// Writes `$OUT_DIR/ads_descriptors.bin`: the ADS descriptors, or an empty set and a cargo
/// warning saying why not.
pub fn write(out_dir: &Path) -> std::io::Result<()> {
    let set = match ads_descriptors() {
        Ok(set) => set,
        Err(why) => {
            println!("cargo:warning=zoorpc xds will describe no ADS service by reflection: {why}");
            Vec::new()
        }
    };
    std::fs::write(out_dir.join(OUT_FILE), set)
}

/// The encoded closure of [`ADS_FILE`] in the `envoy-types` this build uses.
fn ads_descriptors() -> Result<Vec<u8>, String> {
    let types_bin = envoy_types_dir()?.join(TYPES_BIN);
    println!("cargo:rerun-if-changed={}", types_bin.display());
    let bytes = std::fs::read(&types_bin)
        .map_err(|e| format!("cannot read {}: {e}", types_bin.display()))?;
    let set = FileDescriptorSet::decode(bytes.as_slice())
        .map_err(|e| format!("{} is no FileDescriptorSet: {e}", types_bin.display()))?;
    Ok(closure(set, ADS_FILE)?.encode_to_vec())
}

/// `root` and every file it imports, transitively, in the set's order (protoc's: a file after
/// its imports), with no service but [`ADS_SERVICE`].
fn closure(set: FileDescriptorSet, root: &str) -> Result<FileDescriptorSet, String> {
    let mut needed = BTreeSet::new();
    let mut pending = vec![root.to_owned()];
    while let Some(name) = pending.pop() {
        if needed.contains(&name) {
            continue;
        }
        let file = set
            .file
            .iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| format!("{name} is not in envoy-types' descriptor set"))?;
        pending.extend(file.dependency.iter().cloned());
        needed.insert(name);
    }
    let mut file: Vec<_> = set
        .file
        .into_iter()
        .filter(|f| needed.contains(f.name()))
        .collect();
    for f in &mut file {
        f.service.retain(|s| s.name() == ADS_SERVICE);
    }
    Ok(FileDescriptorSet { file })
}

/// The package directory of the `envoy-types` this package depends on, from `cargo metadata`.
fn envoy_types_dir() -> Result<PathBuf, String> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")
        .map_err(|_| "CARGO_MANIFEST_DIR is not set (not run by cargo?)".to_owned())?;
    let manifest = Path::new(&manifest_dir).join("Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["metadata", "--format-version", "1", "--offline", "--locked"])
        .arg("--manifest-path")
        .arg(&manifest);
    if let Ok(target) = std::env::var("TARGET") {
        // Only the packages of the platform built for: the others may not be downloaded.
        command.args(["--filter-platform", &target]);
    }
    let stdout = run_bounded(command, METADATA_LIMIT)?;
    let metadata: serde_json::Value = serde_json::from_slice(&stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let id_of = |manifest_path: &Path| {
        packages
            .iter()
            .find(|p| p["manifest_path"].as_str().map(Path::new) == Some(manifest_path))
            .and_then(|p| p["id"].as_str().map(str::to_owned))
    };
    let this = id_of(&manifest).ok_or("cargo metadata does not list this package")?;
    let nodes = metadata["resolve"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let envoy_types = nodes
        .iter()
        .find(|n| n["id"].as_str() == Some(&this))
        .and_then(|n| n["deps"].as_array())
        .and_then(|deps| deps.iter().find(|d| d["name"] == "envoy_types"))
        .and_then(|d| d["pkg"].as_str())
        .ok_or("this package does not depend on envoy-types in cargo metadata's resolve")?;
    if let Some(root) = metadata["workspace_root"].as_str() {
        // Another envoy-types after an update: read its descriptors instead.
        println!(
            "cargo:rerun-if-changed={}",
            Path::new(root).join("Cargo.lock").display()
        );
    }
    packages
        .iter()
        .find(|p| p["id"].as_str() == Some(envoy_types))
        .and_then(|p| p["manifest_path"].as_str())
        .and_then(|path| Path::new(path).parent())
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("cargo metadata lists no manifest of {envoy_types}"))
}

/// Runs `command` to its end within `limit` (killed past it): its stdout, or why not.
fn run_bounded(mut command: Command, limit: Duration) -> Result<Vec<u8>, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    // Both pipes read at once, so a full one never stalls the child.
    let (done, read) = mpsc::channel();
    read_in_background(child.stdout.take(), true, done.clone());
    read_in_background(child.stderr.take(), false, done);
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        match read.recv_timeout(limit) {
            Ok((true, bytes)) => stdout = bytes,
            Ok((false, bytes)) => stderr = bytes,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "cargo metadata did not answer within {} s (another cargo holding the \
                     package cache?)",
                    limit.as_secs()
                ));
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("cannot wait for cargo metadata: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo metadata failed ({status}): {}",
            String::from_utf8_lossy(&stderr).trim()
        ));
    }
    Ok(stdout)
}

/// Reads `pipe` to its end on a thread of its own, then sends what it read, tagged.
fn read_in_background<R: Read + Send + 'static>(
    pipe: Option<R>,
    tag: bool,
    done: mpsc::Sender<(bool, Vec<u8>)>,
) {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error ends the output there; the exit status and the JSON parse judge it.
            let _ = pipe.read_to_end(&mut bytes);
        }
        let _ = done.send((tag, bytes));
    });
}
