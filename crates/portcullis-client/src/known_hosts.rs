//! OpenSSH `known_hosts` files: parsing and lookup, sans-IO.
//!
//! Follows sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT": comma-separated host patterns
//! (`*` and `?` wildcards, `!` negation, `[host]:port` for other ports), hashed
//! names (`|1|salt|hmac-sha1`), and the `@cert-authority` and `@revoked` markers.
//! A lookup answers whether a presented key is trusted, revoked, changed or unknown,
//! naming the line that decided it so a person can fix the file.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Lines longer than this are skipped as malformed (OpenSSH keys are a few KiB).
const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    None,
    CertAuthority,
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Hosts {
    Patterns(Vec<String>),
    /// `|1|salt|hash`: HMAC-SHA1 of the host name under the salt.
    Hashed {
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number in the file.
    pub line: usize,
    pub marker: Marker,
    hosts: Hosts,
    pub key_type: String,
    /// The key's wire-format blob (base64-decoded).
    pub key: Vec<u8>,
}

/// A line that could not be read; the rest of the file still counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub reason: &'static str,
}

#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    pub entries: Vec<Entry>,
    pub errors: Vec<LineError>,
}

/// What the file says about a key presented by `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Trusted {
        line: usize,
    },
    /// The key is listed as `@revoked`: refuse whatever else the file says.
    Revoked {
        line: usize,
    },
    /// The host is known with other keys of the same type: refuse.
    Changed {
        line: usize,
        known: String,
    },
    Unknown,
}

/// `SHA256:…` as OpenSSH prints a key fingerprint.
pub fn fingerprint(key_blob: &[u8]) -> String {
    format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(Sha256::digest(key_blob))
    )
}

/// The name a host is recorded under: `host` for port 22, else `[host]:port`.
pub fn host_key_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

impl KnownHosts {
    pub fn parse(text: &str) -> KnownHosts {
        let mut parsed = KnownHosts::default();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            match parse_line(trimmed, line) {
                Ok(entry) => parsed.entries.push(entry),
                Err(reason) => parsed.errors.push(LineError { line, reason }),
            }
        }
        parsed
    }

    pub fn check(&self, host: &str, port: u16, key_type: &str, key: &[u8]) -> Verdict {
        let name = host_key_name(host, port);
        let matching: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.marker != Marker::CertAuthority && e.applies_to(&name))
            .collect();
        // A revoked key is refused wherever it is listed, for any host.
        if let Some(revoked) = self
            .entries
            .iter()
            .find(|e| e.marker == Marker::Revoked && e.key == key)
        {
            return Verdict::Revoked { line: revoked.line };
        }
        if let Some(trusted) = matching
            .iter()
            .find(|e| e.marker == Marker::None && e.key_type == key_type && e.key == key)
        {
            return Verdict::Trusted { line: trusted.line };
        }
        match matching
            .iter()
            .find(|e| e.marker == Marker::None && e.key_type == key_type)
        {
            Some(other) => Verdict::Changed {
                line: other.line,
                known: fingerprint(&other.key),
            },
            None => Verdict::Unknown,
        }
    }

    /// CA keys trusted to sign host certificates for this host.
    pub fn cert_authorities(&self, host: &str, port: u16) -> Vec<&Entry> {
        let name = host_key_name(host, port);
        self.entries
            .iter()
            .filter(|e| e.marker == Marker::CertAuthority && e.applies_to(&name))
            .collect()
    }
}

/// `text` without the plain (unmarked) entries for `host:port`, and how many went.
/// Comments, other hosts and `@` lines stay as they were.
pub fn without_host(text: &str, host: &str, port: u16) -> (String, usize) {
    let name = host_key_name(host, port);
    let mut kept = String::with_capacity(text.len());
    let mut removed = 0;
    for raw in text.lines() {
        let trimmed = raw.trim();
        let drop = !trimmed.is_empty()
            && !trimmed.starts_with('#')
            && parse_line(trimmed, 0)
                .is_ok_and(|e| e.marker == Marker::None && e.applies_to(&name));
        if drop {
            removed += 1;
        } else {
            kept.push_str(raw);
            kept.push('\n');
        }
    }
    (kept, removed)
}

