//! One dialer for every route: "host X" becomes a byte stream through a
//! Portcullis gateway, through OpenSSH jump hosts (`direct-tcpip`, several hops,
//! like `ProxyJump a,b`), or by direct TCP. Protocol sessions (SSH, later RDP)
//! take the stream and never learn which route carried it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::ClientError;
use crate::session::Client;
use crate::ssh::{HostKeyTrust, Prompter, SshAuth, SshError, SshOptions, SshSession, SshTarget};

/// How an inventory entry is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Through a signed-in gateway (`None`: the last one signed in to); the host
    /// is the gateway's catalog name and the gateway picks the port.
    Gateway { gateway: Option<String> },
    /// Through SSH jump hosts, first to last; the last one connects to the host.
    Jump { hops: Vec<JumpHop> },
    /// Straight TCP from this machine.
    Direct,
}

/// One SSH jump host; its host key is checked like any other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHop {
    pub host: String,
    pub port: u16,
    pub auth: SshAuth,
}

#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error(transparent)]
    Gateway(#[from] ClientError),
    #[error("jump host {hop}: {source}")]
    Jump {
        hop: String,
        #[source]
        source: SshError,
    },
    #[error("cannot connect to {address}: {cause}")]
    Tcp { address: String, cause: String },
    #[error("the gateway route needs a signed-in client")]
    NoGatewayClient,
    #[error("a jump route needs at least one jump host")]
    NoHops,
}

/// Any byte stream a session can run over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

/// A dialed connection. For jump routes it keeps the jump sessions alive for
/// as long as it lives.
pub struct Connection {
    io: Box<dyn Io>,
    hops: Vec<SshSession>,
    route: &'static str,
}

impl Connection {
    /// `gateway`, `jump` or `direct`, for logs and the UI.
    pub fn route(&self) -> &'static str {
        self.route
    }

    /// Jump sessions are closed politely; dropping the connection also ends them.
    pub async fn close_hops(self) {
        for hop in self.hops {
            hop.close().await;
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Turns routes into connections.
#[derive(Clone)]
pub struct Dialer {
    pub client: Option<Arc<Client>>,
    pub trust: HostKeyTrust,
    pub prompter: Arc<dyn Prompter>,
    pub ssh: SshOptions,
    pub connect_timeout: Duration,
}

impl Dialer {
    pub fn new(
        client: Option<Arc<Client>>,
        trust: HostKeyTrust,
        prompter: Arc<dyn Prompter>,
    ) -> Dialer {
        Dialer {
            client,
            trust,
            prompter,
            ssh: SshOptions::default(),
            connect_timeout: Duration::from_secs(15),
        }
    }

    /// A byte stream to `host:port` along `route`.
    pub async fn dial(
        &self,
        route: &Route,
        host: &str,
        port: u16,
    ) -> Result<Connection, DialError> {
        match route {
            Route::Gateway { gateway } => {
                let client = self.client.as_ref().ok_or(DialError::NoGatewayClient)?;
                let socket = client.open_tunnel(gateway.as_deref(), host).await?;
                Ok(Connection {
                    io: Box::new(crate::tunnel::into_stream(socket)),
                    hops: Vec::new(),
                    route: "gateway",
                })
            }
            Route::Direct => Ok(Connection {
                io: Box::new(self.tcp(host, port).await?),
                hops: Vec::new(),
                route: "direct",
            }),
            Route::Jump { hops } => self.through_hops(hops, host, port).await,
        }
    }

    async fn tcp(&self, host: &str, port: u16) -> Result<tokio::net::TcpStream, DialError> {
        let address = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let error = |cause: String| DialError::Tcp {
            address: address.clone(),
            cause,
        };
        let stream = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect(&address),
        )
        .await
        .map_err(|_| error(format!("no answer within {:?}", self.connect_timeout)))?
        .map_err(|e| error(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    async fn through_hops(
        &self,
        hops: &[JumpHop],
        host: &str,
        port: u16,
    ) -> Result<Connection, DialError> {
        let first = hops.first().ok_or(DialError::NoHops)?;
        let mut sessions: Vec<SshSession> = Vec::with_capacity(hops.len());
        let mut io: Box<dyn Io> = Box::new(self.tcp(&first.host, first.port).await?);
        for (index, hop) in hops.iter().enumerate() {
            let hop_error = |source: SshError| DialError::Jump {
                hop: format!("{}:{}", hop.host, hop.port),
                source,
            };
            let session = SshSession::connect(
                io,
                SshTarget {
                    host: hop.host.clone(),
                    port: hop.port,
                },
                &hop.auth,
                self.trust.clone(),
                Arc::clone(&self.prompter),
                &self.ssh,
            )
            .await
            .map_err(hop_error)?;
            let (next_host, next_port) = match hops.get(index + 1) {
                Some(next) => (next.host.as_str(), next.port),
                None => (host, port),
            };
            io = Box::new(
                session
                    .direct_tcpip(next_host, next_port)
                    .await
                    .map_err(hop_error)?,
            );
            sessions.push(session);
        }
        Ok(Connection {
            io,
            hops: sessions,
            route: "jump",
        })
    }
}
