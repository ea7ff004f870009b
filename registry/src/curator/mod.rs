//! The layout of Apache Curator's service discovery (`curator-x-discovery`), which Spring Cloud
//! Zookeeper is built on: one node `<base>/<name>/<id>` per instance (default base
//! `/services`), holding the JSON of Curator's `ServiceInstance`. zoorpc speaks it both ways:
//! a provider registers such a node ([`crate::Registration::register_curator`]) and a consumer
//! discovers from one ([`crate::Discovery::watch_curator`]), so a Rust service joins a Java
//! fleet already on ZooKeeper.
//!
//! Guarantees:
//! - What a provider writes is what Curator's `JsonInstanceSerializer` reads, in every Curator
//!   version (the `enabled` field, which Curator before 2.10 refused, is left out; it reads as
//!   enabled): `name`, `id` (a random UUID, as Curator makes them), `address`, `port` (plaintext)
//!   or `sslPort` (TLS), `payload`, `registrationTimeUTC`, `serviceType` `DYNAMIC` (an
//!   `EPHEMERAL` node), `uriSpec` (`{scheme}://{address}:{port}`, `{ssl-port}` for TLS).
//! - The payload is `null` ([`CuratorPayload::None`], read by any payload class) or Spring Cloud
//!   Zookeeper's `ZookeeperInstance` ([`CuratorPayload::SpringCloud`]) with `metadata`:
//!   `gRPC_port` (what grpc-spring-boot-starter dials), `weight`, `instance_status` `UP` and the
//!   URL's other metadata.
//! - Reading ([`CuratorInstance::parse`], [`CuratorInstance::url`]): an instance is called at
//!   `http://address:port`, `https://address:sslPort` where `sslPort` is set, on the port of
//!   the `gRPC_port` metadata (or the older `gRPC.port`) where present; the payload's other
//!   string metadata (but `instance_status`) become the URL's (so `weight` weighs it). An instance that is disabled
//!   (`"enabled": false`) or whose Spring `instance_status` is set and not `UP` is not called,
//!   as Curator's provider and Spring's load balancer skip them. Anything else (not JSON, no
//!   address, no port) is [`Error::InvalidInstance`] quoting the
//!   data: discovery skips it with a warning, `zoorpc ls` shows it as bad data.
//!
//! ```
//! use zoorpc_registry::ProviderUrl;
//! use zoorpc_registry::curator::{CuratorInstance, CuratorPayload, CuratorService};
//! let service = CuratorService::new("echo").payload(CuratorPayload::SpringCloud);
//! let url: ProviderUrl = "http://127.0.0.1:50051?weight=50".parse()?;
//! let instance = CuratorInstance::for_url(&service, &url);
//! let json = instance.to_json(service.payload_kind());
//! let read = CuratorInstance::parse(&json)?;
//! assert_eq!((read.address.as_str(), read.port), ("127.0.0.1", Some(50051)));
//! assert_eq!(read.url()?.as_str(), "http://127.0.0.1:50051?weight=50");
//! # Ok::<(), zoorpc_registry::Error>(())
//! ```

mod instance;
pub(crate) mod reweight;

pub use instance::{CuratorInstance, GRPC_PORT, INSTANCE_STATUS};

use crate::error::{Error, Result};
use crate::plumbing::path::validate_path;

/// Where Curator's `ServiceDiscoveryBuilder` and Spring Cloud Zookeeper register by default.
pub const DEFAULT_CURATOR_BASE: &str = "/services";

/// What a provider puts in its instance's `payload`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CuratorPayload {
    /// `null`: read by a discovery of any payload class (Curator checks the payload's class).
    #[default]
    None,
    /// Spring Cloud Zookeeper's `ZookeeperInstance` (`@class`, `id`, `name`, `metadata`), so
    /// Spring's discovery client and grpc-spring-boot-starter (the `gRPC_port` metadata) see a
    /// gRPC server.
    SpringCloud,
}

/// A service in the Curator layout: its name and the base path it lives under.
///
/// ```
/// use zoorpc_registry::curator::CuratorService;
/// assert_eq!(CuratorService::new("echo").path()?, "/services/echo");
/// assert_eq!(CuratorService::new("echo").base("/apps").path()?, "/apps/echo");
/// assert!(CuratorService::new("a/b").path().is_err());
/// # Ok::<(), zoorpc_registry::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CuratorService {
    /// The base path, `/services` unless set.
    base: String,
    /// The service's name: one node name under the base.
    name: String,
    /// What a provider writes into `payload`.
    payload: CuratorPayload,
}

impl CuratorService {
    /// The service `name` under [`DEFAULT_CURATOR_BASE`], with a `null` payload.
    pub fn new(name: impl Into<String>) -> Self {
        CuratorService {
            base: DEFAULT_CURATOR_BASE.to_owned(),
            name: name.into(),
            payload: CuratorPayload::None,
        }
    }

    /// This service under another base path (Curator's `basePath`, Spring's
    /// `spring.cloud.zookeeper.discovery.root`).
    pub fn base(mut self, base: impl Into<String>) -> Self {
        self.base = base.into();
        self
    }

    /// This service registering with another payload.
    pub fn payload(mut self, payload: CuratorPayload) -> Self {
        self.payload = payload;
        self
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What a provider writes into `payload`.
    pub fn payload_kind(&self) -> CuratorPayload {
        self.payload
    }

    /// `<base>/<name>`, the parent of the instances; an error if the base or the name cannot
    /// make a path (a name must be one node name, without `/`).
    pub fn path(&self) -> Result<String> {
        let base = if self.base == "/" {
            ""
        } else {
            validate_path(&self.base)?
        };
        if self.name.is_empty() || self.name.contains('/') {
            return Err(Error::InvalidPath {
                path: self.name.clone(),
                reason: "a Curator service name must be one node name (not empty, no '/')",
            });
        }
        Ok(validate_path(&format!("{base}/{}", self.name))?.to_owned())
    }
}

/// A random UUID (version 4) in its usual spelling, as Java's `UUID.randomUUID()` makes the ids
/// of Curator's instances.
///
/// ```
/// let id = zoorpc_registry::curator::random_id();
/// assert_eq!(id.len(), 36);
/// assert_eq!(id.chars().nth(14), Some('4'));
/// assert_ne!(id, zoorpc_registry::curator::random_id());
/// ```
pub fn random_id() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
