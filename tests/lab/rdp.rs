//! RDP through the gateway with FreeRDP's own client (`xfreerdp +auth-only`):
//! the private RDP server is reached only through a Portcullis tunnel, and NLA
//! tells a right password from a wrong one end to end.

use std::process::Command;

use portcullis_lab::rdp::{RDP_PASSWORD, RDP_USER, start_display, start_shadow_server};
use portcullis_lab::*;

#[test]
fn rdp_nla_reaches_the_private_shadow_server_only_through_the_gateway() {
    let Some(mut lab) =
        Lab::lab_or_skip("rdp_nla_reaches_the_private_shadow_server_only_through_the_gateway")
    else {
        return;
    };
    require_tool("xfreerdp");
    start_shadow_server(&mut lab);
    // xfreerdp wants a display even to authenticate only.
    let client_display = start_display(&mut lab, "800x600x24");
    let client_home = lab.path("rdp-client-home");
    std::fs::create_dir_all(&client_home).unwrap();
    lab.login("alice");
    let (listener, port) = lab.tunnel_listener("alice", "rdp1");
    lab.adopt(listener);
    let auth_only = |target: &str, password: &str| {
        Command::new("ip")
            .args(["netns", "exec", &lab.out, "xfreerdp"])
            .arg(format!("/v:{target}"))
            .arg(format!("/u:{RDP_USER}"))
            .arg(format!("/p:{password}"))
            .args(["/sec:nla", "/cert:ignore", "+auth-only", "/timeout:10000"])
            .env("DISPLAY", &client_display)
            .env("HOME", &client_home)
            .output()
            .expect("xfreerdp")
    };
    let through = format!("127.0.0.1:{port}");
    let good = auth_only(&through, RDP_PASSWORD);
    assert!(
        good.status.success(),
        "NLA through the tunnel failed: {}",
        String::from_utf8_lossy(&good.stderr)
    );
    let bad = auth_only(&through, "not-the-rdp-password");
    assert!(!bad.status.success(), "a wrong password was accepted");
    // It got as far as the server (TCP through the tunnel) and was refused there.
    let said = |out: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    assert!(
        !said(&bad).contains("ERRCONNECT_CONNECT_FAILED"),
        "{}",
        said(&bad)
    );
    // The private address is not reachable from the outside namespace directly.
    let direct = auth_only(&format!("{VNET_IP}:3389"), RDP_PASSWORD);
    assert!(
        !direct.status.success(),
        "the private RDP server answered directly"
    );
    assert!(
        said(&direct).contains("ERRCONNECT_CONNECT_FAILED"),
        "{}",
        said(&direct)
    );
    assert!(
        lab.audit()
            .iter()
            .any(|e| e["event"] == "tunnel_open" && e["host"] == "rdp1" && e["user"] == "alice"),
        "no tunnel_open for rdp1 in the audit"
    );
}

mod session {
    //! The client core's own RDP session (IronRDP) against the shadow server,
    //! through the gateway: certificate pinning, NLA, pixels and input.

    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use portcullis_client::Client;
    use portcullis_client::home::ClientHome;
    use portcullis_client::rdp::certs::CertStore;
    use portcullis_client::rdp::frame::Canvas;
    use portcullis_client::rdp::{
        CertTrustedBy, RdpCredentials, RdpError, RdpInput, RdpOptions, RdpSession, RdpTarget,
    };
    use portcullis_lab::rdp::{
        RDP_PASSWORD, RDP_PORT, RDP_USER, close_to, connect_through_gateway, set_root,
        start_shadow_server, typed_text, typing, watch_until,
    };
    use portcullis_lab::*;
    use portcullis_proto::Secret;

    const PATIENCE: Duration = Duration::from_secs(30);

    async fn open(
        client: &Arc<Client>,
        home: &Path,
        password: &str,
        accept_new: bool,
    ) -> Result<(RdpSession, CertTrustedBy), RdpError> {
        let credentials = RdpCredentials {
            user: RDP_USER.into(),
            password: Some(Secret::new(password.to_owned())),
            domain: None,
        };
        let target = RdpTarget {
            host: "rdp1".into(),
            port: RDP_PORT,
        };
        connect_through_gateway(
            client,
            home,
            target,
            &credentials,
            &RdpOptions::default(),
            accept_new,
        )
        .await
    }

