//! `Greeter`: the `hello.v1.HelloService` implementation. Answers `Hello <name>!` and names the
//! provider that answered, so a client can see load balancing and failover happen.

use std::time::Duration;

use tonic::{Request, Response, Status};
use zoorpc_proto::{HelloReply, HelloRequest, HelloService};

/// `HelloService` answering as `provider` (the URL it is registered under).
///
/// ```
/// use zoorpc_proto::{HelloRequest, HelloService};
/// use zoorpc_provider::Greeter;
/// let greeter = Greeter::new("http://127.0.0.1:11214");
/// let request = tonic::Request::new(HelloRequest { name: "zoo".into() });
/// let reply = tokio::runtime::Runtime::new()?.block_on(greeter.say_hello(request))?.into_inner();
/// assert_eq!(reply.message, "Hello zoo!");
/// assert_eq!(reply.provider, "http://127.0.0.1:11214");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Greeter {
    provider: String,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn greets_and_names_itself() {
        let greeter = Greeter::new("http://127.0.0.1:1");
        let reply = greeter
            .say_hello(Request::new(HelloRequest { name: "zoo".into() }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.message, "Hello zoo!");
        assert_eq!(reply.provider, "http://127.0.0.1:1");
    }
}
