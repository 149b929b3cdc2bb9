//! Moving bytes between a local stream and a tunnel.
//!
//! Framing matches the gateway's: binary messages carry bytes; an empty binary
//! message says "no more bytes from me" (a half-close), and the tunnel ends when
//! the gateway sends a close frame.

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use crate::api::TunnelSocket;

/// Largest local read sent as one message; the gateway accepts up to 256 KiB.
const CHUNK: usize = 128 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PumpOutcome {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// The gateway's close reason, e.g. `target_closed` or `idle_timeout`.
    pub close_reason: Option<String>,
}

/// Copies `input` into the tunnel and the tunnel into `output` until the gateway
/// closes it. EOF on `input` half-closes the tunnel.
pub async fn pump<R, W>(
    socket: TunnelSocket,
    mut input: R,
    mut output: W,
) -> std::io::Result<PumpOutcome>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = socket.split();
    let mut sent = 0u64;
    let mut received = 0u64;
    let up = async {
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let n = input.read(&mut buffer).await?;
            let message = Message::Binary(buffer[..n].to_vec().into());
            sink.send(message).await.map_err(std::io::Error::other)?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            sent += n as u64;
        }
    };
    let down = async {
        while let Some(message) = stream.next().await {
            match message.map_err(std::io::Error::other)? {
                Message::Binary(data) => {
                    output.write_all(&data).await?;
                    output.flush().await?;
                    received += data.len() as u64;
                }
                Message::Close(frame) => {
                    return Ok::<_, std::io::Error>(frame.map(|f| f.reason.to_string()));
                }
                _ => {}
            }
        }
        Ok(None)
    };
    let reason = {
        tokio::pin!(up, down);
        let mut up_done = false;
        loop {
            tokio::select! {
                // EOF or a local read error ends our half only; the gateway closes the rest.
                _ = &mut up, if !up_done => up_done = true,
                result = &mut down => break result?,
            }
        }
    };
    let _ = output.shutdown().await;
    Ok(PumpOutcome {
        bytes_sent: sent,
        bytes_received: received,
        close_reason: reason,
    })
}

/// A tunnel as a plain byte stream, for protocol clients (SSH, RDP) that want
/// `AsyncRead + AsyncWrite`. A task pumps between the two; dropping the stream
/// half-closes the tunnel.
pub fn into_stream(socket: TunnelSocket) -> tokio::io::DuplexStream {
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    tokio::spawn(async move {
        let (read, write) = tokio::io::split(theirs);
        if let Err(e) = pump(socket, read, write).await {
            tracing::debug!(error = %e, "tunnel stream ended with an error");
        }
    });
    ours
}
