//! The vault through the gateway's command line, as an operator runs it: no
//! network, no root. Secrets go in on standard input, are listed by name and
//! kind only, never appear in the database files or the audit trail in plain
//! text, and survive a key rotation; bad input is refused with a clear error.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const RDP_PASSWORD: &str = "Rdp-Plaintext-7f3a9c";
/// The body of an unencrypted OpenSSH key (cipher "none"), its tail unique
/// bytes to look for: "UNIQUE-KEY-MATERIAL-0123456789ab" in base64.
const KEY_MARKER: &str =
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAABVTklRVUUtS0VZLU1BVEVSSUFMLTAxMjM0NTY3ODlhYg==";

struct Gateway {
    _dir: tempfile::TempDir,
    config: PathBuf,
    keys: PathBuf,
    db: PathBuf,
}

impl Gateway {
    fn new() -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("gw");
        let out = Command::new(env!("CARGO_BIN_EXE_portcullis-gateway"))
            .args(["init", "--dir"])
            .arg(&home)
            .args(["--hostname", "localhost", "--listen", "127.0.0.1:8443"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The vault key lives apart from the database's folder.
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        Gateway {
            config: home.join("gateway.toml"),
            db: home.join("gateway.db"),
            keys,
            _dir: dir,
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis-gateway"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or_default())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn refused(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        let out = self.run(args, stdin);
        assert!(!out.status.success(), "{args:?} was accepted");
        String::from_utf8(out.stderr).unwrap()
    }

    fn use_key(&self, key: &Path) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let start = text.find("\n[vault]").unwrap();
        let text = format!(
            "{}\n[vault]\nkey_file = {:?}\n",
            &text[..start],
            key.display().to_string()
        );
        std::fs::write(&self.config, text).unwrap();
    }

    /// Every byte the database keeps on disk (the file and its write-ahead log).
    fn database_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.db.clone().into_os_string();
            path.push(suffix);
            if let Ok(more) = std::fs::read(PathBuf::from(path)) {
                bytes.extend(more);
            }
        }
        bytes
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn ssh_key() -> String {
    format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_MARKER}\n-----END OPENSSH PRIVATE KEY-----\n"
    )
}

