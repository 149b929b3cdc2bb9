//! Private keys held in memory: read from OpenSSH text (a passphrase asked
//! through the [`Prompter`] when the key is encrypted), released by a gateway's
//! vault, or kept in the app's secret store; optionally with a certificate
//! from a gateway's SSH CA to present for them.

use std::path::Path;
use std::sync::Arc;

use portcullis_proto::Secret;
use russh::keys::{Certificate, HashAlg, PrivateKey};

use super::{Prompter, SshError, keyfix};

/// Passphrase attempts per key, as OpenSSH allows.
pub(super) const PASSPHRASE_ATTEMPTS: usize = 3;

/// A private key in memory, with the certificate to present for it, if any.
/// Never written anywhere; the key material is zeroized when the last copy goes
/// (ssh-key zeroizes private key data on drop).
#[derive(Clone)]
pub struct LoadedKey {
    /// What the person knows the key by (a file path, "vault key of HOST").
    pub label: String,
    key: Arc<PrivateKey>,
    certificate: Option<Arc<Certificate>>,
}

impl LoadedKey {
    pub fn new(label: impl Into<String>, key: PrivateKey) -> LoadedKey {
        LoadedKey {
            label: label.into(),
            key: Arc::new(key),
            certificate: None,
        }
    }

    /// Presents `certificate` (one OpenSSH line) for this key; refused when it
    /// certifies another key.
    pub fn with_certificate(mut self, certificate: &str) -> Result<LoadedKey, SshError> {
        let error = |cause: String| SshError::Key {
            path: self.label.clone(),
            cause,
        };
        let parsed = Certificate::from_openssh(certificate.trim())
            .map_err(|e| error(format!("the certificate does not read: {e}")))?;
        if parsed.public_key() != self.key.public_key().key_data() {
            return Err(error("the certificate is for another key".into()));
        }
        self.certificate = Some(Arc::new(parsed));
        Ok(self)
    }

    pub fn private_key(&self) -> &Arc<PrivateKey> {
        &self.key
    }

    pub fn certificate(&self) -> Option<&Certificate> {
        self.certificate.as_deref()
    }

    /// The public half as one OpenSSH line (`ssh-ed25519 AAAA… comment`).
    pub fn public_openssh(&self) -> String {
        self.key
            .public_key()
            .to_openssh()
            .expect("a decoded public key encodes")
    }

    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        self.key
            .public_key()
            .fingerprint(HashAlg::Sha256)
            .to_string()
    }
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKey")
            .field("label", &self.label)
            .field("fingerprint", &self.fingerprint())
            .field("certificate", &self.certificate.is_some())
            .finish()
    }
}

impl PartialEq for LoadedKey {
    fn eq(&self, other: &LoadedKey) -> bool {
        self.label == other.label
            && self.key.public_key() == other.key.public_key()
            && self.certificate == other.certificate
    }
}

impl Eq for LoadedKey {}

/// Reads an OpenSSH private key. An encrypted one's passphrase is asked through
/// `prompter` (under `label`), up to three times; `None` when the person
/// declined to give it.
pub async fn decode_key(
    text: &Secret<String>,
    label: &Path,
    prompter: &dyn Prompter,
) -> Result<Option<PrivateKey>, SshError> {
    let key_error = |cause: String| SshError::Key {
        path: label.display().to_string(),
        cause,
    };
    // An ECDSA key whose scalar OpenSSH wrote a byte short is read at full width.
    let widened;
    let text = match keyfix::widen_ecdsa_scalar(text.expose()) {
        Some(fixed) => {
            widened = Secret::new(fixed.to_string());
            &widened
        }
        None => text,
    };
    match russh::keys::decode_secret_key(text.expose(), None) {
        Ok(key) => Ok(Some(key)),
        Err(russh::keys::Error::KeyIsEncrypted) => {
            for attempt in 1..=PASSPHRASE_ATTEMPTS {
                let Some(passphrase) = prompter.passphrase(label).await else {
                    return Ok(None);
                };
                match russh::keys::decode_secret_key(text.expose(), Some(passphrase.expose())) {
                    Ok(key) => return Ok(Some(key)),
                    Err(_) if attempt < PASSPHRASE_ATTEMPTS => continue,
                    Err(_) => break,
                }
            }
            Err(key_error(format!(
                "wrong passphrase ({PASSPHRASE_ATTEMPTS} attempts)"
            )))
        }
        Err(e) => Err(key_error(e.to_string())),
    }
}
