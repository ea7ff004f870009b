//! The value parsers the programs' flags share, so a flag means the same and takes the same range
//! in every program: a value outside the range, too big for its type or not a number is refused
//! by clap before anything starts (status 2), with a message naming what was expected.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The largest value any `-ms` flag takes: `i32::MAX` milliseconds (about 24.8 days), the
/// longest timeout ZooKeeper's protocol carries. Larger values would only ever mean "never".
pub const MAX_MS: u64 = i32::MAX as u64;

/// A whole number within `range`, as a clap value parser.
///
/// ```
/// let port = zoorpc::cli::number(0u16..=u16::MAX);
/// assert_eq!(port("8080"), Ok(8080));
/// for bad in ["65536", "-1", "x", "", "1.5"] {
///     assert_eq!(port(bad).unwrap_err(), "expected a whole number from 0 to 65535");
/// }
/// ```
pub fn number<T>(range: RangeInclusive<T>) -> impl Fn(&str) -> Result<T, String> + Clone
where
    T: FromStr + PartialOrd + Display + Clone + Send + Sync + 'static,
{
    move |text| ranged(text, &range, "a whole number")
}

/// Whole milliseconds within `range` (its end at most [`MAX_MS`]), as a clap value parser.
///
/// ```
/// use std::time::Duration;
/// use zoorpc::cli::{MAX_MS, millis};
/// let timeout = millis(1..=MAX_MS);
/// assert_eq!(timeout("2147483647"), Ok(Duration::from_millis(2_147_483_647)));
/// assert_eq!(
///     timeout("2147483648").unwrap_err(),
///     "expected milliseconds from 1 to 2147483647"
/// );
/// assert!(millis(0..=u64::MAX)("18446744073709551615").is_err(), "capped at MAX_MS");
/// ```
pub fn millis(range: RangeInclusive<u64>) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    let range = *range.start()..=(*range.end()).min(MAX_MS);
    move |text| ranged(text, &range, "milliseconds").map(Duration::from_millis)
}

fn ranged<T>(text: &str, range: &RangeInclusive<T>, what: &str) -> Result<T, String>
where
    T: FromStr + PartialOrd + Display,
{
    match text.parse::<T>() {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(format!(
            "expected {what} from {} to {}",
            range.start(),
            range.end()
        )),
    }
}

/// A file name that is not empty (an empty `--zk-auth-file` or `--tls-cert` is a mistake, not
/// "none": leave the flag out for none).
///
/// ```
/// use zoorpc::cli::file_name;
/// assert!(file_name("zk.auth").is_ok());
/// assert!(file_name("").unwrap_err().contains("leave the flag out"));
/// ```
pub fn file_name(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() {
        Err("expected a file name (leave the flag out for none)".to_owned())
    } else {
        Ok(PathBuf::from(text))
    }
}

/// A socket address such as `127.0.0.1:9464` (where to serve metrics, where to listen): an IP
/// address and a port. A host name is refused, with the address to give instead: a name can
/// resolve to several addresses, and what a program listens on is then not what was asked.
///
/// ```
/// use zoorpc::cli::socket_address;
/// assert_eq!(socket_address("127.0.0.1:9464"), Ok("127.0.0.1:9464".parse().unwrap()));
/// assert!(socket_address("9464").unwrap_err().contains("such as 127.0.0.1:9464"));
/// assert!(socket_address("localhost:8025").unwrap_err().contains("give 127.0.0.1:8025"));
/// ```
pub fn socket_address(text: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(address) = text.parse() {
        return Ok(address);
    }
    match text.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty() && !host.contains(':') && port.parse::<u16>().is_ok() =>
        {
            let instead = if host.eq_ignore_ascii_case("localhost") {
                format!("127.0.0.1:{port} (or [::1]:{port})")
            } else {
                format!("the IP address {host} stands for, e.g. 127.0.0.1:{port}")
            };
            Err(format!(
                "expected an IP address and a port, not the host name {host:?}: give {instead}"
            ))
        }
        _ => Err("expected an address such as 127.0.0.1:9464".to_owned()),
    }
}
