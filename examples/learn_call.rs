//! Learn the API, 2 of 3: call a service through the registry, balanced and failed over.
//!
//! `cargo run --example learn_call -- 127.0.0.1:2181` while `learn_serve` runs (a few of them).
//! Kill providers (`kill -9`) while it runs: no call fails as long as one is registered.

use std::time::Duration;

use zoorpc::apps::echo::{EchoClient, EchoRequest};
use zoorpc::consumer::{Answered, CallPolicy, Consumer, ConsumerConfig, Strategy};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: learn_call [HOST:PORT]  (the ZooKeeper; default 127.0.0.1:2181)";
    let (zk, _) = zoorpc::apps::learn_args(usage, &[]);
    // Watches `/services/echo`; returns with the list already loaded (maybe empty).
    let config = ConsumerConfig::new(zk, "/services/echo").strategy(Strategy::LeastLoaded);
    let consumer = Consumer::connect_with(config).await?;
    let urls: Vec<String> = consumer.urls().iter().map(ToString::to_string).collect();
    println!("providers: {}", urls.join(" "));

    // One channel for any generated client: make the client once, keep it, clone it freely.
    // IDEMPOTENT: a call that may have reached a dying provider is retried too (Echo is safe
    // to repeat); the default channel retries only calls that were never sent.
    let mut client = EchoClient::new(consumer.channel_with(CallPolicy::IDEMPOTENT));
    for i in 0..20 {
        let request = EchoRequest {
            text: format!("hello {i}"),
            ..EchoRequest::default()
        };
        match client.say(request).await {
            Ok(response) => {
                // Which provider answered, and after how many attempts.
                let answered = response.extensions().get::<Answered>().cloned();
                let reply = response.into_inner();
                match answered {
                    Some(a) => {
                        println!("{} from {} ({} attempt(s))", reply.text, a.url, a.attempts)
                    }
                    None => println!("{}", reply.text),
                }
            }
            // No provider registered: UNAVAILABLE at once, naming the base path.
            Err(status) => println!("failed: {status}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
