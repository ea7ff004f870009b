//! ZooKeeper's four-letter words (`ruok`, `srvr`), asked of a server on loopback or, for a
//! server inside a test host, from inside that host's namespace.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// Where a server listens: an address, and the test host whose namespace it is in, if any.
#[derive(Clone, Debug)]
pub(super) struct Place {
    pub(super) ip: Ipv4Addr,
    pub(super) netns: Option<crate::netns::Host>,
}

impl Default for Place {
    fn default() -> Self {
        Place {
            ip: Ipv4Addr::LOCALHOST,
            netns: None,
        }
    }
}

/// Sends ZooKeeper's `ruok` four-letter word; true on `imok`.
pub(super) fn ruok(place: &Place, port: u16) -> bool {
    four_letter_word(place, port, b"ruok").is_some_and(|reply| reply == "imok")
}

/// `imok` comes before the server accepts sessions; `srvr` tells when it really serves.
pub(super) fn serving(place: &Place, port: u16) -> bool {
    four_letter_word(place, port, b"srvr").is_some_and(|reply| reply.contains("Mode:"))
}

pub(super) fn four_letter_word(place: &Place, port: u16, word: &[u8]) -> Option<String> {
    match &place.netns {
        // Asked from inside the server's host: its address is not reachable from here.
        Some(host) => host
            .run(|| four_letter_word_at(place.ip, port, word))
            .ok()
            .flatten(),
        None => four_letter_word_at(place.ip, port, word),
    }
}

fn four_letter_word_at(ip: Ipv4Addr, port: u16, word: &[u8]) -> Option<String> {
    let addr = SocketAddr::from((ip, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    stream.write_all(word).ok()?;
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    Some(reply)
}
