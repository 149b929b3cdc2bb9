//! SSH keys the app keeps: generated here (ed25519) or imported from an OpenSSH
//! file (its passphrase asked once, at import). The private key lives only in
//! the secret store (the OS keychain or the encrypted file), unencrypted inside
//! it: the store is its protection. The inventory holds the public half, the
//! fingerprint and the store entry's name.

use std::path::Path;

use portcullis_proto::Secret;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{HashAlg, PrivateKey};

use crate::inventory::{AppKey, Inventory, InventoryError};
use crate::secrets::{SecretStore, SecretsError};
use crate::ssh::{Decoded, LoadedKey, MAX_KEY_FILE_BYTES, SshError, decode_openssh, read_key_file};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Something the person typed; the UI shows it beside `field`.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> KeyError {
    KeyError::Invalid {
        field,
        message: message.into(),
    }
}

fn secret_name() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random source");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("ssh-key/{hex}")
}

/// Puts the private key in the secret store, then records it; the store entry
/// is removed again when recording fails.
async fn keep(
    inventory: &Inventory,
    secrets: &SecretStore,
    name: &str,
    key: &PrivateKey,
    origin: &str,
) -> Result<AppKey, KeyError> {
    secrets.require_ready().await?;
    let secret_ref = secret_name();
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| invalid("key", format!("cannot encode the key: {e}")))?;
    secrets
        .put(&secret_ref, &Secret::new(text.as_str().to_owned()))
        .await?;
    let public = key.public_key();
    let record = AppKey {
        id: 0,
        name: name.trim().to_owned(),
        algorithm: public.algorithm().as_str().to_owned(),
        fingerprint: public.fingerprint(HashAlg::Sha256).to_string(),
        public_key: public
            .to_openssh()
            .map_err(|e| invalid("key", format!("cannot encode the public key: {e}")))?,
        secret_ref: secret_ref.clone(),
        origin: origin.to_owned(),
        created_at: 0,
    };
    match inventory.add_ssh_key(&record).await {
        Ok(saved) => Ok(saved),
        Err(e) => {
            let _ = secrets.remove(&secret_ref).await;
            Err(e.into())
        }
    }
}

/// A new ed25519 key named `name` (its comment too).
pub async fn generate(
    inventory: &Inventory,
    secrets: &SecretStore,
    name: &str,
) -> Result<AppKey, KeyError> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *seed).expect("the OS random source");
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment(name.trim());
    keep(inventory, secrets, name, &key, "generated").await
}

/// An existing OpenSSH private key (text as in the file); `passphrase` opens
/// an encrypted one and is not kept.
pub async fn import(
    inventory: &Inventory,
    secrets: &SecretStore,
    name: &str,
    text: &Secret<String>,
    passphrase: Option<&Secret<String>>,
) -> Result<AppKey, KeyError> {
    if text.expose().len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(invalid("key", "that is not a private key (too long)"));
    }
    let passphrase = passphrase.filter(|p| !p.expose().is_empty());
    let key = match decode_openssh(text, passphrase) {
        Ok(Decoded::Key(key)) => *key,
        Ok(Decoded::NeedsPassphrase) => {
            return Err(invalid(
                "passphrase",
                "this key is encrypted: enter its passphrase",
            ));
        }
        Ok(Decoded::WrongPassphrase) => return Err(invalid("passphrase", "wrong passphrase")),
        Err(_) => {
            return Err(invalid(
                "key",
                "not an OpenSSH private key (-----BEGIN OPENSSH PRIVATE KEY-----)",
            ));
        }
    };
    keep(inventory, secrets, name, &key, "imported").await
}

/// [`import`] from a file (at most [`crate::ssh::MAX_KEY_FILE_BYTES`]).
pub async fn import_file(
    inventory: &Inventory,
    secrets: &SecretStore,
    name: &str,
    path: &Path,
    passphrase: Option<&Secret<String>>,
) -> Result<AppKey, KeyError> {
    let text = read_key_file(path).map_err(|e| match e {
        SshError::Key { cause, .. } => invalid("path", format!("cannot read it: {cause}")),
        other => invalid("path", other.to_string()),
    })?;
    import(inventory, secrets, name, &text, passphrase).await
}

