//! `cargo xtask bench rdp`: an RDP session of the client core through the
//! gateway to FreeRDP's shadow server, then to xrdp with xorgxrdp, at 1024×768
//! and 1920×1080, while the
//! server's display changes continuously: a solid colour, then a screen of
//! text scrolling (every tile changes and none is flat). Measures frames received per
//! second, the time from a change on the server display to its pixels in the
//! canvas buffer, the client pipeline's own time per frame (decode, encode,
//! apply), bytes over the tunnel per frame, and the client's CPU beside
//! FreeRDP's `xfreerdp` receiving the same animation through the same gateway.
//! Then, in this process on the quiet machine: RemoteFX decoding alone against
//! IronRDP's decoder, and the client pipeline alone on a full HD frame of text
//! beside FreeRDP's own decoder (libfreerdp2) on the same frame.
//! Prints a table and appends it to docs/BENCHMARKS.md. Needs root (the lab);
//! `bench-rdp --pipeline-only` runs the in-process part alone, without root.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portcullis_client::Client;
use portcullis_client::home::ClientHome;
use portcullis_client::rdp::frame::Canvas;
use portcullis_client::rdp::{RdpCredentials, RdpOptions, RdpTarget};
use portcullis_lab::rdp::{
    RDP_PASSWORD, RDP_PORT, RDP_USER, XRDP_PORT, close_to, connect_through_gateway,
    start_shadow_server_sized, start_xrdp,
};
use portcullis_lab::x11::X11;
use portcullis_lab::*;
use portcullis_proto::Secret;

/// How long the animation runs for each measurement.
const ANIMATION: Duration = Duration::from_secs(8);
/// Colour changes timed one by one for the latency figures.
const LATENCY_SAMPLES: usize = 30;

/// Colours the animation cycles through; each differs from the last in every channel.
const COLOURS: [[u8; 3]; 4] = [
    [0x20, 0x60, 0xd0],
    [0xe0, 0x90, 0x10],
    [0x10, 0xc0, 0x40],
    [0xc0, 0x20, 0x90],
];

/// Colour `i` of the animation: every channel steps by an odd amount, so the
/// colours repeat only every 256 changes (4 s). A short cycle aliases: with
/// 4 colours at 60 Hz, a server capturing every 66.7 ms (15 Hz) would show the
/// same colour in every frame, and its frames would not be counted.
fn animation_colour(i: usize) -> [u8; 3] {
    let step = |start: usize, by: usize| u8::try_from((start + i * by) % 256).expect("< 256");
    [step(0x20, 37), step(0x60, 91), step(0xd0, 53)]
}

/// Display changes per second of the animation: a program redrawing at a
/// 60 Hz display's rate.
const ANIMATION_RATE: u32 = 60;

/// What the program on the server display draws.
#[derive(Clone, Copy, PartialEq)]
enum Content {
    /// The whole display one colour, a new one each change: the cheapest
    /// frame to encode and decode (every tile flat).
    Solid,
    /// A full screen of text scrolling a line each change, with a square at
    /// the centre changing colour (the probe): every tile has detail.
    Text,
}

impl Content {
    fn name(self) -> &'static str {
        match self {
            Content::Solid => "solid colour",
            Content::Text => "text scrolling",
        }
    }

    /// Change `i` of the animation, with `colour` at the probe (the centre).
    fn paint(self, x: &mut X11, i: usize, colour: [u8; 3]) -> std::io::Result<()> {
        match self {
            Content::Solid => x.paint_root(colour),
            Content::Text => x.paint_text(i, colour),
        }
    }
}

/// Changes the display 60 times a second, until stopped, over one X
/// connection (a process per change, as `xsetroot` would be, costs this
/// 2-core machine more CPU than the RDP client, and would be charged to it).
/// The thread returns the CPU seconds it used, which are not the client's.
fn animate(
    display: String,
    xauthority: Option<std::path::PathBuf>,
    content: Content,
    stop: Arc<AtomicBool>,
    changes: Arc<AtomicU64>,
) -> std::thread::JoinHandle<f64> {
    std::thread::spawn(move || {
        let cpu_before = cpu_seconds_of("thread-self");
        let mut painter = X11::connect_as(&display, xauthority.as_deref())
            .expect("X connection for the animation");
        let period = Duration::from_secs(1) / ANIMATION_RATE;
        let mut next = Instant::now();
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            content
                .paint(&mut painter, i, animation_colour(i))
                .expect("paint the display");
            changes.fetch_add(1, Ordering::Relaxed);
            i += 1;
            next += period;
            match next.checked_duration_since(Instant::now()) {
                Some(wait) => std::thread::sleep(wait),
                // Behind (a loaded machine): carry on from now, no burst to catch up.
                None => next = Instant::now(),
            }
        }
        cpu_seconds_of("thread-self") - cpu_before
    })
}

