//! SSH sessions with russh over any byte stream (a gateway tunnel, a jump host's
//! `direct-tcpip` channel, or plain TCP): host keys verified against OpenSSH's
//! `known_hosts` files and the app's own store, never accepted unconditionally.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::{PrivateKeyWithHashAlg, PublicKey};
use russh::{ChannelMsg, client};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::known_hosts::{self, KnownHosts, Verdict};

/// Where host keys are trusted from, and what to do with an unknown one.
#[derive(Debug, Clone)]
pub struct HostKeyTrust {
    /// OpenSSH files read (never written), e.g. `~/.ssh/known_hosts`.
    pub openssh_files: Vec<PathBuf>,
    /// The app's own store (OpenSSH format), where accepted keys are added.
    pub app_store: PathBuf,
    /// Trust an unknown key on first use and record it in the app store.
    pub accept_new: bool,
}

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
    #[error("{user}@{host} was not accepted with the offered key; the server offers: {offered}")]
    AuthRejected {
        user: String,
        host: String,
        offered: String,
    },
    #[error("cannot read the private key {path}: {cause}")]
    Key { path: String, cause: String },
    #[error("connection to {host} lost: {cause}")]
    ConnectionLost { host: String, cause: String },
    #[error("the app's host key store {path}: {cause}")]
    Store { path: String, cause: String },
}

/// The host as the user named it (host keys are looked up under this name).
#[derive(Debug, Clone)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    pub exit_status: Option<u32>,
    pub exit_signal: Option<String>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

struct Verifier {
    target: SshTarget,
    trust: HostKeyTrust,
    refusal: Arc<Mutex<Option<SshError>>>,
}

impl Verifier {
    fn decide(&self, key: &PublicKey) -> Result<(), SshError> {
        let blob = key.to_bytes().map_err(|e| SshError::ConnectionLost {
            host: self.target.host.clone(),
            cause: format!("unreadable host key: {e}"),
        })?;
        let key_type = key.algorithm().as_str().to_owned();
        let presented = known_hosts::fingerprint(&blob);
        let mut files: Vec<&Path> = self
            .trust
            .openssh_files
            .iter()
            .map(PathBuf::as_path)
            .collect();
        files.push(&self.trust.app_store);
        let mut known_anywhere = false;
        for file in files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            let shown = file.display().to_string();
            match KnownHosts::parse(&text).check(
                &self.target.host,
                self.target.port,
                &key_type,
                &blob,
            ) {
                Verdict::Revoked { line } => {
                    return Err(SshError::HostKeyRevoked {
                        host: self.target.host.clone(),
                        file: shown,
                        line,
                        presented,
                    });
                }
                Verdict::Changed { line, known } => {
                    return Err(SshError::HostKeyChanged {
                        host: self.target.host.clone(),
                        file: shown,
                        line,
                        known,
                        presented,
                    });
                }
                Verdict::Trusted { .. } => known_anywhere = true,
                Verdict::Unknown => {}
            }
        }
        if known_anywhere {
            return Ok(());
        }
        if !self.trust.accept_new {
            return Err(SshError::HostKeyUnknown {
                host: self.target.host.clone(),
                key_type,
                presented,
            });
        }
        self.record(&key_type, &blob)
    }

    fn record(&self, key_type: &str, blob: &[u8]) -> Result<(), SshError> {
        use base64::Engine;
        use std::io::Write;
        let path = &self.trust.app_store;
        let error = |e: std::io::Error| SshError::Store {
            path: path.display().to_string(),
            cause: e.to_string(),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(error)?;
        }
        let line = format!(
            "{} {key_type} {}\n",
            known_hosts::host_key_name(&self.target.host, self.target.port),
            base64::engine::general_purpose::STANDARD.encode(blob)
        );
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(error)?;
        file.write_all(line.as_bytes()).map_err(error)
    }
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            // Host certificates are checked against @cert-authority lines by a later
            // step; until then they are refused rather than trusted blindly.
            russh::keys::PublicKeyOrCertificate::Certificate(_) => {
                *self.refusal.lock().expect("refusal lock") = Some(SshError::HostKeyUnknown {
                    host: self.target.host.clone(),
                    key_type: "certificate".into(),
                    presented: "(host certificates are not supported yet)".into(),
                });
                return Ok(false);
            }
        };
        match self.decide(&key) {
            Ok(()) => Ok(true),
            Err(e) => {
                *self.refusal.lock().expect("refusal lock") = Some(e);
                Ok(false)
            }
        }
    }
}

/// An authenticated SSH connection.
pub struct SshSession {
    handle: client::Handle<Verifier>,
    target: SshTarget,
}

impl SshSession {
    /// Key exchange, host key check, then public-key authentication with a key file.
    pub async fn connect<S>(
        stream: S,
        target: SshTarget,
        trust: HostKeyTrust,
        key_file: &Path,
        passphrase: Option<&str>,
    ) -> Result<SshSession, SshError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let key =
            russh::keys::load_secret_key(key_file, passphrase).map_err(|e| SshError::Key {
                path: key_file.display().to_string(),
                cause: e.to_string(),
            })?;
        let config = Arc::new(client::Config {
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_max: 3,
            ..Default::default()
        });
        let refusal = Arc::new(Mutex::new(None));
        let verifier = Verifier {
            target: target.clone(),
            trust,
            refusal: Arc::clone(&refusal),
        };
        let lost = |e: russh::Error| SshError::ConnectionLost {
            host: target.host.clone(),
            cause: e.to_string(),
        };
        let mut handle = match client::connect_stream(config, stream, verifier).await {
            Ok(handle) => handle,
            Err(e) => {
                return Err(refusal
                    .lock()
                    .expect("refusal lock")
                    .take()
                    .unwrap_or_else(|| lost(e)));
            }
        };
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .map_err(lost)?
            .flatten();
        let result = handle
            .authenticate_publickey(
                target.user.clone(),
                PrivateKeyWithHashAlg::new(Arc::new(key), hash),
            )
            .await
            .map_err(lost)?;
        if let client::AuthResult::Failure {
            remaining_methods, ..
        } = result
        {
            let offered: Vec<&str> = remaining_methods.iter().map(<&str>::from).collect();
            return Err(SshError::AuthRejected {
                user: target.user.clone(),
                host: target.host.clone(),
                offered: if offered.is_empty() {
                    "nothing more".into()
                } else {
                    offered.join(", ")
                },
            });
        }
        Ok(SshSession { handle, target })
    }

    /// Runs one command without a PTY and collects its output and exit status.
    pub async fn exec(&self, command: &str) -> Result<ExecOutcome, SshError> {
        let lost = |e: russh::Error| SshError::ConnectionLost {
            host: self.target.host.clone(),
            cause: e.to_string(),
        };
        let mut channel = self.handle.channel_open_session().await.map_err(lost)?;
        channel.exec(true, command).await.map_err(lost)?;
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
                    outcome.exit_signal = Some(format!("{signal_name:?}"))
                }
                _ => {}
            }
        }
        if outcome.exit_status.is_none() && outcome.exit_signal.is_none() && self.handle.is_closed()
        {
            return Err(SshError::ConnectionLost {
                host: self.target.host.clone(),
                cause: "the connection closed before the command finished".into(),
            });
        }
        Ok(outcome)
    }

    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}
