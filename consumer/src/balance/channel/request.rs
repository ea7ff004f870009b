//! Each attempt's request: the caller's method, URI and headers, and what remains of the
//! caller's deadline when the attempt is not the call's first moment.

use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue};
use smallvec::SmallVec;
use tonic::body::Body;

use super::super::deadline::{self, GRPC_TIMEOUT};

/// The caller's deadline: when it passes, and the timeout it was given as.
#[derive(Clone, Copy, Debug)]
pub(super) struct Deadline {
    pub(super) at: Instant,
    pub(super) timeout: Duration,
}

impl Deadline {
    /// Whether it passed.
    pub(super) fn passed(deadline: Option<Deadline>) -> bool {
        deadline.is_some_and(|d| Instant::now() >= d.at)
    }
}

/// What every attempt of a call sends: the caller's request line and headers.
pub(super) struct AttemptRequests {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    headers: AttemptHeaders,
}

impl AttemptRequests {
    /// Takes the request line and headers of `parts` (its extensions stay with the call).
    pub(super) fn new(parts: &mut http::request::Parts) -> Self {
        AttemptRequests {
            method: std::mem::take(&mut parts.method),
            uri: std::mem::take(&mut parts.uri),
            version: parts.version,
            headers: AttemptHeaders::new(std::mem::take(&mut parts.headers)),
        }
    }

    /// The request of attempt number `n` (1 for the first) with `body`, `remaining` of the
    /// caller's `deadline` left.
    pub(super) fn next(
        &mut self,
        body: Body,
        n: usize,
        deadline: Option<Deadline>,
        remaining: Option<Duration>,
    ) -> http::Request<Body> {
        let mut request = http::Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.next();
        if let (Some(remaining), Some(deadline)) = (remaining, deadline)
            && (n > 1 || deadline.timeout - remaining >= Duration::from_millis(1))
        {
            // A retry, or an attempt after a wait (for a master), carries what remains of the
            // caller's deadline.
            request
                .headers_mut()
                .insert(GRPC_TIMEOUT, deadline::encode(remaining));
        }
        // No extensions: the endpoint channels below never read any a gRPC request carries
        // (tonic's connection reads none, hyper only extended CONNECT's), and the caller's stay
        // with the call: their map carries `Answered` back.
        request
    }
}

/// A request's headers for each attempt. The first attempt carries the caller's map itself; a
/// copy of its entries is kept inline (no allocation for up to [`INLINE_HEADERS`]: a gRPC call
/// carries `content-type`, `te` and what metadata the caller adds) to build the map of any
/// later attempt, since an attempt consumes its request.
struct AttemptHeaders {
    first: Option<HeaderMap>,
    copy: SmallVec<[(HeaderName, HeaderValue); INLINE_HEADERS]>,
}

/// Header entries [`AttemptHeaders`] keeps without a heap allocation.
const INLINE_HEADERS: usize = 4;

impl AttemptHeaders {
    fn new(headers: HeaderMap) -> Self {
        let copy = headers
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        AttemptHeaders {
            first: Some(headers),
            copy,
        }
    }

    /// The headers of the next attempt: the caller's map the first time, then maps built from
    /// the copy (every value of a repeated name, in order).
    fn next(&mut self) -> HeaderMap {
        self.first.take().unwrap_or_else(|| {
            let mut headers = HeaderMap::with_capacity(self.copy.len());
            for (name, value) in &self.copy {
                headers.append(name.clone(), value.clone());
            }
            headers
        })
    }
}
