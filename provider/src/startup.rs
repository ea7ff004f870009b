//! What a server checks before it tells anyone where it is: the listener (a taken port is a clear
//! error), the address it advertises (never `0.0.0.0` / `::`), and a health call to that address
//! (so a provider never registers, nor a contender contends with, an address nobody can reach).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::error::{Error, Result};
use crate::tls::ProviderTls;

/// Binds `listen` and works out the host to advertise: the listener, its real address (port 0
/// resolved) and the host ([`advertised_host`]), before anything else starts.
pub(crate) async fn listen(
    listen: SocketAddr,
    advertise: Option<&str>,
) -> Result<(tokio::net::TcpListener, SocketAddr, String)> {
    let host = advertised_host(listen.ip(), advertise)?;
    let listener = bind(listen).await?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: listen,
        source,
    })?;
    Ok((listener, addr, host))
}

/// Binds `addr`; a taken port is [`Error::PortInUse`].
async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(Error::PortInUse { addr }),
        Err(source) => Err(Error::Bind { addr, source }),
    }
}

/// The host to advertise for a server listening on `listen`: `advertise` if given, else the
/// listen IP. An unspecified address (`0.0.0.0`, `::`) is refused either way: no client can dial
/// it, and which of the machine's addresses clients should use is theirs to say (Dubbo and
/// Curator guess "the first non-loopback address", which goes wrong on machines with several,
/// hence Dubbo's `DUBBO_IP_TO_REGISTRY`).
pub(crate) fn advertised_host(listen: IpAddr, advertise: Option<&str>) -> Result<String> {
    match advertise {
        Some(host) => {
            let literal = host.trim_start_matches('[').trim_end_matches(']');
            let unspecified = literal.parse::<IpAddr>().is_ok_and(|ip| {
                ip.is_unspecified()
                    || matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_unspecified()))
            });
            if unspecified {
                return Err(Error::UnspecifiedAdvertiseHost {
                    host: host.to_owned(),
                });
            }
            Ok(host.to_owned())
        }
        None if listen.is_unspecified() => Err(Error::AdvertiseHostNeeded { listen }),
        None => Ok(listen.to_string()),
    }
}

/// Calls the health service at `endpoint` (`http://host:port` or, with `tls`, `https://`: the
/// advertised address) until it answers SERVING for `service` ("" for the whole server), at most
/// 5 s; otherwise [`Error::AdvertisedUnreachable`] naming `endpoint` (`listen` is where the
/// server listens, `withheld` what is therefore not done, for the message). Over TLS the handshake accepts only the server's own
/// certificate; a server requiring client certificates cannot be called without one, so there
/// a completed TLS 1.3 handshake pinned to its own certificate is the proof (only this server
/// holds its key); see [`ProviderTls`].
pub(crate) async fn check_serving(
    endpoint: &str,
    listen: SocketAddr,
    service: &str,
    tls: Option<&ProviderTls>,
    withheld: &'static str,
) -> Result<()> {
    let handshake_only = tls.is_some_and(ProviderTls::requires_client_certificates);
    let tls = tls.map(ProviderTls::probe_config);
    let fail = |detail: String| Error::AdvertisedUnreachable {
        url: endpoint.to_owned(),
        listen,
        detail,
        withheld,
    };
    let target = probe_target(endpoint, tls.is_some()).map_err(fail)?;
    let attempt = || async {
        match &tls {
            Some(config) if handshake_only => handshake_once(&target, config.clone()).await,
            _ => health_once(&target, tls.clone(), service).await,
        }
    };
    // Tried until 5 s have passed; the last failure is the one reported. Our listener is bound
    // before the check, so a connection refused three times in a row is no server of ours
    // starting up: said at once rather than after the 5 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut last = "no answer within 5 s".to_owned();
    let mut refused = 0;
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, attempt()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => {
                refused = if e.contains("refused") {
                    refused + 1
                } else {
                    0
                };
                last = e;
                if refused >= 3 {
                    break;
                }
            }
            Err(_) => break,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(fail(last))
}

