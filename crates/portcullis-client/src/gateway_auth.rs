//! Credentials a gateway hands out for one session: a host's secret from its
//! vault (an SSH key or a password, released to a granted user and never shown),
//! and short-lived certificates from its SSH CA for the user's own key.
//!
//! INVARIANT: a released secret lives only in `Secret`s and [`LoadedKey`]s,
//! which zeroize; it is never logged, stored or put in an error.

use std::path::Path;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use portcullis_proto::wire::CredentialKind;
use portcullis_proto::{HostName, Secret};

use crate::ClientError;
use crate::session::Client;
use crate::ssh::{
    HostKeyDecision, InteractiveRequest, LoadedKey, Prompter, SshError, UnknownHostKey, decode_key,
};

#[derive(Debug, thiserror::Error)]
pub enum GatewayAuthError {
    #[error(transparent)]
    Gateway(#[from] ClientError),
    #[error(transparent)]
    Ssh(#[from] SshError),
}

/// What the gateway's vault gave for a session.
pub enum GatewayCredential {
    Key(LoadedKey),
    Password(Secret<String>),
}

pub struct ReleasedCredential {
    /// The login the secret belongs to, when the vault names one.
    pub login: Option<String>,
    pub credential: GatewayCredential,
}

/// Answers no question: for keys that must not be encrypted.
struct NoAnswers;

impl Prompter for NoAnswers {
    fn unknown_host_key<'a>(&'a self, _: &'a UnknownHostKey) -> BoxFuture<'a, HostKeyDecision> {
        Box::pin(async { HostKeyDecision::Reject })
    }
    fn passphrase<'a>(&'a self, _: &'a Path) -> BoxFuture<'a, Option<Secret<String>>> {
        Box::pin(async { None })
    }
    fn password<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Option<Secret<String>>> {
        Box::pin(async { None })
    }
    fn keyboard_interactive<'a>(
        &'a self,
        _: &'a InteractiveRequest,
    ) -> BoxFuture<'a, Option<Vec<Secret<String>>>> {
        Box::pin(async { None })
    }
}

/// The host's SSH credential from the gateway's vault (a key before a
/// password), for the session about to open. Its launch ticket stays with
/// `client` for that session's tunnel.
pub async fn ssh_credential(
    client: &Client,
    gateway: Option<&str>,
    host: &HostName,
) -> Result<ReleasedCredential, GatewayAuthError> {
    let released = client.release_secret(gateway, host, None).await?;
    let credential = match released.kind {
        CredentialKind::SshKey => {
            let label = format!("the gateway's key for {host}");
            let key = decode_key(&released.secret, Path::new(&label), &NoAnswers)
                .await?
                .ok_or_else(|| SshError::Key {
                    path: label.clone(),
                    cause: "it is encrypted; the vault keeps keys without a passphrase".into(),
                })?;
            GatewayCredential::Key(LoadedKey::new(label, key))
        }
        CredentialKind::Password => GatewayCredential::Password(released.secret.clone()),
    };
    Ok(ReleasedCredential {
        login: released.login.clone(),
        credential,
    })
}

/// `key` with a certificate from the gateway's SSH CA for logging on to `host`
/// (only the public half goes to the gateway).
pub async fn certify(
    client: &Client,
    gateway: Option<&str>,
    host: &HostName,
    key: LoadedKey,
) -> Result<LoadedKey, GatewayAuthError> {
    let issued = client
        .ssh_certificate(gateway, host, &key.public_openssh())
        .await?;
    Ok(key.with_certificate(&issued.certificate)?)
}

/// Answers password questions (and keyboard-interactive prompts that do not
/// echo) with a password from the gateway, once; everything else, and any
/// later question, goes to the person's prompter.
pub struct GatewayPassword {
    inner: Arc<dyn Prompter>,
    password: std::sync::Mutex<Option<Secret<String>>>,
}

impl GatewayPassword {
    pub fn new(inner: Arc<dyn Prompter>, password: Secret<String>) -> GatewayPassword {
        GatewayPassword {
            inner,
            password: std::sync::Mutex::new(Some(password)),
        }
    }

    fn take(&self) -> Option<Secret<String>> {
        self.password.lock().expect("gateway password lock").take()
    }
}

impl Prompter for GatewayPassword {
    fn unknown_host_key<'a>(&'a self, key: &'a UnknownHostKey) -> BoxFuture<'a, HostKeyDecision> {
        self.inner.unknown_host_key(key)
    }

    fn passphrase<'a>(&'a self, key_file: &'a Path) -> BoxFuture<'a, Option<Secret<String>>> {
        self.inner.passphrase(key_file)
    }

    fn password<'a>(
        &'a self,
        user: &'a str,
        host: &'a str,
    ) -> BoxFuture<'a, Option<Secret<String>>> {
        match self.take() {
            Some(password) => Box::pin(async move { Some(password) }),
            None => self.inner.password(user, host),
        }
    }

    fn keyboard_interactive<'a>(
        &'a self,
        request: &'a InteractiveRequest,
    ) -> BoxFuture<'a, Option<Vec<Secret<String>>>> {
        // One hidden prompt: the password question.
        let one_hidden = matches!(request.prompts.as_slice(), [(_, false)]);
        if one_hidden && let Some(password) = self.take() {
            return Box::pin(async move { Some(vec![password]) });
        }
        self.inner.keyboard_interactive(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::FixedAnswers;

    #[tokio::test]
    async fn the_gateway_password_answers_once_then_the_person_does() {
        let person = Arc::new(FixedAnswers {
            password: Some(Secret::new("typed".into())),
            ..FixedAnswers::default()
        });
        let prompter = GatewayPassword::new(person, Secret::new("from-vault".into()));
        let first = prompter.password("pclab", "vnet1").await.unwrap();
        assert_eq!(first.expose(), "from-vault");
        let second = prompter.password("pclab", "vnet1").await.unwrap();
        assert_eq!(second.expose(), "typed");
        let request = InteractiveRequest {
            user: "pclab".into(),
            host: "vnet1".into(),
            name: String::new(),
            instructions: String::new(),
            prompts: vec![("Password: ".into(), false)],
        };
        let prompter = GatewayPassword::new(
            Arc::new(FixedAnswers::default()),
            Secret::new("from-vault".into()),
        );
        let answers = prompter.keyboard_interactive(&request).await.unwrap();
        assert_eq!(answers[0].expose(), "from-vault");
        assert!(prompter.keyboard_interactive(&request).await.is_none());
    }
}
