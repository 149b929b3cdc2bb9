//! Lab tests: the gateway in front of a private namespace, real OpenSSH on both ends.
//! Each test builds its own lab (namespaces, sshd, echo server, gateway).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use portcullis_client::api::{GatewayApi, GatewayUrl};
use portcullis_client::tls::Trust;
use portcullis_lab::*;
use portcullis_proto::token::{Claims, TokenKind, TokenSigner};
use portcullis_proto::{CertFingerprint, Secret};
use tokio_tungstenite::tungstenite::Message;

mod desktop;
mod desktop_keys;
mod desktop_rdp;
mod rdp;
mod secrets;
mod ssh;
mod ssh_ca;
mod vault;

pub(crate) fn api(lab: &Lab) -> GatewayApi {
    GatewayApi::new(
        GatewayUrl::parse(&lab.gateway_url).unwrap(),
        Trust::Pinned(lab.fingerprint.parse::<CertFingerprint>().unwrap()),
    )
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn events<'a>(audit: &'a [serde_json::Value], event: &str) -> Vec<&'a serde_json::Value> {
    audit.iter().filter(|e| e["event"] == event).collect()
}

/// An access token of `user`, as the CLI stored it after login.
pub(crate) fn stored_access_token(lab: &Lab, user: &str) -> String {
    let text = std::fs::read_to_string(lab.path(&format!("home-{user}/gateways.json"))).unwrap();
    let state: serde_json::Value = serde_json::from_str(&text).unwrap();
    state["gateways"][0]["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// One GET over a fresh TLS connection, with raw headers; `None` when the gateway
/// drops the connection instead of answering.
async fn raw_get(
    api: &GatewayApi,
    path: &str,
    headers: &[(&str, String)],
) -> Option<(u16, String)> {
    use http_body_util::{BodyExt, Empty};
    let tls = api.connect(&[b"http/1.1"]).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut request = http::Request::builder()
        .uri(path)
        .header("host", EDGE_OUT_IP);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request.body(Empty::<bytes::Bytes>::new()).unwrap();
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

#[test]
fn private_host_is_reached_only_through_the_gateway() {
    let Some(lab) = Lab::lab_or_skip("private_host_is_reached_only_through_the_gateway") else {
        return;
    };

    // No route from outside to the private network.
    let direct = in_netns(&lab.out, || {
        TcpStream::connect_timeout(
            &format!("{VNET_IP}:22").parse().unwrap(),
            Duration::from_secs(3),
        )
    });
    assert!(direct.is_err(), "outside reached vnet directly");

    lab.login("alice");
    let hosts = lab.cli("alice", &["hosts", "--json"], None);
    assert!(hosts.status.success(), "{}", stderr(&hosts));
    let listed: serde_json::Value = serde_json::from_slice(&hosts.stdout).unwrap();
    let names: Vec<&str> = listed["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo1", "vnet1"]);
    assert!(
        listed["hosts"][0].get("address").is_none(),
        "non-admins never see addresses"
    );

    // OpenSSH with the CLI as ProxyCommand, host key checked strictly.
    let proxy = format!(
        "{} --home {} tunnel vnet1 --stdio",
        bin("portcullis").display(),
        lab.path("home-alice").display()
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.out, "ssh"])
        .args(lab.ssh_args())
        .args([
            "-o",
            &format!("ProxyCommand={proxy}"),
            "root@vnet1",
            "echo via-proxy-command; hostname -I",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh via ProxyCommand failed: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(text.contains("via-proxy-command"), "{text}");
    assert!(
        text.contains(VNET_IP),
        "the command ran on the vnet host: {text}"
    );

    // The same through `tunnel --listen`, twice through one listener.
    let (mut listener, port) = lab.tunnel_listener("alice", "vnet1");
    for round in 0..2 {
        let out = Command::new("ip")
            .args(["netns", "exec", &lab.out, "ssh"])
            .args(lab.ssh_args())
            .args([
                "-o",
                "HostKeyAlias=vnet1",
                "-p",
                &port.to_string(),
                "root@127.0.0.1",
                &format!("echo via-listen-{round}"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh via --listen failed: {}",
            stderr(&out)
        );
        assert!(stdout(&out).contains(&format!("via-listen-{round}")));
    }
    let _ = listener.kill();
    let _ = listener.wait();

    let audit = lab.audit();
    assert_eq!(events(&audit, "login_ok").len(), 1);
    assert_eq!(events(&audit, "tunnel_open").len(), 3);
}

#[test]
fn a_user_without_a_grant_is_refused_and_audited() {
    let Some(lab) = Lab::lab_or_skip("a_user_without_a_grant_is_refused_and_audited") else {
        return;
    };
    lab.login("bob");
    let hosts = lab.cli("bob", &["hosts"], None);
    assert!(hosts.status.success());
    assert!(stdout(&hosts).trim().is_empty(), "bob sees no host");

    let out = lab.cli("bob", &["tunnel", "vnet1", "--stdio"], Some(b"hello"));
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("no host named \"vnet1\" is granted to bob"),
        "{message}"
    );
    assert!(message.contains("not_granted"), "{message}");

    let audit = lab.audit();
    let denied = events(&audit, "tunnel_denied");
    assert_eq!(denied.len(), 1, "{audit:?}");
    assert_eq!(denied[0]["user"], "bob");
    assert_eq!(denied[0]["host"], "vnet1");
    assert_eq!(denied[0]["reason"], "not_granted");
    assert!(denied[0]["source"].as_str().unwrap().starts_with(OUT_IP));
    assert!(events(&audit, "tunnel_open").is_empty());
}

/// Raw bytes to the gateway's port; returns whatever it answered before closing.
fn raw_exchange(payload: Vec<u8>, wait: Duration) -> Vec<u8> {
    let addr: SocketAddr = format!("{EDGE_OUT_IP}:{GATEWAY_PORT}").parse().unwrap();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    let _ = stream.write_all(&payload);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

#[test]
fn bad_input_is_refused_cleanly_while_a_tunnel_keeps_working() {
    let Some(mut lab) =
        Lab::lab_or_skip("bad_input_is_refused_cleanly_while_a_tunnel_keeps_working")
    else {
        return;
    };
    lab.login("alice");
    lab.login("carol");
    let alice = stored_access_token(&lab, "alice");
    let carol = stored_access_token(&lab, "carol");
    let signing_key = hex::decode(
        std::fs::read_to_string(lab.path("gw/token-signing.key"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let real_signer = TokenSigner::new(Secret::new(signing_key)).unwrap();
    let forged_signer = TokenSigner::new(Secret::new(vec![7u8; 32])).unwrap();
    let claims = |exp: u64| Claims {
        kind: TokenKind::Access,
        sub: "alice".parse().unwrap(),
        adm: true,
        iat: now_secs() - 7200,
        exp,
        jti: "lab".into(),
        host: None,
    };
    let forged = forged_signer
        .sign(&claims(now_secs() + 600))
        .expose()
        .clone();
    let expired = real_signer
        .sign(&claims(now_secs() - 3600))
        .expose()
        .clone();

    // Disable carol: her still-unexpired token must stop working at once.
    lab.gw(&["user", "disable", "carol"], None);

    let api = api(&lab);
    let results = block_on_in(&lab.out.clone(), move || async move {
        // A good tunnel, kept open through everything below.
        let mut good = api.open_tunnel("echo1", &alice).await.expect("good tunnel");
        good.send(Message::Binary(b"before".to_vec().into()))
            .await
            .unwrap();
        let echoed = good.next().await.unwrap().unwrap().into_data();
        assert_eq!(&echoed[..], b"before");

        let mut refusals = Vec::new();
        let mut attempt = |label: String, result: Result<_, portcullis_client::ClientError>| {
            let error = result
                .err()
                .unwrap_or_else(|| panic!("{label} was accepted"));
            refusals.push((label, error.status(), error.to_string()));
        };
        attempt(
            "no token".into(),
            api.open_tunnel("vnet1", "").await.map(drop),
        );
        attempt(
            "forged token".into(),
            api.open_tunnel("vnet1", &forged).await.map(drop),
        );
        attempt(
            "expired token".into(),
            api.open_tunnel("vnet1", &expired).await.map(drop),
        );
        attempt(
            "garbage token".into(),
            api.open_tunnel("vnet1", "pc1.AAAA.BBBB").await.map(drop),
        );
        attempt(
            "disabled user".into(),
            api.open_tunnel("echo1", &carol).await.map(drop),
        );
        for host in [
            "nope",
            "10.202.0.2",
            "10.202.0.2:22",
            "127.0.0.1:22",
            "169.254.169.254",
            "[::1]",
            "::1",
            "localhost",
            "../v1/hosts",
            "vnet1/../echo1",
        ] {
            attempt(
                format!("unauthenticated {host}"),
                api.open_tunnel(host, "").await.map(drop),
            );
            attempt(
                format!("alice {host}"),
                api.open_tunnel(host, &alice).await.map(drop),
            );
        }
        let hosts_without_token: Result<serde_json::Value, _> = api
            .request(http::Method::GET, "/v1/hosts", None, None)
            .await;
        attempt("hosts without token".into(), hosts_without_token.map(drop));

        // The good tunnel still works.
        good.send(Message::Binary(b"after".to_vec().into()))
            .await
            .unwrap();
        let echoed = good.next().await.unwrap().unwrap().into_data();
        assert_eq!(&echoed[..], b"after");
        good.close(None).await.unwrap();
        refusals
    });

    for (label, status, message) in &results {
        let expected = if label.starts_with("alice") { 403 } else { 401 };
        assert_eq!(*status, Some(expected), "{label}: {message}");
        if expected == 401 {
            assert!(
                message.contains("sign in first") && message.contains("(unauthenticated)"),
                "{label}: {message}"
            );
        } else {
            assert!(
                message.contains("is granted to alice") && message.contains("(not_granted)"),
                "{label}: {message}"
            );
        }
    }
    // Every unauthenticated refusal is the very same answer, whatever host it named.
    let unauthenticated: std::collections::BTreeSet<&String> = results
        .iter()
        .filter(|r| r.1 == Some(401))
        .map(|r| &r.2)
        .collect();
    assert_eq!(unauthenticated.len(), 1, "{unauthenticated:?}");

    // The disabled user cannot sign in either.
    let out = lab.try_login(
        "carol",
        "carol",
        Some(&lab.fingerprint),
        format!("{PASSWORD}\n").as_bytes(),
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("user name or password is wrong"),
        "{}",
        stderr(&out)
    );

    // Not TLS at all, random bytes, oversized headers, and silence: each closed cleanly.
    let out_ns = lab.out.clone();
    let (plain, random, silent_len) = in_netns(&out_ns, || {
        let plain = raw_exchange(
            b"GET /v1/hosts HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Duration::from_secs(5),
        );
        let mut noise = vec![0u8; 4096];
        for (i, b) in noise.iter_mut().enumerate() {
            *b = (i * 7919 % 251) as u8;
        }
        let random = raw_exchange(noise, Duration::from_secs(5));
        let started = std::time::Instant::now();
        let silent = raw_exchange(Vec::new(), Duration::from_secs(15));
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "a silent client was not cut off"
        );
        (plain, random, silent.len())
    });
    // A TLS server answers plain text with at most a TLS alert, never HTTP.
    assert!(
        !String::from_utf8_lossy(&plain).contains("HTTP/"),
        "{plain:?}"
    );
    assert!(random.len() < 64, "{random:?}");
    assert_eq!(silent_len, 0);

    let api = self::api(&lab);
    let alice = stored_access_token(&lab, "alice");
    let big_header_status = block_on_in(&lab.out.clone(), move || async move {
        let headers = [
            ("authorization", format!("Bearer {alice}")),
            ("x-padding", "a".repeat(64 * 1024)),
        ];
        raw_get(&api, "/v1/hosts", &headers)
            .await
            .map(|(status, _)| status)
    });
    assert!(
        matches!(big_header_status, Some(431) | None),
        "oversized headers got {big_header_status:?}"
    );

    // Still serving: a new tunnel works end to end and the process never died.
    assert!(lab.gateway_alive(), "gateway died: {}", lab.gateway_log());
    let out = lab.cli(
        "alice",
        &["tunnel", "echo1", "--stdio"],
        Some(b"still-serving"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "still-serving");

    // Refusals are audited: unauthenticated ones without a user, the rest with one.
    let audit = lab.audit();
    let denied = events(&audit, "tunnel_denied");
    assert!(
        denied
            .iter()
            .any(|e| e["reason"] == "unauthenticated" && e["user"].is_null())
    );
    assert!(denied.iter().any(|e| e["reason"] == "not_granted"
        && e["user"] == "alice"
        && e["host"] == "169.254.169.254"));
    assert!(
        !lab.gateway_log().contains(PASSWORD),
        "a password reached the log"
    );
}

#[test]
fn nmap_finds_only_the_tls_port() {
    let Some(lab) = Lab::lab_or_skip("nmap_finds_only_the_tls_port") else {
        return;
    };
    let scan = |target: &str, ports: &str| {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.out,
                "nmap",
                "-Pn",
                "-n",
                "-T4",
                "--max-retries",
                "1",
                "-p",
                ports,
                "-oG",
                "-",
                target,
            ])
            .output()
            .expect("run nmap");
        assert!(out.status.success(), "nmap failed: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("Nmap done"), "{text}");
        text.lines()
            .filter(|l| l.contains("Ports:"))
            .flat_map(|l| {
                l.split("Ports:")
                    .nth(1)
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|p| p.contains("/open/"))
            .map(|p| p.split('/').next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(scan(EDGE_OUT_IP, "1-65535"), vec![GATEWAY_PORT.to_string()]);
    assert!(
        scan(VNET_IP, "1-1024,3389,8080").is_empty(),
        "something in vnet is visible from outside"
    );
}

#[test]
fn audit_counts_the_bytes_of_every_tunnel() {
    let Some(lab) = Lab::lab_or_skip("audit_counts_the_bytes_of_every_tunnel") else {
        return;
    };
    lab.login("alice");
    let sizes: Vec<usize> = vec![1, 1000, 65_537, 300_000, 1_048_576];
    for (i, size) in sizes.iter().enumerate() {
        let payload: Vec<u8> = (0..*size).map(|j| ((i * 31 + j * 7) % 256) as u8).collect();
        let out = lab.cli("alice", &["tunnel", "echo1", "--stdio"], Some(&payload));
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            out.stdout == payload,
            "tunnel {i} did not echo {size} bytes intact"
        );
    }
    // The client may exit a moment before the gateway has written the last close
    // (it is written before the tunnel's slot is released, not before the client
    // hears the end): wait for it, failing only on a hang.
    let started = std::time::Instant::now();
    let audit = loop {
        let audit = lab.audit();
        if events(&audit, "tunnel_close").len() >= sizes.len()
            || started.elapsed() > Duration::from_secs(20)
        {
            break audit;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let opens = events(&audit, "tunnel_open");
    let closes = events(&audit, "tunnel_close");
    assert_eq!(opens.len(), sizes.len());
    assert_eq!(closes.len(), sizes.len());
    let mut seen: Vec<(u64, u64)> = closes
        .iter()
        .map(|c| {
            (
                c["bytes_from_client"].as_u64().unwrap(),
                c["bytes_to_client"].as_u64().unwrap(),
            )
        })
        .collect();
    seen.sort();
    let expected: Vec<(u64, u64)> = sizes.iter().map(|s| (*s as u64, *s as u64)).collect();
    assert_eq!(seen, expected);
    for close in &closes {
        assert_eq!(close["user"], "alice");
        assert_eq!(close["host"], "echo1");
        assert_eq!(close["reason"], "target_closed");
        assert!(
            close["duration_ms"].is_u64()
                && close["time"].is_string()
                && close["source"].is_string()
        );
        assert!(
            opens.iter().any(|o| o["tunnel_id"] == close["tunnel_id"]),
            "close without its open"
        );
    }

    // The metrics agree (read with an administrator's token).
    lab.login("ops");
    let ops = stored_access_token(&lab, "ops");
    let api = api(&lab);
    let metrics = block_on_in(&lab.out.clone(), move || async move {
        let headers = [("authorization", format!("Bearer {ops}"))];
        raw_get(&api, "/metrics", &headers).await
    });
    let (status, metrics) = metrics.expect("an answer to /metrics");
    assert_eq!(status, 200, "{metrics}");
    let total: usize = sizes.iter().sum();
    assert!(
        metrics.contains(&format!(
            "portcullis_tunnels_opened_total {}\n",
            sizes.len()
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "portcullis_tunnel_bytes_total{{direction=\"from_client\"}} {total}\n"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("portcullis_tunnels_active 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portcullis_logins_total{result=\"ok\"} 2\n"),
        "{metrics}"
    );
}

#[test]
fn sigterm_during_a_tunnel_still_records_its_close() {
    let Some(mut lab) = Lab::lab_or_skip("sigterm_during_a_tunnel_still_records_its_close") else {
        return;
    };
    lab.login("alice");
    let token = stored_access_token(&lab, "alice");
    let api = api(&lab);
    let (opened_tx, opened_rx) = std::sync::mpsc::channel();
    let out_ns = lab.out.clone();
    let client = std::thread::spawn(move || {
        block_on_in(&out_ns, move || async move {
            let mut tunnel = api.open_tunnel("echo1", &token).await.expect("tunnel");
            tunnel
                .send(Message::Binary(vec![1u8; 4321].into()))
                .await
                .unwrap();
            let mut echoed = 0;
            while echoed < 4321 {
                echoed += tunnel.next().await.unwrap().unwrap().into_data().len();
            }
            opened_tx.send(()).unwrap();
            // Wait for the gateway to close the tunnel on its own.
            let mut reason = None;
            while let Some(Ok(message)) = tunnel.next().await {
                if let Message::Close(frame) = message {
                    reason = frame.map(|f| f.reason.to_string());
                    break;
                }
            }
            reason
        })
    });
    opened_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("tunnel opened");
    let status = lab.stop_gateway();
    assert!(
        status.success(),
        "gateway exit status {status}: {}",
        lab.gateway_log()
    );
    assert_eq!(client.join().unwrap().as_deref(), Some("gateway_shutdown"));

    let audit = lab.audit();
    let closes = events(&audit, "tunnel_close");
    assert_eq!(closes.len(), 1, "{audit:?}");
    assert_eq!(closes[0]["reason"], "gateway_shutdown");
    assert_eq!(closes[0]["bytes_from_client"], 4321);
    assert_eq!(closes[0]["bytes_to_client"], 4321);
}

#[test]
fn login_pins_the_certificate_and_tokens_refresh_without_asking() {
    let Some(mut lab) =
        Lab::lab_or_skip("login_pins_the_certificate_and_tokens_refresh_without_asking")
    else {
        return;
    };
    let password = format!("{PASSWORD}\n");

    // No terminal and no fingerprint: refused, and told what to pass.
    let out = lab.try_login("alice", "alice", None, password.as_bytes());
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(message.contains("no system CA vouches for"), "{message}");
    assert!(
        message.contains(&format!("--fingerprint {}", lab.fingerprint)),
        "{message}"
    );
    assert!(
        !lab.path("home-alice/gateways.json").exists(),
        "nothing is saved on refusal"
    );

    // A wrong fingerprint is refused loudly, naming both.
    let wrong = "ab".repeat(32);
    let out = lab.try_login("alice", "alice", Some(&wrong), password.as_bytes());
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("CHANGED")
            && message.contains(&wrong)
            && message.contains(&lab.fingerprint),
        "{message}"
    );

    // openssl's colon form works.
    let colons: Vec<String> = lab
        .fingerprint
        .as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).to_uppercase())
        .collect();
    let out = lab.try_login(
        "alice",
        "alice",
        Some(&colons.join(":")),
        password.as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let state_path = lab.path("home-alice/gateways.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&state_path).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "client state is private");

    // An access token past its time is refreshed without asking.
    let before = stored_access_token(&lab, "alice");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    state["gateways"][0]["access_expires_at"] = 0.into();
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();
    let out = lab.cli("alice", &["hosts"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("vnet1"));
    assert_ne!(
        stored_access_token(&lab, "alice"),
        before,
        "a new access token was fetched"
    );

    // A refresh token past its time means signing in again, and the error says how.
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    state["gateways"][0]["access_expires_at"] = 0.into();
    state["gateways"][0]["refresh_expires_at"] = 0.into();
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();
    let out = lab.cli("alice", &["tunnel", "vnet1", "--stdio"], None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not signed in to gateway https://10.201.0.1: run `portcullis login"),
        "{}",
        stderr(&out)
    );

    // Wrong passwords get the same answer as unknown users, then a growing delay.
    let mut last = String::new();
    for _ in 0..7 {
        let out = lab.try_login(
            "mallory",
            "alice",
            Some(&lab.fingerprint),
            b"wrong-password\n",
        );
        assert!(!out.status.success());
        last = stderr(&out);
    }
    assert!(last.contains("too many failed sign-ins"), "{last}");
    let audit = lab.audit();
    assert!(
        events(&audit, "login_failed")
            .iter()
            .any(|e| e["reason"] == "throttled")
    );
    let database = std::fs::read(lab.path("gw/gateway.db")).unwrap();
    assert!(
        !String::from_utf8_lossy(&database).contains(PASSWORD),
        "a password is stored in plain text"
    );

    // The operator replaces the certificate: the pin we hold refuses it, loudly.
    let old_fingerprint = lab.fingerprint.clone();
    let tls = lab.path("gw/tls");
    std::fs::remove_file(tls.join("key.pem")).unwrap();
    let made = Command::new("openssl")
        .args(["req", "-x509"])
        .args(OPENSSL_NEW_P256_KEY)
        .args(["-days", "2"])
        .args(["-subj", "/CN=replaced", "-keyout"])
        .arg(tls.join("key.pem"))
        .arg("-out")
        .arg(tls.join("cert.pem"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    lab.restart_gateway(|config| config);
    let new_fingerprint = String::from_utf8(lab.gw(&["fingerprint"], None).stdout).unwrap();
    let new_fingerprint = new_fingerprint.trim();
    assert_ne!(new_fingerprint, old_fingerprint);
    let out = lab.try_login("alice", "alice", None, password.as_bytes());
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("has CHANGED")
            && message.contains(&old_fingerprint)
            && message.contains(new_fingerprint),
        "{message}"
    );
}

#[test]
fn tls_offers_only_aead_suites_and_health_is_public() {
    let Some(lab) = Lab::lab_or_skip("tls_offers_only_aead_suites_and_health_is_public") else {
        return;
    };
    let s_client = |args: &[&str]| {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &lab.out, "openssl", "s_client", "-connect"])
            .arg(format!("{EDGE_OUT_IP}:{GATEWAY_PORT}"))
            .args(args);
        let out = pipe_bytes(&mut cmd, Some(b""));
        (out.status.success(), stdout(&out))
    };
    let (ok, text) = s_client(&["-tls1_3"]);
    assert!(ok && text.contains("TLSv1.3"), "{text}");
    for aead in [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ] {
        let (ok, text) = s_client(&["-tls1_2", "-cipher", aead]);
        assert!(ok && text.contains(aead), "TLS 1.2 {aead}: {text}");
    }
    for weak in ["ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA"] {
        let (ok, _) = s_client(&["-tls1_2", "-cipher", weak]);
        assert!(!ok, "TLS 1.2 with the non-AEAD suite {weak} was accepted");
    }

    let api = api(&lab);
    let (health, metrics) = block_on_in(&lab.out.clone(), move || async move {
        (
            raw_get(&api, "/healthz", &[])
                .await
                .expect("healthz answers"),
            raw_get(&api, "/metrics", &[])
                .await
                .expect("metrics answers"),
        )
    });
    assert_eq!(health, (200, "ok\n".to_owned()));
    // Metrics from outside need an administrator's token.
    assert_eq!(metrics.0, 401, "{metrics:?}");
}

#[test]
fn a_gateway_certificate_from_a_trusted_ca_needs_no_pin() {
    let Some(lab) =
        Lab::lab_with_ca_or_skip("a_gateway_certificate_from_a_trusted_ca_needs_no_pin")
    else {
        return;
    };
    let ca = lab.ca_file.clone().unwrap();
    let login = |trust_ca: bool| {
        let mut cmd = lab.cli_command(
            "alice",
            &[
                "login",
                &lab.gateway_url,
                "--user",
                "alice",
                "--password-stdin",
            ],
        );
        // rustls-native-certs reads SSL_CERT_FILE in place of the system bundle.
        if trust_ca {
            cmd.env("SSL_CERT_FILE", &ca);
        }
        pipe_bytes(&mut cmd, Some(format!("{PASSWORD}\n").as_bytes()))
    };
    // Without the CA the certificate is just unknown, and the error says so.
    let out = login(false);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no system CA vouches for"),
        "{}",
        stderr(&out)
    );

    let out = login(true);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("trusted by a system CA"),
        "{}",
        stderr(&out)
    );
    let mut cmd = lab.cli_command("alice", &["tunnel", "echo1", "--stdio"]);
    cmd.env("SSL_CERT_FILE", &ca);
    let out = pipe_bytes(&mut cmd, Some(b"through a CA-trusted gateway"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "through a CA-trusted gateway");
}

#[test]
fn tunnel_limits_and_idle_timeout_hold() {
    let Some(mut lab) = Lab::lab_or_skip("tunnel_limits_and_idle_timeout_hold") else {
        return;
    };
    lab.restart_gateway(|config| {
        config
            .replace("max_tunnels_per_user = 32", "max_tunnels_per_user = 2")
            .replace(
                "tunnel_idle_timeout_seconds = 900",
                "tunnel_idle_timeout_seconds = 2",
            )
            .replace("format = \"text\"", "format = \"json\"")
    });
    lab.login("alice");
    let token = stored_access_token(&lab, "alice");
    let api = api(&lab);
    let (third, reasons) = block_on_in(&lab.out.clone(), move || async move {
        let first = api.open_tunnel("echo1", &token).await.expect("first");
        let second = api.open_tunnel("echo1", &token).await.expect("second");
        let Err(third) = api.open_tunnel("echo1", &token).await else {
            panic!("a third tunnel was admitted over the per-user limit of 2");
        };
        let mut reasons = Vec::new();
        for mut tunnel in [first, second] {
            // Both sit idle; the gateway closes each after the idle timeout.
            let started = std::time::Instant::now();
            let reason = loop {
                match tokio::time::timeout(Duration::from_secs(20), tunnel.next()).await {
                    Ok(Some(Ok(Message::Close(frame)))) => {
                        break frame.map(|f| f.reason.to_string());
                    }
                    Ok(Some(Ok(_))) => continue,
                    other => panic!("no close frame: {other:?}"),
                }
            };
            reasons.push((reason, started.elapsed()));
        }
        // With both slots free again, a new tunnel opens.
        let mut again = api
            .open_tunnel("echo1", &token)
            .await
            .expect("slot given back");
        again
            .send(Message::Binary(b"x".to_vec().into()))
            .await
            .unwrap();
        assert_eq!(&again.next().await.unwrap().unwrap().into_data()[..], b"x");
        (third, reasons)
    });
    assert_eq!(third.status(), Some(429), "{third}");
    assert!(
        third.to_string().contains("alice has 2 tunnels open"),
        "{third}"
    );
    for (reason, _) in &reasons {
        assert_eq!(reason.as_deref(), Some("idle_timeout"));
    }
    let audit = lab.audit();
    assert!(
        events(&audit, "tunnel_denied")
            .iter()
            .any(|e| e["reason"] == "user_tunnel_limit")
    );
    assert_eq!(
        events(&audit, "tunnel_close")
            .iter()
            .filter(|e| e["reason"] == "idle_timeout")
            .count(),
        2
    );
    // JSON logs, one object a line, and never a token.
    let log = lab.gateway_log();
    let json_lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        json_lines
            .iter()
            .any(|l| l["fields"]["message"] == "tunnel open"),
        "{log}"
    );
    assert!(
        !log.contains(&stored_access_token(&lab, "alice")),
        "a token reached the log"
    );
    assert!(!log.contains("pc1."), "a token reached the log");
}
