//! `ProviderTls`: the TLS a server serves with (see [`ProviderTls`]).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use zoorpc_proto::{Pem, TlsError};

use crate::error::settings::{CERT_FILE as CERT, CLIENT_CA_FILE as CLIENT_CA, KEY_FILE as KEY};

/// The certificate chain and key a provider serves TLS with, and optionally the CA
/// its clients' certificates must be issued by (mutual TLS). Checked when built: a missing file,
/// garbage PEM, or a key that is not the certificate's is one clear error before anything
/// listens or registers.
///
/// The self-check before registering (`check_serving`) goes over TLS
/// too. It *pins* the provider's own certificate (the first of the chain): the handshake
/// succeeds only if the server answering is the one holding this key, whatever names the
/// certificate carries and whoever issued it. Name and chain checks are left to the consumers,
/// which verify against their CA: the self-check proves "this server answers here", not "my
/// clients will trust it". With client certificates required the self-check holds none to
/// present (the provider's own certificate is usually a server-only one), so it cannot make the
/// health call: a completed TLS 1.3 handshake pinned to the provider's own certificate is then
/// the proof that the advertised address reaches this server.
#[derive(Clone)]
pub struct ProviderTls {
    /// The chain as PEM, for tonic's server.
    cert_pem: Vec<u8>,
    /// The key as PEM, for tonic's server.
    key_pem: Vec<u8>,
    /// The client CA as PEM: clients must present a certificate it issued.
    client_ca_pem: Option<Vec<u8>>,
    /// The self-check's client configuration (pins our certificate; our identity for mTLS).
    probe: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for ProviderTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderTls")
            .field(
                "requires_client_certificates",
                &self.client_ca_pem.is_some(),
            )
            .finish_non_exhaustive()
    }
}

impl ProviderTls {
    /// Serve TLS with `cert` (the chain, leaf first) and its private `key`. Fails with one line
    /// naming the input when a file cannot be read, holds no usable PEM, or the key is not the
    /// certificate's.
    pub fn new(cert: Pem, key: Pem) -> Result<ProviderTls, TlsError> {
        // Parsed from the inputs themselves, so a message names the file (not "PEM bytes").
        let cert_pem = cert.read(CERT)?;
        let key_pem = key.read(KEY)?;
        let chain = cert.certificates(CERT)?;
        let private = key.private_key(KEY)?;
        if let Some(leaf) = chain.first() {
            check_validity(leaf.as_ref(), &cert.origin())?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // The server's own check: the key parses and matches the leaf certificate.
        rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .and_then(|b| {
                b.with_no_client_auth()
                    .with_single_cert(chain.clone(), private)
            })
            .map_err(|e| mismatch(&e))?;
        let probe = probe_config(provider, chain)?;
        Ok(ProviderTls {
            cert_pem,
            key_pem,
            client_ca_pem: None,
            probe,
        })
    }

    /// [`ProviderTls::new`] from a certificate file and a key file.
    pub fn from_files(
        cert: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> Result<ProviderTls, TlsError> {
        ProviderTls::new(Pem::file(cert), Pem::file(key))
    }

    /// This TLS, also requiring every client to present a certificate issued by `ca` (mutual
    /// TLS). The self-check is then a pinned handshake only (see the module doc).
    pub fn require_client_certificates(mut self, ca: Pem) -> Result<ProviderTls, TlsError> {
        let ca_pem = ca.read(CLIENT_CA)?;
        let roots = ca.certificates(CLIENT_CA)?;
        let mut store = rustls::RootCertStore::empty();
        for root in roots {
            store.add(root).map_err(|e| {
                TlsError::new(format!(
                    "the {CLIENT_CA} holds a certificate that cannot be a trust anchor: {e}"
                ))
            })?;
        }
        self.client_ca_pem = Some(ca_pem);
        Ok(self)
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_certificates(&self) -> bool {
        self.client_ca_pem.is_some()
    }

    /// tonic's server configuration.
    pub(crate) fn server_config(&self) -> ServerTlsConfig {
        let config =
            ServerTlsConfig::new().identity(Identity::from_pem(&self.cert_pem, &self.key_pem));
        match &self.client_ca_pem {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }

    /// The self-check's client configuration.
    pub(crate) fn probe_config(&self) -> Arc<rustls::ClientConfig> {
        self.probe.clone()
    }
}

fn mismatch(e: &rustls::Error) -> TlsError {
    match e {
        rustls::Error::InconsistentKeys(_) => TlsError::new(format!(
            "the {KEY} does not match the {CERT}: give the key the certificate was issued for"
        )),
        other => TlsError::new(format!(
            "cannot serve TLS with the {CERT} and {KEY}: {other}"
        )),
    }
}

/// A client configuration that accepts exactly our own leaf certificate (see the module doc).
/// TLS 1.3 only (the server is ours, rustls, which speaks it): there the client's handshake
/// completes before a server requiring client certificates refuses the missing one.
fn probe_config(
    provider: Arc<CryptoProvider>,
    chain: Vec<CertificateDer<'static>>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let own = chain
        .first()
        .cloned()
        .ok_or_else(|| TlsError::new(format!("the {CERT} holds no certificate")))?;
    let verifier = Arc::new(OwnCertificate {
        own,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::new(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts the one certificate this provider serves (handshake signatures still checked).
#[derive(Debug)]
struct OwnCertificate {
    own: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for OwnCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.own.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server answering at the advertised address presents another certificate than this provider's"
                    .into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Refuses a leaf certificate outside its validity period: every consumer would refuse it,
/// so a provider serving it would register only to fail every call.
fn check_validity(der: &[u8], origin: &str) -> Result<(), TlsError> {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(der) else {
        // rustls accepted it above; its own checks apply when clients connect.
        return Ok(());
    };
    let validity = parsed.validity();
    let now = x509_parser::time::ASN1Time::now();
    if now > validity.not_after {
        return Err(TlsError::new(format!(
            "the {CERT} {origin} expired on {}; renew it (every consumer would refuse it)",
            validity.not_after
        )));
    }
    if now < validity.not_before {
        return Err(TlsError::new(format!(
            "the {CERT} {origin} is not valid before {}; check the clock or the certificate",
            validity.not_before
        )));
    }
    Ok(())
}
