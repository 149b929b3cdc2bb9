//! `cargo xtask bench app`: the desktop app in the namespace lab, through the real
//! window (Xvfb, tauri-driver, WebKitWebDriver): cold start to an interactive host
//! list, resident memory after start and with 10 SSH tabs open, and the time to
//! render a 10 MB burst of terminal output, beside `cat` of the same file over
//! OpenSSH (`ssh -J`, to /dev/null) in the same run; start and memory beside a
//! blank WebKitGTK window (MiniBrowser) and a blank Chromium app window (the
//! engine of Electron-based managers), measured the same way. Appends to
//! docs/BENCHMARKS.md.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portcullis_lab::webdriver::{ENTER, WebDriver};
use portcullis_lab::*;

const TABS: usize = 10;
const BURST_BYTES: usize = 10 * 1000 * 1000;
/// Starts timed, of the app and of the reference; the median is reported.
const STARTS: usize = 3;

/// Opens a WebDriver session with `open` and waits until `ready` (a script)
/// holds, STARTS times, quitting all but the last session: the median time
/// and the last session.
fn timed_starts(open: impl Fn() -> WebDriver, what: &str, ready: &str) -> (Duration, WebDriver) {
    let mut times = Vec::with_capacity(STARTS);
    loop {
        let started = Instant::now();
        let session = open();
        // Asked every 10 ms: polling at wait_until's 200 ms would add up to
        // 200 ms to whichever start is not ready at the first ask (the app's
        // list, not a blank page).
        session.poll_until(what, ready, Duration::from_millis(10));
        times.push(started.elapsed());
        if times.len() == STARTS {
            times.sort();
            return (times[STARTS / 2], session);
        }
        session.quit();
    }
}

/// Memory (MiB) of the app and its WebKit processes in `ns`: the sum of resident
/// sets (shared libraries counted once per process, as task managers show it), the
/// proportional set size (shared pages split between their users), and its
/// anonymous part (heaps and stacks: what the app costs beyond the system's
/// WebKitGTK and Mesa libraries).
fn app_memory_mib(ns: &str) -> (f64, f64, f64) {
    memory_mib(&netns_pids_named(
        ns,
        &["portcullis-desk", "WebKitWebProces", "WebKitNetworkPr"],
    ))
}

