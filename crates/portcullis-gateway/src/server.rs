//! `portcullis-gateway serve`: the TLS listener, the HTTPS API and tunnel admission.
//!
//! Deny by default: every endpoint but `/healthz` needs a valid access token of an
//! enabled user, and every unauthenticated request gets the same 401.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use portcullis_proto::policy::{self, Refusal};
use portcullis_proto::throttle::{LoginThrottle, ThrottleConfig};
use portcullis_proto::token::{Claims, TokenKind, TokenSigner};
use portcullis_proto::wire::{
    CredentialKind, ErrorBody, HostEntry, HostList, LAUNCH_HEADER, LoginRequest, MAX_PASSWORD_LEN,
    MAX_REQUEST_BODY, Protocol, RefreshRequest, SecretReleaseRequest, SecretReleaseResponse,
    SshCertificateRequest, SshCertificateResponse, TokenResponse,
};
use portcullis_proto::{HostName, Secret, UserName};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;
use tracing::{debug, error, info, warn};

use crate::audit::{AuditEvent, AuditKind};
use crate::clock;
use crate::config::GatewayConfig;
use crate::metrics::Metrics;
use crate::password;
use crate::store::{GrantRecord, HostRecord, Store, UserRecord};
use crate::tunnel::{self, Phase};
use crate::vault::SecretKind;

/// The source address of the connection a request came on.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// Argon2 verifications running at once; the rest wait, so a login flood cannot
/// take every core.
const CONCURRENT_PASSWORD_CHECKS: usize = 4;
/// Largest WebSocket message accepted from a client.
const MAX_TUNNEL_MESSAGE: usize = 256 * 1024;
/// How long a launch ticket (from a secret release) opens a tunnel.
const LAUNCH_TICKET_SECONDS: u64 = 60;

pub struct Gateway {
    config: GatewayConfig,
    store: Store,
    signer: TokenSigner,
    metrics: Metrics,
    throttle: Mutex<LoginThrottle>,
    tunnels: Mutex<TunnelCounts>,
    phase: watch::Sender<Phase>,
    password_checks: Semaphore,
    /// Verified against when the user does not exist, so that both cases take as long.
    dummy_hash: String,
    /// The vault key, when the configuration names one (the SSH CA needs it).
    vault: Option<crate::vault::Kek>,
    /// Launch tickets already used (id → expiry), so each opens one tunnel on
    /// this instance; entries go once the ticket has expired.
    used_launch_tickets: Mutex<HashMap<String, u64>>,
}

#[derive(Default)]
struct TunnelCounts {
    total: usize,
    per_user: HashMap<UserName, usize>,
}

/// A reserved place in the tunnel limits; given back on drop.
struct TunnelSlot {
    gateway: Arc<Gateway>,
    user: UserName,
}

impl Drop for TunnelSlot {
    fn drop(&mut self) {
        let mut counts = self.gateway.tunnels.lock().expect("tunnel counts lock");
        counts.total -= 1;
        if let Some(n) = counts.per_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                counts.per_user.remove(&self.user);
            }
        }
    }
}

