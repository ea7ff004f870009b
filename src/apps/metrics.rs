//! `--metrics ADDR` of the long-running programs (`zoorpc provider`, `zoorpc proxy`, the HA
//! server, `zoorpc xds`): Prometheus text at `http://ADDR/metrics`, from the `metrics` facade the
//! libraries count through (`metrics-exporter-prometheus`'s own small HTTP listener).
//!
//! Names are prefixed `zoorpc_`: the balancer's calls, attempts by endpoint and gRPC code,
//! failures, retries, ejections and live endpoints (`zoorpc-consumer`'s `balance/metrics.rs`);
//! the ZooKeeper session's link and expiries (`zoorpc-registry`'s `session/`); an HA server's
//! role and epoch ([`role`]); `zoorpc xds`'s clients, pushes, NACKs and endpoints (`xds`).

use std::net::SocketAddr;

/// Serves the metrics at `addr` (bound now: a taken address is an error naming it) for the rest
/// of the process, and says where on stderr (`metrics at http://ADDR/metrics`: with port 0,
/// the free port picked).
pub fn serve(addr: SocketAddr) -> Result<(), String> {
    let taken = |e: &dyn std::fmt::Display| {
        format!("cannot serve metrics on {addr}: {e}; give another --metrics address")
    };
    // Port 0: pick the free port here, so it can be said (the exporter binds its own listener
    // and does not tell).
    let addr = if addr.port() == 0 {
        std::net::TcpListener::bind(addr)
            .and_then(|l| l.local_addr())
            .map_err(|e| taken(&e))?
    } else {
        addr
    };
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| taken(&e))?;
    eprintln!("metrics at http://{addr}/metrics");
    Ok(())
}

/// Publishes an HA server's role at `path`: `zoorpc_master{path}` 1 while master, else 0, and
/// `zoorpc_master_epoch{path}` (the epoch while master; left at the last one otherwise).
pub fn role(path: &str, role: &zoorpc_registry::Role) {
    let master = role.is_master();
    metrics::gauge!("zoorpc_master", "path" => path.to_owned()).set(if master { 1.0 } else { 0.0 });
    if let Some(epoch) = role.epoch() {
        metrics::gauge!("zoorpc_master_epoch", "path" => path.to_owned()).set(epoch as f64);
    }
    metrics::counter!("zoorpc_role_changes_total", "path" => path.to_owned()).increment(1);
}
