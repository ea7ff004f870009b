//! The bodies of zoorpc's programs, shared by the `zoorpc-*` binaries and the examples, and
//! what they have in common: running on a Tokio runtime, and the client programs' call loop.
//!
//! Not part of the `zoorpc` API (hidden from its docs): public only because each binary and
//! example is a crate of its own; what is here changes with the programs, without notice.

use std::fmt::Display;
use std::future::Future;
use std::io::Write;
use std::time::Duration;

pub mod args;
pub mod call;
pub mod client;
pub mod console;
pub mod designate;
#[cfg(feature = "dev-tools")]
pub mod echo;
pub mod ha_client;
pub mod ha_server;
pub mod hello;
pub mod ls;
pub mod master;
pub mod master_job;
pub mod metrics;
pub mod provider;
pub mod proxy;
pub mod tls;
pub mod watch;
pub mod xds;
#[cfg(feature = "dev-tools")]
pub mod zookeeper;

pub use args::{
    CallLoopArgs, CuratorArgs, ListenArgs, LogArgs, LogLevel, MetricsArg, SessionArg, ZkArg,
};

/// clap's check of a znode path argument: a path ZooKeeper would refuse is a usage error
/// (status 2, `; see --help`), found before anything connects.
pub fn znode_path(text: &str) -> Result<String, String> {
    zoorpc_registry::validate_path(text)
        .map(str::to_owned)
        .map_err(|e| e.to_string())
}

/// clap's check of an election path (`--path`, `zoorpc master PATH`): a [`znode_path`] that is
/// not one of an election's own nodes (`<path>.epoch`, ...), refused before anything connects.
pub fn election_path(text: &str) -> Result<String, String> {
    zoorpc_registry::election::validate_election_path(text)
        .map(str::to_owned)
        .map_err(|e| e.to_string())
}

/// [`znode_path`], or `/` (a place to start a walk from, which holds no provider itself).
pub fn znode_path_or_root(text: &str) -> Result<String, String> {
    if text == "/" {
        Ok(text.to_owned())
    } else {
        znode_path(text)
    }
}

/// clap's check of `--zk`: a connect string that cannot be parsed is a usage error.
pub fn connect_string(text: &str) -> Result<String, String> {
    zoorpc_registry::ConnectString::parse(text)
        .map(|_| text.to_owned())
        .map_err(|e| e.to_string())
}

/// clap's check of a host name to advertise: an IP address or a DNS name (whether it reaches
/// the server is checked at startup).
///
/// ```
/// use zoorpc::apps::host_name;
/// assert!(host_name("127.0.0.1").is_ok() && host_name("::1").is_ok());
/// assert!(host_name("svc-1.example.org").is_ok());
/// for bad in ["", "a b", "a/b", "%zz", "-1", "0.5.", &"x".repeat(300)] {
///     assert!(host_name(bad).is_err(), "{bad}");
/// }
/// ```
pub fn host_name(text: &str) -> Result<String, String> {
    let ip = text.trim_start_matches('[').trim_end_matches(']');
    if ip.parse::<std::net::IpAddr>().is_ok() {
        return Ok(text.to_owned());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if text.len() <= 253 && text.split('.').all(label_ok) {
        Ok(text.to_owned())
    } else {
        Err("expected an IP address or a host name (letters, digits, '-' and '.')".to_owned())
    }
}

/// clap's check of a contender's address or name (`host:port`, or a name such as `job-7`): what
/// the library takes as the master node's data, with an IPv6 address in brackets
/// (`[::1]:9091`), the one form every program writes and reads: `::1:9091` could never match
/// a master node written by another program, and is refused naming the bracketed form.
///
/// ```
/// use zoorpc::apps::contender_address;
/// for good in ["127.0.0.1:9091", "[::1]:9091", "job-7", "ha-1.example.org:9091"] {
///     assert!(contender_address(good).is_ok(), "{good}");
/// }
/// assert!(contender_address("::1:1234").unwrap_err().contains("write [::1]:1234"));
/// assert!(contender_address("::1").unwrap_err().contains("[::1]:PORT"));
/// assert!(contender_address("a b").is_err());
/// ```
pub fn contender_address(text: &str) -> Result<String, String> {
    let address = zoorpc_registry::election::validate_address(text).map_err(|e| e.to_string())?;
    let ipv6 = |host: &str| host.parse::<std::net::Ipv6Addr>().is_ok();
    if !address.starts_with('[') && address.matches(':').count() > 1 {
        // `::1:1234` is also an address of its own; `::1` port 1234 is the likely meaning.
        return Err(match address.rsplit_once(':') {
            Some((host, port)) if ipv6(host) => {
                format!("an IPv6 address needs brackets: write [{host}]:{port}")
            }
            _ if ipv6(address) => {
                format!("an IPv6 address needs brackets and a port: write [{address}]:PORT")
            }
            _ => "expected host:port (an IPv6 address in brackets: [::1]:9091)".to_owned(),
        });
    }
    Ok(address.to_owned())
}

/// The learn_* examples' command line, `[HOST:PORT] [WORD]`: the ZooKeeper connect string
/// (default `127.0.0.1:2181`) and, for an example that takes one, a word of `words`. `--help`
/// prints `usage` and exits 0; anything else (a flag, a connect string that does not parse, a
/// word not in `words`, one argument too many) prints `usage` on stderr and exits 2.
pub fn learn_args(usage: &str, words: &[&str]) -> (String, Option<String>) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let zk_ok = |zk: &String| zoorpc_registry::ConnectString::parse(zk).is_ok();
    match args.as_slice() {
        [] => return ("127.0.0.1:2181".to_owned(), None),
        [zk] if zk_ok(zk) => return (zk.clone(), None),
        [zk, word] if zk_ok(zk) && words.contains(&word.as_str()) => {
            return (zk.clone(), Some(word.clone()));
        }
        [help] if help == "--help" || help == "-h" => {
            println!("{usage}");
            std::process::exit(0)
        }
        _ => {}
    }
    eprintln!("{usage}");
    std::process::exit(2)
}

