//! TLS for the gateway's one port: certificate generation for `init`, loading PEM
//! files, and a rustls configuration with AEAD suites only.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use portcullis_proto::CertFingerprint;
use rustls::crypto::aws_lc_rs::{self, cipher_suite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Writes a file only its owner may read; refuses to overwrite.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

pub struct GeneratedCert {
    pub cert_pem: String,
    pub key_pem: zeroize::Zeroizing<String>,
    pub fingerprint: CertFingerprint,
}

/// A self-signed ECDSA P-256 certificate for the given names and addresses.
pub fn generate_self_signed(hostnames: &[String]) -> anyhow::Result<GeneratedCert> {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        hostnames
            .first()
            .map(String::as_str)
            .unwrap_or("portcullis-gateway"),
    );
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Portcullis gateway");
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(3600)).into();
    params.not_after = (now + std::time::Duration::from_secs(10 * 365 * 86_400)).into();
    for name in hostnames {
        let san = match name.parse::<IpAddr>() {
            Ok(ip) => rcgen::SanType::IpAddress(ip),
            Err(_) => rcgen::SanType::DnsName(name.clone().try_into().with_context(|| {
                format!("{name:?} is not a valid DNS name for the certificate")
            })?),
        };
        params.subject_alt_names.push(san);
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .context("cannot generate the TLS key")?;
    let cert = params
        .self_signed(&key)
        .context("cannot sign the TLS certificate")?;
    Ok(GeneratedCert {
        fingerprint: CertFingerprint::of_der(cert.der()),
        cert_pem: cert.pem(),
        key_pem: zeroize::Zeroizing::new(key.serialize_pem()),
    })
}

pub fn load_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read TLS certificate {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("invalid PEM in TLS certificate {}", path.display()))?;
    if certs.is_empty() {
        bail!(
            "TLS certificate file {} holds no certificate",
            path.display()
        );
    }
    Ok(certs)
}

/// SHA-256 of the leaf certificate in the PEM file.
pub fn fingerprint_of(path: &Path) -> anyhow::Result<CertFingerprint> {
    Ok(CertFingerprint::of_der(&load_certs(path)?[0]))
}

/// AEAD suites only: TLS 1.3's, and TLS 1.2's ECDHE with AES-GCM or ChaCha20-Poly1305.
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::CryptoProvider {
        cipher_suites: vec![
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            cipher_suite::TLS13_AES_256_GCM_SHA384,
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        ..aws_lc_rs::default_provider()
    }
}

pub fn server_config(
    cert_path: &Path,
    key_path: &Path,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs = load_certs(cert_path)?;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .with_context(|| format!("cannot read TLS private key {}", key_path.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and private key do not fit together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
