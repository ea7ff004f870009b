//! `Dialer`: how the consumer opens a connection to a provider. A connection counts as open only
//! when the provider has *spoken*: a TCP connect, then the server's first HTTP/2 bytes (a gRPC
//! server sends its SETTINGS frame as soon as it accepts), both within one timeout.
//!
//! Why: a listener that accepts TCP but never speaks HTTP/2 (a wedged process, the wrong service
//! on the port, a proxy with no backend) would otherwise pass a TCP-only connect timeout and
//! stall every request sent to it until the per-attempt timeout. Nothing of a request has been
//! written when the dial fails, so a [`DialError`] always means "never sent": the call goes to
//! another endpoint whatever its retry policy.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower::Service;
use zoorpc_registry::provider_url::host_port;

/// How long a dial (TCP connect and the server's greeting) may take.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(1);

/// A provider could not be reached: nothing of any request was sent.
///
/// ```
/// use zoorpc_consumer::{DialError, Failure, balance::classify_error};
/// let err = DialError { address: "127.0.0.1:11214".into(), cause: "connection refused".into() };
/// assert_eq!(err.to_string(), "cannot open a connection to 127.0.0.1:11214: connection refused");
/// assert_eq!(classify_error(&err), Failure::NotSent); // always retried elsewhere
/// ```
#[derive(Debug, thiserror::Error)]
#[error("cannot open a connection to {address}: {cause}")]
pub struct DialError {
    /// `host:port` as dialled.
    pub address: String,
    /// What went wrong (refused, no greeting within the timeout, closed).
    pub cause: String,
}

/// The connector of every provider channel (a tower `Service<Uri>`, as tonic expects).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dialer {
    /// Bound on the TCP connect and the wait for the server's first bytes together.
    pub(crate) timeout: Duration,
}

impl Service<Uri> for Dialer {
    type Response = TokioIo<TcpStream>;
    type Error = DialError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, DialError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), DialError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let timeout = self.timeout;
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
            match tokio::time::timeout(timeout, dial(&host, port)).await {
                Ok(Ok(stream)) => Ok(TokioIo::new(stream)),
                Ok(Err(cause)) => Err(failed(cause)),
                Err(_) => Err(failed(format!(
                    "no connection and HTTP/2 greeting within {timeout:?}"
                ))),
            }
        })
    }
}

async fn dial(host: &str, port: u16) -> Result<TcpStream, String> {
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(0) => Err("the server closed the connection without an HTTP/2 greeting".into()),
        Ok(_) => Ok(stream),
        Err(e) => Err(format!("reading the server's greeting: {e}")),
    }
}
