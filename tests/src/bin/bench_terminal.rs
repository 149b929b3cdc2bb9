//! `cargo xtask bench terminal`: the terminal model's throughput beside the bare
//! VT parser, the bytes of screen updates it emits, and `cat` of a 100 MB file
//! over SSH through the gateway into the model beside OpenSSH's `ssh -J` writing
//! to /dev/null, in one run. Prints a table and appends it to docs/BENCHMARKS.md.
//! The model part runs anywhere; the SSH part needs root (the namespace lab).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alacritty_terminal::vte;
use portcullis_client::Client;
use portcullis_client::dial::{Dialer, Route};
use portcullis_client::home::ClientHome;
use portcullis_client::ssh::{
    AuthMethod, FixedAnswers, HostKeyTrust, SshAuth, SshSession, SshTarget,
};
use portcullis_client::terminal::{SessionEnd, TerminalEvent, TerminalSession};
use portcullis_lab::*;
use portcullis_terminal::{Screen, ScreenSize};

const STREAM_BYTES: usize = 100 * 1000 * 1000;
const ROUNDS: usize = 3;
/// The model is asked for an update after every MiB of input (60 updates/s at 60 MB/s).
const UPDATE_EVERY: usize = 1 << 20;

/// A deterministic mix of what terminals see: plain text, 16/256-colour and
/// truecolor SGR, UTF-8 (accents, CJK), line erases and cursor moves; it scrolls.
fn mixed_stream(len: usize) -> Vec<u8> {
    let mut seed: u64 = 0x5eed_1234_abcd_ef01;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let words = [
        "gateway",
        "tunnel",
        "session",
        "kernel:",
        "INFO",
        "WARN",
        "error",
        "GET",
        "/var/log",
        "200",
        "ms",
        "user=alice",
        "host=vnet1",
        "bytes",
        "0x7f3a",
        "é",
        "naïve",
        "日本語",
        "中文",
    ];
    let mut block = Vec::with_capacity(4 << 20);
    while block.len() < 4 << 20 {
        let kind = next() % 10;
        match kind {
            0 | 1 => block.extend_from_slice(format!("\x1b[{}m", 30 + next() % 8).as_bytes()),
            2 => block.extend_from_slice(format!("\x1b[38;5;{}m", next() % 256).as_bytes()),
            3 => block.extend_from_slice(
                format!(
                    "\x1b[38;2;{};{};{}m",
                    next() % 256,
                    next() % 256,
                    next() % 256
                )
                .as_bytes(),
            ),
            4 => block.extend_from_slice(b"\x1b[2K\r"),
            5 => block.extend_from_slice(b"\x1b[A\x1b[B"),
            _ => {}
        }
        let count = 4 + next() % 14;
        for _ in 0..count {
            block.extend_from_slice(words[(next() % words.len() as u64) as usize].as_bytes());
            block.push(b' ');
        }
        block.extend_from_slice(b"\x1b[0m\r\n");
    }
    let mut stream = Vec::with_capacity(len);
    while stream.len() < len {
        let take = (len - stream.len()).min(block.len());
        stream.extend_from_slice(&block[..take]);
    }
    stream
}

struct Noop;
impl vte::Perform for Noop {}

fn parser_only(stream: &[u8]) -> Duration {
    let mut parser = vte::Parser::new();
    let mut noop = Noop;
    let start = Instant::now();
    for chunk in stream.chunks(32 * 1024) {
        parser.advance(&mut noop, chunk);
    }
    start.elapsed()
}

/// Feeds the stream into the model in 32 KiB chunks; returns the time and the
/// bytes of JSON updates produced.
fn model(stream: &[u8], scrollback: usize) -> (Duration, usize, usize) {
    let mut screen = Screen::new(ScreenSize::clamped(120, 40), scrollback);
    let mut since_update = 0;
    let mut update_bytes = 0;
    let mut updates = 0;
    let start = Instant::now();
    for chunk in stream.chunks(32 * 1024) {
        screen.feed(chunk);
        since_update += chunk.len();
        if since_update >= UPDATE_EVERY {
            since_update = 0;
            let update = screen.update();
            update_bytes += serde_json::to_vec(&update).expect("json").len();
            updates += 1;
        }
    }
    let update = screen.update();
    update_bytes += serde_json::to_vec(&update).expect("json").len();
    (start.elapsed(), update_bytes, updates + 1)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn mb_per_s(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / 1e6 / time.as_secs_f64()
}

struct SshRun {
    ours: f64,
    discard: f64,
    openssh: f64,
}

/// A two-worker runtime in the namespace, as the desktop app runs sessions:
/// the SSH connection and the terminal model can use both cores.
fn multi_thread_in<T: Send + 'static, F>(ns: &str, make: impl FnOnce() -> F + Send + 'static) -> T
where
    F: std::future::Future<Output = T>,
{
    in_netns(ns, move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(make())
    })
}