/// An error as the API returns it: a status and `{code, message}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    fn unauthenticated() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in first: this request carries no valid access token",
        )
    }

    fn internal(e: impl std::fmt::Display) -> ApiError {
        error!(error = %e, "request failed inside the gateway");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the gateway could not complete the request; try again, and tell its operator if it persists",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Printable ASCII only, at most 64 characters: safe to log and to store.
fn sanitize(untrusted: &str) -> String {
    untrusted
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect()
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the OS has randomness");
    hex::encode(buffer)
}

impl Gateway {
    pub async fn open(config: GatewayConfig) -> anyhow::Result<Arc<Gateway>> {
        let store = Store::open(&config.database.path, false)
            .await
            .with_context(|| format!("cannot open database {}", config.database.path.display()))?;
        let signer = crate::init::load_signing_key(&config.tokens.signing_key)?;
        let limits = &config.limits;
        let throttle = LoginThrottle::new(ThrottleConfig {
            free_attempts: limits.login_free_attempts,
            base_delay_ms: limits.login_base_delay_ms,
            max_delay_ms: limits.login_max_delay_seconds * 1000,
            max_entries: 100_000,
        });
        let dummy_hash = password::hash(&Secret::new(random_hex(16)))?;
        let vault = match (&config.vault.key_file, &config.vault.key_env) {
            (None, None) => None,
            _ => Some(crate::vault::Kek::load(&config.vault)?),
        };
        Ok(Arc::new(Gateway {
            store,
            signer,
            metrics: Metrics::default(),
            throttle: Mutex::new(throttle),
            tunnels: Mutex::new(TunnelCounts::default()),
            phase: watch::Sender::new(Phase::Running),
            password_checks: Semaphore::new(CONCURRENT_PASSWORD_CHECKS),
            dummy_hash,
            vault,
            used_launch_tickets: Mutex::new(HashMap::new()),
            config,
        }))
    }

    fn active_tunnels(&self) -> usize {
        self.tunnels.lock().expect("tunnel counts lock").total
    }

    async fn audit(&self, event: AuditEvent) -> Result<(), ApiError> {
        self.store
            .append_audit(&event)
            .await
            .map_err(ApiError::internal)
    }

    /// The enabled user behind a valid access token, or the one 401 for everything else.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<UserRecord, ApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(ApiError::unauthenticated)?;
        let claims = self
            .signer
            .verify(token.trim(), TokenKind::Access, clock::now_secs())
            .map_err(|e| {
                debug!(error = %e, "access token refused");
                ApiError::unauthenticated()
            })?;
        match self
            .store
            .user(&claims.sub)
            .await
            .map_err(ApiError::internal)?
        {
            Some(user) if !user.disabled => Ok(user),
            _ => Err(ApiError::unauthenticated()),
        }
    }

    fn issue_tokens(&self, user: &UserRecord) -> TokenResponse {
        let now = clock::now_secs();
        let access_exp = now + self.config.tokens.access_ttl_minutes * 60;
        let refresh_exp = now + self.config.tokens.refresh_ttl_hours * 3600;
        let claims = |kind, exp| Claims {
            kind,
            sub: user.name.clone(),
            adm: user.is_admin,
            iat: now,
            exp,
            jti: random_hex(12),
            host: None,
        };
        TokenResponse {
            user: user.name.clone(),
            admin: user.is_admin,
            access_token: self.signer.sign(&claims(TokenKind::Access, access_exp)),
            access_expires_at: access_exp,
            refresh_token: self.signer.sign(&claims(TokenKind::Refresh, refresh_exp)),
            refresh_expires_at: refresh_exp,
        }
    }

    /// A launch ticket for `user` and `host` in the request's launch header,
    /// not used before on this instance (it is used up now).
    fn launch_ticket_admits(
        &self,
        headers: &HeaderMap,
        user: &UserRecord,
        host: &HostName,
    ) -> bool {
        let Some(ticket) = headers.get(LAUNCH_HEADER).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        match self
            .signer
            .verify(ticket.trim(), TokenKind::Launch, clock::now_secs())
        {
            Ok(claims) if claims.sub == user.name && claims.host.as_ref() == Some(host) => {
                let now = clock::now_secs();
                let mut used = self
                    .used_launch_tickets
                    .lock()
                    .expect("launch tickets lock");
                used.retain(|_, expires| *expires > now);
                used.insert(claims.jti, claims.exp).is_none()
            }
            Ok(_) => false,
            Err(e) => {
                debug!(error = %e, "launch ticket refused");
                false
            }
        }
    }

    fn reserve_tunnel(self: &Arc<Self>, user: &UserName) -> Result<TunnelSlot, Refusal> {
        let mut counts = self.tunnels.lock().expect("tunnel counts lock");
        let mine = counts.per_user.get(user).copied().unwrap_or(0);
        policy::admit_tunnel(
            mine,
            counts.total,
            self.config.limits.max_tunnels_per_user,
            self.config.limits.max_tunnels_total,
        )?;
        counts.total += 1;
        *counts.per_user.entry(user.clone()).or_insert(0) += 1;
        Ok(TunnelSlot {
            gateway: Arc::clone(self),
            user: user.clone(),
        })
    }

    async fn deny_tunnel(
        &self,
        user: Option<&UserName>,
        host: &str,
        peer: SocketAddr,
        reason: Refusal,
    ) -> Result<(), ApiError> {
        self.metrics.refused(reason);
        info!(user = ?user.map(UserName::as_str), host, source = %peer, reason = reason.as_str(), "tunnel refused");
        let mut event = AuditEvent::new(AuditKind::TunnelDenied);
        event.user = user.map(ToString::to_string);
        event.host = Some(host.to_owned());
        event.source = Some(peer.to_string());
        event.reason = Some(reason.as_str().to_owned());
        self.audit(event).await
    }
}

pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/login", post(login))
        .route("/v1/refresh", post(refresh))
        .route("/v1/hosts", get(hosts))
        .route("/v1/tunnel/{host}", get(open_tunnel))
        .route("/v1/ssh/certificate", post(ssh_certificate))
        .route("/v1/secrets/release", post(release_secret))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .with_state(gateway)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn metrics(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(Peer(peer)): axum::Extension<Peer>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !gw.config.server.metrics_allow.contains(&peer.ip()) {
        let user = gw.authenticate(&headers).await?;
        if !user.is_admin {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "admin_only",
                "metrics are for gateway administrators",
            ));
        }
    }
    let text = gw.metrics.render();
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes, shape: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("expected a JSON body of the form {shape}"),
        )
    })
}

async fn login(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(Peer(peer)): axum::Extension<Peer>,
    body: Bytes,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    let request: LoginRequest = parse_json(&body, r#"{"user": "...", "password": "..."}"#)?;
    let shown_user = sanitize(&request.user);
    let source_key = format!("ip:{}", peer.ip());
    let user_key = format!("user:{}", shown_user.to_ascii_lowercase());
    let now_ms = clock::now_ms();

    let mut failed = AuditEvent::new(AuditKind::LoginFailed);
    failed.user = Some(shown_user.clone());
    failed.source = Some(peer.to_string());

    let blocked = {
        let throttle = gw.throttle.lock().expect("throttle lock");
        throttle
            .check(&source_key, now_ms)
            .err()
            .max(throttle.check(&user_key, now_ms).err())
    };
    if let Some(wait_ms) = blocked {
        gw.metrics.logins_failed.fetch_add(1, Relaxed);
        gw.metrics.refused(Refusal::LoginThrottled);
        failed.reason = Some("throttled".into());
        gw.audit(failed).await?;
        let secs = wait_ms.div_ceil(1000);
        return Err(ApiError {
            retry_after_secs: Some(secs),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!("too many failed sign-ins; try again in {secs} seconds"),
            )
        });
    }

    let user = match request.user.parse::<UserName>() {
        Ok(name) => gw.store.user(&name).await.map_err(ApiError::internal)?,
        Err(_) => None,
    };
    let password_ok = if request.password.expose().len() > MAX_PASSWORD_LEN {
        false
    } else {
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| gw.dummy_hash.clone());
        let _permit = gw
            .password_checks
            .acquire()
            .await
            .map_err(ApiError::internal)?;
        let password = request.password;
        tokio::task::spawn_blocking(move || password::verify(&hash, &password))
            .await
            .map_err(ApiError::internal)?
    };

    match user {
        Some(user) if password_ok && !user.disabled => {
            {
                let mut throttle = gw.throttle.lock().expect("throttle lock");
                throttle.record_success(&user_key);
            }
            let mut ok = AuditEvent::new(AuditKind::LoginOk);
            ok.user = Some(user.name.to_string());
            ok.source = Some(peer.to_string());
            gw.audit(ok).await?;
            gw.metrics.logins_ok.fetch_add(1, Relaxed);
            info!(user = %user.name, source = %peer, "signed in");
            Ok(axum::Json(gw.issue_tokens(&user)))
        }
        other => {
            {
                let mut throttle = gw.throttle.lock().expect("throttle lock");
                throttle.record_failure(&source_key, now_ms);
                throttle.record_failure(&user_key, now_ms);
            }
            failed.reason = Some(
                match other {
                    None => "unknown_user",
                    Some(u) if u.disabled => "user_disabled",
                    Some(_) => "bad_password",
                }
                .into(),
            );
            gw.audit(failed).await?;
            gw.metrics.logins_failed.fetch_add(1, Relaxed);
            info!(user = %shown_user, source = %peer, "sign-in failed");
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "the user name or password is wrong, or the user is disabled",
            ))
        }
    }
}

