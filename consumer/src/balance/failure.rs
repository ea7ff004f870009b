//! Classifying a failed call: was the request never sent (always safe to retry elsewhere), maybe
//! processed (retry only if the method is idempotent), or an answer from the application (never
//! retried)?
//!
//! "Never sent" is decided from the error chain: a refused or failed TCP connect, a failed dial
//! ([`DialError`]: no HTTP/2 greeting in time), or an HTTP/2 stream the server refused (`REFUSED_STREAM`, what a draining server answers to requests it
//! did not start).

use std::error::Error as StdError;

use super::dialer::DialError;

/// What a failed call means for retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The request did not reach the application: retry on another endpoint.
    NotSent,
    /// The connection broke after the request may have been processed.
    MaybeSent,
    /// The application (or a deadline) answered: do not retry, do not eject.
    Application,
}

impl Failure {
    /// Whether the endpoint should be ejected for a backoff.
    pub(crate) fn is_connection_failure(self) -> bool {
        self != Failure::Application
    }
}

/// Classifies a transport error (what a tonic `Channel` returns instead of a response) by its
/// source chain.
pub(crate) fn classify_error(error: &(dyn StdError + 'static)) -> Failure {
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(err) = source {
        if err.downcast_ref::<DialError>().is_some() {
            return Failure::NotSent;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused
                    | AddrNotAvailable
                    | NotConnected
                    | HostUnreachable
                    | NetworkUnreachable
            ) {
                return Failure::NotSent;
            }
        }
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            // A stream the server refused, or one above the last stream a draining server's
            // GOAWAY (NO_ERROR) said it would process: h2 fails exactly those with the GOAWAY
            // itself (streams it did take fail later with the connection's end instead).
            if h2.reason() == Some(h2::Reason::REFUSED_STREAM)
                || (h2.is_go_away() && h2.is_remote() && h2.reason() == Some(h2::Reason::NO_ERROR))
            {
                return Failure::NotSent;
            }
        }
        if let Some(hyper) = err.downcast_ref::<hyper::Error>()
            && hyper.is_canceled()
        {
            // Dropped before being written: its connection was closing.
            return Failure::NotSent;
        }
        let text = err.to_string();
        if text.contains("tcp connect error") || text.contains("error trying to connect") {
            return Failure::NotSent;
        }
        source = err.source();
    }
    Failure::MaybeSent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_connections_were_never_sent() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(classify_error(&io), Failure::NotSent);
        let status = tonic::Status::from_error(Box::new(io));
        assert_eq!(classify_error(&status), Failure::NotSent);
        assert!(Failure::NotSent.is_connection_failure());
        assert!(!Failure::Application.is_connection_failure());
    }

    #[test]
    fn a_broken_connection_may_have_been_processed() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(classify_error(&reset), Failure::MaybeSent);
    }
}
