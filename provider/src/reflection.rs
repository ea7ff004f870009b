//! gRPC server reflection for stock tools: both protocol versions, v1 (`grpcurl` asks it first)
//! and v1alpha (Python's `grpcio-reflection` and older tools speak only it), describing the
//! services a server serves from the descriptor sets it was given, plus gRPC health and
//! reflection itself. `Provider` and `HaServer` add it to every server; [`with_reflection`] adds
//! it to a tonic server of one's own (as `zoorpc xds` does).

use tonic::service::Routes;

/// The gRPC service name of reflection v1.
pub(crate) const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
/// The gRPC service name of reflection v1alpha.
pub(crate) const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// `routes` with reflection v1 and v1alpha added, describing `sets` (encoded
/// `FileDescriptorSet`s, e.g. `tonic::include_file_descriptor_set!`), gRPC health and reflection.
/// A set that cannot be decoded is an error naming the cause.
///
/// ```
/// use tonic::service::Routes;
/// let routes = zoorpc_provider::with_reflection(Routes::default(), &[zoorpc_proto::FILE_DESCRIPTOR_SET]);
/// assert!(routes.is_ok());
/// // Serve them with `tonic::transport::Server::builder().add_routes(routes?)`.
/// ```
pub fn with_reflection(
    routes: Routes,
    sets: &[&'static [u8]],
) -> Result<Routes, tonic_reflection::server::Error> {
    let builder = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .include_reflection_service(false)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            );
        // The same set given twice (e.g. by the program and the user) is registered once.
        let mut seen: Vec<*const u8> = Vec::new();
        for set in sets {
            if !seen.contains(&set.as_ptr()) {
                seen.push(set.as_ptr());
                builder = builder.register_encoded_file_descriptor_set(set);
            }
        }
        builder
    };
    let v1 = builder().build_v1()?;
    let v1alpha = builder().build_v1alpha()?;
    Ok(routes.add_service(v1).add_service(v1alpha))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_good_sets_and_refuses_garbage() {
        assert!(with_reflection(Routes::default(), &[zoorpc_proto::FILE_DESCRIPTOR_SET]).is_ok());
        let garbage: &'static [u8] = b"not a descriptor set";
        assert!(with_reflection(Routes::default(), &[garbage]).is_err());
    }
}
