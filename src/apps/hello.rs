//! The demo service: `hello.v1.HelloService` answered by a [`Greeter`], as the `zoorpc-provider`
//! and `zoorpc-ha-server` programs (and the tests) serve it. Answers `Hello <name>!` and names
//! the provider that answered, so a client can see load balancing and failover happen.

use std::time::Duration;

use tonic::{Request, Response, Status};
use zoorpc_proto::{
    FILE_DESCRIPTOR_SET, HelloReply, HelloRequest, HelloService, HelloServiceServer,
};
use zoorpc_provider::{Provider, ProviderConfig, Services};

/// `HelloService` answering as `provider` (the URL it is registered under, or the address it
/// contends with).
///
/// ```
/// use zoorpc::apps::hello::Greeter;
/// use zoorpc::proto::{HelloRequest, HelloService};
/// let greeter = Greeter::new("http://127.0.0.1:11214");
/// let request = tonic::Request::new(HelloRequest { name: "zoo".into() });
/// let reply = tokio::runtime::Runtime::new()?.block_on(greeter.say_hello(request))?.into_inner();
/// assert_eq!(reply.message, "Hello zoo!");
/// assert_eq!(reply.provider, "http://127.0.0.1:11214");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Greeter {
    /// What the answers name as the provider.
    provider: String,
    /// How long every call takes at least.
    delay: Duration,
}

impl Greeter {
    /// A greeter that answers as `provider`.
    pub fn new(provider: impl Into<String>) -> Self {
        Greeter {
            provider: provider.into(),
            delay: Duration::ZERO,
        }
    }

    /// Makes every call take at least `delay` (a slow provider, for drain and picking tests).
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[tonic::async_trait]
impl HelloService for Greeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let name = request.into_inner().name;
        Ok(Response::new(HelloReply {
            message: format!("Hello {name}!"),
            provider: self.provider.clone(),
        }))
    }
}

/// A provider of `HelloService` (and its reflection descriptors), answering as its URL.
pub async fn serve(config: ProviderConfig) -> Result<Provider, zoorpc_provider::Error> {
    serve_slow(config, Duration::ZERO).await
}

/// [`serve`], every call taking at least `delay`.
pub async fn serve_slow(
    config: ProviderConfig,
    delay: Duration,
) -> Result<Provider, zoorpc_provider::Error> {
    let config = config.file_descriptor_set(FILE_DESCRIPTOR_SET);
    Provider::serve_with(config, move |url| {
        Services::new().add_service(HelloServiceServer::new(
            Greeter::new(url.as_str()).with_delay(delay),
        ))
    })
    .await
}
