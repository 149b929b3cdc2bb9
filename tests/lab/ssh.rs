//! SSH sessions of the client core against real OpenSSH sshd in the private
//! namespace: through the gateway and through an OpenSSH jump host in the edge
//! namespace; every auth method, host key trust, PTY shells wired to the
//! terminal model, exit status and a host that goes away.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_client::Client;
use portcullis_client::dial::{DialError, Dialer, JumpHop, Route};
use portcullis_client::home::ClientHome;
use portcullis_client::ssh::{
    AuthMethod, FixedAnswers, HostKeyTrust, Prompter, PtyRequest, SshAuth, SshError, SshSession,
    SshTarget,
};
use portcullis_client::terminal::{SessionEnd, TerminalEvent, TerminalSession};
use portcullis_lab::*;
use portcullis_proto::Secret;
use portcullis_terminal::ScreenSize;
use tokio::sync::mpsc;

/// Long enough for a loaded CI machine; a hang, not slowness, is what it catches.
const PATIENCE: Duration = Duration::from_secs(30);

fn key(lab: &Lab, name: &str) -> AuthMethod {
    AuthMethod::KeyFile {
        path: lab.path("ssh").join(name),
    }
}

fn auth(user: &str, methods: Vec<AuthMethod>) -> SshAuth {
    SshAuth {
        user: user.into(),
        methods,
        agent_socket: None,
    }
}

fn answers(
    accept_new: bool,
    password: Option<&str>,
    passphrase: Option<&str>,
) -> Arc<dyn Prompter> {
    Arc::new(FixedAnswers {
        accept_new,
        password: password.map(|p| Secret::new(p.to_owned())),
        passphrase: passphrase.map(|p| Secret::new(p.to_owned())),
    })
}

struct Ends {
    client: Arc<Client>,
    known: PathBuf,
    store: PathBuf,
}

impl Ends {
    fn new(lab: &Lab, user: &str) -> Ends {
        lab.login(user);
        let home = ClientHome::resolve(Some(lab.path(&format!("home-{user}")))).unwrap();
        Ends {
            client: Arc::new(Client::new(home)),
            known: lab.path("ssh/known_hosts"),
            store: lab.path(&format!("home-{user}/known_hosts")),
        }
    }

    fn trust(&self, openssh_files: Vec<PathBuf>) -> HostKeyTrust {
        HostKeyTrust {
            openssh_files,
            app_store: self.store.clone(),
        }
    }

    fn dialer(&self, trust: HostKeyTrust, prompter: Arc<dyn Prompter>) -> Dialer {
        Dialer::new(Some(Arc::clone(&self.client)), trust, prompter)
    }
}

/// Dials `route` and logs in to `host`; errors as text, for assertions.
async fn connect(
    dialer: &Dialer,
    route: &Route,
    host: &str,
    auth: &SshAuth,
) -> Result<SshSession, String> {
    let connection = dialer
        .dial(route, host, 22)
        .await
        .map_err(|e| e.to_string())?;
    SshSession::connect(
        connection,
        SshTarget {
            host: host.into(),
            port: 22,
        },
        auth,
        dialer.trust.clone(),
        Arc::clone(&dialer.prompter),
        &dialer.ssh,
    )
    .await
    .map_err(|e| e.to_string())
}

fn gateway() -> Route {
    Route::Gateway { gateway: None }
}

async fn whoami(session: SshSession) -> String {
    let outcome = session.exec("id -un").await.expect("exec id");
    session.close().await;
    assert_eq!(outcome.exit_status, Some(0));
    String::from_utf8_lossy(&outcome.stdout).trim().to_owned()
}

