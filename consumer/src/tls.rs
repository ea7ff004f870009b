//! `ConsumerTls`: how a consumer calls `https://` providers: the CA certificates it trusts, and
//! optionally the client certificate it presents (mutual TLS). Checked when built: a missing
//! file, garbage PEM, or a key that is not the certificate's is one clear error before any
//! call.
//!
//! Guarantees:
//! - An `https://` provider is only ever called over TLS, its certificate verified against
//!   these CAs (the system's trust store is never consulted) and its name (the URL's host, or
//!   [`ConsumerTls::with_server_name`]) checked. A consumer without `ConsumerTls` keeps
//!   `https://` providers in its list but refuses to dial them, naming the missing `ConsumerConfig::tls`:
//!   never plaintext.
//! - An `http://` provider is called in plaintext whatever this says (the provider chose).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use zoorpc_proto::{Pem, TlsError};

use crate::error::settings::{
    CA_FILE as CA, CLIENT_CERT_FILE as CLIENT_CERT, CLIENT_KEY_FILE as CLIENT_KEY, TLS_SERVER_NAME,
};

/// What a consumer trusts and presents when calling `https://` providers.
#[derive(Clone)]
pub struct ConsumerTls {
    /// The trusted CA certificates.
    roots: Arc<rustls::RootCertStore>,
    /// The client certificate chain and key, for providers that require one.
    identity: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
    /// The name every provider's certificate must carry instead of its URL's host.
    server_name: Option<ServerName<'static>>,
    /// The client configuration built from the above.
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for ConsumerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerTls")
            .field("trusted_cas", &self.roots.len())
            .field("client_certificate", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl ConsumerTls {
    /// Trust the CA certificate(s) in `ca` (every certificate in the PEM). Fails with one line
    /// naming the input when it cannot be read or holds no usable certificate.
    pub fn new(ca: Pem) -> Result<ConsumerTls, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in ca.certificates(CA)? {
            roots.add(cert).map_err(|e| {
                TlsError::new(format!(
                    "the {CA} holds a certificate that cannot be a trust anchor: {e}"
                ))
            })?;
        }
        ConsumerTls::build(Arc::new(roots), None, None)
    }

    /// This configuration, also presenting the client certificate `cert` (chain, leaf first)
    /// with its private `key` to providers that ask for one. Fails when the key is not the
    /// certificate's.
    pub fn with_identity(self, cert: Pem, key: Pem) -> Result<ConsumerTls, TlsError> {
        let chain = cert.certificates(CLIENT_CERT)?;
        let key = key.private_key(CLIENT_KEY)?;
        ConsumerTls::build(self.roots, Some((chain, Arc::new(key))), self.server_name)
    }

    /// This configuration, checking every provider's certificate for `name` instead of the
    /// host in its URL (a provider registered by IP whose certificate names a DNS name).
    pub fn with_server_name(self, name: &str) -> Result<ConsumerTls, TlsError> {
        let name = ServerName::try_from(name.to_owned()).map_err(|_| {
            TlsError::new(format!(
                "bad TLS server name {name:?} ({TLS_SERVER_NAME}): expected a DNS name or an IP address"
            ))
        })?;
        ConsumerTls::build(self.roots, self.identity, Some(name))
    }

    fn build(
        roots: Arc<rustls::RootCertStore>,
        identity: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
        server_name: Option<ServerName<'static>>,
    ) -> Result<ConsumerTls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::new(format!("TLS setup: {e}")))?
            .with_root_certificates(roots.clone());
        let mut config = match &identity {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => TlsError::new(format!(
                        "the {CLIENT_KEY} does not match the {CLIENT_CERT}: give the key the certificate was issued for"
                    )),
                    other => TlsError::new(format!(
                        "cannot present the {CLIENT_CERT} with the {CLIENT_KEY}: {other}"
                    )),
                })?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(ConsumerTls {
            roots,
            identity,
            server_name,
            config: Arc::new(config),
        })
    }

    /// Whether a client certificate is presented.
    pub fn has_client_certificate(&self) -> bool {
        self.identity.is_some()
    }

    /// The connector and the name to check for a provider at `host` (a URL's host; an IPv6
    /// literal may be bracketed).
    pub(crate) fn for_host(&self, host: &str) -> Result<TlsTarget, String> {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => {
                let literal = host.trim_start_matches('[').trim_end_matches(']');
                ServerName::try_from(literal.to_owned()).map_err(|_| {
                    format!(
                        "{host:?} is not a name a TLS certificate can carry; give {TLS_SERVER_NAME}"
                    )
                })?
            }
        };
        Ok(TlsTarget {
            connector: tokio_rustls::TlsConnector::from(self.config.clone()),
            name,
        })
    }
}

/// How one `https://` provider is dialled: the handshake and the name its certificate must
/// carry.
#[derive(Clone)]
pub(crate) struct TlsTarget {
    pub(crate) connector: tokio_rustls::TlsConnector,
    pub(crate) name: ServerName<'static>,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTarget")
            .field("name", &self.name)
            .finish()
    }
}
