//! One error type for the client core. Messages say what to do next.

use portcullis_proto::CertFingerprint;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "not signed in to gateway {gateway}: run `portcullis login {gateway} --user NAME --password-stdin`"
    )]
    NotSignedIn { gateway: String },
    #[error(
        "no gateway is signed in: run `portcullis login https://GATEWAY --user NAME --password-stdin`"
    )]
    NoGateway,
    #[error("several gateways are signed in ({known}): choose one with --gateway URL")]
    AmbiguousGateway { known: String },
    #[error(
        "the TLS certificate of gateway {gateway} has CHANGED: pinned {pinned}, presented {presented}. \
         This may be an attack. If the operator replaced the certificate, confirm the new fingerprint \
         with them (`portcullis-gateway fingerprint`) and run `portcullis login {gateway} --fingerprint {presented} ...`"
    )]
    CertificateChanged {
        gateway: String,
        pinned: CertFingerprint,
        presented: CertFingerprint,
    },
    #[error(
        "gateway {gateway} presented a certificate that no system CA vouches for (SHA-256 {presented}). \
         Check it with the gateway's operator (`portcullis-gateway fingerprint`), then pass --fingerprint {presented}"
    )]
    UntrustedCertificate {
        gateway: String,
        presented: CertFingerprint,
    },
    #[error("the fingerprint was not confirmed; nothing was saved")]
    NotConfirmed,
    #[error("invalid gateway URL {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error("cannot reach gateway {gateway}: {cause}")]
    Connect { gateway: String, cause: String },
    #[error("TLS with gateway {gateway} failed: {cause}")]
    Tls { gateway: String, cause: String },
    #[error("gateway {gateway} refused: {message} ({code})")]
    Refused {
        gateway: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("gateway {gateway} answered something unexpected: {cause}")]
    Protocol { gateway: String, cause: String },
    #[error("client state in {path}: {cause}")]
    State { path: String, cause: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl ClientError {
    /// The HTTP status of a refusal, if the gateway answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}
