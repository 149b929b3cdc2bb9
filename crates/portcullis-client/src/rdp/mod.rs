//! RDP sessions over any route of the dialer, with IronRDP: TLS always, NLA
//! (CredSSP with NTLM) when the server offers it, never standard RDP security.
//! The server's certificate is trusted by a system CA for its name or pinned on
//! first use (see [`certs`]). The session keeps the framebuffer; the UI takes
//! coalesced dirty rectangles as binary updates (see [`frame`]) and sends input.
//!
//! INVARIANT: the password lives in a [`Secret`] (zeroized on drop) and, for the
//! connection sequence only, in IronRDP's connector (a plain `String` there, which
//! IronRDP does not zeroize); it is never logged or put in an error. It is asked
//! for only after the server's certificate is trusted.

pub mod certs;
mod clipboard;
pub mod frame;
pub mod keys;
#[cfg(test)]
mod rfx_drawing;
#[cfg(test)]
mod rfx_reactivation;
#[cfg(test)]
mod server_garbage;
#[cfg(test)]
mod test_streams;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ironrdp_connector::connection_activation::{
    ConnectionActivationFactory, ConnectionActivationState,
};
use ironrdp_connector::{ClientConnector, ConnectorErrorKind, Credentials, DesktopSize};
use ironrdp_displaycontrol::client::DisplayControlClient;
use ironrdp_displaycontrol::pdu::MonitorLayoutEntry;
use ironrdp_dvc::DrdynvcClient;
use ironrdp_input::{Database, MouseButton, MousePosition, Operation, Scancode, WheelRotations};
use ironrdp_pdu::rdp::capability_sets::MajorPlatformType;
use ironrdp_pdu::rdp::client_info::{PerformanceFlags, TimezoneInfo};
use ironrdp_session::image::DecodedImage;
use ironrdp_session::{ActiveStage, ActiveStageOutput};
use ironrdp_tokio::{FramedWrite as _, TokioFramed};
use portcullis_proto::{CertFingerprint, Secret};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::ssh::{HostKeyDecision, Prompter, UnknownHostKey};
use crate::task::{INTERNAL_ERROR, guarded, lock};
use certs::{CertStore, CertVerdict};
use clipboard::ClipEvent;
pub use clipboard::MAX_CLIPBOARD_BYTES;
use frame::{Damage, Rect};
use ironrdp_cliprdr::CliprdrClient;
use ironrdp_cliprdr::pdu::{ClipboardFormat, ClipboardFormatId, FormatDataResponse};

/// Where the session goes, under the name the user gave (the certificate is
/// pinned under it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdpTarget {
    pub host: String,
    pub port: u16,
}

/// Who logs on. `user` may be `DOMAIN\user` or `user@domain`. Without a
/// password, the prompter is asked for one once the server's certificate is
/// trusted (never before: a password is not typed for an impostor).
#[derive(Debug, Clone)]
pub struct RdpCredentials {
    pub user: String,
    pub password: Option<Secret<String>>,
    pub domain: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RdpOptions {
    pub width: u16,
    pub height: u16,
    /// Longest wait for each network phase of the connection (negotiation and
    /// TLS; NLA and capabilities). Time a person takes to answer is not counted.
    pub connect_timeout: Duration,
    /// Offer the RemoteFX codec (else the server sends planar/interleaved bitmaps).
    pub remote_fx: bool,
    /// Share clipboard text both ways (the `cliprdr` channel is not even
    /// offered when off).
    pub clipboard: bool,
}

impl Default for RdpOptions {
    fn default() -> RdpOptions {
        RdpOptions {
            width: 1024,
            height: 768,
            connect_timeout: Duration::from_secs(30),
            remote_fx: true,
            clipboard: true,
        }
    }
}

/// Desktop sizes accepted (RDP allows 200..8192; smaller is refused as a typo).
pub const MIN_SIZE: u16 = 200;
pub const MAX_SIZE: u16 = 8192;

#[derive(Debug, thiserror::Error)]
pub enum RdpError {
    #[error("{host}:{port}: the server rejected the user name or password")]
    AuthRejected { host: String, port: u16 },
    #[error(
        "{host}:{port}: the server's certificate is not trusted and was not accepted (SHA-256 {fingerprint})"
    )]
    CertificateRefused {
        host: String,
        port: u16,
        fingerprint: String,
    },
    #[error(
        "WARNING: the certificate of {host}:{port} has changed. Pinned SHA-256 {pinned}, presented {presented}. \
         Someone could be intercepting the connection. If the server was reinstalled, remove the pin at {location} and connect again."
    )]
    CertificateChanged {
        host: String,
        port: u16,
        pinned: String,
        presented: String,
        location: String,
    },
    #[error("{host}:{port} offers neither TLS nor NLA security: {cause}")]
    SecurityNotOffered {
        host: String,
        port: u16,
        cause: String,
    },
    #[error("{host}:{port}: no RDP session within {seconds} s")]
    Timeout {
        host: String,
        port: u16,
        seconds: u64,
    },
    #[error("{host}:{port}: the RDP connection failed: {cause}")]
    Connect {
        host: String,
        port: u16,
        cause: String,
    },
    #[error("invalid RDP settings: {0}")]
    Invalid(String),
    #[error("{host}:{port}: no password was given")]
    Cancelled { host: String, port: u16 },
    #[error("the RDP session has ended")]
    Ended,
}

/// How a session ended; each is told apart in the UI.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum RdpEnd {
    /// We disconnected.
    Closed,
    /// The user logged off on the remote desktop.
    LoggedOff,
    /// The server ended the session (administrator, another logon, shutdown).
    ServerDisconnected(String),
    /// The connection broke (network, tunnel, server gone).
    ConnectionLost(String),
}

impl std::fmt::Display for RdpEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RdpEnd::Closed => f.write_str("disconnected"),
            RdpEnd::LoggedOff => f.write_str("the user logged off"),
            RdpEnd::ServerDisconnected(why) => write!(f, "the server ended the session: {why}"),
            RdpEnd::ConnectionLost(why) => write!(f, "connection lost: {why}"),
        }
    }
}

