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

/// Longest private key file read; OpenSSH's largest (RSA 16384) is far smaller.
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// A private key file's text, at most [`MAX_KEY_FILE_BYTES`].
pub fn read_key_file(path: &Path) -> Result<Secret<String>, SshError> {
    let key_error = |cause: String| SshError::Key {
        path: path.display().to_string(),
        cause,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| key_error(e.to_string()))?
        .len();
    if size > MAX_KEY_FILE_BYTES {
        return Err(key_error(format!(
            "{size} bytes is not a private key (at most {MAX_KEY_FILE_BYTES})"
        )));
    }
    Ok(Secret::new(
        std::fs::read_to_string(path).map_err(|e| key_error(e.to_string()))?,
    ))
}

/// What OpenSSH private key text gave with the passphrase offered.
pub enum Decoded {
    Key(Box<PrivateKey>),
    /// The key is encrypted and no passphrase was offered.
    NeedsPassphrase,
    /// The key is encrypted and the passphrase offered does not open it.
    WrongPassphrase,
}

/// Reads OpenSSH private key text, with `passphrase` for an encrypted key. An
/// ECDSA key whose scalar OpenSSH wrote a byte short is read at full width.
/// `Err` when the text is not a key at all.
pub fn decode_openssh(
    text: &Secret<String>,
    passphrase: Option<&Secret<String>>,
) -> Result<Decoded, russh::keys::Error> {
    let widened = keyfix::widen_ecdsa_scalar(text.expose());
    let text = widened
        .as_deref()
        .map_or(text.expose().as_str(), String::as_str);
    match russh::keys::decode_secret_key(text, None) {
        Ok(key) => Ok(Decoded::Key(Box::new(key))),
        Err(russh::keys::Error::KeyIsEncrypted) => match passphrase {
            None => Ok(Decoded::NeedsPassphrase),
            Some(passphrase) => Ok(
                match russh::keys::decode_secret_key(text, Some(passphrase.expose())) {
                    Ok(key) => Decoded::Key(Box::new(key)),
                    Err(_) => Decoded::WrongPassphrase,
                },
            ),
        },
        Err(e) => Err(e),
    }
}

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
    let mut passphrase = None;
    for attempt in 0..=PASSPHRASE_ATTEMPTS {
        match decode_openssh(text, passphrase.as_ref()).map_err(|e| key_error(e.to_string()))? {
            Decoded::Key(key) => return Ok(Some(*key)),
            Decoded::WrongPassphrase if attempt == PASSPHRASE_ATTEMPTS => break,
            Decoded::NeedsPassphrase | Decoded::WrongPassphrase => {
                let Some(given) = prompter.passphrase(label).await else {
                    return Ok(None);
                };
                passphrase = Some(given);
            }
        }
    }
    Err(key_error(format!(
        "wrong passphrase ({PASSPHRASE_ATTEMPTS} attempts)"
    )))
}
