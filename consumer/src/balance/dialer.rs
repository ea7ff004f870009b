//! `Dialer`: how the consumer opens a connection to a provider. A connection counts as open only
//! when the provider has *spoken*: a TCP connect, then the server's first HTTP/2 bytes (a gRPC
//! server sends its SETTINGS frame as soon as it accepts), both within one timeout.
//!
//! Why: a listener that accepts TCP but never speaks HTTP/2 (a wedged process, the wrong service
//! on the port, a proxy with no backend) would otherwise pass a TCP-only connect timeout and
//! stall every request sent to it until the per-attempt timeout. Nothing of a request has been
//! written when the dial fails, so a [`DialError`] always means "never sent": the call goes to
//! another endpoint whatever its retry policy.
//!
//! An `https://` provider is dialled with TLS: TCP connect, the handshake (the certificate
//! verified against the consumer's CA, see [`ConsumerTls`](crate::ConsumerTls)), then the
//! server's first HTTP/2 bytes *inside* TLS, all within the same timeout. A certificate the
//! consumer does not trust, or a provider that refuses the consumer's (missing) client
//! certificate, fails the dial with the reason and the address; it is never retried in
//! plaintext. Without TLS configured, an `https://` provider is not dialled at all.

use std::future::Future;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tower::Service;
use zoorpc_registry::provider_url::host_port;

use super::liveness::{Liveness, socket_of};
use super::replay::Replay;
use crate::tls::TlsTarget;

/// How long a dial (TCP connect and the server's greeting) may take.
pub(crate) const DIAL_TIMEOUT: Duration = Duration::from_secs(1);

/// A provider could not be reached: nothing of any request was sent (so the request is always
/// tried elsewhere). Found in the `source()` chain of a call's status.
#[derive(Debug, thiserror::Error)]
#[error("cannot open a connection to {address}: {cause}")]
#[non_exhaustive]
pub struct DialError {
    /// `host:port` as dialled.
    pub address: String,
    /// What went wrong (refused, no greeting within the timeout, closed).
    pub cause: String,
}

impl DialError {
    /// Whether TLS refused the connection: the consumer does not trust the provider's
    /// certificate, or the provider refused the consumer (no or an untrusted client
    /// certificate). Dialling the same address again does not help until one of them changes.
    pub fn is_tls_refusal(&self) -> bool {
        self.cause.starts_with(TLS_HANDSHAKE_FAILED) || self.cause.starts_with(TLS_ENDED)
    }
}

/// How a failed handshake's cause starts (see [`DialError::is_tls_refusal`]).
const TLS_HANDSHAKE_FAILED: &str = "TLS handshake failed";
/// How the cause of a TLS session the provider ended before its greeting starts.
const TLS_ENDED: &str = "the provider ended the TLS session";

/// How a provider's connection is secured.
#[derive(Clone, Debug)]
pub(crate) enum Transport {
    /// `http://`: plaintext HTTP/2.
    Plain,
    /// `https://`: TLS, verified.
    Tls(TlsTarget),
    /// `https://` but no TLS configured (or no usable name): never dialled; the reason.
    Refused(String),
}

/// A connection as tonic gets it: plaintext or TLS.
pub(crate) trait Connection: AsyncRead + AsyncWrite + Send + Unpin {}

impl<S: AsyncRead + AsyncWrite + Send + Unpin> Connection for S {}

/// The connector of every provider channel (a tower `Service<Uri>`, as tonic expects).
#[derive(Clone, Debug)]
pub(crate) struct Dialer {
    /// Bound on the TCP connect, any TLS handshake and the wait for the server's first bytes
    /// together.
    pub(crate) timeout: Duration,
    /// Plaintext, TLS, or refused.
    pub(crate) transport: Transport,
    /// What the endpoint's watchdog reads of each connection (see [`Liveness`]).
    pub(crate) liveness: Arc<Liveness>,
}