/// Input from the person, in desktop coordinates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RdpInput {
    MouseMove {
        x: u16,
        y: u16,
    },
    /// `button`: 0 left, 1 middle, 2 right, 3 back, 4 forward (as the web numbers them).
    MouseButton {
        button: u8,
        down: bool,
    },
    /// Positive `delta` turns away from the user (up) or to the right.
    Wheel {
        vertical: bool,
        delta: i16,
    },
    /// A key by its `KeyboardEvent.code`; `text` (its `KeyboardEvent.key`) is
    /// typed as Unicode when the code has no scancode (a key press only).
    Key {
        code: String,
        down: bool,
        #[serde(default)]
        text: Option<String>,
    },
    /// A key by scancode, when the caller knows it.
    Scancode {
        extended: bool,
        code: u8,
        down: bool,
    },
    /// Text with no key behind it (IME, characters the server's layout lacks).
    Text {
        text: String,
    },
    /// Releases every held key and button (focus left the view).
    ReleaseAll,
    /// Ctrl+Alt+Del, which the local system would otherwise take.
    CtrlAltDel,
}

/// Longest text sent by one [`RdpInput::Text`].
pub const MAX_TEXT_INPUT: usize = 4096;

enum Command {
    Input(Vec<RdpInput>),
    Clipboard(String),
    Resize {
        width: u16,
        height: u16,
        sent: oneshot::Sender<bool>,
    },
    Close,
}

/// Resizes asked for sooner than this after the logon wait until then: xrdp
/// 0.9 drops the connection when resized while its session is still starting.
pub const RESIZE_SETTLE: Duration = Duration::from_secs(3);

/// Longest wait for the server to finish a deactivation-reactivation (a
/// resize or a reconnection of the desktop) once it started one.
const REACTIVATION_TIMEOUT: Duration = Duration::from_secs(30);

struct Screen {
    image: DecodedImage,
    damage: Damage,
    /// The next update must be a full frame.
    full: bool,
}

impl Screen {
    /// The whole desktop as an update (in parts when big, see
    /// [`frame::encode_parts`]); the damage so far is covered by it.
    fn take_full(&mut self) -> Vec<Vec<u8>> {
        self.full = false;
        self.damage.take();
        let all = Rect {
            x: 0,
            y: 0,
            width: self.image.width(),
            height: self.image.height(),
        };
        encode_rects(&self.image, &[all], true)
    }
}

/// A live RDP session. Dropping it disconnects.
pub struct RdpSession {
    commands: mpsc::Sender<Command>,
    screen: Arc<Mutex<Screen>>,
    changed: Arc<Notify>,
    end: watch::Receiver<Option<RdpEnd>>,
    can_resize: Arc<std::sync::atomic::AtomicBool>,
    certificate: CertFingerprint,
    bytes_in: Arc<std::sync::atomic::AtomicU64>,
    decode_nanos: Arc<std::sync::atomic::AtomicU64>,
    remote_clipboard: Arc<Mutex<Option<String>>>,
    clipboard_changed: Arc<Notify>,
}

/// How the server's certificate was trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertTrustedBy {
    SystemCa,
    Pinned,
    AcceptedNow,
}

impl RdpSession {
    /// Runs the connection sequence over `io` (any route) and starts the session.
    pub async fn connect<S>(
        io: S,
        target: RdpTarget,
        credentials: &RdpCredentials,
        options: &RdpOptions,
        store: &CertStore,
        prompter: Arc<dyn Prompter>,
    ) -> Result<(RdpSession, CertTrustedBy), RdpError>
    where
        S: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static,
    {
        validate(&target, credentials, options)?;
        connect_inner(io, target, credentials, options, store, prompter).await
    }

    /// The desktop's size now (it changes when the server resizes it).
    pub fn size(&self) -> (u16, u16) {
        let screen = lock(&self.screen);
        (screen.image.width(), screen.image.height())
    }