/// `cat` of a file of `stream` over SSH: through the gateway into a terminal
/// session (the model, coalesced updates drained as a UI would), and OpenSSH
/// through the jump sshd to /dev/null. Both include connecting and logging in.
fn ssh_cat(stream: &[u8]) -> Vec<SshRun> {
    let lab = Lab::start();
    let file = lab.path("cat-100MB.txt");
    std::fs::write(&file, stream).expect("write the file to cat");
    lab.login("alice");
    let ssh = lab.path("ssh");
    let config = lab.openssh_jump_config();
    let mut runs = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let status = Command::new("ip")
            .args(["netns", "exec", &lab.out, "ssh", "-F"])
            .arg(&config)
            .args(["-J", &format!("root@{JUMP_IP}:{JUMP_PORT}"), VNET_IP, "cat"])
            .arg(&file)
            .stdout(Stdio::null())
            .status()
            .expect("ssh -J");
        let openssh = start.elapsed().as_secs_f64();
        assert!(status.success(), "ssh -J cat failed");

        let mut timed = Vec::new();
        for into_model in [false, true] {
            let home = lab.path("home-alice");
            let known = ssh.join("known_hosts");
            let key = ssh.join("client_ed25519");
            let command = format!("cat {}", file.display());
            let expected = stream.len();
            timed.push(multi_thread_in(&lab.out.clone(), move || async move {
                cat_through_gateway(home, known, key, command, expected, into_model).await
            }));
        }
        let (discard, ours) = (timed[0], timed[1]);
        eprintln!("  ssh -J: {openssh:.2} s");
        runs.push(SshRun {
            ours,
            discard,
            openssh,
        });
    }
    runs
}

/// Connects through the gateway, runs `command`, and either feeds its output to a
/// terminal session (the model, updates drained as a UI would) or counts and
/// discards it. Seconds from dialing to the exit status.
async fn cat_through_gateway(
    home: std::path::PathBuf,
    known: std::path::PathBuf,
    key: std::path::PathBuf,
    command: String,
    expected: usize,
    into_model: bool,
) -> f64 {
    let start = Instant::now();
    let client = Arc::new(Client::new(
        ClientHome::resolve(Some(home.clone())).unwrap(),
    ));
    let trust = HostKeyTrust {
        openssh_files: vec![known],
        app_store: home.join("known_hosts"),
    };
    let dialer = Dialer::new(Some(client), trust, Arc::new(FixedAnswers::default()));
    let connection = dialer
        .dial(&Route::Gateway { gateway: None }, "vnet1", 22)
        .await
        .expect("dial");
    let session = SshSession::connect(
        connection,
        SshTarget {
            host: "vnet1".into(),
            port: 22,
        },
        &SshAuth {
            user: "root".into(),
            methods: vec![AuthMethod::KeyFile { path: key }],
            agent_socket: None,
        },
        dialer.trust.clone(),
        Arc::clone(&dialer.prompter),
        &dialer.ssh,
    )
    .await
    .expect("ssh");
    let shell = session.open_shell(None, Some(&command)).await.expect("cat");
    if into_model {
        let (tx, mut events) = tokio::sync::mpsc::channel(16);
        let _terminal = TerminalSession::start(shell, ScreenSize::clamped(120, 40), 10_000, tx);
        let mut update_bytes = 0usize;
        let end = loop {
            match events.recv().await.expect("terminal events") {
                TerminalEvent::Screen(update) => {
                    update_bytes += serde_json::to_vec(&update).expect("json").len()
                }
                TerminalEvent::Ended(end) => break end,
            }
        };
        assert_eq!(
            end,
            SessionEnd::Exited {
                status: Some(0),
                signal: None
            }
        );
        eprintln!("  portcullis into the model: {update_bytes} bytes of updates");
    } else {
        let mut reader = shell.reader;
        let mut received = 0usize;
        while let Some(event) = reader.next().await {
            if let portcullis_client::ssh::ShellEvent::Output(bytes) = event {
                received += bytes.len();
            }
        }
        assert_eq!(received, expected, "every byte arrived");
    }
    let elapsed = start.elapsed().as_secs_f64();
    session.close().await;
    eprintln!(
        "  portcullis ({}): {elapsed:.2} s",
        if into_model { "model" } else { "discard" }
    );
    elapsed
}

