//! Where passwords and key passphrases live: the OS keychain (the freedesktop
//! Secret Service, as gnome-keyring or KWallet provide it) when one answers on
//! the session bus, otherwise the encrypted file store ([`FileVault`]) unlocked by
//! a master password. The inventory only names entries (`credential_ref`); the
//! values live here and nowhere else.
//!
//! `PORTCULLIS_SECRET_STORE` = `auto` (default), `keychain` or `file` overrides
//! the choice.
//!
//! INVARIANT: values are never logged or put into an error; a keychain item is
//! tagged with this client home, so two homes (two users, or tests) never read
//! each other's entries.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use portcullis_proto::Secret;
use secret_service::{EncryptionType, SecretService};
use tokio::sync::Mutex;
use zeroize::Zeroize;

use crate::vault::{FileVault, MAX_NAME, MAX_SECRET, VaultError};

/// A keychain that does not answer this fast is treated as absent.
const KEYCHAIN_PATIENCE: Duration = Duration::from_secs(3);
const APPLICATION: &str = "portcullis";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// The OS keychain (Secret Service).
    Keychain,
    /// The encrypted file under the client home.
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreState {
    /// Entries can be read and written.
    Ready,
    /// The file store exists; its master password has not been given yet.
    Locked,
    /// No file store yet; giving a master password creates it.
    NotSetUp,
}

/// What the UI shows about the store in use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoreStatus {
    pub kind: StoreKind,
    pub state: StoreState,
    /// A person-readable line: "OS keychain (Secret Service)", "encrypted file …".
    pub label: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("the encrypted store is locked: unlock it with its master password first")]
    Locked,
    #[error("the encrypted store is not set up yet: choose a master password first")]
    NotSetUp,
    #[error("the OS keychain refused: {0}")]
    Keychain(String),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("{0}")]
    Invalid(String),
}

/// Which store to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreChoice {
    /// The keychain when one answers, else the file store.
    Auto,
    /// The keychain or an error.
    Keychain,
    /// The file store, even when a keychain is there.
    File,
}

impl StoreChoice {
    /// `PORTCULLIS_SECRET_STORE`: `auto` (or unset), `keychain`, `file`.
    pub fn from_env() -> Result<StoreChoice, SecretsError> {
        match std::env::var("PORTCULLIS_SECRET_STORE")
            .unwrap_or_default()
            .trim()
        {
            "" | "auto" => Ok(StoreChoice::Auto),
            "keychain" => Ok(StoreChoice::Keychain),
            "file" => Ok(StoreChoice::File),
            other => Err(SecretsError::Invalid(format!(
                "PORTCULLIS_SECRET_STORE={other:?}: use auto, keychain or file"
            ))),
        }
    }
}

enum Backend {
    Keychain(Keychain),
    File(Option<FileVault>),
}

/// The secret store of one client home.
pub struct SecretStore {
    kind: StoreKind,
    file_path: PathBuf,
    backend: Mutex<Backend>,
}

fn check_name(name: &str) -> Result<(), SecretsError> {
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(SecretsError::Invalid(format!(
            "a secret's name must be 1 to {MAX_NAME} printable characters"
        )));
    }
    Ok(())
}

impl SecretStore {
    /// The keychain if one answers (and `PORTCULLIS_SECRET_STORE` allows it),
    /// else the file store at `dir/secrets.vault`, locked until
    /// [`SecretStore::unlock`].
    pub async fn open(dir: &Path) -> Result<SecretStore, SecretsError> {
        Self::open_with(dir, StoreChoice::from_env()?, None).await
    }

    /// As [`SecretStore::open`], with the choice given and, for the keychain, an
    /// explicit session bus address (`None`: the session's own bus).
    pub async fn open_with(
        dir: &Path,
        choice: StoreChoice,
        bus: Option<&str>,
    ) -> Result<SecretStore, SecretsError> {
        let file_path = dir.join("secrets.vault");
        let keychain = match choice {
            StoreChoice::Auto | StoreChoice::Keychain => Keychain::connect(dir, bus).await,
            StoreChoice::File => Err(SecretsError::Keychain("not asked for".into())),
        };
        let (kind, backend) = match keychain {
            Ok(keychain) => (StoreKind::Keychain, Backend::Keychain(keychain)),
            Err(e) if choice == StoreChoice::Keychain => return Err(e),
            Err(e) => {
                tracing::info!(reason = %e, "no OS keychain; using the encrypted file store");
                (StoreKind::File, Backend::File(None))
            }
        };
        Ok(SecretStore {
            kind,
            file_path,
            backend: Mutex::new(backend),
        })
    }

    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    pub async fn status(&self) -> StoreStatus {
        let backend = self.backend.lock().await;
        match &*backend {
            Backend::Keychain(_) => StoreStatus {
                kind: StoreKind::Keychain,
                state: StoreState::Ready,
                label: "OS keychain (Secret Service)".into(),
            },
            Backend::File(vault) => StoreStatus {
                kind: StoreKind::File,
                state: match vault {
                    Some(_) => StoreState::Ready,
                    None if self.file_path.exists() => StoreState::Locked,
                    None => StoreState::NotSetUp,
                },
                label: format!("encrypted file {}", self.file_path.display()),
            },
        }
    }

