//! Host key verification: OpenSSH's `known_hosts` files and the app's own store,
//! `@cert-authority` host certificates, and a trust-on-first-use decision asked
//! through the [`Prompter`]. A key is never accepted unconditionally.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use russh::keys::{Certificate, PublicKey, PublicKeyOrCertificate};

use super::{HostKeyDecision, Prompter, SshError, SshTarget, UnknownHostKey};
use crate::known_hosts::{self, KnownHosts, Verdict};

/// Where host keys are trusted from.
#[derive(Debug, Clone)]
pub struct HostKeyTrust {
    /// OpenSSH files read (never written), e.g. `~/.ssh/known_hosts`.
    pub openssh_files: Vec<PathBuf>,
    /// The app's own store (OpenSSH format), where "always trust" answers are added.
    pub app_store: PathBuf,
}

impl HostKeyTrust {
    /// The user's `~/.ssh/known_hosts` (when `HOME` is set) and the app store.
    pub fn standard(app_store: PathBuf) -> HostKeyTrust {
        let openssh_files = std::env::var_os("HOME")
            .map(|home| vec![PathBuf::from(home).join(".ssh/known_hosts")])
            .unwrap_or_default();
        HostKeyTrust {
            openssh_files,
            app_store,
        }
    }

    fn files(&self) -> impl Iterator<Item = &Path> {
        self.openssh_files
            .iter()
            .map(PathBuf::as_path)
            .chain(std::iter::once(self.app_store.as_path()))
    }

    /// Whether some file has an `@cert-authority` line for this host: only then is
    /// the server asked for a host certificate (as OpenSSH does).
    pub fn has_cert_authority(&self, host: &str, port: u16) -> bool {
        self.read()
            .iter()
            .any(|(_, parsed)| !parsed.cert_authorities(host, port).is_empty())
    }

    /// Every file that exists, parsed, with the name to show in errors.
    fn read(&self) -> Vec<(String, KnownHosts)> {
        self.files()
            .filter_map(|file| {
                let text = read_bounded(file)?;
                Some((file.display().to_string(), KnownHosts::parse(&text)))
            })
            .collect()
    }
}

/// known_hosts files are read whole; a runaway file is not a reason to eat memory.
const MAX_KNOWN_HOSTS_BYTES: u64 = 16 * 1024 * 1024;

fn read_bounded(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > MAX_KNOWN_HOSTS_BYTES {
        tracing::warn!(file = %path.display(), "known_hosts file too large, ignored");
        return None;
    }
    std::fs::read_to_string(path).ok()
}

pub(super) struct Verifier {
    pub(super) target: SshTarget,
    pub(super) trust: HostKeyTrust,
    pub(super) prompter: Arc<dyn Prompter>,
    /// Why the key was refused, for the error the caller sees.
    pub(super) refusal: Arc<Mutex<Option<SshError>>>,
    /// Why the connection ended, when russh reports it.
    pub(super) disconnect: Arc<Mutex<Option<String>>>,
}

impl Verifier {
    async fn decide(&self, key: &PublicKeyOrCertificate) -> Result<(), SshError> {
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(cert) => return self.decide_certificate(cert),
        };
        let blob = key_blob(key, &self.target)?;
        let key_type = key.algorithm().as_str().to_owned();
        let presented = known_hosts::fingerprint(&blob);
        let mut known_anywhere = false;
        for (file, parsed) in self.trust.read() {
            match parsed.check(&self.target.host, self.target.port, &key_type, &blob) {
                Verdict::Revoked { line } => {
                    return Err(SshError::HostKeyRevoked {
                        host: self.target.host.clone(),
                        file,
                        line,
                        presented,
                    });
                }
                Verdict::Changed { line, known } => {
                    return Err(SshError::HostKeyChanged {
                        host: self.target.host.clone(),
                        file,
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
        let question = UnknownHostKey {
            host: self.target.host.clone(),
            port: self.target.port,
            key_type: key_type.clone(),
            fingerprint: presented.clone(),
        };
        match self.prompter.unknown_host_key(&question).await {
            HostKeyDecision::Reject => Err(SshError::HostKeyUnknown {
                host: self.target.host.clone(),
                key_type,
                presented,
            }),
            HostKeyDecision::AcceptOnce => Ok(()),
            HostKeyDecision::AcceptAndRemember => self.record(&key_type, &blob),
        }
    }

    /// A host certificate is trusted when a `@cert-authority` line for this host
    /// names its signer, its signature and validity hold now, it is a host
    /// certificate, and the name the user gave is one of its principals.
    fn decide_certificate(&self, cert: &Certificate) -> Result<(), SshError> {
        let refuse = |reason: String| SshError::HostCertificate {
            host: self.target.host.clone(),
            reason,
        };
        use russh::keys::ssh_encoding::Encode;
        let ca_blob = cert
            .signature_key()
            .encode_vec()
            .map_err(|e| refuse(format!("unreadable signing key: {e}")))?;
        let ca_fingerprint = known_hosts::fingerprint(&ca_blob);
        let files = self.trust.read();
        if let Some((file, line)) = files.iter().find_map(|(file, parsed)| {
            parsed
                .entries
                .iter()
                .find(|e| e.marker == known_hosts::Marker::Revoked && e.key == ca_blob)
                .map(|e| (file.clone(), e.line))
        }) {
            return Err(SshError::HostKeyRevoked {
                host: self.target.host.clone(),
                file,
                line,
                presented: ca_fingerprint,
            });
        }
        let trusted_ca = files.iter().any(|(_, parsed)| {
            parsed
                .cert_authorities(&self.target.host, self.target.port)
                .iter()
                .any(|e| e.key == ca_blob)
        });
        if !trusted_ca {
            return Err(refuse(format!(
                "it is signed by {ca_fingerprint}, which no @cert-authority line trusts for this host"
            )));
        }
        if cert.cert_type() != russh::keys::ssh_key::certificate::CertType::Host {
            return Err(refuse(
                "it is a user certificate, not a host certificate".into(),
            ));
        }
        let ca_fp = cert.signature_key().fingerprint(Default::default());
        cert.validate([&ca_fp])
            .map_err(|e| refuse(format!("it does not validate now: {e}")))?;
        if !cert
            .valid_principals()
            .iter()
            .any(|p| p == &self.target.host)
        {
            return Err(refuse(format!(
                "it is not issued for the name {:?} (principals: {})",
                self.target.host,
                cert.valid_principals().join(", ")
            )));
        }
        Ok(())
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

fn key_blob(key: &PublicKey, target: &SshTarget) -> Result<Vec<u8>, SshError> {
    key.to_bytes().map_err(|e| SshError::ConnectionLost {
        host: target.host.clone(),
        cause: format!("unreadable host key: {e}"),
    })
}

impl russh::client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        match self.decide(key).await {
            Ok(()) => Ok(true),
            Err(e) => {
                *self.refusal.lock().expect("refusal lock") = Some(e);
                Ok(false)
            }
        }
    }

    async fn disconnected(
        &mut self,
        reason: russh::client::DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        let cause = match &reason {
            russh::client::DisconnectReason::ReceivedDisconnect(info) => {
                format!(
                    "the server disconnected: {} ({:?})",
                    info.message, info.reason_code
                )
            }
            russh::client::DisconnectReason::Error(e) => e.to_string(),
        };
        self.disconnect
            .lock()
            .expect("disconnect lock")
            .get_or_insert(cause);
        match reason {
            russh::client::DisconnectReason::ReceivedDisconnect(_) => Ok(()),
            russh::client::DisconnectReason::Error(e) => Err(e),
        }
    }
}
