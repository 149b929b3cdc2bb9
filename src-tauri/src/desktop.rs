//! RDP tabs: a session of the client core per tab, its state and prompts on the
//! same event channel as a terminal's, and its pixels on a second channel as
//! binary frame updates (see `portcullis_client::rdp::frame`), at most one per
//! display frame.

use std::sync::Arc;
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
            password: None,
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
            Err(RdpError::AuthRejected { .. }) if attempt < PASSWORD_ATTEMPTS => continue,
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
    let session = Arc::new(session);
    if !state.sessions.insert_desktop(id, Arc::clone(&session)) {
        // The tab was closed while this was connecting.
        session.close().await;
        let _ = state.inventory.record_end(history, "closed by user").await;
        return;
    }
    let _ = channel.send(SessionEvent::State {
        state: "connected",
        route: Some(route),
    });
    let end = pump(&session, &frames).await;
    state.sessions.remove_desktop(id);
    if end == RdpEnd::Closed {
        // Closed from the tab, or the window stopped listening: either way the
        // server is told goodbye (a no-op when already done).
        session.close().await;
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
/// session ends or the window stops listening.
async fn pump(session: &RdpSession, frames: &Channel<InvokeResponseBody>) -> RdpEnd {
    let mut last = tokio::time::Instant::now() - FRAME_INTERVAL;
    loop {
        if let Some(end) = session.ended() {
            return end;
        }
        if let Some(update) = session.take_update() {
            if frames.send(InvokeResponseBody::Raw(update)).is_err() {
                return RdpEnd::Closed;
            }
            last = tokio::time::Instant::now();
        }
        tokio::select! {
            () = session.changed() => {}
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
    let session = state.sessions.desktop(id)?;
    Ok(session.input(events).await?)
}

/// Asks for a full frame (the view was rebuilt or lost track).
#[tauri::command]
pub fn rdp_refresh(state: State<'_, AppState>, id: u64) -> Result<(), UiError> {
    state.sessions.desktop(id)?.request_full_frame();
    Ok(())
}
