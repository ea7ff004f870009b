//! Server reflection on `zoorpc xds`: the ADS service, health and reflection listed, and a
//! message of ADS resolved with every file it needs (tonic's reflection client, and Python's
//! descriptor pool on grpcio-reflection).

use std::collections::BTreeSet;
use std::time::Duration;

use super::xds_serving;
use crate::common::{runtime, zk};

/// The ADS service, as reflection names it.
const ADS: &str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
/// What reflection on `zoorpc xds` lists, sorted.
const REFLECTED: [&str; 4] = [
    ADS,
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// One reflection v1 request to `address` on a stream of its own: the answer.
async fn reflect(
    address: &str,
    request: tonic_reflection::pb::v1::server_reflection_request::MessageRequest,
) -> tonic_reflection::pb::v1::server_reflection_response::MessageResponse {
    use tonic_reflection::pb::v1;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().expect("an answer");
    answer.message_response.expect("a message response")
}

/// The files reflection v1 at `address` gives for `symbol`, then by name for each file any of
/// them imports, transitively: the names got, and the imports it had no file for.
async fn reflected_closure(address: &str, symbol: &str) -> (BTreeSet<String>, Vec<String>) {
    use prost::Message;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut request = MessageRequest::FileContainingSymbol(symbol.to_owned());
    let (mut got, mut missing, mut pending) = (BTreeSet::new(), Vec::new(), Vec::new());
    loop {
        match reflect(address, request.clone()).await {
            MessageResponse::FileDescriptorResponse(files) => {
                for bytes in files.file_descriptor_proto {
                    let file = prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap();
                    pending.extend(file.dependency.clone());
                    got.insert(file.name().to_owned());
                }
            }
            MessageResponse::ErrorResponse(e) => missing.push(format!("{request:?}: {e:?}")),
            other => panic!("{request:?}: unexpected {other:?}"),
        }
        pending.retain(|name| !got.contains(name));
        let Some(next) = pending.pop() else {
            return (got, missing);
        };
        request = MessageRequest::FileByFilename(next);
    }
}

#[test]
fn reflection_lists_ads_health_and_reflection_and_resolves_discovery_request_whole() {
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let (_xds, address) = xds_serving(&zk().connect_string(), &[]);
    runtime().block_on(async {
        let MessageResponse::ListServicesResponse(list) =
            reflect(&address, MessageRequest::ListServices(String::new())).await
        else {
            panic!("no list of services");
        };
        let mut listed: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
        listed.sort();
        assert_eq!(listed, REFLECTED);

        let (files, missing) =
            reflected_closure(&address, "envoy.service.discovery.v3.DiscoveryRequest").await;
        assert!(missing.is_empty(), "not resolved: {missing:?}");
        for file in [
            "envoy/service/discovery/v3/discovery.proto",
            "envoy/config/core/v3/base.proto",
            "google/rpc/status.proto",
            "google/protobuf/any.proto",
        ] {
            assert!(files.contains(file), "{file} not reflected: {files:?}");
        }
        let (files, missing) = reflected_closure(&address, ADS).await;
        assert!(missing.is_empty(), "not resolved: {missing:?}");
        assert!(files.contains("envoy/service/discovery/v3/ads.proto"));
    });
}

#[test]
fn python_grpcio_reflection_describes_zoorpc_xds_whole() {
    let Some(python) = crate::interop::python_or_skip() else {
        return;
    };
    let (_xds, address) = xds_serving(&zk().connect_string(), &[]);
    let describe = crate::interop::python_client(
        python,
        &[
            "describe",
            &address,
            "envoy.service.discovery.v3.DiscoveryRequest",
        ],
    );
    let (ok, lines) = crate::interop::run("python describe", describe, Duration::from_secs(60));
    assert!(ok, "{lines:?}");
    assert_eq!(lines[0], format!("services {}", REFLECTED.join(",")));
    let fields = lines[1]
        .strip_prefix("message envoy.service.discovery.v3.DiscoveryRequest ")
        .unwrap_or_else(|| panic!("{lines:?}"));
    for field in [
        "node:envoy.config.core.v3.Node",
        "error_detail:google.rpc.Status",
    ] {
        assert!(
            fields.split(',').any(|f| f == field),
            "{field} not in {fields}"
        );
    }
}
