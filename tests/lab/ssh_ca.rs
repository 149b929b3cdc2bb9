//! Short-lived SSH certificates from the gateway's CA, against OpenSSH's sshd
//! with `TrustedUserCAKeys`: a certificate for a granted principal logs in, one
//! for another login, one from another CA are refused by sshd; removing the
//! grant stops the next certificate; every issue is in the audit trail.

use std::path::Path;
use std::process::{Command, Output};

use portcullis_lab::*;

/// `ssh pclab@vnet1 id -un` through the gateway with `key` and its certificate.
fn ssh_with_certificate(lab: &Lab, login: &str, key: &Path, certificate: &Path) -> Output {
    let proxy = format!(
        "{} --home {} tunnel vnet1 --stdio",
        bin("portcullis").display(),
        lab.path("home-alice").display()
    );
    let ssh = lab.path("ssh");
    Command::new("ip")
        .args(["netns", "exec", &lab.out, "ssh", "-F", "/dev/null", "-i"])
        .arg(key)
        .arg("-o")
        .arg(format!("CertificateFile={}", certificate.display()))
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "PreferredAuthentications=publickey",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            &format!("UserKnownHostsFile={}", ssh.join("known_hosts").display()),
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            &format!("ProxyCommand={proxy}"),
            &format!("{login}@vnet1"),
            "id -un",
        ])
        .output()
        .expect("ssh")
}

fn keygen(args: &[&str]) -> Output {
    let out = Command::new("ssh-keygen")
        .args(args)
        .output()
        .expect("ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A new ed25519 key pair at `path` and `path.pub`, without a passphrase.
fn new_key(path: &Path) {
    keygen(&[
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        "lab",
        "-f",
        path.to_str().unwrap(),
    ]);
}

#[test]
fn ssh_certificates_from_the_gateway_log_in_only_as_granted() {
    let Some(lab) = Lab::lab_or_skip("ssh_certificates_from_the_gateway_log_in_only_as_granted")
    else {
        return;
    };
    // The CA: made in the vault; sshd trusts its public key.
    let public = String::from_utf8(lab.gw(&["ssh-ca", "init"], None).stdout).unwrap();
    assert!(public.starts_with("ssh-ed25519 "), "{public}");
    let again = Command::new(bin("portcullis-gateway"))
        .arg("--config")
        .arg(lab.gateway_config())
        .args(["ssh-ca", "init"])
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "a second CA would replace the first"
    );
    let printed = String::from_utf8(lab.gw(&["ssh-ca", "public-key"], None).stdout).unwrap();
    assert_eq!(printed, public);
    std::fs::write(lab.path("ssh/user_ca.pub"), &public).unwrap();
    // The CA's private key is in the database only sealed (the file and its
    // write-ahead log, where the running gateway's writes may still be).
    let mut database = std::fs::read(lab.path("gw/gateway.db")).unwrap();
    database.extend(std::fs::read(lab.path("gw/gateway.db-wal")).unwrap_or_default());
    assert!(database.len() > 4096, "the database was read");
    assert!(
        !database
            .windows(b"OPENSSH PRIVATE KEY".len())
            .any(|w| w == b"OPENSSH PRIVATE KEY"),
        "the CA's private key is in the database in plain text"
    );

    lab.gw(
        &[
            "grant",
            "add",
            "alice",
            "--host",
            "vnet1",
            "--principal",
            SSH_USER,
        ],
        None,
    );
    lab.login("alice");

    // Alice's own key; only its public half goes to the gateway.
    let keys = lab.path("alice-keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key = keys.join("id_ed25519");
    new_key(&key);
    let issued = lab.cli(
        "alice",
        &["ssh-cert", "vnet1", "-i", key.to_str().unwrap()],
        None,
    );
    assert!(
        issued.status.success(),
        "ssh-cert: {}",
        String::from_utf8_lossy(&issued.stderr)
    );
    let certificate = keys.join("id_ed25519-cert.pub");
    let shown =
        String::from_utf8(keygen(&["-L", "-f", certificate.to_str().unwrap()]).stdout).unwrap();
    assert!(
        shown.contains("Key ID: \"portcullis:alice:vnet1:"),
        "{shown}"
    );
    assert!(shown.contains(&format!("        {SSH_USER}\n")), "{shown}");
    assert!(shown.contains("user certificate"), "{shown}");

    // sshd lets the certificate in as the granted login …
    let out = ssh_with_certificate(&lab, SSH_USER, &key, &certificate);
    assert!(
        out.status.success(),
        "log-in with the gateway's certificate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), SSH_USER);
    // … and not as another one.
    let out = ssh_with_certificate(&lab, "root", &key, &certificate);
    assert!(!out.status.success(), "the certificate logged in as root");

    // A certificate from another CA, for the same login: refused.
    let other_ca = keys.join("other_ca");
    new_key(&other_ca);
    let forged_key = keys.join("forged");
    new_key(&forged_key);
    keygen(&[
        "-q",
        "-s",
        other_ca.to_str().unwrap(),
        "-I",
        "forged",
        "-n",
        SSH_USER,
        "-V",
        "-5m:+1h",
        &format!("{}.pub", forged_key.display()),
    ]);
    let out = ssh_with_certificate(&lab, SSH_USER, &forged_key, &keys.join("forged-cert.pub"));
    assert!(!out.status.success(), "another CA's certificate logged in");

    // A public key that is not one: a clear refusal from the gateway.
    std::fs::write(keys.join("broken.pub"), "ssh-ed25519 not-a-key\n").unwrap();
    let refused = lab.cli(
        "alice",
        &[
            "ssh-cert",
            "vnet1",
            "-i",
            keys.join("broken").to_str().unwrap(),
        ],
        None,
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not an OpenSSH public key"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // A disabled user gets none, at once (the same token as before).
    lab.gw(&["user", "disable", "alice"], None);
    let refused = lab.cli(
        "alice",
        &["ssh-cert", "vnet1", "-i", key.to_str().unwrap()],
        None,
    );
    assert!(
        !refused.status.success(),
        "a certificate for a disabled user"
    );
    lab.gw(&["user", "enable", "alice"], None);

    // Without the grant that names the login, no next certificate.
    lab.gw(&["grant", "remove", "alice", "--host", "vnet1"], None);
    let refused = lab.cli(
        "alice",
        &["ssh-cert", "vnet1", "-i", key.to_str().unwrap()],
        None,
    );
    assert!(!refused.status.success(), "a certificate without the grant");
    let said = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(said.contains("no grant names a login"), "{said}");

    // Every certificate issued is in the audit trail, naming user and host.
    let issued: Vec<_> = lab
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "ssh_cert_issued")
        .collect();
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0]["user"], "alice");
    assert_eq!(issued[0]["host"], "vnet1");
    assert!(
        issued[0]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("principals={SSH_USER}")),
        "{issued:?}"
    );
}
