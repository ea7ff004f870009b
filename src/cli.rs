//! What every program's command line shares: one clap parse per program ([`parse`]) whose
//! usage errors are one line and status 2, the value parsers that give a flag the same meaning
//! and range in every program ([`number`], [`millis`], ...), and the mapping of the libraries'
//! settings to the programs' flags in error and log lines ([`with_flags`]).
//!
//! `Flags`, the hand-written parser, remains for the programs not moved to clap yet.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use zoorpc_registry::{AUTH_FILE_ENV, ZkCredential};

mod values;

pub use values::{MAX_MS, file_name, millis, number, socket_address};

/// Parses the process arguments into `T`: `--help` and `--version` print and exit with status 0;
/// a usage error (an unknown flag, a missing or bad value) is one line on stderr,
/// `error: <clap's message>; see --help`, and status 2.
pub fn parse<T: clap::Parser>() -> T {
    parse_from(std::env::args_os())
}

/// [`parse`] of `args` (the first is the program's name).
pub fn parse_from<T: clap::Parser>(
    args: impl IntoIterator<Item = impl Into<std::ffi::OsString> + Clone>,
) -> T {
    match T::try_parse_from(args) {
        Ok(parsed) => parsed,
        Err(e) => exit_on(&e),
    }
}

/// Ends the process on clap's error `e`: help and version on stdout with status 0, a usage
/// error as one line with status 2 (also help shown because a subcommand is missing).
pub fn exit_on(e: &clap::Error) -> ! {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            std::process::exit(0)
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            std::process::exit(2)
        }
        _ => {
            eprintln!("{}", usage_error_line(&e.render().to_string()));
            std::process::exit(2)
        }
    }
}

/// clap's rendered error (the error, tips, usage) as one line: the error and its tips, then
/// where to look.
///
/// ```
/// let rendered = "error: unexpected argument '--prot' found\n\n  tip: a similar argument exists: '--port'\n\nUsage: p --port <N>\n\nFor more information, try '--help'.\n";
/// assert_eq!(
///     zoorpc::cli::usage_error_line(rendered),
///     "error: unexpected argument '--prot' found tip: a similar argument exists: '--port'; see --help"
/// );
/// ```
pub fn usage_error_line(rendered: &str) -> String {
    let mut words = Vec::new();
    for line in rendered.lines() {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        words.extend(line.split_whitespace().map(str::to_owned));
    }
    // A 70 KB value stays out of the one line: its start and its size.
    error_line(&format!("{}; see --help", words.join(" ")))
}

/// Parsed command-line flags.
#[derive(Debug, Default)]
pub struct Flags {
    values: Vec<(String, String)>,
    positional: Vec<String>,
}

