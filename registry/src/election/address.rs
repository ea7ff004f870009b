//! Addresses in the election's nodes: what a contender may call itself, and the one reading of
//! the address in a master node's data (or of a designee in `<path>.epoch`).

use crate::error::{Error, Result};

/// Checks a contender address: non-empty, at most 256 bytes, no whitespace or control
/// characters (it is the node's data, compared byte for byte).
///
/// ```
/// use zoorpc_registry::election::validate_address;
/// assert!(validate_address("127.0.0.1:9090").is_ok());
/// let err = validate_address("127.0.0.1 9090").unwrap_err();
/// assert!(err.to_string().contains("whitespace"));
/// ```
pub fn validate_address(address: &str) -> Result<&str> {
    let fail = |reason| {
        Err(Error::InvalidAddress {
            address: crate::error::excerpt(address),
            reason,
        })
    };
    if address.is_empty() {
        return fail("it is empty");
    }
    if address.len() > 256 {
        return fail("it is longer than 256 bytes");
    }
    if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return fail("it contains whitespace or control characters");
    }
    Ok(address)
}

/// Reads an address from node data: UTF-8, surrounding whitespace ignored, a valid address
/// ([`validate_address`]). Anything else is `Err` with the data as text (lossy, trimmed; past
/// 200 characters its start and size), for
/// messages and for comparing with an address (which it then never equals).
///
/// ```
/// use zoorpc_registry::election::read_address;
/// assert_eq!(read_address(b" 127.0.0.1:9090\n").unwrap(), "127.0.0.1:9090");
/// assert_eq!(read_address(b"two words").unwrap_err(), "two words");
/// assert!(read_address(&[0xff, 0xfe]).is_err());
/// let long = read_address("g".repeat(70_000).as_bytes()).unwrap_err();
/// assert!(long.len() < 250 && long.ends_with("...(70000 bytes)"), "{long}");
/// ```
pub fn read_address(data: &[u8]) -> std::result::Result<String, String> {
    // Bad data is shown, so at most its first 200 (escaped) characters and its size: never an
    // address (the size has a space), and never a 70 KB line.
    let shown = |text: &str| {
        let start = crate::error::excerpt(text);
        if start.len() == text.len() {
            text.to_owned()
        } else {
            format!("{start}...({} bytes)", text.len())
        }
    };
    match std::str::from_utf8(data) {
        Ok(text) => {
            let text = text.trim();
            match validate_address(text) {
                Ok(address) => Ok(address.to_owned()),
                Err(_) => Err(shown(text)),
            }
        }
        Err(_) => Err(shown(String::from_utf8_lossy(data).trim())),
    }
}

/// Whether `text` is an address a client can call: `host:port`, a port 1-65535, a host (an IPv6
/// literal in brackets).
///
/// ```
/// use zoorpc_registry::election::is_host_port;
/// assert!(is_host_port("127.0.0.1:9090") && is_host_port("[::1]:9090") && is_host_port("db-1:80"));
/// assert!(!is_host_port("garbage") && !is_host_port("h:0") && !is_host_port(":80") && !is_host_port("::1:80"));
/// ```
pub fn is_host_port(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner.ends_with(']') && inner.len() > 1
    } else {
        !host.is_empty() && !host.contains(':') && !host.contains('/')
    };
    port_ok && host_ok
}
