//! The steps of [`HaServer`](super::HaServer)'s start that its lifecycle names (see the
//! [module docs](super)): serve behind the gate, check the advertised address, contend; and the
//! task that makes the services' health follow the role.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use zoorpc_registry::{MasterElection, Role, Session, SessionConfig};

use super::HaServerConfig;
use crate::error::Result;
use crate::master_gate::MasterGate;
use crate::served_metrics::ServedMetrics;
use crate::startup::check_serving_tls;

/// The server task: ends with the server's own result.
pub(super) type ServerTask = JoinHandle<std::result::Result<(), tonic::transport::Error>>;

/// Serves `routes` on `listener` behind `gate` (every request refused until the gate is bound
/// to an election), until `stop` fires or is dropped.
pub(super) fn serve_gated(
    config: &HaServerConfig,
    listener: TcpListener,
    routes: Routes,
    gate: &MasterGate,
    stop: oneshot::Receiver<()>,
) -> Result<ServerTask> {
    let mut builder = Server::builder();
    if let Some(tls) = &config.tls {
        builder = builder.tls_config(tls.server_config())?;
    }
    Ok(tokio::spawn(
        builder
            .tcp_nodelay(true)
            .layer(ServedMetrics)
            .layer(gate.clone())
            .add_routes(routes)
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = stop.await;
            }),
    ))
}

/// Checks with a gRPC health call to the advertised `address` (in the scheme the server
/// speaks) that this server, listening on `addr`, answers there.
pub(super) async fn check_advertised(
    config: &HaServerConfig,
    address: &str,
    addr: SocketAddr,
) -> Result<()> {
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    check_serving_tls(
        &format!("{scheme}://{address}"),
        addr,
        "",
        config.tls.as_ref(),
    )
    .await
}

/// Opens the ZooKeeper session and joins the election at the configured path with `address`.
pub(super) async fn contend(
    config: &HaServerConfig,
    address: &str,
) -> Result<(Session, MasterElection)> {
    let session = Session::connect(
        SessionConfig::new(&config.zk)
            .session_timeout(config.session_timeout)
            .credential(config.zk_auth.clone()),
    )
    .await?;
    let election =
        MasterElection::join_with(&session, &config.path, address, config.election.clone()).await?;
    Ok((session, election))
}

/// Sets `names` SERVING while `roles` says master, NOT_SERVING otherwise, until the election
/// goes.
pub(super) async fn follow_health(
    mut roles: tokio::sync::watch::Receiver<Role>,
    health: HealthReporter,
    names: Vec<&'static str>,
) {
    loop {
        let status = if roles.borrow_and_update().is_master() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in &names {
            health.set_service_status(*name, status).await;
        }
        if roles.changed().await.is_err() {
            return;
        }
    }
}
