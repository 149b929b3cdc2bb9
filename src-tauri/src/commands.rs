//! The commands the UI may call: a few lines each over the client core.

use std::sync::Arc;

use portcullis_client::Client;
use portcullis_client::dial::{Dialer, JumpHop, Route};
use portcullis_client::gateway_auth::GatewayPassword;
use portcullis_client::home::ClientHome;
use portcullis_client::inventory::{
    Folder, Gateway, HistoryEntry, Host, HostDraft, Inventory, Protocol, RdpSettings, RouteSpec,
};
use portcullis_client::secrets::{SecretStore, StoreChoice, StoreStatus};
use portcullis_client::session::PinPolicy;
use portcullis_client::ssh::{
    AuthMethod, HostKeyTrust, Prompter, PtyRequest, SshAuth, SshSession, SshTarget,
};
use portcullis_client::terminal::{SessionEnd, TerminalEvent, TerminalSession};
use portcullis_proto::wire::HostEntry;
use portcullis_proto::{CertFingerprint, Secret};
use portcullis_terminal::input::{Key, Modifiers, encode_key, encode_paste};
use portcullis_terminal::{GridPoint, ScreenSize, SearchMatch};
use tauri::State;
use tauri::ipc::Channel;

use crate::error::UiError;
use crate::sessions::{PasswordSlot, PromptAnswer, SavedSecrets, SessionEvent, Sessions};

/// Longest paste or typed text taken in one call.
pub const MAX_INPUT_BYTES: usize = 1 << 20;
/// Lines kept in each terminal's scrollback.
pub const SCROLLBACK_LINES: usize = 10_000;

pub struct AppState {
    pub home: ClientHome,
    pub client: Arc<Client>,
    pub inventory: Inventory,
    pub secrets: Arc<SecretStore>,
    pub sessions: Sessions,
}

impl AppState {
    pub async fn open(home: ClientHome) -> Result<AppState, UiError> {
        let choice = StoreChoice::from_env()?;
        Self::open_with(home, choice).await
    }

    pub async fn open_with(home: ClientHome, choice: StoreChoice) -> Result<AppState, UiError> {
        let inventory = Inventory::open(&home.dir().join("inventory.db")).await?;
        let secrets = Arc::new(SecretStore::open_with(home.dir(), choice, None).await?);
        Ok(AppState {
            client: Arc::new(Client::with_secrets(home.clone(), Arc::clone(&secrets))),
            home,
            inventory,
            secrets,
            sessions: Sessions::default(),
        })
    }
}

#[derive(Debug, serde::Serialize)]
pub struct SignedIn {
    pub url: String,
    pub user: String,
}

#[derive(Debug, serde::Serialize)]
pub struct Overview {
    pub hosts: Vec<Host>,
    pub folders: Vec<Folder>,
    pub gateways: Vec<Gateway>,
    pub recent: Vec<HistoryEntry>,
    pub signed_in: Vec<SignedIn>,
    pub home: String,
    /// Which secret store is in use, and whether it is open.
    pub secrets: StoreStatus,
}

#[tauri::command]
pub async fn overview(state: State<'_, AppState>) -> Result<Overview, UiError> {
    let signed_in = state
        .client
        .signed_in()?
        .into_iter()
        .map(|g| SignedIn {
            url: g.url,
            user: g.user,
        })
        .collect();
    Ok(Overview {
        hosts: state.inventory.hosts().await?,
        folders: state.inventory.folders().await?,
        gateways: state.inventory.gateways().await?,
        recent: state.inventory.recent(20).await?,
        signed_in,
        home: state.home.dir().display().to_string(),
        secrets: state.secrets.status().await,
    })
}

/// Opens the encrypted file store (creating it on first use); a keychain needs
/// nothing here.
#[tauri::command]
pub async fn secrets_unlock(
    state: State<'_, AppState>,
    master: String,
) -> Result<StoreStatus, UiError> {
    state.secrets.unlock(Secret::new(master)).await?;
    Ok(state.secrets.status().await)
}

#[tauri::command]
pub async fn secrets_lock(state: State<'_, AppState>) -> Result<StoreStatus, UiError> {
    state.secrets.lock().await;
    Ok(state.secrets.status().await)
}

/// Forgets the host's saved password (in the store and the inventory).
#[tauri::command]
pub async fn host_forget_password(state: State<'_, AppState>, id: i64) -> Result<Host, UiError> {
    let host = state.inventory.host(id).await?;
    if let Some(reference) = &host.credential_ref {
        state.secrets.remove(reference).await?;
        state.inventory.set_credential_ref(id, None).await?;
    }
    Ok(state.inventory.host(id).await?)
}

