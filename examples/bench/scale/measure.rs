//! What `scale` measures with, outside the consumers: ZooKeeper's own counters (`mntr`), this
//! process's resident memory and CPU time.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// ZooKeeper's request and response-byte counters at one instant (or their change).
#[derive(Clone, Copy, Debug)]
pub struct Counters {
    pub requests: f64,
    pub response_bytes: f64,
}

impl std::ops::Sub for Counters {
    type Output = Counters;
    fn sub(self, earlier: Counters) -> Counters {
        Counters {
            requests: self.requests - earlier.requests,
            response_bytes: self.response_bytes - earlier.response_bytes,
        }
    }
}

impl Counters {
    /// Both counts divided by `n` (per event, per second).
    pub fn per(self, n: f64) -> Counters {
        Counters {
            requests: self.requests / n,
            response_bytes: self.response_bytes / n,
        }
    }
}

/// Reads `mntr` from the first server of the connect string.
pub fn mntr(zk: &str) -> Result<Counters, String> {
    let first = zk.split(',').next().unwrap_or(zk);
    let address = first.split('/').next().unwrap_or(first);
    let ask = || -> std::io::Result<String> {
        let mut stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"mntr")?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        Ok(reply)
    };
    let reply = ask().map_err(|e| format!("asking {address} for mntr: {e}"))?;
    let values: HashMap<&str, f64> = reply
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('\t')?;
            Some((key, value.trim().parse().ok()?))
        })
        .collect();
    let get = |key: &str| {
        values.get(key).copied().ok_or_else(|| {
            format!(
                "{address} did not report {key} in mntr (is `mntr` in 4lw.commands.whitelist? it answered {:?})",
                reply.chars().take(200).collect::<String>()
            )
        })
    };
    Ok(Counters {
        requests: get("zk_packets_received")?,
        response_bytes: get("zk_response_bytes")?,
    })
}

/// Resident memory of this process in KiB.
pub fn rss_kib() -> Result<f64, String> {
    rss_kib_of("self")
}

/// Resident memory of the process `pid` (or `self`) in KiB.
pub fn rss_kib_of(pid: &str) -> Result<f64, String> {
    let file = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&file).map_err(|e| format!("reading {file}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS in {file}"))
}

/// CPU time (user and system) this process has used, in ms: what the consumers' side costs,
/// whatever else the machine runs (`/proc/self/stat`, in clock ticks of 10 ms).
pub fn cpu_ms() -> Result<f64, String> {
    cpu_ms_of("self")
}

/// [`cpu_ms`] of the process `pid` (or `self`).
pub fn cpu_ms_of(pid: &str) -> Result<f64, String> {
    let file = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&file).map_err(|e| format!("reading {file}: {e}"))?;
    // After the command name (in parentheses): state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => Ok((user + system) * 10.0),
        _ => Err(format!("no utime/stime in {file}")),
    }
}