#[test]
fn secrets_are_sealed_listed_by_name_rotated_and_never_stored_in_plain_text() {
    let gw = Gateway::new();
    gw.ok(
        &[
            "host",
            "add",
            "web1",
            "--address",
            "10.9.0.5",
            "--protocol",
            "rdp",
        ],
        None,
    );
    gw.ok(
        &[
            "host",
            "add",
            "ssh1",
            "--address",
            "10.9.0.6",
            "--protocol",
            "ssh",
        ],
        None,
    );

    // No key configured: refused, saying how to make one.
    let refused = gw.refused(
        &["secret", "set", "web1", "--kind", "password", "--stdin"],
        Some(RDP_PASSWORD.as_bytes()),
    );
    assert!(refused.contains("secret new-key"), "{refused}");

    let first = gw.keys.join("vault-1.key");
    let made = gw.ok(&["secret", "new-key", first.to_str().unwrap()], None);
    assert!(made.contains("key_file"), "{made}");
    assert!(
        gw.refused(&["secret", "new-key", first.to_str().unwrap()], None)
            .contains("must not exist"),
        "a key is never overwritten"
    );
    gw.use_key(&first);

    let set = gw.ok(
        &[
            "secret", "set", "web1", "--kind", "password", "--user", "admin", "--stdin",
        ],
        Some(format!("{RDP_PASSWORD}\n").as_bytes()),
    );
    assert!(!set.contains(RDP_PASSWORD), "{set}");
    gw.ok(
        &["secret", "set", "ssh1", "--kind", "ssh-key", "--stdin"],
        Some(ssh_key().as_bytes()),
    );
    let listed = gw.ok(&["secret", "list"], None);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].starts_with("ssh1\tssh-key\t*\tkek-"), "{listed}");
    assert!(
        lines[1].starts_with("web1\tpassword\tadmin\tkek-"),
        "{listed}"
    );
    assert!(!listed.contains(RDP_PASSWORD) && !listed.contains(KEY_MARKER));

    // Bad input: refused, nothing echoed, nothing stored.
    for (args, stdin, says) in [
        (
            vec!["secret", "set", "web1", "--kind", "password", "--stdin"],
            Vec::new(),
            "empty",
        ),
        (
            vec!["secret", "set", "web1", "--kind", "password", "--stdin"],
            vec![b'x'; 20_000],
            "at most",
        ),
        (
            vec!["secret", "set", "nowhere", "--kind", "password", "--stdin"],
            b"some-password".to_vec(),
            "no host named nowhere",
        ),
        (
            vec!["secret", "set", "ssh1", "--kind", "ssh-key", "--stdin"],
            format!("not a key {KEY_MARKER}").into_bytes(),
            "OpenSSH private key",
        ),
        (
            vec![
                "secret", "set", "web1", "--kind", "password", "--user", "a\u{7}b", "--stdin",
            ],
            b"some-password".to_vec(),
            "control characters",
        ),
        (
            vec!["secret", "set", "web1", "--kind", "token", "--stdin"],
            b"some-password".to_vec(),
            "token",
        ),
    ] {
        let refused = gw.refused(&args, Some(&stdin));
        assert!(refused.contains(says), "{args:?}: {refused}");
        assert!(!refused.contains(KEY_MARKER), "{refused}");
    }
    assert_eq!(gw.ok(&["secret", "list"], None).lines().count(), 2);

    // The database holds no plaintext secret.
    let stored = gw.database_bytes();
    assert!(!stored.is_empty());
    assert!(
        !contains(&stored, RDP_PASSWORD),
        "the password is in the database"
    );
    assert!(
        !contains(&stored, KEY_MARKER),
        "the SSH key is in the database"
    );

    // Rotation: every secret sealed again under a new key, all or nothing.
    let second = gw.keys.join("vault-2.key");
    gw.ok(&["secret", "new-key", second.to_str().unwrap()], None);
    let rotated = gw.ok(
        &[
            "secret",
            "rotate-key",
            "--new-key-file",
            second.to_str().unwrap(),
        ],
        None,
    );
    assert!(rotated.contains("sealed 2 secret(s) again"), "{rotated}");
    let listed = gw.ok(&["secret", "list"], None);
    let new_id = listed
        .lines()
        .next()
        .unwrap()
        .rsplit('\t')
        .next()
        .unwrap()
        .to_owned();
    assert!(listed.lines().all(|l| l.ends_with(&new_id)), "{listed}");
    // Still configured with the old key: the rows now say which key sealed them.
    let third = gw.keys.join("vault-3.key");
    gw.ok(&["secret", "new-key", third.to_str().unwrap()], None);
    let wrong = gw.refused(
        &[
            "secret",
            "rotate-key",
            "--new-key-file",
            third.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        wrong.contains(&format!("sealed with vault key {new_id}")),
        "{wrong}"
    );
    // With the new key configured every secret opens (and moves on to a third key).
    gw.use_key(&second);
    let again = gw.ok(
        &[
            "secret",
            "rotate-key",
            "--new-key-file",
            third.to_str().unwrap(),
        ],
        None,
    );
    assert!(again.contains("sealed 2 secret(s) again"), "{again}");
    let stored = gw.database_bytes();
    assert!(!contains(&stored, RDP_PASSWORD) && !contains(&stored, KEY_MARKER));

    // A key file others can read is refused.
    gw.use_key(&third);
    let mut loose = std::fs::metadata(&third).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut loose, 0o644);
    std::fs::set_permissions(&third, loose).unwrap();
    let refused = gw.refused(
        &["secret", "set", "web1", "--kind", "password", "--stdin"],
        Some(b"another-password"),
    );
    assert!(refused.contains("chmod 600"), "{refused}");

    // Removing: by host (and kind/user); a second time there is nothing left.
    let removed = gw.ok(&["secret", "remove", "web1"], None);
    assert!(removed.contains("removed 1"), "{removed}");
    assert!(
        gw.refused(&["secret", "remove", "web1"], None)
            .contains("no such secret")
    );
    assert_eq!(gw.ok(&["secret", "list"], None).lines().count(), 1);

    // Every change is in the audit trail, with no value.
    let audit = gw.ok(&["audit", "--json"], None);
    for event in ["secret_set", "vault_key_rotated", "secret_removed"] {
        assert!(audit.contains(event), "no {event} in {audit}");
    }
    assert!(!audit.contains(RDP_PASSWORD) && !audit.contains(KEY_MARKER));
}
