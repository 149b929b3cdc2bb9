//! The encrypted file store for passwords and key passphrases, for machines
//! without an OS keychain: one file, a master password stretched with argon2id
//! into an AES-256-GCM key; each entry sealed with its own nonce and bound to its
//! name (associated data), so entries cannot be swapped between names. The file
//! holds no plaintext; a wrong master password is told apart from a damaged file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis_proto::Secret;
use zeroize::Zeroize;

/// Longest entry name and secret taken.
pub const MAX_NAME: usize = 200;
pub const MAX_SECRET: usize = 16 * 1024;
/// A vault file larger than this is not ours.
const MAX_FILE: u64 = 8 * 1024 * 1024;
const CHECK_PLAINTEXT: &[u8] = b"portcullis-vault-v1";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the master password is wrong")]
    WrongPassword,
    #[error("the vault file {path} is damaged or not a Portcullis vault: {why}")]
    Corrupt { path: String, why: String },
    #[error("no secret named {0:?} in the vault")]
    Missing(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the vault file {path}: {cause}")]
    Io { path: String, cause: String },
}

#[derive(serde::Serialize, serde::Deserialize)]
struct KdfParams {
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct VaultFile {
    version: u32,
    kdf: KdfParams,
    /// A known plaintext sealed under the key: tells a wrong password from damage.
    check: String,
    entries: BTreeMap<String, String>,
}

pub struct FileVault {
    path: PathBuf,
    file: VaultFile,
    key: Secret<Vec<u8>>,
}

fn derive(master: &Secret<String>, kdf: &KdfParams) -> Result<Secret<Vec<u8>>, VaultError> {
    let salt = STANDARD
        .decode(&kdf.salt)
        .map_err(|e| VaultError::Invalid(format!("salt: {e}")))?;
    let params = argon2::Params::new(kdf.m_cost, kdf.t_cost, kdf.p_cost, Some(32))
        .map_err(|e| VaultError::Invalid(format!("argon2 parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = vec![0u8; 32];
    argon
        .hash_password_into(master.expose().as_bytes(), &salt, &mut key)
        .map_err(|e| VaultError::Invalid(format!("argon2: {e}")))?;
    Ok(Secret::new(key))
}

fn cipher(key: &Secret<Vec<u8>>) -> Aes256Gcm {
    Aes256Gcm::new_from_slice(key.expose()).expect("a 32-byte key")
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the OS random source");
    bytes
}

fn seal(key: &Secret<Vec<u8>>, name: &str, plaintext: &[u8]) -> String {
    let nonce_bytes = random::<12>();
    let nonce = Nonce::try_from(&nonce_bytes[..]).expect("12-byte nonce");
    let sealed = cipher(key)
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: name.as_bytes(),
            },
        )
        .expect("AES-GCM sealing cannot fail for small inputs");
    let mut out = nonce_bytes.to_vec();
    out.extend_from_slice(&sealed);
    STANDARD.encode(out)
}

fn open(key: &Secret<Vec<u8>>, name: &str, sealed: &str) -> Option<Vec<u8>> {
    let bytes = STANDARD.decode(sealed).ok()?;
    if bytes.len() < 12 + 16 {
        return None;
    }
    let nonce = Nonce::try_from(&bytes[..12]).ok()?;
    cipher(key)
        .decrypt(
            &nonce,
            Payload {
                msg: &bytes[12..],
                aad: name.as_bytes(),
            },
        )
        .ok()
}

fn check_master(master: &Secret<String>) -> Result<(), VaultError> {
    if master.expose().chars().count() < 8 {
        return Err(VaultError::Invalid(
            "the master password needs at least 8 characters".into(),
        ));
    }
    if master.expose().len() > 1024 {
        return Err(VaultError::Invalid(
            "the master password is too long".into(),
        ));
    }
    Ok(())
}

impl FileVault {
    /// A new, empty vault at `path` (refused if a file is there).
    pub fn create(path: &Path, master: &Secret<String>) -> Result<FileVault, VaultError> {
        check_master(master)?;
        if path.exists() {
            return Err(VaultError::Invalid(format!(
                "{} exists; open it instead",
                path.display()
            )));
        }
        // OWASP's argon2id floor: 19 MiB, 2 passes.
        let kdf = KdfParams {
            m_cost: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
            salt: STANDARD.encode(random::<16>()),
        };
        let key = derive(master, &kdf)?;
        let check = seal(&key, "", CHECK_PLAINTEXT);
        let vault = FileVault {
            path: path.to_path_buf(),
            file: VaultFile {
                version: 1,
                kdf,
                check,
                entries: BTreeMap::new(),
            },
            key,
        };
        vault.save()?;
        Ok(vault)
    }

    /// Opens (unlocks) the vault at `path`.
    pub fn open(path: &Path, master: &Secret<String>) -> Result<FileVault, VaultError> {
        let shown = path.display().to_string();
        let io = |e: std::io::Error| VaultError::Io {
            path: shown.clone(),
            cause: e.to_string(),
        };
        let corrupt = |why: &str| VaultError::Corrupt {
            path: shown.clone(),
            why: why.to_owned(),
        };
        if std::fs::metadata(path).map_err(io)?.len() > MAX_FILE {
            return Err(corrupt("too large"));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let file: VaultFile =
            serde_json::from_str(&text).map_err(|e| corrupt(&format!("not JSON: {e}")))?;
        if file.version != 1 {
            return Err(corrupt("unknown version"));
        }
        if file.kdf.m_cost > 1024 * 1024 || file.kdf.t_cost > 16 || file.kdf.p_cost > 16 {
            return Err(corrupt("unreasonable key-derivation parameters"));
        }
        let key = derive(master, &file.kdf)?;
        match open(&key, "", &file.check) {
            Some(plain) if plain == CHECK_PLAINTEXT => {}
            _ => return Err(VaultError::WrongPassword),
        }
        Ok(FileVault {
            path: path.to_path_buf(),
            file,
            key,
        })
    }

    pub fn names(&self) -> Vec<String> {
        self.file.entries.keys().cloned().collect()
    }

    pub fn get(&self, name: &str) -> Result<Secret<String>, VaultError> {
        let sealed = self
            .file
            .entries
            .get(name)
            .ok_or_else(|| VaultError::Missing(name.to_owned()))?;
        let mut plain = open(&self.key, name, sealed).ok_or_else(|| VaultError::Corrupt {
            path: self.path.display().to_string(),
            why: format!("entry {name:?} does not open"),
        })?;
        let text = String::from_utf8(plain.clone()).map_err(|_| VaultError::Corrupt {
            path: self.path.display().to_string(),
            why: format!("entry {name:?} is not text"),
        });
        plain.zeroize();
        text.map(Secret::new)
    }

    /// Stores (or replaces) a secret and writes the file.
    pub fn put(&mut self, name: &str, secret: &Secret<String>) -> Result<(), VaultError> {
        if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(VaultError::Invalid(format!(
                "a secret's name is 1 to {MAX_NAME} printable characters"
            )));
        }
        if secret.expose().len() > MAX_SECRET {
            return Err(VaultError::Invalid("that secret is too large".into()));
        }
        let sealed = seal(&self.key, name, secret.expose().as_bytes());
        self.file.entries.insert(name.to_owned(), sealed);
        self.save()
    }

    pub fn remove(&mut self, name: &str) -> Result<(), VaultError> {
        if self.file.entries.remove(name).is_none() {
            return Err(VaultError::Missing(name.to_owned()));
        }
        self.save()
    }

    fn save(&self) -> Result<(), VaultError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io = |e: std::io::Error| VaultError::Io {
            path: self.path.display().to_string(),
            cause: e.to_string(),
        };
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(&self.file).expect("the vault serializes");
        let temporary = self.path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&temporary, &self.path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret<String> {
        Secret::new(s.to_owned())
    }

    #[test]
    fn secrets_round_trip_and_the_file_holds_no_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.json");
        let master = secret("correct horse battery");
        let mut vault = FileVault::create(&path, &master).unwrap();
        vault
            .put("host:web1:password", &secret("s3cret-Pa55"))
            .unwrap();
        vault
            .put("key:id_ed25519", &secret("passphrase-xyz"))
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cret-Pa55") && !text.contains("passphrase-xyz"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        let reopened = FileVault::open(&path, &master).unwrap();
        assert_eq!(
            reopened.get("host:web1:password").unwrap().expose(),
            "s3cret-Pa55"
        );
        assert_eq!(reopened.names(), ["host:web1:password", "key:id_ed25519"]);
        assert!(matches!(reopened.get("nope"), Err(VaultError::Missing(_))));
        let mut reopened = reopened;
        reopened.remove("key:id_ed25519").unwrap();
        assert_eq!(
            FileVault::open(&path, &master).unwrap().names(),
            ["host:web1:password"]
        );
    }

    #[test]
    fn wrong_password_damage_and_swapped_entries_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.json");
        let master = secret("correct horse battery");
        let mut vault = FileVault::create(&path, &master).unwrap();
        vault.put("a", &secret("alpha")).unwrap();
        vault.put("b", &secret("bravo")).unwrap();
        assert!(matches!(
            FileVault::open(&path, &secret("wrong horse battery")),
            Err(VaultError::WrongPassword)
        ));
        assert!(matches!(
            FileVault::create(&path, &master),
            Err(VaultError::Invalid(_))
        ));
        assert!(matches!(
            FileVault::create(&dir.path().join("short"), &secret("short")),
            Err(VaultError::Invalid(_))
        ));
        // Moving b's sealed value under a's name does not open: names are bound.
        let mut file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        file["entries"]["a"] = file["entries"]["b"].clone();
        std::fs::write(&path, file.to_string()).unwrap();
        let swapped = FileVault::open(&path, &master).unwrap();
        assert!(matches!(swapped.get("a"), Err(VaultError::Corrupt { .. })));
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(
            FileVault::open(&path, &master),
            Err(VaultError::Corrupt { .. })
        ));
    }
}