#[test]
fn ssh_through_the_gateway_verifies_host_keys_and_reports_exit_status() {
    let Some(lab) =
        Lab::lab_or_skip("ssh_through_the_gateway_verifies_host_keys_and_reports_exit_status")
    else {
        return;
    };
    let ends = Ends::new(&lab, "alice");
    let root = auth("root", vec![key(&lab, "client_ed25519")]);
    // Same host name, another key: what a rebuilt (or impersonated) host looks like.
    let other = lab.path("other_ed25519");
    new_ssh_key(&other);
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_key = other_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let changed = lab.path("changed_known_hosts");
    std::fs::write(&changed, format!("# rebuilt\nvnet1 {other_key}\n")).unwrap();

    let (outcome, unknown, first_use, from_store, changed_error) =
        block_on_in(&lab.out.clone(), move || async move {
            let known = ends.dialer(
                ends.trust(vec![ends.known.clone()]),
                answers(false, None, None),
            );
            let session = connect(&known, &gateway(), "vnet1", &root)
                .await
                .expect("ssh session");
            let outcome = session
                .exec("echo out; echo err >&2; exit 7")
                .await
                .expect("exec");
            session.close().await;

            // Unknown and not accepted: refused with the fingerprint.
            let strict = ends.dialer(ends.trust(vec![]), answers(false, None, None));
            let unknown = connect(&strict, &gateway(), "vnet1", &root).await.err();
            // Accepted on first use: recorded in the app store, then trusted from it.
            let tofu = ends.dialer(ends.trust(vec![]), answers(true, None, None));
            let first_use = connect(&tofu, &gateway(), "vnet1", &root).await.map(|_| ());
            let from_store = connect(&strict, &gateway(), "vnet1", &root)
                .await
                .map(|_| ());
            // Changed: refused, naming the file and line, even when new keys are accepted.
            let rebuilt = ends.dialer(ends.trust(vec![changed.clone()]), answers(true, None, None));
            let changed_error = connect(&rebuilt, &gateway(), "vnet1", &root).await.err();
            (outcome, unknown, first_use, from_store, changed_error)
        });
    assert_eq!(outcome.exit_status, Some(7));
    assert_eq!(outcome.stdout, b"out\n");
    assert_eq!(outcome.stderr, b"err\n");
    let unknown = unknown.expect("an unknown host key was accepted");
    assert!(
        unknown.contains("is not known") && unknown.contains("SHA256:"),
        "{unknown}"
    );
    assert_eq!(first_use, Ok(()));
    assert_eq!(
        from_store,
        Ok(()),
        "the key accepted on first use was not remembered"
    );
    let stored = std::fs::read_to_string(lab.path("home-alice/known_hosts")).unwrap();
    assert!(stored.starts_with("vnet1 ssh-ed25519 "), "{stored}");
    let changed_error = changed_error.expect("a changed host key was accepted");
    assert!(
        changed_error.contains("has CHANGED")
            && changed_error.contains("changed_known_hosts line 2"),
        "{changed_error}"
    );
}

