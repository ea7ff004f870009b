//! The response body a caller reads: the provider's, ended by the caller's deadline, and with a
//! connection that broke during it reported as `UNAVAILABLE` naming the provider.
//!
//! A server stream outlives the attempt that opened it, so what bounds it is here: the caller's
//! deadline (`DEADLINE_EXCEEDED` from the stream when it passes; the provider's stream is reset)
//! and the watchdog of the endpoint's connection (a connection silent for 10 s and then to a
//! health check for 5 s is shut down, and the stream ends `UNAVAILABLE`, see
//! [`liveness`](super::super::liveness)); the body counts as an open call of its endpoint until
//! it is dropped, so the watchdog goes on while it lasts, also once the endpoint left the list.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame};
use tonic::Status;
use zoorpc_registry::ProviderUrl;

use super::super::liveness::OpenCall;
use super::wording;

/// A provider's response body as the caller reads it.
pub(super) struct ResponseBody {
    body: Ending,
    /// The provider, named when its connection breaks.
    url: ProviderUrl,
    /// The caller's deadline and the timeout it was given as, if any.
    deadline: Option<(Pin<Box<tokio::time::Sleep>>, Duration)>,
    /// Keeps the endpoint's connection watched while the body lasts.
    _open: OpenCall,
}

impl ResponseBody {
    /// `body` from `url`, ending by `deadline` (the instant and the caller's timeout).
    pub(super) fn new(
        body: tonic::body::Body,
        url: ProviderUrl,
        deadline: Option<(Instant, Duration)>,
        open: OpenCall,
    ) -> Self {
        ResponseBody {
            body: Ending::new(body),
            url,
            deadline: deadline
                .map(|(at, timeout)| (Box::pin(tokio::time::sleep_until(at.into())), timeout)),
            _open: open,
        }
    }
}

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Poll::Ready(frame) = self.body.poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| {
                frame.map_err(|status| wording::broken_during_response(&self.url, status))
            }));
        }
        let Some((deadline, timeout)) = &mut self.deadline else {
            return Poll::Pending;
        };
        if deadline.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let timeout = *timeout;
        self.body.end();
        Poll::Ready(Some(Err(Status::deadline_exceeded(format!(
            "the caller's deadline ({timeout:?}) passed during the response"
        )))))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// `body`, ending with gRPC trailers that carry the status when it fails, instead of failing:
/// what a proxy forwards, so that its own clients read the status (a failed body would reset
/// their stream, which they read as `INTERNAL`).
///
/// ```
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// use http_body_util::BodyExt;
/// use zoorpc_consumer::balance::status_trailers;
/// let failing = http_body_util::StreamBody::new(tokio_stream::iter([Err::<
///     http_body::Frame<bytes::Bytes>,
///     _,
/// >(tonic::Status::unavailable("the connection to http://p:1 broke"))]));
/// let collected = status_trailers(tonic::body::Body::new(failing)).collect().await?;
/// let trailers = collected.trailers().expect("the status as trailers");
/// assert_eq!(trailers["grpc-status"], "14");
/// # Ok::<(), tonic::Status>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn status_trailers(body: tonic::body::Body) -> tonic::body::Body {
    tonic::body::Body::new(StatusTrailers {
        body: Ending::new(body),
    })
}

/// See [`status_trailers`].
struct StatusTrailers {
    /// Ended once the status was sent.
    body: Ending,
}

impl HttpBody for StatusTrailers {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        match self.body.poll_frame(cx) {
            Poll::Ready(Some(Err(status))) => {
                self.body.end();
                let mut trailers = http::HeaderMap::new();
                Poll::Ready(Some(match status.add_header(&mut trailers) {
                    Ok(()) => Ok(Frame::trailers(trailers)),
                    Err(unwritable) => Err(unwritable),
                }))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
}

/// A provider's body that this side may end before the provider does (the caller's deadline
/// passed, a failure was turned into trailers): once ended it yields nothing more.
struct Ending {
    body: tonic::body::Body,
    ended: bool,
}

impl Ending {
    fn new(body: tonic::body::Body) -> Self {
        Ending { body, ended: false }
    }

    /// The body's next frame; none once ended.
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        Pin::new(&mut self.body).poll_frame(cx)
    }

    /// Ends the body here. Dropping the provider's stream resets it: the provider stops working
    /// on it.
    fn end(&mut self) {
        self.ended = true;
        self.body = tonic::body::Body::empty();
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        if self.ended {
            http_body::SizeHint::with_exact(0)
        } else {
            self.body.size_hint()
        }
    }
}
