//! Signed-in gateways: login with certificate pinning, tokens refreshed without
//! asking, the host list, and tunnels.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use portcullis_proto::wire::{
    CredentialKind, HostList, LoginRequest, RefreshRequest, SecretReleaseRequest,
    SecretReleaseResponse, SshCertificateRequest, SshCertificateResponse, TokenResponse,
};
use portcullis_proto::{CertFingerprint, HostName, Secret};

use crate::api::{GatewayApi, GatewayUrl, TunnelSocket};
use crate::error::ClientError;
use crate::home::{ClientHome, ClientState, GatewayState};
use crate::secrets::SecretStore;
use crate::tls::Trust;

/// Refresh an access token this long before it expires.
const REFRESH_MARGIN_SECS: u64 = 30;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// How `login` decides to trust a certificate no system CA vouches for.
pub enum PinPolicy<'a> {
    /// The operator gave this fingerprint out of band.
    Expect(CertFingerprint),
    /// Ask a person (on a terminal); `true` trusts the shown fingerprint.
    Ask(&'a mut (dyn FnMut(&GatewayUrl, &CertFingerprint) -> bool + Send)),
    /// Nobody to ask: refuse with an error that says what to pass.
    Refuse,
}

pub struct LoginOutcome {
    pub gateway: String,
    pub user: String,
    pub admin: bool,
    pub pinned: Option<CertFingerprint>,
}

pub struct Client {
    home: ClientHome,
    /// Where refresh tokens go when it is open; `None` keeps them in the file.
    secrets: Option<Arc<SecretStore>>,
    /// Launch tickets from secret releases, each waiting for its session's tunnel.
    launch_tickets: Mutex<Vec<LaunchTicket>>,
}

/// Opens one tunnel under a launch-only grant; held in memory only.
struct LaunchTicket {
    gateway: String,
    host: HostName,
    ticket: Secret<String>,
    expires_at: u64,
}

impl Client {
    pub fn new(home: ClientHome) -> Client {
        Client {
            home,
            secrets: None,
            launch_tickets: Mutex::new(Vec::new()),
        }
    }

    /// A client that keeps refresh tokens in `secrets` whenever it is open.
    pub fn with_secrets(home: ClientHome, secrets: Arc<SecretStore>) -> Client {
        Client {
            home,
            secrets: Some(secrets),
            launch_tickets: Mutex::new(Vec::new()),
        }
    }

    pub fn home(&self) -> &ClientHome {
        &self.home
    }

    pub async fn login(
        &self,
        url: &str,
        user: &str,
        password: Secret<String>,
        policy: PinPolicy<'_>,
    ) -> Result<LoginOutcome, ClientError> {
        let url = GatewayUrl::parse(url)?;
        let state = self.home.load()?;
        let known_pin = state
            .gateways
            .iter()
            .find(|g| g.url == url.to_string())
            .and_then(|g| g.pin);
        let pin = match policy {
            PinPolicy::Expect(fingerprint) => Some(fingerprint),
            // A pin we hold already is checked as is: a changed certificate fails loudly.
            _ if known_pin.is_some() => known_pin,
            PinPolicy::Ask(ask) => {
                match GatewayApi::new(url.clone(), Trust::SystemRoots)
                    .connect(&[b"http/1.1"])
                    .await
                {
                    Ok(_) => None,
                    Err(ClientError::UntrustedCertificate { presented, .. }) => {
                        if !ask(&url, &presented) {
                            return Err(ClientError::NotConfirmed);
                        }
                        Some(presented)
                    }
                    Err(e) => return Err(e),
                }
            }
            PinPolicy::Refuse => None,
        };
        let api = GatewayApi::new(url.clone(), pin.map_or(Trust::SystemRoots, Trust::Pinned));
        let body = serde_json::to_vec(&LoginRequest {
            user: user.to_owned(),
            password,
        })
        .expect("login request serializes");
        let tokens: TokenResponse = api
            .request(http::Method::POST, "/v1/login", Some(body), None)
            .await?;
        let outcome = LoginOutcome {
            gateway: url.to_string(),
            user: tokens.user.to_string(),
            admin: tokens.admin,
            pinned: pin,
        };
        self.store_tokens(&url, pin, tokens).await?;
        Ok(outcome)
    }

