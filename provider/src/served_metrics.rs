//! `ServedMetrics`: a tower layer counting the requests a server answers, through the
//! `metrics` facade (a no-op until a program installs a recorder):
//! `zoorpc_served_total{method, code}`, `method` the gRPC path (`/hello.v1.HelloService/SayHello`),
//! `code` the gRPC status in the response headers (a method the server does not serve counts
//! as `method="unknown"`: clients name those, and could add series without end): a handler's error is answered trailers-only,
//! so it is there; `OK` when the status comes in the trailers (a successful answer, or a stream
//! that failed midway, which is not seen here). `Provider` and `HaServer` serve through it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower::{Layer, Service};

/// The `method` label of every request for a method the server does not serve
/// (`UNIMPLEMENTED`), whatever path the client sent.
pub(crate) const UNKNOWN_METHOD: &str = "unknown";

/// The layer; see the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ServedMetrics;

impl<S> Layer<S> for ServedMetrics {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted { inner }
    }
}

/// A service whose answers are counted; made by [`ServedMetrics`].
#[derive(Clone, Debug)]
pub(crate) struct Counted<S> {
    inner: S,
}

impl<S, B, ResBody> Service<http::Request<B>> for Counted<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = CountedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        CountedFuture {
            method: Some(request.uri().path().to_owned()),
            inner: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's answer, counted when it is ready.
    pub(crate) struct CountedFuture<F> {
        method: Option<String>,
        #[pin]
        inner: F,
    }
}

impl<F, R, E> Future for CountedFuture<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        if let Some(method) = this.method.take() {
            let code = match &output {
                Ok(response) => tonic::Status::from_header_map(response.headers())
                    .map_or("OK".to_owned(), |s| {
                        format!("{:?}", s.code()).to_uppercase()
                    }),
                Err(_) => "TRANSPORT_ERROR".to_owned(),
            };
            // A method the server does not have is named by the client: as a label it would
            // let any client add series without end (one per made-up name), so all of them
            // count as one.
            let method = if code == "UNIMPLEMENTED" {
                UNKNOWN_METHOD.to_owned()
            } else {
                method
            };
            metrics::counter!("zoorpc_served_total", "method" => method, "code" => code)
                .increment(1);
        }
        Poll::Ready(output)
    }
}
