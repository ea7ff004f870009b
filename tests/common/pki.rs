//! Certificates made at test time (rcgen): a CA, a server certificate for 127.0.0.1 and
//! localhost, a client certificate, as PEM text and as files in a temp dir.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use zoorpc::consumer::{ConsumerTls, Pem};
use zoorpc::provider::ProviderTls;

/// A CA and what it issued, as PEM text and as files in a temp dir (deleted on drop).
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
}

/// A certificate authority made now.
pub struct Ca {
    pub issuer: Issuer<'static, KeyPair>,
    pub pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A leaf certificate for `names` that expired in 2020: (certificate, key) PEM.
    pub fn issue_expired(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A leaf certificate for `names` (IP literals become IP names): (certificate, key) PEM.
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = CertificateParams::new(names).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

impl Pki {
    /// A CA, a server certificate for 127.0.0.1 and localhost, a client certificate.
    pub fn new() -> Pki {
        let ca = Ca::new("zoorpc test CA");
        let (server_cert, server_key) = ca.issue(&["127.0.0.1", "localhost"]);
        let (client_cert, client_key) = ca.issue(&["client.zoorpc.test"]);
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
            ca: ca.pem,
            server_cert,
            server_key,
            client_cert,
            client_key,
        };
        for (name, text) in [
            ("ca.pem", &pki.ca),
            ("server.pem", &pki.server_cert),
            ("server.key", &pki.server_key),
            ("client.pem", &pki.client_cert),
            ("client.key", &pki.client_key),
            ("garbage.pem", &"not a certificate\n".to_owned()),
        ] {
            std::fs::write(pki.dir.path().join(name), text).unwrap();
        }
        pki
    }

    /// The path of one of the files, as a string for flags.
    pub fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    pub fn provider_tls(&self) -> ProviderTls {
        ProviderTls::new(
            Pem::bytes(self.server_cert.clone()),
            Pem::bytes(self.server_key.clone()),
        )
        .unwrap()
    }

    pub fn consumer_tls(&self) -> ConsumerTls {
        ConsumerTls::new(Pem::bytes(self.ca.clone())).unwrap()
    }
}
