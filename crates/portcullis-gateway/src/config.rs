//! `gateway.toml`: every setting has a default; unknown keys are refused so a typo
//! never silently turns a limit off. Relative paths are relative to the file.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Largest config file read; anything bigger is not a config file.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub tokens: TokenSection,
    #[serde(default)]
    pub database: DatabaseSection,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub vault: VaultSection,
    #[serde(default)]
    pub ssh_ca: SshCaSection,
}

/// Certificates from the gateway's SSH user CA.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshCaSection {
    /// How long a certificate is valid (1 to 1440 minutes).
    pub validity_minutes: u64,
    /// Where `ssh-ca revoke` writes the key revocation list (OpenSSH KRL) of
    /// revoked certificate serials, for sshd's `RevokedKeys`.
    pub revoked_keys_file: Option<PathBuf>,
}

impl Default for SshCaSection {
    fn default() -> SshCaSection {
        SshCaSection {
            validity_minutes: 5,
            revoked_keys_file: None,
        }
    }
}

/// Where the vault's key-encryption key is: a file or an environment variable,
/// never the database. Neither set: the vault is not in use.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaultSection {
    /// A file (mode 0600) holding the key as 64 hex digits.
    pub key_file: Option<PathBuf>,
    /// The name of an environment variable holding the key.
    pub key_env: Option<String>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub listen: SocketAddr,
    /// Sources that may read `/metrics` without an administrator's token.
    pub metrics_allow: Vec<IpAddr>,
}

