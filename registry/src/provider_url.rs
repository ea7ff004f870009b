//! `ProviderUrl`: the data of a provider's znode, `http://HOST:PORT` with optional metadata as
//! query parameters (`?weight=100&zone=a`). Parsing is strict so that garbage written into the
//! registry by someone else is recognised and skipped instead of being dialled.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// Largest znode payload we accept as a provider URL. Anything bigger is not a URL.
///
/// ```
/// use zoorpc_registry::{ProviderUrl, provider_url::MAX_URL_LEN};
/// let huge = vec![b'a'; MAX_URL_LEN + 1];
/// let err = ProviderUrl::from_bytes(&huge).unwrap_err();
/// assert!(err.to_string().contains("longer than 2048 bytes"), "{err}");
/// ```
pub const MAX_URL_LEN: usize = 2048;

/// `host:port` as it is written in a URL or a master node: an IPv6 literal bracketed
/// (`[::1]:9090`), whether or not `host` already was.
///
/// ```
/// use zoorpc_registry::provider_url::host_port;
/// assert_eq!(host_port("127.0.0.1", 9090), "127.0.0.1:9090");
/// assert_eq!(host_port("::1", 9090), "[::1]:9090");
/// assert_eq!(host_port("[::1]", 9090), "[::1]:9090");
/// ```
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A validated provider endpoint URL.
///
/// ```
/// use zoorpc_registry::ProviderUrl;
/// let url: ProviderUrl = "http://127.0.0.1:11214?weight=100&zone=a".parse().unwrap();
/// assert_eq!(url.host(), "127.0.0.1");
/// assert_eq!(url.port(), 11214);
/// assert_eq!(url.metadata("zone"), Some("a"));
/// assert_eq!(url.endpoint(), "http://127.0.0.1:11214");
/// assert!("not a url".parse::<ProviderUrl>().is_err());
/// ```
///
/// Cloning is cheap (one shared, immutable copy of the parsed parts): discovery hands the same
/// URLs to every snapshot.
#[derive(Clone, Eq)]
pub struct ProviderUrl {
    parts: Arc<Parts>,
}

/// What a [`ProviderUrl`] is made of, parsed once.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Parts {
    raw: String,
    scheme: String,
    host: String,
    port: u16,
    metadata: Vec<(String, String)>,
}

impl PartialEq for ProviderUrl {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.parts, &other.parts) || self.parts == other.parts
    }
}

impl std::hash::Hash for ProviderUrl {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parts.hash(state);
    }
}

impl fmt::Debug for ProviderUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderUrl")
            .field("raw", &self.parts.raw)
            .field("scheme", &self.parts.scheme)
            .field("host", &self.parts.host)
            .field("port", &self.parts.port)
            .field("metadata", &self.parts.metadata)
            .finish()
    }
}

impl ProviderUrl {
    /// Builds `http://host:port` (IPv6 hosts are bracketed). An error if the result is no
    /// provider URL (an empty host, a port of 0).
    ///
    /// ```
    /// use zoorpc_registry::ProviderUrl;
    /// let url = ProviderUrl::http("::1", 11214)?;
    /// assert_eq!(url.as_str(), "http://[::1]:11214");
    /// assert_eq!(url.host(), "[::1]");
    /// assert_eq!(url.authority(), "[::1]:11214");
    /// assert!(ProviderUrl::http("", 11214).is_err());
    /// assert!(ProviderUrl::http("127.0.0.1", 0).is_err());
    /// # Ok::<(), zoorpc_registry::Error>(())
    /// ```
    pub fn http(host: &str, port: u16) -> Result<Self> {
        format!("http://{}", host_port(host, port)).parse()
    }

    /// `https://host:port` (an IPv6 literal bracketed): a provider serving TLS.
    ///
    /// ```
    /// use zoorpc_registry::ProviderUrl;
    /// assert_eq!(ProviderUrl::https("::1", 8443).unwrap().as_str(), "https://[::1]:8443");
    /// ```
    pub fn https(host: &str, port: u16) -> Result<Self> {
        format!("https://{}", host_port(host, port)).parse()
    }

