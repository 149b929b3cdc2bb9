//! JSON bodies of the gateway's HTTPS API (`/v1/...`). Both sides use these types,
//! so the wire format lives in exactly one place.

use crate::names::{HostName, Tag, UserName};
use crate::secret::Secret;

/// Upper bound on any JSON request body the gateway reads.
pub const MAX_REQUEST_BODY: usize = 16 * 1024;

/// Upper bound on a password; argon2 of megabytes would be a denial of service.
pub const MAX_PASSWORD_LEN: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Ssh,
    Rdp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Ssh => "ssh",
            Protocol::Rdp => "rdp",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Ssh => 22,
            Protocol::Rdp => 3389,
        }
    }
}

impl std::str::FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Protocol, String> {
        match s.to_ascii_lowercase().as_str() {
            "ssh" => Ok(Protocol::Ssh),
            "rdp" => Ok(Protocol::Rdp),
            other => Err(format!("unknown protocol {other:?}: expected ssh or rdp")),
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /v1/login`
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub user: String,
    pub password: Secret<String>,
}

/// `POST /v1/refresh`
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: Secret<String>,
}

/// Answer to a login or a refresh. Times are seconds since the Unix epoch.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct TokenResponse {
    pub user: UserName,
    pub admin: bool,
    pub access_token: Secret<String>,
    pub access_expires_at: u64,
    pub refresh_token: Secret<String>,
    pub refresh_expires_at: u64,
}

/// One entry of `GET /v1/hosts`. Addresses are shown to administrators only.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostEntry {
    pub name: HostName,
    pub protocol: Protocol,
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The gateway holds a credential for this host that it releases to you for
    /// a session (`POST /v1/secrets/release`).
    #[serde(default)]
    pub gateway_credential: bool,
    /// Your grants name a login an SSH certificate from the gateway may carry.
    #[serde(default)]
    pub ssh_certificate: bool,
    /// Every grant that reaches this host is launch-only: sessions with the
    /// gateway's credential, never a bare tunnel.
    #[serde(default)]
    pub launch_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostList {
    pub hosts: Vec<HostEntry>,
}

/// `POST /v1/ssh/certificate`: a certificate from the gateway's SSH user CA for
/// the caller's own public key (one OpenSSH line), to log on to `host`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshCertificateRequest {
    pub host: HostName,
    pub public_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SshCertificateResponse {
    /// The certificate as one OpenSSH line (`…-cert-v01@openssh.com AAAA…`).
    pub certificate: String,
    pub serial: u64,
    pub principals: Vec<String>,
    /// Unix seconds.
    pub valid_before: u64,
}

/// What a host's vault secret is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKind {
    Password,
    /// An OpenSSH private key (PEM text).
    SshKey,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Password => "password",
            CredentialKind::SshKey => "ssh-key",
        }
    }
}

/// `POST /v1/secrets/release`: the host's vault secret, for the one session the
/// caller is opening. `kind` narrows the choice (default: an SSH key before a
/// password for SSH hosts, a password for RDP hosts).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretReleaseRequest {
    pub host: HostName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<CredentialKind>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SecretReleaseResponse {
    pub kind: CredentialKind,
    /// The login the secret belongs to, when the vault names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    pub secret: Secret<String>,
    /// Opens one tunnel to this host (`X-Portcullis-Launch`), needed under a
    /// launch-only grant; valid until `launch_expires_at` (Unix seconds).
    pub launch_ticket: Secret<String>,
    pub launch_expires_at: u64,
}

/// The header that carries a launch ticket on a tunnel request.
pub const LAUNCH_HEADER: &str = "x-portcullis-launch";

/// Every error the API returns: a stable machine code and a sentence a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// WebSocket close reasons the gateway sends at the end of a tunnel.
pub mod close_reason {
    pub const TARGET_CLOSED: &str = "target_closed";
    pub const IDLE_TIMEOUT: &str = "idle_timeout";
    pub const SHUTDOWN: &str = "gateway_shutdown";
    pub const TARGET_ERROR: &str = "target_error";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_request_refuses_unknown_fields_and_hides_password() {
        let ok: LoginRequest = serde_json::from_str(r#"{"user":"alice","password":"pw"}"#).unwrap();
        assert_eq!(ok.password.expose(), "pw");
        assert!(!format!("{ok:?}").contains("pw\""));
        assert!(
            serde_json::from_str::<LoginRequest>(r#"{"user":"a","password":"b","x":1}"#).is_err()
        );
    }

    #[test]
    fn host_entry_omits_absent_address() {
        let entry = HostEntry {
            name: "web1".parse().unwrap(),
            protocol: Protocol::Ssh,
            tags: vec![],
            address: None,
            port: None,
            gateway_credential: false,
            ssh_certificate: true,
            launch_only: false,
        };
        assert_eq!(
            serde_json::to_string(&entry).unwrap(),
            r#"{"name":"web1","protocol":"ssh","tags":[],"gateway_credential":false,"ssh_certificate":true,"launch_only":false}"#
        );
        // An older gateway's entry still reads, with nothing offered.
        let old: HostEntry =
            serde_json::from_str(r#"{"name":"web1","protocol":"ssh","tags":[]}"#).unwrap();
        assert!(!old.gateway_credential && !old.ssh_certificate && !old.launch_only);
    }

    #[test]
    fn a_released_secret_hides_its_value_and_kinds_read_as_the_cli_writes_them() {
        let released: SecretReleaseResponse = serde_json::from_str(
            r#"{"kind":"ssh-key","login":"pclab","secret":"hunter22","launch_ticket":"pc1.x.y","launch_expires_at":5}"#,
        )
        .unwrap();
        assert_eq!(released.kind, CredentialKind::SshKey);
        assert_eq!(released.kind.as_str(), "ssh-key");
        let shown = format!("{released:?}");
        assert!(
            !shown.contains("hunter22") && !shown.contains("pc1.x.y"),
            "{shown}"
        );
        assert!(
            serde_json::from_str::<SecretReleaseRequest>(r#"{"host":"web1","kind":"pin"}"#)
                .is_err()
        );
    }
}