    /// The refresh token goes into the secret store when that is open, else
    /// into the 0600 state file.
    async fn store_tokens(
        &self,
        url: &GatewayUrl,
        pin: Option<CertFingerprint>,
        tokens: TokenResponse,
    ) -> Result<(), ClientError> {
        let mut refresh_token = tokens.refresh_token;
        let mut refresh_in_store = false;
        if let Some(secrets) = &self.secrets
            && secrets.ready().await
        {
            let name = GatewayState::refresh_entry(&url.to_string());
            match secrets.put(&name, &refresh_token).await {
                Ok(()) => {
                    refresh_token = Secret::new(String::new());
                    refresh_in_store = true;
                }
                Err(e) => tracing::warn!(error = %e, "the refresh token stays in the state file"),
            }
        }
        let mut state = self.home.load()?;
        let entry = GatewayState {
            url: url.to_string(),
            pin,
            user: tokens.user.to_string(),
            access_token: tokens.access_token,
            access_expires_at: tokens.access_expires_at,
            refresh_token,
            refresh_expires_at: tokens.refresh_expires_at,
            refresh_in_store,
        };
        state.gateways.retain(|g| g.url != entry.url);
        state.default_gateway = Some(entry.url.clone());
        state.gateways.push(entry);
        self.home.save(&state)
    }

