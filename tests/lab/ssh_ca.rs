//! Short-lived SSH certificates from the gateway's CA, against OpenSSH's sshd
//! with `TrustedUserCAKeys` and `RevokedKeys`: a certificate for a granted
//! principal logs in (OpenSSH's client and `portcullis ssh --certificate`); one
//! for another login, one from another CA, an expired one and a revoked one are
//! refused by sshd; removing the grant stops the next certificate; every issue
//! and revocation is in the audit trail.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

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

/// A certificate's serial, as `ssh-keygen -L` prints it.
fn serial_of(certificate: &Path) -> String {
    let shown =
        String::from_utf8(keygen(&["-L", "-f", certificate.to_str().unwrap()]).stdout).unwrap();
    shown
        .lines()
        .find_map(|l| l.trim().strip_prefix("Serial: "))
        .unwrap_or_else(|| panic!("no serial in {shown}"))
        .to_owned()
}

/// `portcullis ssh-cert vnet1 -i KEY` as alice; the certificate's path.
fn issue(lab: &Lab, key: &Path) -> std::path::PathBuf {
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
    let mut path = key.as_os_str().to_owned();
    path.push("-cert.pub");
    path.into()
}

/// Waits until sshd's log names why it refused (it writes asynchronously).
fn sshd_said(lab: &Lab, words: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(lab.path("ssh/sshd.log")).unwrap_or_default();
        if log.contains(words) {
            return true;
        }
        if Instant::now() > deadline {
            eprintln!("sshd.log:\n{log}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
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
    let database = lab.gateway_database();
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
    new_ssh_key(&key);
    // The lab's certificates live one minute; this one is watched expiring below.
    let issued_at = Instant::now();
    let certificate = issue(&lab, &key);
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

    // Portcullis's own client: a fresh certificate for the key, asked for at
    // connect time, presented with it (russh), through the gateway.
    let out = lab.cli(
        "alice",
        &[
            "ssh",
            &format!("{SSH_USER}@vnet1"),
            "--certificate",
            "-i",
            key.to_str().unwrap(),
            "--accept-new",
            "--",
            "id -un",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "portcullis ssh --certificate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), SSH_USER);

    // A certificate from another CA, for the same login: refused.
    let other_ca = keys.join("other_ca");
    new_ssh_key(&other_ca);
    let forged_key = keys.join("forged");
    new_ssh_key(&forged_key);
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

    // A revoked serial is refused by sshd at the next log-on: the gateway
    // rewrites the revocation list sshd reads. Another certificate still works.
    let revoked_key = keys.join("revoked");
    new_ssh_key(&revoked_key);
    let revoked = issue(&lab, &revoked_key);
    assert!(
        ssh_with_certificate(&lab, SSH_USER, &revoked_key, &revoked)
            .status
            .success()
    );
    let serial = serial_of(&revoked);
    let said = lab.gw(
        &["ssh-ca", "revoke", &serial, "--reason", "laptop lost"],
        None,
    );
    assert!(
        String::from_utf8_lossy(&said.stdout).contains("revoked.krl"),
        "{said:?}"
    );
    let out = ssh_with_certificate(&lab, SSH_USER, &revoked_key, &revoked);
    assert!(!out.status.success(), "a revoked certificate logged in");
    assert!(
        sshd_said(&lab, "revoked"),
        "sshd did not say the key was revoked"
    );
    assert!(
        ssh_with_certificate(&lab, SSH_USER, &key, &certificate)
            .status
            .success()
    );
    let listed = String::from_utf8(lab.gw(&["ssh-ca", "revoked"], None).stdout).unwrap();
    assert!(
        listed.starts_with(&format!("{serial}\t")) && listed.contains("laptop lost"),
        "{listed}"
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

    // The first certificate, a minute old, is refused by sshd as expired.
    let expiry = issued_at + Duration::from_secs(62);
    std::thread::sleep(expiry.saturating_duration_since(Instant::now()));
    let out = ssh_with_certificate(&lab, SSH_USER, &key, &certificate);
    assert!(!out.status.success(), "an expired certificate logged in");
    assert!(
        sshd_said(&lab, "expired"),
        "sshd did not say the certificate expired"
    );

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
    let audit = lab.audit();
    let issued: Vec<_> = audit
        .iter()
        .filter(|e| e["event"] == "ssh_cert_issued")
        .collect();
    // The first, the one `portcullis ssh` asked for, the one revoked.
    assert_eq!(issued.len(), 3, "{issued:?}");
    assert_eq!(issued[0]["user"], "alice");
    assert_eq!(issued[0]["host"], "vnet1");
    assert!(
        issued[0]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("principals={SSH_USER}")),
        "{issued:?}"
    );
    let revocations: Vec<_> = audit
        .iter()
        .filter(|e| e["event"] == "ssh_cert_revoked")
        .collect();
    assert_eq!(revocations.len(), 1, "{revocations:?}");
    assert!(
        revocations[0]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("serial={serial} laptop lost")),
        "{revocations:?}"
    );
}