async fn refresh(
    State(gw): State<Arc<Gateway>>,
    body: Bytes,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    let request: RefreshRequest = parse_json(&body, r#"{"refresh_token": "..."}"#)?;
    let claims = gw
        .signer
        .verify(
            request.refresh_token.expose(),
            TokenKind::Refresh,
            clock::now_secs(),
        )
        .map_err(|_| ApiError::unauthenticated())?;
    match gw
        .store
        .user(&claims.sub)
        .await
        .map_err(ApiError::internal)?
    {
        Some(user) if !user.disabled => Ok(axum::Json(gw.issue_tokens(&user))),
        _ => Err(ApiError::unauthenticated()),
    }
}

async fn grant_records(gw: &Gateway, user: &UserRecord) -> Result<Vec<GrantRecord>, ApiError> {
    gw.store
        .grants(Some(&user.name))
        .await
        .map_err(ApiError::internal)
}

/// What a user's grants allow on one host.
#[derive(Debug, Default)]
struct Reach {
    /// Some grant covers the host.
    permitted: bool,
    /// Some grant that is not launch-only covers it: bare tunnels and certificates.
    unrestricted: bool,
    /// Logins a certificate may carry (from the grants that are not launch-only).
    principals: Vec<String>,
}

fn reach(grants: &[GrantRecord], host: &HostRecord) -> Reach {
    let mut reach = Reach::default();
    for grant in grants {
        if !policy::permits(std::slice::from_ref(&grant.target), &host.name, &host.tags) {
            continue;
        }
        reach.permitted = true;
        if grant.launch_only {
            continue;
        }
        reach.unrestricted = true;
        for principal in &grant.principals {
            if !reach.principals.contains(principal) {
                reach.principals.push(principal.clone());
            }
        }
    }
    reach
}

/// The same 403 for a host that does not exist as for one not granted.
fn not_granted(user: &UserRecord, host: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "not_granted",
        format!(
            "no host named {host:?} is granted to {}: ask a gateway administrator for a grant",
            user.name
        ),
    )
}

/// The catalogued host `name` and what the user's grants allow on it; the
/// same 403 when it is unknown or not granted.
async fn granted_host(
    gw: &Gateway,
    user: &UserRecord,
    name: &HostName,
) -> Result<(HostRecord, Reach), ApiError> {
    let host = gw
        .store
        .host(name)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| not_granted(user, name.as_str()))?;
    let reach = reach(&grant_records(gw, user).await?, &host);
    if !reach.permitted {
        return Err(not_granted(user, name.as_str()));
    }
    Ok((host, reach))
}

fn launch_only(user: &UserRecord, host: &HostName) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "launch_only",
        format!(
            "{} may reach {host} only in sessions the gateway's own credential logs on (a launch-only grant): open it from the Portcullis app's host list",
            user.name
        ),
    )
}

