//! Real RDP servers in the lab's private namespace (groundwork for the RDP issue):
//! FreeRDP's shadow server on an Xvfb display of its own, with NLA against a SAM
//! file, catalogued at the gateway as `rdp1` and granted to alice (tag `lab`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_client::Client;
use portcullis_client::dial::{Dialer, Route};
use portcullis_client::rdp::certs::CertStore;
use portcullis_client::rdp::frame::Canvas;
use portcullis_client::rdp::{
    CertTrustedBy, RdpCredentials, RdpError, RdpInput, RdpOptions, RdpSession, RdpTarget,
};
use portcullis_client::ssh::{FixedAnswers, HostKeyTrust};

use crate::{Lab, VNET_IP, in_netns, require_tool};

pub const RDP_USER: &str = "rdplab";
pub const RDP_PASSWORD: &str = "lab-rdp-password-1";
pub const RDP_PORT: u16 = 3389;

/// An Xvfb display started by the lab (stopped with it); returns ":N".
pub fn start_display(lab: &mut Lab, geometry: &str) -> String {
    let (xvfb, display) = crate::start_xvfb(geometry);
    lab.adopt(xvfb);
    display
}

/// Whether `address` accepts a TCP connection from inside `ns`, now.
fn port_open(ns: &str, address: std::net::SocketAddr) -> bool {
    in_netns(ns, move || {
        std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
    })
}

/// Starts `freerdp-shadow-cli` in the private namespace on `VNET_IP:3389`, sharing
/// a fresh 1024×768 Xvfb display, and catalogues it at the gateway as `rdp1`.
/// Returns the display the server shows.
pub fn start_shadow_server(lab: &mut Lab) -> String {
    start_shadow_server_sized(lab, "1024x768x24")
}

