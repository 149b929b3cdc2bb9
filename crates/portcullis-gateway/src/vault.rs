//! The gateway's vault: secrets attached to hosts (RDP passwords, SSH private
//! keys) sealed with AES-256-GCM under a key-encryption key (KEK) that lives in a
//! file or an environment variable named in the configuration, never in the
//! database. Each row has its own random nonce and is bound to its host, kind and
//! user (associated data), so sealed values cannot be moved between rows; each
//! row names the key that sealed it, so a wrong key is told apart from damage.
//!
//! INVARIANT: plaintext secrets exist only in [`Secret`]s (zeroized on drop) and
//! are never logged, printed or put in an error.

use std::io::Read as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context, bail};
use portcullis_proto::{HostName, Secret};
use sha2::Digest;

use crate::config::VaultSection;

/// Longest secret taken: an RSA-4096 OpenSSH key is about 3.4 KB.
pub const MAX_SECRET_BYTES: usize = 16 * 1024;
/// Longest password (RDP allows 256 characters).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest user name a secret is attached to.
pub const MAX_USER_BYTES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecretKind {
    /// A password (RDP, or SSH password authentication).
    Password,
    /// An OpenSSH private key (unencrypted: the vault is its protection).
    SshKey,
}

impl SecretKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::Password => "password",
            SecretKind::SshKey => "ssh-key",
        }
    }

    pub fn parse(text: &str) -> Option<SecretKind> {
        match text {
            "password" => Some(SecretKind::Password),
            "ssh-key" => Some(SecretKind::SshKey),
            _ => None,
        }
    }

    /// Refuses what cannot be a secret of this kind (nothing of it is echoed).
    pub fn validate(self, value: &Secret<Vec<u8>>) -> anyhow::Result<()> {
        let bytes = value.expose();
        if bytes.is_empty() {
            bail!("the secret is empty");
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("the secret is not UTF-8 text"))?;
        match self {
            SecretKind::Password => {
                if bytes.len() > MAX_PASSWORD_BYTES {
                    bail!("a password has at most {MAX_PASSWORD_BYTES} bytes");
                }
                if text.contains(['\n', '\r', '\0']) {
                    bail!("a password is one line");
                }
            }
            SecretKind::SshKey => {
                let text = text.trim();
                let body = text
                    .strip_prefix("-----BEGIN OPENSSH PRIVATE KEY-----")
                    .and_then(|t| t.strip_suffix("-----END OPENSSH PRIVATE KEY-----"));
                let Some(body) = body else {
                    bail!(
                        "an ssh-key secret is an OpenSSH private key (-----BEGIN OPENSSH PRIVATE KEY-----)"
                    );
                };
                // The vault is the key's protection, and a granted user's client
                // has nobody to ask for a passphrase: the key must be unencrypted.
                match openssh_cipher(body) {
                    Some(cipher) if cipher == b"none" => {}
                    Some(_) => bail!(
                        "the key is encrypted: store it without a passphrase (ssh-keygen -p -N '' -f KEY on a copy); the vault seals it"
                    ),
                    None => bail!("the OpenSSH private key is damaged"),
                }
            }
        }
        Ok(())
    }
}

/// The cipher an OpenSSH private key's body (base64 between the PEM lines)
/// names: `none` for an unencrypted key.
fn openssh_cipher(body: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let blob = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .ok()?,
    );
    let rest = blob.strip_prefix(b"openssh-key-v1\0")?;
    let length = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    rest.get(4..4 + length).map(<[u8]>::to_vec)
}

/// A sealed value as stored: the sealing key's id, the nonce and the ciphertext
/// with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub sealed: Vec<u8>,
}

/// The key-encryption key.
pub struct Kek {
    key: Secret<Vec<u8>>,
    id: String,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek({})", self.id)
    }
}

/// The associated data binding a sealed value to its row.
fn aad(host: &HostName, kind: SecretKind, user: &str) -> Vec<u8> {
    format!(
        "portcullis-gateway-vault-v1\0{host}\0{}\0{user}",
        kind.as_str()
    )
    .into_bytes()
}

impl Kek {
    /// A key from its text form: 64 hex digits (surrounding white space ignored).
    pub fn from_text(text: &Secret<String>) -> anyhow::Result<Kek> {
        let hex_text = text.expose().trim();
        if hex_text.len() != 64 {
            bail!(
                "a vault key is 64 hex digits (32 bytes); `portcullis-gateway secret new-key PATH` makes one"
            );
        }
        let key = Secret::new(
            hex::decode(hex_text).map_err(|_| anyhow::anyhow!("a vault key is 64 hex digits"))?,
        );
        let digest = sha2::Sha256::digest(key.expose());
        let id = format!("kek-{}", hex::encode(&digest[..6]));
        Ok(Kek { key, id })
    }