impl Flags {
    /// Parses `args` (without the program name), accepting only `known` flag names
    /// (without `--`).
    ///
    /// ```
    /// use zoorpc::cli::Flags;
    /// let f = Flags::parse(["run", "--zk", "h:1", "--calls=3"].map(String::from), &["zk", "calls"]).unwrap();
    /// assert_eq!(f.str("zk"), Some("h:1"));
    /// assert_eq!(f.get("calls", 10u32).unwrap(), 3);
    /// assert_eq!(f.positional(), ["run"]);
    /// assert!(Flags::parse(["--nope", "1"].map(String::from), &["zk"]).is_err());
    /// ```
    pub fn parse(args: impl IntoIterator<Item = String>, known: &[&str]) -> Result<Flags, String> {
        let mut flags = Flags::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                flags.positional.push(arg);
                continue;
            };
            let (name, value) = match flag.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => {
                    let value = args
                        .next()
                        .ok_or_else(|| format!("--{flag} needs a value"))?;
                    (flag.to_owned(), value)
                }
            };
            if !known.contains(&name.as_str()) {
                return Err(format!("unknown flag --{name}"));
            }
            flags.values.push((name, value));
        }
        Ok(flags)
    }

    /// Parses the process arguments; prints `usage` and exits on `--help` (0) or an error (2).
    pub fn from_env(usage: &str, known: &[&str]) -> Flags {
        let mut args = Vec::new();
        for arg in std::env::args_os().skip(1) {
            match arg.into_string() {
                Ok(arg) => args.push(arg),
                Err(raw) => fail(
                    usage,
                    &format!(
                        "an argument is not valid UTF-8: {:?}",
                        crate::cli::shorten(&raw.to_string_lossy())
                    ),
                ),
            }
        }
        if args.iter().any(|a| a == "--help" || a == "-h") {
            println!("{usage}");
            std::process::exit(0);
        }
        match Flags::parse(args, known) {
            Ok(f) => f,
            Err(e) => fail(usage, &e),
        }
    }

    /// The last value of `--name`.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `--name` parsed as `T`, or `default` when absent; an error naming the flag and the value.
    ///
    /// ```
    /// use zoorpc::cli::Flags;
    /// let f = Flags::parse(["--calls", "x"].map(String::from), &["calls", "zk"]).unwrap();
    /// assert_eq!(f.get("calls", 1u32).unwrap_err(), "bad value \"x\" for --calls: invalid digit found in string");
    /// assert_eq!(f.get("zk", String::from("127.0.0.1:2181")).unwrap(), "127.0.0.1:2181");
    /// ```
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        match self.str(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| {
                format!(
                    "bad value {:?} for --{name}: {e}",
                    zoorpc_registry::excerpt(v)
                )
            }),
        }
    }

    /// `--name` as a number within `range`, or `default` when absent.
    ///
    /// ```
    /// use zoorpc::cli::Flags;
    /// let f = Flags::parse(["--rounds", "0", "--port=99999"].map(String::from), &["rounds", "port"]).unwrap();
    /// let err = f.number("rounds", 10usize, 1..=1_000).unwrap_err();
    /// assert_eq!(err, r#"bad value "0" for --rounds: expected a whole number from 1 to 1000"#);
    /// assert!(f.number("port", 0u16, 0..=u16::MAX).unwrap_err().contains("from 0 to 65535"));
    /// assert_eq!(f.number("absent", 7u8, 1..=9).unwrap(), 7);
    /// ```
    pub fn number<T>(&self, name: &str, default: T, range: RangeInclusive<T>) -> Result<T, String>
    where
        T: FromStr + PartialOrd + Display,
    {
        self.ranged(name, default, range, "a whole number")
    }

    /// `--name` as whole milliseconds within `range` (at most [`MAX_MS`]), or `default_ms` when
    /// absent.
    ///
    /// ```
    /// use std::time::Duration;
    /// use zoorpc::cli::{Flags, MAX_MS};
    /// let f = Flags::parse(["--session-timeout-ms", "2147483648"].map(String::from), &["session-timeout-ms"]).unwrap();
    /// assert_eq!(
    ///     f.millis("session-timeout-ms", 10_000, 1..=MAX_MS).unwrap_err(),
    ///     r#"bad value "2147483648" for --session-timeout-ms: expected milliseconds from 1 to 2147483647"#
    /// );
    /// assert_eq!(f.millis("interval-ms", 500, 0..=MAX_MS).unwrap(), Duration::from_millis(500));
    /// ```
    pub fn millis(
        &self,
        name: &str,
        default_ms: u64,
        range: RangeInclusive<u64>,
    ) -> Result<Duration, String> {
        let range = *range.start()..=(*range.end()).min(MAX_MS);
        self.ranged(name, default_ms, range, "milliseconds")
            .map(Duration::from_millis)
    }

    fn ranged<T>(
        &self,
        name: &str,
        default: T,
        range: RangeInclusive<T>,
        what: &str,
    ) -> Result<T, String>
    where
        T: FromStr + PartialOrd + Display,
    {
        let Some(text) = self.str(name) else {
            return Ok(default);
        };
        match text.parse::<T>() {
            Ok(v) if range.contains(&v) => Ok(v),
            _ => Err(format!(
                "bad value {:?} for --{name}: expected {what} from {} to {}",
                zoorpc_registry::excerpt(text),
                range.start(),
                range.end()
            )),
        }
    }

    /// The required `--zk` connect string.
    ///
    /// ```
    /// use zoorpc::cli::Flags;
    /// let f = Flags::parse(["--zk", "h:1"].map(String::from), &["zk"]).unwrap();
    /// assert_eq!(f.zk().unwrap(), "h:1");
    /// assert!(Flags::default().zk().unwrap_err().contains("--zk"));
    /// ```
    pub fn zk(&self) -> Result<String, String> {
        self.str("zk")
            .map(str::to_owned)
            .ok_or_else(|| "--zk HOST:PORT is required".to_owned())
    }

    /// The ZooKeeper digest credential: read from the file `--zk-auth-file` names, else from
    /// the file `ZOORPC_ZK_AUTH_FILE` names; `None` when neither is set. An unreadable or
    /// malformed file is an error naming the file (never its contents).
    ///
    /// ```
    /// use zoorpc::cli::Flags;
    /// let dir = tempfile::tempdir()?;
    /// let file = dir.path().join("zk-auth");
    /// std::fs::write(&file, "svc:s3cret\n")?;
    /// let args = ["--zk-auth-file".to_owned(), file.display().to_string()];
    /// let credential = Flags::parse(args, &["zk-auth-file"])?.zk_auth()?;
    /// assert_eq!(credential.map(|c| c.user().to_owned()), Some("svc".to_owned()));
    ///
    /// std::fs::write(&file, "no colon")?;
    /// let err = Flags::parse(["--zk-auth-file".to_owned(), file.display().to_string()], &["zk-auth-file"])?
    ///     .zk_auth()
    ///     .unwrap_err();
    /// assert!(err.contains("zk-auth is not usable") && !err.contains("no colon"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn zk_auth(&self) -> Result<Option<ZkCredential>, String> {
        let path = match self.str("zk-auth-file") {
            Some(path) => PathBuf::from(path),
            None => match std::env::var_os(AUTH_FILE_ENV) {
                Some(path) if !path.is_empty() => PathBuf::from(path),
                _ => return Ok(None),
            },
        };
        ZkCredential::from_file(path)
            .map(Some)
            .map_err(|e| e.to_string())
    }

    /// `--metrics ADDR`: where to serve Prometheus metrics, if anywhere.
    ///
    /// ```
    /// use zoorpc::cli::Flags;
    /// let metrics = |value: &str| Flags::parse(["--metrics".into(), value.into()], &["metrics"]);
    /// assert_eq!(metrics("127.0.0.1:9464")?.metrics()?, Some("127.0.0.1:9464".parse()?));
    /// let err = metrics("9464")?.metrics().unwrap_err();
    /// assert!(err.contains("such as 127.0.0.1:9464"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn metrics(&self) -> Result<Option<std::net::SocketAddr>, String> {
        self.str("metrics")
            .map(|text| {
                text.parse::<std::net::SocketAddr>().map_err(|_| {
                    format!("bad value {text:?} for --metrics: expected an address such as 127.0.0.1:9464")
                })
            })
            .transpose()
    }

    /// Words that are not flags, in order.
    pub fn positional(&self) -> &[String] {
        &self.positional
    }
}