/// [`start_shadow_server`] on a display of `geometry` (`WxHxDEPTH`).
pub fn start_shadow_server_sized(lab: &mut Lab, geometry: &str) -> String {
    for tool in ["freerdp-shadow-cli", "winpr-hash"] {
        require_tool(tool);
    }
    let display = start_display(lab, geometry);
    let dir = lab.path("rdp");
    std::fs::create_dir_all(&dir).expect("rdp dir");
    let sam = Command::new("winpr-hash")
        .args(["-u", RDP_USER, "-p", RDP_PASSWORD, "-f", "sam"])
        .output()
        .expect("winpr-hash");
    assert!(sam.status.success(), "winpr-hash failed");
    let sam_file = dir.join("sam");
    std::fs::write(&sam_file, &sam.stdout).expect("SAM file");
    let log_path = dir.join("shadow.log");
    let address: std::net::SocketAddr = format!("{VNET_IP}:{RDP_PORT}").parse().expect("address");
    // Under load the shadow server sometimes exits before it listens (seen with
    // the window tests beside it): start it again, at most three times, and show
    // its log if it never comes up.
    for attempt in 1..=3 {
        let log = std::fs::File::create(&log_path).expect("shadow log");
        let mut server = Command::new("ip")
            .args(["netns", "exec", &lab.vnet, "freerdp-shadow-cli"])
            .arg(format!("/port:{RDP_PORT}"))
            .arg(format!("/bind-address:{VNET_IP}"))
            .args(["+auth", "/sec:nla"])
            .arg(format!("/sam-file:{}", sam_file.display()))
            // It writes its certificate under ~/.config/freerdp.
            .env("HOME", &dir)
            .env("DISPLAY", &display)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start freerdp-shadow-cli");
        let deadline = Instant::now() + Duration::from_secs(20);
        let listening = loop {
            if port_open(&lab.vnet, address) {
                break true;
            }
            if Instant::now() > deadline || server.try_wait().ok().flatten().is_some() {
                break false;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if listening {
            lab.adopt(server);
            break;
        }
        let _ = server.kill();
        let _ = server.wait();
        assert!(
            attempt < 3,
            "the FreeRDP shadow server did not start listening on {address}: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }
    catalog(lab, "rdp1", RDP_PORT);
    display
}

/// Where xrdp listens in the private namespace (the shadow server has 3389).
pub const XRDP_PORT: u16 = 3390;

/// xrdp with xorgxrdp in the private namespace on `VNET_IP:3390`, TLS only, its own
/// certificate, logging on the lab's PAM user (`SSH_USER`), catalogued at the
/// gateway as `rdp2`. A session's desktop is a fixed colour with nothing on it;
/// its X display (`:N.0`) is written to `display` in the user's home when it
/// starts (the session's cookie for it is in the user's `.Xauthority`).
pub fn start_xrdp(lab: &mut Lab) -> std::path::PathBuf {
    for tool in ["xrdp", "xrdp-sesman", "openssl", "xsetroot"] {
        require_tool(tool);
    }
    assert!(
        std::path::Path::new("/usr/lib/xorg/Xorg").exists(),
        "Xorg is missing: install xorgxrdp"
    );
    let dir = lab.path("xrdp");
    std::fs::create_dir_all(&dir).expect("xrdp dir");
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=rdp2", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl");
    assert!(made.status.success(), "xrdp certificate");
    // The session: a solid desktop, and the display number for the tests.
    let startwm = dir.join("startwm.sh");
    std::fs::write(
        &startwm,
        "#!/bin/sh\nxsetroot -solid '#2e8b57'\necho \"$DISPLAY\" > \"$HOME/display\"\nexec sleep 100000\n",
    )
    .expect("startwm.sh");
    std::fs::set_permissions(
        &startwm,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod startwm.sh");
    let log = |name: &str| dir.join(name).display().to_string();
    let sesman = std::fs::read_to_string("/etc/xrdp/sesman.ini")
        .expect("sesman.ini")
        .replace(
            "EnableUserWindowManager=true",
            "EnableUserWindowManager=false",
        )
        .replace(
            "DefaultWindowManager=startwm.sh",
            &format!("DefaultWindowManager={}", startwm.display()),
        )
        .replace("KillDisconnected=false", "KillDisconnected=true")
        .replace(
            "LogFile=xrdp-sesman.log",
            &format!("LogFile={}", log("sesman.log")),
        )
        .replace("EnableSyslog=true", "EnableSyslog=false");
    std::fs::write(dir.join("sesman.ini"), sesman).expect("sesman.ini");
    let xrdp = std::fs::read_to_string("/etc/xrdp/xrdp.ini")
        .expect("xrdp.ini")
        .replace("port=3389", &format!("port=tcp://{VNET_IP}:{XRDP_PORT}"))
        .replace("security_layer=negotiate", "security_layer=tls")
        .replace(
            "certificate=\n",
            &format!("certificate={}\n", dir.join("cert.pem").display()),
        )
        .replace(
            "key_file=\n",
            &format!("key_file={}\n", dir.join("key.pem").display()),
        )
        .replace("LogFile=xrdp.log", &format!("LogFile={}", log("xrdp.log")))
        .replace("EnableSyslog=true", "EnableSyslog=false");
    std::fs::write(dir.join("xrdp.ini"), xrdp).expect("xrdp.ini");
    // PAM for sesman in the private namespace (its /etc/pam.d is the lab's).
    std::fs::write(
        crate::netns_etc(&lab.vnet).join("pam.d/xrdp-sesman"),
        "auth required pam_unix.so\naccount required pam_unix.so\n\
         session required pam_unix.so\npassword required pam_unix.so\n",
    )
    .expect("pam.d/xrdp-sesman");
    // Xorg writes its log in the user's home.
    let home = lab.path("pclab-home");
    let chown = Command::new("chown")
        .args(["-R", "4242:4242"])
        .arg(&home)
        .status()
        .expect("chown");
    assert!(chown.success());
    std::fs::create_dir_all("/run/xrdp/sockdir").expect("/run/xrdp/sockdir");
    let _ = Command::new("chmod")
        .args(["3777", "/run/xrdp/sockdir"])
        .status();
    // One xrdp at a time in this process: two session managers starting at once
    // pick the same X display number (the X sockets are shared across labs).
    lab.hold(Box::new(XrdpTurn::take(&home)));
    // Both daemons in a PID namespace of their own: when the lab kills it, the
    // session processes sesman forked (Xorg, the window manager, chansrv) go
    // too, instead of outliving the test.
    let out = std::fs::File::create(dir.join("xrdp.out")).expect("log");
    let script = format!(
        "xrdp-sesman --nodaemon --config {sesman} & exec xrdp --nodaemon --config {xrdp}",
        sesman = dir.join("sesman.ini").display(),
        xrdp = dir.join("xrdp.ini").display(),
    );
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.vnet])
        .args([
            "unshare",
            "--pid",
            "--fork",
            "--kill-child",
            "sh",
            "-c",
            &script,
        ])
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("xrdp: {e}"));
    lab.adopt(child);
    let address: std::net::SocketAddr = format!("{VNET_IP}:{XRDP_PORT}").parse().expect("address");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !port_open(&lab.vnet, address) {
        assert!(
            Instant::now() < deadline,
            "xrdp did not start listening on {address}: {}{}",
            std::fs::read_to_string(dir.join("xrdp.out")).unwrap_or_default(),
            std::fs::read_to_string(dir.join("xrdp.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    catalog(lab, "rdp2", XRDP_PORT);
    dir
}

/// This process's turn to run xrdp, until dropped (with the lab, after its
/// processes).
///
/// The session's Xorg and chansrv are killed with the lab, so they leave their
/// X lock file and sockets behind, in /tmp and /run/xrdp/sockdir. sesman takes
/// the first display number (10 to 60) without any, so after 50 runs on one
/// machine no session starts ("no display in range"). Taking a turn clears what
/// earlier runs left for displays no Xorg serves; dropping it clears the
/// session's own display.
struct XrdpTurn {
    /// The session user's home, where its start-up script writes `$DISPLAY`.
    session_home: std::path::PathBuf,
}

static XRDP_BUSY: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
static XRDP_FREED: std::sync::Condvar = std::sync::Condvar::new();

impl XrdpTurn {
    fn take(session_home: &Path) -> XrdpTurn {
        let mut busy = XRDP_BUSY.lock().unwrap_or_else(|e| e.into_inner());
        while *busy {
            busy = XRDP_FREED.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        *busy = true;
        let serving = xorg_displays();
        for number in 10..=60 {
            if !serving.contains(&number) {
                remove_display_leftovers(number);
            }
        }
        XrdpTurn {
            session_home: session_home.to_owned(),
        }
    }
}

/// The display numbers running `Xorg` processes serve (`Xorg :N ...`).
fn xorg_displays() -> Vec<u32> {
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    processes
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .filter_map(|cmdline| {
            let mut args = cmdline.split(|&b| b == 0);
            let program = args.next()?;
            if !program.ends_with(b"Xorg") {
                return None;
            }
            args.find_map(|arg| {
                std::str::from_utf8(arg.strip_prefix(b":")?)
                    .ok()?
                    .parse()
                    .ok()
            })
        })
        .collect()
}

/// Removes display `number`'s X lock file and socket, and xrdp's sockets for it.
fn remove_display_leftovers(number: u32) {
    let _ = std::fs::remove_file(format!("/tmp/.X{number}-lock"));
    let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{number}"));
    let suffix = format!("_{number}");
    if let Ok(entries) = std::fs::read_dir("/run/xrdp/sockdir") {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().ends_with(&suffix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

impl Drop for XrdpTurn {
    fn drop(&mut self) {
        let display =
            std::fs::read_to_string(self.session_home.join("display")).unwrap_or_default();
        if let Some(number) = display
            .trim()
            .strip_prefix(':')
            .and_then(|n| n.split('.').next())
            .and_then(|n| n.parse::<u32>().ok())
        {
            remove_display_leftovers(number);
        }
        *XRDP_BUSY.lock().unwrap_or_else(|e| e.into_inner()) = false;
        XRDP_FREED.notify_all();
    }
}

/// Catalogues an RDP server of the private namespace at the gateway (tag `lab`,
/// which alice is granted).
fn catalog(lab: &Lab, name: &str, port: u16) {
    let port = port.to_string();
    let added = lab.gw(
        &[
            "host",
            "add",
            name,
            "--address",
            VNET_IP,
            "--port",
            &port,
            "--protocol",
            "rdp",
            "--tag",
            "lab",
        ],
        None,
    );
    assert!(added.status.success(), "host add {name} failed");
}

/// Paints the whole X display `display` one colour (its root window).
pub fn set_root(display: &str, rgb: [u8; 3]) {
    let colour = format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]);
    let out = Command::new("xsetroot")
        .args(["-solid", &colour])
        .env("DISPLAY", display)
        .output()
        .expect("xsetroot");
    assert!(
        out.status.success(),
        "xsetroot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether a canvas pixel shows `rgb`, give or take a little (codecs round).
pub fn close_to(pixel: Option<[u8; 4]>, rgb: [u8; 3]) -> bool {
    pixel.is_some_and(|p| (0..3).all(|i| p[i].abs_diff(rgb[i]) <= 8))
}

/// An RDP session of the client core to `host` through the signed-in gateway of
/// `client`, with the certificate store and known_hosts of `home`; an unknown
/// certificate is accepted (and pinned) only if `accept_new`.
pub async fn connect_through_gateway(
    client: &Arc<Client>,
    home: &Path,
    target: RdpTarget,
    credentials: &RdpCredentials,
    options: &RdpOptions,
    accept_new: bool,
) -> Result<(RdpSession, CertTrustedBy), RdpError> {
    let dialer = Dialer::new(
        Some(Arc::clone(client)),
        HostKeyTrust {
            openssh_files: Vec::new(),
            app_store: home.join("known_hosts"),
        },
        Arc::new(FixedAnswers::default()),
    );
    let connection = dialer
        .dial(&Route::Gateway { gateway: None }, &target.host, target.port)
        .await
        .unwrap_or_else(|e| panic!("tunnel to {}: {e}", target.host));
    RdpSession::connect(
        connection,
        target,
        credentials,
        options,
        &CertStore::new(home.join("rdp_certificates")),
        Arc::new(FixedAnswers {
            accept_new,
            ..FixedAnswers::default()
        }),
    )
    .await
}

/// Applies to `canvas` every update the session has (a big change comes in
/// parts), until it has none.
pub fn apply_updates(session: &RdpSession, canvas: &mut Canvas) {
    loop {
        let updates = session.take_updates();
        if updates.is_empty() {
            return;
        }
        for update in updates {
            canvas.apply(&update).expect("well-formed update");
        }
    }
}

/// Applies the session's updates to `canvas` until `done` holds for it; panics
/// when the session ends or `patience` runs out first.
pub async fn watch_until(
    session: &RdpSession,
    canvas: &mut Canvas,
    what: &str,
    patience: Duration,
    done: impl Fn(&Canvas) -> bool,
) {
    let deadline = Instant::now() + patience;
    loop {
        apply_updates(session, canvas);
        if canvas.width > 0 && done(canvas) {
            return;
        }
        assert!(
            session.ended().is_none(),
            "session ended while waiting for {what}: {:?}",
            session.ended()
        );
        assert!(
            Instant::now() < deadline,
            "no {what} within {patience:?} (the canvas is {}×{}, its top left pixel {:?})",
            canvas.width,
            canvas.height,
            canvas.pixel(0, 0)
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), session.changed()).await;
    }
}

/// `program ARGS` on X display `display`, with `auth` as its XAUTHORITY.
pub fn on_display(
    display: &str,
    auth: &Path,
    program: &str,
    args: &[&str],
) -> std::process::Output {
    Command::new(program)
        .args(args)
        .env("DISPLAY", display)
        .env("XAUTHORITY", auth)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// `xclip` on X display `display` (with `auth` as its XAUTHORITY, when it has
/// one), given `stdin` (a copy: xclip stays behind to serve it) or reading (a
/// paste, at most 5 s).
pub fn xclip(
    display: &str,
    auth: Option<&Path>,
    args: &[&str],
    stdin: Option<&str>,
) -> std::process::Output {
    let mut command = Command::new("timeout");
    command
        .arg("5")
        .arg("xclip")
        .args(args)
        .env("DISPLAY", display)
        .stdin(Stdio::piped())
        // `xclip -i` stays behind to serve the selection: it must not hold
        // our end of a pipe.
        .stdout(if stdin.is_some() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stderr(Stdio::null());
    if let Some(auth) = auth {
        command.env("XAUTHORITY", auth);
    }
    let mut child = command.spawn().expect("xclip");
    if let Some(text) = stdin {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("xclip input");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("xclip")
}

/// Waits (30 s at most) until the CLIPBOARD selection of `display` holds `text`.
pub fn wait_for_clipboard(display: &str, auth: Option<&Path>, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pasted = xclip(display, auth, &["-selection", "clipboard", "-o"], None);
        let now = String::from_utf8_lossy(&pasted.stdout).to_string();
        if now == text {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the clipboard of {display} never held {text:?} (it holds {now:?})"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Each key (by `KeyboardEvent.code`) pressed and released, then a character
/// with no key (as Unicode text), then Enter held down; all keys let go.
pub fn typing(codes: &[&str]) -> Vec<RdpInput> {
    let mut keys = Vec::with_capacity(codes.len() * 2 + 3);
    for code in codes {
        for down in [true, false] {
            keys.push(RdpInput::Key {
                code: (*code).into(),
                down,
                text: None,
            });
        }
    }
    keys.push(RdpInput::Text { text: "é".into() });
    keys.push(RdpInput::Key {
        code: "Enter".into(),
        down: true,
        text: None,
    });
    keys.push(RdpInput::ReleaseAll);
    keys
}

/// Waits (on the session's runtime) until the file a remote terminal writes
/// what it was typed holds something, and returns it.
pub async fn typed_text(path: &Path, patience: Duration) -> String {
    let deadline = Instant::now() + patience;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.is_empty()
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the keys never reached the terminal on the server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
