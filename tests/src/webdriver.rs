//! Just enough W3C WebDriver to drive the real desktop window through
//! tauri-driver (which starts WebKitWebDriver and the app): blocking HTTP/1.1
//! over a TCP stream, JSON in and out.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The W3C key code for Enter.
pub const ENTER: &str = "\u{E007}";

pub struct WebDriver {
    address: String,
    session: String,
    /// The X display the window is on: screenshots are taken there.
    display: Option<String>,
    connection: std::sync::Mutex<Option<std::io::BufReader<TcpStream>>>,
}

/// One request on a kept-alive connection (WebDriver servers, and tauri-driver's
/// proxy in front of WebKitWebDriver, misbehave when every request closes).
fn exchange(
    connection: &mut Option<std::io::BufReader<TcpStream>>,
    address: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Vec<u8>)> {
    use std::io::BufRead;
    if connection.is_none() {
        let stream =
            TcpStream::connect(address).with_context(|| format!("connect to {address}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(90)))?;
        *connection = Some(std::io::BufReader::new(stream));
    }
    let reader = connection.as_mut().expect("connected");
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        reader.get_mut(),
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut status_line = String::new();
    if reader.read_line(&mut status_line)? == 0 {
        bail!("the server closed the connection");
    }
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let (mut length, mut chunked, mut close) = (None, false, false);
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        } else if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        } else if lower.starts_with("connection:") && lower.contains("close") {
            close = true;
        }
    }
    let mut payload = Vec::new();
    if chunked {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size = usize::from_str_radix(size_line.trim(), 16)?;
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            payload.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = length {
        payload.resize(length, 0);
        reader.read_exact(&mut payload)?;
    } else {
        reader.read_to_end(&mut payload)?;
        close = true;
    }
    if close {
        *connection = None;
    }
    Ok((status, payload))
}

fn request(
    connection: &std::sync::Mutex<Option<std::io::BufReader<TcpStream>>>,
    address: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    let mut connection = connection.lock().expect("connection lock");
    // A connection the server dropped between requests is reopened once.
    let (status, payload) = match exchange(&mut connection, address, method, path, body) {
        Ok(answer) => answer,
        Err(first) => {
            *connection = None;
            exchange(&mut connection, address, method, path, body)
                .with_context(|| format!("{method} {path} (after {first:#})"))?
        }
    };
    let value: Value = if payload.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&payload).with_context(|| {
            format!(
                "{method} {path}: not JSON: {}",
                String::from_utf8_lossy(&payload)
            )
        })?
    };
    if status >= 400 {
        bail!("{method} {path}: {status} {}", value["value"]);
    }
    Ok(value["value"].clone())
}

impl WebDriver {
    /// A session on the app at `application` (tauri-driver listens on `address`).
    pub fn start(address: &str, application: &Path) -> anyhow::Result<WebDriver> {
        WebDriver::start_with(
            address,
            json!({"tauri:options": {"application": application.display().to_string()}}),
        )
    }

    /// A session on a WebKitGTK browser that WebKitWebDriver (listening on
    /// `address`) starts itself: `browser` with `--automation`. The app
    /// benchmark's reference is WebKitGTK's MiniBrowser.
    pub fn start_browser(address: &str, browser: &Path) -> anyhow::Result<WebDriver> {
        WebDriver::start_with(
            address,
            json!({"webkitgtk:browserOptions": {
                "binary": browser.display().to_string(),
                "args": ["--automation"],
            }}),
        )
    }

    /// A session on Chromium at `browser` with `args`, through ChromeDriver
    /// (listening on `address`). The app benchmark's Electron-class reference.
    pub fn start_chromium(
        address: &str,
        browser: &Path,
        args: &[&str],
    ) -> anyhow::Result<WebDriver> {
        WebDriver::start_with(
            address,
            json!({"goog:chromeOptions": {
                "binary": browser.display().to_string(),
                "args": args,
            }}),
        )
    }