async fn hosts(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> Result<axum::Json<HostList>, ApiError> {
    let user = gw.authenticate(&headers).await?;
    let grants = grant_records(&gw, &user).await?;
    // What the gateway can hand out: vault secrets and certificates need the vault key.
    let (with_secrets, has_ca) = match &gw.vault {
        Some(_) => (
            gw.store
                .secrets()
                .await
                .map_err(ApiError::internal)?
                .into_iter()
                .map(|s| s.host)
                .collect::<std::collections::HashSet<_>>(),
            gw.store
                .item(crate::ssh_ca::CA_ITEM)
                .await
                .map_err(ApiError::internal)?
                .is_some(),
        ),
        None => Default::default(),
    };
    let hosts = gw
        .store
        .hosts()
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .filter_map(|h| {
            let reach = reach(&grants, &h);
            reach.permitted.then(|| HostEntry {
                gateway_credential: with_secrets.contains(&h.name),
                ssh_certificate: has_ca
                    && h.protocol == Protocol::Ssh
                    && !reach.principals.is_empty(),
                launch_only: !reach.unrestricted,
                address: user.is_admin.then_some(h.address),
                port: user.is_admin.then_some(h.port),
                name: h.name,
                protocol: h.protocol,
                tags: h.tags,
            })
        })
        .collect();
    Ok(axum::Json(HostList { hosts }))
}

/// A short-lived SSH user certificate for the caller's own public key, for the
/// principals the caller's grants allow on the host. The same 403 for a host
/// that does not exist as for one not granted.
async fn ssh_certificate(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<SshCertificateResponse>, ApiError> {
    let user = gw.authenticate(&headers).await?;
    let request: SshCertificateRequest = parse_json(
        &body,
        r#"{"host": "...", "public_key": "ssh-ed25519 AAAA..."}"#,
    )?;
    let (host, reach) = granted_host(&gw, &user, &request.host).await?;
    if !reach.unrestricted {
        return Err(launch_only(&user, &host.name));
    }
    let principals = reach.principals;
    if principals.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "no_principals",
            format!(
                "{} may reach {} but no grant names a login for a certificate: ask a gateway administrator (grant add --principal)",
                user.name, host.name
            ),
        ));
    }
    let Some(kek) = &gw.vault else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_ssh_ca",
            "this gateway issues no SSH certificates (it has no vault key)",
        ));
    };
    let key = crate::ssh_ca::parse_public_key(&request.public_key)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_public_key", e.to_string()))?;
    let ca = crate::ssh_ca::load(&gw.store, kek).await.map_err(|e| {
        warn!(error = %e, "SSH CA unavailable");
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_ssh_ca",
            "this gateway has no SSH user CA: an administrator runs `portcullis-gateway ssh-ca init`",
        )
    })?;
    let mut serial = [0u8; 8];
    getrandom::fill(&mut serial).expect("the OS has randomness");
    let cert_request = crate::ssh_ca::CertRequest {
        user: &user.name,
        host: &host.name,
        principals: &principals,
        now: clock::now_secs(),
        validity_seconds: gw.config.ssh_ca.validity_minutes * 60,
        serial: u64::from_le_bytes(serial) >> 1,
    };
    let certificate = crate::ssh_ca::sign(&ca, &key, &cert_request).map_err(ApiError::internal)?;
    let mut event = AuditEvent::new(AuditKind::SshCertIssued);
    event.user = Some(user.name.to_string());
    event.host = Some(host.name.to_string());
    event.reason = Some(format!(
        "serial={} principals={} valid_before={}",
        cert_request.serial,
        principals.join(","),
        cert_request.valid_before()
    ));
    // Audited before the certificate leaves.
    gw.audit(event).await?;
    info!(user = %user.name, host = %host.name, serial = cert_request.serial, "SSH certificate issued");
    let (serial, valid_before) = (cert_request.serial, cert_request.valid_before());
    Ok(axum::Json(SshCertificateResponse {
        certificate,
        serial,
        principals,
        valid_before,
    }))
}

