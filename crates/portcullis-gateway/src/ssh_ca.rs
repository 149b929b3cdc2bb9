//! The gateway's SSH user certificate authority. Its ed25519 key lives only in
//! the vault (sealed under the vault key); sshd trusts its public half through
//! `TrustedUserCAKeys`. A signed-in user sends their own public key (the private
//! key never leaves the desktop) and receives a certificate valid for minutes,
//! for the principals their grants allow on that host, with a key id naming them.

use anyhow::{Context, bail};
use portcullis_proto::{HostName, Secret, UserName};
use ssh_key::certificate::{Builder, CertType};
use ssh_key::private::Ed25519Keypair;
use ssh_key::{LineEnding, PrivateKey, PublicKey};

use crate::store::Store;
use crate::vault::Kek;

/// The vault item holding the CA's private key (OpenSSH format).
pub const CA_ITEM: &str = "ssh-user-ca";
/// Longest public key text taken (an RSA-16384 key is about 2.8 KB).
pub const MAX_PUBLIC_KEY: usize = 8 * 1024;
/// Certificates start this much in the past, for clocks a little behind.
const CLOCK_SKEW_SECONDS: u64 = 60;
/// Principals per certificate, and the length of one.
pub const MAX_PRINCIPALS: usize = 32;
pub const MAX_PRINCIPAL_BYTES: usize = 64;

/// A login name a grant may put in a certificate: what sshd compares with the
/// user it logs in as (no commas, no spaces, nothing else sshd could misread).
pub fn validate_principal(principal: &str) -> anyhow::Result<()> {
    let ok = !principal.is_empty()
        && principal.len() <= MAX_PRINCIPAL_BYTES
        && principal
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
        && !principal.starts_with('-');
    if !ok {
        bail!(
            "principal {principal:?}: a login name of letters, digits, '.', '_', '-' or '@' (at most {MAX_PRINCIPAL_BYTES} bytes)"
        );
    }
    Ok(())
}

/// Makes the CA: a new ed25519 key sealed into the vault. Refuses to replace
/// one (certificates signed by it would stop working where it is trusted).
pub async fn init(store: &Store, kek: &Kek) -> anyhow::Result<PublicKey> {
    if store.item(CA_ITEM).await?.is_some() {
        bail!(
            "the gateway has an SSH user CA already (`portcullis-gateway ssh-ca public-key` prints it)"
        );
    }
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *seed).expect("the OS random source");
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment("portcullis-user-ca");
    let text = key
        .to_openssh(LineEnding::LF)
        .context("encoding the CA key")?;
    let sealed = kek.seal_item(CA_ITEM, &Secret::new(text.as_bytes().to_vec()));
    store.put_item(CA_ITEM, &sealed, false).await?;
    Ok(key.public_key().clone())
}

/// The CA's key, opened from the vault.
pub async fn load(store: &Store, kek: &Kek) -> anyhow::Result<PrivateKey> {
    let sealed = store.item(CA_ITEM).await?.ok_or_else(|| {
        anyhow::anyhow!("the gateway has no SSH user CA: run `portcullis-gateway ssh-ca init`")
    })?;
    let text = kek.open_item(CA_ITEM, &sealed)?;
    let text = std::str::from_utf8(text.expose()).context("the CA key in the vault is damaged")?;
    PrivateKey::from_openssh(text).context("the CA key in the vault is damaged")
}

/// What a certificate says, besides the key it certifies.
pub struct CertRequest<'a> {
    pub user: &'a UserName,
    pub host: &'a HostName,
    pub principals: &'a [String],
    pub now: u64,
    pub validity_seconds: u64,
    pub serial: u64,
}

impl CertRequest<'_> {
    pub fn key_id(&self) -> String {
        format!("portcullis:{}:{}:{}", self.user, self.host, self.serial)
    }

    pub fn valid_before(&self) -> u64 {
        self.now + self.validity_seconds
    }
}

/// Parses a user's public key as sent: one OpenSSH line, not a certificate.
pub fn parse_public_key(text: &str) -> anyhow::Result<PublicKey> {
    if text.len() > MAX_PUBLIC_KEY {
        bail!("a public key has at most {MAX_PUBLIC_KEY} bytes");
    }
    let key = PublicKey::from_openssh(text.trim())
        .map_err(|_| anyhow::anyhow!("not an OpenSSH public key line (ssh-ed25519 AAAA…)"))?;
    Ok(key)
}

/// Signs a user certificate for `key`.
pub fn sign(ca: &PrivateKey, key: &PublicKey, request: &CertRequest<'_>) -> anyhow::Result<String> {
    if request.principals.is_empty() {
        bail!("no principals: a certificate for every login name is never issued");
    }
    let mut nonce = vec![0u8; 32];
    getrandom::fill(&mut nonce).expect("the OS random source");
    let mut builder = Builder::new(
        nonce,
        key.key_data().clone(),
        request.now.saturating_sub(CLOCK_SKEW_SECONDS),
        request.valid_before(),
    )?;
    builder
        .serial(request.serial)?
        .cert_type(CertType::User)?
        .key_id(request.key_id())?
        .comment(request.key_id())?;
    for principal in request.principals {
        builder.valid_principal(principal.clone())?;
    }
    for extension in ["permit-pty", "permit-port-forwarding"] {
        builder.extension(extension, "")?;
    }
    let certificate = builder.sign(ca).context("signing the certificate")?;
    Ok(certificate.to_openssh()?)
}

