//! Stock gRPC tools: every server zoorpc runs answers server reflection v1 (grpcurl) and
//! v1alpha (Python's grpcio-reflection) for the services it serves, from the descriptor sets it
//! was given, plus health; an HA standby answers reflection too (only the served service is
//! refused).

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::zk;
use tokio_stream::StreamExt;
use zoorpc_testkit::{ChildProcess, unique_path};

/// The service names reflection v1 and v1alpha list at `url`.
async fn listed(url: &str) -> (Vec<String>, Vec<String>) {
    use tonic_reflection::pb::{v1, v1alpha};
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let mut v1_names = Vec::new();
    while let Some(answer) = answers.next().await {
        if let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
            answer.unwrap().message_response
        {
            v1_names.extend(list.service.into_iter().map(|s| s.name));
        }
    }
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "echo.v1.Echo".into(),
            ),
        ),
    };
    let list = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([list, request]))
        .await
        .unwrap()
        .into_inner();
    let mut alpha_names = Vec::new();
    while let Some(answer) = answers.next().await {
        use v1alpha::server_reflection_response::MessageResponse;
        let answer = match answer {
            Ok(answer) => answer,
            Err(status) => {
                alpha_names.push(format!("status:{:?}", status.code()));
                break;
            }
        };
        match answer.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                alpha_names.extend(list.service.into_iter().map(|s| s.name))
            }
            Some(MessageResponse::FileDescriptorResponse(files)) => alpha_names.push(format!(
                "file-descriptors:{}",
                files.file_descriptor_proto.len()
            )),
            Some(MessageResponse::ErrorResponse(e)) => {
                alpha_names.push(format!("error:{}", e.error_code))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    (v1_names, alpha_names)
}

#[tokio::test]
async fn a_providers_own_service_is_listed_by_reflection_v1_and_v1alpha() {
    let connect = zk().connect_string();
    let base = unique_path("reflection");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-echo"));
    cmd.args(["--zk", &connect, "--base-path", &base, "--port", "0"]);
    let mut echo = ChildProcess::spawn("echo", cmd).unwrap();
    let line = echo
        .wait_for_line("registered ", Duration::from_secs(20))
        .unwrap();
    let url = line.split_whitespace().nth(2).unwrap().to_owned();
    let (v1, v1alpha) = listed(&url).await;
    for names in [&v1, &v1alpha] {
        for expected in [
            "echo.v1.Echo",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} not in {names:?}"
            );
        }
        // Only what it serves: not the demo's HelloService.
        assert!(!names.iter().any(|n| n.starts_with("hello.")), "{names:?}");
    }
    assert!(
        v1alpha.iter().any(|n| n.starts_with("file-descriptors:")),
        "{v1alpha:?}"
    );
}

#[tokio::test]
async fn an_ha_standby_answers_reflection_for_hello_service() {
    let connect = zk().connect_string();
    let path = format!("{}/Hello:1.0.0", unique_path("reflection-ha"));
    let mut servers = Vec::new();
    for _ in 0..2 {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-server"));
        cmd.args(["--zk", &connect, "--path", &path, "--port", "0"]);
        let mut server = ChildProcess::spawn("ha-server", cmd).unwrap();
        let line = server
            .wait_for_line("listening ", Duration::from_secs(20))
            .unwrap();
        let address = line["listening ".len()..].to_owned();
        server
            .wait_for_line("role ", Duration::from_secs(20))
            .unwrap();
        servers.push((server, address));
    }
    for (server, address) in &servers {
        let (v1, v1alpha) = listed(&format!("http://{address}")).await;
        for names in [&v1, &v1alpha] {
            assert!(
                names.iter().any(|n| n == "hello.v1.HelloService"),
                "{}: {names:?}",
                server.seen_lines().join("; ")
            );
        }
    }
}
