//! `cargo xtask`: the project's automation, exactly what CI runs.
//!
//! - `cargo xtask test`: system packages, fmt, clippy, forbidden dependency edges,
//!   every test (the namespace lab included, which needs root).
//! - `cargo xtask run`: builds the UI and starts the desktop app on the SQLite
//!   inventory in the user's data folder (`PORTCULLIS_HOME` overrides it).
//! - `cargo xtask demo-gateway`: a gateway on loopback with a demo configuration it creates.
//! - `cargo xtask bench tunnel`: the tunnel benchmark in the lab (root).
//! - `cargo xtask bench terminal`: the terminal model, and `cat` over SSH in the lab (root).
//! - `cargo xtask bench app`: the desktop app's start, memory and rendering (root, lab).
//! - `cargo xtask bench rdp`: RDP frames, latency and bytes through the gateway (root, lab).
//!
//! Dependency-free on purpose, so it builds in seconds on a fresh clone.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

type Result<T = ()> = std::result::Result<T, String>;

/// Debian packages the tests start for real.
const TEST_PACKAGES: &[&str] = &[
    "openssh-server",
    "openssh-client",
    "nmap",
    "iproute2",
    "procps",
    // A full-screen program for the terminal tests (alternate screen).
    "vim-tiny",
    // The desktop app: Tauri's build dependencies, the UI toolchain, and the
    // real window driven over WebDriver under Xvfb.
    "libwebkit2gtk-4.1-dev",
    "libgtk-3-dev",
    "librsvg2-dev",
    "pkg-config",
    "build-essential",
    "file",
    "xdg-utils",
    "nodejs",
    "xvfb",
    "webkit2gtk-driver",
    // RDP: FreeRDP's shadow server (NLA) and client, as real peers.
    "freerdp2-shadow-x11",
    "winpr-utils",
    "freerdp2-x11",
    // xrdp with xorgxrdp: the second real RDP server (TLS, a PAM user).
    "xrdp",
    "xorgxrdp",
    // What the RDP tests show and type into on the server's display.
    "x11-xserver-utils",
    "xterm",
    "xdotool",
    "xclip",
    // A real OS keychain (Secret Service) on a private session bus.
    "gnome-keyring",
    "dbus-daemon",
    "dbus-bin",
    // `script`, to give the CLI a real terminal in tests.
    "bsdutils",
    // Only the command-line tool, to play an operator's CA in the lab; nothing links OpenSSL.
    "openssl",
];
/// Debian packages `run` needs.
const DEMO_PACKAGES: &[&str] = &["openssh-client"];
/// Only `cargo xtask bench app` needs these: its Electron-class reference,
/// Chromium, started through ChromeDriver.
const APP_BENCH_PACKAGES: &[&str] = &["chromium", "chromium-driver"];
/// Debian packages `run` needs to build and open the desktop app.
const RUN_PACKAGES: &[&str] = &[
    "libwebkit2gtk-4.1-dev",
    "libgtk-3-dev",
    "librsvg2-dev",
    "pkg-config",
    "build-essential",
    "file",
    "xdg-utils",
    "nodejs",
];