    /// Whether the server resizes the desktop on request (it opened the
    /// display-control channel). Without it a view scales the desktop to fit.
    pub fn can_resize(&self) -> bool {
        self.can_resize.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Asks the server for a desktop of `width`×`height` (the width is made
    /// even, both kept within 200..=8192, as the display-control channel
    /// requires). `Ok(false)`: the server offers no resizing (yet); the view
    /// scales instead. The new desktop arrives as a full frame of the new size.
    /// In the session's first seconds the request waits until it has settled
    /// (and answers `Ok(true)`; it is dropped then if the server cannot resize).
    pub async fn resize(&self, width: u16, height: u16) -> Result<bool, RdpError> {
        let (sent, reply) = oneshot::channel();
        self.send(Command::Resize {
            width,
            height,
            sent,
        })
        .await?;
        reply.await.map_err(|_| RdpError::Ended)
    }

    pub fn certificate(&self) -> CertFingerprint {
        self.certificate
    }

    /// Bytes received from the server so far (after TLS), for the benchmark.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Time spent decoding the server's updates into the framebuffer so far.
    pub fn decode_time(&self) -> Duration {
        Duration::from_nanos(self.decode_nanos.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Waits until the screen changed (or the session ended) since the last update taken.
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    /// The changes since the last call, encoded (see [`frame`]): one update,
    /// or for a big change its parts (each a complete update of a band of
    /// rows, to be applied in order); none when nothing changed.
    pub fn take_updates(&self) -> Vec<Vec<u8>> {
        let mut screen = lock(&self.screen);
        if screen.full {
            return screen.take_full();
        }
        if screen.damage.is_empty() {
            return Vec::new();
        }
        let rects = screen.damage.take();
        encode_rects(&screen.image, &rects, false)
    }

    /// The whole desktop as an update (in parts when big), for a view
    /// (re)attaching.
    pub fn full_frame(&self) -> Vec<Vec<u8>> {
        lock(&self.screen).take_full()
    }

    /// Offers `text` as this side's clipboard to the server (when the session
    /// shares the clipboard); the server fetches it when pasted there.
    pub async fn set_clipboard(&self, text: String) -> Result<(), RdpError> {
        if text.len() > MAX_CLIPBOARD_BYTES {
            return Err(RdpError::Invalid(format!(
                "clipboard text longer than {MAX_CLIPBOARD_BYTES} bytes"
            )));
        }
        self.send(Command::Clipboard(text)).await
    }

    /// The text the server's clipboard last received, once (then `None` until it changes).
    pub fn take_remote_clipboard(&self) -> Option<String> {
        lock(&self.remote_clipboard).take()
    }

    /// Waits until the server's clipboard text arrives.
    pub async fn remote_clipboard_changed(&self) {
        self.clipboard_changed.notified().await
    }

    /// Makes the next update a full frame (a view attached or lost track).
    pub fn request_full_frame(&self) {
        lock(&self.screen).full = true;
        self.changed.notify_one();
    }

    /// Sends input; an error means the session has ended.
    pub async fn input(&self, events: Vec<RdpInput>) -> Result<(), RdpError> {
        for event in &events {
            if let RdpInput::Text { text }
            | RdpInput::Key {
                text: Some(text), ..
            } = event
                && text.len() > MAX_TEXT_INPUT
            {
                return Err(RdpError::Invalid(format!(
                    "text input longer than {MAX_TEXT_INPUT} bytes"
                )));
            }
        }
        self.send(Command::Input(events)).await
    }

    /// Hands a command to the session task; an error means the session has ended.
    async fn send(&self, command: Command) -> Result<(), RdpError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| RdpError::Ended)
    }

    /// How the session ended, once it has.
    pub fn ended(&self) -> Option<RdpEnd> {
        self.end.borrow().clone()
    }

    /// Waits for the end of the session.
    pub async fn wait_end(&self) -> RdpEnd {
        let mut end = self.end.clone();
        loop {
            if let Some(why) = end.borrow_and_update().clone() {
                return why;
            }
            if end.changed().await.is_err() {
                return RdpEnd::ConnectionLost("the session task stopped".into());
            }
        }
    }

    /// Disconnects politely and waits (briefly) for the end.
    pub async fn close(&self) -> RdpEnd {
        let _ = self.commands.send(Command::Close).await;
        match tokio::time::timeout(Duration::from_secs(5), self.wait_end()).await {
            Ok(end) => end,
            Err(_) => RdpEnd::Closed,
        }
    }
}

fn encode_rects(image: &DecodedImage, rects: &[Rect], full: bool) -> Vec<Vec<u8>> {
    frame::encode_parts(
        image.data(),
        image.stride(),
        image.width(),
        image.height(),
        rects,
        full,
    )
}

fn validate(
    target: &RdpTarget,
    credentials: &RdpCredentials,
    options: &RdpOptions,
) -> Result<(), RdpError> {
    let invalid = |m: String| Err(RdpError::Invalid(m));
    if target.host.is_empty() || target.host.len() > 255 {
        return invalid("the host name must have 1 to 255 characters".into());
    }
    if target.port == 0 {
        return invalid("the port must be 1 to 65535".into());
    }
    if credentials.user.trim().is_empty() || credentials.user.len() > 256 {
        return invalid("the user name must have 1 to 256 characters".into());
    }
    if credentials
        .password
        .as_ref()
        .is_some_and(|p| p.expose().len() > 512)
    {
        return invalid("the password is longer than 512 bytes".into());
    }
    for (what, value) in [("width", options.width), ("height", options.height)] {
        if !(MIN_SIZE..=MAX_SIZE).contains(&value) {
            return invalid(format!(
                "the desktop {what} must be {MIN_SIZE} to {MAX_SIZE} pixels, not {value}"
            ));
        }
    }
    Ok(())
}

/// `DOMAIN\user` becomes user + domain; `user@domain` stays whole (NTLM takes it).
pub fn split_user(user: &str, domain: Option<&str>) -> (String, Option<String>) {
    match user.split_once('\\') {
        Some((d, u)) if !d.is_empty() && !u.is_empty() => (u.to_owned(), Some(d.to_owned())),
        _ => (
            user.to_owned(),
            domain.filter(|d| !d.is_empty()).map(str::to_owned),
        ),
    }
}

/// IronRDP's form of the credentials (the password is only filled in once it is known).
fn logon(credentials: &RdpCredentials, password: Option<&Secret<String>>) -> Credentials {
    let (username, _) = split_user(&credentials.user, credentials.domain.as_deref());
    Credentials::UsernamePassword {
        username,
        password: password.map(|p| p.expose().clone()).unwrap_or_default(),
    }
}

fn config(credentials: &RdpCredentials, options: &RdpOptions) -> ironrdp_connector::Config {
    let (_, domain) = split_user(&credentials.user, credentials.domain.as_deref());
    ironrdp_connector::Config {
        desktop_size: DesktopSize {
            width: options.width,
            height: options.height,
        },
        monitor_layout: None,
        desktop_scale_factor: 0,
        desktop_physical_size: None,
        desktop_orientation: None,
        device_scale_factor: None,
        monitor_extended_layout: None,
        relative_mouse_input: false,
        // TLS with the server's own logon screen, or TLS + NLA: both encrypt;
        // standard RDP security (RC4, no server authentication) is never offered.
        enable_tls: true,
        enable_credssp: true,
        enable_standard_rdp_security: false,
        credentials: logon(credentials, None),
        domain,
        // A build number of a current client, as FreeRDP sends: servers take
        // an old one (xrdp: ≤ 419) for a client that cannot resize.
        client_build: 18363,
        client_name: "portcullis".to_owned(),
        keyboard_type: ironrdp_pdu::gcc::KeyboardType::IBM_ENHANCED,
        keyboard_subtype: 0,
        keyboard_functional_keys_count: 12,
        keyboard_layout: 0,
        connection_type: ironrdp_pdu::gcc::ConnectionType::Lan,
        ime_file_name: String::new(),
        bitmap: Some(ironrdp_connector::BitmapConfig {
            lossy_compression: false,
            color_depth: 32,
            codecs: ironrdp_pdu::rdp::capability_sets::client_codecs_capabilities(
                if options.remote_fx {
                    &[]
                } else {
                    &["remotefx:off"]
                },
            )
            .unwrap_or_default(),
        }),
        dig_product_id: String::new(),
        client_dir: "C:\\Windows\\System32\\mstscax.dll".to_owned(),
        alternate_shell: String::new(),
        work_dir: String::new(),
        remote_application_mode: false,
        rail_support_level: ironrdp_pdu::rdp::capability_sets::RailSupportLevel::empty(),
        platform: MajorPlatformType::UNIX,
        hardware_id: None,
        request_data: None,
        // The password (filled in once asked) also logs on a TLS-only server
        // (xrdp), as FreeRDP and mstsc do with saved credentials; with NLA the
        // server has checked it already.
        autologon: true,
        enable_audio_playback: false,
        enable_audio_capture: false,
        performance_flags: PerformanceFlags::default(),
        license_cache: None,
        timezone_info: TimezoneInfo::default(),
        compression_type: None,
        enable_server_pointer: false,
        pointer_software_rendering: true,
        multitransport_flags: None,
        support_dyn_vc_gfx_protocol: false,
    }
}

/// NTLM needs no network besides the connection itself; Kerberos (a KDC) is
/// not offered, so any request here is refused.
struct NoKdc;

impl ironrdp_tokio::NetworkClient for NoKdc {
    async fn send(
        &mut self,
        _: &ironrdp_connector::sspi::generator::NetworkRequest,
    ) -> ironrdp_connector::ConnectorResult<Vec<u8>> {
        Err(ironrdp_connector::general_err!(
            "Kerberos is not supported; use NTLM"
        ))
    }
}

async fn connect_inner<S>(
    io: S,
    target: RdpTarget,
    credentials: &RdpCredentials,
    options: &RdpOptions,
    store: &CertStore,
    prompter: Arc<dyn Prompter>,
) -> Result<(RdpSession, CertTrustedBy), RdpError>
where
    S: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static,
{
    let RdpTarget { host, port } = target.clone();
    let failed = |cause: String| RdpError::Connect {
        host: host.clone(),
        port,
        cause,
    };
    let seconds = options.connect_timeout.as_secs();
    let timed_out = || RdpError::Timeout {
        host: host.clone(),
        port,
        seconds,
    };
    let mut framed = TokioFramed::new(io);
    let client_addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    let mut connector = ClientConnector::new(config(credentials, options), client_addr);
    // Dynamic channels carry display control (resizing the desktop to the
    // view); the server opens it only when it can resize.
    connector.attach_static_channel(
        DrdynvcClient::new().with_dynamic_channel(DisplayControlClient::new(|_| Ok(Vec::new()))),
    );
    let clipboard = options.clipboard.then(|| {
        let backend = clipboard::Backend::default();
        let events = Arc::clone(&backend.events);
        connector.attach_static_channel(CliprdrClient::new(Box::new(backend)));
        events
    });
    let should_upgrade = tokio::time::timeout(
        options.connect_timeout,
        ironrdp_tokio::connect_begin(&mut framed, &mut connector),
    )
    .await
    .map_err(|_| timed_out())?
    .map_err(|e| connector_error(e, &target, false))?;

    let (stream, leftover) = framed.into_inner();
    if !leftover.is_empty() {
        return Err(failed("unexpected bytes before the TLS handshake".into()));
    }
    // Validation by a system CA first; when that fails the certificate is held
    // for the pin check below, before a single byte of RDP goes over it.
    let unverified: Arc<Mutex<Option<String>>> = Arc::default();
    let callback: ironrdp_tls::CertificateValidationCallback = {
        let unverified = Arc::clone(&unverified);
        Arc::new(move |_der: &[u8], _endpoint: &str, error: &str| {
            *unverified.lock().expect("unverified lock") = Some(error.to_owned());
            true
        })
    };
    let tls_name = tls_server_name(&host);
    let (tls, certificate) = tokio::time::timeout(
        options.connect_timeout,
        ironrdp_tls::upgrade_with_certificate_validation_callback(stream, &tls_name, callback),
    )
    .await
    .map_err(|_| timed_out())?
    .map_err(|e| failed(format!("TLS handshake: {e}")))?;
    let der = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|cert| cert.as_ref().to_vec())
        .ok_or_else(|| failed("the server sent no certificate".into()))?;
    let fingerprint = CertFingerprint::of_der(&der);
    let ca_error = unverified.lock().expect("unverified lock").take();
    let trusted_by = match ca_error {
        None => CertTrustedBy::SystemCa,
        Some(_) => trust_pinned(&target, &fingerprint, store, prompter.as_ref()).await?,
    };
    let server_public_key = ironrdp_tls::extract_tls_server_public_key(&certificate)
        .ok_or_else(|| failed("the server certificate has no usable public key".into()))?
        .to_vec();

    // Only now, talking to the trusted server, is the password asked for.
    let asked;
    let password = match &credentials.password {
        Some(password) => password,
        None => {
            asked = prompter
                .password(&credentials.user, &host)
                .await
                .ok_or_else(|| RdpError::Cancelled {
                    host: host.clone(),
                    port,
                })?;
            &asked
        }
    };
    connector.config.credentials = logon(credentials, Some(password));

    let upgraded = ironrdp_tokio::mark_as_upgraded(should_upgrade, &mut connector);
    let mut framed = TokioFramed::new(tls);
    let finish = async {
        // NLA runs here rather than inside `connect_finalize`, so that a failure
        // in it is known to be one of the credentials phase.
        if connector.should_perform_credssp() {
            nla(
                &mut connector,
                &mut framed,
                &host,
                server_public_key.clone(),
            )
            .await
            .map_err(|e| connector_error(e, &target, true))?;
        }
        ironrdp_tokio::connect_finalize(
            upgraded,
            connector,
            &mut framed,
            &mut NoKdc,
            host.clone().into(),
            server_public_key,
            None,
        )
        .await
        .map_err(|e| connector_error(e, &target, false))
    };
    let outcome = tokio::time::timeout(options.connect_timeout, finish)
        .await
        .map_err(|_| timed_out())??;
    let result = outcome
        .into_connected()
        .map_err(|e| connector_error(e, &target, false))?;

    let width = result.desktop_size.width;
    let height = result.desktop_size.height;
    let activation = result.activation_factory.clone();
    tracing::info!(width, height, "RDP session up");
    let image = DecodedImage::new(
        ironrdp_graphics::image_processing::PixelFormat::RgbA32,
        width,
        height,
    );
    let stage = ironrdp_session::ActiveStageBuilder {
        static_channels: result.static_channels,
        user_channel_id: result.user_channel_id,
        io_channel_id: result.io_channel_id,
        message_channel_id: result.message_channel_id,
        share_id: result.share_id,
        compression_type: result.compression_type,
        enable_server_pointer: result.enable_server_pointer,
        pointer_software_rendering: result.pointer_software_rendering,
    }
    .build();

    let screen = Arc::new(Mutex::new(Screen {
        image,
        damage: Damage::default(),
        full: true,
    }));
    let changed = Arc::new(Notify::new());
    let (commands, command_rx) = mpsc::channel(256);
    let (end_tx, end) = watch::channel(None);
    let bytes_in = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let decode_nanos = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let remote_clipboard: Arc<Mutex<Option<String>>> = Arc::default();
    let clipboard_changed = Arc::new(Notify::new());
    let can_resize = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let task = SessionTask {
        activation,
        can_resize: Arc::clone(&can_resize),
        pending_resize: None,
        clipboard,
        local_clipboard: None,
        remote_clipboard: Arc::clone(&remote_clipboard),
        clipboard_changed: Arc::clone(&clipboard_changed),
        decode_nanos: Arc::clone(&decode_nanos),
        framed,
        stage,
        screen: Arc::clone(&screen),
        changed: Arc::clone(&changed),
        input: Database::new(),
        bytes_in: Arc::clone(&bytes_in),
        started: std::time::Instant::now(),
    };
    let ended = Arc::clone(&changed);
    tokio::spawn(async move {
        let why = match guarded(task.run(command_rx)).await {
            Ok(why) => why,
            Err(panic) => {
                tracing::error!(%panic, "the RDP session task failed");
                RdpEnd::ConnectionLost(INTERNAL_ERROR.to_owned())
            }
        };
        tracing::info!(end = %why, "RDP session ended");
        let _ = end_tx.send(Some(why));
        ended.notify_one();
    });
    // Wake any waiter so the first full frame is taken.
    changed.notify_one();
    Ok((
        RdpSession {
            commands,
            screen,
            changed,
            end,
            can_resize,
            certificate: fingerprint,
            bytes_in,
            decode_nanos,
            remote_clipboard,
            clipboard_changed,
        },
        trusted_by,
    ))
}

/// The CredSSP exchange (NTLM inside TLS), as `connect_finalize` would run it.
async fn nla<S>(
    connector: &mut ClientConnector,
    framed: &mut TokioFramed<S>,
    host: &str,
    server_public_key: Vec<u8>,
) -> ironrdp_connector::ConnectorResult<()>
where
    S: AsyncRead + AsyncWrite + Send + Sync + Unpin,
{
    let selected_protocol = match connector.state {
        ironrdp_connector::ClientConnectorState::Credssp {
            selected_protocol, ..
        } => selected_protocol,
        _ => {
            return Err(ironrdp_connector::general_err!(
                "invalid connector state for CredSSP"
            ));
        }
    };
    let (sequence, ts_request) = ironrdp_connector::credssp::CredsspSequence::init(
        connector.config.credentials.clone(),
        connector.config.domain.as_deref(),
        selected_protocol,
        host.to_owned().into(),
        server_public_key,
        None,
    )?;
    let mut buf = ironrdp_core::WriteBuf::new();
    ironrdp_tokio::perform_credssp(framed, &mut NoKdc, &mut buf, sequence, ts_request).await?;
    connector.mark_credssp_as_done();
    Ok(())
}

/// rustls needs a DNS name or an IP address; other spellings (a catalog name
/// with an underscore, say) are checked by pin only, under a placeholder.
fn tls_server_name(host: &str) -> String {
    if rustls_pki_types::ServerName::try_from(host.to_owned()).is_ok() {
        host.to_owned()
    } else {
        "rdp.invalid".to_owned()
    }
}

async fn trust_pinned(
    target: &RdpTarget,
    fingerprint: &CertFingerprint,
    store: &CertStore,
    prompter: &dyn Prompter,
) -> Result<CertTrustedBy, RdpError> {
    match store.check(&target.host, target.port, fingerprint) {
        CertVerdict::Trusted => Ok(CertTrustedBy::Pinned),
        CertVerdict::Changed { pinned, location } => Err(RdpError::CertificateChanged {
            host: target.host.clone(),
            port: target.port,
            pinned: pinned.to_colon_hex(),
            presented: fingerprint.to_colon_hex(),
            location,
        }),
        CertVerdict::Unknown => {
            let question = UnknownHostKey {
                host: target.host.clone(),
                port: target.port,
                key_type: "RDP server certificate".into(),
                fingerprint: fingerprint.to_colon_hex(),
            };
            match prompter.unknown_host_key(&question).await {
                HostKeyDecision::Reject => Err(RdpError::CertificateRefused {
                    host: target.host.clone(),
                    port: target.port,
                    fingerprint: fingerprint.to_colon_hex(),
                }),
                HostKeyDecision::AcceptOnce => Ok(CertTrustedBy::AcceptedNow),
                HostKeyDecision::AcceptAndRemember => {
                    store
                        .remember(&target.host, target.port, fingerprint)
                        .map_err(|e| RdpError::Connect {
                            host: target.host.clone(),
                            port: target.port,
                            cause: format!(
                                "cannot record the certificate in {}: {e}",
                                store.path().display()
                            ),
                        })?;
                    Ok(CertTrustedBy::AcceptedNow)
                }
            }
        }
    }
}

/// What a server's disconnect reason means for the person: their own log-off on
/// the remote desktop, or the server ending the session (with its words).
fn end_of(reason: &str) -> RdpEnd {
    if reason.contains("user logging off") {
        RdpEnd::LoggedOff
    } else {
        RdpEnd::ServerDisconnected(reason.to_owned())
    }
}

/// Turns IronRDP's errors into ones a person can act on. `during_nla`: the
/// error came from the phase where credentials are checked.
fn connector_error(
    error: ironrdp_connector::ConnectorError,
    target: &RdpTarget,
    during_nla: bool,
) -> RdpError {
    let (host, port) = (target.host.clone(), target.port);
    let text = error.to_string();
    tracing::debug!(%host, port, error = %text, "RDP connection sequence failed");
    match error.kind() {
        ConnectorErrorKind::AccessDenied => RdpError::AuthRejected { host, port },
        ConnectorErrorKind::Credssp(e) if is_logon_failure(e) => {
            RdpError::AuthRejected { host, port }
        }
        ConnectorErrorKind::Negotiation(failure) => RdpError::SecurityNotOffered {
            host,
            port,
            cause: failure.to_string(),
        },
        _ if during_nla && looks_like_nla_refusal(&error) => RdpError::AuthRejected { host, port },
        _ => RdpError::Connect {
            host,
            port,
            cause: cause_chain(&error),
        },
    }
}

fn is_logon_failure(error: &ironrdp_connector::sspi::Error) -> bool {
    use ironrdp_connector::sspi::ErrorKind;
    matches!(
        error.error_type,
        ErrorKind::LogonDenied
            | ErrorKind::NoCredentials
            | ErrorKind::UnknownCredentials
            | ErrorKind::WrongPrincipalName
            | ErrorKind::MessageAltered
    ) || error.description.contains("0xC000006D")
}

/// Servers that refuse NTLM credentials often just close the connection (FreeRDP
/// does) or send a TSRequest error code, instead of an SSPI status.
fn looks_like_nla_refusal(error: &ironrdp_connector::ConnectorError) -> bool {
    let text = cause_chain(error).to_ascii_lowercase();
    [
        "logon",
        "eof",
        "not enough bytes",
        "connection reset",
        "unexpected end",
        "c000006d",
        "access denied",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}

type Upgraded<S> = TokioFramed<ironrdp_tls::TlsStream<S>>;

struct SessionTask<S> {
    framed: Upgraded<S>,
    stage: ActiveStage,
    /// Runs a deactivation-reactivation when the server starts one.
    activation: ConnectionActivationFactory,
    can_resize: Arc<std::sync::atomic::AtomicBool>,
    /// The latest resize asked for before [`RESIZE_SETTLE`], sent then.
    pending_resize: Option<(u16, u16)>,
    screen: Arc<Mutex<Screen>>,
    changed: Arc<Notify>,
    input: Database,
    bytes_in: Arc<std::sync::atomic::AtomicU64>,
    decode_nanos: Arc<std::sync::atomic::AtomicU64>,
    started: std::time::Instant,
    /// What the clipboard backend saw, when the session shares the clipboard.
    clipboard: Option<Arc<Mutex<Vec<ClipEvent>>>>,
    /// Our side's text, offered to the server.
    local_clipboard: Option<String>,
    remote_clipboard: Arc<Mutex<Option<String>>>,
    clipboard_changed: Arc<Notify>,
}

enum Step {
    Continue,
    End(RdpEnd),
}

impl<S> SessionTask<S>
where
    S: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static,
{
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) -> RdpEnd {
        let settled = tokio::time::Instant::now() + RESIZE_SETTLE;
        let end = loop {
            let step = tokio::select! {
                pdu = self.framed.read_pdu() => match pdu {
                    Ok((action, payload)) => match self.server_pdu(action, &payload).await {
                        Step::Continue => self.clipboard_events().await,
                        end => end,
                    },
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        Step::End(RdpEnd::ConnectionLost(
                            "the connection closed without a goodbye from the server".into(),
                        ))
                    }
                    Err(e) => Step::End(RdpEnd::ConnectionLost(e.to_string())),
                },
                () = tokio::time::sleep_until(settled), if self.pending_resize.is_some() => {
                    let (width, height) = self.pending_resize.take().expect("pending");
                    self.resize(width, height).await.0
                }
                command = commands.recv() => match command {
                    Some(Command::Input(events)) => self.send_input(&events).await,
                    Some(Command::Clipboard(text)) => {
                        self.local_clipboard = Some(text);
                        self.announce_clipboard().await
                    }
                    Some(Command::Resize { width, height, sent }) => {
                        if tokio::time::Instant::now() < settled {
                            // Sent once the session has settled (the latest size wins).
                            self.pending_resize = Some((width, height));
                            let _ = sent.send(true);
                            Step::Continue
                        } else {
                            let (step, done) = self.resize(width, height).await;
                            let _ = sent.send(done);
                            step
                        }
                    }
                    Some(Command::Close) | None => {
                        self.shutdown().await;
                        Step::End(RdpEnd::Closed)
                    }
                },
            };
            if let Step::End(why) = step {
                break why;
            }
        };
        self.changed.notify_one();
        end
    }