impl Default for ServerSection {
    fn default() -> ServerSection {
        ServerSection {
            listen: "0.0.0.0:443".parse().expect("valid default"),
            metrics_allow: vec![
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            ],
        }
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

impl Default for TlsSection {
    fn default() -> TlsSection {
        TlsSection {
            certificate: PathBuf::from("tls/cert.pem"),
            key: PathBuf::from("tls/key.pem"),
        }
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSection {
    pub signing_key: PathBuf,
    pub access_ttl_minutes: u64,
    pub refresh_ttl_hours: u64,
}

impl Default for TokenSection {
    fn default() -> TokenSection {
        TokenSection {
            signing_key: PathBuf::from("token-signing.key"),
            access_ttl_minutes: 10,
            refresh_ttl_hours: 12,
        }
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSection {
    /// SQLite database file.
    pub path: PathBuf,
}

impl Default for DatabaseSection {
    fn default() -> DatabaseSection {
        DatabaseSection {
            path: PathBuf::from("gateway.db"),
        }
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub handshake_timeout_seconds: u64,
    pub max_connections: usize,
    pub tunnel_idle_timeout_seconds: u64,
    pub tunnel_connect_timeout_seconds: u64,
    pub max_tunnels_per_user: usize,
    pub max_tunnels_total: usize,
    pub login_free_attempts: u32,
    pub login_base_delay_ms: u64,
    pub login_max_delay_seconds: u64,
    pub shutdown_drain_seconds: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_header_bytes: 16 * 1024,
            handshake_timeout_seconds: 10,
            max_connections: 4096,
            tunnel_idle_timeout_seconds: 900,
            tunnel_connect_timeout_seconds: 10,
            max_tunnels_per_user: 32,
            max_tunnels_total: 2048,
            login_free_attempts: 5,
            login_base_delay_ms: 1000,
            login_max_delay_seconds: 300,
            shutdown_drain_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `portcullis_gateway=debug`.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> LogSection {
        LogSection {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl GatewayConfig {
    /// Reads, validates and resolves relative paths against the file's folder.
    pub fn load(path: &Path) -> anyhow::Result<GatewayConfig> {
        let meta = std::fs::metadata(path).with_context(|| {
            format!(
                "cannot read gateway configuration {}: create one with `portcullis-gateway init --dir DIR`, then pass --config DIR/gateway.toml or set PORTCULLIS_GATEWAY_CONFIG",
                path.display()
            )
        })?;
        if meta.len() > MAX_CONFIG_BYTES {
            bail!(
                "gateway configuration {} is {} bytes, more than the {MAX_CONFIG_BYTES} a configuration may have",
                path.display(),
                meta.len()
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read gateway configuration {}", path.display()))?;
        let mut config = GatewayConfig::parse(&text)
            .with_context(|| format!("invalid gateway configuration {}", path.display()))?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    pub fn parse(text: &str) -> anyhow::Result<GatewayConfig> {
        let config: GatewayConfig = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        for path in [
            &mut self.tls.certificate,
            &mut self.tls.key,
            &mut self.tokens.signing_key,
            &mut self.database.path,
        ] {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
        for path in [&mut self.vault.key_file, &mut self.ssh_ca.revoked_keys_file]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !(1..=1440).contains(&self.ssh_ca.validity_minutes) {
            bail!("ssh_ca.validity_minutes must be between 1 and 1440");
        }
        let l = &self.limits;
        // hyper refuses buffers under 8 KiB; a megabyte of headers is never legitimate.
        if !(8192..=1024 * 1024).contains(&l.max_header_bytes) {
            bail!("limits.max_header_bytes must be between 8192 and 1048576");
        }
        let positive = [
            (
                "limits.handshake_timeout_seconds",
                l.handshake_timeout_seconds,
            ),
            (
                "limits.tunnel_idle_timeout_seconds",
                l.tunnel_idle_timeout_seconds,
            ),
            (
                "limits.tunnel_connect_timeout_seconds",
                l.tunnel_connect_timeout_seconds,
            ),
            ("limits.max_connections", l.max_connections as u64),
            ("limits.max_tunnels_per_user", l.max_tunnels_per_user as u64),
            ("limits.max_tunnels_total", l.max_tunnels_total as u64),
            ("limits.login_max_delay_seconds", l.login_max_delay_seconds),
            ("tokens.access_ttl_minutes", self.tokens.access_ttl_minutes),
            ("tokens.refresh_ttl_hours", self.tokens.refresh_ttl_hours),
        ];
        for (name, value) in positive {
            if value == 0 {
                bail!("{name} must be greater than zero");
            }
        }
        if self.tokens.access_ttl_minutes > 24 * 60 {
            bail!(
                "tokens.access_ttl_minutes must be at most 1440 (a day): access tokens are meant to be short-lived"
            );
        }
        if self.tokens.refresh_ttl_hours > 24 * 90 {
            bail!("tokens.refresh_ttl_hours must be at most 2160 (90 days)");
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .with_context(|| format!("log.level {:?} is not a valid filter", self.log.level))?;
        Ok(())
    }
}

/// The commented `gateway.toml` that `init` writes: every setting with its default.
pub fn template(listen: SocketAddr) -> String {
    let s = ServerSection::default();
    let t = TlsSection::default();
    let k = TokenSection::default();
    let d = DatabaseSection::default();
    let l = Limits::default();
    let allow = s
        .metrics_allow
        .iter()
        .map(|ip| format!("\"{ip}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"# Portcullis gateway configuration.
# Every setting is shown with its default. Relative paths are relative to this file.

[server]
# The one TLS port the gateway listens on.
listen = "{listen}"
# Sources that may read /metrics without an administrator's access token.
metrics_allow = [{allow}]

[tls]
# PEM certificate chain and private key. `init` makes a self-signed pair unless given
# --cert and --key; clients pin its SHA-256 (`portcullis-gateway fingerprint`).
certificate = "{cert}"
key = "{key}"

[tokens]
# 32 random bytes that sign access and refresh tokens. Gateways of one fleet share it.
signing_key = "{signing}"
# Access tokens are short-lived; clients refresh them without asking the user.
access_ttl_minutes = {access}
# After this long a user signs in again.
refresh_ttl_hours = {refresh}

[database]
# SQLite database with users, hosts, grants and the audit trail.
path = "{db}"

[limits]
# Largest request head (request line and headers) accepted, in bytes.
max_header_bytes = {header}
# Time allowed for the TLS handshake, and then for each request head.
handshake_timeout_seconds = {handshake}
# Connections served at once; further ones are closed at once.
max_connections = {conns}
# A tunnel that carries no byte either way for this long is closed.
tunnel_idle_timeout_seconds = {idle}
# Time allowed to reach a catalogued host.
tunnel_connect_timeout_seconds = {connect}
max_tunnels_per_user = {per_user}
max_tunnels_total = {total}
# Failed sign-ins allowed per source address and per user name before a delay
# applies; the delay starts at login_base_delay_ms and doubles up to the maximum.
login_free_attempts = {free}
login_base_delay_ms = {base}
login_max_delay_seconds = {max_delay}
# On SIGTERM, open tunnels may finish for this long before they are closed.
shutdown_drain_seconds = {drain}

[log]
# "text" or "json"
format = "text"
# A tracing filter, e.g. "info" or "portcullis_gateway=debug".
level = "info"

[vault]
# The key that seals the secrets attached to hosts (`portcullis-gateway secret`):
# a file of 64 hex digits, mode 0600 (`secret new-key PATH` makes one), or an
# environment variable. Keep it out of the database's folder and its backups.
# key_file = "/etc/portcullis/vault.key"
# key_env = "PORTCULLIS_VAULT_KEY"

[ssh_ca]
# Certificates from the gateway's SSH user CA (`portcullis-gateway ssh-ca init`)
# are valid this long, in minutes; the desktop asks for one at each connection.
validity_minutes = 5
# `ssh-ca revoke SERIAL` rewrites this OpenSSH key revocation list; copy it to
# each host and name it in sshd_config as `RevokedKeys` (sshd reads it at every
# log-in). Unset: revocations are recorded, `ssh-ca krl` writes the list.
# revoked_keys_file = "/etc/portcullis/revoked_keys.krl"
"#,
        cert = t.certificate.display(),
        key = t.key.display(),
        signing = k.signing_key.display(),
        access = k.access_ttl_minutes,
        refresh = k.refresh_ttl_hours,
        db = d.path.display(),
        header = l.max_header_bytes,
        handshake = l.handshake_timeout_seconds,
        conns = l.max_connections,
        idle = l.tunnel_idle_timeout_seconds,
        connect = l.tunnel_connect_timeout_seconds,
        per_user = l.max_tunnels_per_user,
        total = l.max_tunnels_total,
        free = l.login_free_attempts,
        base = l.login_base_delay_ms,
        max_delay = l.login_max_delay_seconds,
        drain = l.shutdown_drain_seconds,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_to_the_defaults() {
        let config = GatewayConfig::parse(&template("0.0.0.0:443".parse().unwrap())).unwrap();
        let l = Limits::default();
        assert_eq!(config.limits.max_header_bytes, l.max_header_bytes);
        assert_eq!(
            config.limits.shutdown_drain_seconds,
            l.shutdown_drain_seconds
        );
        assert_eq!(config.tokens.access_ttl_minutes, 10);
        assert_eq!(config.server.metrics_allow.len(), 2);
        assert_eq!(config.ssh_ca.revoked_keys_file, None);
    }

    #[test]
    fn the_revocation_list_path_is_taken_relative_to_the_configuration() {
        let mut config =
            GatewayConfig::parse("[ssh_ca]\nrevoked_keys_file = \"krl/revoked.krl\"\n").unwrap();
        config.resolve_paths(Path::new("/etc/portcullis"));
        assert_eq!(
            config.ssh_ca.revoked_keys_file.as_deref(),
            Some(Path::new("/etc/portcullis/krl/revoked.krl"))
        );
    }

    #[test]
    fn typos_and_nonsense_are_refused() {
        assert!(GatewayConfig::parse("[limits]\nmax_tunnel_per_user = 3\n").is_err());
        assert!(GatewayConfig::parse("[limits]\nmax_header_bytes = 10\n").is_err());
        assert!(GatewayConfig::parse("[tokens]\naccess_ttl_minutes = 0\n").is_err());
        assert!(GatewayConfig::parse("[log]\nformat = \"xml\"\n").is_err());
        assert!(GatewayConfig::parse("not toml at all [").is_err());
    }
}
