//! `Services`: the gRPC services a server serves (tonic's `Routes`) together with their names,
//! so health can report each of them without the user listing the names a second time.

use tonic::server::NamedService;
use tonic::service::Routes;

/// What [`Provider::serve`](crate::Provider::serve) and [`HaServer::serve`](crate::HaServer::serve)
/// take: a tonic-generated server (`EchoServer::new(MyEcho)`), which knows its gRPC name, also
/// behind an interceptor (`EchoServer::with_interceptor(MyEcho, check_token)`): whatever tonic's
/// own router takes.
pub trait GrpcService:
    tower::Service<
        http::Request<tonic::body::Body>,
        Response: axum_core::response::IntoResponse,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + NamedService
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> GrpcService for S where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response: axum_core::response::IntoResponse,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// Several gRPC services served together, as tonic's `Server::builder().add_service(..)` adds
/// them: what [`Provider::serve_with`](crate::Provider::serve_with) and
/// [`HaServer::serve_with`](crate::HaServer::serve_with) take. Health reports each service
/// added with [`Services::add_service`] by its name (and the whole server, `""`).
///
/// ```
/// use zoorpc_provider::Services;
/// # #[derive(Clone)] struct Echo;
/// # impl tonic::server::NamedService for Echo { const NAME: &'static str = "echo.v1.Echo"; }
/// # impl tower::Service<http::Request<tonic::body::Body>> for Echo {
/// #     type Response = http::Response<tonic::body::Body>;
/// #     type Error = std::convert::Infallible;
/// #     type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
/// #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> { std::task::Poll::Ready(Ok(())) }
/// #     fn call(&mut self, _: http::Request<tonic::body::Body>) -> Self::Future { std::future::ready(Ok(Default::default())) }
/// # }
/// let services = Services::new().add_service(Echo);
/// assert_eq!(services.names(), ["echo.v1.Echo"]);
/// // Routes built with tonic's own API: health reports the whole server only.
/// let routes = tonic::service::Routes::new(Echo);
/// assert!(Services::from(routes).names().is_empty());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Services {
    /// The router serving them.
    routes: Routes,
    /// Their gRPC names, in the order added: what health reports on.
    names: Vec<&'static str>,
}

impl Services {
    /// No services yet.
    pub fn new() -> Services {
        Services::default()
    }

    /// Adds `service`; health reports it by its gRPC name (`S::NAME`).
    pub fn add_service<S: GrpcService>(mut self, service: S) -> Services {
        self.names.push(S::NAME);
        self.routes = self.routes.add_service(service);
        self
    }

    /// The gRPC names of the services added with [`Services::add_service`], in that order.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// The router and the names.
    pub(crate) fn into_parts(self) -> (Routes, Vec<&'static str>) {
        (self.routes, self.names)
    }
}

/// Routes built with tonic's own API: served as they are, health reporting the whole server
/// (`""`) only.
impl From<Routes> for Services {
    fn from(routes: Routes) -> Services {
        Services {
            routes,
            names: Vec::new(),
        }
    }
}