#[tauri::command]
pub async fn host_save(state: State<'_, AppState>, draft: HostDraft) -> Result<Host, UiError> {
    Ok(state.inventory.save_host(&draft).await?)
}

#[tauri::command]
pub async fn host_duplicate(state: State<'_, AppState>, id: i64) -> Result<Host, UiError> {
    Ok(state.inventory.duplicate_host(id).await?)
}

#[tauri::command]
pub async fn host_delete(state: State<'_, AppState>, id: i64) -> Result<(), UiError> {
    let host = state.inventory.host(id).await?;
    state.inventory.delete_host(id).await?;
    if let Some(reference) = &host.credential_ref {
        // The host is gone either way; a locked store keeps an orphan entry.
        if let Err(e) = state.secrets.remove(reference).await {
            tracing::warn!(host = %host.name, error = %e, "the host's saved password stays in the store");
        }
    }
    Ok(())
}

#[tauri::command]
pub async fn folder_add(
    state: State<'_, AppState>,
    name: String,
    parent_id: Option<i64>,
) -> Result<Folder, UiError> {
    Ok(state.inventory.add_folder(&name, parent_id).await?)
}

#[tauri::command]
pub async fn folder_delete(state: State<'_, AppState>, id: i64) -> Result<(), UiError> {
    Ok(state.inventory.delete_folder(id).await?)
}

/// Signs in; without `fingerprint`, a certificate no system CA vouches for comes
/// back as `certificate_unconfirmed` with its fingerprint for the person to confirm.
#[tauri::command]
pub async fn gateway_sign_in(
    state: State<'_, AppState>,
    url: String,
    user: String,
    password: String,
    fingerprint: Option<String>,
) -> Result<SignedIn, UiError> {
    let password = Secret::new(password);
    if password.expose().is_empty() {
        return Err(UiError::invalid("password", "enter the password"));
    }
    if password.expose().len() > portcullis_proto::wire::MAX_PASSWORD_LEN {
        return Err(UiError::invalid("password", "that password is too long"));
    }
    let policy = match fingerprint {
        Some(text) => PinPolicy::Expect(
            text.parse::<CertFingerprint>()
                .map_err(|e| UiError::invalid("fingerprint", e.to_string()))?,
        ),
        None => PinPolicy::Refuse,
    };
    let outcome = state
        .client
        .login(&url, user.trim(), password, policy)
        .await?;
    state
        .inventory
        .save_gateway(
            &outcome.gateway,
            &outcome.user,
            outcome.pinned.as_ref().map(ToString::to_string).as_deref(),
        )
        .await?;
    Ok(SignedIn {
        url: outcome.gateway,
        user: outcome.user,
    })
}

/// Signs out of a gateway: its tokens are forgotten; the inventory keeps the
/// gateway (hosts may route through it).
#[tauri::command]
pub async fn gateway_sign_out(state: State<'_, AppState>, url: String) -> Result<(), UiError> {
    Ok(state.client.sign_out(&url).await?)
}

/// Edits a gateway of the inventory (its user name; the URL is its identity).
#[tauri::command]
pub async fn gateway_save(
    state: State<'_, AppState>,
    url: String,
    user: String,
) -> Result<Gateway, UiError> {
    let pinned = state
        .inventory
        .gateways()
        .await?
        .into_iter()
        .find(|g| g.url == url)
        .and_then(|g| g.pinned_fingerprint);
    Ok(state
        .inventory
        .save_gateway(&url, &user, pinned.as_deref())
        .await?)
}

