//! `TrackedChannel`: a provider's tonic `Channel` that reports connection failures back to its
//! endpoint, so clients from [`crate::Consumer::lookup`] eject dead providers just as
//! [`crate::Consumer::call`] does. It is a tower `Service`, usable by any tonic client.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::transport::Channel;
use tower::Service;

use crate::endpoint_set::Endpoint;

/// A channel to one endpoint that ejects it on transport errors.
#[derive(Clone, Debug)]
pub struct TrackedChannel {
    channel: Channel,
    endpoint: Arc<Endpoint>,
}

impl TrackedChannel {
    /// Wraps `endpoint`'s channel.
    pub fn new(endpoint: Arc<Endpoint>) -> Self {
        TrackedChannel {
            channel: endpoint.channel(),
            endpoint,
        }
    }

    /// The endpoint this channel talks to.
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.endpoint
    }
}

impl Service<http::Request<Body>> for TrackedChannel {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.channel.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let response = self.channel.call(request);
        let endpoint = self.endpoint.clone();
        Box::pin(async move {
            let result = response.await;
            match &result {
                Ok(_) => endpoint.record_success(),
                Err(_) => endpoint.record_failure(),
            }
            result
        })
    }
}