/// Prints `error` and `usage` to stderr and exits with status 2.
pub fn fail(usage: &str, error: &str) -> ! {
    eprintln!("error: {}\n\n{usage}", error_line(error));
    std::process::exit(2)
}

/// Unwraps a flag value or exits with the usage.
pub fn or_exit<T>(usage: &str, value: Result<T, String>) -> T {
    match value {
        Ok(v) => v,
        Err(e) => fail(usage, &e),
    }
}

/// What the libraries' messages call a setting ([`zoorpc_registry::error::settings`],
/// [`zoorpc_consumer::error::settings`], [`zoorpc_provider::error::settings`]), and what the
/// programs call it: their flags. The one place programs map settings to flags.
const SETTING_FLAGS: &[(&str, &str)] = {
    use zoorpc_consumer::error::settings as consumer;
    use zoorpc_provider::error::settings as provider;
    use zoorpc_registry::error::settings as registry;
    &[
        (registry::ZK, "--zk"),
        (
            registry::ZK_AUTH,
            "that identity's user:password file with --zk-auth-file (or ZOORPC_ZK_AUTH_FILE)",
        ),
        (
            registry::START_CONTENDER,
            "a contender on that path (e.g. `zoorpc-ha-server --zk HOST:PORT --path PATH`)",
        ),
        (
            consumer::START_PROVIDER,
            "a provider with that base path (e.g. `zoorpc provider --zk HOST:PORT --base-path PATH`)",
        ),
        (consumer::TLS_CA, "--tls-ca"),
        (
            consumer::TLS_IDENTITY,
            "--tls-client-cert and --tls-client-key",
        ),
        (consumer::TLS_SERVER_NAME, "--tls-server-name"),
        (consumer::CA_FILE, "CA certificate (--tls-ca)"),
        (
            consumer::CLIENT_CERT_FILE,
            "client certificate (--tls-client-cert)",
        ),
        (consumer::CLIENT_KEY_FILE, "client key (--tls-client-key)"),
        (provider::PORT, "--port"),
        (provider::LISTEN_HOST, "--listen-host"),
        (provider::ADVERTISE_HOST, "--advertise-host"),
        (provider::CERT_FILE, "certificate (--tls-cert)"),
        (provider::KEY_FILE, "private key (--tls-key)"),
        (provider::CLIENT_CA_FILE, "client CA (--tls-client-ca)"),
    ]
};

