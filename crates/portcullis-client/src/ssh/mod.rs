//! SSH sessions with russh over any byte stream (a gateway tunnel, a jump host's
//! `direct-tcpip` channel, or plain TCP): host keys verified against OpenSSH's
//! `known_hosts` files and the app's own store, never accepted unconditionally;
//! authentication by agent, key file (passphrase asked through the [`Prompter`]),
//! password or keyboard-interactive, in the order the inventory entry gives.

mod hostkey;
mod keyfix;
mod keys;
mod shell;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use portcullis_proto::Secret;
use russh::keys::{PrivateKeyWithHashAlg, agent::AgentIdentity};
use russh::{ChannelMsg, client};
use tokio::io::{AsyncRead, AsyncWrite};

pub use hostkey::HostKeyTrust;
pub use keys::{Decoded, LoadedKey, MAX_KEY_FILE_BYTES, decode_key, decode_openssh, read_key_file};
pub use shell::{ExitInfo, PtyRequest, Shell, ShellEvent, ShellReader, ShellWriter};

use hostkey::Verifier;

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error(
        "the host key of {host} has CHANGED: {file} line {line} has {known}, the server presented {presented}. \
         This may be an attack. If the host was rebuilt, remove that line and connect again"
    )]
    HostKeyChanged {
        host: String,
        file: String,
        line: usize,
        known: String,
        presented: String,
    },
    #[error("the host key of {host} ({presented}) is revoked in {file} line {line}")]
    HostKeyRevoked {
        host: String,
        file: String,
        line: usize,
        presented: String,
    },
    #[error(
        "the host key of {host} is not known ({key_type} {presented}); verify it with the host's owner, then connect again accepting it (--accept-new)"
    )]
    HostKeyUnknown {
        host: String,
        key_type: String,
        presented: String,
    },
    #[error("the host certificate of {host} is not trusted: {reason}")]
    HostCertificate { host: String, reason: String },
    #[error("{user}@{host} was not accepted ({tried}); the server offers: {offered}")]
    AuthRejected {
        user: String,
        host: String,
        tried: String,
        offered: String,
    },
    #[error("cannot use the private key {path}: {cause}")]
    Key { path: String, cause: String },
    #[error("cannot use the SSH agent: {cause}")]
    Agent { cause: String },
    #[error("connection to {host} lost: {cause}")]
    ConnectionLost { host: String, cause: String },
    #[error("the server refused the request for {what} on {host}")]
    Refused { host: String, what: String },
    #[error("the app's host key store {path}: {cause}")]
    Store { path: String, cause: String },
}

/// The agent at `socket`, connected, and the keys it holds.
async fn open_agent(
    socket: &Path,
) -> Result<
    (
        russh::keys::agent::client::AgentClient<tokio::net::UnixStream>,
        Vec<AgentIdentity>,
    ),
    SshError,
> {
    use russh::keys::agent::client::AgentClient;
    let agent_error = |e: russh::keys::Error| SshError::Agent {
        cause: format!("{}: {e}", socket.display()),
    };
    let mut agent = AgentClient::connect_uds(socket)
        .await
        .map_err(agent_error)?;
    let identities = agent.request_identities().await.map_err(agent_error)?;
    Ok((agent, identities))
}

/// The keys an ssh-agent holds: algorithm, `SHA256:…` fingerprint and comment.
pub async fn agent_identities(socket: &Path) -> Result<Vec<(String, String, String)>, SshError> {
    let (_, identities) = open_agent(socket).await?;
    Ok(identities
        .into_iter()
        .filter_map(|identity| match identity {
            AgentIdentity::PublicKey { key, comment } => Some((
                key.algorithm().as_str().to_owned(),
                key.fingerprint(russh::keys::HashAlg::Sha256).to_string(),
                comment,
            )),
            _ => None,
        })
        .collect())
}

/// The host as the user named it (host keys are looked up under this name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
}