/// Removes a gateway from the inventory (refused while hosts route through it)
/// and signs out of it.
#[tauri::command]
pub async fn gateway_delete(state: State<'_, AppState>, id: i64) -> Result<(), UiError> {
    let gateway = state
        .inventory
        .gateways()
        .await?
        .into_iter()
        .find(|g| g.id == id)
        .ok_or_else(|| UiError::new("not_found", "that gateway is not in the inventory"))?;
    state.inventory.delete_gateway(id).await?;
    match state.client.sign_out(&gateway.url).await {
        Ok(()) | Err(portcullis_client::ClientError::NotSignedIn { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The hosts a signed-in gateway grants: read-only, never copied into the inventory.
#[tauri::command]
pub async fn gateway_hosts(
    state: State<'_, AppState>,
    url: String,
) -> Result<Vec<HostEntry>, UiError> {
    Ok(state.client.hosts(Some(&url)).await?.hosts)
}

impl AppState {
    /// The dialer for one session, with a prompter on its channel that offers
    /// (and later keeps) the plan's saved passwords.
    pub(crate) fn dialer_for(
        &self,
        plan: &Plan,
        channel: &Channel<SessionEvent>,
    ) -> (Dialer, Arc<SavedSecrets>) {
        let saved = Arc::new(SavedSecrets::new(
            Arc::clone(&self.secrets),
            plan.passwords.clone(),
        ));
        let prompter = self.sessions.prompter(channel.clone(), Arc::clone(&saved));
        let trust = HostKeyTrust::standard(self.home.dir().join("known_hosts"));
        let dialer = Dialer::new(Some(Arc::clone(&self.client)), trust, prompter);
        (dialer, saved)
    }

    /// A session that could not start: history, the UI, and its id forgotten.
    pub(crate) async fn failed(
        &self,
        id: u64,
        history: i64,
        channel: &Channel<SessionEvent>,
        error: UiError,
    ) {
        self.sessions.take_closed_early(id);
        let _ = self.inventory.record_end(history, error.code).await;
        let _ = channel.send(SessionEvent::Failed { error });
    }

    /// After a successful connection: stores what the person asked to
    /// remember and notes it on the hosts.
    pub(crate) async fn keep_saved(&self, saved: &SavedSecrets) {
        for (host_id, name) in saved.keep_chosen().await {
            if let Err(e) = self
                .inventory
                .set_credential_ref(host_id, Some(&name))
                .await
            {
                tracing::warn!(host_id, error = %e, "cannot note the saved password on the host");
            }
        }
    }
}

/// What the UI asks to open.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    Inventory {
        id: i64,
    },
    Gateway {
        gateway: String,
        host: String,
        /// May be empty with `from_gateway`: the vault names the login.
        #[serde(default)]
        user: String,
        /// As the gateway's host list says.
        #[serde(default = "ssh")]
        protocol: Protocol,
        /// Log on with the host's credential from the gateway's vault.
        #[serde(default)]
        from_gateway: bool,
    },
}

fn ssh() -> Protocol {
    Protocol::Ssh
}

/// OpenSSH's order: the agent, the app's keys, the usual key files, then
/// keyboard-interactive and password.
fn default_methods(app_keys: &[i64]) -> Vec<AuthMethod> {
    let mut methods = Vec::new();
    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        methods.push(AuthMethod::Agent);
    }
    methods.extend(
        app_keys
            .iter()
            .take(4)
            .map(|&key_id| AuthMethod::AppKey { key_id }),
    );
    if let Some(home) = std::env::var_os("HOME") {
        for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
            let path = std::path::Path::new(&home).join(".ssh").join(name);
            if path.exists() {
                methods.push(AuthMethod::KeyFile { path });
            }
        }
    }
    methods.push(AuthMethod::KeyboardInteractive);
    methods.push(AuthMethod::Password);
    methods
}

fn auth_of(host: &Host, app_keys: &[i64]) -> SshAuth {
    let mut methods = if host.auth.is_empty() {
        default_methods(app_keys)
    } else {
        host.auth.clone()
    };
    if host.credential_ref.is_some() {
        // A saved password answers the password method, not a keyboard-interactive
        // prompt: let it go first.
        if let Some(at) = methods.iter().position(|m| *m == AuthMethod::Password) {
            let password = methods.remove(at);
            let first_prompt = methods
                .iter()
                .position(|m| *m == AuthMethod::KeyboardInteractive)
                .unwrap_or(methods.len());
            methods.insert(first_prompt, password);
        }
    }
    SshAuth {
        // With the gateway's credential, the login the vault names (resolved later).
        user: if host.user.is_empty() && !methods.contains(&AuthMethod::FromGateway) {
            std::env::var("USER").unwrap_or_else(|_| "root".into())
        } else {
            host.user.clone()
        },
        methods,
        agent_socket: None,
    }
}

/// Where a host's password is (or would be) saved.
fn password_slot(host: &Host, auth: &SshAuth) -> PasswordSlot {
    PasswordSlot {
        user: auth.user.clone(),
        address: host.address.clone(),
        name: host
            .credential_ref
            .clone()
            .unwrap_or_else(|| format!("password/{}-{}", host.id, host.created_at)),
        host_id: host.id,
    }
}

/// Where to connect: route, the name host keys are checked under, port, auth,
/// and the history labels.
#[derive(Clone)]
pub(crate) struct Plan {
    pub(crate) protocol: Protocol,
    /// The display settings of an RDP inventory host (defaults otherwise).
    pub(crate) rdp: RdpSettings,
    pub(crate) route: Route,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) auth: SshAuth,
    pub(crate) label: String,
    pub(crate) gateway_url: Option<String>,
    /// Saved (or to be saved) passwords of the inventory hosts involved.
    pub(crate) passwords: Vec<PasswordSlot>,
}

