//! `MasterGate`: the tower layer that lets requests through only while master (see
//! [`MasterGate`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::{Bytes, StdError};
use tonic::server::NamedService;
use tower::{Layer, Service};
use zoorpc_registry::Role;
use zoorpc_registry::election::{Admission, Mastership};

use zoorpc_proto::standby::standby_status;

/// A tower [`Layer`] that lets requests through only while this process is the
/// master of an election, and answers every other request with the standby refusal.
///
/// Guarantees:
/// - The role is checked per request, when the request arrives (in `call`), from the
///   election's own state ([`Mastership`]): no task in between that could lag behind a
///   step-down. Master means the role *and* the master's lease: the master has heard from
///   ZooKeeper within the lease (3/5 of the session timeout, measured on the boot clock from
///   when the request it heard back on was sent), so a process resumed after a pause longer
///   than that refuses from its first request on, before any of its tasks has run, and long
///   before its session can have expired and another contender taken over. A request
///   admitted while master runs to completion even if mastership is lost meanwhile (as any
///   in-flight call does when a server stops); guard side effects that must not outlive
///   mastership with the election's [`zoorpc_registry::Fence`].
/// - A master hands over or resigns only once every request its gate admitted has completed:
///   each holds a [`Mastership::admit`] admission, counted *before* the role is read, until
///   its answer's body ended (trailers included) or the request was dropped; the election
///   waits for the count to reach zero (at most one lease, see
///   [`zoorpc_registry::election`]) before it releases the node. A designee or standby
///   therefore answers its first call as master only after the old master's last answer.
/// - A refused request never reaches the inner service (no handler runs, its body is not read):
///   the answer is a trailers-only gRPC response, `UNAVAILABLE` with
///   [`STANDBY_METADATA`](zoorpc_proto::standby::STANDBY_METADATA) naming the master this process knows
///   ([`standby_status`]), so clients may retry it on the master.
/// - Not master means any other role: standby, joining, electing, disconnected, left; and a gate
///   not bound to an election yet (an [`crate::HaServer`] serves before it contends).
/// - Services named with [`MasterGate::exempt`] (e.g. `grpc.health.v1.Health`) pass whatever
///   the role: they describe the process, not the service it holds mastership for.
///
/// ```no_run
/// # async fn demo<S: zoorpc_provider::GrpcService>(election: zoorpc_registry::MasterElection, my_service: S) -> Result<(), tonic::transport::Error> {
/// use zoorpc_provider::MasterGate;
/// let gate = MasterGate::new(election.mastership());
/// tonic::transport::Server::builder()
///     .layer(gate)
///     .add_service(my_service)
///     .serve(std::net::SocketAddr::from(([127, 0, 0, 1], 9090)))
///     .await
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct MasterGate {
    /// The election's mastership, once known; unset means "not master yet".
    roles: Arc<OnceLock<Source>>,
    /// gRPC service names that pass whatever the role.
    exempt: Arc<[&'static str]>,
}

impl MasterGate {
    /// A gate following `mastership` ([`zoorpc_registry::MasterElection::mastership`]): it
    /// lets requests through only while that contender is master within its lease.
    pub fn new(mastership: Mastership) -> MasterGate {
        let gate = MasterGate::unbound();
        gate.bind(mastership);
        gate
    }

    /// A gate that refuses everything until [`MasterGate::bind`] gives it the roles.
    pub(crate) fn unbound() -> MasterGate {
        MasterGate {
            roles: Arc::new(OnceLock::new()),
            exempt: Arc::from(Vec::new()),
        }
    }

    /// Starts following `mastership` (only the first call counts), in every clone of this gate.
    pub(crate) fn bind(&self, mastership: Mastership) {
        let _ = self.roles.set(Source::Election(mastership));
    }

    /// Lets requests to the gRPC service `service` (e.g. `"grpc.health.v1.Health"`) through
    /// whatever the role.
    pub fn exempt(mut self, service: &'static str) -> MasterGate {
        let mut names = self.exempt.to_vec();
        names.push(service);
        self.exempt = Arc::from(names);
        self
    }

    /// `Ok` if a request may go through now (with its admission as master, `None` for an
    /// exempt service), else the refusal to answer with.
    fn admit(&self, path: &str) -> Result<Option<Admission>, tonic::Status> {
        let service = path.trim_start_matches('/').split('/').next().unwrap_or("");
        if self.exempt.contains(&service) {
            return Ok(None);
        }
        let Some(source) = self.roles.get() else {
            return Err(standby_status(None));
        };
        let role = match source {
            Source::Election(mastership) => match mastership.admit() {
                Some(admission) => return Ok(Some(admission)),
                None => mastership.role(),
            },
            #[cfg(test)]
            Source::Roles(roles) => roles.borrow().clone(),
        };
        match role {
            // A bare role (the unit test): no election to count in.
            Role::Master { .. } => Ok(None),
            Role::Standby { master } => Err(standby_status(Some(&master))),
            _ => Err(standby_status(None)),
        }
    }

    /// `None` if a request may go through now, else the refusal to answer with.
    #[cfg(test)]
    fn refusal(&self, path: &str) -> Option<tonic::Status> {
        self.admit(path).err()
    }
}

/// Where a gate reads whether this process is master.
#[derive(Debug)]
enum Source {
    /// An election's role and lease.
    Election(Mastership),
    /// A bare role (no lease), for the refusal's unit test.
    #[cfg(test)]
    Roles(tokio::sync::watch::Receiver<Role>),
}

impl<S> Layer<S> for MasterGate {
    type Service = MasterGated<S>;

    fn layer(&self, inner: S) -> MasterGated<S> {
        MasterGated {
            gate: self.clone(),
            inner,
        }
    }
}

/// A service (or tonic's `Routes`) that answers only while master; made by [`MasterGate`].
#[derive(Clone, Debug)]
pub struct MasterGated<S> {
    gate: MasterGate,
    inner: S,
}

/// A gated service keeps its name, so it can be added to a tonic server like the service itself.
impl<S: NamedService> NamedService for MasterGated<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, ResBody> Service<http::Request<B>> for MasterGated<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<StdError>,
{
    /// tonic's body (as `Routes` answers), so a gate can be optional (`option_layer`).
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = GateFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match self.gate.admit(request.uri().path()) {
            Ok(admission) => GateFuture::Admitted {
                admission,
                inner: self.inner.call(request),
            },
            Err(status) => GateFuture::Refused {
                response: Some(status.into_http()),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of a [`MasterGated`]: the inner service's, or the refusal.
    #[project = GateFutureProj]
    // pin-project-lite takes no attributes (docs) on variant fields; the variants say what
    // their fields hold.
    #[allow(missing_docs)]
    pub enum GateFuture<F> {
        /// Admitted: the inner service answers (`inner`: its future); `admission` counts the
        /// request in flight as master until its answer's body ended (or it was dropped).
        Admitted { admission: Option<Admission>, #[pin] inner: F },
        /// Refused: the standby refusal, ready at once (`response`: taken when it completes).
        Refused { response: Option<http::Response<Body>> },
    }
}

impl<F, B, E> Future for GateFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<StdError>,
{
    type Output = Result<http::Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GateFutureProj::Admitted { admission, inner } => {
                let answer = std::task::ready!(inner.poll(cx));
                // An error drops the admission here: nothing more is sent as master. A body
                // already at its end (a trailers-only answer) drops it once the response is
                // handed over: the answer is complete.
                let admission = admission.take();
                Poll::Ready(answer.map(|response| {
                    response.map(|body| {
                        Body::new(GatedBody {
                            inner: body,
                            admission,
                        })
                    })
                }))
            }
            GateFutureProj::Refused { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled again after it completed: as a finished future may, never ready.
                None => Poll::Pending,
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The body of an admitted answer: the inner one, holding the request's admission as
    /// master until its last frame (trailers included) was taken, or it is dropped.
    struct GatedBody<B> {
        #[pin]
        inner: B,
        admission: Option<Admission>,
    }
}

impl<B: http_body::Body> http_body::Body for GatedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) {
            // The end, or an error ending it: the answer is complete.
            this.admission.take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zoorpc_proto::standby::STANDBY_METADATA;

    #[test]
    fn refuses_unless_master_and_lets_exempt_services_through() {
        let (tx, rx) = tokio::sync::watch::channel(Role::Joining);
        let unbound = MasterGate::unbound().exempt("grpc.health.v1.Health");
        assert!(unbound.refusal("/echo.v1.Echo/Say").is_some());
        assert!(unbound.refusal("/grpc.health.v1.Health/Check").is_none());
        let _ = unbound.roles.set(Source::Roles(rx));
        tx.send_replace(Role::Master { epoch: 7 });
        assert!(unbound.refusal("/echo.v1.Echo/Say").is_none());
        tx.send_replace(Role::Standby {
            master: "127.0.0.1:1".into(),
        });
        let refusal = unbound.refusal("/echo.v1.Echo/Say");
        let value = refusal
            .as_ref()
            .and_then(|s| s.metadata().get(STANDBY_METADATA))
            .and_then(|v| v.to_str().ok());
        assert_eq!(value, Some("127.0.0.1:1"));
        for role in [Role::Electing, Role::Disconnected, Role::Left] {
            tx.send_replace(role);
            assert!(unbound.refusal("/echo.v1.Echo/Say").is_some());
        }
    }
}
