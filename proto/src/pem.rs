//! TLS material as both sides read it: [`Pem`] (a PEM file or PEM bytes) and [`TlsError`], one
//! line saying which file is wrong and how. The provider (server identity, client CA) and the
//! consumer (trusted CA, client identity) both load their certificates and keys through here,
//! so a missing file, garbage, or a key that does not match its certificate reads the same on
//! either side.

use std::fmt;
use std::path::PathBuf;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// PEM text: a file to read, or bytes already in memory.
#[derive(Clone, PartialEq, Eq)]
pub enum Pem {
    /// A file holding PEM blocks.
    File(PathBuf),
    /// PEM text in memory.
    Bytes(Vec<u8>),
}

impl fmt::Debug for Pem {
    /// Names the file, never prints bytes (a private key may be among them).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(path) => write!(f, "Pem::File({})", path.display()),
            Pem::Bytes(bytes) => write!(f, "Pem::Bytes({} bytes)", bytes.len()),
        }
    }
}

impl Pem {
    /// PEM read from `path` (when loaded, not now).
    pub fn file(path: impl Into<PathBuf>) -> Pem {
        Pem::File(path.into())
    }

    /// PEM text in memory.
    pub fn bytes(text: impl Into<Vec<u8>>) -> Pem {
        Pem::Bytes(text.into())
    }

    /// Where this PEM comes from, for messages: the file's path, or "PEM bytes".
    pub fn origin(&self) -> String {
        match self {
            Pem::File(path) => path.display().to_string(),
            Pem::Bytes(_) => "PEM bytes".to_owned(),
        }
    }

    /// The PEM text: the file read, or the bytes.
    pub fn read(&self, what: &'static str) -> Result<Vec<u8>, TlsError> {
        match self {
            Pem::File(path) => std::fs::read(path).map_err(|e| TlsError {
                message: format!("cannot read the {what} {}: {e}", path.display()),
            }),
            Pem::Bytes(bytes) => Ok(bytes.clone()),
        }
    }

    /// Every certificate in the PEM text (at least one). `what` names it in errors, e.g.
    /// "certificate (--tls-cert)".
    pub fn certificates(
        &self,
        what: &'static str,
    ) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let text = self.read(what)?;
        let certs = CertificateDer::pem_slice_iter(&text)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.garbage(what, &e.to_string()))?;
        if certs.is_empty() {
            return Err(self.garbage(what, "no \"-----BEGIN CERTIFICATE-----\" block in it"));
        }
        Ok(certs)
    }

    /// The private key in the PEM text (PKCS#8, PKCS#1 or SEC1).
    pub fn private_key(&self, what: &'static str) -> Result<PrivateKeyDer<'static>, TlsError> {
        let text = self.read(what)?;
        PrivateKeyDer::from_pem_slice(&text).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound
                if text.windows(9).any(|w| w == b"ENCRYPTED") =>
            {
                self.garbage(
                    what,
                    "the key is encrypted (a passphrase is not supported); decrypt it first, e.g. `openssl pkey -in KEY -out KEY.plain`",
                )
            }
            rustls_pki_types::pem::Error::NoItemsFound => self.garbage(
                what,
                "no \"-----BEGIN PRIVATE KEY-----\" (or RSA / EC PRIVATE KEY) block in it",
            ),
            other => self.garbage(what, &other.to_string()),
        })
    }

    fn garbage(&self, what: &str, detail: &str) -> TlsError {
        TlsError {
            message: format!(
                "the {what} {} is not usable PEM: {detail}; give a PEM file",
                self.origin()
            ),
        }
    }
}

/// TLS material that cannot be used: which input, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TlsError {
    message: String,
}

impl TlsError {
    /// An error with this one-line message.
    pub fn new(message: impl Into<String>) -> TlsError {
        TlsError {
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_and_garbage_are_named() {
        let missing = Pem::file("/nonexistent/cert.pem");
        let e = missing
            .certificates("certificate (--tls-cert)")
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read the certificate (--tls-cert) /nonexistent/cert.pem:")
        );
        let garbage = Pem::bytes("hello");
        let e = garbage.certificates("CA (--tls-ca)").unwrap_err();
        assert!(
            e.to_string()
                .contains("no \"-----BEGIN CERTIFICATE-----\" block"),
            "{e}"
        );
        let e = garbage.private_key("key (--tls-key)").unwrap_err();
        assert!(e.to_string().contains("is not usable PEM"), "{e}");
        assert_eq!(format!("{:?}", Pem::bytes("secret")), "Pem::Bytes(6 bytes)");
    }
}