/// The machine's busy and total CPU seconds so far, all cores (/proc/stat).
fn machine_cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let total: f64 = ticks.iter().take(8).sum();
    // idle and iowait are the 4th and 5th.
    let idle = ticks.get(3).unwrap_or(&0.0) + ticks.get(4).unwrap_or(&0.0);
    ((total - idle) / 100.0, total / 100.0)
}

/// CPU seconds (user + system) of a process so far.
fn cpu_seconds(pid: u32) -> f64 {
    cpu_seconds_of(&pid.to_string())
}

/// CPU seconds (user + system) so far of `/proc/{task}`: a process id, or
/// "thread-self" for the calling thread.
fn cpu_seconds_of(task: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{task}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

struct Figures {
    server: &'static str,
    codec: &'static str,
    content: Content,
    size: (u16, u16),
    fps: f64,
    server_changes_per_s: f64,
    latency_p50_ms: f64,
    latency_p90_ms: f64,
    client_ms_per_frame: f64,
    decode_ms_per_frame: f64,
    bytes_per_frame: f64,
    client_cpu_s: f64,
    /// The server's CPU over the same time (all its processes).
    server_cpu_s: f64,
    /// The share of the machine's CPU time that was busy, all processes.
    machine_busy: f64,
    xfreerdp_cpu_s: Option<f64>,
    xfreerdp_bytes_per_s: Option<f64>,
    ours_bytes_per_s: f64,
}

/// The RDP server a run connects to, through the gateway.
#[derive(Clone)]
struct Server {
    name: &'static str,
    /// The gateway's name for it, and its port in the private namespace.
    host: &'static str,
    port: u16,
    user: &'static str,
    password: &'static str,
    /// The X display it shows, and the file with its cookie when it asks for one.
    display: ServerDisplay,
    xauthority: Option<std::path::PathBuf>,
    /// The command names of its processes (in the private namespace), whose
    /// CPU is the server's.
    processes: &'static [&'static str],
}

#[derive(Clone)]
enum ServerDisplay {
    /// The shadow server shows a display the lab started.
    Known(String),
    /// xrdp starts a display for the session at logon; the session writes its
    /// name to this file.
    WrittenTo(std::path::PathBuf),
}