/// The app keys tried when a host names no method: only while the secret
/// store is open (a locked store is not asked to open for them).
async fn usable_app_keys(state: &AppState) -> Result<Vec<i64>, UiError> {
    if !state.secrets.ready().await {
        return Ok(Vec::new());
    }
    Ok(state
        .inventory
        .ssh_keys()
        .await?
        .into_iter()
        .map(|k| k.id)
        .collect())
}

pub(crate) async fn plan(state: &AppState, target: Target) -> Result<Plan, UiError> {
    let app_keys = usable_app_keys(state).await?;
    match target {
        Target::Gateway {
            gateway,
            host,
            user,
            protocol,
            from_gateway,
        } => {
            let user = user.trim().to_owned();
            if (user.is_empty() && !from_gateway)
                || user.len() > 64
                || user.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(UiError::invalid("user", "enter the user name to log in as"));
            }
            Ok(Plan {
                protocol,
                rdp: RdpSettings::default(),
                route: Route::Gateway {
                    gateway: Some(gateway.clone()),
                },
                label: host.clone(),
                host,
                // The gateway picks the port; this one names the pinned key.
                port: if protocol == Protocol::Rdp { 3389 } else { 22 },
                auth: SshAuth {
                    user,
                    methods: if from_gateway {
                        vec![AuthMethod::FromGateway]
                    } else {
                        default_methods(&app_keys)
                    },
                    agent_socket: None,
                },
                gateway_url: Some(gateway),
                passwords: Vec::new(),
            })
        }
        Target::Inventory { id } => {
            let host = state.inventory.host(id).await?;
            let mut passwords = Vec::new();
            let (route, gateway_url) = match &host.route {
                RouteSpec::Direct => (Route::Direct, None),
                RouteSpec::Gateway { gateway_id } => {
                    let gateways = state.inventory.gateways().await?;
                    let gateway =
                        gateways
                            .iter()
                            .find(|g| g.id == *gateway_id)
                            .ok_or_else(|| {
                                UiError::new("not_found", "the host's gateway was removed")
                            })?;
                    (
                        Route::Gateway {
                            gateway: Some(gateway.url.clone()),
                        },
                        Some(gateway.url.clone()),
                    )
                }
                RouteSpec::Jump { hops } => {
                    let all = state.inventory.hosts().await?;
                    let mut jump = Vec::with_capacity(hops.len());
                    for name in hops {
                        let hop = all.iter().find(|h| &h.name == name).ok_or_else(|| {
                            UiError::new("not_found", format!("jump host {name:?} was removed"))
                        })?;
                        let auth = auth_of(hop, &app_keys);
                        passwords.push(password_slot(hop, &auth));
                        jump.push(JumpHop {
                            host: hop.address.clone(),
                            port: hop.port,
                            auth,
                        });
                    }
                    (Route::Jump { hops: jump }, None)
                }
            };
            let auth = auth_of(&host, &app_keys);
            passwords.push(password_slot(&host, &auth));
            Ok(Plan {
                protocol: host.protocol,
                rdp: host.rdp.clone(),
                route,
                host: host.address.clone(),
                port: host.port,
                auth,
                label: host.name,
                gateway_url,
                passwords,
            })
        }
    }
}

/// Opens an SSH terminal and returns its id at once; connecting, prompts, the
/// screen and the end arrive as events on `channel`.
#[tauri::command]
pub async fn session_open(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
    target: Target,
    cols: u16,
    rows: u16,
    channel: Channel<SessionEvent>,
) -> Result<u64, UiError> {
    let plan = plan(&state, target).await?;
    if plan.protocol != Protocol::Ssh {
        return Err(UiError::new(
            "unsupported",
            format!("{} is an RDP host: open it in a desktop tab", plan.label),
        ));
    }
    let id = state.sessions.next_id();
    let history = state
        .inventory
        .record_start(&plan.label, plan.gateway_url.as_deref())
        .await?;
    let _ = channel.send(SessionEvent::State {
        state: "connecting",
        route: None,
    });
    tauri::async_runtime::spawn(run_session(
        app,
        id,
        plan,
        history,
        ScreenSize::clamped(cols, rows),
        channel,
    ));
    Ok(id)
}