    fn x(display: &str, program: &str, args: &[&str]) -> std::process::Output {
        let out = Command::new(program)
            .args(args)
            .env("DISPLAY", display)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    struct KillOnDrop(Child);

    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn rdp_session_through_the_gateway_shows_the_desktop_and_takes_input() {
        let Some(mut lab) =
            Lab::lab_or_skip("rdp_session_through_the_gateway_shows_the_desktop_and_takes_input")
        else {
            return;
        };
        for tool in ["xsetroot", "xterm", "xdotool"] {
            require_tool(tool);
        }
        let display = start_shadow_server(&mut lab);
        set_root(&display, [0x1e, 0x90, 0xff]);
        lab.login("alice");
        let home_dir = lab.path("home-alice");
        let client = Arc::new(Client::new(
            ClientHome::resolve(Some(home_dir.clone())).unwrap(),
        ));
        let typed_file = lab.path("rdp/typed.txt");
        let display_for_async = display.clone();
        let typed = typed_file.clone();
        let out = lab.out.clone();
        let gateway_pid = lab.gateway_pid();
        block_on_in(&out, move || async move {
            let display = display_for_async;
            // An unknown certificate is refused without a yes.
            let refused = open(&client, &home_dir, RDP_PASSWORD, false).await;
            match refused {
                Err(e @ RdpError::CertificateRefused { .. }) => {
                    assert!(e.to_string().contains("not trusted"), "{e}")
                }
                Err(e) => panic!("expected the certificate refused, got {e}"),
                Ok(_) => panic!("an unknown certificate was trusted"),
            }
            // A wrong password over NLA gives the clear error.
            let wrong = open(&client, &home_dir, "not-the-rdp-password", true).await;
            match wrong {
                Err(e @ RdpError::AuthRejected { .. }) => assert_eq!(
                    e.to_string(),
                    "rdp1:3389: the server rejected the user name or password"
                ),
                Err(e) => panic!("expected the password rejected, got {e}"),
                Ok(_) => panic!("a wrong password was accepted"),
            }
            // That attempt pinned the certificate (the TLS handshake came first).
            let store = CertStore::new(home_dir.join("rdp_certificates"));
            assert_eq!(store.entries().len(), 1, "{:?}", store.entries());
            let (session, trusted) = open(&client, &home_dir, RDP_PASSWORD, false)
                .await
                .expect("RDP session with the pinned certificate");
            assert_eq!(trusted, CertTrustedBy::Pinned);
            assert_eq!(session.size(), (1024, 768));
            let mut canvas = Canvas::default();
            watch_until(&session, &mut canvas, "the blue desktop", PATIENCE, |c| {
                close_to(c.pixel(512, 700), [0x1e, 0x90, 0xff])
                    && close_to(c.pixel(5, 5), [0x1e, 0x90, 0xff])
            })
            .await;
            // The shadow server mirrors a display of fixed size: it opens no
            // display-control channel, so a view scales the desktop instead.
            // (A resize asked for in the first seconds waits for the session
            // to settle, then is dropped.)
            tokio::time::sleep(portcullis_client::rdp::RESIZE_SETTLE).await;
            assert!(!session.resize(1280, 720).await.unwrap());
            assert!(!session.can_resize());
            assert_eq!(session.size(), (1024, 768));
            assert_eq!(canvas.pixel(512, 700).unwrap()[3], 255, "opaque pixels");
            // A change on the server display reaches the canvas as an update.
            let before = session.bytes_in();
            set_root(&display, [0xff, 0x80, 0x00]);
            watch_until(&session, &mut canvas, "the orange desktop", PATIENCE, |c| {
                close_to(c.pixel(900, 100), [0xff, 0x80, 0x00])
            })
            .await;
            assert!(session.bytes_in() > before);

            // Input: a terminal on the server display writes what it is typed.
            let script = format!("read line; printf '%s' \"$line\" > {}", typed.display());
            let terminal = KillOnDrop(
                Command::new("xterm")
                    .args(["-geometry", "40x10+100+100", "-bg", "black", "-fg", "white"])
                    .args(["-e", "sh", "-c", &script])
                    .env("DISPLAY", &display)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("xterm"),
            );
            let found = x(
                &display,
                "xdotool",
                &["search", "--sync", "--onlyvisible", "--class", "xterm"],
            );
            let window = String::from_utf8_lossy(&found.stdout)
                .lines()
                .next()
                .expect("xterm window")
                .to_owned();
            watch_until(
                &session,
                &mut canvas,
                "the terminal window",
                PATIENCE,
                |c| close_to(c.pixel(150, 130), [0, 0, 0]),
            )
            .await;
            // The pointer lands where aimed; with no window manager the keyboard
            // follows it into the terminal.
            session
                .input(vec![RdpInput::MouseMove { x: 180, y: 140 }])
                .await
                .unwrap();
            let deadline = Instant::now() + PATIENCE;
            loop {
                let at = x(&display, "xdotool", &["getmouselocation", "--shell"]);
                let text = String::from_utf8_lossy(&at.stdout).to_string();
                if text.contains("X=180\n") && text.contains("Y=140\n") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "pointer never reached 180,140: {text}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // A click lands where aimed: `xdotool selectwindow` waits for one
            // and names the window under it.
            let picker = Command::new("xdotool")
                .arg("selectwindow")
                .env("DISPLAY", &display)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("xdotool selectwindow");
            tokio::time::sleep(Duration::from_millis(500)).await;
            session
                .input(vec![
                    RdpInput::MouseButton {
                        button: 0,
                        down: true,
                    },
                    RdpInput::MouseButton {
                        button: 0,
                        down: false,
                    },
                ])
                .await
                .unwrap();
            let picked = tokio::task::spawn_blocking(move || picker.wait_with_output())
                .await
                .unwrap()
                .expect("selectwindow");
            assert_eq!(
                String::from_utf8_lossy(&picked.stdout).trim(),
                window,
                "the click did not land on the terminal: {}",
                String::from_utf8_lossy(&picked.stderr)
            );
            // A character with no key travels as Unicode text. FreeRDP 2's X11
            // shadow server drops Unicode events, so it cannot show here (xrdp
            // can); sending one must not disturb the keys around it.
            session
                .input(typing(&[
                    "KeyR", "KeyD", "KeyP", "Digit4", "Minus", "KeyO", "KeyK",
                ]))
                .await
                .unwrap();
            let written = typed_text(&typed, PATIENCE).await;
            assert_eq!(written, "rdp4-ok");
            drop(terminal);

            assert_eq!(
                session.close().await,
                portcullis_client::rdp::RdpEnd::Closed
            );
            assert!(session.input(vec![RdpInput::ReleaseAll]).await.is_err());

            // A server whose certificate changed is refused, naming the pin.
            let pins = home_dir.join("rdp_certificates");
            let other = portcullis_proto::CertFingerprint::of_der(b"another server");
            std::fs::write(&pins, format!("rdp1 {RDP_PORT} {other}\n")).unwrap();
            match open(&client, &home_dir, RDP_PASSWORD, true).await {
                Err(e @ RdpError::CertificateChanged { .. }) => {
                    let text = e.to_string();
                    assert!(text.contains("has changed"), "{text}");
                    assert!(text.contains("rdp_certificates:1"), "{text}");
                }
                Err(e) => panic!("expected a changed certificate, got {e}"),
                Ok(_) => panic!("a changed certificate was accepted"),
            }

            // The way to the server breaks (here the gateway shuts down under a
            // live session): a distinct "connection lost", not a hang.
            std::fs::remove_file(&pins).unwrap();
            let (session, _) = open(&client, &home_dir, RDP_PASSWORD, true)
                .await
                .expect("a session to lose");
            let stopped = Command::new("kill")
                .args(["-TERM", &gateway_pid.to_string()])
                .status()
                .unwrap();
            assert!(stopped.success());
            let end = tokio::time::timeout(PATIENCE, session.wait_end())
                .await
                .expect("the loss is noticed");
            assert!(
                matches!(end, portcullis_client::rdp::RdpEnd::ConnectionLost(_)),
                "{end:?}"
            );
            assert!(session.input(vec![RdpInput::ReleaseAll]).await.is_err());
        });
    }
}

mod xrdp {
    //! The client core against xrdp with xorgxrdp (TLS only, a PAM user), through
    //! the gateway: the password logs on (autologon), the session's desktop shows,
    //! keys reach a terminal on it, clipboard text goes both ways (cliprdr).

    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use portcullis_client::Client;
    use portcullis_client::home::ClientHome;
    use portcullis_client::rdp::frame::Canvas;
    use portcullis_client::rdp::{RdpCredentials, RdpInput, RdpOptions, RdpTarget};
    use portcullis_lab::rdp::{
        XRDP_PORT, apply_updates, close_to, connect_through_gateway, on_display, start_xrdp,
        typed_text, typing, watch_until, xclip,
    };
    use portcullis_lab::*;
    use portcullis_proto::Secret;
    use std::process::{Command, Stdio};

    #[test]
    fn xrdp_session_through_the_gateway_logs_on_takes_keys_and_shares_the_clipboard() {
        let Some(mut lab) = Lab::lab_or_skip(
            "xrdp_session_through_the_gateway_logs_on_takes_keys_and_shares_the_clipboard",
        ) else {
            return;
        };
        let dir = start_xrdp(&mut lab);
        lab.login("alice");
        let home = lab.path("home-alice");
        let client = Arc::new(Client::new(
            ClientHome::resolve(Some(home.clone())).unwrap(),
        ));
        let out = lab.out.clone();
        let logs = dir.clone();
        let xauthority = lab.path("pclab-home");
        block_on_in(&out, move || async move {
            let target = RdpTarget {
                host: "rdp2".into(),
                port: XRDP_PORT,
            };
            let credentials = RdpCredentials {
                user: SSH_USER.into(),
                password: Some(Secret::new(SSH_USER_PASSWORD.into())),
                domain: None,
            };
            let options = RdpOptions::default();
            let (session, _) =
                connect_through_gateway(&client, &home, target, &credentials, &options, true)
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "RDP session to xrdp: {e}\n{}",
                            std::fs::read_to_string(logs.join("xrdp.log")).unwrap_or_default()
                        )
                    });
            let mut canvas = Canvas::default();
            let desktop = "the xrdp session's desktop";
            watch_until(
                &session,
                &mut canvas,
                desktop,
                Duration::from_secs(45),
                |c| close_to(c.pixel(900, 700), [0x2e, 0x8b, 0x57]),
            )
            .await;
            // Keys reach a terminal on the session's own X display.
            let display = std::fs::read_to_string(xauthority.join("display"))
                .expect("the session wrote its display")
                .trim()
                .to_owned();
            let typed = logs.join("typed.txt");
            let script = format!("read line; printf '%s' \"$line\" > {}", typed.display());
            let mut terminal = Command::new("xterm")
                .args(["-geometry", "40x10+100+100", "-bg", "black", "-fg", "white"])
                .args(["-e", "sh", "-c", &script])
                .env("DISPLAY", &display)
                .env("XAUTHORITY", xauthority.join(".Xauthority"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("xterm");
            let terminal_shows = "the terminal";
            watch_until(
                &session,
                &mut canvas,
                terminal_shows,
                Duration::from_secs(30),
                |c| c.pixel(150, 130).is_some_and(|p| p[..3] == [0, 0, 0]),
            )
            .await;
            let mut keys = vec![RdpInput::MouseMove { x: 180, y: 140 }];
            keys.extend(typing(&[
                "KeyX", "KeyR", "KeyD", "KeyP", "Minus", "KeyO", "KeyK",
            ]));
            session.input(keys).await.unwrap();
            let written = typed_text(&typed, Duration::from_secs(30)).await;
            let _ = terminal.kill();
            let _ = terminal.wait();
            // Unicode key events: xrdp 0.9 drops them (as FreeRDP 2's shadow
            // server does), so only the scancode keys arrive.
            assert_eq!(written, "xrdp-ok");

            // Clipboard, server to client: a program on the session's display copies.
            let auth = xauthority.join(".Xauthority");
            let x = |args: &'static [&'static str], stdin: Option<&'static str>| {
                let (display, auth) = (display.clone(), auth.clone());
                // Blocking, so off the runtime the session task runs on.
                tokio::task::spawn_blocking(move || xclip(&display, Some(&auth), args, stdin))
            };
            x(
                &["-selection", "clipboard", "-i"],
                Some("from-the-server ünïcode"),
            )
            .await
            .unwrap();
            let remote = tokio::time::timeout(Duration::from_secs(30), async {
                loop {
                    if let Some(text) = session.take_remote_clipboard() {
                        break text;
                    }
                    session.remote_clipboard_changed().await;
                }
            })
            .await
            .expect("the server's clipboard text arrived");
            assert_eq!(remote, "from-the-server ünïcode");

            // Client to server: what this side copies is pasted there.
            session
                .set_clipboard("from-the-client 日本".into())
                .await
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let pasted = x(&["-selection", "clipboard", "-o"], None).await.unwrap();
                let text = String::from_utf8_lossy(&pasted.stdout).to_string();
                if text == "from-the-client 日本" {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the client's clipboard never reached the server: {text:?}"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }

            // Resize over the display-control channel: the server's X screen
            // takes the new size, and the desktop arrives again at that size.
            let deadline = Instant::now() + Duration::from_secs(30);
            while !session.can_resize() {
                assert!(
                    Instant::now() < deadline,
                    "xrdp never opened the display-control channel"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(session.resize(1281, 720).await.unwrap(), "resize sent");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                apply_updates(&session, &mut canvas);
                if (canvas.width, canvas.height) == (1280, 720)
                    && close_to(canvas.pixel(1250, 700), [0x2e, 0x8b, 0x57])
                {
                    break;
                }
                if session.ended().is_some() || Instant::now() > deadline {
                    panic!(
                        "no desktop at 1280x720 (canvas {}x{}, session end {:?})\n{}\n{}",
                        canvas.width,
                        canvas.height,
                        session.ended(),
                        tail(&logs.join("xrdp.log")),
                        tail(&logs.join("sesman.log")),
                    );
                }
                let _ = tokio::time::timeout(Duration::from_millis(200), session.changed()).await;
            }
            assert_eq!(session.size(), (1280, 720));
            let screen = {
                let (display, auth) = (display.clone(), auth.clone());
                tokio::task::spawn_blocking(move || {
                    on_display(&display, &auth, "xrandr", &["--current"])
                })
                .await
                .unwrap()
            };
            let screen = String::from_utf8_lossy(&screen.stdout).to_string();
            assert!(
                screen.contains("current 1280 x 720"),
                "the server's X screen was not resized: {screen}"
            );
            // Input still lands after the reactivation.
            session
                .input(vec![RdpInput::MouseMove { x: 1200, y: 600 }])
                .await
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let (display, auth) = (display.clone(), auth.clone());
                let at = tokio::task::spawn_blocking(move || {
                    on_display(&display, &auth, "xdotool", &["getmouselocation"])
                })
                .await
                .unwrap();
                let at = String::from_utf8_lossy(&at.stdout).to_string();
                if at.starts_with("x:1200 y:600 ") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the pointer did not move after the resize: {at}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            session.close().await;
        });
    }

    /// The last lines of a server log, for a failure message.
    fn tail(path: &std::path::Path) -> String {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "--- {}:\n{}",
            path.display(),
            lines[lines.len().saturating_sub(40)..].join("\n")
        )
    }
}
