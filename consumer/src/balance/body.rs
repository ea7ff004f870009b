//! Request bodies that can be sent again: what makes retrying a request possible (gRPC's retry
//! design, gRFC A6, buffers up to 256 KiB per call for the same reason).
//!
//! `prepare` reads the body's frames that are ready *now*, up to a limit. A body that ends
//! within the limit (every unary and server-streaming request, a client stream that is already
//! complete) becomes `Prepared::Replayable`: its bytes, sent as often as needed. A body that is
//! larger, or still streaming (a frame not ready yet), or carries trailers is
//! `Prepared::Committed`: it goes to one endpoint only, what was read put back in front. Until
//! an attempt actually starts sending it (its first frame is polled), it can still go to another
//! endpoint: a refused connection or a failed dial never cost a large request.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame};
use tokio::sync::Notify;
use tonic::body::Body;

/// The default buffering limit per request, as gRFC A6.
pub const DEFAULT_BUFFER_LIMIT: usize = 256 * 1024;

/// A request body made ready for sending.
#[derive(Debug)]
pub(crate) enum Prepared {
    /// The whole body: can be sent any number of times.
    Replayable(Bytes),
    /// Too large or still streaming: sent once, by the first attempt that polls it (`None` in
    /// the slot once taken).
    Committed(Arc<Mutex<Option<Body>>>),
}

impl Prepared {
    /// A body for one attempt. A committed body can be taken only once (`None` after); it
    /// comes with a signal fired when its last frame was sent (a kept body is sent at once).
    pub(crate) fn attempt(&mut self) -> Option<(Body, Option<Arc<Notify>>)> {
        match self {
            Prepared::Replayable(bytes) if bytes.is_empty() => Some((Body::empty(), None)),
            Prepared::Replayable(bytes) => Some((Body::new(Once(Some(bytes.clone()))), None)),
            Prepared::Committed(slot) => {
                let untouched = slot.lock().map(|b| b.is_some()).unwrap_or(false);
                untouched.then(|| {
                    let sent = Arc::new(Notify::new());
                    let body = Body::new(Deferred {
                        slot: slot.clone(),
                        body: None,
                        sent: sent.clone(),
                    });
                    (body, Some(sent))
                })
            }
        }
    }

    /// Whether the whole body is kept (it can be sent any number of times).
    #[cfg(test)]
    pub(crate) fn is_replayable(&self) -> bool {
        matches!(self, Prepared::Replayable(_))
    }

    /// Whether another attempt can carry this body: always for a kept body; for a committed one
    /// while no attempt has started sending it.
    pub(crate) fn is_available(&self) -> bool {
        match self {
            Prepared::Replayable(_) => true,
            Prepared::Committed(slot) => slot.lock().map(|b| b.is_some()).unwrap_or(false),
        }
    }
}

/// Reads what `body` has ready, up to `limit` bytes. A body of one data frame (every unary
/// request tonic encodes) is kept as that frame's bytes, not copied; a second frame starts a
/// buffer holding both.
pub(crate) async fn prepare(mut body: Body, limit: usize) -> Result<Prepared, tonic::Status> {
    let mut read = Read::default();
    loop {
        let next = poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await;
        match next {
            Poll::Ready(None) => return Ok(Prepared::Replayable(read.into_bytes())),
            Poll::Ready(Some(Err(status))) => return Err(status),
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    read.push(data);
                    if read.len() > limit {
                        return Ok(Prepared::Committed(chain(read.into_bytes(), None, body)));
                    }
                }
                Err(trailers) => {
                    return Ok(Prepared::Committed(chain(
                        read.into_bytes(),
                        Some(trailers),
                        body,
                    )));
                }
            },
            // Still streaming: what comes later cannot be waited for before sending.
            Poll::Pending => {
                return Ok(Prepared::Committed(chain(read.into_bytes(), None, body)));
            }
        }
    }
}

/// The data frames read so far: the first one as it came, later ones copied behind it.
#[derive(Default)]
enum Read {
    #[default]
    Nothing,
    One(Bytes),
    Many(BytesMut),
}

impl Read {
    fn push(&mut self, data: Bytes) {
        *self = match std::mem::take(self) {
            Read::Nothing => Read::One(data),
            Read::One(first) => {
                let mut many = BytesMut::with_capacity(first.len() + data.len());
                many.extend_from_slice(&first);
                many.extend_from_slice(&data);
                Read::Many(many)
            }
            Read::Many(mut many) => {
                many.extend_from_slice(&data);
                Read::Many(many)
            }
        };
    }

    fn len(&self) -> usize {
        match self {
            Read::Nothing => 0,
            Read::One(bytes) => bytes.len(),
            Read::Many(many) => many.len(),
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Read::Nothing => Bytes::new(),
            Read::One(bytes) => bytes,
            Read::Many(many) => many.freeze(),
        }
    }
}

