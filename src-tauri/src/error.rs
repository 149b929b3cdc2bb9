//! The one error type that crosses into the UI: `{code, message, field?}`, a
//! stable code for the UI's logic and a sentence a person can act on. No secret
//! ever goes into one (the client core's errors carry none).

use portcullis_client::ClientError;
use portcullis_client::appkeys::KeyError;
use portcullis_client::dial::DialError;
use portcullis_client::gateway_auth::GatewayAuthError;
use portcullis_client::inventory::InventoryError;
use portcullis_client::rdp::RdpError;
use portcullis_client::secrets::SecretsError;
use portcullis_client::ssh::SshError;
use portcullis_client::vault::VaultError;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UiError {
    pub code: &'static str,
    pub message: String,
    /// The form field to show the message beside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// For `certificate_unconfirmed`: the fingerprint to show for confirmation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl UiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> UiError {
        UiError {
            code,
            message: message.into(),
            field: None,
            fingerprint: None,
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> UiError {
        UiError {
            field: Some(field),
            ..UiError::new("invalid", message)
        }
    }
}

impl std::fmt::Display for UiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl From<InventoryError> for UiError {
    fn from(e: InventoryError) -> UiError {
        match e {
            InventoryError::Invalid { field, message } => UiError::invalid(field, message),
            InventoryError::NotFound { .. } => UiError::new("not_found", e.to_string()),
            InventoryError::Database(_) => UiError::new("storage", e.to_string()),
        }
    }
}

impl From<ClientError> for UiError {
    fn from(e: ClientError) -> UiError {
        match &e {
            ClientError::NotSignedIn { gateway } => UiError::new(
                "not_signed_in",
                format!("Your sign-in to {gateway} has ended. Sign in again."),
            ),
            ClientError::NoGateway => UiError::new("not_signed_in", "Sign in to a gateway first."),
            ClientError::UntrustedCertificate { gateway, presented } => UiError {
                fingerprint: Some(presented.to_string()),
                ..UiError::new(
                    "certificate_unconfirmed",
                    format!(
                        "{gateway} presented a certificate no system authority vouches for. \
                         Compare its fingerprint with the one the gateway's operator gave you."
                    ),
                )
            },
            ClientError::CertificateChanged {
                gateway,
                pinned,
                presented,
            } => UiError::new(
                "certificate_changed",
                format!(
                    "The certificate of {gateway} has CHANGED (was {pinned}, now {presented}). \
                     This may be an attack; ask the gateway's operator before signing in again."
                ),
            ),
            ClientError::BadUrl { why, .. } => UiError::invalid("url", why.clone()),
            ClientError::Refused { status: 401, .. } => UiError {
                field: Some("password"),
                ..UiError::new(
                    "wrong_credentials",
                    "The gateway rejected the user name or password.",
                )
            },
            ClientError::Refused { status: 429, .. } => UiError::new(
                "throttled",
                "Too many attempts; wait a little and try again.",
            ),
            ClientError::Refused { status: 403, .. } => UiError::new("not_granted", e.to_string()),
            ClientError::Connect { .. } => UiError::new("unreachable", e.to_string()),
            _ => UiError::new("gateway", e.to_string()),
        }
    }
}

impl From<SshError> for UiError {
    fn from(e: SshError) -> UiError {
        let code = match &e {
            SshError::HostKeyChanged { .. } => "host_key_changed",
            SshError::HostKeyRevoked { .. } => "host_key_revoked",
            SshError::HostKeyUnknown { .. } => "host_key_rejected",
            SshError::HostCertificate { .. } => "host_certificate",
            SshError::AuthRejected { .. } => "auth_rejected",
            SshError::Key { .. } | SshError::Agent { .. } => "credentials",
            SshError::ConnectionLost { .. } => "connection_lost",
            SshError::Refused { .. } => "refused",
            SshError::Store { .. } => "storage",
        };
        UiError::new(code, e.to_string())
    }
}

impl From<RdpError> for UiError {
    fn from(e: RdpError) -> UiError {
        let code = match &e {
            RdpError::AuthRejected { .. } => "auth_rejected",
            RdpError::CertificateRefused { .. } => "host_key_rejected",
            // The UI shows a changed certificate like a changed host key.
            RdpError::CertificateChanged { .. } => "host_key_changed",
            RdpError::SecurityNotOffered { .. } => "rdp_security",
            RdpError::Timeout { .. } => "timeout",
            RdpError::Connect { .. } => "connection_lost",
            RdpError::Invalid(_) => "invalid",
            RdpError::Ended => "no_session",
            RdpError::Cancelled { .. } => "cancelled",
        };
        UiError::new(code, e.to_string())
    }
}

impl From<SecretsError> for UiError {
    fn from(e: SecretsError) -> UiError {
        match &e {
            SecretsError::Vault(VaultError::WrongPassword) => {
                UiError::invalid("master", "that master password is wrong")
            }
            SecretsError::Vault(VaultError::Invalid(message)) => {
                UiError::invalid("master", message.clone())
            }
            SecretsError::Locked | SecretsError::NotSetUp => {
                UiError::new("secrets_locked", e.to_string())
            }
            _ => UiError::new("secrets", e.to_string()),
        }
    }
}

impl From<KeyError> for UiError {
    fn from(e: KeyError) -> UiError {
        match e {
            KeyError::Invalid { field, message } => UiError::invalid(field, message),
            KeyError::Inventory(e) => e.into(),
            KeyError::Secrets(e) => e.into(),
        }
    }
}

impl From<GatewayAuthError> for UiError {
    fn from(e: GatewayAuthError) -> UiError {
        match e {
            GatewayAuthError::Gateway(e) => e.into(),
            GatewayAuthError::Ssh(e) => e.into(),
        }
    }
}

impl From<DialError> for UiError {
    fn from(e: DialError) -> UiError {
        match e {
            DialError::Gateway(e) => e.into(),
            DialError::Jump { hop, source } => {
                let inner = UiError::from(source);
                UiError::new(inner.code, format!("jump host {hop}: {}", inner.message))
            }
            other => UiError::new("unreachable", other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_reach_the_ui_with_codes_and_fields() {
        let e = UiError::from(InventoryError::Invalid {
            field: "port",
            message: "must be between 1 and 65535".into(),
        });
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"code": "invalid", "field": "port", "message": "must be between 1 and 65535"})
        );
        let e = UiError::from(ClientError::Refused {
            gateway: "https://gw".into(),
            status: 401,
            code: "unauthorized".into(),
            message: "no".into(),
        });
        assert_eq!((e.code, e.field), ("wrong_credentials", Some("password")));
    }
}
