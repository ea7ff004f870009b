//! `CuratorInstance`: one instance node's data in the Curator layout, written and read (the
//! rules are the module's, [`super`]).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::{CuratorPayload, CuratorService, random_id};
use crate::error::{Error, Result, excerpt};
use crate::provider_url::{ProviderUrl, host_port};
use crate::weight::WEIGHT;

/// The metadata key grpc-spring-boot-starter reads a server's gRPC port from.
pub const GRPC_PORT: &str = "gRPC_port";

/// The key grpc-spring-boot-starter used for [`GRPC_PORT`] before it.
const LEGACY_GRPC_PORT: &str = "gRPC.port";

/// Spring Cloud Zookeeper's status metadata: an instance is called while it is unset or `UP`.
pub const INSTANCE_STATUS: &str = "instance_status";

/// The class Spring Cloud Zookeeper's payload is read as.
const SPRING_PAYLOAD_CLASS: &str =
    "org.springframework.cloud.zookeeper.discovery.ZookeeperInstance";

/// The weight written when the URL has none: the weight a consumer gives a provider without one.
const DEFAULT_WEIGHT: &str = "100";

/// One service instance as Curator's `ServiceInstance` holds it (the fields zoorpc uses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CuratorInstance {
    /// The service's name.
    pub name: String,
    /// The instance's id (its node's name).
    pub id: String,
    /// The host to dial (an IPv6 literal without brackets, as Java writes it).
    pub address: String,
    /// The plaintext port, if any.
    pub port: Option<u16>,
    /// The TLS port, if any (it wins over `port`, as Spring's and Curator's `{scheme}` have it).
    pub ssl_port: Option<u16>,
    /// The string metadata of a Spring `ZookeeperInstance` payload (sorted by key); empty
    /// for any other payload.
    pub metadata: Vec<(String, String)>,
    /// When it registered, Unix milliseconds.
    pub registration_time_utc: i64,
    /// Curator's `enabled` (true when the field is missing, as Curator reads it).
    pub enabled: bool,
}

impl CuratorInstance {
    /// The instance a provider at `url` registers as in `service`: a new random id, the URL's
    /// host and port (`sslPort` for `https://`), its metadata, registered now.
    pub fn for_url(service: &CuratorService, url: &ProviderUrl) -> CuratorInstance {
        let tls = url.scheme() == "https";
        let registered = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        CuratorInstance {
            name: service.name().to_owned(),
            id: random_id(),
            address: url
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: (!tls).then_some(url.port()),
            ssl_port: tls.then_some(url.port()),
            metadata: url.metadata_pairs().to_vec(),
            registration_time_utc: registered,
            enabled: true,
        }
    }

    /// The node's data: the JSON Curator's `JsonInstanceSerializer` reads, with `payload` as
    /// asked.
    pub fn to_json(&self, payload: CuratorPayload) -> Vec<u8> {
        let tls = self.ssl_port.is_some();
        let port_variable = if tls { "ssl-port" } else { "port" };
        let part = |value: &str, variable: bool| json!({ "value": value, "variable": variable });
        let payload = match payload {
            CuratorPayload::None => Value::Null,
            CuratorPayload::SpringCloud => self.spring_payload(),
        };
        let document = json!({
            "name": self.name,
            "id": self.id,
            "address": self.address,
            "port": self.port,
            "sslPort": self.ssl_port,
            "payload": payload,
            "registrationTimeUTC": self.registration_time_utc,
            "serviceType": "DYNAMIC",
            "uriSpec": { "parts": [
                part("scheme", true),
                part("://", false),
                part("address", true),
                part(":", false),
                part(port_variable, true),
            ]},
        });
        document.to_string().into_bytes()
    }

    /// Spring Cloud Zookeeper's `ZookeeperInstance` for this instance: `gRPC_port`, `weight`
    /// (100 unless the metadata has one), `instance_status` `UP`, the other metadata.
    fn spring_payload(&self) -> Value {
        let mut metadata: Map<String, Value> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        if let Some(port) = self.ssl_port.or(self.port) {
            metadata.insert(GRPC_PORT.to_owned(), Value::String(port.to_string()));
        }
        metadata
            .entry(WEIGHT)
            .or_insert_with(|| Value::String(DEFAULT_WEIGHT.to_owned()));
        metadata
            .entry(INSTANCE_STATUS)
            .or_insert_with(|| Value::String("UP".to_owned()));
        json!({
            "@class": SPRING_PAYLOAD_CLASS,
            "id": self.id,
            "name": self.name,
            "metadata": metadata,
        })
    }

