//! Trusting an RDP server's TLS certificate: by a CA the system trusts for the
//! name, or by a SHA-256 fingerprint pinned on first use, like an SSH host key.
//! A pinned certificate that changes is refused, naming both fingerprints and
//! the line of the store to remove.
//!
//! The store (`<home>/rdp_certificates`) has one line per server:
//! `HOST PORT FINGERPRINT` (64 hex digits); `#` starts a comment.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use portcullis_proto::CertFingerprint;

/// Longest store read; thousands of servers fit in far less.
const MAX_STORE_BYTES: u64 = 4 * 1024 * 1024;

/// What the store says about a server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertVerdict {
    Trusted,
    Unknown,
    Changed {
        pinned: CertFingerprint,
        /// `file:line` of the pin.
        location: String,
    },
}

/// The file of pinned RDP server certificates.
#[derive(Debug, Clone)]
pub struct CertStore {
    path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedCert {
    pub host: String,
    pub port: u16,
    pub fingerprint: CertFingerprint,
    pub line: usize,
}

impl CertStore {
    pub fn new(path: PathBuf) -> CertStore {
        CertStore { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every well-formed pin; malformed lines are skipped (and logged).
    pub fn entries(&self) -> Vec<PinnedCert> {
        let Some(text) = read_bounded(&self.path) else {
            return Vec::new();
        };
        parse(&text, &self.path)
    }

    pub fn check(&self, host: &str, port: u16, presented: &CertFingerprint) -> CertVerdict {
        let pins: Vec<PinnedCert> = self
            .entries()
            .into_iter()
            .filter(|pin| pin.host.eq_ignore_ascii_case(host) && pin.port == port)
            .collect();
        if pins.is_empty() {
            return CertVerdict::Unknown;
        }
        if pins.iter().any(|pin| pin.fingerprint == *presented) {
            return CertVerdict::Trusted;
        }
        let first = &pins[0];
        CertVerdict::Changed {
            pinned: first.fingerprint,
            location: format!("{}:{}", self.path.display(), first.line),
        }
    }

    /// Adds a pin (the file is created 0600 when missing).
    pub fn remember(
        &self,
        host: &str,
        port: u16,
        fingerprint: &CertFingerprint,
    ) -> std::io::Result<()> {
        if !valid_host(host) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "host names in the certificate store cannot contain spaces or control characters",
            ));
        }
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&self.path)?;
        writeln!(file, "{} {port} {fingerprint}", host.to_ascii_lowercase())
    }

    /// Removes every pin of `host:port`; returns how many were removed.
    pub fn forget(&self, host: &str, port: u16) -> std::io::Result<usize> {
        let Some(text) = read_bounded(&self.path) else {
            return Ok(0);
        };
        let mut removed = 0;
        let mut kept = String::with_capacity(text.len());
        for line in text.lines() {
            let matches =
                parse_line(line).is_some_and(|(h, p, _)| h.eq_ignore_ascii_case(host) && p == port);
            if matches {
                removed += 1;
            } else {
                kept.push_str(line);
                kept.push('\n');
            }
        }
        if removed > 0 {
            let temporary = self.path.with_extension("tmp");
            std::fs::write(&temporary, kept)?;
            std::fs::rename(&temporary, &self.path)?;
        }
        Ok(removed)
    }
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && !host.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn read_bounded(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > MAX_STORE_BYTES {
        tracing::warn!(file = %path.display(), "RDP certificate store too large, ignored");
        return None;
    }
    std::fs::read_to_string(path).ok()
}

fn parse_line(line: &str) -> Option<(&str, u16, CertFingerprint)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let host = fields.next()?;
    let port = fields.next()?.parse().ok()?;
    let fingerprint = fields.next()?.parse().ok()?;
    if fields.next().is_some() {
        return None;
    }
    Some((host, port, fingerprint))
}

fn parse(text: &str, path: &Path) -> Vec<PinnedCert> {
    let mut pins = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Some((host, port, fingerprint)) => pins.push(PinnedCert {
                host: host.to_owned(),
                port,
                fingerprint,
                line: index + 1,
            }),
            None => {
                tracing::warn!(file = %path.display(), line = index + 1, "malformed line skipped")
            }
        }
    }
    pins
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_use_then_trusted_then_changed_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let store = CertStore::new(dir.path().join("rdp_certificates"));
        let first = CertFingerprint::of_der(b"first");
        let second = CertFingerprint::of_der(b"second");
        assert_eq!(store.check("Win1", 3389, &first), CertVerdict::Unknown);
        std::fs::write(store.path(), "# pins\nnot a line\n").unwrap();
        store.remember("Win1", 3389, &first).unwrap();
        assert_eq!(store.check("win1", 3389, &first), CertVerdict::Trusted);
        assert_eq!(store.check("win1", 3390, &first), CertVerdict::Unknown);
        match store.check("win1", 3389, &second) {
            CertVerdict::Changed { pinned, location } => {
                assert_eq!(pinned, first);
                assert!(location.ends_with("rdp_certificates:3"), "{location}");
            }
            other => panic!("expected a changed certificate, got {other:?}"),
        }
        assert_eq!(store.forget("WIN1", 3389).unwrap(), 1);
        assert_eq!(store.check("win1", 3389, &first), CertVerdict::Unknown);
        assert!(
            std::fs::read_to_string(store.path())
                .unwrap()
                .contains("not a line")
        );
    }

    #[test]
    fn refuses_host_names_that_would_break_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = CertStore::new(dir.path().join("rdp_certificates"));
        let pin = CertFingerprint::of_der(b"x");
        assert!(store.remember("a b", 3389, &pin).is_err());
        assert!(store.remember("a\nb", 3389, &pin).is_err());
        assert!(store.remember("", 3389, &pin).is_err());
        assert!(store.entries().is_empty());
    }
}