/// A host's vault secret for the one session the caller is opening, with the
/// launch ticket that opens its tunnel. Audited before it leaves.
async fn release_secret(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<SecretReleaseResponse>, ApiError> {
    let user = gw.authenticate(&headers).await?;
    let request: SecretReleaseRequest =
        parse_json(&body, r#"{"host": "...", "kind": "password" or "ssh-key"}"#)?;
    let (host, _reach) = granted_host(&gw, &user, &request.host).await?;
    let Some(kek) = &gw.vault else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_credential",
            "this gateway keeps no credentials (it has no vault key)",
        ));
    };
    let preference: &[SecretKind] = match (request.kind, host.protocol) {
        (Some(CredentialKind::Password), _) | (None, Protocol::Rdp) => &[SecretKind::Password],
        (Some(CredentialKind::SshKey), _) => &[SecretKind::SshKey],
        (None, Protocol::Ssh) => &[SecretKind::SshKey, SecretKind::Password],
    };
    let secrets = gw.store.secrets().await.map_err(ApiError::internal)?;
    let Some(chosen) = preference.iter().find_map(|kind| {
        secrets
            .iter()
            .find(|s| s.host == host.name && s.kind == *kind)
    }) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_credential",
            format!(
                "the gateway holds no {} for {}: log on with your own credentials, or ask a gateway administrator",
                preference
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
                host.name
            ),
        ));
    };
    let value = kek
        .open(&chosen.host, chosen.kind, &chosen.user, &chosen.sealed)
        .map_err(ApiError::internal)?;
    let secret = Secret::new(
        std::str::from_utf8(value.expose())
            .map_err(|_| ApiError::internal("a vault secret is not UTF-8"))?
            .to_owned(),
    );
    drop(value);
    let now = clock::now_secs();
    let launch_expires_at = now + LAUNCH_TICKET_SECONDS;
    let launch_ticket = gw.signer.sign(&Claims {
        kind: TokenKind::Launch,
        sub: user.name.clone(),
        adm: user.is_admin,
        iat: now,
        exp: launch_expires_at,
        jti: random_hex(12),
        host: Some(host.name.clone()),
    });
    let kind = match chosen.kind {
        SecretKind::Password => CredentialKind::Password,
        SecretKind::SshKey => CredentialKind::SshKey,
    };
    let login = (!chosen.user.is_empty()).then(|| chosen.user.clone());
    let mut event = AuditEvent::new(AuditKind::SecretReleased);
    event.user = Some(user.name.to_string());
    event.host = Some(host.name.to_string());
    event.reason = Some(format!(
        "kind={} login={} launch_expires_at={launch_expires_at}",
        kind.as_str(),
        login.as_deref().unwrap_or("*"),
    ));
    // Audited before the secret leaves.
    gw.audit(event).await?;
    info!(user = %user.name, host = %host.name, kind = kind.as_str(), "vault secret released");
    Ok(axum::Json(SecretReleaseResponse {
        kind,
        login,
        secret,
        launch_ticket,
        launch_expires_at,
    }))
}

