#![warn(missing_docs)]
//! zoorpc's wire protocol: `hello.v1.HelloService` (the protobuf messages and the tonic client
//! and server generated from `proto/hello.proto`, plus the encoded descriptor set that gRPC
//! server reflection serves) and the [`standby`] refusal an active/standby server answers when
//! it is not the master; and [`pem`], the TLS material (certificates, keys) both sides read.
//!
//! ```
//! use zoorpc_proto::hello::HelloRequest;
//! let request = HelloRequest { name: "zoo".into() };
//! assert_eq!(request.name, "zoo");
//! ```

pub mod pem;
pub mod standby;

/// Generated code for package `hello.v1`.
pub mod hello {
    tonic::include_proto!("hello.v1");
}

/// Encoded `FileDescriptorSet` of `hello.proto`, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("hello_descriptor");

pub use hello::hello_service_client::HelloServiceClient;
pub use hello::hello_service_server::{HelloService, HelloServiceServer};
pub use hello::{HelloReply, HelloRequest};
pub use pem::{Pem, TlsError};
pub use standby::{STANDBY_METADATA, is_standby_refusal, standby_status};