/// One way of proving who the user is, as an inventory entry lists them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum AuthMethod {
    /// The keys of the running ssh-agent (`SSH_AUTH_SOCK`).
    Agent,
    /// An OpenSSH private key file; its passphrase is asked when it has one.
    KeyFile {
        path: PathBuf,
    },
    Password,
    KeyboardInteractive,
    /// A key the app keeps (its private half in the secret store); the app
    /// loads it before connecting.
    AppKey {
        key_id: i64,
    },
    /// An app key with a short-lived certificate the gateway's SSH CA signs for
    /// it at connect time (gateway routes only).
    GatewayCertificate {
        key_id: i64,
    },
    /// The host's credential from the gateway's vault, released for the one
    /// session (gateway routes only; the help-desk case).
    FromGateway,
    /// A key already in memory (from a gateway's vault or the app's store),
    /// with a certificate when one came with it. Never stored or serialized.
    #[serde(skip)]
    Loaded {
        key: LoadedKey,
    },
}

impl AuthMethod {
    fn server_name(&self) -> &'static str {
        match self {
            AuthMethod::Agent
            | AuthMethod::KeyFile { .. }
            | AuthMethod::Loaded { .. }
            | AuthMethod::AppKey { .. }
            | AuthMethod::GatewayCertificate { .. }
            | AuthMethod::FromGateway => "publickey",
            AuthMethod::Password => "password",
            AuthMethod::KeyboardInteractive => "keyboard-interactive",
        }
    }

    fn describe(&self) -> String {
        match self {
            AuthMethod::Agent => "agent keys".into(),
            AuthMethod::KeyFile { path } => format!("key {}", path.display()),
            AuthMethod::Password => "password".into(),
            AuthMethod::KeyboardInteractive => "keyboard-interactive".into(),
            AuthMethod::Loaded { key } if key.certificate().is_some() => {
                format!("certificate for {}", key.label)
            }
            AuthMethod::Loaded { key } => key.label.clone(),
            AuthMethod::AppKey { key_id } => format!("app key #{key_id}"),
            AuthMethod::GatewayCertificate { key_id } => {
                format!("gateway certificate for app key #{key_id}")
            }
            AuthMethod::FromGateway => "the gateway's credential".into(),
        }
    }
}

/// Who to log in as and how, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshAuth {
    pub user: String,
    pub methods: Vec<AuthMethod>,
    /// The agent's socket; `None` means `SSH_AUTH_SOCK`.
    pub agent_socket: Option<PathBuf>,
}

/// A host key nobody has vouched for yet, shown to the user as OpenSSH shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnknownHostKey {
    pub host: String,
    pub port: u16,
    pub key_type: String,
    /// `SHA256:…`
    pub fingerprint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKeyDecision {
    Reject,
    /// Trust for this connection only.
    AcceptOnce,
    /// Trust and record in the app's store.
    AcceptAndRemember,
}

/// A keyboard-interactive round from the server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InteractiveRequest {
    pub user: String,
    pub host: String,
    pub name: String,
    pub instructions: String,
    /// Each prompt and whether the answer may be echoed.
    pub prompts: Vec<(String, bool)>,
}

/// Questions a session asks the person while connecting. `None` means cancelled.
/// Answers are secrets: implementations never log them.
pub trait Prompter: Send + Sync {
    fn unknown_host_key<'a>(&'a self, key: &'a UnknownHostKey) -> BoxFuture<'a, HostKeyDecision>;
    fn passphrase<'a>(&'a self, key_file: &'a Path) -> BoxFuture<'a, Option<Secret<String>>>;
    fn password<'a>(
        &'a self,
        user: &'a str,
        host: &'a str,
    ) -> BoxFuture<'a, Option<Secret<String>>>;
    fn keyboard_interactive<'a>(
        &'a self,
        request: &'a InteractiveRequest,
    ) -> BoxFuture<'a, Option<Vec<Secret<String>>>>;
}

