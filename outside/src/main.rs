//! A user's program on zoorpc, as the README shows it: `outside provider <zk>` serves this
//! crate's own `outside.v1.Echo` and keeps it registered until SIGTERM or Ctrl-C;
//! `outside call <zk> <n>` makes one call on the default channel and `n` on the idempotent one,
//! printing each reply (which names the provider that answered).

mod echo {
    tonic::include_proto!("outside.v1");
}

use echo::Words;
use echo::echo_client::EchoClient;
use echo::echo_server::{Echo, EchoServer};
use zoorpc::consumer::{CallPolicy, Consumer};
use zoorpc::provider::{Provider, ProviderConfig};

struct MyEcho;

#[tonic::async_trait]
impl Echo for MyEcho {
    async fn say(
        &self,
        request: tonic::Request<Words>,
    ) -> Result<tonic::Response<Words>, tonic::Status> {
        let at = request
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        Ok(tonic::Response::new(Words {
            text: format!("{} (from {at})", request.into_inner().text),
        }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(command), Some(zk)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: outside provider <zk> | outside call <zk> <n>");
        std::process::exit(2);
    };
    let zk = zk.as_str();
    match command.as_str() {
        "provider" => {
            // provider: any tonic service; health reports its name (S::NAME) as SERVING
            let provider = Provider::serve(
                ProviderConfig::new(zk, "/services/echo", 0),
                EchoServer::new(MyEcho),
            )
            .await?;
            println!("serving {}", provider.url());
            provider.run_until_signal().await?;
            println!("stopped");
        }
        "call" => {
            let n: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(1);
            // consumer: one channel for any generated client, made once, cloned freely
            let consumer = Consumer::connect(zk, "/services/echo").await?;
            let client = EchoClient::new(consumer.channel()); // never-sent requests retried
            let first = client
                .clone()
                .say(Words {
                    text: "first".into(),
                })
                .await?;
            println!("{}", first.into_inner().text);
            let client = EchoClient::new(consumer.channel_with(CallPolicy::IDEMPOTENT)); // also maybe-sent ones
            for i in 0..n {
                let mut client = client.clone();
                let reply = client
                    .say(Words {
                        text: format!("hello {i}"),
                    })
                    .await?;
                println!("{}", reply.into_inner().text);
            }
        }
        other => {
            eprintln!("unknown command {other:?}: use provider or call");
            std::process::exit(2);
        }
    }
    Ok(())
}