async fn run_session(
    app: tauri::AppHandle,
    id: u64,
    mut plan: Plan,
    history: i64,
    size: ScreenSize,
    channel: Channel<SessionEvent>,
) {
    use tauri::Manager;
    let state = app.state::<AppState>();
    let (dialer, saved) = state.dialer_for(&plan, &channel);
    let connected = async {
        // App keys, gateway certificates and the gateway's credential, just in time.
        let prompter = match crate::keys::resolve_auth(&state, &mut plan).await? {
            Some(password) => {
                Arc::new(GatewayPassword::new(Arc::clone(&dialer.prompter), password))
                    as Arc<dyn Prompter>
            }
            None => Arc::clone(&dialer.prompter),
        };
        let connection = dialer.dial(&plan.route, &plan.host, plan.port).await?;
        let route = connection.route();
        let session = SshSession::connect(
            connection,
            SshTarget {
                host: plan.host.clone(),
                port: plan.port,
            },
            &plan.auth,
            dialer.trust.clone(),
            prompter,
            &dialer.ssh,
        )
        .await?;
        let mut pty = PtyRequest::xterm(size.cols, size.rows);
        pty.env.push(("COLORTERM".into(), "truecolor".into()));
        let shell = session.open_shell(Some(&pty), None).await?;
        Ok::<_, UiError>((session, shell, route))
    };
    let (session, shell, route) = match connected.await {
        Ok(parts) => parts,
        Err(error) => {
            state.failed(id, history, &channel, error).await;
            return;
        }
    };
    state.keep_saved(&saved).await;
    let (events_tx, mut events) = tokio::sync::mpsc::channel(8);
    let terminal = TerminalSession::start(shell, size, SCROLLBACK_LINES, events_tx);
    if !state.sessions.insert(id, terminal.clone()) {
        // The tab was closed while this was connecting.
        terminal.close().await;
        session.close().await;
        let _ = state.inventory.record_end(history, "closed by user").await;
        return;
    }
    let _ = channel.send(SessionEvent::State {
        state: "connected",
        route: Some(route),
    });
    let mut end = SessionEnd::Closed;
    while let Some(event) = events.recv().await {
        match event {
            TerminalEvent::Screen(update) => {
                // The window went away: nobody will read this session again.
                if channel.send(SessionEvent::Screen { update }).is_err() {
                    end = SessionEnd::ClosedByUser;
                    break;
                }
            }
            TerminalEvent::Ended(ended) => {
                end = ended;
                break;
            }
        }
    }
    if let Some(terminal) = state.sessions.remove(id) {
        terminal.close().await;
    }
    session.close().await;
    let outcome = match &end {
        SessionEnd::Exited {
            status: Some(code), ..
        } => format!("exited {code}"),
        SessionEnd::Exited {
            signal: Some(signal),
            ..
        } => format!("killed by {signal}"),
        SessionEnd::Exited { .. } | SessionEnd::Closed => "closed".into(),
        SessionEnd::Lost { .. } => "connection lost".into(),
        SessionEnd::ClosedByUser => "closed by user".into(),
    };
    let _ = state.inventory.record_end(history, &outcome).await;
    let _ = channel.send(SessionEvent::Ended { end });
}

/// One key press as the UI saw it.
#[derive(Debug, serde::Deserialize)]
pub struct KeyPress {
    pub key: Key,
    pub mods: Modifiers,
}

/// Most key presses taken in one call (the UI sends what queued up meanwhile).
pub const MAX_KEYS: usize = 4096;

/// Key presses, in order; the UI sends the next batch only after this one returns,
/// so typing is never reordered.
#[tauri::command]
pub async fn session_keys(
    state: State<'_, AppState>,
    id: u64,
    keys: Vec<KeyPress>,
    app_cursor: bool,
) -> Result<(), UiError> {
    if keys.len() > MAX_KEYS {
        return Err(UiError::invalid("keys", "too many keys at once"));
    }
    let bytes: Vec<u8> = keys
        .into_iter()
        .flat_map(|press| encode_key(press.key, press.mods, app_cursor))
        .collect();
    send_input(&state, id, bytes).await
}

#[tauri::command]
pub async fn session_paste(
    state: State<'_, AppState>,
    id: u64,
    text: String,
    bracketed: bool,
) -> Result<(), UiError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(UiError::invalid("paste", "that paste is larger than 1 MiB"));
    }
    send_input(&state, id, encode_paste(&text, bracketed)).await
}

async fn send_input(state: &AppState, id: u64, bytes: Vec<u8>) -> Result<(), UiError> {
    if bytes.is_empty() {
        return Ok(());
    }
    state
        .sessions
        .get(id)?
        .input(bytes)
        .await
        .map_err(|_| UiError::new("no_session", "the session has ended"))
}

