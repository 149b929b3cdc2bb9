//! Where client state lives: `--home`, else `PORTCULLIS_HOME`, else
//! `$XDG_DATA_HOME/portcullis`, else `~/.local/share/portcullis`. The desktop app
//! uses the same folder.
//!
//! `gateways.json` holds signed-in gateways: URL, pinned certificate, user and
//! tokens. It is written atomically with mode 0600. When the client has an open
//! secret store (the desktop app), the long-lived refresh token goes there instead
//! and the file keeps only the short-lived access token.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use portcullis_proto::{CertFingerprint, Secret};

use crate::error::ClientError;

const STATE_FILE: &str = "gateways.json";
const MAX_STATE_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GatewayState {
    /// `https://host:port`, normalised.
    pub url: String,
    /// `None` when the certificate chains to a CA the system trusts.
    pub pin: Option<CertFingerprint>,
    pub user: String,
    pub access_token: Secret<String>,
    pub access_expires_at: u64,
    /// Empty when `refresh_in_store`.
    pub refresh_token: Secret<String>,
    pub refresh_expires_at: u64,
    /// The refresh token is in the secret store, under [`GatewayState::refresh_entry`].
    #[serde(default)]
    pub refresh_in_store: bool,
}

impl GatewayState {
    /// The secret store entry that holds this gateway's refresh token.
    pub fn refresh_entry(url: &str) -> String {
        format!("gateway-refresh/{url}")
    }
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ClientState {
    /// URL of the gateway used when none is named.
    pub default_gateway: Option<String>,
    pub gateways: Vec<GatewayState>,
}

#[derive(Debug, Clone)]
pub struct ClientHome {
    dir: PathBuf,
}

impl ClientHome {
    pub fn resolve(explicit: Option<PathBuf>) -> Result<ClientHome, ClientError> {
        let dir = explicit
            .or_else(|| std::env::var_os("PORTCULLIS_HOME").map(PathBuf::from))
            .or_else(|| {
                std::env::var_os("XDG_DATA_HOME")
                    .filter(|v| !v.is_empty())
                    .map(|d| PathBuf::from(d).join("portcullis"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/portcullis"))
            })
            .ok_or_else(|| ClientError::State {
                path: "(none)".into(),
                cause: "no HOME, XDG_DATA_HOME or PORTCULLIS_HOME: pass --home DIR".into(),
            })?;
        Ok(ClientHome { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    fn state_error(&self, cause: impl std::fmt::Display) -> ClientError {
        ClientError::State {
            path: self.state_path().display().to_string(),
            cause: cause.to_string(),
        }
    }

    pub fn load(&self) -> Result<ClientState, ClientError> {
        let path = self.state_path();
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ClientState::default()),
            Err(e) => return Err(self.state_error(e)),
        };
        if meta.len() > MAX_STATE_BYTES {
            return Err(self.state_error("file is too large to be client state"));
        }
        let bytes = std::fs::read(&path).map_err(|e| self.state_error(e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            self.state_error(format!("unreadable ({e}); move it away and sign in again"))
        })
    }

    pub fn save(&self, state: &ClientState) -> Result<(), ClientError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| self.state_error(e))?;
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| self.state_error(e))?;
        let mut suffix = [0u8; 6];
        getrandom::fill(&mut suffix).map_err(|e| self.state_error(e))?;
        let tmp = self.dir.join(format!(
            ".{STATE_FILE}.{}.tmp",
            suffix
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ));
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, self.state_path())
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.state_error(e)
        })
    }
}
