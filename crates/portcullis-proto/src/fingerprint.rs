//! SHA-256 fingerprints of TLS certificates, as the gateway prints them and the
//! client pins them.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// SHA-256 of a certificate's DER encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertFingerprint([u8; 32]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid certificate fingerprint {shown:?}: expected 64 hex digits (colons and case are ignored)"
)]
pub struct FingerprintParseError {
    shown: String,
}

impl CertFingerprint {
    pub fn of_der(der: &[u8]) -> CertFingerprint {
        CertFingerprint(Sha256::digest(der).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Colon-separated upper-case pairs, as `openssl x509 -fingerprint -sha256` prints.
    pub fn to_colon_hex(&self) -> String {
        self.0
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// 64 lower-case hex digits.
impl fmt::Display for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertFingerprint({self})")
    }
}

impl FromStr for CertFingerprint {
    type Err = FingerprintParseError;

    /// Accepts `ab12…`, `AB:12:…` and openssl's `sha256 Fingerprint=AB:12:…`.
    fn from_str(input: &str) -> Result<CertFingerprint, FingerprintParseError> {
        let error = || FingerprintParseError {
            shown: input.chars().take(120).collect(),
        };
        let trimmed = input.trim();
        let value = match trimmed.rsplit_once('=') {
            Some((label, value)) if label.to_ascii_lowercase().contains("fingerprint") => value,
            _ => trimmed,
        };
        let digits: String = value.chars().filter(|c| *c != ':').collect();
        if digits.len() != 64 {
            return Err(error());
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(digits.to_ascii_lowercase(), &mut bytes).map_err(|_| error())?;
        Ok(CertFingerprint(bytes))
    }
}

impl serde::Serialize for CertFingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CertFingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_colon_and_openssl_forms() {
        let fp = CertFingerprint::of_der(b"certificate");
        let plain = fp.to_string();
        assert_eq!(plain.len(), 64);
        assert_eq!(plain.parse::<CertFingerprint>().unwrap(), fp);
        assert_eq!(fp.to_colon_hex().parse::<CertFingerprint>().unwrap(), fp);
        let openssl = format!("sha256 Fingerprint={}", fp.to_colon_hex());
        assert_eq!(openssl.parse::<CertFingerprint>().unwrap(), fp);
        assert_eq!(plain.to_uppercase().parse::<CertFingerprint>().unwrap(), fp);
    }

    #[test]
    fn refuses_wrong_length_and_non_hex() {
        assert!("abcd".parse::<CertFingerprint>().is_err());
        assert!("g".repeat(64).parse::<CertFingerprint>().is_err());
        assert!(
            format!("{}00", "a".repeat(64))
                .parse::<CertFingerprint>()
                .is_err()
        );
    }
}