/// Fixed answers, for non-interactive use (scripts, tests): unknown host keys are
/// refused unless `accept_new`; a password (if any) answers password prompts and
/// every keyboard-interactive prompt that does not echo.
#[derive(Debug, Default, Clone)]
pub struct FixedAnswers {
    pub accept_new: bool,
    pub password: Option<Secret<String>>,
    pub passphrase: Option<Secret<String>>,
}

impl Prompter for FixedAnswers {
    fn unknown_host_key<'a>(&'a self, _: &'a UnknownHostKey) -> BoxFuture<'a, HostKeyDecision> {
        let decision = if self.accept_new {
            HostKeyDecision::AcceptAndRemember
        } else {
            HostKeyDecision::Reject
        };
        Box::pin(async move { decision })
    }

    fn passphrase<'a>(&'a self, _: &'a Path) -> BoxFuture<'a, Option<Secret<String>>> {
        Box::pin(async move { self.passphrase.clone() })
    }

    fn password<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Option<Secret<String>>> {
        Box::pin(async move { self.password.clone() })
    }

    fn keyboard_interactive<'a>(
        &'a self,
        request: &'a InteractiveRequest,
    ) -> BoxFuture<'a, Option<Vec<Secret<String>>>> {
        Box::pin(async move {
            let password = self.password.as_ref()?;
            request
                .prompts
                .iter()
                .map(|(_, echo)| (!echo).then(|| password.clone()))
                .collect()
        })
    }
}

/// Password attempts per connection, as OpenSSH asks (NumberOfPasswordPrompts).
const PASSWORD_ATTEMPTS: usize = 3;
/// Keyboard-interactive rounds before giving up on a server that keeps asking.
const MAX_INTERACTIVE_ROUNDS: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    pub exit_status: Option<u32>,
    pub exit_signal: Option<String>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Connection options that are not about who or where.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// A keepalive is sent after this much silence from the server…
    pub keepalive_interval: Duration,
    /// …and the connection counts as lost after this many unanswered.
    pub keepalive_max: usize,
}

impl Default for SshOptions {
    fn default() -> SshOptions {
        SshOptions {
            keepalive_interval: Duration::from_secs(15),
            keepalive_max: 3,
        }
    }
}

/// An authenticated SSH connection.
pub struct SshSession {
    handle: client::Handle<Verifier>,
    target: SshTarget,
    disconnect: Arc<Mutex<Option<String>>>,
}