impl Entry {
    /// The host patterns as written, or `(hashed)`.
    pub fn hosts_shown(&self) -> String {
        match &self.hosts {
            Hosts::Patterns(patterns) => patterns.join(","),
            Hosts::Hashed { .. } => "(hashed)".into(),
        }
    }

    fn applies_to(&self, name: &str) -> bool {
        match &self.hosts {
            Hosts::Hashed { salt, hash } => {
                let mut mac = Hmac::<sha1::Sha1>::new_from_slice(salt).expect("any key length");
                mac.update(name.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            Hosts::Patterns(patterns) => {
                let name = name.to_ascii_lowercase();
                let mut positive = false;
                for pattern in patterns {
                    if let Some(negated) = pattern.strip_prefix('!') {
                        if wildcard_match(negated, &name) {
                            return false;
                        }
                    } else if wildcard_match(pattern, &name) {
                        positive = true;
                    }
                }
                positive
            }
        }
    }
}

fn parse_line(line: &str, number: usize) -> Result<Entry, &'static str> {
    if line.len() > MAX_LINE {
        return Err("line is too long");
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next().ok_or("empty line")?;
    let marker = match first {
        "@cert-authority" => Marker::CertAuthority,
        "@revoked" => Marker::Revoked,
        other if other.starts_with('@') => return Err("unknown marker"),
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next().ok_or("no host patterns after the marker")?;
    }
    let hosts = if let Some(hashed) = first.strip_prefix("|1|") {
        let (salt, hash) = hashed.split_once('|').ok_or("malformed hashed host")?;
        let salt = STANDARD
            .decode(salt)
            .map_err(|_| "malformed hashed host salt")?;
        let hash = STANDARD
            .decode(hash)
            .map_err(|_| "malformed hashed host hash")?;
        if hash.len() != 20 {
            return Err("hashed host is not HMAC-SHA1");
        }
        Hosts::Hashed { salt, hash }
    } else {
        Hosts::Patterns(
            first
                .split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_ascii_lowercase)
                .collect(),
        )
    };
    let key_type = fields.next().ok_or("no key type")?.to_owned();
    let key = STANDARD
        .decode(fields.next().ok_or("no key")?)
        .map_err(|_| "key is not base64")?;
    // The blob starts with its own type as an SSH string; a mismatch is a broken line.
    if key.len() < 4 {
        return Err("key is too short");
    }
    let declared_len = u32::from_be_bytes([key[0], key[1], key[2], key[3]]) as usize;
    if key.get(4..4 + declared_len) != Some(key_type.as_bytes()) && !key_type.contains("-cert-") {
        return Err("key type does not match the key");
    }
    Ok(Entry {
        line: number,
        marker,
        hosts,
        key_type,
        key,
    })
}

/// OpenSSH's `match_pattern`: `*` any run, `?` one character.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    // Keys and hashed lines made with ssh-keygen (OpenSSH 9.2).
    const K1: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIPmPOyKRchP8/syJwMAsEtrXkG548iodg4PC8pMoP3lG";
    const K2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIEgCdLFHY/DE2JTR81P3KxhXNAy/cOglio1hOWpbMV8T";
    /// `ssh-keygen -H` of "web1 K1" and "[db1]:2222 K1".
    const HASHED: &str = "|1|0iyccb38d1rv23ynuO4FO3gxNes=|RlVKPoTBgeoTb+IO1ojy1sXvxso= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPmPOyKRchP8/syJwMAsEtrXkG548iodg4PC8pMoP3lG
|1|/pEdsuf3B7u58f06D5LhwuDdVhk=|BEAPoGCsVXEymDXIu8NxH1l1Cg0= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPmPOyKRchP8/syJwMAsEtrXkG548iodg4PC8pMoP3lG
";

    fn blob(b64: &str) -> Vec<u8> {
        STANDARD.decode(b64).unwrap()
    }