    /// Opens the file store with its master password, creating it when there is
    /// none yet. A keychain needs no unlocking here (the OS asks for itself).
    pub async fn unlock(&self, master: Secret<String>) -> Result<(), SecretsError> {
        let mut backend = self.backend.lock().await;
        let Backend::File(vault) = &mut *backend else {
            return Ok(());
        };
        if vault.is_some() {
            return Ok(());
        }
        let path = self.file_path.clone();
        // argon2id takes a while by design: keep it off the async workers.
        let opened = tokio::task::spawn_blocking(move || {
            if path.exists() {
                FileVault::open(&path, &master)
            } else {
                FileVault::create(&path, &master)
            }
        })
        .await
        .map_err(|e| SecretsError::Invalid(format!("unlocking stopped: {e}")))??;
        *vault = Some(opened);
        Ok(())
    }

    /// Forgets the file store's key until the next unlock.
    pub async fn lock(&self) {
        if let Backend::File(vault) = &mut *self.backend.lock().await {
            *vault = None;
        }
    }

    /// Whether entries can be read and written now.
    pub async fn ready(&self) -> bool {
        self.status().await.state == StoreState::Ready
    }

    /// `Ok` when entries can be read and written, else why not.
    pub async fn require_ready(&self) -> Result<(), SecretsError> {
        match self.status().await.state {
            StoreState::Ready => Ok(()),
            StoreState::Locked => Err(SecretsError::Locked),
            StoreState::NotSetUp => Err(SecretsError::NotSetUp),
        }
    }

    /// The entry, or `None` when there is no entry of that name.
    pub async fn get(&self, name: &str) -> Result<Option<Secret<String>>, SecretsError> {
        check_name(name)?;
        let backend = self.backend.lock().await;
        match &*backend {
            Backend::Keychain(keychain) => keychain.get(name).await,
            Backend::File(vault) => match self.vault(vault)?.get(name) {
                Ok(secret) => Ok(Some(secret)),
                Err(VaultError::Missing(_)) => Ok(None),
                Err(e) => Err(e.into()),
            },
        }
    }

    pub async fn put(&self, name: &str, secret: &Secret<String>) -> Result<(), SecretsError> {
        check_name(name)?;
        if secret.expose().len() > MAX_SECRET {
            return Err(SecretsError::Invalid("that secret is too long".into()));
        }
        let mut backend = self.backend.lock().await;
        match &mut *backend {
            Backend::Keychain(keychain) => keychain.put(name, secret).await,
            Backend::File(vault) => Ok(self.vault_mut(vault)?.put(name, secret)?),
        }
    }

    /// Removes the entry; removing one that is not there is not an error.
    pub async fn remove(&self, name: &str) -> Result<(), SecretsError> {
        check_name(name)?;
        let mut backend = self.backend.lock().await;
        match &mut *backend {
            Backend::Keychain(keychain) => keychain.remove(name).await,
            Backend::File(vault) => match self.vault_mut(vault)?.remove(name) {
                Ok(()) | Err(VaultError::Missing(_)) => Ok(()),
                Err(e) => Err(e.into()),
            },
        }
    }

    fn closed(&self) -> SecretsError {
        if self.file_path.exists() {
            SecretsError::Locked
        } else {
            SecretsError::NotSetUp
        }
    }

    fn vault<'v>(&self, vault: &'v Option<FileVault>) -> Result<&'v FileVault, SecretsError> {
        vault.as_ref().ok_or_else(|| self.closed())
    }

    fn vault_mut<'v>(
        &self,
        vault: &'v mut Option<FileVault>,
    ) -> Result<&'v mut FileVault, SecretsError> {
        vault.as_mut().ok_or_else(|| self.closed())
    }
}

/// The Secret Service on the session bus; items go to the default collection
/// (gnome-keyring's "login"), tagged with the client home they belong to.
struct Keychain {
    service: SecretService<'static>,
    home: String,
}

fn keychain_error(e: impl std::fmt::Display) -> SecretsError {
    SecretsError::Keychain(e.to_string())
}

