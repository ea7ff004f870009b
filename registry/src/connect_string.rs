//! Parsing of ZooKeeper connect strings (`HOST:PORT[,HOST:PORT...][/chroot]`), done by us before
//! the client sees them so a typo gets an error that names it instead of a timeout.

use crate::error::{Error, Result};
use crate::plumbing::path::validate_path;
use crate::provider_url::port_as_written;

/// A checked connect string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectString {
    raw: String,
    hosts_part: String,
    hosts: Vec<(String, u16)>,
    chroot: Option<String>,
}

impl ConnectString {
    /// Parses and checks `raw`.
    ///
    /// ```
    /// use zoorpc_registry::ConnectString;
    /// let cs = ConnectString::parse("127.0.0.1:2181,127.0.0.1:2182/app").unwrap();
    /// assert_eq!(cs.hosts().len(), 2);
    /// assert_eq!(cs.chroot(), Some("/app"));
    /// assert!(ConnectString::parse("localhost").is_err());
    /// ```
    pub fn parse(raw: &str) -> Result<Self> {
        let fail = |reason: String| Error::InvalidConnectString {
            connect: crate::error::excerpt(raw),
            reason,
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(fail("it is empty".into()));
        }
        let (hosts_part, chroot) = match trimmed.find('/') {
            Some(i) => (&trimmed[..i], Some(&trimmed[i..])),
            None => (trimmed, None),
        };
        let chroot = match chroot {
            Some(c) => Some(
                validate_path(c)
                    .map_err(|e| fail(format!("bad chroot: {e}")))?
                    .to_owned(),
            ),
            None => None,
        };
        let hosts = hosts_part
            .split(',')
            .map(host_entry)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(fail)?;
        Ok(ConnectString {
            raw: trimmed.to_owned(),
            hosts_part: hosts_part.to_owned(),
            hosts,
            chroot,
        })
    }

    /// The string as given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The hosts without the chroot, as given: `HOST:PORT[,HOST:PORT...]`.
    ///
    /// ```
    /// use zoorpc_registry::ConnectString;
    /// let cs = ConnectString::parse("127.0.0.1:2181,[::1]:2182/app").unwrap();
    /// assert_eq!(cs.hosts_str(), "127.0.0.1:2181,[::1]:2182");
    /// ```
    pub fn hosts_str(&self) -> &str {
        &self.hosts_part
    }

    /// `(host, port)` pairs.
    pub fn hosts(&self) -> &[(String, u16)] {
        &self.hosts
    }

    /// The chroot suffix, if any.
    pub fn chroot(&self) -> Option<&str> {
        self.chroot.as_deref()
    }
}

/// One `HOST:PORT` (or `[IPv6]:PORT`) entry of a connect string, or why it is none.
fn host_entry(entry: &str) -> std::result::Result<(String, u16), String> {
    let entry = entry.trim();
    if entry.is_empty() {
        return Err("empty host entry".into());
    }
    let quoted = crate::error::excerpt(entry);
    let (host, port) = match entry.strip_prefix('[') {
        Some(v6) => v6
            .split_once("]:")
            .ok_or_else(|| format!("{quoted:?} needs [IPv6]:PORT"))?,
        None => entry
            .rsplit_once(':')
            .ok_or_else(|| format!("{quoted:?} has no port"))?,
    };
    if host.is_empty() {
        return Err(format!("{quoted:?} has no host"));
    }
    if host.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "{quoted:?}: a host name has no control characters or spaces"
        ));
    }
    // Digits only, no sign, no leading zero: the port as written is the one dialled.
    let port = port_as_written(port).ok_or_else(|| {
        format!("{quoted:?} has a bad port (1 to 65535, digits only, no sign or leading zero)")
    })?;
    Ok((host.to_owned(), port))
}

impl std::fmt::Display for ConnectString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_with_reason() {
        for (bad, why) in [
            ("", "empty"),
            ("localhost", "no port"),
            ("a:1,,b:2", "empty host"),
            ("a:x", "bad port"),
            ("a:+2181", "bad port"),
            ("a:0", "bad port"),
            (":2181", "no host"),
            ("a:2181/", "chroot"),
        ] {
            let err = ConnectString::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
