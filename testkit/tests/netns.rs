//! The harness's own partitions, checked with plain TCP between two test hosts: a cut stops
//! an established connection silently and refuses new ones, both ways; heal and rejoin restore
//! them; isolate silences a host towards everyone. Needs root: skipped with a message otherwise.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use zoorpc_testkit::netns::{Host, Network, available};

/// A listener in `host` on port 7000 that echoes every byte it reads, on its own thread.
fn echo_server(host: &Host) -> SocketAddr {
    let addr = SocketAddr::from((host.addr(), 7000));
    let listener = host
        .run(move || TcpListener::bind(addr))
        .expect("run in the host")
        .expect("bind in the host");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Connects from `host` (the socket is the host's; used from here on).
fn connect_from(host: &Host, to: SocketAddr) -> std::io::Result<TcpStream> {
    host.run(move || TcpStream::connect_timeout(&to, Duration::from_millis(500)))
        .expect("run in the host")
}

/// Whether one byte sent on `stream` comes back within 500 ms.
fn echoes(stream: &mut TcpStream) -> bool {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut byte = [0u8; 1];
    stream.write_all(b"x").is_ok() && stream.read_exact(&mut byte).is_ok()
}

#[test]
fn cut_heal_isolate_and_rejoin_partition_two_hosts_for_real() {
    if let Err(reason) = available() {
        println!("skipped: {reason}");
        return;
    }
    let net = Network::new(&["server", "client", "other"]).expect("make the hosts");
    let (server, client, other) = (net.host("server"), net.host("client"), net.host("other"));
    let addr = echo_server(server);
    let mut kept = connect_from(client, addr).expect("client reaches server");
    assert!(echoes(&mut kept));

    net.cut(client, server).expect("cut");
    assert!(!echoes(&mut kept), "a byte crossed the cut");
    assert!(
        connect_from(client, addr).is_err(),
        "connected across the cut"
    );
    let mut bystander = connect_from(other, addr).expect("the cut is between two hosts only");
    assert!(echoes(&mut bystander));

    net.heal(client, server).expect("heal");
    // The kept connection survives the cut: TCP delivers the held byte and the new one.
    let _ = kept.set_read_timeout(Some(Duration::from_secs(10)));
    let mut two = [0u8; 2];
    kept.write_all(b"y").expect("write after heal");
    kept.read_exact(&mut two)
        .expect("the held bytes arrive after the heal");
    assert_eq!(&two, b"xy");
    assert!(
        connect_from(client, addr).is_ok(),
        "no connection after the heal"
    );

    net.isolate(server).expect("isolate");
    assert!(!echoes(&mut bystander), "a byte reached the isolated host");
    assert!(
        connect_from(other, addr).is_err(),
        "connected to the isolated host"
    );
    net.rejoin(server).expect("rejoin");
    assert!(
        connect_from(other, addr).is_ok(),
        "no connection after rejoining"
    );

    let names: Vec<String> = net.hosts().iter().map(|h| h.netns().to_owned()).collect();
    drop(net);
    let left = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| names.contains(n))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "namespaces left after drop: {left:?}");
}