impl SshSession {
    /// Key exchange, host key check, then the auth methods in order.
    pub async fn connect<S>(
        stream: S,
        target: SshTarget,
        auth: &SshAuth,
        trust: HostKeyTrust,
        prompter: Arc<dyn Prompter>,
        options: &SshOptions,
    ) -> Result<SshSession, SshError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut preferred = russh::Preferred::default();
        if trust.has_cert_authority(&target.host, target.port) {
            use russh::keys::Algorithm;
            preferred.host_key_certificates = std::borrow::Cow::Owned(vec![
                Algorithm::Ed25519,
                Algorithm::Ecdsa {
                    curve: russh::keys::EcdsaCurve::NistP256,
                },
                Algorithm::Rsa {
                    hash: Some(russh::keys::HashAlg::Sha512),
                },
            ]);
        }
        let config = Arc::new(client::Config {
            keepalive_interval: Some(options.keepalive_interval),
            keepalive_max: options.keepalive_max,
            preferred,
            ..Default::default()
        });
        let refusal = Arc::new(Mutex::new(None));
        let disconnect = Arc::new(Mutex::new(None));
        let verifier = Verifier {
            target: target.clone(),
            trust,
            prompter: Arc::clone(&prompter),
            refusal: Arc::clone(&refusal),
            disconnect: Arc::clone(&disconnect),
        };
        let handle =
            match client::connect_stream(config, stream, verifier).await {
                Ok(handle) => handle,
                Err(e) => {
                    return Err(refusal.lock().expect("refusal lock").take().unwrap_or_else(
                        || SshError::ConnectionLost {
                            host: target.host.clone(),
                            cause: e.to_string(),
                        },
                    ));
                }
            };
        let mut session = SshSession {
            handle,
            target,
            disconnect,
        };
        session.authenticate(auth, prompter.as_ref()).await?;
        Ok(session)
    }

    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    fn lost(&self, e: impl std::fmt::Display) -> SshError {
        let cause = self
            .disconnect
            .lock()
            .expect("disconnect lock")
            .clone()
            .unwrap_or_else(|| e.to_string());
        SshError::ConnectionLost {
            host: self.target.host.clone(),
            cause,
        }
    }

    /// The RSA signature hash the server accepts (SHA-2 when it says so).
    async fn rsa_hash(&self) -> Result<Option<russh::keys::HashAlg>, SshError> {
        Ok(self
            .handle
            .best_supported_rsa_hash()
            .await
            .map_err(|e| self.lost(e))?
            .flatten())
    }

    async fn authenticate(
        &mut self,
        auth: &SshAuth,
        prompter: &dyn Prompter,
    ) -> Result<(), SshError> {
        // "none" first, as OpenSSH does: it tells which methods the server offers.
        let mut offered = match self
            .handle
            .authenticate_none(auth.user.clone())
            .await
            .map_err(|e| self.lost(e))?
        {
            client::AuthResult::Success => return Ok(()),
            client::AuthResult::Failure {
                remaining_methods, ..
            } => method_names(&remaining_methods),
        };
        let mut tried: Vec<String> = Vec::new();
        for method in &auth.methods {
            if !offered.iter().any(|m| m == method.server_name()) {
                tried.push(format!("{}: not offered", method.describe()));
                continue;
            }
            let outcome = match method {
                AuthMethod::Agent => self.try_agent(auth).await,
                AuthMethod::KeyFile { path } => self.try_key_file(auth, path, prompter).await,
                AuthMethod::Password => self.try_password(auth, prompter).await,
                AuthMethod::KeyboardInteractive => self.try_interactive(auth, prompter).await,
                AuthMethod::Loaded { key } => self.try_loaded(auth, key).await,
                // The app turns these into loaded keys (or a password) first.
                AuthMethod::AppKey { .. }
                | AuthMethod::GatewayCertificate { .. }
                | AuthMethod::FromGateway => Ok(Attempt::Skipped(
                    "not loaded: the app resolves it before connecting".into(),
                )),
            };
            match outcome? {
                Attempt::Accepted => return Ok(()),
                Attempt::Rejected(Some(remaining)) => {
                    offered = remaining;
                    tried.push(format!("{}: rejected", method.describe()));
                }
                Attempt::Rejected(None) => tried.push(format!("{}: rejected", method.describe())),
                Attempt::Skipped(why) => tried.push(format!("{}: {why}", method.describe())),
            }
        }
        Err(SshError::AuthRejected {
            user: auth.user.clone(),
            host: self.target.host.clone(),
            tried: if tried.is_empty() {
                "no method configured".into()
            } else {
                tried.join("; ")
            },
            offered: if offered.is_empty() {
                "nothing more".into()
            } else {
                offered.join(", ")
            },
        })
    }

    async fn try_agent(&mut self, auth: &SshAuth) -> Result<Attempt, SshError> {
        let socket = match &auth.agent_socket {
            Some(path) => path.clone(),
            None => match std::env::var_os("SSH_AUTH_SOCK") {
                Some(path) => PathBuf::from(path),
                None => {
                    return Ok(Attempt::Skipped(
                        "no agent (SSH_AUTH_SOCK is not set)".into(),
                    ));
                }
            },
        };
        let (mut agent, identities) = open_agent(&socket).await?;
        if identities.is_empty() {
            return Ok(Attempt::Skipped("the agent holds no keys".into()));
        }
        let hash = self.rsa_hash().await?;
        let mut remaining = None;
        for identity in identities {
            let AgentIdentity::PublicKey { key, .. } = identity else {
                continue;
            };
            match self
                .handle
                .authenticate_publickey_with(auth.user.clone(), key, hash, &mut agent)
                .await
            {
                Ok(client::AuthResult::Success) => return Ok(Attempt::Accepted),
                Ok(client::AuthResult::Failure {
                    remaining_methods, ..
                }) => remaining = Some(method_names(&remaining_methods)),
                Err(e) => {
                    return Err(SshError::Agent {
                        cause: e.to_string(),
                    });
                }
            }
        }
        Ok(Attempt::Rejected(remaining))
    }

    async fn try_key_file(
        &mut self,
        auth: &SshAuth,
        path: &Path,
        prompter: &dyn Prompter,
    ) -> Result<Attempt, SshError> {
        let text = read_key_file(path)?;
        let Some(key) = decode_key(&text, path, prompter).await? else {
            return Ok(Attempt::Skipped("passphrase not given".into()));
        };
        let hash = self.rsa_hash().await?;
        let result = self
            .handle
            .authenticate_publickey(
                auth.user.clone(),
                PrivateKeyWithHashAlg::new(Arc::new(key), hash),
            )
            .await
            .map_err(|e| self.lost(e))?;
        Ok(Attempt::from(result))
    }

    /// A key in memory; with its certificate when it has one.
    async fn try_loaded(&mut self, auth: &SshAuth, key: &LoadedKey) -> Result<Attempt, SshError> {
        let result = match key.certificate() {
            Some(certificate) => self
                .handle
                .authenticate_openssh_cert(
                    auth.user.clone(),
                    std::sync::Arc::clone(key.private_key()),
                    certificate.clone(),
                )
                .await
                .map_err(|e| self.lost(e))?,
            None => {
                let hash = self.rsa_hash().await?;
                self.handle
                    .authenticate_publickey(
                        auth.user.clone(),
                        PrivateKeyWithHashAlg::new(std::sync::Arc::clone(key.private_key()), hash),
                    )
                    .await
                    .map_err(|e| self.lost(e))?
            }
        };
        Ok(Attempt::from(result))
    }

    /// Up to three passwords, as OpenSSH asks (a saved one first, then the person).
    async fn try_password(
        &mut self,
        auth: &SshAuth,
        prompter: &dyn Prompter,
    ) -> Result<Attempt, SshError> {
        let mut outcome = Attempt::Skipped("password not given".into());
        for _ in 0..PASSWORD_ATTEMPTS {
            let Some(password) = prompter.password(&auth.user, &self.target.host).await else {
                return Ok(outcome);
            };
            // russh takes the password as a plain String it does not zeroize; this
            // copy lives only for the call, the Secret zeroizes ours.
            let result = self
                .handle
                .authenticate_password(auth.user.clone(), password.expose().clone())
                .await
                .map_err(|e| self.lost(e))?;
            outcome = Attempt::from(result);
            match &outcome {
                Attempt::Rejected(Some(remaining)) if remaining.iter().any(|m| m == "password") => {
                }
                _ => return Ok(outcome),
            }
        }
        Ok(outcome)
    }

    async fn try_interactive(
        &mut self,
        auth: &SshAuth,
        prompter: &dyn Prompter,
    ) -> Result<Attempt, SshError> {
        use russh::client::KeyboardInteractiveAuthResponse as Response;
        let mut response = self
            .handle
            .authenticate_keyboard_interactive_start(auth.user.clone(), None)
            .await
            .map_err(|e| self.lost(e))?;
        for _ in 0..MAX_INTERACTIVE_ROUNDS {
            match response {
                Response::Success => return Ok(Attempt::Accepted),
                Response::Failure {
                    remaining_methods, ..
                } => return Ok(Attempt::Rejected(Some(method_names(&remaining_methods)))),
                Response::InfoRequest {
                    name,
                    instructions,
                    prompts,
                } => {
                    let answers = if prompts.is_empty() {
                        Vec::new()
                    } else {
                        let request = InteractiveRequest {
                            user: auth.user.clone(),
                            host: self.target.host.clone(),
                            name,
                            instructions,
                            prompts: prompts.into_iter().map(|p| (p.prompt, p.echo)).collect(),
                        };
                        match prompter.keyboard_interactive(&request).await {
                            Some(answers) if answers.len() == request.prompts.len() => answers,
                            _ => return Ok(Attempt::Skipped("prompt not answered".into())),
                        }
                    };
                    response = self
                        .handle
                        .authenticate_keyboard_interactive_respond(
                            answers.iter().map(|a| a.expose().clone()).collect(),
                        )
                        .await
                        .map_err(|e| self.lost(e))?;
                }
            }
        }
        Ok(Attempt::Skipped("the server kept asking".into()))
    }

    /// Runs one command without a PTY and collects its output and exit status.
    pub async fn exec(&self, command: &str) -> Result<ExecOutcome, SshError> {
        let mut channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| self.lost(e))?;
        channel
            .exec(true, command)
            .await
            .map_err(|e| self.lost(e))?;
        let mut outcome = ExecOutcome {
            exit_status: None,
            exit_signal: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        while let Some(message) = channel.wait().await {
            match message {
                ChannelMsg::Data { data } => outcome.stdout.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, ext: 1 } => {
                    outcome.stderr.extend_from_slice(&data)
                }
                ChannelMsg::ExitStatus { exit_status } => outcome.exit_status = Some(exit_status),
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    outcome.exit_signal = Some(shell::signal_name(&signal_name))
                }
                _ => {}
            }
        }
        if outcome.exit_status.is_none() && outcome.exit_signal.is_none() {
            return Err(self.lost("the connection closed before the command finished"));
        }
        Ok(outcome)
    }

    /// A session channel with a PTY (when asked) running the login shell, or
    /// `command` when given; bytes and events flow through the returned halves.
    pub async fn open_shell(
        &self,
        pty: Option<&PtyRequest>,
        command: Option<&str>,
    ) -> Result<Shell, SshError> {
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| self.lost(e))?;
        if let Some(pty) = pty {
            for (name, value) in &pty.env {
                // Servers refuse variables outside AcceptEnv; that is their call.
                let _ = channel.set_env(false, name.clone(), value.clone()).await;
            }
            channel
                .request_pty(
                    true,
                    &pty.term,
                    u32::from(pty.cols),
                    u32::from(pty.rows),
                    0,
                    0,
                    &[],
                )
                .await
                .map_err(|e| self.lost(e))?;
        }
        match command {
            Some(command) => channel.exec(true, command).await,
            None => channel.request_shell(true).await,
        }
        .map_err(|e| self.lost(e))?;
        Ok(Shell::new(
            channel,
            self.target.host.clone(),
            Arc::clone(&self.disconnect),
        ))
    }

    /// A TCP connection from the server to `host:port` (what `ssh -J` uses).
    pub async fn direct_tcpip(
        &self,
        host: &str,
        port: u16,
    ) -> Result<russh::ChannelStream<client::Msg>, SshError> {
        let channel = self
            .handle
            .channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0)
            .await
            .map_err(|e| match e {
                russh::Error::ChannelOpenFailure(reason) => SshError::Refused {
                    host: self.target.host.clone(),
                    what: format!("a connection to {host}:{port} ({reason:?})"),
                },
                other => self.lost(other),
            })?;
        Ok(channel.into_stream())
    }

    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

enum Attempt {
    Accepted,
    /// With the methods the server still offers, when it said.
    Rejected(Option<Vec<String>>),
    Skipped(String),
}

impl From<client::AuthResult> for Attempt {
    fn from(result: client::AuthResult) -> Attempt {
        match result {
            client::AuthResult::Success => Attempt::Accepted,
            client::AuthResult::Failure {
                remaining_methods, ..
            } => Attempt::Rejected(Some(method_names(&remaining_methods))),
        }
    }
}

fn method_names(methods: &russh::MethodSet) -> Vec<String> {
    methods.iter().map(|m| <&str>::from(m).to_owned()).collect()
}