#[tauri::command]
pub async fn session_resize(
    state: State<'_, AppState>,
    id: u64,
    cols: u16,
    rows: u16,
) -> Result<(), UiError> {
    state
        .sessions
        .get(id)?
        .resize(ScreenSize::clamped(cols, rows))
        .await
        .map_err(|_| UiError::new("no_session", "the session has ended"))
}

#[tauri::command]
pub async fn session_scroll(
    state: State<'_, AppState>,
    id: u64,
    lines: i32,
) -> Result<(), UiError> {
    state
        .sessions
        .get(id)?
        .scroll(lines.clamp(-100_000, 100_000))
        .await
        .map_err(|_| UiError::new("no_session", "the session has ended"))
}

#[tauri::command]
pub async fn session_copy(
    state: State<'_, AppState>,
    id: u64,
    start: GridPoint,
    end: GridPoint,
) -> Result<String, UiError> {
    state
        .sessions
        .get(id)?
        .text_between(start, end)
        .await
        .map_err(|_| UiError::new("no_session", "the session has ended"))
}

#[tauri::command]
pub async fn session_search(
    state: State<'_, AppState>,
    id: u64,
    query: String,
) -> Result<Vec<SearchMatch>, UiError> {
    state
        .sessions
        .get(id)?
        .search(query, 1000)
        .await
        .map_err(|_| UiError::new("no_session", "the session has ended"))?
        .map_err(|e| UiError::invalid("search", e.to_string()))
}

#[tauri::command]
pub async fn session_close(state: State<'_, AppState>, id: u64) -> Result<(), UiError> {
    match (state.sessions.remove(id), state.sessions.remove_desktop(id)) {
        (Some(terminal), _) => terminal.close().await,
        (None, Some(desktop)) => {
            desktop.session.close().await;
        }
        // Still connecting: it is ended as soon as it is up.
        (None, None) => state.sessions.close_early(id),
    }
    Ok(())
}

#[tauri::command]
pub fn prompt_answer(
    state: State<'_, AppState>,
    id: u64,
    answer: PromptAnswer,
) -> Result<(), UiError> {
    state.sessions.answer(id, answer)
}

#[cfg(test)]
mod tests {
    //! The commands through Tauri's IPC layer on the mock runtime (no window):
    //! JSON in, JSON or a `{code, message, field}` error out.

    use serde_json::{Value, json};
    use tauri::test::{
        INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context, noop_assets,
    };
    use tauri::webview::InvokeRequest;

    use super::*;

    struct Harness {
        webview: tauri::WebviewWindow<MockRuntime>,
        _app: tauri::App<MockRuntime>,
        _dir: tempfile::TempDir,
    }

