//! The secret store against a real OS keychain (gnome-keyring's Secret Service on
//! a private session bus) and its fallback to the encrypted file store.

use std::sync::Arc;

use portcullis_client::home::ClientHome;
use portcullis_client::secrets::{SecretStore, StoreChoice, StoreKind, StoreState};
use portcullis_client::session::PinPolicy;
use portcullis_client::{Client, ClientError};
use portcullis_lab::keyring::Keyring;
use portcullis_lab::*;
use portcullis_proto::{CertFingerprint, Secret};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn secrets_live_in_the_os_keychain_apart_per_client_home() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keyring = Keyring::start(dir.path());
    let home_a = dir.path().join("home-a");
    let home_b = dir.path().join("home-b");
    runtime().block_on(async {
        let a = SecretStore::open_with(&home_a, StoreChoice::Auto, Some(&keyring.address))
            .await
            .expect("store a");
        let b = SecretStore::open_with(&home_b, StoreChoice::Keychain, Some(&keyring.address))
            .await
            .expect("store b");
        let status = a.status().await;
        assert_eq!(status.kind, StoreKind::Keychain);
        assert_eq!(status.state, StoreState::Ready);
        assert_eq!(status.label, "OS keychain (Secret Service)");

        a.put("password/web1", &Secret::new("keychain-secret-a".into()))
            .await
            .expect("put a");
        b.put("password/web1", &Secret::new("keychain-secret-b".into()))
            .await
            .expect("put b");
        // Replacing keeps one entry per name.
        a.put("password/web1", &Secret::new("keychain-secret-a2".into()))
            .await
            .expect("replace a");
        assert_eq!(
            a.get("password/web1").await.unwrap().unwrap().expose(),
            "keychain-secret-a2"
        );
        assert_eq!(
            b.get("password/web1").await.unwrap().unwrap().expose(),
            "keychain-secret-b"
        );
        assert!(a.get("password/other").await.unwrap().is_none());

        // A second connection (a restarted app) reads what the first stored.
        let again = SecretStore::open_with(&home_a, StoreChoice::Auto, Some(&keyring.address))
            .await
            .expect("store a again");
        assert_eq!(
            again.get("password/web1").await.unwrap().unwrap().expose(),
            "keychain-secret-a2"
        );
        again.remove("password/web1").await.expect("remove");
        assert!(a.get("password/web1").await.unwrap().is_none());
        assert_eq!(
            b.get("password/web1").await.unwrap().unwrap().expose(),
            "keychain-secret-b"
        );
    });
    // Nothing of ours was written beside the client homes.
    for home in [&home_a, &home_b] {
        assert!(!home.join("secrets.vault").exists());
    }
}

#[test]
fn without_a_keychain_the_encrypted_file_store_is_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nowhere = format!("unix:path={}", dir.path().join("no-bus").display());
    runtime().block_on(async {
        let store = SecretStore::open_with(dir.path(), StoreChoice::Auto, Some(&nowhere))
            .await
            .expect("fallback store");
        let status = store.status().await;
        assert_eq!(status.kind, StoreKind::File);
        assert_eq!(status.state, StoreState::NotSetUp);
        let refused = SecretStore::open_with(dir.path(), StoreChoice::Keychain, Some(&nowhere))
            .await
            .err()
            .expect("keychain demanded but absent");
        assert!(
            refused.to_string().starts_with("the OS keychain refused"),
            "{refused}"
        );
        store
            .unlock(Secret::new("file-master-1".into()))
            .await
            .expect("set up");
        store
            .put("password/web1", &Secret::new("file-secret-1".into()))
            .await
            .expect("put");
    });
    let raw = std::fs::read(dir.path().join("secrets.vault")).expect("vault file");
    assert!(!String::from_utf8_lossy(&raw).contains("file-secret-1"));
}

#[test]
fn refresh_tokens_kept_in_the_secret_store_renew_the_session() {
    let Some(lab) = Lab::lab_or_skip("refresh_tokens_kept_in_the_secret_store_renew_the_session")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    let url = lab.gateway_url.clone();
    let fingerprint: CertFingerprint = lab.fingerprint.parse().expect("fingerprint");
    let state_file = path.join("gateways.json");
    let expire_access = {
        let state_file = state_file.clone();
        move || -> serde_json::Value {
            let mut state: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
            state["gateways"][0]["access_expires_at"] = 0.into();
            std::fs::write(&state_file, state.to_string()).unwrap();
            state
        }
    };
    block_on_in(&lab.out.clone(), move || async move {
        let home = ClientHome::resolve(Some(path.clone())).expect("home");
        let store = Arc::new(
            SecretStore::open_with(&path, StoreChoice::File, None)
                .await
                .expect("store"),
        );
        store
            .unlock(Secret::new("refresh-master-1".into()))
            .await
            .expect("unlock");
        let client = Client::with_secrets(home, Arc::clone(&store));
        client
            .login(
                &url,
                "alice",
                Secret::new(PASSWORD.into()),
                PinPolicy::Expect(fingerprint),
            )
            .await
            .expect("login");
        let before = expire_access();
        assert_eq!(before["gateways"][0]["refresh_in_store"], true, "{before}");
        assert_eq!(before["gateways"][0]["refresh_token"], "", "{before}");
        // The access token is stale: the refresh token comes out of the store.
        let hosts = client.hosts(Some(&url)).await.expect("hosts after refresh");
        assert!(hosts.hosts.iter().any(|h| h.name.as_str() == "vnet1"));
        let after: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
        assert_ne!(
            after["gateways"][0]["access_token"],
            before["gateways"][0]["access_token"]
        );
        assert_eq!(after["gateways"][0]["refresh_token"], "");
        // A locked store cannot renew: the person signs in again.
        store.lock().await;
        expire_access();
        let refused = client.hosts(Some(&url)).await.expect_err("refused");
        assert!(
            matches!(refused, ClientError::NotSignedIn { .. }),
            "{refused}"
        );
    });
}