impl Keychain {
    async fn connect(dir: &Path, bus: Option<&str>) -> Result<Keychain, SecretsError> {
        let connect = async {
            let service = match bus {
                None => SecretService::connect(EncryptionType::Dh).await,
                Some(address) => {
                    let connection = zbus::connection::Builder::address(address)
                        .map_err(keychain_error)?
                        .build()
                        .await
                        .map_err(keychain_error)?;
                    SecretService::connect_with_existing(EncryptionType::Dh, connection).await
                }
            }
            .map_err(keychain_error)?;
            // A service that answers but has no default collection cannot store.
            service
                .get_default_collection()
                .await
                .map_err(keychain_error)?;
            Ok::<_, SecretsError>(service)
        };
        let service = tokio::time::timeout(KEYCHAIN_PATIENCE, connect)
            .await
            .map_err(|_| SecretsError::Keychain("no answer on the session bus".into()))??;
        Ok(Keychain {
            service,
            home: dir.display().to_string(),
        })
    }

    fn attributes<'a>(&'a self, name: &'a str) -> HashMap<&'a str, &'a str> {
        HashMap::from([
            ("application", APPLICATION),
            ("portcullis-home", self.home.as_str()),
            ("name", name),
        ])
    }

    async fn get(&self, name: &str) -> Result<Option<Secret<String>>, SecretsError> {
        let found = self
            .service
            .search_items(self.attributes(name))
            .await
            .map_err(keychain_error)?;
        let item = match (found.unlocked.first(), found.locked.first()) {
            (Some(item), _) => item,
            (None, Some(item)) => {
                // The OS asks the person to unlock its keyring.
                item.unlock().await.map_err(keychain_error)?;
                item
            }
            (None, None) => return Ok(None),
        };
        let mut bytes = item.get_secret().await.map_err(keychain_error)?;
        let text = String::from_utf8(bytes.clone());
        bytes.zeroize();
        match text {
            Ok(text) => Ok(Some(Secret::new(text))),
            Err(e) => {
                let mut raw = e.into_bytes();
                raw.zeroize();
                Err(SecretsError::Keychain(format!(
                    "the keychain entry {name:?} is not text"
                )))
            }
        }
    }

    async fn put(&self, name: &str, secret: &Secret<String>) -> Result<(), SecretsError> {
        let collection = self
            .service
            .get_default_collection()
            .await
            .map_err(keychain_error)?;
        collection.ensure_unlocked().await.map_err(keychain_error)?;
        collection
            .create_item(
                &format!("Portcullis: {name}"),
                self.attributes(name),
                secret.expose().as_bytes(),
                true,
                "text/plain",
            )
            .await
            .map_err(keychain_error)?;
        Ok(())
    }

    async fn remove(&self, name: &str) -> Result<(), SecretsError> {
        let found = self
            .service
            .search_items(self.attributes(name))
            .await
            .map_err(keychain_error)?;
        for item in found.unlocked.iter().chain(found.locked.iter()) {
            item.delete().await.map_err(keychain_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn file_store(dir: &Path) -> SecretStore {
        // The file store regardless of what this machine's session bus offers.
        SecretStore {
            kind: StoreKind::File,
            file_path: dir.join("secrets.vault"),
            backend: Mutex::new(Backend::File(None)),
        }
    }

    #[tokio::test]
    async fn the_file_store_is_set_up_locked_and_unlocked_by_its_master_password() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(dir.path()).await;
        assert_eq!(store.status().await.state, StoreState::NotSetUp);
        assert!(matches!(
            store.get("host/a").await,
            Err(SecretsError::NotSetUp)
        ));
        store
            .unlock(Secret::new("master-password-1".into()))
            .await
            .unwrap();
        assert_eq!(store.status().await.state, StoreState::Ready);
        store
            .put("host/a", &Secret::new("pw-a".into()))
            .await
            .unwrap();
        assert_eq!(store.get("host/a").await.unwrap().unwrap().expose(), "pw-a");
        assert!(store.get("host/b").await.unwrap().is_none());

        store.lock().await;
        assert_eq!(store.status().await.state, StoreState::Locked);
        assert!(matches!(
            store.get("host/a").await,
            Err(SecretsError::Locked)
        ));
        assert!(matches!(
            store.unlock(Secret::new("wrong-password".into())).await,
            Err(SecretsError::Vault(VaultError::WrongPassword))
        ));
        store
            .unlock(Secret::new("master-password-1".into()))
            .await
            .unwrap();
        store.remove("host/a").await.unwrap();
        store.remove("host/a").await.unwrap();
        assert!(store.get("host/a").await.unwrap().is_none());
        let raw = std::fs::read(dir.path().join("secrets.vault")).unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("pw-a"));
    }

    #[tokio::test]
    async fn bad_names_and_oversized_secrets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(dir.path()).await;
        store
            .unlock(Secret::new("master-password-1".into()))
            .await
            .unwrap();
        assert!(matches!(store.get("").await, Err(SecretsError::Invalid(_))));
        assert!(matches!(
            store.put("a\nb", &Secret::new("x".into())).await,
            Err(SecretsError::Invalid(_))
        ));
        let big = Secret::new("x".repeat(MAX_SECRET + 1));
        assert!(matches!(
            store.put("big", &big).await,
            Err(SecretsError::Invalid(_))
        ));
    }
}
