//! Stateless signed tokens: `pc1.<claims>.<mac>`, both parts base64url without
//! padding, the MAC an HMAC-SHA256 over `pc1.<claims>`.
//!
//! Stateless so that any gateway instance sharing the signing key can serve any
//! client. The gateway still checks the user against its store on every use, so a
//! disabled user is stopped at once whatever tokens they hold.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::names::UserName;
use crate::secret::Secret;

const PREFIX: &str = "pc1.";
/// Tokens longer than this are refused before any decoding.
pub const MAX_TOKEN_LEN: usize = 2048;
/// Accepted difference between gateway clocks in a fleet.
const CLOCK_SKEW_SECS: u64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Access,
    Refresh,
    /// Lets one session open a tunnel under a launch-only grant; names the host.
    Launch,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    #[serde(rename = "k")]
    pub kind: TokenKind,
    pub sub: UserName,
    pub adm: bool,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: u64,
    /// Unique id, so two tokens issued in the same second differ.
    pub jti: String,
    /// The one host a launch token opens a tunnel to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<crate::names::HostName>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token is a {found:?} token where a {expected:?} token was needed")]
    WrongKind {
        expected: TokenKind,
        found: TokenKind,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("token signing key must be at least 32 bytes, got {0}")]
pub struct KeyTooShort(usize);

/// Signs and verifies tokens with one HMAC key.
pub struct TokenSigner {
    key: Secret<Vec<u8>>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(***)")
    }
}

impl TokenSigner {
    pub fn new(key: Secret<Vec<u8>>) -> Result<TokenSigner, KeyTooShort> {
        if key.expose().len() < 32 {
            return Err(KeyTooShort(key.expose().len()));
        }
        Ok(TokenSigner { key })
    }

    fn mac(&self) -> Hmac<Sha256> {
        // INVARIANT: HMAC accepts keys of any length.
        Hmac::<Sha256>::new_from_slice(self.key.expose()).expect("hmac takes any key length")
    }

    pub fn sign(&self, claims: &Claims) -> Secret<String> {
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        let mut token = String::with_capacity(256);
        token.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let mut mac = self.mac();
        mac.update(token.as_bytes());
        let tag = mac.finalize().into_bytes();
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(tag, &mut token);
        Secret::new(token)
    }

    /// Checks the MAC first, then the claims; `now` is seconds since the Unix epoch.
    pub fn verify(&self, token: &str, expected: TokenKind, now: u64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN || !token.starts_with(PREFIX) {
            return Err(TokenError::Malformed);
        }
        let (signed, tag_b64) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        if signed.len() <= PREFIX.len() {
            return Err(TokenError::Malformed);
        }
        let tag = URL_SAFE_NO_PAD
            .decode(tag_b64)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(&signed[PREFIX.len()..])
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.kind != expected {
            return Err(TokenError::WrongKind {
                expected,
                found: claims.kind,
            });
        }
        if claims.iat > now + CLOCK_SKEW_SECS {
            return Err(TokenError::NotYetValid);
        }
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(byte: u8) -> TokenSigner {
        TokenSigner::new(Secret::new(vec![byte; 32])).unwrap()
    }

    fn claims(kind: TokenKind, iat: u64, exp: u64) -> Claims {
        Claims {
            kind,
            sub: "alice".parse().unwrap(),
            adm: false,
            iat,
            exp,
            jti: "00ff".into(),
            host: None,
        }
    }

    #[test]
    fn round_trip() {
        let s = signer(1);
        let c = claims(TokenKind::Access, 1000, 1600);
        let token = s.sign(&c);
        assert_eq!(s.verify(token.expose(), TokenKind::Access, 1200), Ok(c));
    }

    #[test]
    fn refuses_expired_future_wrong_kind_and_foreign_key() {
        let s = signer(1);
        let token = s.sign(&claims(TokenKind::Access, 1000, 1600));
        let t = token.expose();
        assert_eq!(
            s.verify(t, TokenKind::Access, 1600),
            Err(TokenError::Expired)
        );
        assert_eq!(
            s.verify(t, TokenKind::Access, 900),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            s.verify(t, TokenKind::Refresh, 1200),
            Err(TokenError::WrongKind {
                expected: TokenKind::Refresh,
                found: TokenKind::Access
            })
        );
        assert_eq!(
            signer(2).verify(t, TokenKind::Access, 1200),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn refuses_tampering_and_garbage() {
        let s = signer(1);
        let token = s.sign(&claims(TokenKind::Access, 1000, 1600));
        let t = token.expose();
        // Swap the claims for admin ones, keep the old MAC.
        let forged_claims = Claims {
            adm: true,
            ..claims(TokenKind::Access, 1000, 1600)
        };
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap());
        let mac = t.rsplit_once('.').unwrap().1;
        let forged = format!("{PREFIX}{forged_payload}.{mac}");
        assert_eq!(
            s.verify(&forged, TokenKind::Access, 1200),
            Err(TokenError::BadSignature)
        );
        for garbage in [
            "",
            "pc1.",
            "pc1..",
            "pc2.a.b",
            "pc1.!!!.???",
            &"x".repeat(5000),
        ] {
            assert!(
                s.verify(garbage, TokenKind::Access, 1200).is_err(),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(TokenSigner::new(Secret::new(vec![0; 16])).is_err());
    }
}
