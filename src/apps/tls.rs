//! The programs' TLS flags: `--tls-cert`/`--tls-key` (+ `--tls-client-ca`) for every program
//! that provides, `--tls-ca` (+ `--tls-client-cert`/`--tls-client-key`, `--tls-server-name`) for
//! every one that calls providers. Each reads its files at start: a missing file, garbage PEM, a
//! key not the certificate's, or half a pair is one line and exit status 2, before anything is
//! registered or called.

use std::path::PathBuf;

use zoorpc_consumer::ConsumerTls;
use zoorpc_proto::Pem;
use zoorpc_provider::ProviderTls;

use crate::cli::file_name;

/// A provider's TLS from its three flags: `None` without `--tls-cert`/`--tls-key`.
pub fn provider_tls(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
) -> Result<Option<ProviderTls>, String> {
    let (cert, key) = match (cert, key) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) if client_ca.is_some() => {
            return Err("--tls-client-ca needs --tls-cert and --tls-key: client certificates are checked only on a TLS server".into());
        }
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err("--tls-cert needs --tls-key (the certificate's private key); give both, or neither for plaintext".into());
        }
        (None, Some(_)) => {
            return Err("--tls-key needs --tls-cert (the certificate it belongs to); give both, or neither for plaintext".into());
        }
    };
    let tls = ProviderTls::from_files(cert, key).map_err(|e| e.to_string())?;
    match client_ca {
        Some(ca) => tls
            .require_client_certificates(Pem::file(ca))
            .map(Some)
            .map_err(|e| e.to_string()),
        None => Ok(Some(tls)),
    }
}

/// A consumer's TLS from its flags: `None` without `--tls-ca`.
pub fn consumer_tls(
    ca: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    server_name: Option<&str>,
) -> Result<Option<ConsumerTls>, String> {
    let Some(ca) = ca else {
        if client_cert.is_some() || client_key.is_some() || server_name.is_some() {
            return Err("--tls-client-cert, --tls-client-key and --tls-server-name need --tls-ca (the CA that issued the providers' certificates)".into());
        }
        return Ok(None);
    };
    let mut tls = ConsumerTls::new(Pem::file(ca)).map_err(|e| e.to_string())?;
    tls = match (client_cert, client_key) {
        (Some(cert), Some(key)) => tls
            .with_identity(Pem::file(cert), Pem::file(key))
            .map_err(|e| e.to_string())?,
        (None, None) => tls,
        (Some(_), None) => {
            return Err(
                "--tls-client-cert needs --tls-client-key (the certificate's private key)".into(),
            );
        }
        (None, Some(_)) => {
            return Err(
                "--tls-client-key needs --tls-client-cert (the certificate it belongs to)".into(),
            );
        }
    };
    match server_name {
        Some(name) => tls
            .with_server_name(name)
            .map(Some)
            .map_err(|e| e.to_string()),
        None => Ok(Some(tls)),
    }
}

/// `--tls-cert`, `--tls-key`, `--tls-client-ca`: every program that provides.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ProviderTlsArgs {
    /// Serve TLS with this certificate chain (PEM, leaf first): a provider registers
    /// https://HOST:PORT, an HA server's master node keeps HOST:PORT (no scheme)
    #[arg(long, value_name = "PEM", value_parser = file_name)]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM)
    #[arg(long, value_name = "PEM", value_parser = file_name)]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates issued by this CA (mutual TLS; PEM)
    #[arg(long, value_name = "PEM", value_parser = file_name)]
    pub tls_client_ca: Option<PathBuf>,
}

impl ProviderTlsArgs {
    /// The provider's TLS (`None`: plaintext).
    pub fn load(&self) -> Result<Option<ProviderTls>, String> {
        provider_tls(
            self.tls_cert.clone(),
            self.tls_key.clone(),
            self.tls_client_ca.clone(),
        )
    }
}

/// `--tls-ca`, `--tls-client-cert`, `--tls-client-key`, `--tls-server-name`: every program that
/// calls providers.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ConsumerTlsArgs {
    /// Call https:// providers, trusting the CA certificate(s) in this PEM file (without it,
    /// https:// providers are not called)
    #[arg(long, value_name = "PEM", value_parser = file_name)]
    pub tls_ca: Option<PathBuf>,
    /// Present this client certificate (PEM) to providers that require one
    #[arg(long, value_name = "PEM", value_parser = file_name)]
    pub tls_client_cert: Option<PathBuf>,
    /// The private key of --tls-client-cert (PEM)
    #[arg(long, value_name = "PEM", value_parser = file_name)]
    pub tls_client_key: Option<PathBuf>,
    /// Check every provider's certificate for this name instead of its URL's host
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,
}

impl ConsumerTlsArgs {
    /// The consumer's TLS (`None`: https:// providers are not called).
    pub fn load(&self) -> Result<Option<ConsumerTls>, String> {
        consumer_tls(
            self.tls_ca.clone(),
            self.tls_client_cert.clone(),
            self.tls_client_key.clone(),
            self.tls_server_name.as_deref(),
        )
    }
}