    /// Reads a node's data: Curator's JSON with `name`, `id`, `address` and `port` and/or
    /// `sslPort`; anything else is [`Error::InvalidInstance`] quoting the data.
    pub fn parse(data: &[u8]) -> Result<CuratorInstance> {
        let bad = |reason: &str| Error::InvalidInstance {
            data: excerpt(&String::from_utf8_lossy(data)),
            reason: reason.to_owned(),
        };
        let value: Value = serde_json::from_slice(data).map_err(|e| bad(&format!("{e}")))?;
        let Value::Object(fields) = value else {
            return Err(bad("not a JSON object"));
        };
        let text = |key: &str| match fields.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(bad(&format!("no {key:?}"))),
        };
        let port = |key: &str| match fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64().and_then(|p| u16::try_from(p).ok()) {
                Some(p) if p > 0 => Ok(Some(p)),
                _ => Err(bad(&format!("{key:?} is not a port"))),
            },
            Some(_) => Err(bad(&format!("{key:?} is not a number"))),
        };
        let instance = CuratorInstance {
            name: text("name")?,
            id: text("id")?,
            address: text("address")?,
            port: port("port")?,
            ssl_port: port("sslPort")?,
            metadata: payload_metadata(fields.get("payload")),
            registration_time_utc: fields
                .get("registrationTimeUTC")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            enabled: fields
                .get("enabled")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        };
        if instance.port.is_none() && instance.ssl_port.is_none() {
            return Err(bad("neither \"port\" nor \"sslPort\""));
        }
        Ok(instance)
    }

    /// Parses a node's data ([`CuratorInstance::parse`]) and gives the URL to call it at
    /// ([`CuratorInstance::url`]).
    pub fn url_of(data: &[u8]) -> Result<ProviderUrl> {
        CuratorInstance::parse(data)?.url()
    }

    /// The URL to call this instance at (see the module's rules); an error when it is not to
    /// be called (disabled, out of service) or the address is no host.
    pub fn url(&self) -> Result<ProviderUrl> {
        let bad = |reason: String| Error::InvalidInstance {
            data: excerpt(&format!("{self:?}")),
            reason,
        };
        if !self.enabled {
            return Err(bad("disabled (\"enabled\": false)".to_owned()));
        }
        let meta = |key: &str| {
            self.metadata
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        if let Some(status) = meta(INSTANCE_STATUS).filter(|s| !s.is_empty())
            && !status.eq_ignore_ascii_case("UP")
        {
            return Err(bad(format!("{INSTANCE_STATUS} is {status}, not UP")));
        }
        let grpc_port = meta(GRPC_PORT)
            .or_else(|| meta(LEGACY_GRPC_PORT))
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p > 0);
        let (scheme, port) = match (self.ssl_port, self.port) {
            (Some(ssl), _) => ("https", grpc_port.unwrap_or(ssl)),
            (None, Some(port)) => ("http", grpc_port.unwrap_or(port)),
            (None, None) => return Err(bad("neither \"port\" nor \"sslPort\"".to_owned())),
        };
        let mut url: ProviderUrl = format!("{scheme}://{}", host_port(&self.address, port))
            .parse()
            .map_err(|e: Error| bad(e.to_string()))?;
        for (key, value) in &self.metadata {
            // Read above: what the URL would say again, or what only Spring's filter needs.
            if key == GRPC_PORT || key == LEGACY_GRPC_PORT || key == INSTANCE_STATUS {
                continue;
            }
            // Metadata a URL cannot carry (`&`, spaces, ...) is left out, never the instance.
            if let Ok(with) = url.clone().with_metadata(key, value) {
                url = with;
            }
        }
        Ok(url)
    }
}

