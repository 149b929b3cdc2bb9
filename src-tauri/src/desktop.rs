//! RDP tabs: a session of the client core per tab, its state and prompts on the
//! same event channel as a terminal's, and its pixels on a second channel as
//! binary frame updates (see `portcullis_client::rdp::frame`), at most one per
//! display frame. Clipboard text goes between the OS clipboard and the
//! server's while the tab shares it; a tab that fits its desktop to the view
//! asks the server to resize (display control), or scales when it cannot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_client::dial::Dialer;
use portcullis_client::inventory::Protocol;
use portcullis_client::rdp::certs::CertStore;
use portcullis_client::rdp::{
    RdpCredentials, RdpEnd, RdpError, RdpInput, RdpOptions, RdpSession, RdpTarget,
};
use tauri::State;
use tauri::ipc::{Channel, InvokeResponseBody};

use crate::commands::{AppState, Plan, Target, plan};
use crate::error::UiError;
use crate::sessions::SessionEvent;

/// Password attempts per tab, each a new connection (RDP checks at logon).
const PASSWORD_ATTEMPTS: usize = 3;
/// One update per display frame at most.
const FRAME_INTERVAL: Duration = Duration::from_millis(16);
/// Input events per call.
pub const MAX_INPUT_EVENTS: usize = 1024;

fn clamp_size(value: u16) -> u16 {
    value.clamp(portcullis_client::rdp::MIN_SIZE, 4096)
}

/// A live RDP tab: its session and what the person chose for it.
pub struct Desktop {
    pub session: RdpSession,
    /// The host fixes a resolution: the desktop is scaled, never resized.
    pub fixed_size: bool,
    /// The host shares the clipboard (the channel was offered at connect).
    pub clipboard_allowed: bool,
    /// Sharing now (the toolbar pauses and resumes it).
    sharing: AtomicBool,
    /// A digest of the last clipboard text that crossed, either way, so the
    /// same text is not offered back and forth (the text itself is not kept).
    last_text: Mutex<Option<u64>>,
}

impl Desktop {
    fn sharing(&self) -> bool {
        self.clipboard_allowed && self.sharing.load(Ordering::Relaxed)
    }

    /// Whether `text` is new since the last crossing (and remembers it).
    fn crossing(&self, text: &str) -> bool {
        use std::hash::Hasher as _;
        // Only equality matters here, not resistance to forgery.
        let mut hasher = std::hash::DefaultHasher::new();
        hasher.write(text.as_bytes());
        let digest = hasher.finish();
        let mut last = self.last_text.lock().expect("clipboard lock");
        if *last == Some(digest) {
            return false;
        }
        *last = Some(digest);
        true
    }
}

/// The OS clipboard (X11 here; Windows and macOS through the same crate).
/// One handle for the process: on X11 the handle owns the selection it sets.
static OS_CLIPBOARD: Mutex<Option<arboard::Clipboard>> = Mutex::new(None);

fn with_os_clipboard<T>(
    use_it: impl FnOnce(&mut arboard::Clipboard) -> Result<T, arboard::Error>,
) -> Result<T, String> {
    let mut slot = OS_CLIPBOARD.lock().expect("clipboard lock");
    if slot.is_none() {
        *slot = Some(arboard::Clipboard::new().map_err(|e| e.to_string())?);
    }
    let clipboard = slot.as_mut().expect("just set");
    use_it(clipboard).map_err(|e| e.to_string())
}

/// The OS clipboard's text, when it holds text within the bound.
async fn os_clipboard_text() -> Option<String> {
    let text = tauri::async_runtime::spawn_blocking(|| with_os_clipboard(|c| c.get_text()))
        .await
        .ok()?
        .ok()?;
    (text.len() <= portcullis_client::rdp::MAX_CLIPBOARD_BYTES).then_some(text)
}

/// Puts `text` on the OS clipboard.
pub(crate) async fn set_os_clipboard_text(text: String) -> Result<(), String> {
    tauri::async_runtime::spawn_blocking(move || with_os_clipboard(|c| c.set_text(text)))
        .await
        .map_err(|e| e.to_string())?
}

async fn set_os_clipboard(text: String) {
    let set =
        tauri::async_runtime::spawn_blocking(move || with_os_clipboard(|c| c.set_text(text))).await;
    if let Ok(Err(e)) = set {
        tracing::warn!(error = %e, "the OS clipboard refused the remote text");
    }
}