/// An OpenSSH key revocation list (PROTOCOL.krl) revoking `serials` of the
/// certificates `ca` signed: what sshd's `RevokedKeys` reads. `version` grows
/// with each list written (the number of revocations), `now` is Unix seconds.
pub fn krl(ca: &PublicKey, serials: &[u64], version: u64, now: u64) -> anyhow::Result<Vec<u8>> {
    const MAGIC: &[u8; 8] = b"SSHKRL\n\0";
    const FORMAT_VERSION: u32 = 1;
    const SECTION_CERTIFICATES: u8 = 1;
    const CERT_SECTION_SERIAL_LIST: u8 = 0x20;
    fn string(out: &mut Vec<u8>, bytes: &[u8]) {
        let length = u32::try_from(bytes.len()).expect("a KRL field under 4 GiB");
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(bytes);
    }
    let mut out = Vec::with_capacity(128 + serials.len() * 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&now.to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes()); // flags
    string(&mut out, b""); // reserved
    string(&mut out, b"portcullis-gateway revoked certificates");
    if !serials.is_empty() {
        let mut sorted = serials.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut list = Vec::with_capacity(sorted.len() * 8);
        for serial in sorted {
            list.extend_from_slice(&serial.to_be_bytes());
        }
        let mut section = Vec::new();
        string(&mut section, &ca.to_bytes().context("encoding the CA key")?);
        string(&mut section, b""); // reserved
        section.push(CERT_SECTION_SERIAL_LIST);
        string(&mut section, &list);
        out.push(SECTION_CERTIFICATES);
        string(&mut out, &section);
    }
    Ok(out)
}

/// Writes the revocation list to `path` whole: a new file beside it, then a
/// rename, so sshd never reads half a list.
pub fn write_krl(path: &std::path::Path, krl: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("{} names no file", path.display()))?;
    let mut partial = name.to_owned();
    partial.push(".new");
    let partial = path.with_file_name(partial);
    let mut file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    file.write_all(krl)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[7; 32]))
    }

    #[test]
    fn a_certificate_carries_the_granted_principals_the_key_id_and_the_validity() {
        let ca = ca();
        let user_key = PrivateKey::from(Ed25519Keypair::from_seed(&[9; 32]));
        let user: UserName = "alice".parse().unwrap();
        let host: HostName = "vnet1".parse().unwrap();
        let principals = vec!["pclab".to_owned(), "deploy".to_owned()];
        let request = CertRequest {
            user: &user,
            host: &host,
            principals: &principals,
            now: 1_900_000_000,
            validity_seconds: 300,
            serial: 42,
        };
        let text = sign(
            &ca,
            &parse_public_key(&user_key.public_key().to_openssh().unwrap()).unwrap(),
            &request,
        )
        .unwrap();
        let cert = ssh_key::Certificate::from_openssh(&text).unwrap();
        assert_eq!(cert.cert_type(), CertType::User);
        assert_eq!(cert.serial(), 42);
        assert_eq!(cert.key_id(), "portcullis:alice:vnet1:42");
        assert_eq!(cert.valid_principals(), &principals[..]);
        assert_eq!(cert.valid_after(), 1_900_000_000 - 60);
        assert_eq!(cert.valid_before(), 1_900_000_300);
        assert_eq!(cert.public_key(), user_key.public_key().key_data());
        assert_eq!(cert.signature_key(), ca.public_key().key_data());
        let no_one: Vec<String> = Vec::new();
        let golden = CertRequest {
            principals: &no_one,
            ..request
        };
        assert!(sign(&ca, user_key.public_key(), &golden).is_err());
    }

    /// OpenSSH's own reader (`ssh-keygen -Q`) finds the revoked serials in the
    /// list and nothing else.
    #[test]
    fn ssh_keygen_reads_the_revocation_list() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca();
        let user_key = PrivateKey::from(Ed25519Keypair::from_seed(&[9; 32]));
        let user: UserName = "alice".parse().unwrap();
        let host: HostName = "vnet1".parse().unwrap();
        let principals = vec!["pclab".to_owned()];
        let now = crate::clock::now_secs();
        let certificate = |serial| {
            let request = CertRequest {
                user: &user,
                host: &host,
                principals: &principals,
                now,
                validity_seconds: 300,
                serial,
            };
            let path = dir.path().join(format!("c{serial}-cert.pub"));
            std::fs::write(&path, sign(&ca, user_key.public_key(), &request).unwrap()).unwrap();
            path
        };
        let (revoked, kept) = (certificate(1 << 40), certificate(5));
        let list = dir.path().join("revoked.krl");
        write_krl(
            &list,
            &krl(ca.public_key(), &[1 << 40, 3, 1 << 40], 2, now).unwrap(),
        )
        .unwrap();
        let query = |cert: &std::path::Path| {
            std::process::Command::new("ssh-keygen")
                .arg("-Q")
                .arg("-f")
                .arg(&list)
                .arg(cert)
                .output()
                .expect("ssh-keygen (openssh-client) is installed by the set-up")
        };
        let out = query(&revoked);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("REVOKED"),
            "{out:?}"
        );
        let out = query(&kept);
        assert!(out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(": ok"),
            "{out:?}"
        );
        // An empty list is a valid list that revokes nothing.
        write_krl(&list, &krl(ca.public_key(), &[], 0, now).unwrap()).unwrap();
        assert!(query(&revoked).status.success());
    }

    #[test]
    fn public_keys_and_principals_out_of_shape_are_refused() {
        assert!(parse_public_key("ssh-ed25519 not-base64").is_err());
        assert!(parse_public_key("").is_err());
        assert!(parse_public_key(&"a".repeat(MAX_PUBLIC_KEY + 1)).is_err());
        for bad in [
            "",
            "root,admin",
            "root admin",
            "-oProxy",
            "ro\not",
            &"a".repeat(65),
        ] {
            assert!(validate_principal(bad).is_err(), "{bad:?}");
        }
        for good in ["root", "pclab", "deploy-1", "a.b_c@d"] {
            validate_principal(good).unwrap();
        }
    }
}
