//! Trusting a gateway: by a pinned SHA-256 fingerprint of its certificate, or by a
//! CA the system trusts. The verifier remembers what it was shown, so a refusal
//! can name the presented fingerprint.

use std::sync::{Arc, Mutex};

use portcullis_proto::CertFingerprint;
use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

#[derive(Debug, Clone)]
pub enum Trust {
    /// Accept exactly this certificate, whatever its issuer and names.
    Pinned(CertFingerprint),
    /// Accept a certificate that chains to a system CA and names the host.
    SystemRoots,
}

#[derive(Debug)]
pub struct GatewayVerifier {
    trust: Trust,
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    presented: Mutex<Option<CertFingerprint>>,
}

impl GatewayVerifier {
    pub fn presented(&self) -> Option<CertFingerprint> {
        *self.presented.lock().expect("presented lock")
    }
}

impl ServerCertVerifier for GatewayVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = CertFingerprint::of_der(end_entity);
        *self.presented.lock().expect("presented lock") = Some(presented);
        match &self.trust {
            Trust::Pinned(pin) if *pin == presented => Ok(ServerCertVerified::assertion()),
            Trust::Pinned(_) => Err(rustls::Error::General(
                "certificate does not match the pinned fingerprint".into(),
            )),
            Trust::SystemRoots => match &self.webpki {
                Some(webpki) => webpki.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    now,
                ),
                None => Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer,
                )),
            },
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The system's CA roots, read once per process.
fn system_verifier(provider: &Arc<CryptoProvider>) -> Option<Arc<WebPkiServerVerifier>> {
    static ROOTS: std::sync::OnceLock<Arc<rustls::RootCertStore>> = std::sync::OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        let mut store = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            let _ = store.add(cert);
        }
        Arc::new(store)
    });
    if roots.is_empty() {
        return None;
    }
    WebPkiServerVerifier::builder_with_provider(Arc::clone(roots), Arc::clone(provider))
        .build()
        .ok()
}

/// A client configuration that trusts as asked, and the verifier to ask afterwards
/// what the gateway presented.
pub fn client_config(
    trust: Trust,
    alpn: &[&[u8]],
) -> (Arc<rustls::ClientConfig>, Arc<GatewayVerifier>) {
    // AES-128-GCM first: as safe for a session's lifetime and faster than AES-256
    // where the tunnel is bound by the CPU.
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|suite| match suite.suite() {
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
            rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => 1,
            _ => 2,
        });
    let provider = Arc::new(provider);
    let webpki = match trust {
        Trust::SystemRoots => system_verifier(&provider),
        Trust::Pinned(_) => None,
    };
    let verifier = Arc::new(GatewayVerifier {
        trust,
        webpki,
        provider: Arc::clone(&provider),
        presented: Mutex::new(None),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("TLS 1.2 and 1.3 are supported by the provider")
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    (Arc::new(config), verifier)
}
