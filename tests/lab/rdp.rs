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
    use portcullis_client::dial::{Dialer, Route};
    use portcullis_client::home::ClientHome;
    use portcullis_client::rdp::certs::CertStore;
    use portcullis_client::rdp::frame::Canvas;
    use portcullis_client::rdp::{
        CertTrustedBy, RdpCredentials, RdpError, RdpInput, RdpOptions, RdpSession, RdpTarget,
    };
    use portcullis_client::ssh::{FixedAnswers, HostKeyTrust, Prompter};
    use portcullis_lab::rdp::{RDP_PASSWORD, RDP_PORT, RDP_USER, start_shadow_server};
    use portcullis_lab::*;
    use portcullis_proto::Secret;

    const PATIENCE: Duration = Duration::from_secs(30);

    fn answers(accept_new: bool) -> Arc<dyn Prompter> {
        Arc::new(FixedAnswers {
            accept_new,
            ..FixedAnswers::default()
        })
    }

    fn credentials(password: &str) -> RdpCredentials {
        RdpCredentials {
            user: RDP_USER.into(),
            password: Some(Secret::new(password.to_owned())),
            domain: None,
        }
    }

    async fn open(
        client: &Arc<Client>,
        home: &Path,
        password: &str,
        accept_new: bool,
    ) -> Result<(RdpSession, CertTrustedBy), RdpError> {
        let dialer = Dialer::new(
            Some(Arc::clone(client)),
            HostKeyTrust {
                openssh_files: Vec::new(),
                app_store: home.join("known_hosts"),
            },
            answers(false),
        );
        let connection = dialer
            .dial(&Route::Gateway { gateway: None }, "rdp1", RDP_PORT)
            .await
            .expect("tunnel to rdp1");
        RdpSession::connect(
            connection,
            RdpTarget {
                host: "rdp1".into(),
                port: RDP_PORT,
            },
            &credentials(password),
            &RdpOptions::default(),
            &CertStore::new(home.join("rdp_certificates")),
            answers(accept_new),
        )
        .await
    }

    /// Applies updates to `canvas` until `done` holds for it, or panics after PATIENCE.
    async fn watch_until(
        session: &RdpSession,
        canvas: &mut Canvas,
        what: &str,
        done: impl Fn(&Canvas) -> bool,
    ) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            while let Some(update) = session.take_update() {
                canvas.apply(&update).expect("well-formed update");
            }
            if canvas.width > 0 && done(canvas) {
                return;
            }
            assert!(
                session.ended().is_none(),
                "session ended while waiting for {what}: {:?}",
                session.ended()
            );
            assert!(Instant::now() < deadline, "no {what} within {PATIENCE:?}");
            let _ = tokio::time::timeout(Duration::from_millis(200), session.changed()).await;
        }
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

    fn close_to(pixel: Option<[u8; 4]>, rgb: [u8; 3]) -> bool {
        pixel.is_some_and(|p| (0..3).all(|i| p[i].abs_diff(rgb[i]) <= 8))
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
        x(&display, "xsetroot", &["-solid", "#1e90ff"]);
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
            watch_until(&session, &mut canvas, "the blue desktop", |c| {
                close_to(c.pixel(512, 700), [0x1e, 0x90, 0xff])
                    && close_to(c.pixel(5, 5), [0x1e, 0x90, 0xff])
            })
            .await;
            assert_eq!(canvas.pixel(512, 700).unwrap()[3], 255, "opaque pixels");
            // A change on the server display reaches the canvas as an update.
            let before = session.bytes_in();
            x(&display, "xsetroot", &["-solid", "#ff8000"]);
            watch_until(&session, &mut canvas, "the orange desktop", |c| {
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
            watch_until(&session, &mut canvas, "the terminal window", |c| {
                close_to(c.pixel(150, 130), [0, 0, 0])
            })
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
            let mut keys = Vec::new();
            for code in ["KeyR", "KeyD", "KeyP", "Digit4", "Minus", "KeyO", "KeyK"] {
                keys.push(RdpInput::Key {
                    code: code.into(),
                    down: true,
                    text: None,
                });
                keys.push(RdpInput::Key {
                    code: code.into(),
                    down: false,
                    text: None,
                });
            }
            // A character with no key travels as Unicode text. FreeRDP 2's X11
            // shadow server drops Unicode events, so it cannot show here (xrdp
            // can); sending one must not disturb the keys around it.
            keys.push(RdpInput::Text { text: "é".into() });
            keys.push(RdpInput::Key {
                code: "Enter".into(),
                down: true,
                text: None,
            });
            keys.push(RdpInput::ReleaseAll);
            session.input(keys).await.unwrap();
            let deadline = Instant::now() + PATIENCE;
            let written = loop {
                if let Ok(text) = std::fs::read_to_string(&typed)
                    && !text.is_empty()
                {
                    break text;
                }
                assert!(
                    Instant::now() < deadline,
                    "the keys never reached the terminal on the server"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
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
