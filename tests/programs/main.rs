//! The programs as operators and other tools drive them: `zoorpc` and the `zoorpc-*` programs'
//! lines, exit codes and flags (every flag given garbage), the gRPC proxy, TLS through the
//! programs, operator views and `--metrics`.
//!
//! One test binary of several files (one link, one shared ZooKeeper): `cargo test --test programs`;
//! one file's tests: `cargo test --test programs cli::`.

#[path = "../common/mod.rs"]
mod common;

mod cli;
pub mod console;
mod console_browser;
mod contender_addresses;
mod election_paths;
mod examples;
mod folders;
mod garbage_flags;
mod metrics;
mod negative_values;
mod operator_views;
mod program_agreement;
mod programs;
mod prometheus;
mod provider_stop;
mod proxy;
mod tls_programs;
mod wording;
mod xds;

/// Calls `/hello.v1.HelloService/Nope`, a method no provider has, on `channel`: the status it
/// fails with.
async fn call_a_method_no_provider_has(channel: tonic::transport::Channel) -> tonic::Status {
    use zoorpc::proto::HelloRequest;
    let mut grpc = tonic::client::Grpc::new(channel);
    if let Err(e) = grpc.ready().await {
        return tonic::Status::unavailable(format!("channel not ready: {e}"));
    }
    let codec = tonic_prost::ProstCodec::<HelloRequest, HelloRequest>::default();
    let path = http::uri::PathAndQuery::from_static("/hello.v1.HelloService/Nope");
    match grpc
        .unary(tonic::Request::new(HelloRequest::default()), path, codec)
        .await
    {
        Ok(_) => tonic::Status::ok("a method no provider has was answered"),
        Err(status) => status,
    }
}