    async fn server_pdu(&mut self, action: ironrdp_pdu::Action, payload: &[u8]) -> Step {
        self.bytes_in
            .fetch_add(payload.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let now = ironrdp_core::MonotonicInstant::from_millis(
            u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        );
        let decoding = std::time::Instant::now();
        let outputs = {
            let mut screen = lock(&self.screen);
            let processed = self
                .stage
                .process(&mut screen.image, action, payload, Some(now));
            self.decode_nanos.fetch_add(
                u64::try_from(decoding.elapsed().as_nanos()).unwrap_or(u64::MAX),
                std::sync::atomic::Ordering::Relaxed,
            );
            match processed {
                Ok(outputs) => outputs,
                Err(e) => {
                    return Step::End(RdpEnd::ConnectionLost(format!(
                        "undecodable data from the server: {}",
                        cause_chain(&e)
                    )));
                }
            }
        };
        let step = self.outputs(outputs).await;
        if let Some(ready) = self.stage.display_control_ready() {
            self.can_resize
                .store(ready, std::sync::atomic::Ordering::Relaxed);
        }
        step
    }

    /// Sends a display-control resize; `false` when the server offers none.
    async fn resize(&mut self, width: u16, height: u16) -> (Step, bool) {
        let (width, height) =
            MonitorLayoutEntry::adjust_display_size(u32::from(width), u32::from(height));
        {
            let screen = lock(&self.screen);
            if (
                u32::from(screen.image.width()),
                u32::from(screen.image.height()),
            ) == (width, height)
            {
                return (Step::Continue, true);
            }
        }
        let frame = match self.stage.encode_resize(width, height, None, None) {
            None => return (Step::Continue, false),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "resize not encodable");
                return (Step::Continue, false);
            }
            Some(Ok(frame)) => frame,
        };
        tracing::info!(width, height, "display-control resize requested");
        match self.framed.write_all(&frame).await {
            Ok(()) => (Step::Continue, true),
            Err(e) => (Step::End(RdpEnd::ConnectionLost(e.to_string())), false),
        }
    }

    /// A virtual channel's message that arrived during a reactivation: only
    /// its replies are sent (there is no desktop to draw on meanwhile).
    async fn channel_pdu(&mut self, action: ironrdp_pdu::Action, payload: &[u8]) -> Step {
        let processed = {
            let mut screen = lock(&self.screen);
            self.stage.process(&mut screen.image, action, payload, None)
        };
        match processed {
            Ok(outputs) => {
                for output in outputs {
                    if let ActiveStageOutput::ResponseFrame(frame) = output
                        && !frame.is_empty()
                        && let Err(e) = self.framed.write_all(&frame).await
                    {
                        return Step::End(RdpEnd::ConnectionLost(e.to_string()));
                    }
                }
                self.clipboard_events().await
            }
            Err(e) => {
                tracing::warn!(error = %cause_chain(&e), "channel message during reactivation dropped");
                Step::Continue
            }
        }
    }

    /// The deactivation-reactivation sequence (the server resized the desktop,
    /// or reconnected it): capabilities again, then a new framebuffer.
    async fn reactivate(&mut self) -> Step {
        let mut sequence = self.activation.create();
        let mut buf = ironrdp_core::WriteBuf::new();
        let io_channel = self.activation.io_channel_id();
        let deadline = tokio::time::Instant::now() + REACTIVATION_TIMEOUT;
        loop {
            buf.clear();
            let written = if ironrdp_connector::Sequence::next_pdu_hint(&sequence).is_none() {
                ironrdp_connector::Sequence::step_no_input(&mut sequence, &mut buf)
            } else {
                let pdu = match tokio::time::timeout_at(deadline, self.framed.read_pdu()).await {
                    Err(_) => {
                        return Step::End(RdpEnd::ConnectionLost(format!(
                            "the server did not finish restarting the display in {} s",
                            REACTIVATION_TIMEOUT.as_secs()
                        )));
                    }
                    Ok(Err(e)) => return Step::End(RdpEnd::ConnectionLost(e.to_string())),
                    Ok(Ok(pdu)) => pdu,
                };
                let (action, payload) = pdu;
                self.bytes_in
                    .fetch_add(payload.len() as u64, std::sync::atomic::Ordering::Relaxed);
                if action == ironrdp_pdu::Action::FastPath {
                    // Drawing for the desktop being replaced.
                    continue;
                }
                let channel = ironrdp_pdu::mcs::decode_send_data_indication(&payload)
                    .map(|data| data.channel_id)
                    .ok();
                if channel.is_some_and(|id| id != io_channel) {
                    // A virtual channel (clipboard, dynamic channels) carries on
                    // meanwhile, handled as in the session.
                    if let Step::End(why) = self.channel_pdu(action, &payload).await {
                        return Step::End(why);
                    }
                    continue;
                }
                ironrdp_connector::Sequence::step(&mut sequence, &payload, None, &mut buf)
            };
            let written = match written {
                Ok(written) => written,
                Err(e) => {
                    return Step::End(RdpEnd::ConnectionLost(format!(
                        "restarting the display: {}",
                        cause_chain(&e)
                    )));
                }
            };
            if let Some(size) = written.size()
                && let Err(e) = self.framed.write_all(&buf.filled()[..size]).await
            {
                return Step::End(RdpEnd::ConnectionLost(e.to_string()));
            }
            if let ConnectionActivationState::Finalized {
                desktop_size,
                share_id,
                static_channel_chunk_size,
                enable_server_pointer,
                pointer_software_rendering,
                ..
            } = sequence.connection_activation_state()
            {
                if !self.stage.reactivate(
                    self.activation.io_channel_id(),
                    self.activation.user_channel_id(),
                    share_id,
                    enable_server_pointer,
                    pointer_software_rendering,
                    static_channel_chunk_size,
                ) {
                    return Step::End(RdpEnd::ServerDisconnected(
                        "the server restarted the display with an invalid channel setting".into(),
                    ));
                }
                tracing::info!(
                    width = desktop_size.width,
                    height = desktop_size.height,
                    "desktop reactivated"
                );
                let mut screen = lock(&self.screen);
                screen.image = DecodedImage::new(
                    ironrdp_graphics::image_processing::PixelFormat::RgbA32,
                    desktop_size.width,
                    desktop_size.height,
                );
                screen.damage.take();
                screen.full = true;
                drop(screen);
                self.changed.notify_one();
                return Step::Continue;
            }
        }
    }

    async fn outputs(&mut self, outputs: Vec<ActiveStageOutput>) -> Step {
        let mut drew = false;
        for output in outputs {
            match output {
                ActiveStageOutput::ResponseFrame(frame) if !frame.is_empty() => {
                    if let Err(e) = self.framed.write_all(&frame).await {
                        return Step::End(RdpEnd::ConnectionLost(e.to_string()));
                    }
                }
                ActiveStageOutput::GraphicsUpdate(region) => {
                    let rect = Rect {
                        x: region.left,
                        y: region.top,
                        width: region.right.saturating_sub(region.left).saturating_add(1),
                        height: region.bottom.saturating_sub(region.top).saturating_add(1),
                    };
                    lock(&self.screen).damage.add(rect);
                    drew = true;
                }
                ActiveStageOutput::Terminate(reason) => {
                    return Step::End(end_of(&reason.to_string()));
                }
                ActiveStageOutput::DeactivateAll => {
                    if let Step::End(why) = self.reactivate().await {
                        return Step::End(why);
                    }
                }
                _ => {}
            }
        }
        if drew {
            self.changed.notify_one();
        }
        Step::Continue
    }

    async fn send_input(&mut self, events: &[RdpInput]) -> Step {
        let mut operations = Vec::with_capacity(events.len());
        let mut fastpath = Vec::new();
        for event in events {
            match event {
                RdpInput::MouseMove { x, y } => {
                    operations.push(Operation::MouseMove(MousePosition { x: *x, y: *y }))
                }
                RdpInput::MouseButton { button, down } => {
                    if let Some(button) = MouseButton::from_web_button(*button) {
                        operations.push(if *down {
                            Operation::MouseButtonPressed(button)
                        } else {
                            Operation::MouseButtonReleased(button)
                        });
                    }
                }
                RdpInput::Wheel { vertical, delta } => {
                    operations.push(Operation::WheelRotations(WheelRotations {
                        is_vertical: *vertical,
                        rotation_units: *delta,
                    }))
                }
                RdpInput::Key { code, down, text } => {
                    if let Some((extended, code)) = keys::scancode(code) {
                        let scancode = Scancode::from_u8(extended, code);
                        operations.push(if *down {
                            Operation::KeyPressed(scancode)
                        } else {
                            Operation::KeyReleased(scancode)
                        });
                    } else if let (true, Some(text)) = (*down, text) {
                        let mut chars = text.chars();
                        if let (Some(c), None) = (chars.next(), chars.next()) {
                            operations.push(Operation::UnicodeKeyPressed(c));
                            operations.push(Operation::UnicodeKeyReleased(c));
                        }
                    }
                }
                RdpInput::Scancode {
                    extended,
                    code,
                    down,
                } => {
                    let scancode = Scancode::from_u8(*extended, *code);
                    operations.push(if *down {
                        Operation::KeyPressed(scancode)
                    } else {
                        Operation::KeyReleased(scancode)
                    });
                }
                RdpInput::Text { text } => {
                    for c in text.chars() {
                        operations.push(Operation::UnicodeKeyPressed(c));
                        operations.push(Operation::UnicodeKeyReleased(c));
                    }
                }
                RdpInput::ReleaseAll => {
                    fastpath.extend(self.input.apply(std::mem::take(&mut operations)));
                    fastpath.extend(self.input.release_all());
                }
                RdpInput::CtrlAltDel => {
                    let ctrl = Scancode::from_u8(false, 0x1D);
                    let alt = Scancode::from_u8(false, 0x38);
                    let del = Scancode::from_u8(true, 0x53);
                    operations.extend([
                        Operation::KeyPressed(ctrl),
                        Operation::KeyPressed(alt),
                        Operation::KeyPressed(del),
                        Operation::KeyReleased(del),
                        Operation::KeyReleased(alt),
                        Operation::KeyReleased(ctrl),
                    ]);
                }
            }
        }
        fastpath.extend(self.input.apply(operations));
        if fastpath.is_empty() {
            return Step::Continue;
        }
        let outputs = {
            let mut screen = lock(&self.screen);
            match self
                .stage
                .process_fastpath_input(&mut screen.image, &fastpath)
            {
                Ok(outputs) => outputs,
                Err(e) => {
                    tracing::warn!(error = %e, "input not encodable, dropped");
                    return Step::Continue;
                }
            }
        };
        self.outputs(outputs).await
    }

    /// Sends the frames a clipboard call produced.
    async fn send_svc(
        &mut self,
        messages: ironrdp_pdu::PduResult<
            ironrdp_cliprdr::CliprdrSvcMessages<ironrdp_cliprdr::Client>,
        >,
    ) -> Step {
        let frame = match messages.map_err(|e| e.to_string()).and_then(|m| {
            self.stage
                .process_svc_processor_messages(m)
                .map_err(|e| e.to_string())
        }) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::warn!(error = %e, "clipboard message not sent");
                return Step::Continue;
            }
        };
        if frame.is_empty() {
            return Step::Continue;
        }
        match self.framed.write_all(&frame).await {
            Ok(()) => Step::Continue,
            Err(e) => Step::End(RdpEnd::ConnectionLost(e.to_string())),
        }
    }

    /// The clipboard channel, when shared; `ready` only once it finished its
    /// initialization (our first format list completes it).
    fn cliprdr(&mut self, ready: bool) -> Option<&mut CliprdrClient> {
        self.clipboard.as_ref()?;
        self.stage
            .get_svc_processor_mut::<CliprdrClient>()
            .filter(|c| !ready || c.is_ready())
    }

    /// Tells the server which formats our clipboard has (text, or nothing).
    async fn announce_clipboard(&mut self) -> Step {
        let formats: Vec<ClipboardFormat> = match &self.local_clipboard {
            Some(_) => vec![ClipboardFormat::new(ClipboardFormatId::CF_UNICODETEXT)],
            None => Vec::new(),
        };
        let Some(cliprdr) = self.cliprdr(false) else {
            return Step::Continue;
        };
        let messages = cliprdr.initiate_copy(&formats);
        self.send_svc(messages).await
    }

    /// Acts on what the clipboard backend saw while the last PDU was processed.
    async fn clipboard_events(&mut self) -> Step {
        let Some(events) = &self.clipboard else {
            return Step::Continue;
        };
        let events = std::mem::take(&mut *lock(events));
        for event in events {
            let step = match event {
                ClipEvent::WantsFormats => self.announce_clipboard().await,
                ClipEvent::RemoteCopy { text: true } => match self.cliprdr(true) {
                    Some(cliprdr) => {
                        let messages = cliprdr.initiate_paste(ClipboardFormatId::CF_UNICODETEXT);
                        self.send_svc(messages).await
                    }
                    None => Step::Continue,
                },
                ClipEvent::RemoteCopy { text: false } => Step::Continue,
                ClipEvent::DataRequest(format) => {
                    let response = match (&self.local_clipboard, format) {
                        (Some(text), ClipboardFormatId::CF_UNICODETEXT) => {
                            FormatDataResponse::new_unicode_string(text)
                        }
                        _ => FormatDataResponse::new_error(),
                    };
                    match self.cliprdr(true) {
                        Some(cliprdr) => {
                            let messages = cliprdr.submit_format_data(response);
                            self.send_svc(messages).await
                        }
                        None => Step::Continue,
                    }
                }
                ClipEvent::DataResponse(text) => {
                    if let Some(text) = text.filter(|t| t.len() <= MAX_CLIPBOARD_BYTES) {
                        *lock(&self.remote_clipboard) = Some(text);
                        self.clipboard_changed.notify_one();
                    }
                    Step::Continue
                }
            };
            if let Step::End(_) = step {
                return step;
            }
        }
        Step::Continue
    }

    async fn shutdown(&mut self) {
        if let Ok(outputs) = self.stage.graceful_shutdown() {
            for output in outputs {
                if let ActiveStageOutput::ResponseFrame(frame) = output {
                    let _ = self.framed.write_all(&frame).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironrdp_pdu::rdp::server_error_info::{ErrorInfo, ProtocolIndependentCode};

    #[test]
    fn a_log_off_is_told_apart_from_a_server_ending_the_session() {
        let said = |code| ErrorInfo::ProtocolIndependentCode(code).description();
        assert_eq!(
            end_of(&said(ProtocolIndependentCode::LogoffByUser)),
            RdpEnd::LoggedOff
        );
        for code in [
            ProtocolIndependentCode::RpcInitiatedLogoff,
            ProtocolIndependentCode::IdleTimeout,
            ProtocolIndependentCode::DisconnectedByOtherconnection,
        ] {
            let text = said(code);
            assert_eq!(end_of(&text), RdpEnd::ServerDisconnected(text));
        }
    }

    #[test]
    fn domain_user_forms_are_split_for_ntlm() {
        assert_eq!(
            split_user("CORP\\alice", None),
            ("alice".into(), Some("CORP".into()))
        );
        assert_eq!(
            split_user("alice@corp.example", Some("IGNORED")),
            ("alice@corp.example".into(), Some("IGNORED".into()))
        );
        assert_eq!(split_user("alice", Some("")), ("alice".into(), None));
        assert_eq!(split_user("\\alice", None), ("\\alice".into(), None));
    }

    #[test]
    fn settings_out_of_range_are_refused_before_any_connection() {
        let target = RdpTarget {
            host: "win1".into(),
            port: 3389,
        };
        let credentials = RdpCredentials {
            user: "alice".into(),
            password: None,
            domain: None,
        };
        let small = RdpOptions {
            width: 100,
            ..RdpOptions::default()
        };
        assert!(matches!(
            validate(&target, &credentials, &small),
            Err(RdpError::Invalid(m)) if m.contains("width")
        ));
        let nobody = RdpCredentials {
            user: " ".into(),
            ..credentials.clone()
        };
        assert!(validate(&target, &nobody, &RdpOptions::default()).is_err());
        let long = RdpCredentials {
            password: Some(Secret::new("x".repeat(513))),
            ..credentials.clone()
        };
        assert!(validate(&target, &long, &RdpOptions::default()).is_err());
        assert!(validate(&target, &credentials, &RdpOptions::default()).is_ok());
    }
}
