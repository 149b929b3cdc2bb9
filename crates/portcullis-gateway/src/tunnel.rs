//! The splice: one WebSocket on the client side, one TCP stream to the catalogued
//! host, payload bytes counted both ways.
//!
//! Framing (both directions): each binary message carries stream bytes. From the
//! client, an empty binary message means "no more bytes from me" (a TCP half-close);
//! the tunnel then lives until the host closes. Text messages are refused.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use portcullis_proto::wire::close_reason;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::metrics::Metrics;

/// Largest read from the host sent as one message.
const CHUNK: usize = 64 * 1024;
/// How long the closing frame may take to leave.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// The drain deadline has passed: every tunnel closes now.
    ForceClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpliceOutcome {
    pub bytes_from_client: u64,
    pub bytes_to_client: u64,
    pub reason: &'static str,
}

enum End {
    ClientHalfClosed,
    Done(&'static str),
}

pub async fn splice(
    socket: WebSocket,
    target: TcpStream,
    idle_timeout: Duration,
    mut phase: watch::Receiver<Phase>,
    metrics: &Metrics,
) -> SpliceOutcome {
    let (mut sink, mut stream) = socket.split();
    let (target_read, mut target_write) = target.into_split();
    let from_client = AtomicU64::new(0);
    let to_client = AtomicU64::new(0);
    let start = Instant::now();
    let last_activity_ms = AtomicU64::new(0);
    let touch = || last_activity_ms.store(start.elapsed().as_millis() as u64, Relaxed);

    let reason = {
        let up = async {
            while let Some(message) = stream.next().await {
                match message {
                    Ok(Message::Binary(data)) if data.is_empty() => {
                        let _ = target_write.shutdown().await;
                        return End::ClientHalfClosed;
                    }
                    Ok(Message::Binary(data)) => {
                        if target_write.write_all(&data).await.is_err() {
                            return End::Done(close_reason::TARGET_ERROR);
                        }
                        from_client.fetch_add(data.len() as u64, Relaxed);
                        metrics
                            .bytes_from_client
                            .fetch_add(data.len() as u64, Relaxed);
                        touch();
                    }
                    Ok(Message::Text(_)) => return End::Done("client_sent_text"),
                    Ok(Message::Close(_)) => return End::Done("client_closed"),
                    Ok(Message::Ping(_) | Message::Pong(_)) => {}
                    Err(_) => return End::Done("client_error"),
                }
            }
            End::Done("client_closed")
        };
        let down = async {
            loop {
                if target_read.readable().await.is_err() {
                    return close_reason::TARGET_ERROR;
                }
                let mut buffer = BytesMut::with_capacity(CHUNK);
                match target_read.try_read_buf(&mut buffer) {
                    Ok(0) => return close_reason::TARGET_CLOSED,
                    Ok(n) => {
                        if sink.send(Message::Binary(buffer.freeze())).await.is_err() {
                            return "client_error";
                        }
                        to_client.fetch_add(n as u64, Relaxed);
                        metrics.bytes_to_client.fetch_add(n as u64, Relaxed);
                        touch();
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return close_reason::TARGET_ERROR,
                }
            }
        };
        let watchdog = async {
            loop {
                let idle_since = Duration::from_millis(last_activity_ms.load(Relaxed));
                let deadline = start + idle_since + idle_timeout;
                if Instant::now() >= deadline {
                    return close_reason::IDLE_TIMEOUT;
                }
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {}
                    changed = phase.changed() => {
                        if changed.is_err() || *phase.borrow() == Phase::ForceClose {
                            return close_reason::SHUTDOWN;
                        }
                    }
                }
            }
        };
        tokio::pin!(up, down, watchdog);
        let mut up_open = true;
        loop {
            tokio::select! {
                end = &mut up, if up_open => match end {
                    End::ClientHalfClosed => up_open = false,
                    End::Done(reason) => break reason,
                },
                reason = &mut down => break reason,
                reason = &mut watchdog => break reason,
            }
        }
    };

    let frame = CloseFrame {
        code: match reason {
            close_reason::SHUTDOWN => 1001,
            close_reason::TARGET_ERROR => 1011,
            _ => 1000,
        },
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
    let _ = target_write.shutdown().await;
    SpliceOutcome {
        bytes_from_client: from_client.load(Relaxed),
        bytes_to_client: to_client.load(Relaxed),
        reason,
    }
}
