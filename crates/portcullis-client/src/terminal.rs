//! A shell session wired to a terminal screen: server output goes through the
//! model, the model's replies go back to the server, and screen updates leave
//! coalesced to at most one per display frame. The final state always leaves.

use std::time::{Duration, Instant};

use portcullis_terminal::{GridPoint, Screen, ScreenSize, ScreenUpdate, SearchError, SearchMatch};
use tokio::sync::{mpsc, oneshot};

use crate::ssh::{Shell, ShellEvent, SshError};
use crate::task::{INTERNAL_ERROR, guarded};

/// One display frame at 60 Hz: no more than one update per frame leaves.
pub const FRAME: Duration = Duration::from_micros(16_667);

/// How a terminal session ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SessionEnd {
    Exited {
        status: Option<u32>,
        signal: Option<String>,
    },
    /// The server closed the channel without an exit status.
    Closed,
    /// The connection went away; the cause says why.
    Lost { cause: String },
    /// This side closed it.
    ClosedByUser,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TerminalEvent {
    Screen(ScreenUpdate),
    Ended(SessionEnd),
}

enum Command {
    Input(Vec<u8>),
    Resize(ScreenSize),
    Scroll(i32),
    Search {
        query: String,
        limit: usize,
        reply: oneshot::Sender<Result<Vec<SearchMatch>, SearchError>>,
    },
    Text {
        start: GridPoint,
        end: GridPoint,
        reply: oneshot::Sender<String>,
    },
    Visible(oneshot::Sender<Vec<String>>),
    Close,
}

#[derive(Debug, thiserror::Error)]
#[error("the terminal session has ended")]
pub struct Ended;

/// The handle a UI (or the CLI, or a test) keeps; cheap to clone.
#[derive(Clone)]
pub struct TerminalSession {
    commands: mpsc::Sender<Command>,
}

impl TerminalSession {
    /// Starts the session's task. Updates and the end arrive on `events`; a
    /// slow reader of `events` makes updates fewer (coalesced), never queued.
    pub fn start(
        shell: Shell,
        size: ScreenSize,
        scrollback_lines: usize,
        events: mpsc::Sender<TerminalEvent>,
    ) -> TerminalSession {
        let (commands, inbox) = mpsc::channel(64);
        let ended = events.clone();
        let session = run(shell, Screen::new(size, scrollback_lines), inbox, events);
        tokio::spawn(async move {
            if let Err(panic) = guarded(session).await {
                tracing::error!(%panic, "the terminal session task failed");
                let cause = INTERNAL_ERROR.to_owned();
                let _ = ended
                    .send(TerminalEvent::Ended(SessionEnd::Lost { cause }))
                    .await;
            }
        });
        TerminalSession { commands }
    }

    async fn send(&self, command: Command) -> Result<(), Ended> {
        self.commands.send(command).await.map_err(|_| Ended)
    }

    /// Keys or a paste, already encoded (see `portcullis_terminal::input`).
    pub async fn input(&self, bytes: Vec<u8>) -> Result<(), Ended> {
        self.send(Command::Input(bytes)).await
    }

    pub async fn resize(&self, size: ScreenSize) -> Result<(), Ended> {
        self.send(Command::Resize(size)).await
    }

    /// Moves the view `lines` back into the scrollback (negative: forward).
    pub async fn scroll(&self, lines: i32) -> Result<(), Ended> {
        self.send(Command::Scroll(lines)).await
    }

    pub async fn search(
        &self,
        query: String,
        limit: usize,
    ) -> Result<Result<Vec<SearchMatch>, SearchError>, Ended> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Search {
            query,
            limit,
            reply,
        })
        .await?;
        answer.await.map_err(|_| Ended)
    }

    /// The text of a selection.
    pub async fn text_between(&self, start: GridPoint, end: GridPoint) -> Result<String, Ended> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Text { start, end, reply }).await?;
        answer.await.map_err(|_| Ended)
    }

    /// The rows in view, as text.
    pub async fn visible_text(&self) -> Result<Vec<String>, Ended> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Visible(reply)).await?;
        answer.await.map_err(|_| Ended)
    }

    pub async fn close(&self) {
        let _ = self.send(Command::Close).await;
    }
}

async fn run(
    shell: Shell,
    mut screen: Screen,
    mut inbox: mpsc::Receiver<Command>,
    events: mpsc::Sender<TerminalEvent>,
) {
    let Shell { mut reader, writer } = shell;
    let mut ticker = tokio::time::interval(FRAME);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dirty = true;
    let end = loop {
        tokio::select! {
            event = reader.next() => match event {
                Some(ShellEvent::Output(bytes) | ShellEvent::Stderr(bytes)) => {
                    screen.feed(&bytes);
                    dirty = true;
                    let replies = screen.take_replies();
                    if !replies.is_empty() && let Err(e) = writer.write(&replies).await {
                        break lost(e);
                    }
                }
                Some(ShellEvent::Exited(exit)) => break SessionEnd::Exited {
                    status: exit.status,
                    signal: exit.signal,
                },
                Some(ShellEvent::Closed) => break SessionEnd::Closed,
                Some(ShellEvent::Lost(cause)) => break SessionEnd::Lost { cause },
                None => break SessionEnd::Closed,
            },
            command = inbox.recv() => match command {
                None | Some(Command::Close) => {
                    let _ = writer.close().await;
                    break SessionEnd::ClosedByUser;
                }
                Some(Command::Input(bytes)) => {
                    if screen.display_offset() > 0 {
                        screen.scroll_to_bottom();
                        dirty = true;
                    }
                    if let Err(e) = writer.write(&bytes).await {
                        break lost(e);
                    }
                }
                Some(Command::Resize(size)) => {
                    screen.resize(size);
                    dirty = true;
                    if let Err(e) = writer.resize(size.cols, size.rows).await {
                        break lost(e);
                    }
                }
                Some(Command::Scroll(lines)) => {
                    screen.scroll(lines);
                    dirty = true;
                }
                Some(Command::Search { query, limit, reply }) => {
                    let _ = reply.send(screen.search(&query, limit));
                }
                Some(Command::Text { start, end, reply }) => {
                    let _ = reply.send(screen.text_between(start, end));
                }
                Some(Command::Visible(reply)) => {
                    let _ = reply.send(screen.text());
                }
            },
            _ = ticker.tick(), if dirty => {
                // A synchronized update the server began and has not ended is
                // drawn once its time is up, ended or not.
                if screen.sync_deadline().is_some_and(|due| Instant::now() >= due) {
                    screen.end_sync();
                }
                // A full channel means the UI is behind: keep the state, send it
                // on a later frame as one update.
                if let Ok(permit) = events.try_reserve() {
                    permit.send(TerminalEvent::Screen(screen.update()));
                    // Come back while an update is held, to draw it when due.
                    dirty = screen.sync_deadline().is_some();
                }
            }
        }
    };
    // The final state includes whatever a held update holds.
    if screen.sync_deadline().is_some() {
        screen.end_sync();
        dirty = true;
    }
    if dirty {
        let _ = events.send(TerminalEvent::Screen(screen.update())).await;
    }
    let _ = events.send(TerminalEvent::Ended(end)).await;
}

fn lost(e: SshError) -> SessionEnd {
    SessionEnd::Lost {
        cause: e.to_string(),
    }
}
