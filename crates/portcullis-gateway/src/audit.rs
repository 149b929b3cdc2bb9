//! Audit events: what is written to the database and how `audit --json` prints it.

use crate::clock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    LoginOk,
    LoginFailed,
    TunnelDenied,
    TunnelOpen,
    TunnelClose,
    /// An operator attached or replaced a host's secret (`reason`: kind and user).
    SecretSet,
    SecretRemoved,
    /// Every secret was sealed again under a new vault key (`reason`: the key ids).
    VaultKeyRotated,
    /// The SSH user CA signed a certificate (`reason`: serial, principals, validity).
    SshCertIssued,
    /// An operator revoked a certificate serial (`reason`: serial and why).
    SshCertRevoked,
    /// A host's vault secret went to a granted user's client for one session
    /// (`reason`: kind, login, and until when the launch ticket opens a tunnel).
    SecretReleased,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::LoginOk => "login_ok",
            AuditKind::LoginFailed => "login_failed",
            AuditKind::TunnelDenied => "tunnel_denied",
            AuditKind::TunnelOpen => "tunnel_open",
            AuditKind::TunnelClose => "tunnel_close",
            AuditKind::SecretSet => "secret_set",
            AuditKind::SecretRemoved => "secret_removed",
            AuditKind::VaultKeyRotated => "vault_key_rotated",
            AuditKind::SshCertIssued => "ssh_cert_issued",
            AuditKind::SshCertRevoked => "ssh_cert_revoked",
            AuditKind::SecretReleased => "secret_released",
        }
    }
}

/// One event about to be written. Strings are already validated or truncated.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub time_ms: u64,
    pub kind: AuditKind,
    pub user: Option<String>,
    pub host: Option<String>,
    pub source: Option<String>,
    pub tunnel_id: Option<String>,
    pub reason: Option<String>,
    pub bytes_from_client: Option<u64>,
    pub bytes_to_client: Option<u64>,
    pub duration_ms: Option<u64>,
}

impl AuditEvent {
    pub fn new(kind: AuditKind) -> AuditEvent {
        AuditEvent {
            time_ms: clock::now_ms(),
            kind,
            user: None,
            host: None,
            source: None,
            tunnel_id: None,
            reason: None,
            bytes_from_client: None,
            bytes_to_client: None,
            duration_ms: None,
        }
    }
}

/// A row read back from the trail.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: i64,
    pub time_ms: i64,
    pub event: String,
    pub user: Option<String>,
    pub host: Option<String>,
    pub source: Option<String>,
    pub tunnel_id: Option<String>,
    pub reason: Option<String>,
    pub bytes_from_client: Option<i64>,
    pub bytes_to_client: Option<i64>,
    pub duration_ms: Option<i64>,
}

impl AuditRecord {
    /// One JSON object, as `audit --json` prints a line.
    pub fn to_json(&self) -> serde_json::Value {
        let mut object = serde_json::json!({
            "id": self.id,
            "time": clock::rfc3339_ms(self.time_ms),
            "event": self.event,
            "user": self.user,
            "host": self.host,
            "source": self.source,
        });
        let map = object.as_object_mut().expect("object literal");
        let optional = [
            (
                "tunnel_id",
                self.tunnel_id.clone().map(serde_json::Value::from),
            ),
            ("reason", self.reason.clone().map(serde_json::Value::from)),
            (
                "bytes_from_client",
                self.bytes_from_client.map(serde_json::Value::from),
            ),
            (
                "bytes_to_client",
                self.bytes_to_client.map(serde_json::Value::from),
            ),
            ("duration_ms", self.duration_ms.map(serde_json::Value::from)),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                map.insert(key.into(), value);
            }
        }
        object
    }

    /// One aligned line for people.
    pub fn to_text(&self) -> String {
        let mut line = format!(
            "{} {:<13} user={} host={} source={}",
            clock::rfc3339_ms(self.time_ms),
            self.event,
            self.user.as_deref().unwrap_or("-"),
            self.host.as_deref().unwrap_or("-"),
            self.source.as_deref().unwrap_or("-"),
        );
        if let Some(reason) = &self.reason {
            line.push_str(&format!(" reason={reason}"));
        }
        if let (Some(up), Some(down), Some(ms)) = (
            self.bytes_from_client,
            self.bytes_to_client,
            self.duration_ms,
        ) {
            line.push_str(&format!(
                " bytes_from_client={up} bytes_to_client={down} duration_ms={ms}"
            ));
        }
        line
    }
}