    /// A new random key and its text form.
    pub fn generate() -> (Kek, Secret<String>) {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random source");
        let text = Secret::new(hex::encode(bytes));
        zeroize::Zeroize::zeroize(&mut bytes);
        (Kek::from_text(&text).expect("well-formed"), text)
    }

    /// Reads the key from the file at `path` (not readable by group or others).
    pub fn from_file(path: &Path) -> anyhow::Result<Kek> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open the vault key file {}", path.display()))?;
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "the vault key file {} is readable by others (mode {:o}): chmod 600 it",
                path.display(),
                mode & 0o777
            );
        }
        let mut raw = Vec::with_capacity(80);
        file.take(1024)
            .read_to_end(&mut raw)
            .with_context(|| format!("cannot read the vault key file {}", path.display()))?;
        let text = Secret::new(
            String::from_utf8(raw)
                .map_err(|_| anyhow::anyhow!("the vault key file is not text"))?,
        );
        Kek::from_text(&text).with_context(|| format!("in {}", path.display()))
    }

    /// The key the configuration names: `[vault] key_file` or `key_env`.
    pub fn load(section: &VaultSection) -> anyhow::Result<Kek> {
        match (&section.key_file, &section.key_env) {
            (Some(_), Some(_)) => bail!("[vault] names both key_file and key_env: keep one"),
            (Some(path), None) => Kek::from_file(path),
            (None, Some(name)) => {
                let value = std::env::var(name).map_err(|_| {
                    anyhow::anyhow!("[vault] key_env names {name}, which is not set")
                })?;
                Kek::from_text(&Secret::new(value)).with_context(|| format!("in ${name}"))
            }
            (None, None) => bail!(
                "no vault key is configured: make one with `portcullis-gateway secret new-key PATH` \
                 and name it in gateway.toml under [vault] (key_file = \"PATH\" or key_env = \"VARIABLE\")"
            ),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(self.key.expose()).expect("a 32-byte key")
    }

    pub fn seal(
        &self,
        host: &HostName,
        kind: SecretKind,
        user: &str,
        value: &Secret<Vec<u8>>,
    ) -> Sealed {
        self.seal_with(&aad(host, kind, user), value)
    }

    pub fn open(
        &self,
        host: &HostName,
        kind: SecretKind,
        user: &str,
        sealed: &Sealed,
    ) -> anyhow::Result<Secret<Vec<u8>>> {
        let what = format!("the {} secret of {host}", kind.as_str());
        self.open_with(&what, &aad(host, kind, user), sealed)
    }

    /// Seals one of the gateway's own items (the SSH user CA's key).
    pub fn seal_item(&self, name: &str, value: &Secret<Vec<u8>>) -> Sealed {
        self.seal_with(&item_aad(name), value)
    }

    pub fn open_item(&self, name: &str, sealed: &Sealed) -> anyhow::Result<Secret<Vec<u8>>> {
        self.open_with(name, &item_aad(name), sealed)
    }

    fn seal_with(&self, aad: &[u8], value: &Secret<Vec<u8>>) -> Sealed {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the OS random source");
        let sealed = self
            .cipher()
            .encrypt(
                &Nonce::try_from(&nonce[..]).expect("12-byte nonce"),
                Payload {
                    msg: value.expose(),
                    aad,
                },
            )
            .expect("AES-GCM sealing cannot fail for small inputs");
        Sealed {
            key_id: self.id.clone(),
            nonce: nonce.to_vec(),
            sealed,
        }
    }

    /// Opens `sealed` (`what` names it in errors); a wrong key is told apart
    /// from damage.
    fn open_with(
        &self,
        what: &str,
        aad: &[u8],
        sealed: &Sealed,
    ) -> anyhow::Result<Secret<Vec<u8>>> {
        if sealed.key_id != self.id {
            bail!(
                "{what} was sealed with vault key {}, not the configured {}",
                sealed.key_id,
                self.id
            );
        }
        let nonce = Nonce::try_from(&sealed.nonce[..])
            .map_err(|_| anyhow::anyhow!("{what} is damaged (nonce)"))?;
        self.cipher()
            .decrypt(
                &nonce,
                Payload {
                    msg: &sealed.sealed,
                    aad,
                },
            )
            .map(Secret::new)
            .map_err(|_| anyhow::anyhow!("{what} is damaged or not this row's"))
    }
}