/// The `--zk-auth-file` credential, or the exit status 2 after printing why the file is not
/// usable (checked before anything starts).
pub fn credential_or_exit(zk: &ZkArg) -> Result<Option<zoorpc_registry::ZkCredential>, i32> {
    usage_checked(zk.credential())
}

/// What a program that calls providers reads before it starts: the `--zk-auth-file` credential
/// and the TLS files.
pub fn consumer_access(
    zk: &ZkArg,
    tls: &tls::ConsumerTlsArgs,
) -> Result<
    (
        Option<zoorpc_registry::ZkCredential>,
        Option<zoorpc_consumer::ConsumerTls>,
    ),
    String,
> {
    Ok((zk.credential()?, tls.load()?))
}

/// Runs a program's `body` once what it read before starting (`settings`: the files its flags
/// name, checks clap cannot make) is usable and its `--metrics` (if any) are served; returns the
/// body's exit status, or after one error line 2 for unusable settings (a usage error), 1 for
/// metrics that cannot be served.
pub fn run_checked<S>(
    settings: Result<S, String>,
    metrics: &MetricsArg,
    body: impl FnOnce(S) -> i32,
) -> i32 {
    let settings = match usage_checked(settings) {
        Ok(settings) => settings,
        Err(status) => return status,
    };
    if let Err(e) = metrics.serve() {
        eprintln!("error: {}", crate::cli::error_line(&e));
        return 1;
    }
    body(settings)
}

/// `value`, or the exit status 2 after printing its error as one line.
fn usage_checked<T>(value: Result<T, String>) -> Result<T, i32> {
    value.map_err(|e| {
        eprintln!("error: {}", crate::cli::error_line(&e));
        2
    })
}

/// Opens a ZooKeeper session for a one-shot command, with `credential` if one is given: fails
/// within `connect_timeout` (5 s) with an error naming the connect string when ZooKeeper is out
/// of reach.
pub async fn open_session(
    zk: &str,
    credential: Option<zoorpc_registry::ZkCredential>,
) -> Result<zoorpc_registry::Session, String> {
    zoorpc_registry::Session::connect(
        zoorpc_registry::SessionConfig::new(zk)
            .connect_timeout(Duration::from_secs(5))
            .credential(credential),
    )
    .await
    .map_err(|e| e.to_string())
}