/// RSS sum, PSS and anonymous PSS (MiB) of `pids`, as [`app_memory_mib`] explains.
fn memory_mib(pids: &[u32]) -> (f64, f64, f64) {
    let (mut rss, mut pss, mut anon) = (0u64, 0u64, 0u64);
    for pid in pids {
        let field = |file: &str, name: &str| -> u64 {
            std::fs::read_to_string(format!("/proc/{pid}/{file}"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        rss += field("status", "VmRSS:");
        pss += field("smaps_rollup", "Pss:");
        anon += field("smaps_rollup", "Pss_Anon:");
    }
    (
        rss as f64 / 1024.0,
        pss as f64 / 1024.0,
        anon as f64 / 1024.0,
    )
}

/// `pid` and its descendants.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut tree = vec![pid];
    let mut next = 0;
    while next < tree.len() {
        let parent = tree[next];
        next += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            tree.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    tree
}

/// A reference window: `driver` (a WebDriver server taking `--port`) started on
/// its own Xvfb with `env`, a session opened by `open` on a blank page STARTS
/// times, and, 2 s after the last page is ready, the memory of the driver's
/// descendants named in `processes`. Measured as the app is; returns the start
/// time and the memory.
fn reference_window(
    driver: &str,
    env: &[(&str, &std::ffi::OsStr)],
    open: impl Fn(&str) -> anyhow::Result<WebDriver>,
    processes: &[&str],
) -> (Duration, (f64, f64, f64)) {
    require_tool(driver);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let (mut xvfb, display) = start_xvfb("1280x800x24");
    let mut server = Command::new(driver)
        .arg(format!("--port={port}"))
        .env("DISPLAY", &display)
        .env("DBUS_SESSION_BUS_ADDRESS", "disabled:")
        .env("NO_AT_BRIDGE", "1")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {driver}: {e}"));
    let address = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(Instant::now() < deadline, "{driver} did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (start, session) = timed_starts(
        || open(&address).unwrap_or_else(|e| panic!("a session through {driver}: {e:#}")),
        "the blank page",
        "return document.readyState === 'complete';",
    );
    std::thread::sleep(Duration::from_secs(2));
    let pids: Vec<u32> = process_tree(server.id())
        .into_iter()
        .filter(|pid| processes.contains(&process_name(*pid).as_str()))
        .collect();
    assert!(
        pids.len() >= processes.len(),
        "{processes:?} under {driver}: found {pids:?}"
    );
    let memory = memory_mib(&pids);
    session.quit();
    let _ = server.kill();
    let _ = server.wait();
    let _ = xvfb.kill();
    let _ = xvfb.wait();
    (start, memory)
}

/// The first reference: WebKitGTK's own MiniBrowser (shipped with the library
/// the app links), started by WebKitWebDriver with WebKit set up as the app sets
/// it up (no DMA-BUF renderer, no GDK OpenGL), showing a blank page: what any
/// WebKitGTK window (so any Tauri app on Linux) costs before it does anything.
fn blank_webkit_window(home: &std::path::Path) -> (Duration, (f64, f64, f64)) {
    let browser = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
    ]
    .iter()
    .map(|dir| std::path::Path::new(dir).join("webkit2gtk-4.1/MiniBrowser"))
    .find(|path| path.exists())
    .expect("WebKitGTK's MiniBrowser (package libwebkit2gtk-4.1-0) is missing");
    std::fs::create_dir_all(home).expect("MiniBrowser home");
    reference_window(
        "WebKitWebDriver",
        &[
            ("HOME", home.as_os_str()),
            ("WEBKIT_DISABLE_DMABUF_RENDERER", "1".as_ref()),
            ("GDK_GL", "disable".as_ref()),
        ],
        |address| WebDriver::start_browser(address, &browser),
        &["MiniBrowser", "WebKitWebProces", "WebKitNetworkPr"],
    )
}

/// The second reference: Debian's Chromium, the engine Electron ships (without
/// Electron's Node.js), as an app window (`--app`, no browser toolbar) on a blank
/// page, started by ChromeDriver: what the window of an Electron-based manager
/// costs before it does anything.
fn blank_chromium_window(home: &std::path::Path) -> (Duration, (f64, f64, f64)) {
    let browser = std::path::Path::new("/usr/bin/chromium");
    assert!(
        browser.exists(),
        "Chromium (package chromium) is missing; `cargo xtask bench app` installs it"
    );
    std::fs::create_dir_all(home).expect("Chromium home");
    reference_window(
        "chromedriver",
        &[("HOME", home.as_os_str())],
        |address| {
            WebDriver::start_chromium(
                address,
                browser,
                &[
                    // Root in the lab: Chromium's sandbox refuses to run as root.
                    "--no-sandbox",
                    "--no-first-run",
                    // The lab has no route out: no background connections.
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--app=data:text/html,<title>blank</title>",
                ],
            )
        },
        &["chromium"],
    )
}

fn open_vnet1(driver: &WebDriver, first: bool) {
    driver.clear("#search");
    driver.type_into("#search", "vnet1");
    driver.type_into("#search", ENTER);
    driver.clear("#dialog input[name=answer]");
    driver.type_into("#dialog input[name=answer]", &format!("root{ENTER}"));
    if first {
        driver.click("#dialog button[data-choice=accept_and_remember]");
    }
}

fn main() {
    assert!(lab_available("bench-app"), "the benchmark needs root");
    let lab = Lab::start();
    let desktop = Desktop::start(&lab, "bench");
    let key = desktop.user_home.join(".ssh/id_ed25519");
    std::fs::copy(lab.path("ssh/client_ed25519"), &key).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // The burst: printable lines, so the terminal draws every byte.
    let burst = lab.path("burst.txt");
    let mut text = String::with_capacity(BURST_BYTES);
    let mut n = 0u64;
    while text.len() < BURST_BYTES {
        text.push_str(&format!(
            "{n:>10} the quick brown fox jumps over the lazy dog 0123456789\n"
        ));
        n += 1;
    }
    std::fs::write(&burst, &text).unwrap();

    // OpenSSH reference: the same file through the jump host, to /dev/null.
    let config = lab.openssh_jump_config();
    let start = Instant::now();
    let status = Command::new("ip")
        .args(["netns", "exec", &lab.out, "ssh", "-F"])
        .arg(&config)
        .args(["-J", &format!("root@{JUMP_IP}:{JUMP_PORT}"), VNET_IP, "cat"])
        .arg(&burst)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let openssh_cat = start.elapsed();

    let window = desktop.window();
    let out = lab.out.clone();
    let fingerprint = lab.fingerprint.clone();
    let gateway_url = lab.gateway_url.clone();
    let burst_path = burst.display().to_string();
    let (cold_start, rss_start, rss_tabs, burst_time) = in_netns(&out.clone(), move || {
        // The app started STARTS times (the first on an empty inventory, as a
        // new user does); the last stays open for the rest.
        let (cold_start, driver) = timed_starts(
            || window.open(),
            "the interactive host list",
            "return document.body.dataset.ready === '1';",
        );
        std::thread::sleep(Duration::from_secs(2));
        let rss_start = app_memory_mib(&out);

        driver.click("#sign-in");
        driver.type_into("#dialog input[name=url]", &gateway_url);
        driver.type_into("#dialog input[name=user]", "alice");
        driver.type_into("#dialog input[name=password]", PASSWORD);
        driver.click("#sign-in-submit");
        let shown = driver.text("#dialog code.fingerprint");
        assert_eq!(
            shown.replace(':', "").to_lowercase(),
            fingerprint.replace(':', "").to_lowercase()
        );
        driver.click("#sign-in-submit");
        driver.wait(".host.gateway[data-host='vnet1']");
        for tab in 0..TABS {
            open_vnet1(&driver, tab == 0);
            driver.wait_until(
                "the tab to connect",
                &format!(
                    "return document.querySelectorAll('.tab.connected').length === {};",
                    tab + 1
                ),
            );
        }
        std::thread::sleep(Duration::from_secs(2));
        let rss_tabs = app_memory_mib(&out);

        let started = Instant::now();
        driver.type_into(
            ".panel.active .screen",
            &format!("cat {burst_path}; echo burst-done{ENTER}"),
        );
        driver.wait_until(
            "the end of the burst",
            "const rows = document.querySelector('.panel.active .term-rows'); \
             return !!rows && rows.innerText.split('\\n').some(l => l.trim() === 'burst-done');",
        );
        let burst_time = started.elapsed();
        driver.shot("bench-10-tabs");
        driver.quit();
        (cold_start, rss_start, rss_tabs, burst_time)
    });
    drop(desktop);
    let (blank_start, blank) = blank_webkit_window(&lab.path("minibrowser-home"));
    let (chromium_start, chromium) = blank_chromium_window(&lab.path("chromium-home"));

    let now = utc_now();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let table = format!(
        "## Desktop app benchmark, {now}\n\nMachine: {cores} cores, Xvfb 1280×800, binaries from {}. Command: `cargo xtask bench app` (namespace lab, real window through \
         WebDriver; memory is the app plus its WebKit web and network processes).\n\n\
         | measure | result | goal |\n|---|---|---|\n\
         | cold start to an interactive host list (WebDriver session → list ready; median of {STARTS}) | {:.0} ms | < 1000 ms |\n\
         | reference: WebKitGTK's MiniBrowser, WebDriver session → blank page ready (median of {STARTS}) | {:.0} ms | app: {:+.0} ms |\n\
         | memory after start: RSS sum / PSS / anonymous PSS | {:.0} / {:.0} / {:.0} MiB | < 150 MiB |\n\
         | memory with {TABS} SSH tabs open: RSS sum / PSS / anonymous PSS | {:.0} / {:.0} / {:.0} MiB | |\n\
         | reference: WebKitGTK's MiniBrowser on a blank page, same measure | {:.0} / {:.0} / {:.0} MiB | app after start: {:+.0} MiB PSS |\n\
         | reference: Chromium (Electron's engine) app window on a blank page, same measure | {:.0} / {:.0} / {:.0} MiB | app after start: {:.2}× its PSS |\n\
         | reference: Chromium, ChromeDriver session → blank page ready (median of {STARTS}) | {:.0} ms | app: {:+.0} ms |\n\
         | 10 MB burst (`cat`) rendered in a tab, until the last line shows | {:.2} s | |\n\
         | the same file with OpenSSH `ssh -J … cat` to /dev/null (reference) | {:.2} s | ratio {:.2}× |\n",
        bin_dir().display(),
        cold_start.as_secs_f64() * 1000.0,
        blank_start.as_secs_f64() * 1000.0,
        (cold_start.as_secs_f64() - blank_start.as_secs_f64()) * 1000.0,
        rss_start.0,
        rss_start.1,
        rss_start.2,
        rss_tabs.0,
        rss_tabs.1,
        rss_tabs.2,
        blank.0,
        blank.1,
        blank.2,
        rss_start.1 - blank.1,
        chromium.0,
        chromium.1,
        chromium.2,
        rss_start.1 / chromium.1,
        chromium_start.as_secs_f64() * 1000.0,
        (cold_start.as_secs_f64() - chromium_start.as_secs_f64()) * 1000.0,
        burst_time.as_secs_f64(),
        openssh_cat.as_secs_f64(),
        burst_time.as_secs_f64() / openssh_cat.as_secs_f64(),
    );
    append_benchmark(&table);
}