async fn open_tunnel(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(Peer(peer)): axum::Extension<Peer>,
    headers: HeaderMap,
    host: Result<Path<String>, axum::extract::rejection::PathRejection>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let requested = host.map(|Path(h)| h).unwrap_or_default();
    let shown = sanitize(&requested);
    let user = match gw.authenticate(&headers).await {
        Ok(user) => user,
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            gw.deny_tunnel(None, &shown, peer, Refusal::Unauthenticated)
                .await?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let Ok(upgrade) = upgrade else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "websocket_required",
            "a tunnel is opened with a WebSocket upgrade",
        ));
    };

    let host = match requested.parse::<HostName>() {
        Ok(name) => gw.store.host(&name).await.map_err(ApiError::internal)?,
        Err(_) => None,
    };
    let grants = grant_records(&gw, &user).await?;
    let Some((host, reach)) = host
        .map(|h| {
            let reach = reach(&grants, &h);
            (h, reach)
        })
        .filter(|(_, reach)| reach.permitted)
    else {
        gw.deny_tunnel(Some(&user.name), &shown, peer, Refusal::NotGranted)
            .await?;
        return Err(not_granted(&user, &shown));
    };
    // Under launch-only grants, a tunnel opens only for the session a secret
    // release started: its launch ticket names this user and this host.
    if !reach.unrestricted && !gw.launch_ticket_admits(&headers, &user, &host.name) {
        gw.deny_tunnel(Some(&user.name), &shown, peer, Refusal::LaunchOnly)
            .await?;
        return Err(launch_only(&user, &host.name));
    }

    let slot = match gw.reserve_tunnel(&user.name) {
        Ok(slot) => slot,
        Err(reason) => {
            gw.deny_tunnel(Some(&user.name), &shown, peer, reason)
                .await?;
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_tunnels",
                match reason {
                    Refusal::UserTunnelLimit => format!(
                        "{} has {} tunnels open, the most allowed; close one first",
                        user.name, gw.config.limits.max_tunnels_per_user
                    ),
                    _ => "the gateway carries as many tunnels as it may; try again later".into(),
                },
            ));
        }
    };

    let connect_timeout = Duration::from_secs(gw.config.limits.tunnel_connect_timeout_seconds);
    let target = match tokio::time::timeout(
        connect_timeout,
        TcpStream::connect((host.address.as_str(), host.port)),
    )
    .await
    {
        Ok(Ok(stream)) => stream,
        outcome => {
            let cause = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".to_owned(),
            };
            warn!(host = %host.name, error = %cause, "catalogued host unreachable");
            gw.deny_tunnel(Some(&user.name), &shown, peer, Refusal::Unreachable)
                .await?;
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "host_unreachable",
                format!(
                    "host {} did not accept a connection from the gateway",
                    host.name
                ),
            ));
        }
    };
    let _ = target.set_nodelay(true);

    let tunnel_id = random_hex(8);
    let mut open = AuditEvent::new(AuditKind::TunnelOpen);
    open.user = Some(user.name.to_string());
    open.host = Some(host.name.to_string());
    open.source = Some(peer.to_string());
    open.tunnel_id = Some(tunnel_id.clone());
    // INVARIANT: the open event is durable before the client hears 101.
    gw.audit(open.clone()).await?;
    gw.metrics.tunnels_opened.fetch_add(1, Relaxed);
    gw.metrics.tunnels_active.fetch_add(1, Relaxed);
    info!(user = %user.name, host = %host.name, source = %peer, tunnel = %tunnel_id, "tunnel open");

    let closer = TunnelCloser {
        gateway: Arc::clone(&gw),
        open,
        started: tokio::time::Instant::now(),
        slot: Some(slot),
    };
    let idle = Duration::from_secs(gw.config.limits.tunnel_idle_timeout_seconds);
    let phase = gw.phase.subscribe();
    Ok(upgrade
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
        .max_message_size(MAX_TUNNEL_MESSAGE)
        .max_frame_size(MAX_TUNNEL_MESSAGE)
        .on_upgrade(move |socket| async move {
            let outcome =
                tunnel::splice(socket, target, idle, phase, &closer.gateway.metrics).await;
            closer.close(outcome).await;
        }))
}

/// Writes `tunnel_close` when a tunnel ends, however it ends: normally through
/// `close`, or from `Drop` when the upgrade never completed.
struct TunnelCloser {
    gateway: Arc<Gateway>,
    open: AuditEvent,
    started: tokio::time::Instant,
    slot: Option<TunnelSlot>,
}

impl TunnelCloser {
    async fn close(mut self, outcome: tunnel::SpliceOutcome) {
        let slot = self.slot.take();
        write_close(&self.gateway, &self.open, self.started, outcome).await;
        drop(slot);
    }
}

impl Drop for TunnelCloser {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let gateway = Arc::clone(&self.gateway);
            let open = self.open.clone();
            let started = self.started;
            tokio::spawn(async move {
                let outcome = tunnel::SpliceOutcome {
                    bytes_from_client: 0,
                    bytes_to_client: 0,
                    reason: "upgrade_failed",
                };
                write_close(&gateway, &open, started, outcome).await;
                drop(slot);
            });
        }
    }
}