    fn start_with(address: &str, always_match: Value) -> anyhow::Result<WebDriver> {
        let capabilities = json!({"capabilities": {"alwaysMatch": always_match}});
        let started = Instant::now();
        let connection = std::sync::Mutex::new(None);
        loop {
            match request(
                &connection,
                address,
                "POST",
                "/session",
                Some(&capabilities),
            ) {
                Ok(value) => {
                    let session = value["sessionId"]
                        .as_str()
                        .context("no session id")?
                        .to_owned();
                    return Ok(WebDriver {
                        address: address.to_owned(),
                        session,
                        display: None,
                        connection,
                    });
                }
                Err(e) if started.elapsed() < Duration::from_secs(30) => {
                    eprintln!("webdriver: waiting for the driver: {e:#}");
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        request(
            &self.connection,
            &self.address,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        )
    }

    /// Resizes the window (its outer size, in CSS pixels).
    pub fn set_window_size(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            Some(serde_json::json!({ "width": width, "height": height })),
        )
        .expect("resize the window");
    }

    /// The first element matching `css`, or an error.
    pub fn find(&self, css: &str) -> anyhow::Result<String> {
        let value = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        value
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .map(str::to_owned)
            .context("no element id")
    }

    /// Retries `find` while the page catches up.
    pub fn wait(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            match self.find(css) {
                Ok(id) => return id,
                Err(e) if started.elapsed() < Duration::from_secs(30) => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(150));
                }
                Err(e) => panic!("no element {css:?} after 30 s: {e:#}"),
            }
        }
    }

    /// Waits until `script` (a function body returning a value) returns something
    /// truthy; returns that value.
    pub fn wait_until(&self, what: &str, script: &str) -> Value {
        self.poll_until(what, script, Duration::from_millis(200))
    }

    /// [`WebDriver::wait_until`], asking every `every`: a benchmark timing the
    /// moment `script` turns true polls often, or it measures the poll interval
    /// (with 200 ms, up to 200 ms late).
    pub fn poll_until(&self, what: &str, script: &str, every: Duration) -> Value {
        let started = Instant::now();
        loop {
            let value = self.script(script).unwrap_or(Value::Null);
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let page = self
                    .script("return document.body.innerText")
                    .unwrap_or_default();
                panic!("waited 60 s for {what}; the window shows:\n{page}");
            }
            std::thread::sleep(every);
        }
    }

    pub fn click(&self, css: &str) {
        let id = self.wait(css);
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})))
            .unwrap_or_else(|e| panic!("click {css}: {e:#}"));
    }

    pub fn clear(&self, css: &str) {
        let id = self.wait(css);
        self.call("POST", &format!("/element/{id}/clear"), Some(json!({})))
            .unwrap_or_else(|e| panic!("clear {css}: {e:#}"));
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.wait(css);
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .unwrap_or_else(|e| panic!("type into {css}: {e:#}"));
    }

    pub fn text(&self, css: &str) -> String {
        let id = self.wait(css);
        self.call("GET", &format!("/element/{id}/text"), None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Runs `body` as a synchronous script (it may `return` a JSON value).
    pub fn script(&self, body: &str) -> anyhow::Result<Value> {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": body, "args": []})),
        )
    }

    /// Screenshots are taken of X display `display` (":N"), where the window is.
    pub fn on_display(mut self, display: &str) -> WebDriver {
        self.display = Some(display.to_owned());
        self
    }

    /// A PNG of the window, after two animation frames so it is not stale: of
    /// the whole X display when [`WebDriver::on_display`] named it (what a person
    /// sees; WebKitWebDriver's own screenshot of a page with a modal dialog hangs
    /// when WebKit's DMA-BUF renderer is off, as the app has it), else WebDriver's.
    pub fn screenshot(&self, path: &Path) {
        if let Err(e) = self.call(
            "POST",
            "/execute/async",
            Some(json!({
                "script": "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                "args": []
            })),
        ) {
            eprintln!("webdriver: waiting for two frames: {e:#}");
        }
        if let Some(display) = &self.display {
            crate::x11::X11::connect(display)
                .map_err(anyhow::Error::from)
                .and_then(|mut x| x.screenshot(path))
                .unwrap_or_else(|e| panic!("screenshot of {display}: {e:#}"));
            eprintln!("screenshot: {}", path.display());
            return;
        }
        let value = self
            .call("GET", "/screenshot", None)
            .unwrap_or_else(|e| panic!("screenshot: {e:#}"));
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap_or_default())
            .expect("screenshot is base64");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("screenshot folder");
        }
        std::fs::write(path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
    }

    /// [`WebDriver::screenshot`] to `target/e2e/NAME.png`, kept as a test artifact.
    pub fn shot(&self, name: &str) {
        self.screenshot(&crate::e2e_artifacts().join(format!("{name}.png")));
    }

    pub fn quit(self) {
        let _ = self.call("DELETE", "", None);
    }
}
