//! The standby-refusal protocol, part of zoorpc's wire protocol (so servers and clients share it
//! without depending on each other): what an active/standby server that is not the master
//! answers, and how a client recognises it.
//!
//! Guarantees:
//! - A refusal is `UNAVAILABLE` carrying the metadata key [`STANDBY_METADATA`] (value: the
//!   master's address as the refusing server knows it, or empty when it knows none). The key is
//!   always present, whatever the address looks like, so a refusal is always recognisable.
//! - A refusal means the request was **not processed**: the server answers it before any handler
//!   runs (`zoorpc_provider::MasterGate`). A client may therefore always retry it on the master, whatever
//!   the method (zoorpc's `MasterClient` does).
//! - On the wire it is a trailers-only gRPC response (`grpc-status: 14` and the key in the
//!   response headers), so a client sees it before any message.

/// The metadata key a standby puts on its `UNAVAILABLE` answer (see [`standby_status`]).
pub const STANDBY_METADATA: &str = "zoorpc-standby";

/// What a server that is not the master answers: `UNAVAILABLE`, marked with
/// [`STANDBY_METADATA`] (value: the master it knows, or empty), so a client knows the request
/// was not processed and retries it on the master.
///
/// ```
/// use zoorpc_proto::standby::{is_standby_refusal, standby_status};
/// let refusal = standby_status(Some("127.0.0.1:9090"));
/// assert_eq!(refusal.code(), tonic::Code::Unavailable);
/// assert!(is_standby_refusal(&refusal));
/// assert!(!is_standby_refusal(&tonic::Status::unavailable("overloaded")));
/// ```
pub fn standby_status(master: Option<&str>) -> tonic::Status {
    let mut status = tonic::Status::unavailable(match master {
        Some(m) => format!("this server is a standby; the master is {m}"),
        None => "this server is a standby; no master is known".to_owned(),
    });
    // An address that is not a valid header value (node data is whatever someone wrote) still
    // marks the refusal, with an empty value.
    let value = master
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| tonic::metadata::MetadataValue::from_static(""));
    status.metadata_mut().insert(STANDBY_METADATA, value);
    status
}

/// Whether `status` is a standby's refusal ([`standby_status`]).
pub fn is_standby_refusal(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable && status.metadata().contains_key(STANDBY_METADATA)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standby_refusals_are_recognised() {
        let refusal = standby_status(Some("127.0.0.1:9090"));
        assert!(is_standby_refusal(&refusal));
        assert!(refusal.message().contains("127.0.0.1:9090"));
        assert!(is_standby_refusal(&standby_status(None)));
        assert!(!is_standby_refusal(&tonic::Status::unavailable("other")));
    }

    #[test]
    fn an_address_that_is_no_header_value_still_marks_the_refusal() {
        let refusal = standby_status(Some("bad\naddress"));
        assert!(is_standby_refusal(&refusal));
        let response: http::Response<tonic::body::Body> = refusal.into_http();
        assert!(response.headers().contains_key(STANDBY_METADATA));
    }
}