#[test]
fn ssh_auth_methods_keys_agent_password_and_keyboard_interactive() {
    let Some(mut lab) =
        Lab::lab_or_skip("ssh_auth_methods_keys_agent_password_and_keyboard_interactive")
    else {
        return;
    };
    let agent = lab.start_agent(&["client_ecdsa"]);
    let ends = Ends::new(&lab, "alice");
    let keys = ["client_ed25519", "client_ecdsa", "client_rsa"].map(|k| key(&lab, k));
    let passphrase_key = key(&lab, "client_pass_ed25519");
    let wrong_key = AuthMethod::KeyFile {
        path: lab.path("wrong_ed25519"),
    };
    new_ssh_key(&lab.path("wrong_ed25519"));

    let results = block_on_in(&lab.out.clone(), move || async move {
        let trust = ends.trust(vec![ends.known.clone()]);
        let plain = ends.dialer(trust.clone(), answers(false, None, None));
        let mut results: Vec<(String, Result<String, String>)> = Vec::new();
        for method in keys {
            let name = format!("{method:?}");
            let outcome =
                match connect(&plain, &gateway(), "vnet1", &auth("root", vec![method])).await {
                    Ok(session) => Ok(whoami(session).await),
                    Err(e) => Err(e),
                };
            results.push((name, outcome));
        }
        // What the keys dialog lists of the agent: its one key's fingerprint.
        let listed = portcullis_client::ssh::agent_identities(&agent)
            .await
            .map(|keys| {
                keys.iter()
                    .map(|(algorithm, fingerprint, _)| format!("{algorithm} {fingerprint}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .map_err(|e| e.to_string());
        results.push(("agent keys".to_owned(), listed));
        let mut try_one = async |label: &str, dialer: &Dialer, auth: SshAuth| {
            let outcome = match connect(dialer, &gateway(), "vnet1", &auth).await {
                Ok(session) => Ok(whoami(session).await),
                Err(e) => Err(e),
            };
            results.push((label.to_owned(), outcome));
        };
        let with_passphrase =
            ends.dialer(trust.clone(), answers(false, None, Some(KEY_PASSPHRASE)));
        try_one(
            "passphrase",
            &with_passphrase,
            auth("root", vec![passphrase_key.clone()]),
        )
        .await;
        let wrong_passphrase = ends.dialer(trust.clone(), answers(false, None, Some("not-it")));
        try_one(
            "wrong passphrase",
            &wrong_passphrase,
            auth("root", vec![passphrase_key.clone()]),
        )
        .await;
        try_one("no passphrase", &plain, auth("root", vec![passphrase_key])).await;
        let mut by_agent = auth("root", vec![AuthMethod::Agent]);
        by_agent.agent_socket = Some(agent);
        try_one("agent", &plain, by_agent).await;
        let with_password =
            ends.dialer(trust.clone(), answers(false, Some(SSH_USER_PASSWORD), None));
        try_one(
            "password",
            &with_password,
            auth(SSH_USER, vec![AuthMethod::Password]),
        )
        .await;
        try_one(
            "keyboard-interactive",
            &with_password,
            auth(SSH_USER, vec![AuthMethod::KeyboardInteractive]),
        )
        .await;
        let bad_password = ends.dialer(trust.clone(), answers(false, Some("wrong-password"), None));
        try_one(
            "wrong password",
            &bad_password,
            auth(SSH_USER, vec![AuthMethod::Password]),
        )
        .await;
        try_one("wrong key", &plain, auth("root", vec![wrong_key])).await;
        results
    });
    let get = |label: &str| {
        results
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("no result for {label}"))
    };
    for (label, result) in results.iter().take(3) {
        assert_eq!(result, &Ok("root".to_owned()), "{label}");
    }
    assert_eq!(get("passphrase"), Ok("root".into()));
    let fingerprint = ssh_fingerprint(&lab.path("ssh/client_ecdsa.pub"));
    assert_eq!(
        get("agent keys"),
        Ok(format!("ecdsa-sha2-nistp256 {fingerprint}"))
    );
    let wrong = get("wrong passphrase").unwrap_err();
    assert!(wrong.contains("wrong passphrase"), "{wrong}");
    assert!(
        !wrong.contains("not-it"),
        "the passphrase reached an error: {wrong}"
    );
    let none = get("no passphrase").unwrap_err();
    assert!(none.contains("passphrase not given"), "{none}");
    assert_eq!(get("agent"), Ok("root".into()));
    assert_eq!(get("password"), Ok(SSH_USER.into()));
    assert_eq!(get("keyboard-interactive"), Ok(SSH_USER.into()));
    let bad = get("wrong password").unwrap_err();
    assert!(bad.contains("password: rejected"), "{bad}");
    assert!(
        !bad.contains("wrong-password"),
        "the password reached an error: {bad}"
    );
    let wrong_key = get("wrong key").unwrap_err();
    assert!(
        wrong_key.contains("root@vnet1 was not accepted")
            && wrong_key.contains("wrong_ed25519: rejected")
            && wrong_key.contains("the server offers: publickey, password, keyboard-interactive"),
        "{wrong_key}"
    );
}

#[test]
fn ssh_host_certificates_are_checked_against_cert_authority_lines() {
    let Some(lab) =
        Lab::lab_or_skip("ssh_host_certificates_are_checked_against_cert_authority_lines")
    else {
        return;
    };
    let ends = Ends::new(&lab, "alice");
    let root = auth("root", vec![key(&lab, "client_ed25519")]);
    let public = |name: &str| {
        let text = std::fs::read_to_string(lab.path("ssh").join(format!("{name}.pub"))).unwrap();
        text.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    new_ssh_key(&lab.path("ssh/other_ca"));
    let trusted_ca = lab.path("ca_known_hosts");
    std::fs::write(
        &trusted_ca,
        format!("@cert-authority * {}\n", public("host_ca")),
    )
    .unwrap();
    let other_ca = lab.path("other_ca_known_hosts");
    std::fs::write(
        &other_ca,
        format!("@cert-authority * {}\n", public("other_ca")),
    )
    .unwrap();
    let hop = JumpHop {
        host: JUMP_IP.into(),
        port: JUMP_PORT,
        auth: root.clone(),
    };
    let (by_ca, wrong_name, wrong_ca) = block_on_in(&lab.out.clone(), move || async move {
        // No plain key for vnet1 anywhere: only the authority vouches for it.
        let ca = ends.dialer(
            ends.trust(vec![trusted_ca.clone()]),
            answers(false, None, None),
        );
        let by_ca = match connect(&ca, &gateway(), "vnet1", &root).await {
            Ok(session) => Ok(whoami(session).await),
            Err(e) => Err(e),
        };
        // The certificate names vnet1; reached by address, it does not vouch.
        let jump = ends.dialer(
            ends.trust(vec![trusted_ca, ends.known.clone()]),
            answers(false, None, None),
        );
        let route = Route::Jump { hops: vec![hop] };
        let wrong_name = connect(&jump, &route, VNET_IP, &root).await.err();
        let other = ends.dialer(ends.trust(vec![other_ca]), answers(true, None, None));
        let wrong_ca = connect(&other, &gateway(), "vnet1", &root).await.err();
        (by_ca, wrong_name, wrong_ca)
    });
    assert_eq!(by_ca, Ok("root".to_owned()));
    let wrong_name = wrong_name.expect("a certificate for another name was accepted");
    assert!(
        wrong_name.contains("not issued for the name"),
        "{wrong_name}"
    );
    let wrong_ca = wrong_ca.expect("a certificate from an untrusted authority was accepted");
    assert!(
        wrong_ca.contains("no @cert-authority line trusts"),
        "{wrong_ca}"
    );
}

/// Collects a terminal session's events and answers questions about its screen.
struct Watch {
    session: TerminalSession,
    events: mpsc::Receiver<TerminalEvent>,
    alt_seen: bool,
    alt_now: bool,
    updates: usize,
    end: Option<SessionEnd>,
}

impl Watch {
    fn start(shell: portcullis_client::ssh::Shell, size: ScreenSize) -> Watch {
        let (tx, events) = mpsc::channel(16);
        Watch {
            session: TerminalSession::start(shell, size, 2000, tx),
            events,
            alt_seen: false,
            alt_now: false,
            updates: 0,
            end: None,
        }
    }

    fn drain(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            match event {
                TerminalEvent::Screen(update) => {
                    self.updates += 1;
                    self.alt_now = update.alt_screen;
                    self.alt_seen |= update.alt_screen;
                }
                TerminalEvent::Ended(end) => self.end = Some(end),
            }
        }
    }

    async fn type_line(&self, line: &str) {
        self.session
            .input(format!("{line}\r").into_bytes())
            .await
            .expect("session alive");
    }

    /// Waits until the visible screen satisfies `check`; panics with the screen after PATIENCE.
    async fn until(&mut self, what: &str, check: impl Fn(&Watch, &[String]) -> bool) {
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.drain();
            let text = self.session.visible_text().await.unwrap_or_default();
            if check(self, &text) {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "waited for {what}; the screen shows:\n{}",
                text.join("\n")
            );
        }
    }

    /// Like `until`, but leaves the events unread, as a UI that is behind would.
    async fn until_without_reading(&self, what: &str, check: impl Fn(&[String]) -> bool) {
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let text = self.session.visible_text().await.unwrap_or_default();
            if check(&text) {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "waited for {what}; the screen shows:\n{}",
                text.join("\n")
            );
        }
    }

    async fn ended(&mut self) -> SessionEnd {
        let started = Instant::now();
        while self.end.is_none() {
            assert!(started.elapsed() < PATIENCE, "the session did not end");
            match tokio::time::timeout(Duration::from_millis(200), self.events.recv()).await {
                Ok(Some(TerminalEvent::Ended(end))) => self.end = Some(end),
                Ok(Some(TerminalEvent::Screen(update))) => {
                    self.updates += 1;
                    self.alt_now = update.alt_screen;
                }
                Ok(None) => panic!("the session task went away without an end"),
                Err(_) => {}
            }
        }
        self.end.clone().expect("ended")
    }
}

fn shows_line(text: &[String], wanted: &str) -> bool {
    text.iter().any(|line| line.trim() == wanted)
}

#[test]
fn ssh_terminal_through_a_jump_host_resizes_runs_full_screen_programs_and_exits() {
    let Some(lab) = Lab::lab_or_skip(
        "ssh_terminal_through_a_jump_host_resizes_runs_full_screen_programs_and_exits",
    ) else {
        return;
    };
    require_tool("vim.tiny");
    let ends = Ends::new(&lab, "alice");
    let root = auth("root", vec![key(&lab, "client_ed25519")]);
    let hop = JumpHop {
        host: JUMP_IP.into(),
        port: JUMP_PORT,
        auth: root.clone(),
    };
    let marker_file = lab.path("alt-screen.txt");
    std::fs::write(&marker_file, "portcullis-alt-screen-marker\n").unwrap();
    // The jump host known with another key: the route must stop there.
    let changed = lab.path("changed_jump_known_hosts");
    let other = std::fs::read_to_string(lab.path("ssh/host_ed25519.pub")).unwrap();
    let other = other
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    std::fs::write(&changed, format!("[{JUMP_IP}]:{JUMP_PORT} {other}\n")).unwrap();

    let (end, alt_seen, alt_after, jump_changed, direct_refused) =
        block_on_in(&lab.out.clone(), move || async move {
            let route = Route::Jump { hops: vec![hop] };
            let rebuilt = ends.dialer(ends.trust(vec![changed]), answers(true, None, None));
            let jump_changed = match rebuilt.dial(&route, VNET_IP, 22).await {
                Err(DialError::Jump {
                    source: SshError::HostKeyChanged { .. },
                    ..
                }) => true,
                other => panic!("a changed jump host key was not refused: {:?}", other.err()),
            };
            // Only the jump host (or the gateway) spans the networks.
            let direct = ends.dialer(
                ends.trust(vec![ends.known.clone()]),
                answers(false, None, None),
            );
            let direct_refused = connect(&direct, &Route::Direct, VNET_IP, &root)
                .await
                .is_err();

            let dialer = ends.dialer(
                ends.trust(vec![ends.known.clone()]),
                answers(false, None, None),
            );
            let session = connect(&dialer, &route, VNET_IP, &root)
                .await
                .expect("ssh via jump");
            let mut pty = PtyRequest::xterm(80, 24);
            pty.env
                .push(("PORTCULLIS_LAB".into(), "env-reached-the-server".into()));
            let shell = session.open_shell(Some(&pty), None).await.expect("shell");
            let mut watch = Watch::start(shell, ScreenSize::clamped(80, 24));
            watch.type_line("stty size").await;
            watch
                .until("stty size 24 80", |_, t| shows_line(t, "24 80"))
                .await;
            watch
                .session
                .resize(ScreenSize::clamped(100, 30))
                .await
                .unwrap();
            watch.type_line("clear; stty size").await;
            watch
                .until("stty size 30 100", |_, t| shows_line(t, "30 100"))
                .await;
            watch.type_line("echo $PORTCULLIS_LAB").await;
            watch
                .until("the environment variable", |_, t| {
                    shows_line(t, "env-reached-the-server")
                })
                .await;
            watch
                .type_line(&format!("vim.tiny -u NONE -N {}", marker_file.display()))
                .await;
            watch
                .until("vim on the alternate screen", |w, t| {
                    w.alt_now && shows_line(t, "portcullis-alt-screen-marker")
                })
                .await;
            watch.session.input(b"\x1b:q!\r".to_vec()).await.unwrap();
            watch.until("back from vim", |w, _| !w.alt_now).await;
            let alt_after = watch.alt_now;
            watch.type_line("exit 7").await;
            let end = watch.ended().await;
            session.close().await;
            (end, watch.alt_seen, alt_after, jump_changed, direct_refused)
        });
    assert!(jump_changed);
    assert!(
        direct_refused,
        "the private host was reachable without the jump host"
    );
    assert!(alt_seen, "the alternate screen never reached the model");
    assert!(!alt_after);
    assert_eq!(
        end,
        SessionEnd::Exited {
            status: Some(7),
            signal: None
        }
    );
}

#[test]
fn ssh_session_reports_a_lost_connection_when_sshd_dies() {
    let Some(lab) = Lab::lab_or_skip("ssh_session_reports_a_lost_connection_when_sshd_dies") else {
        return;
    };
    let ends = Ends::new(&lab, "alice");
    let root = auth("root", vec![key(&lab, "client_ed25519")]);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let out = lab.out.clone();
    let waiter = std::thread::spawn(move || {
        block_on_in(&out, move || async move {
            let dialer = ends.dialer(
                ends.trust(vec![ends.known.clone()]),
                answers(false, None, None),
            );
            let session = connect(&dialer, &gateway(), "vnet1", &root)
                .await
                .expect("ssh");
            let shell = session
                .open_shell(Some(&PtyRequest::xterm(80, 24)), None)
                .await
                .expect("shell");
            let mut watch = Watch::start(shell, ScreenSize::clamped(80, 24));
            // A flood while the UI reads nothing: updates wait as one, never queue up.
            watch.until("the prompt", |w, _| w.updates > 0).await;
            watch.updates = 0;
            watch.type_line("seq 1 200000; echo flood-done").await;
            watch
                .until_without_reading("the end of the flood", |t| {
                    shows_line(t, "flood-done") && shows_line(t, "200000")
                })
                .await;
            watch.drain();
            let flood_updates = watch.updates;
            // The final state always arrives once the UI reads again.
            watch.type_line("echo ready-to-die").await;
            watch
                .until("the shell", |w, t| {
                    shows_line(t, "ready-to-die") && w.updates > flood_updates
                })
                .await;
            tx.send(()).unwrap();
            let end = watch.ended().await;
            let after = session.exec("true").await.err();
            (end, after, flood_updates)
        })
    });
    rx.recv_timeout(PATIENCE)
        .expect("the session never became ready");
    lab.kill_vnet_sshd();
    let (end, after, flood_updates) = waiter.join().expect("session thread");
    // 1.3 MB of output, and no more updates than the event channel holds.
    assert!(
        (1..=16).contains(&flood_updates),
        "{flood_updates} updates were queued for an unread flood"
    );
    match end {
        SessionEnd::Lost { cause } => assert!(!cause.is_empty()),
        other => panic!("killing sshd gave {other:?}, not a lost connection"),
    }
    match after {
        Some(SshError::ConnectionLost { host, .. }) => assert_eq!(host, "vnet1"),
        other => panic!("a command on a dead connection gave {other:?}"),
    }
}

#[test]
fn portcullis_ssh_cli_exit_status_trust_and_known_hosts() {
    let Some(lab) = Lab::lab_or_skip("portcullis_ssh_cli_exit_status_trust_and_known_hosts") else {
        return;
    };
    lab.login("alice");
    let key = lab.path("ssh/client_ed25519").display().to_string();
    // A user home whose ~/.ssh/known_hosts is the lab's (OpenSSH's file, only read).
    let user_home = lab.path("user-home");
    std::fs::create_dir_all(user_home.join(".ssh")).unwrap();
    std::fs::copy(
        lab.path("ssh/known_hosts"),
        user_home.join(".ssh/known_hosts"),
    )
    .unwrap();
    let empty_home = lab.path("empty-home");
    std::fs::create_dir_all(&empty_home).unwrap();
    let ssh = |home: &PathBuf, args: &[&str]| {
        let mut cmd = lab.cli_command("alice", args);
        cmd.env("HOME", home).env_remove("SSH_AUTH_SOCK");
        pipe_bytes(&mut cmd, None)
    };
    let text = |out: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };

    let out = ssh(
        &user_home,
        &["ssh", "-i", &key, "root@vnet1", "--", "echo hi; exit 7"],
    );
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");

    // Not in OpenSSH's file, no terminal to ask on: refused with the fingerprint.
    let out = ssh(
        &empty_home,
        &["ssh", "-i", &key, "root@vnet1", "--", "true"],
    );
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    assert!(
        text(&out).contains("is not known") && text(&out).contains("SHA256:"),
        "{}",
        text(&out)
    );
    let out = ssh(
        &empty_home,
        &[
            "ssh",
            "--accept-new",
            "-i",
            &key,
            "root@vnet1",
            "--",
            "exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let out = ssh(
        &empty_home,
        &["ssh", "-i", &key, "root@vnet1", "--", "exit 0"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "the accepted key was not remembered: {}",
        text(&out)
    );

    let listed = ssh(&empty_home, &["known-hosts"]);
    assert!(listed.status.success());
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.starts_with("vnet1\tssh-ed25519\tSHA256:"),
        "{listed}"
    );
    let removed = ssh(&empty_home, &["known-hosts", "remove", "vnet1"]);
    assert!(removed.status.success(), "{}", text(&removed));
    let out = ssh(
        &empty_home,
        &["ssh", "-i", &key, "root@vnet1", "--", "true"],
    );
    assert_eq!(
        out.status.code(),
        Some(255),
        "a removed key is still trusted"
    );
    let again = ssh(&empty_home, &["known-hosts", "remove", "vnet1"]);
    assert!(!again.status.success());

    // In a terminal (util-linux `script` makes the pty): the size reaches the
    // server, and an unknown key is asked about on /dev/tty.
    require_tool("script");
    let portcullis = bin("portcullis").display().to_string();
    let cli_home = lab.path("home-alice").display().to_string();
    let in_pty = |home: &PathBuf, line: &str, input: &[u8]| {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &lab.out,
            "script",
            "-qefc",
            line,
            "/dev/null",
        ])
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK");
        pipe_bytes(&mut cmd, Some(input))
    };
    let out = in_pty(
        &user_home,
        &format!(
            "stty cols 100 rows 30; exec {portcullis} --home {cli_home} ssh -t -i {key} root@vnet1 -- 'stty size; exit 4'"
        ),
        b"",
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("30 100"), "{}", text(&out));
    let asked_home = lab.path("asked-home");
    std::fs::create_dir_all(&asked_home).unwrap();
    let out = in_pty(
        &asked_home,
        &format!("exec {portcullis} --home {cli_home} ssh -i {key} root@vnet1 -- 'exit 6'"),
        b"yes\n",
    );
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(
        text(&out).contains("Are you sure you want to continue connecting"),
        "{}",
        text(&out)
    );
    let remembered = std::fs::read_to_string(format!("{cli_home}/known_hosts")).unwrap();
    assert!(remembered.starts_with("vnet1 ssh-ed25519 "), "{remembered}");

    // Through the jump host, by address, like ssh -J.
    let jump = format!("root@{JUMP_IP}:{JUMP_PORT}");
    let out = ssh(
        &user_home,
        &[
            "ssh",
            "-J",
            &jump,
            "-i",
            &key,
            &format!("root@{VNET_IP}"),
            "--",
            "hostname; exit 5",
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));

    // Addresses are never gateway host names; bad arguments are refused cleanly.
    let out = ssh(&user_home, &["ssh", "-i", &key, &format!("root@{VNET_IP}")]);
    assert_eq!(out.status.code(), Some(255));
    assert!(text(&out).contains("address"), "{}", text(&out));
    let out = ssh(
        &user_home,
        &["ssh", "-i", "/nonexistent/key", "root@vnet1", "--", "true"],
    );
    assert_eq!(out.status.code(), Some(255));
    assert!(text(&out).contains("/nonexistent/key"), "{}", text(&out));
}
