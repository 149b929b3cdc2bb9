//! Access decisions: who may reach which host, and why a tunnel is refused.
//!
//! Deny by default: a host is reachable only through a grant that names it or one
//! of its tags.

use crate::names::{HostName, Tag};

/// What one grant gives a user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantTarget {
    Host(HostName),
    Tag(Tag),
}

/// True when any grant names the host or one of its tags.
pub fn permits(grants: &[GrantTarget], host: &HostName, host_tags: &[Tag]) -> bool {
    grants.iter().any(|grant| match grant {
        GrantTarget::Host(name) => name == host,
        GrantTarget::Tag(tag) => host_tags.contains(tag),
    })
}

/// Why a tunnel (or any authenticated request) was refused. The string forms are
/// metric labels and audit reasons, so they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// No credentials, a malformed, forged or expired token, or a disabled user. All
    /// of them get the same 401 so that nothing is learned without signing in.
    Unauthenticated,
    /// The host is unknown or not granted; both get the same answer so that the
    /// catalog cannot be probed.
    NotGranted,
    UserTunnelLimit,
    TotalTunnelLimit,
    /// The catalogued address did not accept a connection.
    Unreachable,
    LoginThrottled,
    /// Only launch-only grants reach the host, and the request carries no valid
    /// launch ticket for it (a bare tunnel under a help-desk grant).
    LaunchOnly,
}

impl Refusal {
    pub const ALL: [Refusal; 7] = [
        Refusal::Unauthenticated,
        Refusal::NotGranted,
        Refusal::UserTunnelLimit,
        Refusal::TotalTunnelLimit,
        Refusal::Unreachable,
        Refusal::LoginThrottled,
        Refusal::LaunchOnly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::NotGranted => "not_granted",
            Refusal::UserTunnelLimit => "user_tunnel_limit",
            Refusal::TotalTunnelLimit => "total_tunnel_limit",
            Refusal::Unreachable => "unreachable",
            Refusal::LoginThrottled => "login_throttled",
            Refusal::LaunchOnly => "launch_only",
        }
    }
}

/// Tunnel counts against the configured limits; `Ok` means one more may open.
pub fn admit_tunnel(
    active_for_user: usize,
    active_total: usize,
    max_per_user: usize,
    max_total: usize,
) -> Result<(), Refusal> {
    if active_total >= max_total {
        return Err(Refusal::TotalTunnelLimit);
    }
    if active_for_user >= max_per_user {
        return Err(Refusal::UserTunnelLimit);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_by_host_or_tag_and_nothing_else() {
        let web: HostName = "web1".parse().unwrap();
        let db: HostName = "db1".parse().unwrap();
        let prod: Tag = "prod".parse().unwrap();
        let grants = vec![
            GrantTarget::Host(web.clone()),
            GrantTarget::Tag(prod.clone()),
        ];
        assert!(permits(&grants, &web, &[]));
        assert!(permits(&grants, &db, std::slice::from_ref(&prod)));
        assert!(!permits(&grants, &db, &["dev".parse().unwrap()]));
        assert!(!permits(&[], &web, &[prod]));
    }

    #[test]
    fn tunnel_limits() {
        assert_eq!(admit_tunnel(0, 0, 1, 1), Ok(()));
        assert_eq!(admit_tunnel(1, 1, 1, 10), Err(Refusal::UserTunnelLimit));
        assert_eq!(admit_tunnel(0, 10, 5, 10), Err(Refusal::TotalTunnelLimit));
    }
}
