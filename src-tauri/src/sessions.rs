//! Live sessions and the questions they ask. Each session streams its events
//! (state, screen updates, prompts, the end) to the UI over its own IPC channel;
//! the UI answers prompts with `prompt_answer`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use portcullis_client::rdp::RdpEnd;
use portcullis_client::secrets::SecretStore;
use portcullis_client::ssh::{HostKeyDecision, InteractiveRequest, Prompter, UnknownHostKey};
use portcullis_client::terminal::{SessionEnd, TerminalSession};
use portcullis_proto::Secret;
use portcullis_terminal::ScreenUpdate;
use tauri::ipc::Channel;
use tokio::sync::oneshot;

use crate::desktop::Desktop;
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
    /// An RDP session is up: what its toolbar may offer.
    DesktopReady {
        /// The host shares the clipboard (it can be paused from the toolbar).
        clipboard: bool,
        /// The host fixes a resolution: the desktop is scaled, never resized.
        fixed_size: bool,
    },
    /// An RDP session ended (its pixels travel on their own channel).
    DesktopEnded {
        end: RdpEnd,
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
        /// The store is open and this host is an inventory entry.
        can_remember: bool,
        /// The saved password was tried and not accepted.
        saved_rejected: bool,
    },
    Passphrase {
        id: u64,
        key_file: String,
        can_remember: bool,
        saved_rejected: bool,
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
    HostKey {
        decision: HostKeyDecision,
    },
    Secret {
        value: Option<String>,
        /// Keep it in the secret store once the connection succeeds.
        #[serde(default)]
        remember: bool,
    },
    Answers {
        values: Option<Vec<String>>,
    },
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<PromptAnswer>>>>;

/// Every session and every open question of this window.
#[derive(Default)]
pub struct Sessions {
    next: AtomicU64,
    live: Mutex<HashMap<u64, TerminalSession>>,
    desktops: Mutex<HashMap<u64, Arc<Desktop>>>,
    /// Tabs closed while their session was still connecting.
    closed_early: Mutex<std::collections::HashSet<u64>>,
    pending: Pending,
}

impl Sessions {
    pub fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Keeps a session that just came up; `false` (and nothing kept) when its
    /// tab was closed while it was connecting: the caller ends it.
    #[must_use]
    pub fn insert(&self, id: u64, session: TerminalSession) -> bool {
        if self.take_closed_early(id) {
            return false;
        }
        self.live.lock().expect("sessions lock").insert(id, session);
        true
    }

    /// Notes that the tab of a session still connecting was closed.
    pub fn close_early(&self, id: u64) {
        if id > 0 && id <= self.next.load(Ordering::Relaxed) {
            self.closed_early.lock().expect("sessions lock").insert(id);
        }
    }

    /// Whether the tab was closed while connecting (and forgets it).
    pub fn take_closed_early(&self, id: u64) -> bool {
        self.closed_early.lock().expect("sessions lock").remove(&id)
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

    /// As [`Sessions::insert`], for an RDP session.
    #[must_use]
    pub fn insert_desktop(&self, id: u64, desktop: Arc<Desktop>) -> bool {
        if self.take_closed_early(id) {
            return false;
        }
        self.desktops
            .lock()
            .expect("sessions lock")
            .insert(id, desktop);
        true
    }

    pub fn desktop(&self, id: u64) -> Result<Arc<Desktop>, UiError> {
        self.desktops
            .lock()
            .expect("sessions lock")
            .get(&id)
            .cloned()
            .ok_or_else(|| UiError::new("no_session", format!("session {id} has ended")))
    }

    pub fn remove_desktop(&self, id: u64) -> Option<Arc<Desktop>> {
        self.desktops.lock().expect("sessions lock").remove(&id)
    }

    pub fn prompter(
        &self,
        channel: Channel<SessionEvent>,
        saved: Arc<SavedSecrets>,
    ) -> Arc<dyn Prompter> {
        Arc::new(UiPrompter {
            channel,
            pending: Arc::clone(&self.pending),
            next: Arc::new(AtomicU64::new(0)),
            session_tag: self.next.load(Ordering::Relaxed) << 20,
            saved,
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

/// A password the secret store may hold for one host of a connection (the
/// target or a jump host), by the user and address the SSH layer asks with.
#[derive(Debug, Clone)]
pub struct PasswordSlot {
    pub user: String,
    pub address: String,
    /// The secret store entry's name.
    pub name: String,
    /// The inventory host to note `name` on once it is stored.
    pub host_id: i64,
}

/// What one connection attempt may read from, and wants to keep in, the secret
/// store. Stored values are offered once each; a rejected one leads to a prompt
/// that says so. What the person asks to remember is written only after the
/// connection succeeded.
pub struct SavedSecrets {
    store: Arc<SecretStore>,
    passwords: Vec<PasswordSlot>,
    /// Names looked up in the store, and whether a stored value was given.
    offered: Mutex<HashMap<String, bool>>,
    chosen: Mutex<Vec<(Keep, Secret<String>)>>,
}

/// A typed-in secret to keep: (entry name, inventory host to note it on).
type Keep = (String, Option<i64>);

impl SavedSecrets {
    pub fn new(store: Arc<SecretStore>, passwords: Vec<PasswordSlot>) -> SavedSecrets {
        SavedSecrets {
            store,
            passwords,
            offered: Mutex::default(),
            chosen: Mutex::default(),
        }
    }

    /// The stored value, the first time `name` is asked for.
    async fn offer(&self, name: &str) -> Option<Secret<String>> {
        {
            let mut offered = self.offered.lock().expect("offered lock");
            if offered.contains_key(name) {
                return None;
            }
            offered.insert(name.to_owned(), false);
        }
        if !self.store.ready().await {
            return None;
        }
        let found = match self.store.get(name).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(entry = name, error = %e, "cannot read the secret store");
                None
            }
        };
        if found.is_some() {
            self.offered
                .lock()
                .expect("offered lock")
                .insert(name.to_owned(), true);
        }
        found
    }

    /// A stored value was given for `name` and, being asked again, was refused;
    /// said once.
    fn stored_was_refused(&self, name: &str) -> bool {
        self.offered
            .lock()
            .expect("offered lock")
            .get_mut(name)
            .map(std::mem::take)
            .unwrap_or(false)
    }

    fn choose(&self, keep: Keep, secret: &Secret<String>) {
        let mut chosen = self.chosen.lock().expect("chosen lock");
        chosen.retain(|((name, _), _)| name != &keep.0);
        chosen.push((keep, secret.clone()));
    }

    /// Writes what the person asked to remember; returns the inventory hosts to
    /// note an entry on. Called once the connection succeeded.
    pub async fn keep_chosen(&self) -> Vec<(i64, String)> {
        let chosen = std::mem::take(&mut *self.chosen.lock().expect("chosen lock"));
        let mut noted = Vec::new();
        for ((name, host_id), secret) in chosen {
            match self.store.put(&name, &secret).await {
                Ok(()) => noted.extend(host_id.map(|id| (id, name))),
                Err(e) => tracing::warn!(entry = %name, error = %e, "cannot keep the secret"),
            }
        }
        noted
    }
}

struct UiPrompter {
    channel: Channel<SessionEvent>,
    pending: Pending,
    next: Arc<AtomicU64>,
    /// Keeps prompt ids of different sessions apart.
    session_tag: u64,
    saved: Arc<SavedSecrets>,
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

    /// A stored secret if there is one not yet tried, else the person's answer
    /// (kept later if they ask and `keep` allows).
    async fn secret(
        &self,
        keep: Option<Keep>,
        make: impl FnOnce(u64, bool, bool) -> Prompt,
    ) -> Option<Secret<String>> {
        let mut rejected = false;
        if let Some((name, _)) = &keep {
            rejected = self.saved.stored_was_refused(name);
            if let Some(stored) = self.saved.offer(name).await {
                return Some(stored);
            }
        }
        let can_remember = keep.is_some() && self.saved.store.ready().await;
        match self.ask(|id| make(id, can_remember, rejected)).await? {
            PromptAnswer::Secret { value, remember } => {
                let value = value.map(Secret::new)?;
                if let (true, true, Some(keep)) = (remember, can_remember, keep) {
                    self.saved.choose(keep, &value);
                }
                Some(value)
            }
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
        let keep = (format!("passphrase/{}", key_file.display()), None);
        Box::pin(
            self.secret(Some(keep), move |id, can_remember, saved_rejected| {
                Prompt::Passphrase {
                    id,
                    key_file: key_file.display().to_string(),
                    can_remember,
                    saved_rejected,
                }
            }),
        )
    }

    fn password<'a>(
        &'a self,
        user: &'a str,
        host: &'a str,
    ) -> BoxFuture<'a, Option<Secret<String>>> {
        let keep = self
            .saved
            .passwords
            .iter()
            .find(|slot| slot.user == user && slot.address == host)
            .map(|slot| (slot.name.clone(), Some(slot.host_id)));
        Box::pin(self.secret(keep, move |id, can_remember, saved_rejected| {
            Prompt::Password {
                id,
                user: user.to_owned(),
                host: host.to_owned(),
                can_remember,
                saved_rejected,
            }
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

#[cfg(test)]
mod tests {
    use portcullis_client::secrets::StoreChoice;

    use super::*;

    async fn open_store(dir: &Path) -> Arc<SecretStore> {
        let store = SecretStore::open_with(dir, StoreChoice::File, None)
            .await
            .unwrap();
        store
            .unlock(Secret::new("sessions-master-1".into()))
            .await
            .unwrap();
        Arc::new(store)
    }

    #[test]
    fn a_tab_closed_while_connecting_is_noted_once_for_its_own_session() {
        let sessions = Sessions::default();
        // No session was ever opened with this id: nothing to note.
        sessions.close_early(1);
        assert!(!sessions.take_closed_early(1));
        let id = sessions.next_id();
        sessions.close_early(id);
        assert!(sessions.take_closed_early(id));
        assert!(!sessions.take_closed_early(id), "noted once");
    }

    #[tokio::test]
    async fn a_stored_secret_is_offered_once_and_its_refusal_said_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path()).await;
        store
            .put("password/1-1", &Secret::new("stored-pw".into()))
            .await
            .unwrap();
        let saved = SavedSecrets::new(Arc::clone(&store), Vec::new());
        assert!(!saved.stored_was_refused("password/1-1"));
        let offered = saved.offer("password/1-1").await.unwrap();
        assert_eq!(offered.expose(), "stored-pw");
        // Asked again: the stored one was refused; say so once, offer nothing.
        assert!(saved.offer("password/1-1").await.is_none());
        assert!(saved.stored_was_refused("password/1-1"));
        assert!(!saved.stored_was_refused("password/1-1"));
        // Nothing stored: nothing offered, nothing to call refused.
        assert!(saved.offer("password/2-2").await.is_none());
        assert!(!saved.stored_was_refused("password/2-2"));
    }

    #[tokio::test]
    async fn only_the_last_answer_to_remember_is_kept_and_noted_on_its_host() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path()).await;
        let saved = SavedSecrets::new(Arc::clone(&store), Vec::new());
        let keep = ("password/7-7".to_owned(), Some(7));
        saved.choose(keep.clone(), &Secret::new("first-try".into()));
        saved.choose(keep, &Secret::new("second-try".into()));
        saved.choose(
            ("passphrase//k".to_owned(), None),
            &Secret::new("phrase".into()),
        );
        let noted = saved.keep_chosen().await;
        assert_eq!(noted, vec![(7, "password/7-7".to_owned())]);
        assert_eq!(
            store.get("password/7-7").await.unwrap().unwrap().expose(),
            "second-try"
        );
        assert_eq!(
            store.get("passphrase//k").await.unwrap().unwrap().expose(),
            "phrase"
        );
        // Kept once: a second call writes nothing more.
        assert!(saved.keep_chosen().await.is_empty());
    }
}