/// Dependency edges that must not exist: (crate, forbidden dependency, why).
const FORBIDDEN_EDGES: &[(&str, &str, &str)] = &[
    ("portcullis-proto", "tokio", "the protocol crate is sans-IO"),
    (
        "portcullis-proto",
        "rustls",
        "the protocol crate is sans-IO",
    ),
    ("portcullis-proto", "sqlx", "the protocol crate is sans-IO"),
    ("portcullis-proto", "hyper", "the protocol crate is sans-IO"),
    (
        "portcullis-client",
        "portcullis-gateway",
        "the client never links the gateway",
    ),
    ("portcullis-client", "axum", "the client is no server"),
    (
        "portcullis-gateway",
        "portcullis-client",
        "the gateway never links the client",
    ),
    (
        "portcullis-cli",
        "portcullis-gateway",
        "the CLI talks to a gateway only over the network",
    ),
    ("portcullis-cli", "tauri", "only src-tauri depends on tauri"),
    (
        "portcullis-gateway",
        "tauri",
        "only src-tauri depends on tauri",
    ),
    (
        "portcullis-client",
        "tauri",
        "only src-tauri depends on tauri",
    ),
];
/// Crates no part of the workspace may pull in at all.
const BANNED_CRATES: &[(&str, &str)] = &[
    ("openssl-sys", "rustls only"),
    ("openssl", "rustls only"),
    ("native-tls", "rustls only"),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("run") => run_app(),
        Some("demo-gateway") => run_demo(),
        Some("bench") => bench(&args[1..]),
        Some("deps") => ensure_packages(TEST_PACKAGES),
        _ => Err(
            "usage: cargo xtask (test | run | demo-gateway | bench tunnel | terminal | app | rdp | deps)"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace: the parent of xtask's folder, as `cargo run` names it to
/// this process. The path compiled in is only a fallback: cargo counts an
/// xtask built from an identical clone elsewhere (a target folder shared
/// between clones, as CI may do) as up to date, and its compiled-in path
/// names the other clone.
fn root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Where cargo puts what it builds: `CARGO_TARGET_DIR` (or
/// `CARGO_BUILD_TARGET_DIR`) when set, as cargo reads it (a relative path from
/// the current folder), else `target/` in the workspace.
fn target_dir() -> PathBuf {
    ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR"]
        .iter()
        .filter_map(std::env::var_os)
        .find(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .map(|dir| {
            std::env::current_dir()
                .map(|here| here.join(&dir))
                .unwrap_or(dir)
        })
        .unwrap_or_else(|| root().join("target"))
}

fn step(title: &str) {
    eprintln!("\n==> {title}");
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn status(mut cmd: Command) -> Result {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

fn output(mut cmd: Command) -> Result<(bool, String)> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    ))
}

fn is_root() -> bool {
    output({
        let mut c = Command::new("id");
        c.arg("-u");
        c
    })
    .map(|(_, out)| out.trim() == "0")
    .unwrap_or(false)
}

fn installed(package: &str) -> bool {
    let mut cmd = Command::new("dpkg-query");
    cmd.args(["-W", "-f=${Status}", package]);
    matches!(output(cmd), Ok((true, text)) if text.contains("install ok installed"))
}

/// Installs missing Debian packages with apt-get (as root, or through sudo).
fn ensure_packages(packages: &[&str]) -> Result {
    if !Path::new("/usr/bin/dpkg-query").exists() {
        eprintln!(
            "xtask: not a Debian system; make sure these are installed: {}",
            packages.join(" ")
        );
        return Ok(());
    }
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing Debian packages: {}", missing.join(" "));
    let apt = |args: &[&str]| {
        let mut cmd = if is_root() {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    status(apt(&["update", "-qq"]))?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    status(apt(&args))
}

fn test() -> Result {
    step("system packages");
    ensure_packages(TEST_PACKAGES)?;
    step("tauri-driver (drives the real window over WebDriver)");
    let tauri_driver = ensure_tauri_driver()?;

    step("cargo fmt --check");
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    status(fmt)?;

    // Before clippy: the desktop crate embeds the built UI (ui/dist).
    step("ui: install, type-check, lint, unit tests, build");
    check_ui()?;

    step("cargo clippy -D warnings");
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    status(clippy)?;

    step("forbidden dependency edges");
    check_edges()?;

    step("build the binaries the lab starts");
    let mut build = cargo();
    build.args(["build", "--workspace", "--bins"]);
    status(build)?;

    step("cargo test (unit tests and the namespace lab)");
    if !is_root() {
        eprintln!(
            "\n!!!!!!!! not root: the namespace lab tests will say they were NOT RUN. Run `cargo xtask test` as root to run them. !!!!!!!!\n"
        );
    }
    let mut tests = cargo();
    tests
        .args(["test", "--workspace", "--", "--test-threads=2"])
        .env("PORTCULLIS_TAURI_DRIVER", &tauri_driver);
    run_tests(tests)
}

/// npm comes with some Node.js packages (NodeSource's) and separately with
/// Debian's; install Debian's only when there is no npm at all.
fn ensure_npm() -> Result {
    ensure_packages(&["nodejs"])?;
    let found = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        Ok(())
    } else {
        ensure_packages(&["npm"])
    }
}

/// The version the e2e tests were written against.
const TAURI_DRIVER_VERSION: &str = "2.1.0";

/// `tauri-driver` from crates.io, installed into cargo's bin folder when missing.
fn ensure_tauri_driver() -> Result<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let binary = cargo_home.join("bin/tauri-driver");
    if binary.exists() {
        return Ok(binary);
    }
    eprintln!(
        "xtask: installing tauri-driver {TAURI_DRIVER_VERSION} with cargo install (about a minute)"
    );
    let mut install = cargo();
    install.args([
        "install",
        "--locked",
        "--version",
        TAURI_DRIVER_VERSION,
        "tauri-driver",
    ]);
    status(install)?;
    Ok(binary)
}

/// Runs cargo test, echoing its output, and closes with one line that adds up
/// every test binary's result (the last binary alone may well have no tests).
fn run_tests(mut cmd: Command) -> Result {
    use std::io::BufRead;
    let shown = format!("{cmd:?}");
    cmd.stdout(std::process::Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(label), Some(count)) = (words.next(), words.next()) else {
                    continue;
                };
                let count: u64 = count.parse().unwrap_or(0);
                match label {
                    "passed" => passed += count,
                    "failed" => failed += count,
                    "ignored" => ignored += count,
                    _ => {}
                }
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    println!("\nall tests: {passed} passed, {failed} failed, {ignored} skipped");
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

fn check_edges() -> Result {
    let mut failures = Vec::new();
    for (krate, forbidden, why) in FORBIDDEN_EDGES {
        let mut tree = cargo();
        tree.args([
            "tree",
            "-q",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "-p",
            krate,
        ]);
        let (ok, text) = output(tree)?;
        if !ok {
            return Err(format!("cargo tree -p {krate} failed: {text}"));
        }
        if text
            .lines()
            .skip(1)
            .any(|line| line.split_whitespace().next() == Some(forbidden))
        {
            failures.push(format!("{krate} depends on {forbidden}: {why}"));
        }
    }
    for (banned, why) in BANNED_CRATES {
        let mut tree = cargo();
        tree.args(["tree", "-q", "--workspace", "-e", "all", "-i", banned]);
        let (ok, _) = output(tree)?;
        // `cargo tree -i` fails when nothing in the graph matches: that is the pass.
        if ok {
            failures.push(format!("the workspace pulls in {banned}: {why}"));
        }
    }
    if failures.is_empty() {
        eprintln!(
            "no forbidden edges ({} rules, {} banned crates)",
            FORBIDDEN_EDGES.len(),
            BANNED_CRATES.len()
        );
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

fn check_ui() -> Result {
    let package = root().join("ui/package.json");
    if !package.exists() {
        eprintln!("ui/ has no TypeScript yet (the desktop-app issue adds it): nothing to check");
        return Ok(());
    }
    ensure_npm()?;
    let mut ci = Command::new("npm");
    ci.current_dir(root().join("ui"))
        .args(["ci", "--no-audit", "--no-fund"]);
    status(ci)?;
    for script in ["typecheck", "lint", "test", "build"] {
        let mut npm = Command::new("npm");
        npm.current_dir(root().join("ui")).args(["run", script]);
        status(npm)?;
    }
    Ok(())
}

/// Builds the UI and the desktop app, then runs the app (the window) in the foreground.
fn run_app() -> Result {
    ensure_packages(RUN_PACKAGES)?;
    ensure_npm()?;
    step("ui: install and build");
    let mut ci = Command::new("npm");
    ci.current_dir(root().join("ui"))
        .args(["ci", "--no-audit", "--no-fund"]);
    status(ci)?;
    let mut build_ui = Command::new("npm");
    build_ui
        .current_dir(root().join("ui"))
        .args(["run", "build"]);
    status(build_ui)?;
    step("build the desktop app");
    let mut build = cargo();
    build.args(["build", "-p", "portcullis-desktop"]);
    status(build)?;
    step("start the desktop app");
    let app = target_dir().join("debug/portcullis-desktop");
    let mut run = Command::new(app);
    run.env("NO_AT_BRIDGE", "1");
    status(run)
}

/// A gateway on 127.0.0.1:8443 with a demo user and a demo host (this machine's sshd).
fn run_demo() -> Result {
    ensure_packages(DEMO_PACKAGES)?;
    let mut build = cargo();
    build.args(["build", "-p", "portcullis-gateway", "-p", "portcullis-cli"]);
    status(build)?;
    let bin = target_dir().join("debug");
    let gateway = bin.join("portcullis-gateway");
    let dir = target_dir().join("demo-gateway");
    let config = dir.join("gateway.toml");
    let gw = |args: &[&str]| {
        let mut cmd = Command::new(&gateway);
        cmd.arg("--config").arg(&config).args(args);
        cmd
    };
    if !config.exists() {
        step(&format!("creating a demo gateway in {}", dir.display()));
        let mut init = Command::new(&gateway);
        init.args(["init", "--dir"]).arg(&dir).args([
            "--hostname",
            "localhost",
            "--hostname",
            "127.0.0.1",
            "--listen",
            "127.0.0.1:8443",
        ]);
        status(init)?;
        let password = "portcullis-demo";
        let mut add = gw(&["user", "add", "demo", "--admin", "--password-stdin"]);
        add.stdin(std::process::Stdio::piped());
        let mut child = add.spawn().map_err(|e| e.to_string())?;
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("piped");
            writeln!(stdin, "{password}").map_err(|e| e.to_string())?;
        }
        if !child.wait().map_err(|e| e.to_string())?.success() {
            return Err("cannot add the demo user".into());
        }
        status(gw(&[
            "host",
            "add",
            "this-machine",
            "--address",
            "127.0.0.1",
            "--port",
            "22",
            "--protocol",
            "ssh",
            "--tag",
            "demo",
        ]))?;
        status(gw(&["grant", "add", "demo", "--tag", "demo"]))?;
    }
    let (_, fingerprint) = output(gw(&["fingerprint"]))?;
    let fingerprint = fingerprint.trim();
    let cli = bin.join("portcullis");
    eprintln!(
        "\nDemo gateway on https://127.0.0.1:8443 (user demo, password portcullis-demo).\n\
         In another terminal:\n\
         \x20 echo portcullis-demo | {cli} login https://127.0.0.1:8443 --user demo --password-stdin --fingerprint {fingerprint}\n\
         \x20 {cli} hosts\n\
         \x20 ssh -o ProxyCommand='{cli} tunnel this-machine --stdio' you@this-machine\n\
         The desktop app (`cargo xtask run`) signs in to it with the same URL, user and password.\n",
        cli = cli.display()
    );
    status(gw(&["serve"]))
}

/// Builds every binary in release and runs one benchmark with them.
fn run_release_bench(name: &str, env: &[(&str, std::ffi::OsString)]) -> Result {
    let mut build = cargo();
    build.args(["build", "--release", "--workspace", "--bins"]);
    status(build)?;
    let release = target_dir().join("release");
    let mut run = Command::new(release.join(name));
    run.current_dir(root())
        .env("PORTCULLIS_BIN_DIR", release)
        .envs(env.iter().map(|(k, v)| (k, v)));
    status(run)
}

fn bench(args: &[String]) -> Result {
    match args.first().map(String::as_str) {
        Some("tunnel") => {
            ensure_packages(TEST_PACKAGES)?;
            if !is_root() {
                return Err("the tunnel benchmark runs in the namespace lab and needs root".into());
            }
            run_release_bench("bench-tunnel", &[])
        }
        Some("terminal") => {
            ensure_packages(TEST_PACKAGES)?;
            if !is_root() {
                eprintln!(
                    "xtask: not root: only the model part of the terminal benchmark runs \
                     (the SSH part needs the namespace lab)"
                );
            }
            run_release_bench("bench-terminal", &[])
        }
        Some("app") => {
            ensure_packages(TEST_PACKAGES)?;
            ensure_packages(APP_BENCH_PACKAGES)?;
            ensure_npm()?;
            if !is_root() {
                return Err("the app benchmark runs in the namespace lab and needs root".into());
            }
            let tauri_driver = ensure_tauri_driver()?;
            check_ui()?;
            run_release_bench(
                "bench-app",
                &[("PORTCULLIS_TAURI_DRIVER", tauri_driver.into_os_string())],
            )
        }
        Some("rdp") => {
            ensure_packages(TEST_PACKAGES)?;
            if !is_root() {
                return Err("the RDP benchmark runs in the namespace lab and needs root".into());
            }
            run_release_bench("bench-rdp", &[])
        }
        _ => Err("usage: cargo xtask bench (tunnel | terminal | app | rdp)".into()),
    }
}