    /// Adds metadata `key=value` (both must be non-empty and free of `&`, `=`, `?`, whitespace).
    ///
    /// ```
    /// use zoorpc_registry::ProviderUrl;
    /// let url = ProviderUrl::http("127.0.0.1", 1).unwrap().with_metadata("weight", "50").unwrap();
    /// assert_eq!(url.as_str(), "http://127.0.0.1:1?weight=50");
    /// ```
    pub fn with_metadata(self, key: &str, value: &str) -> Result<Self> {
        let separator = if self.parts.metadata.is_empty() {
            '?'
        } else {
            '&'
        };
        let bad = |s: &str| s.is_empty() || s.contains(['&', '=', '?', '#']);
        if bad(key) || bad(value) {
            return Err(Error::InvalidUrl {
                url: crate::error::excerpt(&format!("{}{separator}{key}={value}", self.parts.raw)),
                reason: "metadata keys and values must be non-empty, without & = ? #".into(),
            });
        }
        format!("{}{separator}{key}={value}", self.parts.raw).parse()
    }

    /// Parses znode data: must be UTF-8 and a valid URL. What someone else wrote into the
    /// registry is refused with a message quoting it (the first 64 bytes of what is not UTF-8).
    ///
    /// ```
    /// use zoorpc_registry::ProviderUrl;
    /// let url = ProviderUrl::from_bytes(b"http://10.0.0.7:50051?weight=50")?;
    /// assert_eq!((url.scheme(), url.port()), ("http", 50051));
    /// assert_eq!(url.metadata("weight"), Some("50"));
    /// assert_eq!(url.metadata_pairs(), &[("weight".to_owned(), "50".to_owned())]);
    /// let err = ProviderUrl::from_bytes(&[0xff, 0x00]).unwrap_err();
    /// assert!(err.to_string().contains("not UTF-8"), "{err}");
    /// let err = ProviderUrl::from_bytes(b"hello world").unwrap_err();
    /// assert!(err.to_string().starts_with("invalid provider URL \"hello world\""), "{err}");
    /// # Ok::<(), zoorpc_registry::Error>(())
    /// ```
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        if data.len() > MAX_URL_LEN {
            return Err(Error::InvalidUrl {
                url: format!("<{} bytes>", data.len()),
                reason: format!("longer than {MAX_URL_LEN} bytes"),
            });
        }
        let text = std::str::from_utf8(data).map_err(|e| Error::InvalidUrl {
            url: crate::error::excerpt(&String::from_utf8_lossy(&data[..data.len().min(64)])),
            reason: format!("not UTF-8 ({e})"),
        })?;
        text.parse()
    }

    /// The whole URL as registered, metadata included.
    pub fn as_str(&self) -> &str {
        &self.parts.raw
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        &self.parts.scheme
    }

    /// Host name or IP literal (IPv6 with brackets).
    pub fn host(&self) -> &str {
        &self.parts.host
    }

    /// TCP port.
    pub fn port(&self) -> u16 {
        self.parts.port
    }

    /// `scheme://host:port` without metadata: what a gRPC client dials.
    pub fn endpoint(&self) -> String {
        format!(
            "{}://{}:{}",
            self.parts.scheme, self.parts.host, self.parts.port
        )
    }

    /// `host:port`.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.parts.host, self.parts.port)
    }

    /// The value of metadata `key`, if present.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.parts
            .metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All metadata pairs, in order.
    pub fn metadata_pairs(&self) -> &[(String, String)] {
        &self.parts.metadata
    }
}

impl fmt::Display for ProviderUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.parts.raw)
    }
}

impl std::str::FromStr for ProviderUrl {
    type Err = Error;

