//! `cargo xtask bench tunnel`: throughput, open latency and idle memory of the
//! Portcullis tunnel beside direct TCP and OpenSSH, in the namespace lab, in one run.
//! Prints a table and appends it to docs/BENCHMARKS.md. Needs root.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use portcullis_client::api::{GatewayApi, GatewayUrl};
use portcullis_client::tls::Trust;
use portcullis_lab::*;

const BULK: u64 = 1 << 30;
const BULK_ROUNDS: usize = 3;
const OPENS: usize = 200;
const SSH_OPENS: usize = 50;
const IDLE_TUNNELS: usize = 1000;
const SINK_PORT: u16 = 9;

/// Sends BULK bytes over a connected stream, half-closes, waits for the sink's count.
fn push_bulk(mut stream: TcpStream) -> Duration {
    let chunk = vec![0x5au8; 256 * 1024];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < BULK {
        stream.write_all(&chunk).expect("write");
        sent += chunk.len() as u64;
    }
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let mut count = [0u8; 8];
    stream.read_exact(&mut count).expect("sink count");
    assert_eq!(
        u64::from_be_bytes(count),
        BULK,
        "the sink received every byte"
    );
    start.elapsed()
}

/// CPU seconds (user + system) used so far by the processes in a namespace.
fn ns_cpu_secs(ns: &str) -> f64 {
    let pids = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .expect("ip netns pids");
    let ticks: u64 = String::from_utf8_lossy(&pids.stdout)
        .split_whitespace()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .map(|stat| {
            // Fields after the ")" that ends the command name; utime and stime are 14 and 15.
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields
                .get(11)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                + fields
                    .get(12)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
        })
        .sum();
    // SAFETY: sysconf has no preconditions.
    #[allow(unsafe_code)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz
}

/// A bulk run with the CPU its outside and edge processes spent on it.
struct Bulk {
    time: Duration,
    outside_cpu: f64,
    edge_cpu: f64,
}

fn measured(lab: &Lab, run: impl FnOnce() -> Duration) -> Bulk {
    let (out0, edge0) = (ns_cpu_secs(&lab.out), ns_cpu_secs(&lab.edge));
    let time = run();
    let bulk = Bulk {
        time,
        outside_cpu: ns_cpu_secs(&lab.out) - out0,
        edge_cpu: ns_cpu_secs(&lab.edge) - edge0,
    };
    eprintln!(
        "  {:.2} Gbit/s; CPU per GiB: outside {:.2} s, edge {:.2} s",
        gbit(bulk.time),
        bulk.outside_cpu,
        bulk.edge_cpu
    );
    bulk
}

fn median(mut runs: Vec<Bulk>) -> Bulk {
    runs.sort_by_key(|b| b.time);
    runs.swap_remove(runs.len() / 2)
}

