//! SSH keys in the app (generate, import, list with fingerprints, copy the
//! public half, forget; the running agent's keys shown beside them), and the
//! step before an SSH connection that turns a host's app keys, gateway
//! certificates and gateway credential into what the session presents.

use std::path::PathBuf;

use portcullis_client::appkeys;
use portcullis_client::dial::Route;
use portcullis_client::gateway_auth::{self, GatewayCredential};
use portcullis_client::inventory::AppKey;
use portcullis_client::ssh::{AuthMethod, SshAuth};
use portcullis_proto::wire::CredentialKind;
use portcullis_proto::{HostName, Secret};
use tauri::State;

use crate::commands::{AppState, Plan};
use crate::error::UiError;

#[derive(Debug, serde::Serialize)]
pub struct AgentKey {
    pub algorithm: String,
    pub fingerprint: String,
    pub comment: String,
}

/// The running ssh-agent, as the keys dialog shows it.
#[derive(Debug, serde::Serialize)]
pub struct AgentView {
    /// `SSH_AUTH_SOCK`, when set.
    pub socket: Option<String>,
    pub keys: Vec<AgentKey>,
    /// Why the agent's keys could not be listed.
    pub error: Option<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct KeysView {
    pub keys: Vec<AppKey>,
    pub agent: AgentView,
}

async fn agent_view() -> AgentView {
    use portcullis_client::ssh::agent_identities;
    let Some(socket) = std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from) else {
        return AgentView {
            socket: None,
            keys: Vec::new(),
            error: None,
        };
    };
    let shown = socket.display().to_string();
    match agent_identities(&socket).await {
        Ok(keys) => AgentView {
            socket: Some(shown),
            keys: keys
                .into_iter()
                .map(|(algorithm, fingerprint, comment)| AgentKey {
                    algorithm,
                    fingerprint,
                    comment,
                })
                .collect(),
            error: None,
        },
        Err(e) => AgentView {
            socket: Some(shown),
            keys: Vec::new(),
            error: Some(e.to_string()),
        },
    }
}

#[tauri::command]
pub async fn keys_list(state: State<'_, AppState>) -> Result<KeysView, UiError> {
    Ok(KeysView {
        keys: state.inventory.ssh_keys().await?,
        agent: agent_view().await,
    })
}

#[tauri::command]
pub async fn key_generate(state: State<'_, AppState>, name: String) -> Result<AppKey, UiError> {
    Ok(appkeys::generate(&state.inventory, &state.secrets, &name).await?)
}

/// `~/` at the start of a path is the user's home, as in a shell.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// An OpenSSH private key file; `passphrase` opens it once and is not kept.
#[tauri::command]
pub async fn key_import(
    state: State<'_, AppState>,
    name: String,
    path: String,
    passphrase: Option<Secret<String>>,
) -> Result<AppKey, UiError> {
    let path = path.trim();
    if path.is_empty() || path.len() > 4096 {
        return Err(UiError::invalid(
            "path",
            "enter the path of the private key file",
        ));
    }
    Ok(appkeys::import_file(
        &state.inventory,
        &state.secrets,
        &name,
        &expand_home(path),
        passphrase.as_ref(),
    )
    .await?)
}

#[tauri::command]
pub async fn key_delete(state: State<'_, AppState>, id: i64) -> Result<(), UiError> {
    Ok(appkeys::remove(&state.inventory, &state.secrets, id).await?)
}

/// Puts the key's public line on the OS clipboard, for a host's `authorized_keys`.
#[tauri::command]
pub async fn key_copy_public(state: State<'_, AppState>, id: i64) -> Result<String, UiError> {
    let key = state.inventory.ssh_key(id).await?;
    crate::desktop::set_os_clipboard_text(key.public_key.clone())
        .await
        .map_err(|e| UiError::new("clipboard", format!("the clipboard refused: {e}")))?;
    Ok(key.public_key)
}

/// What a plan's methods become just before connecting: app keys loaded from
/// the secret store, certificates asked of the gateway, the gateway's
/// credential released. A password from the gateway is returned for the
/// session's prompter.
pub(crate) async fn resolve_auth(
    state: &AppState,
    plan: &mut Plan,
) -> Result<Option<Secret<String>>, UiError> {
    let gateway = plan.gateway_url.clone();
    let through_gateway = matches!(plan.route, Route::Gateway { .. });
    let mut password = None;
    let host = plan.host.clone();
    let mut methods = Vec::with_capacity(plan.auth.methods.len());
    for method in std::mem::take(&mut plan.auth.methods) {
        let method = match method {
            AuthMethod::AppKey { key_id } => AuthMethod::Loaded {
                key: appkeys::load(&state.inventory, &state.secrets, key_id).await?,
            },
            AuthMethod::GatewayCertificate { key_id } if through_gateway => {
                let key = appkeys::load(&state.inventory, &state.secrets, key_id).await?;
                let name = gateway_host(&host)?;
                let key =
                    gateway_auth::certify(&state.client, gateway.as_deref(), &name, key).await?;
                AuthMethod::Loaded { key }
            }
            AuthMethod::FromGateway if through_gateway => {
                let name = gateway_host(&host)?;
                let released =
                    gateway_auth::ssh_credential(&state.client, gateway.as_deref(), &name).await?;
                if plan.auth.user.is_empty() {
                    plan.auth.user = released.login.clone().unwrap_or_default();
                }
                match released.credential {
                    GatewayCredential::Key(key) => AuthMethod::Loaded { key },
                    GatewayCredential::Password(secret) => {
                        password = Some(secret);
                        AuthMethod::Password
                    }
                }
            }
            AuthMethod::GatewayCertificate { .. } | AuthMethod::FromGateway => {
                return Err(UiError::invalid(
                    "auth",
                    "the gateway signs in only for hosts reached through it",
                ));
            }
            other => other,
        };
        methods.push(method);
    }
    plan.auth.methods = methods;
    if plan.auth.user.is_empty() {
        return Err(UiError::invalid(
            "user",
            "the gateway names no login for this host: enter the user name to log in as",
        ));
    }
    if let Route::Jump { hops } = &mut plan.route {
        for hop in hops {
            resolve_hop(state, &mut hop.auth).await?;
        }
    }
    Ok(password)
}

/// A jump host signs in with app keys too (never the gateway's credential).
async fn resolve_hop(state: &AppState, auth: &mut SshAuth) -> Result<(), UiError> {
    for method in &mut auth.methods {
        if let AuthMethod::AppKey { key_id } = method {
            *method = AuthMethod::Loaded {
                key: appkeys::load(&state.inventory, &state.secrets, *key_id).await?,
            };
        }
    }
    Ok(())
}

/// The RDP password from the gateway's vault, when the plan says to use it.
pub(crate) async fn rdp_password(
    state: &AppState,
    plan: &mut Plan,
) -> Result<Option<Secret<String>>, UiError> {
    if !plan.auth.methods.contains(&AuthMethod::FromGateway) {
        return Ok(None);
    }
    let name = gateway_host(&plan.host)?;
    let released = state
        .client
        .release_secret(
            plan.gateway_url.as_deref(),
            &name,
            Some(CredentialKind::Password),
        )
        .await?;
    if plan.auth.user.is_empty() {
        plan.auth.user = released.login.clone().unwrap_or_default();
    }
    Ok(Some(released.secret.clone()))
}

fn gateway_host(host: &str) -> Result<HostName, UiError> {
    host.parse()
        .map_err(|_| UiError::invalid("address", format!("{host:?} is not a gateway host name")))
}