impl Server {
    /// The display, once the server shows one (after the RDP logon for xrdp).
    fn display(&self) -> String {
        match &self.display {
            ServerDisplay::Known(display) => display.clone(),
            ServerDisplay::WrittenTo(file) => {
                let deadline = Instant::now() + Duration::from_secs(45);
                loop {
                    if let Ok(display) = std::fs::read_to_string(file)
                        && !display.trim().is_empty()
                    {
                        return display.trim().to_owned();
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{}: the session never wrote its display to {}",
                        self.name,
                        file.display()
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

/// Both codec choices of the client core, then xfreerdp, on FreeRDP's shadow server.
fn measure(geometry: &str) -> Vec<Figures> {
    let mut lab = Lab::start();
    let display = start_shadow_server_sized(&mut lab, geometry);
    X11::connect(&display)
        .and_then(|mut x| x.paint_root([0, 0, 0]))
        .expect("paint the root window");
    lab.login("alice");
    let server = Server {
        name: "shadow",
        host: "rdp1",
        port: RDP_PORT,
        user: RDP_USER,
        password: RDP_PASSWORD,
        display: ServerDisplay::Known(display.clone()),
        xauthority: None,
        // Its command name cut to 15 characters.
        processes: &["freerdp-shadow-"],
    };
    let size = size_of(geometry);
    let mut runs = vec![
        measure_ours(&lab, &server, size, true, Content::Solid),
        measure_ours(&lab, &server, size, false, Content::Solid),
        measure_ours(&lab, &server, size, true, Content::Text),
    ];
    // FreeRDP's own client on the same animation, through the same gateway.
    if let Some((cpu, bytes_per_s)) = xfreerdp_run(&mut lab, &display) {
        // It watched the solid colour: its figures sit beside those runs only.
        for run in runs.iter_mut().filter(|run| run.content == Content::Solid) {
            run.xfreerdp_cpu_s = Some(cpu);
            run.xfreerdp_bytes_per_s = Some(bytes_per_s);
        }
    }
    runs
}

/// The client core offering RemoteFX to xrdp with xorgxrdp, whose session
/// display (an Xorg of its own, the size the client asks for) the animation
/// draws on.
fn measure_xrdp(geometry: &str) -> Vec<Figures> {
    let mut lab = Lab::start();
    start_xrdp(&mut lab);
    lab.login("alice");
    let server = Server {
        name: "xrdp",
        host: "rdp2",
        port: XRDP_PORT,
        user: SSH_USER,
        password: SSH_USER_PASSWORD,
        display: ServerDisplay::WrittenTo(lab.path("pclab-home").join("display")),
        xauthority: Some(lab.path("pclab-home").join(".Xauthority")),
        processes: &["xrdp", "Xorg"],
    };
    let size = size_of(geometry);
    vec![
        measure_ours(&lab, &server, size, true, Content::Solid),
        measure_ours(&lab, &server, size, true, Content::Text),
    ]
}

/// Width and height of a `WxHxDEPTH` geometry.
fn size_of(geometry: &str) -> (u16, u16) {
    let mut parts = geometry
        .split('x')
        .map(|n| n.parse::<u16>().expect("a geometry"));
    (parts.next().unwrap(), parts.next().unwrap())
}

fn measure_ours(
    lab: &Lab,
    server: &Server,
    size: (u16, u16),
    remote_fx: bool,
    content: Content,
) -> Figures {
    let home = lab.path("home-alice");
    let client = Arc::new(Client::new(
        ClientHome::resolve(Some(home.clone())).unwrap(),
    ));
    let out = lab.out.clone();
    let vnet = lab.vnet.clone();
    let server = server.clone();
    block_on_in(&out, move || async move {
        let target = RdpTarget {
            host: server.host.into(),
            port: server.port,
        };
        let credentials = RdpCredentials {
            user: server.user.into(),
            password: Some(Secret::new(server.password.into())),
            domain: None,
        };
        let options = RdpOptions {
            remote_fx,
            width: size.0,
            height: size.1,
            ..RdpOptions::default()
        };
        let (session, _) =
            connect_through_gateway(&client, &home, target, &credentials, &options, true)
                .await
                .expect("RDP session");
        let size = session.size();
        let probe = (size.0 / 2, size.1 / 2);
        let mut canvas = Canvas::default();
        let mut pipeline = Duration::ZERO;
        // One update taken and applied, as the app does per display frame.
        let pump = |canvas: &mut Canvas, pipeline: &mut Duration| -> bool {
            let started = Instant::now();
            let updates = session.take_updates();
            if updates.is_empty() {
                return false;
            }
            for update in &updates {
                canvas.apply(update).expect("update");
            }
            *pipeline += started.elapsed();
            true
        };
        // Latency: one change at a time, timed until its pixel is in the canvas.
        let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
        let screen = server.display();
        let mut painter =
            X11::connect_as(&screen, server.xauthority.as_deref()).expect("X connection");
        for i in 0..LATENCY_SAMPLES {
            let colour = COLOURS[i % COLOURS.len()];
            let started = Instant::now();
            content
                .paint(&mut painter, i, colour)
                .expect("paint the display");
            loop {
                pump(&mut canvas, &mut pipeline);
                if close_to(canvas.pixel(probe.0, probe.1), colour) {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "colour never arrived"
                );
                let _ = tokio::time::timeout(Duration::from_millis(50), session.changed()).await;
            }
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        latencies.sort_by(f64::total_cmp);
        // Throughput: the display changes continuously; count frames that changed the probe.
        let stop = Arc::new(AtomicBool::new(false));
        let changes = Arc::new(AtomicU64::new(0));
        let decode_before = session.decode_time();
        let bytes_before = session.bytes_in();
        let cpu_before = cpu_seconds(std::process::id());
        let server_pids = netns_pids_named(&vnet, server.processes);
        assert!(
            !server_pids.is_empty(),
            "{}: no server process",
            server.name
        );
        let server_cpu = || server_pids.iter().map(|pid| cpu_seconds(*pid)).sum::<f64>();
        let server_before = server_cpu();
        let machine_before = machine_cpu_seconds();
        pipeline = Duration::ZERO;
        let animation = animate(
            screen.clone(),
            server.xauthority.clone(),
            content,
            Arc::clone(&stop),
            Arc::clone(&changes),
        );
        let started = Instant::now();
        let mut frames = 0u64;
        let mut last = canvas.pixel(probe.0, probe.1);
        while started.elapsed() < ANIMATION {
            session.changed().await;
            if pump(&mut canvas, &mut pipeline) {
                let now = canvas.pixel(probe.0, probe.1);
                if now != last {
                    frames += 1;
                    last = now;
                }
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let painter_cpu_s = animation.join().unwrap();
        let client_cpu_s = cpu_seconds(std::process::id()) - cpu_before - painter_cpu_s;
        let server_cpu_s = server_cpu() - server_before;
        let machine = machine_cpu_seconds();
        let machine_busy = (machine.0 - machine_before.0) / (machine.1 - machine_before.1);
        let decode = (session.decode_time() - decode_before).as_secs_f64();
        let bytes = (session.bytes_in() - bytes_before) as f64;
        session.close().await;
        let frames_f = frames.max(1) as f64;
        let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
        Figures {
            server: server.name,
            codec: if remote_fx { "RemoteFX" } else { "bitmaps" },
            content,
            size,
            fps: frames as f64 / elapsed,
            server_changes_per_s: changes.load(Ordering::Relaxed) as f64 / elapsed,
            latency_p50_ms: pct(0.5),
            latency_p90_ms: pct(0.9),
            client_ms_per_frame: (decode + pipeline.as_secs_f64()) * 1000.0 / frames_f,
            decode_ms_per_frame: decode * 1000.0 / frames_f,
            bytes_per_frame: bytes / frames_f,
            client_cpu_s,
            server_cpu_s,
            machine_busy,
            xfreerdp_cpu_s: None,
            xfreerdp_bytes_per_s: None,
            ours_bytes_per_s: bytes / elapsed,
        }
    })
}

/// xfreerdp through `portcullis tunnel --listen`, on a display of its own, for
/// the length of the animation; returns its CPU seconds and bytes per second
/// received (from the gateway's audit of the tunnel).
fn xfreerdp_run(lab: &mut Lab, server_display: &str) -> Option<(f64, f64)> {
    if Command::new("xfreerdp").arg("/version").output().is_err() {
        eprintln!("bench-rdp: xfreerdp is not installed; its row is left out");
        return None;
    }
    let (xvfb, client_display) = start_xvfb("1920x1080x24");
    lab.adopt(xvfb);
    let (listener, port) = lab.tunnel_listener("alice", "rdp1");
    lab.adopt(listener);
    let client_home = lab.path("xfreerdp-home");
    std::fs::create_dir_all(&client_home).unwrap();
    let mut viewer: Child = Command::new("ip")
        .args(["netns", "exec", &lab.out, "xfreerdp"])
        .arg(format!("/v:127.0.0.1:{port}"))
        .arg(format!("/u:{RDP_USER}"))
        .arg(format!("/p:{RDP_PASSWORD}"))
        .args(["/sec:nla", "/cert:ignore", "/bpp:32", "-wallpaper"])
        .env("DISPLAY", &client_display)
        .env("HOME", &client_home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // Let it connect and draw the first frame.
    std::thread::sleep(Duration::from_secs(4));
    let pid = child_pid_of(viewer.id()).unwrap_or(viewer.id());
    let before = cpu_seconds(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let animation = animate(
        server_display.to_owned(),
        None,
        Content::Solid,
        Arc::clone(&stop),
        Arc::new(AtomicU64::new(0)),
    );
    std::thread::sleep(ANIMATION);
    stop.store(true, Ordering::Relaxed);
    animation.join().unwrap();
    let cpu = cpu_seconds(pid) - before;
    let _ = viewer.kill();
    let _ = viewer.wait();
    let _ = Command::new("pkill")
        .args(["-f", &format!("/v:127.0.0.1:{port}")])
        .status();
    std::thread::sleep(Duration::from_secs(1));
    // Bytes to the client over the whole connection, from the tunnel's close record.
    let bytes = lab
        .audit()
        .iter()
        .rev()
        .find(|e| e["event"] == "tunnel_close" && e["host"] == "rdp1")
        .and_then(|e| e["bytes_to_client"].as_f64())?;
    let seconds = ANIMATION.as_secs_f64() + 4.0;
    Some((cpu, bytes / seconds))
}

/// Medians of the client pipeline's stages for one full HD frame of text.
struct PipelineTimes {
    decode_ms: f64,
    encode_ms: f64,
    apply_ms: f64,
    total_ms: f64,
    /// FreeRDP's own decoder (libfreerdp2) on the same frame, into a framebuffer
    /// of its own: `None` when the library is not there.
    freerdp_decode_ms: Option<f64>,
}

/// The client pipeline alone, in this process: a 1920×1080 RemoteFX frame
/// of the text page (every tile changed) through the session's decoding
/// context into an RGBA framebuffer, encoded as a whole-desktop update
/// ([`portcullis_client::rdp::frame`]), applied to a [`Canvas`], `rounds`
/// times. Checks the canvas shows the page.
fn time_pipeline(rounds: usize) -> PipelineTimes {
    use ironrdp_graphics::image_processing::PixelFormat;
    use ironrdp_pdu::ReadCursor;
    use ironrdp_pdu::codecs::rfx::{EntropyAlgorithm, RfxRectangle};
    use ironrdp_pdu::geometry::InclusiveRectangle;
    use ironrdp_session::image::DecodedImage;
    use ironrdp_session::rfx::DecodingContext;
    use portcullis_client::rdp::frame::{Rect, encode_parts};
    use portcullis_rfx::sample;

    let (width, height) = (1920u16, 1080u16);
    let page = sample::text_page(width, height, 0);
    let encoded = sample::encode_picture(&page, width, height, EntropyAlgorithm::Rlgr3);
    let tiles = sample::placed_tiles(&encoded);
    let whole = RfxRectangle {
        x: 0,
        y: 0,
        width,
        height,
    };
    let frame = sample::stream_frame(0, vec![whole], vec![sample::QUANT], tiles);
    let mut first = sample::stream_headers(1920, 1080);
    first.extend_from_slice(&frame);
    let destination = InclusiveRectangle {
        left: 0,
        top: 0,
        right: width - 1,
        bottom: height - 1,
    };
    let mut context = DecodingContext::new();
    let mut image = DecodedImage::new(PixelFormat::RgbA32, width, height);
    let mut canvas = Canvas::default();
    let rect = Rect {
        x: 0,
        y: 0,
        width,
        height,
    };
    let (mut decode, mut encoding, mut apply, mut total) = (vec![], vec![], vec![], vec![]);
    let mut freerdp = freerdp::Decoder::open(width, height);
    let mut freerdp_times = Vec::new();
    for round in 0..rounds.max(1) {
        let bytes = if round == 0 { &first } else { &frame };
        // FreeRDP's decoder first, in turn with ours, so a slow patch of the
        // machine falls on both alike.
        if let Some(freerdp) = freerdp.as_mut() {
            let started = Instant::now();
            assert!(freerdp.decode(bytes), "FreeRDP decodes the frame");
            freerdp_times.push(started.elapsed());
        }
        let started = Instant::now();
        context
            .decode(&mut image, &destination, &mut ReadCursor::new(bytes))
            .expect("the frame decodes");
        let decoded = Instant::now();
        let updates = encode_parts(image.data(), image.stride(), width, height, &[rect], false);
        let encoded = Instant::now();
        for update in &updates {
            canvas.apply(update).expect("the update applies");
        }
        let applied = Instant::now();
        decode.push(decoded - started);
        encoding.push(encoded - decoded);
        apply.push(applied - encoded);
        total.push(applied - started);
    }
    // The page came through: a glyph in ink, the paper beside it.
    let [x, y, _, _] = (0..)
        .find_map(|column| sample::text_glyph(0, column, 0))
        .expect("a glyph on the first row");
    let close = |pixel: Option<[u8; 4]>, rgb: [u8; 3]| {
        pixel.is_some_and(|p| p[..3].iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 12))
    };
    assert!(close(canvas.pixel(x + 2, y + 2), sample::TEXT_INK), "ink");
    assert!(close(canvas.pixel(x + 2, 0), sample::TEXT_PAPER), "paper");
    // FreeRDP drew the same page.
    if let Some(freerdp) = &freerdp {
        for (px, py) in [(x + 2, y + 2), (x + 2, 0), (width / 2, height / 2)] {
            let ours = canvas.pixel(px, py).expect("inside");
            let theirs = freerdp.pixel(px, py);
            assert!(
                ours[..3]
                    .iter()
                    .zip(&theirs[..3])
                    .all(|(a, b)| a.abs_diff(*b) <= 4),
                "({px}, {py}): ours {ours:?}, FreeRDP's {theirs:?}"
            );
        }
    }
    let median = |mut samples: Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2].as_secs_f64() * 1000.0
    };
    PipelineTimes {
        decode_ms: median(decode),
        encode_ms: median(encoding),
        apply_ms: median(apply),
        total_ms: median(total),
        freerdp_decode_ms: freerdp.is_some().then(|| median(freerdp_times)),
    }
}

/// FreeRDP's RemoteFX decoder from its shared library (libfreerdp2, installed
/// with FreeRDP's shadow server and `xfreerdp`), loaded at run time: the
/// decoder `xfreerdp` runs, C with SSE2 stages and a thread pool of one
/// thread a core, timed on the same frames as ours.
mod freerdp {
    use std::ffi::{CStr, c_void};

    /// FreeRDP's `REGION16`: extents (left, top, right, bottom) and a data pointer.
    #[repr(C)]
    struct Region16 {
        extents: [u16; 4],
        data: *mut c_void,
    }

    type ContextNew = unsafe extern "C" fn(encoder: i32) -> *mut c_void;
    type ContextFree = unsafe extern "C" fn(context: *mut c_void);
    type SetPixelFormat = unsafe extern "C" fn(context: *mut c_void, format: u32);
    type ProcessMessage = unsafe extern "C" fn(
        context: *mut c_void,
        data: *const u8,
        length: u32,
        left: u32,
        top: u32,
        dst: *mut u8,
        dst_format: u32,
        dst_stride: u32,
        dst_height: u32,
        invalid: *mut Region16,
    ) -> i32;
    type RegionFn = unsafe extern "C" fn(region: *mut Region16);

    /// `PIXEL_FORMAT_RGBA32`: 32 bits, type RGBA (3), 8 bits each of A, R, G, B.
    const RGBA32: u32 = (32 << 24) | (3 << 16) | (8 << 12) | (8 << 8) | (8 << 4) | 8;

    pub struct Decoder {
        library: *mut c_void,
        context: *mut c_void,
        free: ContextFree,
        process: ProcessMessage,
        region_init: RegionFn,
        region_uninit: RegionFn,
        width: u16,
        height: u16,
        framebuffer: Vec<u8>,
    }

    impl Decoder {
        /// A decoder drawing into a `width`×`height` RGBA framebuffer, or
        /// `None` (said on standard error) when libfreerdp2 cannot be loaded.
        #[allow(unsafe_code)]
        pub fn open(width: u16, height: u16) -> Option<Self> {
            let name = c"libfreerdp2.so.2";
            // SAFETY: dlopen and dlsym take NUL-terminated names; each symbol is
            // cast to the signature FreeRDP 2's headers give it (codec/rfx.h,
            // codec/region.h), and the library stays open while the decoder lives.
            unsafe {
                let library = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
                if library.is_null() {
                    eprintln!("bench-rdp: libfreerdp2 is not there; FreeRDP's decoder is left out");
                    return None;
                }
                let symbol = |name: &CStr| {
                    let found = libc::dlsym(library, name.as_ptr());
                    (!found.is_null()).then_some(found)
                };
                let (
                    Some(new),
                    Some(free),
                    Some(format),
                    Some(process),
                    Some(region_init),
                    Some(region_uninit),
                ) = (
                    symbol(c"rfx_context_new"),
                    symbol(c"rfx_context_free"),
                    symbol(c"rfx_context_set_pixel_format"),
                    symbol(c"rfx_process_message"),
                    symbol(c"region16_init"),
                    symbol(c"region16_uninit"),
                )
                else {
                    eprintln!("bench-rdp: libfreerdp2 lacks the RemoteFX decoder's functions");
                    libc::dlclose(library);
                    return None;
                };
                let new: ContextNew = std::mem::transmute(new);
                let context = new(0);
                if context.is_null() {
                    libc::dlclose(library);
                    return None;
                }
                let format: SetPixelFormat = std::mem::transmute(format);
                format(context, RGBA32);
                Some(Self {
                    library,
                    context,
                    free: std::mem::transmute::<*mut c_void, ContextFree>(free),
                    process: std::mem::transmute::<*mut c_void, ProcessMessage>(process),
                    region_init: std::mem::transmute::<*mut c_void, RegionFn>(region_init),
                    region_uninit: std::mem::transmute::<*mut c_void, RegionFn>(region_uninit),
                    width,
                    height,
                    framebuffer: vec![0; usize::from(width) * usize::from(height) * 4],
                })
            }
        }

        /// Decodes one RemoteFX message into the framebuffer; whether FreeRDP
        /// took it.
        #[allow(unsafe_code)]
        pub fn decode(&mut self, message: &[u8]) -> bool {
            let mut region = Region16 {
                extents: [0; 4],
                data: std::ptr::null_mut(),
            };
            // SAFETY: the context is live, the message and the framebuffer are
            // valid for the lengths given (the framebuffer is width × height × 4
            // bytes, the stride and height passed), and the region is
            // initialized before and released after, as FreeRDP's callers do.
            unsafe {
                (self.region_init)(&mut region);
                let ok = (self.process)(
                    self.context,
                    message.as_ptr(),
                    u32::try_from(message.len()).expect("a message under 4 GiB"),
                    0,
                    0,
                    self.framebuffer.as_mut_ptr(),
                    RGBA32,
                    u32::from(self.width) * 4,
                    u32::from(self.height),
                    &mut region,
                );
                (self.region_uninit)(&mut region);
                ok != 0
            }
        }

        /// `[r, g, b, a]` at a point of the framebuffer.
        pub fn pixel(&self, x: u16, y: u16) -> [u8; 4] {
            let at = (usize::from(y) * usize::from(self.width) + usize::from(x)) * 4;
            let p = &self.framebuffer[at..at + 4];
            [p[0], p[1], p[2], p[3]]
        }
    }

    impl Drop for Decoder {
        #[allow(unsafe_code)]
        fn drop(&mut self) {
            // SAFETY: the context came from this library's rfx_context_new and
            // is freed once, before the library is closed.
            unsafe {
                (self.free)(self.context);
                libc::dlclose(self.library);
            }
        }
    }
}

/// `ip netns exec` runs the program as its child; the CPU is the child's.
fn child_pid_of(pid: u32) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

fn main() {
    if std::env::args().any(|arg| arg == "--pipeline-only") {
        // The in-process part alone (no lab, no root): for working on the client.
        let pipeline = time_pipeline(40);
        let text = portcullis_rfx::sample::time_full_hd_text(40);
        println!(
            "text frame: decode {:.2} ms (IronRDP {:.2}, 1 thread {:.2}); pipeline: decode {:.2} + encode {:.2} + apply {:.2} = {:.2} ms; FreeRDP's decoder {}",
            text.all_cores_ms,
            text.ironrdp_ms,
            text.one_thread_ms,
            pipeline.decode_ms,
            pipeline.encode_ms,
            pipeline.apply_ms,
            pipeline.total_ms,
            pipeline
                .freerdp_decode_ms
                .map_or("n/a".into(), |ms| format!("{ms:.2} ms")),
        );
        return;
    }
    if !lab_available("bench-rdp") {
        std::process::exit(1);
    }
    require_tool("freerdp-shadow-cli");
    let mut runs = measure("1024x768x24");
    runs.extend(measure("1920x1080x24"));
    runs.extend(measure_xrdp("1024x768x24"));
    runs.extend(measure_xrdp("1920x1080x24"));
    let mut table = format!(
        "## RDP benchmark, {}\n\n\
         Machine: {} cores. Command: `cargo xtask bench rdp` (release build, namespace lab; \
         FreeRDP 2 shadow server on Xvfb (`shadow`), then xrdp 0.9 with xorgxrdp (`xrdp`, its session's \
         own Xorg at the size the client asks for), the client core through the gateway; the server's \
         display changes {ANIMATION_RATE} times a second, drawn by one X client: the whole display a \
         new solid colour, or a full screen of text scrolling a line as a terminal scrolls (copied up, \
         the new line drawn: every tile changes, none is flat) with a square at the centre changing colour). Latency: a change on the \
         server display until the centre pixel is in the canvas buffer ({LATENCY_SAMPLES} changes). \
         Client pipeline: decoding into the framebuffer, encoding the dirty rectangles and \
         applying them to a canvas buffer, per frame. CPU over {} s of animation: the client's \
         (not the thread drawing on the server display), the server's (shadow server; xrdp and its Xorg), and how busy the \
         whole machine was.\n\n\
         | desktop, server, codec offered, content | frames/s received (server changes/s) | latency p50 / p90 | client pipeline per frame (decode) | bytes per frame | client CPU | xfreerdp CPU | server CPU, machine busy | bytes/s ours / xfreerdp |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        utc_now(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        ANIMATION.as_secs()
    );
    for f in &runs {
        table.push_str(&format!(
            "| {}×{}, {}, {}, {} | {:.1} ({:.0}) | {:.0} / {:.0} ms | {:.2} ms ({:.2} ms) | {:.0} | {:.2} s | {} | {:.2} s, {:.0} % | {:.1} / {} MB/s |\n",
            f.size.0,
            f.size.1,
            f.server,
            f.codec,
            f.content.name(),
            f.fps,
            f.server_changes_per_s,
            f.latency_p50_ms,
            f.latency_p90_ms,
            f.client_ms_per_frame,
            f.decode_ms_per_frame,
            f.bytes_per_frame,
            f.client_cpu_s,
            f.xfreerdp_cpu_s.map_or("n/a".into(), |c| format!("{c:.2} s")),
            f.server_cpu_s,
            f.machine_busy * 100.0,
            f.ours_bytes_per_s / 1e6,
            f.xfreerdp_bytes_per_s
                .map_or("n/a".into(), |b| format!("{:.1}", b / 1e6)),
        ));
    }
    // The decoder alone, on a quiet machine (the servers are gone): full HD
    // frames, IronRDP's tile loop against ours, in this process.
    table.push_str(
        "\nRemoteFX decoding alone, one 1920×1080 frame (510 tiles), median of 40, \
         the same pixels checked, on a quiet machine:\n\n\
         | frame | bytes | IronRDP `TileDecoder`, tile after tile (reference) | portcullis-rfx, 1 thread | portcullis-rfx, all threads |\n\
         |---|---|---|---|---|\n",
    );
    for (name, times) in [
        (
            "desktop-like (a third flat, a third stripes, a third gradients)",
            portcullis_rfx::sample::time_full_hd_frame(40),
        ),
        (
            "the text page the benchmark scrolls (every tile detailed)",
            portcullis_rfx::sample::time_full_hd_text(40),
        ),
    ] {
        table.push_str(&format!(
            "| {name} | {} | {:.2} ms | {:.2} ms ({:.2}× faster) | {:.2} ms on {} ({:.2}× faster) |\n",
            times.bytes,
            times.ironrdp_ms,
            times.one_thread_ms,
            times.ironrdp_ms / times.one_thread_ms,
            times.all_cores_ms,
            times.cores,
            times.ironrdp_ms / times.all_cores_ms,
        ));
    }
    let pipeline = time_pipeline(40);
    table.push_str(&format!(
        "\nThe client pipeline alone, on a quiet machine: one 1920×1080 frame of the text page \
         as a RemoteFX surface command, through the session's decoding context into its \
         framebuffer, encoded as the update the app's canvas takes, applied to a canvas buffer \
         (median of 40; goal < 16 ms), beside FreeRDP's own decoder (libfreerdp2, the one \
         `xfreerdp` runs: C, SSE2, a thread a core) decoding the same frame into its framebuffer, \
         in turn with ours:\n\n\
         | decode into the framebuffer | encode the update | apply to the canvas | whole pipeline | FreeRDP's decoder into its framebuffer (reference) |\n\
         |---|---|---|---|---|\n\
         | {:.2} ms | {:.2} ms | {:.2} ms | **{:.2} ms** | {} |\n",
        pipeline.decode_ms,
        pipeline.encode_ms,
        pipeline.apply_ms,
        pipeline.total_ms,
        pipeline.freerdp_decode_ms.map_or("n/a".into(), |ms| format!(
            "{ms:.2} ms (ours decodes in {:.2}× its time)",
            pipeline.decode_ms / ms
        )),
    ));
    print!("{table}");
    append_benchmark(&table);
}
