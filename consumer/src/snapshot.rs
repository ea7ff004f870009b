//! The last known provider list on disk (`ConsumerConfig::snapshot_path`), so a consumer that
//! starts while ZooKeeper is out of reach can still serve.
//!
//! Guarantees:
//! - Written atomically on every change of the live list: a temporary file beside the target is
//!   written and fsynced, renamed over the target, and the directory fsynced. A reader sees the
//!   old list or the new one, never a mix; a crash leaves one of them.
//! - Read only at start, and only when ZooKeeper cannot be reached within the connect timeout.
//!   Staleness rule: a snapshot of any age is used (a stale list beats none, and its dead
//!   endpoints are ejected and failed over like any other), but its age is logged as a warning
//!   and exposed by `Consumer::snapshot_age`; the first live listing replaces it entirely.
//! - A snapshot of another base path, a newer format, or an unreadable file is refused with a
//!   message naming the file; a bad provider line is skipped with a warning.
//!
//! Format (text, one record a line): `zoorpc-snapshot 1`, `base <path>`, `written-ms <unix ms>`,
//! then `<node name> <czxid> <url>` per provider.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::warn;
use zoorpc_registry::{ProviderNode, ProviderUrl};

const HEADER: &str = "zoorpc-snapshot 1";

/// A provider list read back from disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// The base path the list was taken under.
    pub(crate) base_path: String,
    /// When it was written.
    pub(crate) written_at: SystemTime,
    /// The providers, as the live list held them.
    pub(crate) providers: Vec<ProviderNode>,
}

impl Snapshot {
    /// How old the snapshot is now (zero if the clock went back).
    pub(crate) fn age(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.written_at)
            .unwrap_or_default()
    }
}

/// Writes `providers` of `base_path` to `path` atomically (write, fsync, rename, fsync dir).
pub(crate) fn write(
    path: &Path,
    base_path: &str,
    providers: &[ProviderNode],
) -> std::io::Result<()> {
    let written_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let mut text = format!("{HEADER}\nbase {base_path}\nwritten-ms {written_ms}\n");
    for p in providers {
        text.push_str(&format!("{} {} {}\n", p.name, p.created, p.url));
    }
    let tmp = temporary_beside(path);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the directory is.
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Reads the snapshot at `path`, which must be of `base_path`. The error names the file.
pub(crate) fn read(path: &Path, base_path: &str) -> Result<Snapshot, String> {
    let named = |reason: String| format!("snapshot {}: {reason}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| named(format!("cannot read it: {e}")))?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(named(format!(
            "not a snapshot (the first line is not {HEADER:?})"
        )));
    }
    let base = lines
        .next()
        .and_then(|l| l.strip_prefix("base "))
        .ok_or_else(|| named("no base line".into()))?;
    if base != base_path {
        return Err(named(format!("it is of base path {base}, not {base_path}")));
    }
    let written_ms: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("written-ms "))
        .and_then(|ms| ms.parse().ok())
        .ok_or_else(|| named("no written-ms line".into()))?;
    let mut providers = Vec::new();
    for line in lines {
        let mut fields = line.splitn(3, ' ');
        let parsed = match (fields.next(), fields.next(), fields.next()) {
            (Some(name), Some(created), Some(url)) if !name.is_empty() => created
                .parse()
                .ok()
                .zip(url.parse::<ProviderUrl>().ok())
                .map(|(created, url)| ProviderNode {
                    name: name.into(),
                    url,
                    created,
                }),
            _ => None,
        };
        match parsed {
            Some(p) => providers.push(p),
            None => warn!(file = %path.display(), line, "skipping a bad line of the snapshot"),
        }
    }
    Ok(Snapshot {
        base_path: base.to_owned(),
        written_at: UNIX_EPOCH + Duration::from_millis(written_ms),
        providers,
    })
}

/// `<dir>/.<name>.tmp-<pid>`: beside the target, so the rename stays in one file system.
fn temporary_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "snapshot".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_another_base_or_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list");
        let providers = vec![ProviderNode {
            name: "provider0000000001".into(),
            url: "http://127.0.0.1:1?weight=5".parse().unwrap(),
            created: 42,
        }];
        write(&path, "/registry", &providers).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..2], ["zoorpc-snapshot 1", "base /registry"]);
        assert!(lines[2].starts_with("written-ms "));
        assert_eq!(
            lines[3],
            "provider0000000001 42 http://127.0.0.1:1?weight=5"
        );
        let snapshot = read(&path, "/registry").unwrap();
        assert_eq!(snapshot.providers, providers);
        assert!(snapshot.age() < Duration::from_secs(5));
        let err = read(&path, "/other").unwrap_err();
        assert!(
            err.ends_with("it is of base path /registry, not /other") && err.contains("list"),
            "{err}"
        );
        std::fs::write(&path, "garbage").unwrap();
        assert!(
            read(&path, "/registry")
                .unwrap_err()
                .contains("not a snapshot")
        );
        let text = format!("{HEADER}\nbase /r\nwritten-ms 1\nbad line\np 1 http://h:2\n");
        std::fs::write(&path, text).unwrap();
        assert_eq!(read(&path, "/r").unwrap().providers.len(), 1);
        // Only the target is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
