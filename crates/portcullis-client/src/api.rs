//! The gateway's HTTPS API and the tunnel upgrade, over one TLS connection each.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use portcullis_proto::CertFingerprint;
use portcullis_proto::wire::ErrorBody;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::error::ClientError;
use crate::tls::{Trust, client_config};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

pub type TunnelSocket = WebSocketStream<TlsStream<TcpStream>>;

/// `https://host[:port]`, normalised. A bare `host[:port]` means https.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayUrl {
    host: String,
    port: u16,
}

impl GatewayUrl {
    pub fn parse(input: &str) -> Result<GatewayUrl, ClientError> {
        let bad = |why: &str| ClientError::BadUrl {
            url: input.chars().take(200).collect(),
            why: why.into(),
        };
        let rest = match input.split_once("://") {
            Some(("https", rest)) => rest,
            Some((scheme, _)) => {
                return Err(bad(&format!(
                    "scheme {scheme:?}: a gateway speaks https only"
                )));
            }
            None => input,
        };
        let authority = rest.trim_end_matches('/');
        if authority.contains('/') || authority.contains('?') || authority.contains('@') {
            return Err(bad("give only https://host[:port], no path, query or user"));
        }
        let uri: http::uri::Authority = authority.parse().map_err(|_| bad("not a host[:port]"))?;
        let host = uri
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(GatewayUrl {
            host,
            port: uri.port_u16().unwrap_or(443),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for GatewayUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.port == 443 {
            write!(f, "https://{}", self.authority().trim_end_matches(":443"))
        } else {
            write!(f, "https://{}", self.authority())
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// One gateway, trusted in one way.
#[derive(Debug, Clone)]
pub struct GatewayApi {
    url: GatewayUrl,
    trust: Trust,
}

impl GatewayApi {
    pub fn new(url: GatewayUrl, trust: Trust) -> GatewayApi {
        GatewayApi { url, trust }
    }

    pub fn url(&self) -> &GatewayUrl {
        &self.url
    }

    fn name(&self) -> String {
        self.url.to_string()
    }

    /// A TLS connection, or an error that says why the certificate was refused.
    pub async fn connect(&self, alpn: &[&[u8]]) -> Result<TlsStream<TcpStream>, ClientError> {
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((self.url.host.as_str(), self.url.port)),
        )
        .await
        .map_err(|_| ClientError::Connect {
            gateway: self.name(),
            cause: "timed out".into(),
        })?
        .map_err(|e| ClientError::Connect {
            gateway: self.name(),
            cause: e.to_string(),
        })?;
        let _ = tcp.set_nodelay(true);
        let (config, verifier) = client_config(self.trust.clone(), alpn);
        let server_name =
            ServerName::try_from(self.url.host.clone()).map_err(|e| ClientError::BadUrl {
                url: self.name(),
                why: e.to_string(),
            })?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let handshake =
            tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(server_name, tcp)).await;
        match handshake {
            Ok(Ok(tls)) => Ok(tls),
            Ok(Err(e)) => Err(match (&self.trust, verifier.presented()) {
                (Trust::Pinned(pinned), Some(presented)) if *pinned != presented => {
                    ClientError::CertificateChanged {
                        gateway: self.name(),
                        pinned: *pinned,
                        presented,
                    }
                }
                (Trust::SystemRoots, Some(presented)) if is_certificate_error(&e) => {
                    ClientError::UntrustedCertificate {
                        gateway: self.name(),
                        presented,
                    }
                }
                _ => ClientError::Tls {
                    gateway: self.name(),
                    cause: e.to_string(),
                },
            }),
            Err(_) => Err(ClientError::Tls {
                gateway: self.name(),
                cause: "handshake timed out".into(),
            }),
        }
    }

    /// Only asks for the certificate's fingerprint (for a first-use prompt).
    pub async fn presented_fingerprint(&self) -> Result<CertFingerprint, ClientError> {
        match self.connect(&[b"http/1.1"]).await {
            Err(ClientError::UntrustedCertificate { presented, .. }) => Ok(presented),
            Err(ClientError::CertificateChanged { presented, .. }) => Ok(presented),
            Err(e) => Err(e),
            Ok(tls) => Ok(CertFingerprint::of_der(
                tls.get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .ok_or_else(|| self.protocol("no certificate"))?,
            )),
        }
    }

    fn protocol(&self, cause: impl std::fmt::Display) -> ClientError {
        ClientError::Protocol {
            gateway: self.name(),
            cause: cause.to_string(),
        }
    }

    fn refusal(&self, status: u16, body: &[u8]) -> ClientError {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(error) => ClientError::Refused {
                gateway: self.name(),
                status,
                code: error.code,
                message: error.message,
            },
            Err(_) => ClientError::Refused {
                gateway: self.name(),
                status,
                code: format!("http_{status}"),
                message: format!("HTTP status {status}"),
            },
        }
    }

    /// One JSON request; a non-2xx answer becomes `ClientError::Refused`.
    pub async fn request<T: serde::de::DeserializeOwned>(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<&str>,
    ) -> Result<T, ClientError> {
        let work = async {
            let tls = self.connect(&[b"http/1.1"]).await?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| self.protocol(e))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            let mut request = http::Request::builder()
                .method(method)
                .uri(path)
                .header(http::header::HOST, self.url.authority())
                .header(http::header::ACCEPT, "application/json");
            if body.is_some() {
                request = request.header(http::header::CONTENT_TYPE, "application/json");
            }
            if let Some(token) = token {
                request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
            }
            let request = request
                .body(Full::new(Bytes::from(body.unwrap_or_default())))
                .map_err(|e| self.protocol(e))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| self.protocol(e))?;
            let status = response.status();
            let bytes = Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| self.protocol(e))?
                .to_bytes();
            if !status.is_success() {
                return Err(self.refusal(status.as_u16(), &bytes));
            }
            serde_json::from_slice(&bytes).map_err(|e| self.protocol(e))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, work)
            .await
            .map_err(|_| self.protocol("no answer in time"))?
    }

    /// Upgrades to a tunnel to the named host. The name is sent as given (encoded),
    /// so that the gateway, not the client, decides what exists.
    pub async fn open_tunnel(&self, host: &str, token: &str) -> Result<TunnelSocket, ClientError> {
        self.open_tunnel_with(host, token, None).await
    }

    /// [`GatewayApi::open_tunnel`] carrying a launch ticket from a secret
    /// release (needed under a launch-only grant).
    pub async fn open_tunnel_with(
        &self,
        host: &str,
        token: &str,
        launch_ticket: Option<&str>,
    ) -> Result<TunnelSocket, ClientError> {
        let tls = self.connect(&[b"http/1.1"]).await?;
        let url = format!(
            "wss://{}/v1/tunnel/{}",
            self.url.authority(),
            encode_path_segment(host)
        );
        let mut request = url.into_client_request().map_err(|e| self.protocol(e))?;
        request.headers_mut().insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}")
                .parse()
                .map_err(|_| self.protocol("token is not a valid header value"))?,
        );
        if let Some(ticket) = launch_ticket {
            request.headers_mut().insert(
                portcullis_proto::wire::LAUNCH_HEADER,
                ticket
                    .parse()
                    .map_err(|_| self.protocol("launch ticket is not a valid header value"))?,
            );
        }
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(64 * 1024)
            .write_buffer_size(0)
            .max_message_size(Some(4 * 1024 * 1024))
            .max_frame_size(Some(4 * 1024 * 1024));
        let upgrade = tokio_tungstenite::client_async_with_config(request, tls, Some(config));
        match tokio::time::timeout(REQUEST_TIMEOUT, upgrade).await {
            Err(_) => Err(self.protocol("no answer to the tunnel request in time")),
            Ok(Ok((socket, _response))) => Ok(socket),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => Err(self.refusal(
                response.status().as_u16(),
                response.body().as_deref().unwrap_or_default(),
            )),
            Ok(Err(e)) => Err(self.protocol(e)),
        }
    }
}

fn is_certificate_error(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalised_and_checked() {
        let u = GatewayUrl::parse("https://gw.example.com").unwrap();
        assert_eq!((u.host(), u.port()), ("gw.example.com", 443));
        assert_eq!(u.to_string(), "https://gw.example.com");
        let u = GatewayUrl::parse("10.1.0.1:8443/").unwrap();
        assert_eq!(u.to_string(), "https://10.1.0.1:8443");
        let u = GatewayUrl::parse("https://[::1]:9443").unwrap();
        assert_eq!((u.host(), u.port()), ("::1", 9443));
        assert_eq!(u.to_string(), "https://[::1]:9443");
        for bad in [
            "http://gw",
            "https://gw/path",
            "https://user@gw",
            "",
            "https://",
        ] {
            assert!(GatewayUrl::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_path_segment("web1"), "web1");
        assert_eq!(encode_path_segment("[::1]"), "%5B%3A%3A1%5D");
        assert_eq!(encode_path_segment("a/b c"), "a%2Fb%20c");
    }
}