    fn harness() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let home = ClientHome::resolve(Some(dir.path().to_path_buf())).unwrap();
        let state =
            tauri::async_runtime::block_on(AppState::open_with(home, StoreChoice::File)).unwrap();
        let app = mock_builder()
            .manage(state)
            .invoke_handler(tauri::generate_handler![
                overview,
                host_save,
                host_duplicate,
                host_delete,
                host_forget_password,
                secrets_unlock,
                secrets_lock,
                folder_add,
                folder_delete,
                gateway_sign_in,
                gateway_sign_out,
                gateway_delete,
                session_keys,
                session_paste,
                session_close,
                prompt_answer,
                crate::desktop::rdp_input,
                crate::desktop::rdp_refresh,
                crate::desktop::rdp_resize,
                crate::desktop::rdp_clipboard,
                crate::desktop::rdp_sync_clipboard,
                crate::keys::keys_list,
                crate::keys::key_generate,
                crate::keys::key_import,
                crate::keys::key_delete,
            ])
            .build(mock_context(noop_assets()))
            .unwrap();
        let webview = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .unwrap();
        Harness {
            webview,
            _app: app,
            _dir: dir,
        }
    }

    fn call(harness: &Harness, cmd: &str, body: Value) -> Result<Value, Value> {
        get_ipc_response(
            &harness.webview,
            InvokeRequest {
                cmd: cmd.into(),
                callback: tauri::ipc::CallbackFn(0),
                error: tauri::ipc::CallbackFn(1),
                url: "tauri://localhost".parse().unwrap(),
                body: tauri::ipc::InvokeBody::Json(body),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
        .map(|b| b.deserialize::<Value>().unwrap())
    }

    fn draft(name: &str, port: u16) -> Value {
        json!({"draft": {
            "id": null, "name": name, "address": "10.0.0.5", "port": port, "protocol": "ssh",
            "route": {"via": "direct"}, "user": "admin", "auth": [], "credential_ref": null,
            "folder_id": null, "tags": ["prod"], "notes": "", "favourite": true
        }})
    }

    #[test]
    fn inventory_commands_round_trip_and_refuse_bad_input_with_field_errors() {
        let h = harness();
        let empty = call(&h, "overview", json!({})).unwrap();
        assert_eq!(empty["hosts"], json!([]));
        assert_eq!(empty["signed_in"], json!([]));

        let saved = call(&h, "host_save", draft("web1", 22)).unwrap();
        let id = saved["id"].as_i64().unwrap();
        assert_eq!(saved["tags"], json!(["prod"]));
        let copy = call(&h, "host_duplicate", json!({"id": id})).unwrap();
        assert_eq!(copy["name"], "web1 (copy)");

        let invalid = call(&h, "host_save", draft("  ", 22)).unwrap_err();
        assert_eq!(invalid["code"], "invalid");
        assert_eq!(invalid["field"], "name");
        // Port 0 is refused by the inventory, 70000 already by the IPC layer (u16).
        assert_eq!(
            call(&h, "host_save", draft("x", 0)).unwrap_err()["field"],
            "port"
        );
        assert!(call(&h, "host_save", json!({"draft": {"name": "x"}})).is_err());
        let mut big = draft("x", 22);
        big["draft"]["port"] = json!(70000);
        assert!(call(&h, "host_save", big).is_err());

        let folder = call(&h, "folder_add", json!({"name": "Racks", "parentId": null})).unwrap();
        assert_eq!(folder["name"], "Racks");
        let missing = call(&h, "host_delete", json!({"id": 999})).unwrap_err();
        assert_eq!(missing["code"], "not_found");
        call(&h, "host_delete", json!({"id": id})).unwrap();
        let after = call(&h, "overview", json!({})).unwrap();
        assert_eq!(after["hosts"].as_array().unwrap().len(), 1);
        assert_eq!(after["folders"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn session_and_prompt_commands_refuse_what_does_not_exist() {
        let h = harness();
        let keys = json!({"id": 42, "keys": [{"key": "enter", "mods": {}}], "appCursor": false});
        assert_eq!(
            call(&h, "session_keys", keys).unwrap_err()["code"],
            "no_session"
        );
        let too_many = json!({"id": 42, "keys": vec![json!({"key": "enter", "mods": {}}); MAX_KEYS + 1], "appCursor": false});
        assert_eq!(
            call(&h, "session_keys", too_many).unwrap_err()["field"],
            "keys"
        );
        let paste = json!({"id": 42, "text": "x".repeat(MAX_INPUT_BYTES + 1), "bracketed": true});
        assert_eq!(
            call(&h, "session_paste", paste).unwrap_err()["field"],
            "paste"
        );
        assert_eq!(
            call(&h, "session_close", json!({"id": 42})).unwrap(),
            Value::Null
        );
        let click =
            json!({"id": 42, "events": [{"kind": "mouse_button", "button": 0, "down": true}]});
        assert_eq!(
            call(&h, "rdp_input", click).unwrap_err()["code"],
            "no_session"
        );
        let flood = json!({"id": 42, "events": vec![json!({"kind": "release_all"}); crate::desktop::MAX_INPUT_EVENTS + 1]});
        assert_eq!(call(&h, "rdp_input", flood).unwrap_err()["code"], "invalid");
        let unknown = json!({"id": 42, "events": [{"kind": "format_disk"}]});
        assert!(call(&h, "rdp_input", unknown).is_err());
        for (command, args) in [
            ("rdp_refresh", json!({"id": 42})),
            (
                "rdp_resize",
                json!({"id": 42, "width": 1280, "height": 720}),
            ),
            ("rdp_clipboard", json!({"id": 42, "share": false})),
            ("rdp_sync_clipboard", json!({"id": 42})),
        ] {
            assert_eq!(
                call(&h, command, args).unwrap_err()["code"],
                "no_session",
                "{command}"
            );
        }
        // A size beyond any screen is refused before reaching a session.
        assert!(
            call(
                &h,
                "rdp_resize",
                json!({"id": 42, "width": 70000, "height": 720})
            )
            .is_err()
        );
        let answer = json!({"id": 7, "answer": {"kind": "secret", "value": "hunter2"}});
        let refused = call(&h, "prompt_answer", answer).unwrap_err();
        assert_eq!(refused["code"], "prompt_gone");
        assert!(
            !refused.to_string().contains("hunter2"),
            "a secret reached an error"
        );
        assert_eq!(
            call(&h, "gateway_delete", json!({"id": 5})).unwrap_err()["code"],
            "not_found"
        );
        let out = call(
            &h,
            "gateway_sign_out",
            json!({"url": "https://gw.example.com"}),
        );
        assert_eq!(out.unwrap_err()["code"], "not_signed_in");
        let sign_in =
            json!({"url": "ftp://nope", "user": "a", "password": "", "fingerprint": null});
        assert_eq!(
            call(&h, "gateway_sign_in", sign_in).unwrap_err()["field"],
            "password"
        );
    }

    #[test]
    fn the_encrypted_store_is_set_up_locked_and_unlocked_from_the_ui() {
        let h = harness();
        let overview = call(&h, "overview", json!({})).unwrap();
        assert_eq!(overview["secrets"]["kind"], "file");
        assert_eq!(overview["secrets"]["state"], "not_set_up");
        let short = call(&h, "secrets_unlock", json!({"master": "short"})).unwrap_err();
        assert_eq!(
            (short["code"].as_str(), short["field"].as_str()),
            (Some("invalid"), Some("master"))
        );
        let ready = call(&h, "secrets_unlock", json!({"master": "ui-master-1"})).unwrap();
        assert_eq!(ready["state"], "ready");
        assert_eq!(
            call(&h, "secrets_lock", json!({})).unwrap()["state"],
            "locked"
        );
        let wrong = call(&h, "secrets_unlock", json!({"master": "ui-master-2"})).unwrap_err();
        assert_eq!(wrong["field"], "master");
        assert_eq!(wrong["message"], "that master password is wrong");
        assert!(!wrong.to_string().contains("ui-master-2"));
        assert_eq!(
            call(&h, "secrets_unlock", json!({"master": "ui-master-1"})).unwrap()["state"],
            "ready"
        );
        // Forgetting a password the host never saved changes nothing.
        let saved = call(&h, "host_save", draft("web1", 22)).unwrap();
        let forgot = call(&h, "host_forget_password", json!({"id": saved["id"]})).unwrap();
        assert_eq!(forgot["credential_ref"], Value::Null);
    }

    #[test]
    fn keys_are_generated_imported_listed_and_forgotten_through_the_commands() {
        let h = harness();
        // No store open: no key is kept, and the UI is told to unlock.
        let locked = call(&h, "key_generate", json!({"name": "laptop"})).unwrap_err();
        assert_eq!(locked["code"], "secrets_locked");
        call(&h, "secrets_unlock", json!({"master": "ui-master-1"})).unwrap();
        let key = call(&h, "key_generate", json!({"name": "laptop"})).unwrap();
        assert_eq!(key["algorithm"], "ssh-ed25519");
        assert!(key["fingerprint"].as_str().unwrap().starts_with("SHA256:"));
        assert!(
            key.get("secret_ref").is_none(),
            "the store entry stays inside"
        );
        let listed = call(&h, "keys_list", json!({})).unwrap();
        assert_eq!(listed["keys"].as_array().unwrap().len(), 1);
        assert_eq!(listed["keys"][0]["public_key"], key["public_key"]);
        let empty = call(&h, "key_generate", json!({"name": " "})).unwrap_err();
        assert_eq!(empty["field"], "name");

        // An encrypted key: the passphrase is asked for, and a wrong one said so.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id_ed25519");
        let made = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "ui-passphrase", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(made.status.success());
        let import = |passphrase: Value| {
            call(
                &h,
                "key_import",
                json!({"name": "work", "path": path.to_str().unwrap(), "passphrase": passphrase}),
            )
        };
        assert_eq!(import(Value::Null).unwrap_err()["field"], "passphrase");
        let wrong = import(json!("nope")).unwrap_err();
        assert_eq!(wrong["message"], "wrong passphrase");
        assert!(!wrong.to_string().contains("nope"));
        let imported = import(json!("ui-passphrase")).unwrap();
        assert_eq!(imported["origin"], "imported");
        let missing = call(
            &h,
            "key_import",
            json!({"name": "x", "path": "/nonexistent/key", "passphrase": null}),
        )
        .unwrap_err();
        assert_eq!(missing["field"], "path");

        call(&h, "key_delete", json!({"id": key["id"]})).unwrap();
        let listed = call(&h, "keys_list", json!({})).unwrap();
        assert_eq!(listed["keys"].as_array().unwrap().len(), 1);
        assert_eq!(listed["keys"][0]["name"], "work");
    }
}