/// The key, loaded from the secret store for one connection.
pub async fn load(
    inventory: &Inventory,
    secrets: &SecretStore,
    id: i64,
) -> Result<LoadedKey, KeyError> {
    let record = inventory.ssh_key(id).await?;
    let text = secrets.get(&record.secret_ref).await?.ok_or_else(|| {
        invalid(
            "key",
            format!(
                "the private key of {:?} is missing from the secret store",
                record.name
            ),
        )
    })?;
    let key = russh::keys::decode_secret_key(text.expose(), None).map_err(|e| {
        invalid(
            "key",
            format!("the stored key {:?} does not read: {e}", record.name),
        )
    })?;
    Ok(LoadedKey::new(format!("app key {}", record.name), key))
}

/// Forgets a key: its record and its private half (refused while a host uses it).
pub async fn remove(inventory: &Inventory, secrets: &SecretStore, id: i64) -> Result<(), KeyError> {
    let record = inventory.delete_ssh_key(id).await?;
    secrets.remove(&record.secret_ref).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{HostDraft, Protocol, RdpSettings, RouteSpec};
    use crate::secrets::StoreChoice;
    use crate::ssh::AuthMethod;

    /// An inventory and a file store, not set up yet.
    async fn stores(dir: &Path) -> (Inventory, SecretStore) {
        let inventory = Inventory::open(&dir.join("inventory.db")).await.unwrap();
        let secrets = SecretStore::open_with(dir, StoreChoice::File, None)
            .await
            .unwrap();
        (inventory, secrets)
    }

    /// As [`stores`], with the file store set up and open.
    async fn open_stores(dir: &Path) -> (Inventory, SecretStore) {
        let (inventory, secrets) = stores(dir).await;
        secrets
            .unlock(Secret::new("master-password-1".into()))
            .await
            .unwrap();
        (inventory, secrets)
    }

    fn keygen(path: &Path, passphrase: &str) {
        let out = std::process::Command::new("ssh-keygen")
            .args([
                "-q", "-t", "ecdsa", "-N", passphrase, "-C", "imported", "-f",
            ])
            .arg(path)
            .output()
            .expect("ssh-keygen (openssh-client) is installed by the set-up");
        assert!(out.status.success(), "{out:?}");
    }

    #[tokio::test]
    async fn a_generated_key_lives_in_the_secret_store_and_loads_for_a_connection() {
        let dir = tempfile::tempdir().unwrap();
        let (inventory, secrets) = stores(dir.path()).await;
        // The store must be open: a locked store keeps no key.
        assert!(matches!(
            generate(&inventory, &secrets, "laptop").await,
            Err(KeyError::Secrets(SecretsError::NotSetUp))
        ));
        secrets
            .unlock(Secret::new("master-password-1".into()))
            .await
            .unwrap();
        let key = generate(&inventory, &secrets, "laptop").await.unwrap();
        assert_eq!(key.algorithm, "ssh-ed25519");
        assert!(key.public_key.starts_with("ssh-ed25519 AAAA"), "{key:?}");
        assert!(key.public_key.ends_with(" laptop"), "{key:?}");
        assert!(key.fingerprint.starts_with("SHA256:"));
        assert_eq!(key.origin, "generated");
        let loaded = load(&inventory, &secrets, key.id).await.unwrap();
        assert_eq!(loaded.fingerprint(), key.fingerprint);
        assert_eq!(loaded.public_openssh(), key.public_key);
        // Names are unique; the failed one leaves nothing in the store.
        assert!(matches!(
            generate(&inventory, &secrets, "laptop").await,
            Err(KeyError::Inventory(InventoryError::Invalid {
                field: "name",
                ..
            }))
        ));
        assert_eq!(inventory.ssh_keys().await.unwrap().len(), 1);
        // No private key in the inventory's database.
        let database = std::fs::read(dir.path().join("inventory.db")).unwrap();
        let wal = std::fs::read(dir.path().join("inventory.db-wal")).unwrap_or_default();
        for bytes in [database, wal] {
            assert!(
                !bytes.windows(11).any(|w| w == b"PRIVATE KEY"),
                "a private key in the inventory"
            );
        }
    }

    #[tokio::test]
    async fn an_encrypted_key_is_imported_with_its_passphrase_only() {
        let dir = tempfile::tempdir().unwrap();
        let (inventory, secrets) = open_stores(dir.path()).await;
        let path = dir.path().join("id_ecdsa");
        keygen(&path, "correct horse");
        let import = |passphrase: Option<&'static str>| {
            let passphrase = passphrase.map(|p| Secret::new(p.to_owned()));
            let (inventory, secrets, path) = (&inventory, &secrets, &path);
            async move { import_file(inventory, secrets, "work", path, passphrase.as_ref()).await }
        };
        for (given, why) in [
            (None, "this key is encrypted: enter its passphrase"),
            (Some(""), "this key is encrypted: enter its passphrase"),
            (Some("wrong"), "wrong passphrase"),
        ] {
            match import(given).await {
                Err(KeyError::Invalid {
                    field: "passphrase",
                    message,
                }) => assert_eq!(message, why),
                other => panic!("{given:?}: {other:?}"),
            }
        }
        let key = import(Some("correct horse")).await.unwrap();
        assert_eq!(key.algorithm, "ecdsa-sha2-nistp256");
        assert_eq!(key.origin, "imported");
        let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
        assert_eq!(
            key.public_key.split(' ').nth(1),
            public.split(' ').nth(1),
            "the same key"
        );
        // Stored without the passphrase: it loads with none.
        load(&inventory, &secrets, key.id).await.unwrap();
        let garbage = Secret::new("not a key".to_owned());
        assert!(matches!(
            super::import(&inventory, &secrets, "junk", &garbage, None).await,
            Err(KeyError::Invalid { field: "key", .. })
        ));
        assert!(matches!(
            import_file(
                &inventory,
                &secrets,
                "none",
                &dir.path().join("missing"),
                None
            )
            .await,
            Err(KeyError::Invalid { field: "path", .. })
        ));
    }

    #[tokio::test]
    async fn a_key_in_use_is_not_removed_and_hosts_name_only_existing_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (inventory, secrets) = open_stores(dir.path()).await;
        let key = generate(&inventory, &secrets, "deploy").await.unwrap();
        let draft = |auth: Vec<AuthMethod>| HostDraft {
            id: None,
            name: "web".into(),
            address: "10.0.0.5".into(),
            port: 22,
            protocol: Protocol::Ssh,
            route: RouteSpec::Direct,
            user: "root".into(),
            auth,
            credential_ref: None,
            folder_id: None,
            tags: vec![],
            notes: String::new(),
            favourite: false,
            rdp: RdpSettings::default(),
        };
        assert!(
            inventory
                .save_host(&draft(vec![AuthMethod::AppKey { key_id: key.id + 1 }]))
                .await
                .is_err(),
            "a key that does not exist"
        );
        assert!(
            inventory
                .save_host(&draft(vec![AuthMethod::FromGateway]))
                .await
                .is_err(),
            "the gateway's credential on a direct route"
        );
        let host = inventory
            .save_host(&draft(vec![AuthMethod::AppKey { key_id: key.id }]))
            .await
            .unwrap();
        assert!(matches!(
            remove(&inventory, &secrets, key.id).await,
            Err(KeyError::Inventory(InventoryError::Invalid {
                field: "key",
                ..
            }))
        ));
        inventory.delete_host(host.id).await.unwrap();
        remove(&inventory, &secrets, key.id).await.unwrap();
        assert!(secrets.get(&key.secret_ref).await.unwrap().is_none());
        assert!(inventory.ssh_keys().await.unwrap().is_empty());
    }
}