    fn from_str(raw: &str) -> Result<Self> {
        let parts = parse(raw).map_err(|reason| Error::InvalidUrl {
            url: crate::error::excerpt(raw),
            reason: reason.to_owned(),
        })?;
        Ok(ProviderUrl {
            parts: Arc::new(parts),
        })
    }
}

/// `raw`'s parts, or why it is no provider URL.
fn parse(raw: &str) -> std::result::Result<Parts, &'static str> {
    if raw.len() > MAX_URL_LEN {
        return Err("too long");
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("contains whitespace or control characters");
    }
    let (scheme, rest) = raw.split_once("://").ok_or("missing scheme")?;
    if scheme != "http" && scheme != "https" {
        return Err("scheme must be http or https");
    }
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    if authority.contains('/') || authority.contains('@') {
        return Err("must be scheme://host:port with no path or user info");
    }
    let (host, port) = host_and_port(authority)?;
    Ok(Parts {
        raw: raw.to_owned(),
        scheme: scheme.to_owned(),
        host,
        port: parse_port(port)?,
        metadata: parse_metadata(query.unwrap_or(""))?,
    })
}

/// The host (an IPv6 one in brackets) and the port as written, of `host:port` or `[v6]:port`.
fn host_and_port(authority: &str) -> std::result::Result<(String, &str), &'static str> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (inner, port) = v6.split_once("]:").ok_or("IPv6 host needs [addr]:port")?;
        if inner.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("bad IPv6 address");
        }
        return Ok((format!("[{inner}]"), port));
    }
    let (host, port) = authority.rsplit_once(':').ok_or("missing port")?;
    if host.is_empty() {
        return Err("missing host");
    }
    let valid = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
    if !valid {
        return Err("bad host name");
    }
    Ok((host.to_owned(), port))
}

fn parse_port(port: &str) -> std::result::Result<u16, &'static str> {
    if port == "0" {
        return Err("port 0 is not a listening port");
    }
    port_as_written(port).ok_or("bad port (1 to 65535, digits only, no sign or leading zero)")
}

/// `port` if it is 1 to 65535 in digits only, with no sign and no leading zero: the port as
/// written is the one dialled (a provider URL's, a connect string's).
pub(crate) fn port_as_written(port: &str) -> Option<u16> {
    Some(port)
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()) && !p.starts_with('0'))
        .and_then(|p| p.parse().ok())
}

/// The `key=value` pairs of the query, in order (a key alone has an empty value).
fn parse_metadata(query: &str) -> std::result::Result<Vec<(String, String)>, &'static str> {
    let mut metadata = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k.is_empty() {
            return Err("empty metadata key");
        }
        metadata.push((k.to_owned(), v.to_owned()));
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_metadata() {
        let u: ProviderUrl = "http://127.0.0.1:11214".parse().unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:11214");
        assert_eq!(u.authority(), "127.0.0.1:11214");
        assert!(u.metadata_pairs().is_empty());
        let u: ProviderUrl = "https://[::1]:443?weight=5".parse().unwrap();
        assert_eq!(u.host(), "[::1]");
        assert_eq!(u.metadata("weight"), Some("5"));
        assert_eq!(
            ProviderUrl::http("::1", 80).unwrap().as_str(),
            "http://[::1]:80"
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "hello",
            "127.0.0.1:80",
            "ftp://a:1",
            "http://a",
            "http://a:0",
            "http://a:99999",
            "http://:80",
            "http://a b:80",
            "http://a:80/path",
            "http://u@a:80",
            "http://[zz]:80",
            "http://a:+80",
            "http://a:080",
        ] {
            assert!(bad.parse::<ProviderUrl>().is_err(), "{bad}");
        }
        assert!(ProviderUrl::from_bytes(&[0xff, 0xfe]).is_err());
        assert!(ProviderUrl::from_bytes(&vec![b'a'; 500 * 1024]).is_err());
    }
}