/// The string metadata of a Spring `ZookeeperInstance` payload, sorted by key; none for
/// another payload.
fn payload_metadata(payload: Option<&Value>) -> Vec<(String, String)> {
    let Some(Value::Object(metadata)) = payload.and_then(|p| p.get("metadata")) else {
        return Vec::new();
    };
    metadata
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> ProviderUrl {
        text.parse().unwrap()
    }

    #[test]
    fn writes_what_curator_reads() {
        let service = CuratorService::new("echo");
        let instance = CuratorInstance::for_url(&service, &url("http://127.0.0.1:7?zone=a"));
        let json: Value = serde_json::from_slice(&instance.to_json(CuratorPayload::None)).unwrap();
        assert_eq!(json["name"], "echo");
        assert_eq!(json["id"].as_str().unwrap().len(), 36);
        assert_eq!(json["address"], "127.0.0.1");
        assert_eq!(json["port"], 7);
        assert_eq!(json["sslPort"], Value::Null);
        assert_eq!(json["payload"], Value::Null);
        assert_eq!(json["serviceType"], "DYNAMIC");
        assert!(json["registrationTimeUTC"].as_i64().unwrap() > 1_600_000_000_000);
        assert_eq!(json["uriSpec"]["parts"][4]["value"], "port");
        assert!(json.get("enabled").is_none());
    }

    #[test]
    fn tls_providers_have_an_ssl_port_and_spring_metadata() {
        let service = CuratorService::new("echo");
        let instance = CuratorInstance::for_url(&service, &url("https://[::1]:8443?zone=a"));
        let json: Value =
            serde_json::from_slice(&instance.to_json(CuratorPayload::SpringCloud)).unwrap();
        assert_eq!(json["address"], "::1");
        assert_eq!(
            (json["port"].clone(), json["sslPort"].clone()),
            (Value::Null, json!(8443))
        );
        assert_eq!(json["uriSpec"]["parts"][4]["value"], "ssl-port");
        let payload = &json["payload"];
        assert_eq!(payload["@class"], SPRING_PAYLOAD_CLASS);
        assert_eq!(payload["name"], "echo");
        assert_eq!(payload["metadata"]["gRPC_port"], "8443");
        assert_eq!(payload["metadata"]["weight"], "100");
        assert_eq!(payload["metadata"]["zone"], "a");
        assert_eq!(payload["metadata"]["instance_status"], "UP");
        let read = CuratorInstance::url_of(&instance.to_json(CuratorPayload::SpringCloud));
        assert_eq!(
            read.unwrap().as_str(),
            "https://[::1]:8443?weight=100&zone=a"
        );
    }

    #[test]
    fn reads_what_java_writes() {
        // As Spring Cloud Zookeeper writes it (Curator 5: with `enabled`), gRPC on its own port.
        let spring = br#"{"name":"greeter","id":"7f0c","address":"10.0.0.7","port":8080,"sslPort":null,
            "payload":{"@class":"org.springframework.cloud.zookeeper.discovery.ZookeeperInstance",
            "id":"greeter:8080","name":"greeter","metadata":{"gRPC_port":"9090","weight":"30","n":1}},
            "registrationTimeUTC":1589208767337,"serviceType":"DYNAMIC",
            "uriSpec":{"parts":[{"value":"scheme","variable":true}]},"enabled":true}"#;
        assert_eq!(
            CuratorInstance::url_of(spring).unwrap().as_str(),
            "http://10.0.0.7:9090?weight=30"
        );
        let plain =
            br#"{"name":"a","id":"b","address":"::1","port":null,"sslPort":7,"payload":"x"}"#;
        assert_eq!(
            CuratorInstance::url_of(plain).unwrap().as_str(),
            "https://[::1]:7"
        );
        let legacy = br#"{"name":"a","id":"b","address":"h","port":1,
            "payload":{"metadata":{"gRPC.port":"2","odd key":"x y"}}}"#;
        assert_eq!(
            CuratorInstance::url_of(legacy).unwrap().as_str(),
            "http://h:2"
        );
    }

    #[test]
    fn refuses_what_is_not_a_callable_instance() {
        for (data, reason) in [
            (&b"http://127.0.0.1:1"[..], "expected value"),
            (b"[1]", "not a JSON object"),
            (br#"{"name":"a","id":"b","port":1}"#, "no \"address\""),
            (br#"{"name":"a","address":"h","port":1}"#, "no \"id\""),
            (br#"{"name":"a","id":"b","address":"h"}"#, "neither"),
            (br#"{"name":"a","id":"b","address":"h","port":70000}"#, "not a port"),
            (br#"{"name":"a","id":"b","address":"h","port":"1"}"#, "not a number"),
            (br#"{"name":"a","id":"b","address":"h","port":1,"enabled":false}"#, "disabled"),
            (
                br#"{"name":"a","id":"b","address":"h","port":1,"payload":{"metadata":{"instance_status":"OUT_OF_SERVICE"}}}"#,
                "OUT_OF_SERVICE",
            ),
            (br#"{"name":"a","id":"b","address":"a b","port":1}"#, "whitespace"),
        ] {
            let err = CuratorInstance::url_of(data).unwrap_err().to_string();
            assert!(err.contains(reason), "{err}");
            assert!(err.contains("Curator"), "{err}");
        }
    }
}