/// The endpoint the check dials, with a 1 s connect timeout. tonic dials what the connector is
/// given; with `tls` the TLS handshake is ours, so the connector sees an http:// URI and the
/// requests still say https.
fn probe_target(
    endpoint: &str,
    tls: bool,
) -> std::result::Result<tonic::transport::Endpoint, String> {
    let target =
        tonic::transport::Endpoint::from_shared(endpoint.to_owned()).map_err(|e| e.to_string())?;
    let target = match tls {
        true => {
            let plain = endpoint.replacen("https://", "http://", 1);
            tonic::transport::Endpoint::from_shared(plain)
                .map_err(|e| e.to_string())?
                .origin(target.uri().clone())
        }
        false => target,
    };
    Ok(target.connect_timeout(Duration::from_secs(1)))
}

/// One TLS handshake with `target`, within 1 s: the proof for a server that requires client
/// certificates.
async fn handshake_once(
    target: &tonic::transport::Endpoint,
    config: Arc<rustls::ClientConfig>,
) -> std::result::Result<(), String> {
    let uri = target.uri();
    let host = uri.host().unwrap_or_default();
    let shake = tls_handshake(host, uri.port_u16().unwrap_or(443), config);
    match tokio::time::timeout(Duration::from_secs(1), shake).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("TLS handshake: {e}")),
        Err(_) => Err("no TLS handshake within 1 s".to_owned()),
    }
}

/// One health call to `target` for `service` (over TLS with `tls`): `Ok` when it answers
/// SERVING.
async fn health_once(
    target: &tonic::transport::Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
    service: &str,
) -> std::result::Result<(), String> {
    let channel = match tls {
        Some(config) => match tokio::time::timeout(
            Duration::from_secs(1),
            target.connect_with_connector(TlsProbe(config)),
        )
        .await
        {
            Ok(connected) => connected.map_err(|e| zoorpc_registry::error_chain(&e))?,
            Err(_) => return Err("no TLS handshake within 1 s".to_owned()),
        },
        None => target
            .connect()
            .await
            .map_err(|e| zoorpc_registry::error_chain(&e))?,
    };
    let request = tonic_health::pb::HealthCheckRequest {
        service: service.into(),
    };
    match HealthClient::new(channel).check(request).await {
        Ok(r) if r.get_ref().status() == ServingStatus::Serving => Ok(()),
        Ok(r) => Err(format!("health says {:?}", r.get_ref().status())),
        Err(e) => Err(e.to_string()),
    }
}

/// The self-check's connector: TCP, then a TLS handshake with the probe's configuration.
#[derive(Clone)]
struct TlsProbe(Arc<rustls::ClientConfig>);

impl tower::Service<http::Uri> for TlsProbe {
    type Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<Self::Response>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let config = self.0.clone();
        Box::pin(async move {
            let host = uri.host().unwrap_or_default();
            let stream = tls_handshake(host, uri.port_u16().unwrap_or(443), config).await?;
            Ok(hyper_util::rt::TokioIo::new(stream))
        })
    }
}

/// TCP to `host:port` (an IPv6 literal may be bracketed), then a TLS handshake with `config`.
async fn tls_handshake(
    host: &str,
    port: u16,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    // The name does not matter to the pinned verifier; it must only be well formed.
    let name = rustls::pki_types::ServerName::try_from(host).unwrap_or(
        rustls::pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
    );
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_advertises_the_unspecified_address() {
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(advertised_host(lo, None).unwrap(), "127.0.0.1");
        assert_eq!(advertised_host(any, Some("10.0.0.7")).unwrap(), "10.0.0.7");
        assert!(advertised_host(any, None).is_err());
        assert!(advertised_host(lo, Some("0.0.0.0")).is_err());
        assert!(advertised_host(lo, Some("[::]")).is_err());
        assert!(advertised_host(lo, Some("::ffff:0.0.0.0")).is_err());
    }
}
