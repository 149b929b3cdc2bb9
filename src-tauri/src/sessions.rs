//! Live sessions and the questions they ask. Each session streams its events
//! (state, screen updates, prompts, the end) to the UI over its own IPC channel;
//! the UI answers prompts with `prompt_answer`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use portcullis_client::ssh::{HostKeyDecision, InteractiveRequest, Prompter, UnknownHostKey};
use portcullis_client::terminal::{SessionEnd, TerminalSession};
use portcullis_proto::Secret;
use portcullis_terminal::ScreenUpdate;
use tauri::ipc::Channel;
use tokio::sync::oneshot;

use crate::error::UiError;

/// A person who walked away does not hold a connection attempt forever.
const PROMPT_PATIENCE: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SessionEvent {
    /// `connecting`, `connected`.
    State {
        state: &'static str,
        route: Option<&'static str>,
    },
    Screen {
        update: ScreenUpdate,
    },
    Prompt {
        prompt: Prompt,
    },
    /// The session could not start.
    Failed {
        error: UiError,
    },
    Ended {
        end: SessionEnd,
    },
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Prompt {
    HostKey {
        id: u64,
        key: UnknownHostKey,
    },
    Password {
        id: u64,
        user: String,
        host: String,
    },
    Passphrase {
        id: u64,
        key_file: String,
    },
    Interactive {
        id: u64,
        request: InteractiveRequest,
    },
}

/// The UI's answer; `None` values mean cancelled.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PromptAnswer {
    HostKey { decision: HostKeyDecision },
    Secret { value: Option<String> },
    Answers { values: Option<Vec<String>> },
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<PromptAnswer>>>>;

/// Every session and every open question of this window.
#[derive(Default)]
pub struct Sessions {
    next: AtomicU64,
    live: Mutex<HashMap<u64, TerminalSession>>,
    pending: Pending,
}

impl Sessions {
    pub fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn insert(&self, id: u64, session: TerminalSession) {
        self.live.lock().expect("sessions lock").insert(id, session);
    }

    pub fn get(&self, id: u64) -> Result<TerminalSession, UiError> {
        self.live
            .lock()
            .expect("sessions lock")
            .get(&id)
            .cloned()
            .ok_or_else(|| UiError::new("no_session", format!("session {id} has ended")))
    }

    pub fn remove(&self, id: u64) -> Option<TerminalSession> {
        self.live.lock().expect("sessions lock").remove(&id)
    }

    pub fn prompter(&self, channel: Channel<SessionEvent>) -> Arc<dyn Prompter> {
        Arc::new(UiPrompter {
            channel,
            pending: Arc::clone(&self.pending),
            next: Arc::new(AtomicU64::new(0)),
            session_tag: self.next.load(Ordering::Relaxed) << 20,
        })
    }

    /// Delivers an answer; a late or unknown one is refused, never misrouted.
    pub fn answer(&self, id: u64, answer: PromptAnswer) -> Result<(), UiError> {
        let waiting = self.pending.lock().expect("pending lock").remove(&id);
        match waiting {
            Some(sender) => sender
                .send(answer)
                .map_err(|_| UiError::new("prompt_gone", "that question is no longer asked")),
            None => Err(UiError::new(
                "prompt_gone",
                "that question is no longer asked",
            )),
        }
    }
}

struct UiPrompter {
    channel: Channel<SessionEvent>,
    pending: Pending,
    next: Arc<AtomicU64>,
    /// Keeps prompt ids of different sessions apart.
    session_tag: u64,
}

impl UiPrompter {
    async fn ask(&self, make: impl FnOnce(u64) -> Prompt) -> Option<PromptAnswer> {
        let id = self.session_tag | (self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let (sender, receiver) = oneshot::channel();
        self.pending
            .lock()
            .expect("pending lock")
            .insert(id, sender);
        if self
            .channel
            .send(SessionEvent::Prompt { prompt: make(id) })
            .is_err()
        {
            self.pending.lock().expect("pending lock").remove(&id);
            return None;
        }
        let answer = tokio::time::timeout(PROMPT_PATIENCE, receiver).await;
        self.pending.lock().expect("pending lock").remove(&id);
        answer.ok().and_then(Result::ok)
    }

    async fn secret(&self, make: impl FnOnce(u64) -> Prompt) -> Option<Secret<String>> {
        match self.ask(make).await? {
            PromptAnswer::Secret { value } => value.map(Secret::new),
            _ => None,
        }
    }
}

impl Prompter for UiPrompter {
    fn unknown_host_key<'a>(&'a self, key: &'a UnknownHostKey) -> BoxFuture<'a, HostKeyDecision> {
        Box::pin(async move {
            match self
                .ask(|id| Prompt::HostKey {
                    id,
                    key: key.clone(),
                })
                .await
            {
                Some(PromptAnswer::HostKey { decision }) => decision,
                _ => HostKeyDecision::Reject,
            }
        })
    }

    fn passphrase<'a>(&'a self, key_file: &'a Path) -> BoxFuture<'a, Option<Secret<String>>> {
        Box::pin(self.secret(move |id| Prompt::Passphrase {
            id,
            key_file: key_file.display().to_string(),
        }))
    }

    fn password<'a>(
        &'a self,
        user: &'a str,
        host: &'a str,
    ) -> BoxFuture<'a, Option<Secret<String>>> {
        Box::pin(self.secret(move |id| Prompt::Password {
            id,
            user: user.to_owned(),
            host: host.to_owned(),
        }))
    }

    fn keyboard_interactive<'a>(
        &'a self,
        request: &'a InteractiveRequest,
    ) -> BoxFuture<'a, Option<Vec<Secret<String>>>> {
        Box::pin(async move {
            match self
                .ask(|id| Prompt::Interactive {
                    id,
                    request: request.clone(),
                })
                .await?
            {
                PromptAnswer::Answers { values } => {
                    Some(values?.into_iter().map(Secret::new).collect())
                }
                _ => None,
            }
        })
    }
}
