//! One server per test binary, started on first use, and killed (its directory removed) when
//! the process exits.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use super::ZkServer;
use crate::HarnessError;

impl ZkServer {
    /// One server per test binary, started on first use, killed when the process exits.
    /// Tests using it must isolate themselves with [`crate::unique_path`].
    pub fn shared() -> Result<&'static ZkServer, HarnessError> {
        static SHARED: OnceLock<Result<ZkServer, String>> = OnceLock::new();
        let server = SHARED.get_or_init(|| {
            let server = ZkServer::start().map_err(|e| e.to_string())?;
            register_exit_cleanup(&server);
            Ok(server)
        });
        server.as_ref().map_err(|e| HarnessError::Timeout {
            what: "shared ZooKeeper".into(),
            detail: e.clone(),
        })
    }
}

/// Kills the shared server and removes its directory when the process exits normally
/// (`PR_SET_PDEATHSIG` covers abnormal exits).
fn register_exit_cleanup(server: &ZkServer) {
    static AT_EXIT: Mutex<Option<(u32, PathBuf)>> = Mutex::new(None);
    extern "C" fn cleanup() {
        let taken = AT_EXIT.lock().ok().and_then(|mut g| g.take());
        if let Some((pid, dir)) = taken {
            // SAFETY: kill(2) on the shared server's pid, which we started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    if let Some(child) = &server.child {
        if let Ok(mut g) = AT_EXIT.lock() {
            *g = Some((child.id(), server.dir.clone()));
        }
        // SAFETY: registering a plain extern "C" fn with atexit(3).
        unsafe { libc::atexit(cleanup) };
    }
}