/// Opens an RDP tab and returns its id at once. `width`×`height` is the tab's
/// size, used unless the host fixes a resolution.
#[tauri::command]
pub async fn rdp_open(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
    target: Target,
    width: u16,
    height: u16,
    channel: Channel<SessionEvent>,
    frames: Channel<InvokeResponseBody>,
) -> Result<u64, UiError> {
    let plan = plan(&state, target).await?;
    if plan.protocol != Protocol::Rdp {
        return Err(UiError::new(
            "unsupported",
            format!("{} is an SSH host: open it in a terminal tab", plan.label),
        ));
    }
    let size = match (plan.rdp.width, plan.rdp.height) {
        (Some(w), Some(h)) => (w, h),
        _ => (clamp_size(width), clamp_size(height)),
    };
    let id = state.sessions.next_id();
    let history = state
        .inventory
        .record_start(&plan.label, plan.gateway_url.as_deref())
        .await?;
    let _ = channel.send(SessionEvent::State {
        state: "connecting",
        route: None,
    });
    tauri::async_runtime::spawn(run(app, id, plan, history, size, channel, frames));
    Ok(id)
}

async fn connect(
    state: &AppState,
    plan: &Plan,
    size: (u16, u16),
    dialer: &Dialer,
) -> Result<(RdpSession, &'static str), UiError> {
    let store = CertStore::new(state.home.dir().join("rdp_certificates"));
    // The gateway's password for this host, released for this session only.
    let mut plan = plan.clone();
    let from_gateway = crate::keys::rdp_password(state, &mut plan).await?;
    let plan = &plan;
    let user = plan.auth.user.clone();
    let options = RdpOptions {
        width: size.0,
        height: size.1,
        // Off: the clipboard channel is not even offered to the server.
        clipboard: plan.rdp.clipboard,
        ..RdpOptions::default()
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let connection = dialer.dial(&plan.route, &plan.host, plan.port).await?;
        let route = connection.route();
        // The password is asked (or read from the store) once the server's
        // certificate is trusted, through the same prompter.
        let credentials = RdpCredentials {
            user: user.clone(),
            password: from_gateway.clone(),
            domain: Some(plan.rdp.domain.clone()).filter(|d| !d.is_empty()),
        };
        match RdpSession::connect(
            connection,
            RdpTarget {
                host: plan.host.clone(),
                port: plan.port,
            },
            &credentials,
            &options,
            &store,
            Arc::clone(&dialer.prompter),
        )
        .await
        {
            Ok((session, _)) => return Ok((session, route)),
            // A person may retype a password; the gateway's is not asked again.
            Err(RdpError::AuthRejected { .. })
                if attempt < PASSWORD_ATTEMPTS && from_gateway.is_none() =>
            {
                continue;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn run(
    app: tauri::AppHandle,
    id: u64,
    plan: Plan,
    history: i64,
    size: (u16, u16),
    channel: Channel<SessionEvent>,
    frames: Channel<InvokeResponseBody>,
) {
    use tauri::Manager;
    let state = app.state::<AppState>();
    let (dialer, saved) = state.dialer_for(&plan, &channel);
    let (session, route) = match connect(&state, &plan, size, &dialer).await {
        Ok(parts) => parts,
        Err(error) => {
            state.failed(id, history, &channel, error).await;
            return;
        }
    };
    state.keep_saved(&saved).await;
    let desktop = Arc::new(Desktop {
        session,
        fixed_size: plan.rdp.width.is_some() && plan.rdp.height.is_some(),
        clipboard_allowed: plan.rdp.clipboard,
        sharing: AtomicBool::new(plan.rdp.clipboard),
        last_text: Mutex::new(None),
    });
    if !state.sessions.insert_desktop(id, Arc::clone(&desktop)) {
        // The tab was closed while this was connecting.
        desktop.session.close().await;
        let _ = state.inventory.record_end(history, "closed by user").await;
        return;
    }
    let _ = channel.send(SessionEvent::State {
        state: "connected",
        route: Some(route),
    });
    let _ = channel.send(SessionEvent::DesktopReady {
        clipboard: desktop.clipboard_allowed,
        fixed_size: desktop.fixed_size,
    });
    let end = pump(&desktop, &frames).await;
    state.sessions.remove_desktop(id);
    if end == RdpEnd::Closed {
        // Closed from the tab, or the window stopped listening: either way the
        // server is told goodbye (a no-op when already done).
        desktop.session.close().await;
    }
    let outcome = match &end {
        RdpEnd::Closed => "closed",
        RdpEnd::LoggedOff => "logged off",
        RdpEnd::ServerDisconnected(_) => "disconnected by the server",
        RdpEnd::ConnectionLost(_) => "connection lost",
    };
    let _ = state.inventory.record_end(history, outcome).await;
    let _ = channel.send(SessionEvent::DesktopEnded { end });
}

/// Sends the screen's changes, at most one update per frame interval, until the
/// session ends or the window stops listening; the server's clipboard text
/// goes to the OS clipboard meanwhile.
async fn pump(desktop: &Desktop, frames: &Channel<InvokeResponseBody>) -> RdpEnd {
    let session = &desktop.session;
    let mut last = tokio::time::Instant::now() - FRAME_INTERVAL;
    loop {
        if let Some(text) = session.take_remote_clipboard()
            && desktop.sharing()
            && desktop.crossing(&text)
        {
            set_os_clipboard(text).await;
        }
        if let Some(end) = session.ended() {
            return end;
        }
        let updates = session.take_updates();
        if !updates.is_empty() {
            // A big change comes in parts (bands of rows): each is a whole
            // update for the canvas, sent in order.
            for update in updates {
                if frames.send(InvokeResponseBody::Raw(update)).is_err() {
                    return RdpEnd::Closed;
                }
            }
            last = tokio::time::Instant::now();
        }
        tokio::select! {
            () = session.changed() => {}
            () = session.remote_clipboard_changed() => continue,
            end = session.wait_end() => return end,
        }
        // Coalesce what arrives within the rest of this frame.
        tokio::time::sleep_until(last + FRAME_INTERVAL).await;
    }
}

/// Input from the canvas, in desktop coordinates.
#[tauri::command]
pub async fn rdp_input(
    state: State<'_, AppState>,
    id: u64,
    events: Vec<RdpInput>,
) -> Result<(), UiError> {
    if events.len() > MAX_INPUT_EVENTS {
        return Err(UiError::new(
            "invalid",
            format!("at most {MAX_INPUT_EVENTS} input events at once"),
        ));
    }
    let desktop = state.sessions.desktop(id)?;
    Ok(desktop.session.input(events).await?)
}

/// Asks for a full frame (the view was rebuilt or lost track).
#[tauri::command]
pub fn rdp_refresh(state: State<'_, AppState>, id: u64) -> Result<(), UiError> {
    state.sessions.desktop(id)?.session.request_full_frame();
    Ok(())
}

/// The tab now shows `width`×`height` desktop pixels: `true` when the server
/// resizes the desktop to that, `false` when the view scales instead (a fixed
/// resolution, or a server without display control).
#[tauri::command]
pub async fn rdp_resize(
    state: State<'_, AppState>,
    id: u64,
    width: u16,
    height: u16,
) -> Result<bool, UiError> {
    let desktop = state.sessions.desktop(id)?;
    if desktop.fixed_size {
        return Ok(false);
    }
    Ok(desktop
        .session
        .resize(clamp_size(width), clamp_size(height))
        .await?)
}

/// Pauses or resumes clipboard sharing for the tab; returns whether it shares.
#[tauri::command]
pub fn rdp_clipboard(state: State<'_, AppState>, id: u64, share: bool) -> Result<bool, UiError> {
    let desktop = state.sessions.desktop(id)?;
    if share && !desktop.clipboard_allowed {
        return Err(UiError::new(
            "clipboard_off",
            "This host does not share the clipboard: turn it on in the host's settings and reconnect",
        ));
    }
    desktop.sharing.store(share, Ordering::Relaxed);
    Ok(desktop.sharing())
}

/// Offers the OS clipboard's text to the server when it changed since the
/// last crossing (the view calls this when it gains focus: the person copied
/// something elsewhere and comes to paste it). Returns whether text was offered.
#[tauri::command]
pub async fn rdp_sync_clipboard(state: State<'_, AppState>, id: u64) -> Result<bool, UiError> {
    let desktop = state.sessions.desktop(id)?;
    if !desktop.sharing() {
        return Ok(false);
    }
    let Some(text) = os_clipboard_text().await else {
        return Ok(false);
    };
    if text.is_empty() || !desktop.crossing(&text) {
        return Ok(false);
    }
    desktop.session.set_clipboard(text).await?;
    Ok(true)
}
