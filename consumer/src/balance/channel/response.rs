//! The response body a caller reads: the provider's, ended by the caller's deadline, and with a
//! connection that broke during it reported as `UNAVAILABLE` naming the provider.
//!
//! A server stream outlives the attempt that opened it, so what bounds it is here: the caller's
//! deadline (`DEADLINE_EXCEEDED` from the stream when it passes; the provider's stream is reset)
//! and HTTP/2 keepalive on the endpoint's connection (a silent provider's connection is closed
//! after the keepalive interval and timeout, and the stream ends `UNAVAILABLE`, see
//! [`endpoint`](super::super::endpoint)).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame};
use tonic::Status;
use zoorpc_registry::ProviderUrl;

use super::wording;

/// A provider's response body as the caller reads it.
pub(super) struct ResponseBody {
    body: tonic::body::Body,
    /// The provider, named when its connection breaks.
    url: ProviderUrl,
    /// The caller's deadline and the timeout it was given as, if any.
    deadline: Option<(Pin<Box<tokio::time::Sleep>>, Duration)>,
    /// The deadline passed: the stream ended.
    expired: bool,
}

impl ResponseBody {
    /// `body` from `url`, ending by `deadline` (the instant and the caller's timeout).
    pub(super) fn new(
        body: tonic::body::Body,
        url: ProviderUrl,
        deadline: Option<(Instant, Duration)>,
    ) -> Self {
        ResponseBody {
            body,
            url,
            deadline: deadline
                .map(|(at, timeout)| (Box::pin(tokio::time::sleep_until(at.into())), timeout)),
            expired: false,
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
        if self.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
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
        self.expired = true;
        // Dropping the provider's stream resets it: the provider stops working on it.
        self.body = tonic::body::Body::empty();
        Poll::Ready(Some(Err(Status::deadline_exceeded(format!(
            "the caller's deadline ({timeout:?}) passed during the response"
        )))))
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        if self.expired {
            http_body::SizeHint::with_exact(0)
        } else {
            self.body.size_hint()
        }
    }
}
