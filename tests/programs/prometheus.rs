//! The `--metrics` page as a scraper reads it: a plain HTTP/1.1 `GET /metrics`, and the samples
//! in it by name and labels.

use std::io::{Read, Write};
use std::time::Duration;

use crate::common::eventually_blocking;

/// A loopback address with a port free right now.
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").to_string()
}

/// `GET /metrics` at `addr` (waiting at most 10 s for its listener): the body.
pub fn scrape(addr: &str) -> String {
    let what = format!("a metrics listener at {addr}");
    let mut stream = eventually_blocking(&what, Duration::from_secs(10), || {
        std::net::TcpStream::connect(addr)
    });
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The value of the sample whose line starts with `series` (name and labels), if any.
pub fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The sum of the samples of `name` whose labels contain `label` (`""`: all of them).
pub fn sum(body: &str, name: &str, label: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits (at most 20 s) until `series` at `addr` has `expected`.
pub fn wait_value(addr: &str, series: &str, expected: f64) {
    let what = format!("{series} at {expected}");
    eventually_blocking(&what, Duration::from_secs(20), || {
        let body = scrape(addr);
        match value(&body, series) {
            Some(v) if v == expected => Ok(()),
            _ => Err(body),
        }
    })
}