fn main() {
    eprintln!("generating {STREAM_BYTES} bytes of mixed terminal output…");
    let stream = mixed_stream(STREAM_BYTES);
    let mut parser_rates = Vec::new();
    let mut model_rates = Vec::new();
    let mut small_rates = Vec::new();
    let mut per_mb = 0.0;
    let mut updates = 0;
    for round in 0..ROUNDS {
        let parser = parser_only(&stream);
        let (model_time, update_bytes, count) = model(&stream, 10_000);
        let (small_time, _, _) = model(&stream, 1_000);
        small_rates.push(mb_per_s(stream.len(), small_time));
        parser_rates.push(mb_per_s(stream.len(), parser));
        model_rates.push(mb_per_s(stream.len(), model_time));
        per_mb = update_bytes as f64 / (stream.len() as f64 / 1e6);
        updates = count;
        eprintln!(
            "  round {round}: parser {:.0} MB/s, model {:.0} MB/s (1 000 lines of scrollback: {:.0} MB/s)",
            parser_rates[round], model_rates[round], small_rates[round]
        );
    }
    let parser = median(parser_rates);
    let model_rate = median(model_rates);
    let small_rate = median(small_rates);

    let model_only = std::env::args().any(|a| a == "--model-only");
    let ssh = if !model_only && lab_available("bench-terminal (SSH part)") {
        Some(ssh_cat(&stream))
    } else {
        None
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let now = utc_now();
    let mut table = format!(
        "## Terminal benchmark, {now}\n\nMachine: {cores} cores. Command: `cargo xtask bench terminal` \
         (release build; median of {ROUNDS}). Stream: {STREAM_BYTES} bytes of mixed output \
         (text, 16/256/truecolor SGR, UTF-8, erases, cursor moves), 120×40, 10 000 lines of scrollback.\n\n\
         | measure | result | ratio |\n|---|---|---|\n\
         | bare VT parser, no-op handler (baseline) | {parser:.0} MB/s | 1.00× |\n\
         | terminal model (alacritty_terminal + damage → runs) | {model_rate:.0} MB/s | {:.2}× parser (goal ≥ 100 MB/s) |\n\
         | terminal model, 1 000 lines of scrollback | {small_rate:.0} MB/s | {:.2}× parser |\n\
         | screen updates emitted (JSON, one per MiB of input, {updates} updates) | {per_mb:.0} bytes per MB of input | |\n",
        model_rate / parser,
        small_rate / parser
    );
    if let Some(runs) = ssh {
        let ours = median(runs.iter().map(|r| r.ours).collect());
        let openssh = median(runs.iter().map(|r| r.openssh).collect());
        let discard = median(runs.iter().map(|r| r.discard).collect());
        table.push_str(&format!(
            "| `cat` 100 MB over SSH via `ssh -J` to /dev/null (connect + login + transfer) | {openssh:.2} s | 1.00× |\n\
             | `cat` 100 MB over SSH through the gateway, output discarded (same) | {discard:.2} s | {:.2}× OpenSSH |\n\
             | `cat` 100 MB over SSH through the gateway into the terminal model (same) | {ours:.2} s | {:.2}× OpenSSH (goal ≤ 1.2×) |\n",
            discard / openssh,
            ours / openssh
        ));
    } else {
        table.push_str("\nThe SSH part did not run (needs root for the namespace lab).\n");
    }
    append_benchmark(&table);
}