async fn write_close(
    gw: &Gateway,
    open: &AuditEvent,
    started: tokio::time::Instant,
    outcome: tunnel::SpliceOutcome,
) {
    let duration_ms = started.elapsed().as_millis() as u64;
    let mut close = open.clone();
    close.kind = AuditKind::TunnelClose;
    close.time_ms = clock::now_ms();
    close.reason = Some(outcome.reason.to_owned());
    close.bytes_from_client = Some(outcome.bytes_from_client);
    close.bytes_to_client = Some(outcome.bytes_to_client);
    close.duration_ms = Some(duration_ms);
    gw.metrics.tunnels_active.fetch_sub(1, Relaxed);
    info!(
        user = open.user.as_deref().unwrap_or("-"),
        host = open.host.as_deref().unwrap_or("-"),
        tunnel = open.tunnel_id.as_deref().unwrap_or("-"),
        bytes_from_client = outcome.bytes_from_client,
        bytes_to_client = outcome.bytes_to_client,
        duration_ms,
        reason = outcome.reason,
        "tunnel closed"
    );
    if let Err(e) = gw.store.append_audit(&close).await {
        error!(error = %e, tunnel = ?open.tunnel_id, "cannot write the tunnel_close audit event");
    }
}

/// Serves until SIGTERM or SIGINT, then drains tunnels and exits.
pub async fn serve(config: GatewayConfig, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    // Signal handlers first: once the port accepts, a SIGTERM must drain, never kill.
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let listen = listen.unwrap_or(config.server.listen);
    let tls = crate::tls::server_config(&config.tls.certificate, &config.tls.key)?;
    let fingerprint = crate::tls::fingerprint_of(&config.tls.certificate)?;
    let gateway = Gateway::open(config).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    info!(listen = %local, fingerprint = %fingerprint, "gateway listening");

    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let connections = Arc::new(Semaphore::new(gateway.config.limits.max_connections));
    let app = router(Arc::clone(&gateway));

    loop {
        let (tcp, peer) = tokio::select! {
            _ = sigterm.recv() => { info!("SIGTERM: no new connections, draining tunnels"); break }
            _ = sigint.recv() => { info!("SIGINT: no new connections, draining tunnels"); break }
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            gateway.metrics.connections_rejected.fetch_add(1, Relaxed);
            drop(tcp);
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let gateway = Arc::clone(&gateway);
        tokio::spawn(async move {
            serve_connection(gateway, acceptor, app, tcp, peer).await;
            drop(permit);
        });
    }
    drop(listener);

    let drain = Duration::from_secs(gateway.config.limits.shutdown_drain_seconds);
    let deadline = tokio::time::Instant::now() + drain;
    while gateway.active_tunnels() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = gateway.active_tunnels();
    if left > 0 {
        info!(
            tunnels = left,
            "drain deadline passed: closing the remaining tunnels"
        );
        gateway.phase.send_replace(Phase::ForceClose);
        // Each tunnel writes its close event before giving its slot back.
        let hard_deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while gateway.active_tunnels() > 0 && tokio::time::Instant::now() < hard_deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    gateway.store.close().await;
    info!("gateway stopped");
    Ok(())
}

async fn serve_connection(
    gateway: Arc<Gateway>,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
    tcp: TcpStream,
    peer: SocketAddr,
) {
    let limits = &gateway.config.limits;
    let handshake = Duration::from_secs(limits.handshake_timeout_seconds);
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            gateway.metrics.tls_handshake_failures.fetch_add(1, Relaxed);
            debug!(source = %peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            gateway.metrics.tls_handshake_failures.fetch_add(1, Relaxed);
            debug!(source = %peer, "TLS handshake timed out");
            return;
        }
    };
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(Peer(peer));
            app.clone().oneshot(request)
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(handshake)
        .max_buf_size(limits.max_header_bytes)
        .keep_alive(true);
    if let Err(e) = builder
        .serve_connection(TokioIo::new(tls), service)
        .with_upgrades()
        .await
    {
        debug!(source = %peer, error = %e, "connection ended with an error");
    }
}
