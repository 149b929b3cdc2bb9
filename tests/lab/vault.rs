//! Just-in-time credentials from the gateway's vault, against OpenSSH's sshd:
//! a host whose key lives only in the vault is reached by a help-desk user who
//! never saw it (a launch-only grant: sessions, never a bare tunnel); then the
//! same with a password. The database and the logs hold no plaintext secret,
//! the audit shows each release, and a disabled user or a removed grant stops
//! the next release.

use std::process::Output;

use portcullis_proto::HostName;
use portcullis_proto::wire::{SecretReleaseRequest, SecretReleaseResponse};

use portcullis_lab::*;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `portcullis ssh vnet1 --from-gateway -- id -un` as carol.
fn ssh_from_gateway(lab: &Lab) -> Output {
    lab.cli(
        "carol",
        &[
            "ssh",
            "vnet1",
            "--from-gateway",
            "--accept-new",
            "--",
            "id -un",
        ],
        None,
    )
}

/// Everything the gateway wrote: its database (with the write-ahead log) and its log.
fn gateway_bytes(lab: &Lab) -> Vec<u8> {
    let mut bytes = lab.gateway_database();
    bytes.extend(lab.gateway_log().into_bytes());
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_vault_secret_reaches_the_host_for_a_user_who_never_sees_it() {
    let Some(lab) =
        Lab::lab_or_skip("a_vault_secret_reaches_the_host_for_a_user_who_never_sees_it")
    else {
        return;
    };
    // The host's key: made here, authorized on the host, sealed into the
    // vault, then deleted. Only the vault has it from now on.
    let dir = lab.path("vault-keys");
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("vnet1_ed25519");
    new_ssh_key(&key);
    let private = std::fs::read_to_string(&key).unwrap();
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let mut authorized = std::fs::read_to_string(lab.path("ssh/authorized_keys")).unwrap();
    authorized.push_str(&public);
    std::fs::write(lab.path("ssh/authorized_keys"), authorized).unwrap();
    lab.set_secret("vnet1", "ssh-key", SSH_USER, &private);
    std::fs::remove_file(&key).unwrap();
    std::fs::remove_file(key.with_extension("pub")).unwrap();
    // A line from the middle of the key: what a leak would contain.
    let key_body = private.lines().nth(2).unwrap().to_owned();
    assert!(key_body.len() > 40, "{key_body}");

    // Carol, help desk: a launch-only grant, signed in with her own password.
    lab.gw(
        &["grant", "add", "carol", "--host", "vnet1", "--launch-only"],
        None,
    );
    lab.login("carol");
    let hosts = lab.cli("carol", &["hosts"], None);
    assert!(
        text(&hosts).contains("vnet1\tssh\t") && text(&hosts).contains("gateway-credential"),
        "{}",
        text(&hosts)
    );
    assert!(text(&hosts).contains("launch-only"), "{}", text(&hosts));

    // She reaches the host with the vault's key, as the login the vault names.
    let out = ssh_from_gateway(&lab);
    assert!(out.status.success(), "ssh --from-gateway: {}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), SSH_USER);
    assert!(!contains(&out.stderr, &key_body), "the key was printed");

    // A bare tunnel (her own tools) and a certificate are refused under her grant.
    let bare = lab.cli("carol", &["tunnel", "vnet1", "--stdio"], Some(b""));
    assert!(
        !bare.status.success(),
        "a bare tunnel under a launch-only grant"
    );
    assert!(text(&bare).contains("launch-only"), "{}", text(&bare));
    let carol = dir.join("carol");
    new_ssh_key(&carol);
    let cert = lab.cli(
        "carol",
        &["ssh-cert", "vnet1", "-i", carol.to_str().unwrap()],
        None,
    );
    assert!(
        !cert.status.success(),
        "a certificate under a launch-only grant"
    );
    assert!(text(&cert).contains("launch-only"), "{}", text(&cert));

    // On the wire: a launch ticket opens one tunnel to its host, once.
    let api = crate::api(&lab);
    let token = crate::stored_access_token(&lab, "carol");
    let outcomes = block_on_in(&lab.out.clone(), move || async move {
        let body = serde_json::to_vec(&SecretReleaseRequest {
            host: "vnet1".parse::<HostName>().unwrap(),
            kind: None,
        })
        .unwrap();
        let released: SecretReleaseResponse = api
            .request(
                http::Method::POST,
                "/v1/secrets/release",
                Some(body),
                Some(&token),
            )
            .await
            .expect("release");
        let ticket = released.launch_ticket.expose().clone();
        let bare = api.open_tunnel("vnet1", &token).await.map(drop);
        let echo = api
            .open_tunnel_with("echo1", &token, Some(&ticket))
            .await
            .map(drop);
        let first = api
            .open_tunnel_with("vnet1", &token, Some(&ticket))
            .await
            .map(drop);
        let again = api
            .open_tunnel_with("vnet1", &token, Some(&ticket))
            .await
            .map(drop);
        (bare, echo, first, again)
    });
    let (bare, echo, first, again) = outcomes;
    assert_eq!(bare.unwrap_err().status(), Some(403), "a bare tunnel");
    // carol's echo1 grant is a full one: the ticket is not needed there.
    echo.expect("a tunnel under a full grant");
    first.expect("the ticket's tunnel");
    assert_eq!(
        again.unwrap_err().status(),
        Some(403),
        "a ticket used twice"
    );

    // Now a password instead of the key: the same, by password authentication.
    lab.gw(&["secret", "remove", "vnet1", "--kind", "ssh-key"], None);
    lab.set_secret("vnet1", "password", SSH_USER, SSH_USER_PASSWORD);
    let out = ssh_from_gateway(&lab);
    assert!(
        out.status.success(),
        "password from the vault: {}",
        text(&out)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), SSH_USER);

    // No plaintext secret in the database, its write-ahead log or the gateway's log.
    let written = gateway_bytes(&lab);
    assert!(written.len() > 4096, "the database was read");
    for secret in [key_body.as_str(), "OPENSSH PRIVATE KEY", SSH_USER_PASSWORD] {
        assert!(
            !contains(&written, secret),
            "{secret:?} is in the gateway's files in plain text"
        );
    }

    // Each release is audited with user, host, kind and the ticket's validity.
    let released: Vec<_> = lab
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "secret_released")
        .collect();
    assert_eq!(released.len(), 3, "{released:?}");
    for (event, kind) in released.iter().zip(["ssh-key", "ssh-key", "password"]) {
        assert_eq!(event["user"], "carol");
        assert_eq!(event["host"], "vnet1");
        let reason = event["reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!("kind={kind} login={SSH_USER} launch_expires_at=")),
            "{reason}"
        );
    }

    // A disabled user gets nothing, at once; enabled again, she does.
    lab.gw(&["user", "disable", "carol"], None);
    assert!(
        !ssh_from_gateway(&lab).status.success(),
        "released to a disabled user"
    );
    lab.gw(&["user", "enable", "carol"], None);
    assert!(ssh_from_gateway(&lab).status.success());

    // Without the grant, no next release.
    lab.gw(&["grant", "remove", "carol", "--host", "vnet1"], None);
    let out = ssh_from_gateway(&lab);
    assert!(!out.status.success(), "released without a grant");
    assert!(text(&out).contains("not_granted"), "{}", text(&out));
    let releases = lab
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "secret_released")
        .count();
    assert_eq!(releases, 4, "only granted releases are audited as released");
}
