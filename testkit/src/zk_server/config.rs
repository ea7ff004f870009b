//! A test server's settings, and the `zoo.cfg` written from them.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

/// Settings of a test server.
///
/// ```
/// use std::time::Duration;
/// use zoorpc_testkit::ZkServerConfig;
/// let config = ZkServerConfig { tick_time: Duration::from_millis(100), ..ZkServerConfig::default() };
/// assert_eq!(config.port, None); // a free port
/// assert_eq!(ZkServerConfig::default().tick_time, Duration::from_millis(200));
/// assert_eq!(ZkServerConfig::MAX_TICK_TIME.as_millis(), 7_158_278); // i32::MAX ms / 300
/// ```
#[derive(Clone, Debug)]
pub struct ZkServerConfig {
    /// ZooKeeper's `tickTime`; sessions may last 2..300 ticks.
    pub tick_time: Duration,
    /// The client port on 127.0.0.1; `None` picks a free one. (A [`crate::ZkEnsemble`] always
    /// picks free ports for its members.)
    pub port: Option<u16>,
}

impl ZkServerConfig {
    /// The longest `tick_time` a server starts with: ZooKeeper keeps `tickTime` and the session
    /// bounds (up to 300 ticks here) in 32-bit ints of milliseconds, and refuses a config
    /// where they overflow.
    pub const MAX_TICK_TIME: Duration = Duration::from_millis(i32::MAX as u64 / 300);
}

impl Default for ZkServerConfig {
    fn default() -> Self {
        ZkServerConfig {
            tick_time: Duration::from_millis(200),
            port: None,
        }
    }
}

/// Writes `zoo.cfg` (and creates `data/`) in `dir`; `extra` is appended (an ensemble's
/// `server.N` lines).
pub(crate) fn write_config(
    dir: &Path,
    ip: Ipv4Addr,
    port: u16,
    config: &ZkServerConfig,
    extra: &str,
) -> std::io::Result<()> {
    let tick = config.tick_time.as_millis().max(1);
    let cfg = format!(
        "tickTime={tick}\n\
         dataDir={data}\n\
         clientPort={port}\n\
         clientPortAddress={ip}\n\
         minSessionTimeout={min}\n\
         maxSessionTimeout={max}\n\
         maxClientCnxns=0\n\
         admin.enableServer=false\n\
         4lw.commands.whitelist=ruok,srvr,stat,mntr,cons\n\
         preAllocSize=1024\n\
         snapCount=100000\n\
         {extra}",
        data = dir.join("data").display(),
        min = tick * 2,
        max = (tick * 300).max(60_000),
    );
    std::fs::create_dir_all(dir.join("data"))?;
    std::fs::write(dir.join("zoo.cfg"), cfg)
}