    #[test]
    fn fingerprints_match_ssh_keygen() {
        assert_eq!(
            fingerprint(&blob(K1)),
            "SHA256:7DungwrHeePr613ldx5wF7UNg3OF6DViDxdejbqcGwc"
        );
        assert_eq!(
            fingerprint(&blob(K2)),
            "SHA256:izhy2ToQ7JCjo2TEdLWwTS9II7dcpv3pX5q/1GalJLs"
        );
    }

    #[test]
    fn hashed_entries_match_host_and_port() {
        let kh = KnownHosts::parse(HASHED);
        assert!(kh.errors.is_empty(), "{:?}", kh.errors);
        assert_eq!(
            kh.check("web1", 22, "ssh-ed25519", &blob(K1)),
            Verdict::Trusted { line: 1 }
        );
        assert_eq!(
            kh.check("db1", 2222, "ssh-ed25519", &blob(K1)),
            Verdict::Trusted { line: 2 }
        );
        assert_eq!(
            kh.check("db1", 22, "ssh-ed25519", &blob(K1)),
            Verdict::Unknown
        );
        assert_eq!(
            kh.check("web1", 22, "ssh-ed25519", &blob(K2)),
            Verdict::Changed {
                line: 1,
                known: "SHA256:7DungwrHeePr613ldx5wF7UNg3OF6DViDxdejbqcGwc".into()
            }
        );
    }

    #[test]
    fn patterns_negation_markers_and_bad_lines() {
        let text = format!(
            "# comment\n\
             *.prod,!bastion.prod ssh-ed25519 {K1}\n\
             @revoked * ssh-ed25519 {K2}\n\
             @cert-authority *.lab ssh-ed25519 {K1}\n\
             @bogus web ssh-ed25519 {K1}\n\
             web9 ssh-ed25519 not-base64!\n\
             web8 ssh-rsa {K1}\n\
             [Web7]:2200 ssh-ed25519 {K1}\n"
        );
        let kh = KnownHosts::parse(&text);
        assert_eq!(
            kh.errors.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![5, 6, 7]
        );
        assert_eq!(
            kh.check("api.prod", 22, "ssh-ed25519", &blob(K1)),
            Verdict::Trusted { line: 2 }
        );
        assert_eq!(
            kh.check("bastion.prod", 22, "ssh-ed25519", &blob(K1)),
            Verdict::Unknown
        );
        assert_eq!(
            kh.check("api.prod", 22, "ssh-ed25519", &blob(K2)),
            Verdict::Revoked { line: 3 }
        );
        assert_eq!(
            kh.check("web7", 2200, "ssh-ed25519", &blob(K1)),
            Verdict::Trusted { line: 8 }
        );
        assert_eq!(kh.cert_authorities("x.lab", 22).len(), 1);
        assert!(kh.cert_authorities("x.prod", 22).is_empty());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("web?", "web1"));
        assert!(!wildcard_match("web?", "web12"));
        assert!(wildcard_match("*.example.*", "a.example.com"));
        assert!(!wildcard_match("*.example.com", "example.com"));
    }

    #[test]
    fn removing_a_host_keeps_everything_else() {
        let key = "AAAAC3NzaC1lZDI1NTE5AAAAIOhVJ7JrFqMaEIJ4C7kxhB3NL+cZqOVPf2nHKIzn4qxA";
        let text = format!(
            "# mine\nvnet1 ssh-ed25519 {key}\nother ssh-ed25519 {key}\n[vnet1]:2222 ssh-ed25519 {key}\n@cert-authority vnet1 ssh-ed25519 {key}\n"
        );
        let (kept, removed) = without_host(&text, "vnet1", 22);
        assert_eq!(removed, 1);
        assert_eq!(
            kept,
            format!(
                "# mine\nother ssh-ed25519 {key}\n[vnet1]:2222 ssh-ed25519 {key}\n@cert-authority vnet1 ssh-ed25519 {key}\n"
            )
        );
        let parsed = KnownHosts::parse(&kept);
        assert_eq!(parsed.entries[0].hosts_shown(), "other");
    }
}