/// `text` (a library's message) as a program says it: every setting the libraries name
/// replaced with the program's flag for it.
///
/// ```
/// use zoorpc::cli::with_flags;
/// let e = zoorpc_consumer::Error::NoProviders { base_path: "/registry".into() };
/// assert_eq!(
///     with_flags(&e.to_string()),
///     "no providers registered under /registry: start a provider with that base path \
///      (e.g. `zoorpc provider --zk HOST:PORT --base-path PATH`) or check the base path"
/// );
/// assert_eq!(with_flags("no setting here"), "no setting here");
/// ```
pub fn with_flags(text: &str) -> String {
    let mut text = text.to_owned();
    for (setting, flag) in SETTING_FLAGS {
        if text.contains(setting) {
            text = text.replace(setting, flag);
        }
    }
    text
}

/// An error line of a program: the library's message [`with_flags`], [`shorten`]ed.
pub fn error_line(text: &str) -> String {
    shorten(&with_flags(text))
}

/// `text` with every word longer than 200 bytes cut to its start and its size, and a line still
/// over 1,000 bytes cut to its start and end, so a 70 KB
/// value given to a flag keeps an error message one readable line.
///
/// ```
/// let long = "x".repeat(70_000);
/// let line = zoorpc::cli::shorten(&format!("bad value {long} for --zk"));
/// assert!(line.len() < 200, "{line}");
/// assert!(line.ends_with("...(70000 bytes) for --zk"));
/// assert_eq!(zoorpc::cli::shorten("bad value 7"), "bad value 7");
/// let many = "1 ".repeat(35_000);
/// let line = zoorpc::cli::shorten(&format!("bad value {many} for --count; see --help"));
/// assert!(line.len() < 1100 && line.ends_with("for --count; see --help"), "{line}");
/// ```
pub fn shorten(text: &str) -> String {
    /// What a line may take before its middle is cut.
    const LINE: usize = 1000;
    let words = if text.split_whitespace().all(|word| word.len() <= 200) {
        text.to_owned()
    } else {
        text.split(' ')
            .map(|word| {
                if word.len() > 200 {
                    let start: String = word.chars().take(60).collect();
                    format!("{start}...({} bytes)", word.len())
                } else {
                    word.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    if words.len() <= LINE {
        return words;
    }
    // Many short words: the start and the end (which usually says what to do), and the size.
    let start: String = words.chars().take(LINE / 2).collect();
    let end: String = {
        let tail: Vec<char> = words.chars().rev().take(LINE / 4).collect();
        tail.into_iter().rev().collect()
    };
    format!("{start} ...({} bytes)... {end}", text.len())
}
