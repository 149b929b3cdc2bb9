//! A session channel split in two: the writer (keys, resizes, EOF) can live in
//! one task while the reader (output, exit) lives in another.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use super::SshError;

/// What a PTY is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtyRequest {
    /// `TERM` on the server, e.g. `xterm-256color`.
    pub term: String,
    pub cols: u16,
    pub rows: u16,
    /// Sent before the shell starts; the server keeps only what its `AcceptEnv` allows.
    pub env: Vec<(String, String)>,
}

impl PtyRequest {
    pub fn xterm(cols: u16, rows: u16) -> PtyRequest {
        PtyRequest {
            term: "xterm-256color".into(),
            cols,
            rows,
            env: Vec::new(),
        }
    }
}

/// How the remote program ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExitInfo {
    pub status: Option<u32>,
    pub signal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellEvent {
    Output(Bytes),
    Stderr(Bytes),
    /// The program ended and the channel closed.
    Exited(ExitInfo),
    /// The channel closed without an exit status (the server's choice).
    Closed,
    /// The connection went away under the channel.
    Lost(String),
}

pub struct Shell {
    pub reader: ShellReader,
    pub writer: ShellWriter,
}

impl Shell {
    pub(super) fn new(
        channel: russh::Channel<Msg>,
        host: String,
        disconnect: Arc<Mutex<Option<String>>>,
    ) -> Shell {
        let (read, write) = channel.split();
        Shell {
            reader: ShellReader {
                read,
                exit: ExitInfo {
                    status: None,
                    signal: None,
                },
                disconnect,
                done: false,
            },
            writer: ShellWriter {
                write: Arc::new(write),
                host,
            },
        }
    }
}

pub struct ShellReader {
    read: ChannelReadHalf,
    exit: ExitInfo,
    disconnect: Arc<Mutex<Option<String>>>,
    done: bool,
}

impl ShellReader {
    /// The next event; after `Exited`, `Closed` or `Lost`, always `None`.
    pub async fn next(&mut self) -> Option<ShellEvent> {
        if self.done {
            return None;
        }
        loop {
            let Some(message) = self.read.wait().await else {
                self.done = true;
                if self.exit.status.is_some() || self.exit.signal.is_some() {
                    return Some(ShellEvent::Exited(self.exit.clone()));
                }
                // Give russh's session task a moment to record why it ended.
                tokio::task::yield_now().await;
                let cause = self
                    .disconnect
                    .lock()
                    .expect("disconnect lock")
                    .clone()
                    .unwrap_or_else(|| "the connection closed".into());
                return Some(ShellEvent::Lost(cause));
            };
            match message {
                ChannelMsg::Data { data } => return Some(ShellEvent::Output(data)),
                ChannelMsg::ExtendedData { data, .. } => return Some(ShellEvent::Stderr(data)),
                ChannelMsg::ExitStatus { exit_status } => self.exit.status = Some(exit_status),
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    self.exit.signal = Some(signal_name_of(&signal_name))
                }
                ChannelMsg::Close => {
                    self.done = true;
                    return Some(
                        if self.exit.status.is_some() || self.exit.signal.is_some() {
                            ShellEvent::Exited(self.exit.clone())
                        } else {
                            ShellEvent::Closed
                        },
                    );
                }
                _ => {}
            }
        }
    }
}

/// Cheap to clone: every clone writes to the same channel.
#[derive(Clone)]
pub struct ShellWriter {
    write: Arc<ChannelWriteHalf<Msg>>,
    host: String,
}

impl ShellWriter {
    fn lost(&self, e: russh::Error) -> SshError {
        SshError::ConnectionLost {
            host: self.host.clone(),
            cause: e.to_string(),
        }
    }

    pub async fn write(&self, bytes: &[u8]) -> Result<(), SshError> {
        self.write
            .data_bytes(Bytes::copy_from_slice(bytes))
            .await
            .map_err(|e| self.lost(e))
    }

    /// Tells the server the terminal is now `cols`×`rows` (SIGWINCH on its side).
    pub async fn resize(&self, cols: u16, rows: u16) -> Result<(), SshError> {
        self.write
            .window_change(u32::from(cols), u32::from(rows), 0, 0)
            .await
            .map_err(|e| self.lost(e))
    }

    /// No more input (the remote program reads end of file).
    pub async fn eof(&self) -> Result<(), SshError> {
        self.write.eof().await.map_err(|e| self.lost(e))
    }

    pub async fn close(&self) -> Result<(), SshError> {
        self.write.close().await.map_err(|e| self.lost(e))
    }
}

pub(super) fn signal_name(sig: &russh::Sig) -> String {
    signal_name_of(sig)
}

fn signal_name_of(sig: &russh::Sig) -> String {
    match sig {
        russh::Sig::Custom(name) => name.clone(),
        other => format!("{other:?}"),
    }
}
