//! `zoorpc xds bootstrap --listen HOST:PORT`: the bootstrap file a gRPC client reads (gRFC A27,
//! `GRPC_XDS_BOOTSTRAP=<file>` or its text in `GRPC_XDS_BOOTSTRAP_CONFIG`), naming `zoorpc xds`
//! at that address as its one xDS server, over plaintext, protocol v3.

use serde_json::{Value, json};

/// `zoorpc xds bootstrap` flags.
#[derive(clap::Args, Debug)]
pub struct BootstrapArgs {
    /// Where clients reach `zoorpc xds` (its --listen address, or a name for it), e.g.
    /// 127.0.0.1:18000
    #[arg(long, value_name = "HOST:PORT", value_parser = server_address)]
    pub listen: String,
    /// The node id the client announces (shown in `zoorpc xds`'s log)
    #[arg(long, value_name = "ID", default_value = "zoorpc-xds-client")]
    pub node_id: String,
}

/// The bootstrap document for a server at `server` (`host:port`).
///
/// ```
/// let doc = zoorpc::apps::xds::bootstrap::document("127.0.0.1:18000", "me");
/// assert_eq!(doc["xds_servers"][0]["server_uri"], "127.0.0.1:18000");
/// assert_eq!(doc["xds_servers"][0]["channel_creds"][0]["type"], "insecure");
/// assert_eq!(doc["node"]["id"], "me");
/// ```
pub fn document(server: &str, node_id: &str) -> Value {
    json!({
        "xds_servers": [{
            "server_uri": server,
            "channel_creds": [{ "type": "insecure" }],
            "server_features": ["xds_v3"],
        }],
        "node": { "id": node_id, "locality": {} },
    })
}

/// Prints the bootstrap document; returns the exit status.
pub fn run(args: BootstrapArgs) -> i32 {
    match serde_json::to_string_pretty(&document(&args.listen, &args.node_id)) {
        Ok(text) => {
            crate::say!("{text}");
            0
        }
        Err(e) => {
            eprintln!("error: cannot write the bootstrap: {e}");
            1
        }
    }
}

/// clap's check of the address clients dial: `host:port` (IPv6 in brackets), a port that is
/// not 0, a host that is not "every interface".
///
/// ```
/// use zoorpc::apps::xds::bootstrap::server_address;
/// assert!(server_address("127.0.0.1:18000").is_ok());
/// assert!(server_address("[::1]:18000").is_ok());
/// assert!(server_address("xds.example.org:18000").is_ok());
/// assert!(server_address("0.0.0.0:18000").unwrap_err().contains("clients can reach"));
/// assert!(server_address("127.0.0.1:0").is_err());
/// assert!(server_address("127.0.0.1").is_err());
/// ```
pub fn server_address(text: &str) -> Result<String, String> {
    let expected = || "expected HOST:PORT, e.g. 127.0.0.1:18000 or [::1]:18000".to_owned();
    let (host, port) = text.rsplit_once(':').ok_or_else(expected)?;
    match port.parse::<u16>() {
        Ok(0) | Err(_) => return Err(expected()),
        Ok(_) => {}
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        if ip.is_unspecified() {
            return Err(format!(
                "{host} is every interface, not an address clients can reach: give this \
                 machine's address or name"
            ));
        }
        if ip.is_ipv6() && !host.starts_with('[') {
            return Err(expected());
        }
        return Ok(text.to_owned());
    }
    super::super::host_name(host).map_err(|_| expected())?;
    Ok(text.to_owned())
}