/// The associated data binding a sealed gateway item to its name.
fn item_aad(name: &str) -> Vec<u8> {
    format!("portcullis-gateway-vault-v1\0item\0{name}").into_bytes()
}

/// Writes a new key to `path` (mode 0600, never over an existing file).
pub fn write_new_key(path: &Path) -> anyhow::Result<Kek> {
    use std::io::Write as _;
    let (kek, text) = Kek::generate();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(text.expose().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok(kek)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str) -> HostName {
        name.parse().unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_in_its_row() {
        let (kek, _) = Kek::generate();
        let (other, _) = Kek::generate();
        let value = Secret::new(b"hunter2-rdp".to_vec());
        let sealed = kek.seal(&host("web1"), SecretKind::Password, "admin", &value);
        assert!(!sealed.sealed.windows(6).any(|w| w == b"hunter"));
        let opened = kek
            .open(&host("web1"), SecretKind::Password, "admin", &sealed)
            .unwrap();
        assert_eq!(opened.expose(), value.expose());
        // Another row: another host, kind or user.
        assert!(
            kek.open(&host("web2"), SecretKind::Password, "admin", &sealed)
                .is_err()
        );
        assert!(
            kek.open(&host("web1"), SecretKind::SshKey, "admin", &sealed)
                .is_err()
        );
        assert!(
            kek.open(&host("web1"), SecretKind::Password, "root", &sealed)
                .is_err()
        );
        // Another key: named, not mistaken for damage.
        let wrong = other
            .open(&host("web1"), SecretKind::Password, "admin", &sealed)
            .unwrap_err();
        assert!(wrong.to_string().contains(kek.id()), "{wrong}");
        // Tampered ciphertext.
        let mut bad = sealed.clone();
        bad.sealed[0] ^= 1;
        assert!(
            kek.open(&host("web1"), SecretKind::Password, "admin", &bad)
                .is_err()
        );
    }

    #[test]
    fn keys_and_secrets_out_of_shape_are_refused() {
        for text in ["", "abc", &"g".repeat(64), &"a".repeat(63)] {
            assert!(
                Kek::from_text(&Secret::new(text.to_owned())).is_err(),
                "{text:?}"
            );
        }
        assert!(Kek::from_text(&Secret::new(format!("  {}\n", "ab".repeat(32)))).is_ok());
        let password = SecretKind::Password;
        assert!(password.validate(&Secret::new(Vec::new())).is_err());
        assert!(
            password
                .validate(&Secret::new(b"two\nlines".to_vec()))
                .is_err()
        );
        assert!(
            password
                .validate(&Secret::new(vec![b'a'; MAX_PASSWORD_BYTES + 1]))
                .is_err()
        );
        assert!(password.validate(&Secret::new(vec![0xff, 0xfe])).is_err());
        assert!(
            password
                .validate(&Secret::new(b"correct horse".to_vec()))
                .is_ok()
        );
        let key = SecretKind::SshKey;
        assert!(key.validate(&Secret::new(b"not a key".to_vec())).is_err());
        let damaged = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----\n";
        assert!(
            key.validate(&Secret::new(damaged.as_bytes().to_vec()))
                .is_err()
        );
        // Real keys from ssh-keygen: unencrypted is taken, with a passphrase is not.
        let dir = tempfile::tempdir().unwrap();
        for (passphrase, taken) in [("", true), ("a passphrase", false)] {
            let path = dir.path().join(format!("key{}", passphrase.len()));
            let made = std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", passphrase, "-f"])
                .arg(&path)
                .output()
                .expect("ssh-keygen (openssh-client) is installed by the set-up");
            assert!(made.status.success());
            let text = std::fs::read(&path).unwrap();
            let outcome = key.validate(&Secret::new(text));
            assert_eq!(outcome.is_ok(), taken, "{passphrase:?}: {outcome:?}");
            if !taken {
                assert!(outcome.unwrap_err().to_string().contains("encrypted"));
            }
        }
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.key");
        let kek = write_new_key(&path).unwrap();
        assert_eq!(Kek::from_file(&path).unwrap().id(), kek.id());
        assert!(write_new_key(&path).is_err(), "never overwrites a key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = Kek::from_file(&path).unwrap_err().to_string();
        assert!(refused.contains("chmod 600"), "{refused}");
    }
}