/// Milliseconds since the Unix epoch, by this machine's clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A duration for people: `850ms`, `12.3s`, `4m05s`, `2h03m`.
///
/// ```
/// use zoorpc::apps::human_age;
/// assert_eq!(human_age(850), "850ms");
/// assert_eq!(human_age(12_345), "12.3s");
/// assert_eq!(human_age(245_000), "4m05s");
/// assert_eq!(human_age(7_380_000), "2h03m");
/// assert_eq!(human_age(-5), "0ms");
/// ```
pub fn human_age(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000),
        _ => format!("{}h{:02}m", ms / 3_600_000, (ms % 3_600_000) / 60_000),
    }
}

/// A session id as ZooKeeper's tools print it (`0x1000a2b3c4d0000`).
///
/// ```
/// assert_eq!(zoorpc::apps::session_hex(0x1000a2b3c4d0000), "0x1000a2b3c4d0000");
/// ```
pub fn session_hex(id: i64) -> String {
    format!("{id:#x}")
}

/// Prints one line on stdout, like `println!`, but never panics: a closed stdout (the reader of
/// a pipe gone, as with `| head -n 1`) must not take a server down or cut its graceful stop
/// short. (A call loop uses [`write_line`] to stop when nobody reads it.)
#[macro_export]
#[doc(hidden)]
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = $crate::apps::write_line(format_args!($($arg)*));
    }};
}

/// The body of [`say!`]: writes `line` and a newline to stdout and flushes; `false` on failure.
pub fn write_line(line: std::fmt::Arguments<'_>) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
}

/// Runs a program's body on a new Tokio runtime and returns its exit status: the body's own, or
/// 1 after printing `error: <e>` when it fails (or the runtime cannot start).
///
/// ```
/// use zoorpc::apps::block_on;
/// assert_eq!(block_on(async { Ok::<i32, String>(3) }), 3);
/// assert_eq!(block_on(async { Err::<i32, _>("ZooKeeper out of reach") }), 1); // and `error: ...` on stderr
/// ```
pub fn block_on<E: Display>(body: impl Future<Output = Result<i32, E>>) -> i32 {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let status = match runtime.block_on(body) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("error: {}", crate::cli::error_line(&e.to_string()));
            1
        }
    };
    // The program exits with this status right away. Tearing the runtime down first would drop
    // the ZooKeeper client's own tasks while others still run, and zookeeper-client panics in a
    // watch whose sender goes that way ("Canceled"): noise on stderr at every exit.
    std::mem::forget(runtime);
    status
}

/// Makes `calls` calls, one per `interval` (zero: one after another, no pause), printing
/// `ok <who answered>` or `err <reason>` for each and `calls=N ok=N failed=N` last; returns how
/// many failed.
pub async fn call_loop<F, Fut, E>(calls: u64, interval: Duration, mut call: F) -> u64
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<String, E>>,
    E: Display,
{
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut pace = Pace::new(interval);
    for _ in 0..calls {
        pace.next().await;
        match call().await {
            Ok(who) => {
                ok += 1;
                if !write_line(format_args!("ok {who}")) {
                    // Nobody reads the results any more: stop calling.
                    return failed;
                }
            }
            Err(e) => {
                failed += 1;
                if !write_line(format_args!(
                    "err {}",
                    crate::cli::with_flags(&e.to_string())
                )) {
                    return failed;
                }
            }
        }
    }
    crate::say!("calls={calls} ok={ok} failed={failed}");
    failed
}

/// The pace of a call loop: one call per interval, or with a zero interval no pause at all
/// (tokio's `interval` panics on zero; this yields to the runtime between calls instead).
///
/// ```
/// use std::time::{Duration, Instant};
/// use zoorpc::apps::Pace;
/// tokio::runtime::Runtime::new()?.block_on(async {
///     let started = Instant::now();
///     let mut pace = Pace::new(Duration::from_millis(20));
///     for _ in 0..3 {
///         pace.next().await; // the first at once, then one every 20 ms
///     }
///     assert!(started.elapsed() >= Duration::from_millis(40));
///     let mut flat_out = Pace::new(Duration::ZERO);
///     flat_out.next().await; // no pause, no panic
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Pace(Option<tokio::time::Interval>);

impl Pace {
    /// A pace of one call per `interval`; the first call is due at once.
    pub fn new(interval: Duration) -> Pace {
        Pace((!interval.is_zero()).then(|| {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker
        }))
    }

    /// Waits until the next call is due.
    pub async fn next(&mut self) {
        match &mut self.0 {
            Some(ticker) => {
                ticker.tick().await;
            }
            None => tokio::task::yield_now().await,
        }
    }
}