fn gbit(duration: Duration) -> f64 {
    BULK as f64 * 8.0 / duration.as_secs_f64() / 1e9
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("proc status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on our own process with a valid struct.
    #[allow(unsafe_code)]
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max.min(65_536);
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
}

fn main() {
    assert!(lab_available("bench-tunnel"), "the benchmark needs root");
    raise_fd_limit();
    let mut lab = Lab::start();
    // Room for the idle-tunnel measurement.
    lab.stop_gateway();
    let config = std::fs::read_to_string(lab.gateway_config())
        .unwrap()
        .replace(
            "max_tunnels_per_user = 32",
            &format!("max_tunnels_per_user = {}", IDLE_TUNNELS + 10),
        );
    std::fs::write(lab.gateway_config(), config).unwrap();
    lab.start_gateway();
    let sink_addr = format!("{VNET_IP}:{SINK_PORT}");
    let echo_bin = bin("lab-echo");
    let vnet = lab.vnet.clone();
    lab.spawn_in(&vnet, &echo_bin, &[&sink_addr, "--sink"]);
    wait_for_port(&lab.vnet, sink_addr.parse().unwrap(), "sink");
    lab.gw(
        &[
            "host",
            "add",
            "sink1",
            "--address",
            VNET_IP,
            "--port",
            &SINK_PORT.to_string(),
            "--protocol",
            "ssh",
        ],
        None,
    );
    lab.gw(&["grant", "add", "alice", "--host", "sink1"], None);
    lab.login("alice");

    // The lab's jump sshd (edge namespace, its own outside address) serves
    // OpenSSH's forward and ProxyJump; the lab's known_hosts knows it and vnet1.

    // Both relays stay up for all rounds; the lab stops them with everything else.
    let (listener, port) = lab.tunnel_listener("alice", "sink1");
    let forward_port = 40_022u16;
    let mut forward_args = lab.ssh_args();
    forward_args.extend([
        "-N".to_owned(),
        "-p".to_owned(),
        JUMP_PORT.to_string(),
        "-L".to_owned(),
        format!("127.0.0.1:{forward_port}:{sink_addr}"),
        format!("root@{JUMP_IP}"),
    ]);
    let forward_refs: Vec<&str> = forward_args.iter().map(String::as_str).collect();
    let out_ns = lab.out.clone();
    let edge_ns = lab.edge.clone();
    lab.spawn_in(&out_ns, std::path::Path::new("/usr/bin/ssh"), &forward_refs);
    lab.adopt(listener);
    wait_for_port(
        &lab.out,
        format!("127.0.0.1:{forward_port}").parse().unwrap(),
        "ssh -L",
    );

    // Rounds interleave the three paths so that a noisy moment of the machine does
    // not land on one path only; each path reports its median round.
    let (mut direct, mut tunnel, mut openssh) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=BULK_ROUNDS {
        eprintln!("bulk round {round}/{BULK_ROUNDS}: direct TCP edge → vnet");
        direct.push(measured(&lab, || {
            let sink_addr = sink_addr.clone();
            in_netns(&edge_ns, move || {
                push_bulk(TcpStream::connect(&sink_addr).unwrap())
            })
        }));
        eprintln!(
            "bulk round {round}/{BULK_ROUNDS}: Portcullis tunnel (`tunnel --listen`) outside → vnet"
        );
        tunnel.push(measured(&lab, || {
            in_netns(&out_ns, move || {
                push_bulk(TcpStream::connect(("127.0.0.1", port)).unwrap())
            })
        }));
        eprintln!("bulk round {round}/{BULK_ROUNDS}: OpenSSH -L through the jump sshd in edge");
        openssh.push(measured(&lab, || {
            in_netns(&out_ns, move || {
                push_bulk(TcpStream::connect(("127.0.0.1", forward_port)).unwrap())
            })
        }));
    }
    let (direct, tunnel, openssh) = (median(direct), median(tunnel), median(openssh));
    // For tuning the data path: skip the slower latency and memory parts.
    if std::env::var_os("BENCH_ONLY_BULK").is_some() {
        return;
    }

    eprintln!("latency: {OPENS} tunnel opens");
    let api = GatewayApi::new(
        GatewayUrl::parse(&lab.gateway_url).unwrap(),
        Trust::Pinned(lab.fingerprint.parse().unwrap()),
    );
    let token = std::fs::read_to_string(lab.path("home-alice/gateways.json")).unwrap();
    let token: serde_json::Value = serde_json::from_str(&token).unwrap();
    let token = token["gateways"][0]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (opens, idle_kib) = {
        let api = api.clone();
        let token = token.clone();
        let pid = lab.gateway_pid();
        block_on_in(&lab.out.clone(), move || async move {
            let mut opens = Vec::with_capacity(OPENS);
            for _ in 0..OPENS {
                let start = Instant::now();
                let tunnel = api.open_tunnel("echo1", &token).await.expect("open");
                opens.push(start.elapsed().as_secs_f64() * 1000.0);
                drop(tunnel);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            let before = rss_kib(pid);
            let mut held = Vec::with_capacity(IDLE_TUNNELS);
            for _ in 0..IDLE_TUNNELS {
                held.push(api.open_tunnel("echo1", &token).await.expect("idle open"));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            let after = rss_kib(pid);
            drop(held);
            (opens, (before, after))
        })
    };
    let mut opens = opens;
    opens.sort_by(f64::total_cmp);

    eprintln!(
        "latency: {SSH_OPENS} `ssh -J` connections (full SSH login to vnet through the jump)"
    );
    let ssh_config = lab.openssh_jump_config();
    let mut ssh_j = Vec::with_capacity(SSH_OPENS);
    let mut ssh_proxy = Vec::with_capacity(SSH_OPENS);
    let proxy = format!(
        "{} --home {} tunnel vnet1 --stdio",
        bin("portcullis").display(),
        lab.path("home-alice").display()
    );
    for _ in 0..SSH_OPENS {
        let start = Instant::now();
        let out = Command::new("ip")
            .args(["netns", "exec", &lab.out, "ssh", "-F"])
            .arg(&ssh_config)
            .args([
                "-J",
                &format!("root@{JUMP_IP}:{JUMP_PORT}"),
                &format!("root@{VNET_IP}"),
                "true",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh -J: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ssh_j.push(start.elapsed().as_secs_f64() * 1000.0);
        let start = Instant::now();
        let out = Command::new("ip")
            .args(["netns", "exec", &lab.out, "ssh"])
            .args(lab.ssh_args())
            .args(["-o", &format!("ProxyCommand={proxy}"), "root@vnet1", "true"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh via portcullis: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ssh_proxy.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    ssh_j.sort_by(f64::total_cmp);
    ssh_proxy.sort_by(f64::total_cmp);

    let (rss_before, rss_after) = idle_kib;
    let per_tunnel = (rss_after.saturating_sub(rss_before)) as f64 * 1024.0 / IDLE_TUNNELS as f64;
    let machine = format!(
        "{} cores, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(
                |c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_owned())
            )
            .unwrap_or_else(|| "unknown CPU".into())
    );
    let date = utc_now();
    let table = format!(
        "## Tunnel benchmark, {date}\n\
         Machine: {machine}. Command: `cargo xtask bench tunnel` (release build, namespace lab).\n\n\
         | measure | result | ratio |\n|---|---|---|\n\
         | bulk 1 GiB (median of {BULK_ROUNDS}), direct TCP edge→vnet (baseline) | {:.2} Gbit/s | 1.00× |\n\
         | bulk 1 GiB, Portcullis tunnel outside→vnet (`tunnel --listen`) | {:.2} Gbit/s | {:.2}× direct, {:.2}× OpenSSH |\n\
         | bulk 1 GiB, OpenSSH `-L` through a jump sshd in edge | {:.2} Gbit/s | {:.2}× direct |\n\
         | CPU for 1 GiB, Portcullis: client (outside) / gateway (edge) | {:.2} s / {:.2} s | |\n\
         | CPU for 1 GiB, OpenSSH: ssh (outside) / jump sshd (edge) | {:.2} s / {:.2} s | |\n\
         | tunnel open (TLS + auth + WebSocket), p50 / p99 of {OPENS} | {:.2} / {:.2} ms | |\n\
         | `ssh -J` full login + `true`, p50 / p99 of {SSH_OPENS} | {:.1} / {:.1} ms | |\n\
         | `ssh` via `portcullis tunnel --stdio` full login + `true`, p50 / p99 of {SSH_OPENS} | {:.1} / {:.1} ms | {:.2}× `ssh -J` (p50) |\n\
         | gateway RSS with {IDLE_TUNNELS} idle tunnels | {} KiB → {} KiB | {:.1} KiB per tunnel |\n",
        gbit(direct.time),
        gbit(tunnel.time),
        direct.time.as_secs_f64() / tunnel.time.as_secs_f64(),
        openssh.time.as_secs_f64() / tunnel.time.as_secs_f64(),
        gbit(openssh.time),
        direct.time.as_secs_f64() / openssh.time.as_secs_f64(),
        tunnel.outside_cpu,
        tunnel.edge_cpu,
        openssh.outside_cpu,
        openssh.edge_cpu,
        percentile(&opens, 0.5),
        percentile(&opens, 0.99),
        percentile(&ssh_j, 0.5),
        percentile(&ssh_j, 0.99),
        percentile(&ssh_proxy, 0.5),
        percentile(&ssh_proxy, 0.99),
        percentile(&ssh_proxy, 0.5) / percentile(&ssh_j, 0.5),
        rss_before,
        rss_after,
        per_tunnel / 1024.0,
    );
    append_benchmark(&table);
}