impl Service<Uri> for Dialer {
    type Response = TokioIo<Box<dyn Connection>>;
    type Error = DialError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, DialError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), DialError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let timeout = self.timeout;
        let transport = self.transport.clone();
        let liveness = self.liveness.clone();
        let stages = match transport {
            Transport::Tls(_) => "connection, TLS handshake",
            _ => "connection",
        };
        Box::pin(async move {
            let port = uri.port_u16().unwrap_or(80);
            let address = host_port(uri.host().unwrap_or_default(), port);
            // A bracketed IPv6 literal, as it appears in a URL, is dialled without its brackets.
            let host = uri
                .host()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let failed = |cause: String| DialError {
                address: address.clone(),
                cause,
            };
            let dialled = async {
                let (stream, socket) = match transport {
                    Transport::Plain => {
                        let (tcp, socket) = dial(&host, port).await?;
                        (Box::new(tcp) as Box<dyn Connection>, socket)
                    }
                    Transport::Tls(tls) => dial_tls(&host, port, tls).await?,
                    Transport::Refused(reason) => return Err(reason),
                };
                Ok(Box::new(liveness.watch(stream, socket)) as Box<dyn Connection>)
            };
            match tokio::time::timeout(timeout, dialled).await {
                Ok(Ok(stream)) => Ok(TokioIo::new(stream)),
                Ok(Err(cause)) => Err(failed(cause)),
                Err(_) => Err(failed(format!(
                    "no {stages} and HTTP/2 greeting within {timeout:?}{}",
                    if stages == "connection" {
                        format!(
                            " (a TLS server waits for a handshake in silence: if it serves TLS, give {})",
                            crate::error::settings::TLS_CA
                        )
                    } else {
                        String::new()
                    }
                ))),
            }
        })
    }
}

/// A TCP connection (Nagle off) and a second descriptor of its socket, for the watchdog.
async fn connect_tcp(host: &str, port: u16) -> Result<(TcpStream, OwnedFd), String> {
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let socket = socket_of(&tcp).map_err(|e| e.to_string())?;
    Ok((tcp, socket))
}

/// TCP, then the server's first bytes (peeked, left for HTTP/2).
async fn dial(host: &str, port: u16) -> Result<(TcpStream, OwnedFd), String> {
    let (stream, socket) = connect_tcp(host, port).await?;
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(0) => Err("the server closed the connection without an HTTP/2 greeting".into()),
        Ok(_) => Ok((stream, socket)),
        Err(e) => Err(format!("reading the server's greeting: {e}")),
    }
}

/// TCP, the TLS handshake, then the server's first bytes inside TLS (kept for HTTP/2); with a
/// second descriptor of the TCP socket.
async fn dial_tls(
    host: &str,
    port: u16,
    tls: TlsTarget,
) -> Result<(Box<dyn Connection>, OwnedFd), String> {
    let (tcp, socket) = connect_tcp(host, port).await?;
    let name = tls.name.to_str().into_owned();
    let mut stream = tls.connector.connect(tls.name, tcp).await.map_err(|e| {
        format!(
            "{TLS_HANDSHAKE_FAILED}: {e} (the provider's certificate must be issued by a CA in {} and name {name}; a provider that does not speak TLS fails here too)",
            crate::error::settings::TLS_CA
        )
    })?;
    let mut first = vec![0u8; 64];
    match stream.read(&mut first).await {
        Ok(0) => Err("the provider closed the TLS connection without an HTTP/2 greeting".into()),
        Ok(n) => {
            first.truncate(n);
            Ok((Box::new(Replay::new(first, stream)), socket))
        }
        Err(e) => Err(format!(
            "{TLS_ENDED}: {e} (if it requires client certificates, give {} issued by a CA it trusts)",
            crate::error::settings::TLS_IDENTITY
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::failure::{Failure, classify_error};

    #[test]
    fn a_dial_error_names_the_address_and_was_never_sent() {
        let err = DialError {
            address: "127.0.0.1:11214".into(),
            cause: "connection refused".into(),
        };
        assert_eq!(
            err.to_string(),
            "cannot open a connection to 127.0.0.1:11214: connection refused"
        );
        assert_eq!(classify_error(&err), Failure::NotSent);
        assert!(!err.is_tls_refusal());
    }
}