fn chain(read: Bytes, held: Option<Frame<Bytes>>, rest: Body) -> Arc<Mutex<Option<Body>>> {
    Arc::new(Mutex::new(Some(Body::new(Chained {
        read: (!read.is_empty()).then_some(read),
        held,
        rest,
    }))))
}

/// A committed body as one attempt sees it: taken out of the shared slot on the first poll, so
/// an attempt that never started sending leaves it for the next one, and at most one sends it.
struct Deferred {
    slot: Arc<Mutex<Option<Body>>>,
    body: Option<Body>,
    /// Fired when the body ended (its last frame sent, or an error).
    sent: Arc<Notify>,
}

impl HttpBody for Deferred {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if self.body.is_none() {
            let taken = match self.slot.lock() {
                Ok(mut slot) => slot.take(),
                Err(_) => None,
            };
            match taken {
                Some(body) => self.body = Some(body),
                None => {
                    return Poll::Ready(Some(Err(tonic::Status::internal(
                        "the request body was already sent on another attempt",
                    ))));
                }
            }
        }
        let polled = match self.body.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        };
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.sent.notify_one();
        }
        polled
    }
}

/// A kept body for one attempt: its bytes as one data frame, the end of the stream with it.
///
/// Unlike `http_body_util::Full` it gives no exact size: hyper would add a `content-length`
/// header to every request (formatted per request, then encoded and checked by the
/// provider), which a gRPC request does not need: its messages carry their own lengths.
struct Once(Option<Bytes>);

impl HttpBody for Once {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        Poll::Ready(self.0.take().map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }
}

/// The frames already read, then the rest of the body.
struct Chained {
    read: Option<Bytes>,
    held: Option<Frame<Bytes>>,
    rest: Body,
}

impl HttpBody for Chained {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if let Some(read) = self.read.take() {
            return Poll::Ready(Some(Ok(Frame::data(read))));
        }
        if let Some(held) = self.held.take() {
            return Poll::Ready(Some(Ok(held)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_none() && self.held.is_none() && self.rest.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    type Sender = tokio::sync::mpsc::Sender<Result<Frame<Bytes>, tonic::Status>>;

    /// A body streamed from a channel, with `parts` already sent as data frames; the sender
    /// keeps it open (drop it to end the body).
    async fn streamed(parts: &[&'static [u8]]) -> (Sender, Body) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        for part in parts {
            tx.send(Ok(Frame::data(Bytes::from_static(part))))
                .await
                .unwrap();
        }
        let stream =
            http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        (tx, Body::new(stream))
    }

    #[tokio::test]
    async fn small_complete_bodies_replay_and_large_ones_commit_intact() {
        let small = Body::new(http_body_util::Full::new(Bytes::from_static(b"hello")));
        let mut prepared = prepare(small, 16).await.unwrap();
        assert!(prepared.is_replayable());
        for _ in 0..2 {
            let body = prepared.attempt().unwrap().0;
            // No exact size: hyper would add a `content-length` header to every request.
            assert_eq!(body.size_hint().exact(), None);
            assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"hello");
        }

        let large = Body::new(http_body_util::Full::new(Bytes::from(vec![7u8; 100])));
        let mut prepared = prepare(large, 16).await.unwrap();
        assert!(!prepared.is_replayable());
        // An attempt that never polled it leaves it for the next one.
        drop(prepared.attempt().unwrap().0);
        assert!(prepared.is_available());
        let body = prepared.attempt().unwrap().0;
        assert_eq!(body.collect().await.unwrap().to_bytes(), vec![7u8; 100]);
        assert!(prepared.attempt().is_none(), "a committed body goes once");
        assert!(!prepared.is_available());
    }

    #[tokio::test]
    async fn frames_that_all_arrived_replay_as_one_body_in_order() {
        let (tx, body) = streamed(&[b"ab", b"c", b"de"]).await;
        drop(tx);
        let mut prepared = prepare(body, 1024).await.unwrap();
        assert!(prepared.is_replayable());
        for _ in 0..2 {
            let body = prepared.attempt().unwrap().0;
            assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"abcde");
        }
        // Past the limit on the third frame: committed, nothing lost.
        let (tx, body) = streamed(&[b"ab", b"cd", b"ef"]).await;
        drop(tx);
        let mut prepared = prepare(body, 5).await.unwrap();
        assert!(!prepared.is_replayable());
        let body = prepared.attempt().unwrap().0;
        assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"abcdef");
    }

    #[tokio::test]
    async fn a_body_still_streaming_is_committed_with_what_was_read() {
        let (tx, body) = streamed(&[b"a"]).await;
        let mut prepared = prepare(body, 1024).await.unwrap();
        assert!(!prepared.is_replayable());
        tx.send(Ok(Frame::data(Bytes::from_static(b"b"))))
            .await
            .unwrap();
        drop(tx);
        let body = prepared.attempt().unwrap().0;
        assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"ab");
    }
}
