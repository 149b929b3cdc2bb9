//! `portcullis-gateway init`: a configuration, a TLS certificate, a token-signing key
//! and a database in one folder.

use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use portcullis_proto::token::TokenSigner;
use portcullis_proto::{CertFingerprint, Secret};

use crate::config::{self, GatewayConfig};
use crate::store::Store;
use crate::tls;

pub struct InitOptions {
    pub dir: PathBuf,
    pub hostnames: Vec<String>,
    /// An existing certificate and key to use instead of a generated pair.
    pub cert_and_key: Option<(PathBuf, PathBuf)>,
    pub listen: SocketAddr,
}

pub struct Initialized {
    pub config_path: PathBuf,
    pub fingerprint: CertFingerprint,
}

pub async fn init(options: InitOptions) -> anyhow::Result<Initialized> {
    let dir = &options.dir;
    let config_path = dir.join("gateway.toml");
    if config_path.exists() {
        bail!(
            "{} exists already: this folder holds a gateway; remove it or choose another --dir",
            config_path.display()
        );
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let defaults = GatewayConfig::parse("")?;

    let mut text = config::template(options.listen);
    let fingerprint = match &options.cert_and_key {
        Some((cert, key)) => {
            let cert = std::fs::canonicalize(cert)
                .with_context(|| format!("cannot find certificate {}", cert.display()))?;
            let key = std::fs::canonicalize(key)
                .with_context(|| format!("cannot find private key {}", key.display()))?;
            tls::server_config(&cert, &key)?;
            text = text
                .replace(
                    &format!("certificate = \"{}\"", defaults.tls.certificate.display()),
                    &format!("certificate = {:?}", cert.display().to_string()),
                )
                .replace(
                    &format!("key = \"{}\"", defaults.tls.key.display()),
                    &format!("key = {:?}", key.display().to_string()),
                );
            tls::fingerprint_of(&cert)?
        }
        None => {
            let hostnames = if options.hostnames.is_empty() {
                vec!["localhost".to_owned()]
            } else {
                options.hostnames.clone()
            };
            let generated = tls::generate_self_signed(&hostnames)?;
            let cert_path = dir.join(&defaults.tls.certificate);
            let key_path = dir.join(&defaults.tls.key);
            if let Some(parent) = cert_path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)?;
            }
            std::fs::write(&cert_path, &generated.cert_pem)
                .with_context(|| format!("cannot write {}", cert_path.display()))?;
            tls::write_private(&key_path, generated.key_pem.as_bytes())?;
            generated.fingerprint
        }
    };

    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(key.as_mut())
        .map_err(|e| anyhow::anyhow!("no randomness for the signing key: {e}"))?;
    tls::write_private(
        &dir.join(&defaults.tokens.signing_key),
        hex::encode(key.as_ref()).as_bytes(),
    )?;

    let store = Store::open(&dir.join(&defaults.database.path), true).await?;
    store.close().await;
    std::fs::set_permissions(
        dir.join(&defaults.database.path),
        std::fs::Permissions::from_mode(0o600),
    )?;

    std::fs::write(&config_path, text)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    // The parse must succeed: a gateway that cannot read its own config is no gateway.
    GatewayConfig::load(&config_path)?;
    Ok(Initialized {
        config_path,
        fingerprint,
    })
}

/// Reads the hex-encoded signing key; refuses a file others may read.
pub fn load_signing_key(path: &Path) -> anyhow::Result<TokenSigner> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read token signing key {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "token signing key {} may be read by others (mode {:o}): run chmod 600 on it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
    if meta.len() > 1024 {
        bail!("token signing key {} is not a key file", path.display());
    }
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path)?);
    let bytes = hex::decode(text.trim())
        .with_context(|| format!("token signing key {} is not hex", path.display()))?;
    TokenSigner::new(Secret::new(bytes))
        .with_context(|| format!("token signing key {}", path.display()))
}