    /// The gateway named (by URL), or the default one.
    fn pick<'s>(
        state: &'s ClientState,
        gateway: Option<&str>,
    ) -> Result<&'s GatewayState, ClientError> {
        match gateway {
            Some(name) => {
                let url = GatewayUrl::parse(name)?.to_string();
                state
                    .gateways
                    .iter()
                    .find(|g| g.url == url)
                    .ok_or(ClientError::NotSignedIn { gateway: url })
            }
            None => {
                if let Some(default) = &state.default_gateway
                    && let Some(found) = state.gateways.iter().find(|g| &g.url == default)
                {
                    return Ok(found);
                }
                match state.gateways.as_slice() {
                    [] => Err(ClientError::NoGateway),
                    [only] => Ok(only),
                    many => Err(ClientError::AmbiguousGateway {
                        known: many
                            .iter()
                            .map(|g| g.url.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    }),
                }
            }
        }
    }

    /// A valid access token for the gateway, refreshed if it is about to expire.
    async fn session(
        &self,
        gateway: Option<&str>,
    ) -> Result<(GatewayApi, Secret<String>), ClientError> {
        let state = self.home.load()?;
        let entry = Self::pick(&state, gateway)?.clone();
        let url = GatewayUrl::parse(&entry.url)?;
        let api = GatewayApi::new(
            url.clone(),
            entry.pin.map_or(Trust::SystemRoots, Trust::Pinned),
        );
        let now = now_secs();
        if entry.access_expires_at > now + REFRESH_MARGIN_SECS {
            return Ok((api, entry.access_token));
        }
        let not_signed_in = || ClientError::NotSignedIn {
            gateway: entry.url.clone(),
        };
        if entry.refresh_expires_at <= now {
            return Err(not_signed_in());
        }
        let refresh_token = if entry.refresh_in_store {
            // A locked store (or a CLI without one) cannot renew: sign in again.
            let Some(secrets) = &self.secrets else {
                return Err(not_signed_in());
            };
            match secrets.get(&GatewayState::refresh_entry(&entry.url)).await {
                Ok(Some(token)) => token,
                Ok(None) | Err(_) => return Err(not_signed_in()),
            }
        } else {
            entry.refresh_token.clone()
        };
        let body = serde_json::to_vec(&RefreshRequest { refresh_token })
            .expect("refresh request serializes");
        let tokens: TokenResponse = match api
            .request(http::Method::POST, "/v1/refresh", Some(body), None)
            .await
        {
            Ok(tokens) => tokens,
            Err(e) if e.status() == Some(401) => return Err(not_signed_in()),
            Err(e) => return Err(e),
        };
        let access = tokens.access_token.clone();
        self.store_tokens(&url, entry.pin, tokens).await?;
        Ok((api, access))
    }

    /// A call to the gateway's API with the session's access token (refreshed
    /// once on a 401); the answer, and the URL of the gateway that gave it.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        gateway: Option<&str>,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(T, String), ClientError> {
        let (api, token) = self.session(gateway).await?;
        let url = api.url().to_string();
        let answer = self
            .with_auth_retry(gateway, &api, token, |api, token| {
                let (method, body) = (method.clone(), body.clone());
                async move { api.request(method, path, body, Some(token.expose())).await }
            })
            .await?;
        Ok((answer, url))
    }

    pub async fn hosts(&self, gateway: Option<&str>) -> Result<HostList, ClientError> {
        Ok(self
            .call(gateway, http::Method::GET, "/v1/hosts", None)
            .await?
            .0)
    }

    /// A short-lived SSH certificate from the gateway's CA for `public_key`
    /// (one OpenSSH line; the private key stays here), to log on to `host`.
    pub async fn ssh_certificate(
        &self,
        gateway: Option<&str>,
        host: &HostName,
        public_key: &str,
    ) -> Result<SshCertificateResponse, ClientError> {
        let body = serde_json::to_vec(&SshCertificateRequest {
            host: host.clone(),
            public_key: public_key.to_owned(),
        })
        .expect("a request serializes");
        Ok(self
            .call(
                gateway,
                http::Method::POST,
                "/v1/ssh/certificate",
                Some(body),
            )
            .await?
            .0)
    }

    /// The host's credential from the gateway's vault, for the one session
    /// being opened: the caller uses it at once and drops it (its `Secret`s
    /// zeroize). The launch ticket that comes with it is kept here for that
    /// session's tunnel ([`Client::open_tunnel`]).
    pub async fn release_secret(
        &self,
        gateway: Option<&str>,
        host: &HostName,
        kind: Option<CredentialKind>,
    ) -> Result<SecretReleaseResponse, ClientError> {
        let body = serde_json::to_vec(&SecretReleaseRequest {
            host: host.clone(),
            kind,
        })
        .expect("a request serializes");
        let (released, gateway_url): (SecretReleaseResponse, _) = self
            .call(
                gateway,
                http::Method::POST,
                "/v1/secrets/release",
                Some(body),
            )
            .await?;
        let mut tickets = self.launch_tickets.lock().expect("launch tickets lock");
        let now = now_secs();
        tickets.retain(|t| t.expires_at > now);
        tickets.push(LaunchTicket {
            gateway: gateway_url,
            host: host.clone(),
            ticket: released.launch_ticket.clone(),
            expires_at: released.launch_expires_at,
        });
        Ok(released)
    }

    /// A launch ticket for `host` at `gateway`, taken (each opens one tunnel).
    fn take_launch_ticket(&self, gateway: &str, host: &str) -> Option<Secret<String>> {
        let mut tickets = self.launch_tickets.lock().expect("launch tickets lock");
        let now = now_secs();
        tickets.retain(|t| t.expires_at > now);
        let index = tickets
            .iter()
            .position(|t| t.gateway == gateway && t.host.as_str() == host)?;
        Some(tickets.remove(index).ticket)
    }

    /// A tunnel to `host`; carries a launch ticket when a secret release for
    /// this host left one.
    pub async fn open_tunnel(
        &self,
        gateway: Option<&str>,
        host: &str,
    ) -> Result<TunnelSocket, ClientError> {
        let (api, token) = self.session(gateway).await?;
        let ticket = self.take_launch_ticket(&api.url().to_string(), host);
        let ticket = ticket.as_ref();
        self.with_auth_retry(gateway, &api, token, |api, token| async move {
            api.open_tunnel_with(host, token.expose(), ticket.map(|t| t.expose().as_str()))
                .await
        })
        .await
    }

    /// A 401 on a token we believed valid (clock skew, a new signing key) gets one
    /// refresh and one retry; a second 401 means the user must sign in.
    async fn with_auth_retry<T, F, Fut>(
        &self,
        gateway: Option<&str>,
        api: &GatewayApi,
        token: Secret<String>,
        call: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(GatewayApi, Secret<String>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        match call(api.clone(), token).await {
            Err(e) if e.status() == Some(401) => {
                self.expire_access_token(gateway)?;
                let (api, token) = self.session(gateway).await?;
                match call(api.clone(), token).await {
                    Err(e) if e.status() == Some(401) => Err(ClientError::NotSignedIn {
                        gateway: api.url().to_string(),
                    }),
                    other => other,
                }
            }
            other => other,
        }
    }

    fn expire_access_token(&self, gateway: Option<&str>) -> Result<(), ClientError> {
        let mut state = self.home.load()?;
        let url = Self::pick(&state, gateway)?.url.clone();
        if let Some(entry) = state.gateways.iter_mut().find(|g| g.url == url) {
            entry.access_expires_at = 0;
        }
        self.home.save(&state)
    }

    /// Forgets the gateway's tokens (the state file's and the secret store's).
    pub async fn sign_out(&self, gateway: &str) -> Result<(), ClientError> {
        let url = GatewayUrl::parse(gateway)?.to_string();
        let mut state = self.home.load()?;
        let before = state.gateways.len();
        state.gateways.retain(|g| g.url != url);
        if state.gateways.len() == before {
            return Err(ClientError::NotSignedIn { gateway: url });
        }
        if state.default_gateway.as_deref() == Some(url.as_str()) {
            state.default_gateway = state.gateways.first().map(|g| g.url.clone());
        }
        self.home.save(&state)?;
        if let Some(secrets) = &self.secrets
            && secrets.ready().await
            && let Err(e) = secrets.remove(&GatewayState::refresh_entry(&url)).await
        {
            tracing::warn!(error = %e, "the refresh token stays in the secret store");
        }
        Ok(())
    }

    pub fn signed_in(&self) -> Result<Vec<GatewayState>, ClientError> {
        Ok(self.home.load()?.gateways)
    }
}
