//! Names of hosts, users and tags: validated once at the edge, then carried in types.
//!
//! A host is always named, never addressed: a name that parses as an IP address is
//! refused so that nobody can mistake the catalog for a relay.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("{kind} name is empty")]
    Empty { kind: &'static str },
    #[error("{kind} name {shown:?} is longer than {max} characters")]
    TooLong {
        kind: &'static str,
        shown: String,
        max: usize,
    },
    #[error(
        "{kind} name {shown:?} has a character other than lower-case letters, digits and {allowed}, or does not start with a letter or digit"
    )]
    BadCharacter {
        kind: &'static str,
        shown: String,
        allowed: &'static str,
    },
    #[error(
        "host name {shown:?} looks like an address: hosts are named in the catalog, never addressed"
    )]
    LooksLikeAddress { shown: String },
}

struct Rules {
    kind: &'static str,
    max: usize,
    extra: &'static str,
    allowed: &'static str,
}

fn check(input: &str, rules: &Rules) -> Result<String, NameError> {
    let shown = || input.chars().take(80).collect::<String>();
    if input.is_empty() {
        return Err(NameError::Empty { kind: rules.kind });
    }
    if input.len() > rules.max {
        return Err(NameError::TooLong {
            kind: rules.kind,
            shown: shown(),
            max: rules.max,
        });
    }
    let lower = input.to_ascii_lowercase();
    let first_ok = lower
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = lower
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || rules.extra.contains(c));
    if !first_ok || !rest_ok {
        return Err(NameError::BadCharacter {
            kind: rules.kind,
            shown: shown(),
            allowed: rules.allowed,
        });
    }
    Ok(lower)
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// A catalogued host: 1–63 of `a-z 0-9 . _ -`, starting with a letter or digit,
    /// and never an IP address.
    HostName
);
name_type!(
    /// A gateway user: 1–64 of `a-z 0-9 . _ - @`, starting with a letter or digit.
    UserName
);
name_type!(
    /// A host tag: 1–64 of `a-z 0-9 . _ - :`, starting with a letter or digit.
    Tag
);

impl FromStr for HostName {
    type Err = NameError;

    fn from_str(input: &str) -> Result<HostName, NameError> {
        let name = check(
            input,
            &Rules {
                kind: "host",
                max: 63,
                extra: "._-",
                allowed: "'.', '_', '-'",
            },
        )?;
        if name.parse::<IpAddr>().is_ok() || looks_numeric(&name) {
            return Err(NameError::LooksLikeAddress {
                shown: input.chars().take(80).collect(),
            });
        }
        Ok(HostName(name))
    }
}

/// `10.1`, `0x7f.1` and friends are addresses to `inet_aton`; refuse any name made only
/// of numeric-looking dot-separated parts.
fn looks_numeric(name: &str) -> bool {
    name.split('.').all(|part| {
        !part.is_empty()
            && (part.chars().all(|c| c.is_ascii_digit())
                || (part.starts_with("0x") && part[2..].chars().all(|c| c.is_ascii_hexdigit())))
    })
}

impl FromStr for UserName {
    type Err = NameError;

    fn from_str(input: &str) -> Result<UserName, NameError> {
        check(
            input,
            &Rules {
                kind: "user",
                max: 64,
                extra: "._-@",
                allowed: "'.', '_', '-', '@'",
            },
        )
        .map(UserName)
    }
}

impl FromStr for Tag {
    type Err = NameError;

    fn from_str(input: &str) -> Result<Tag, NameError> {
        check(
            input,
            &Rules {
                kind: "tag",
                max: 64,
                extra: "._-:",
                allowed: "'.', '_', '-', ':'",
            },
        )
        .map(Tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_lowercased_and_validated() {
        assert_eq!(
            "Web-1.Prod".parse::<HostName>().unwrap().as_str(),
            "web-1.prod"
        );
        for bad in [
            "",
            "-web",
            "web 1",
            "web/1",
            "web:22",
            "127.0.0.1:22",
            "[::1]",
            "::1",
            "10.0.0.5",
            "169.254.169.254",
            "10.1",
            "0x7f.1",
            "2130706433",
            "héllo",
        ] {
            assert!(
                bad.parse::<HostName>().is_err(),
                "{bad:?} should be refused"
            );
        }
        assert!("a".repeat(64).parse::<HostName>().is_err());
        assert!("db1".parse::<HostName>().is_ok());
        assert!("10-0-0-5.internal".parse::<HostName>().is_ok());
    }

    #[test]
    fn user_names_allow_mail_style() {
        assert_eq!(
            "Alice@Example.com".parse::<UserName>().unwrap().as_str(),
            "alice@example.com"
        );
        assert!("alice smith".parse::<UserName>().is_err());
        assert!("".parse::<UserName>().is_err());
    }

    #[test]
    fn tags_allow_colons() {
        assert!("env:prod".parse::<Tag>().is_ok());
        assert!("env prod".parse::<Tag>().is_err());
    }
}
