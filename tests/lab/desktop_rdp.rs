//! An RDP desktop in the real window: the help-desk path (a host the gateway
//! grants, launched from its list) draws FreeRDP's shadow server into a canvas,
//! takes a click and keys, and an inventory RDP host keeps its settings; xrdp's
//! desktop follows the tab's size and shares the clipboard with the app's.

use std::process::{Command, Stdio};

use portcullis_lab::rdp::{
    RDP_PASSWORD, RDP_USER, on_display, set_root, start_shadow_server, start_xrdp,
    wait_for_clipboard, xclip,
};
use portcullis_lab::webdriver::{ENTER, WebDriver};
use portcullis_lab::*;

use crate::desktop::visible;

/// JavaScript: whether the active canvas shows `rgb` (±10) at desktop point x,y.
fn canvas_shows(x: u32, y: u32, rgb: [u8; 3]) -> String {
    format!(
        "const c = document.querySelector('.panel.active canvas.desktop-canvas'); \
         if (!c || !c.width) return false; \
         const d = c.getContext('2d').getImageData({x}, {y}, 1, 1).data; \
         return Math.abs(d[0] - {}) <= 10 && Math.abs(d[1] - {}) <= 10 && Math.abs(d[2] - {}) <= 10;",
        rgb[0], rgb[1], rgb[2]
    )
}

/// Signs in to the gateway as alice, opens the granted host `host` from the
/// search box as `user` (`None`: the gateway signs in, nothing is asked), and
/// waits for the certificate question.
fn open_granted_host(driver: &WebDriver, gateway_url: &str, host: &str, user: Option<&str>) {
    driver.wait("#search");
    driver.click("#sign-in");
    driver.type_into("#dialog input[name=url]", gateway_url);
    driver.type_into("#dialog input[name=user]", "alice");
    driver.type_into("#dialog input[name=password]", PASSWORD);
    driver.click("#sign-in-submit");
    driver.wait("#dialog code.fingerprint");
    driver.click("#sign-in-submit");
    driver.wait(&format!(".host.gateway[data-host='{host}']"));
    driver.type_into("#search", host);
    driver.type_into("#search", ENTER);
    if let Some(user) = user {
        driver.clear("#dialog input[name=answer]");
        driver.type_into("#dialog input[name=answer]", &format!("{user}{ENTER}"));
    }
    driver.wait("#dialog[open] button[data-choice=accept_and_remember]");
}

#[test]
fn desktop_window_draws_an_rdp_host_and_sends_it_input() {
    let Some(mut lab) = Lab::lab_or_skip("desktop_window_draws_an_rdp_host_and_sends_it_input")
    else {
        return;
    };
    for tool in ["xsetroot", "xterm"] {
        require_tool(tool);
    }
    let display = start_shadow_server(&mut lab);
    set_root(&display, [0x1e, 0x90, 0xff]);
    // A terminal in the middle of the remote desktop writes a line it is typed.
    let typed = lab.path("rdp/typed-e2e.txt");
    let script = format!("read line; printf '%s' \"$line\" > {}", typed.display());
    let terminal = Command::new("xterm")
        .args(["-geometry", "40x8+380+340", "-bg", "black", "-fg", "white"])
        .args(["-e", "sh", "-c", &script])
        .env("DISPLAY", &display)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("xterm");
    lab.adopt(terminal);

    let desktop = Desktop::start(&lab, "e2e-rdp");
    let window = desktop.window();
    let gateway_url = lab.gateway_url.clone();
    let typed_file = typed.clone();
    let root = display.clone();
    in_netns(&lab.out.clone(), move || {
        let driver = window.open();
        let shot = |name: &str| driver.shot(name);
        // The help-desk path: the granted RDP host, by name, as the RDP user.
        open_granted_host(&driver, &gateway_url, "rdp1", Some(RDP_USER));
        let question = driver.text("#dialog");
        assert!(question.contains("RDP server certificate"), "{question}");
        shot("15-rdp-certificate");
        driver.click("#dialog button[data-choice=accept_and_remember]");
        // A wrong password: asked again, and the server's refusal is not lost.
        driver.wait("#dialog[open] input[name=answer]");
        driver.type_into(
            "#dialog input[name=answer]",
            &format!("not-the-rdp-password{ENTER}"),
        );
        driver.wait_until(
            "the second password question",
            "const d = document.querySelector('#dialog[open]'); \
             return !!d && !!d.querySelector('input[name=answer]') && d.querySelector('input[name=answer]').value === '';",
        );
        driver.type_into(
            "#dialog input[name=answer]",
            &format!("{RDP_PASSWORD}{ENTER}"),
        );
        driver.wait(".tab.connected[data-title='rdp1']");
        driver.wait_until(
            "the blue remote desktop in the canvas",
            &canvas_shows(20, 20, [0x1e, 0x90, 0xff]),
        );
        let size = driver
            .script(
                "const c = document.querySelector('.panel.active canvas.desktop-canvas'); \
                 return [c.width, c.height];",
            )
            .unwrap();
        assert_eq!(size, serde_json::json!([1024, 768]));
        driver.wait_until("the remote terminal", &canvas_shows(512, 390, [0, 0, 0]));
        shot("16-rdp-desktop");

        // A change on the server shows without asking.
        set_root(&root, [0xff, 0x80, 0x00]);
        driver.wait_until(
            "the orange remote desktop",
            &canvas_shows(20, 20, [0xff, 0x80, 0x00]),
        );

        // A click in the middle of the canvas lands on the remote terminal, and
        // keys typed into the canvas reach it.
        driver.click(".panel.active canvas.desktop-canvas");
        driver.type_into(
            ".panel.active canvas.desktop-canvas",
            &format!("typed-through-the-window{ENTER}"),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&typed_file)
                && !text.is_empty()
            {
                assert_eq!(text, "typed-through-the-window");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the keys never reached the remote terminal"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        shot("17-rdp-typed");
        driver.click(".panel.active .toggle-fit");
        driver.wait_until(
            "the 1:1 view",
            "const c = document.querySelector('.panel.active canvas.desktop-canvas'); \
             return c.style.width === '1024px';",
        );
        driver.click(".tab.active .tab-close");
        driver.wait_until(
            "the tab to close",
            "return !document.querySelector(\".tab[data-title='rdp1']\");",
        );

        // An inventory RDP host: the protocol brings port 3389 and the display
        // settings; routed through the signed-in gateway, its pinned certificate
        // is trusted without asking.
        driver.click("#add-host");
        driver.type_into("#dialog input[name=name]", "lab-desktop");
        driver.type_into("#dialog input[name=address]", "rdp1");
        driver
            .script(
                "const p = document.querySelector('#dialog select[name=protocol]'); \
                 p.value = 'rdp'; p.dispatchEvent(new Event('change')); \
                 const via = document.querySelector('#dialog select[name=via]'); \
                 via.value = [...via.options].find(o => o.value.startsWith('gateway:')).value; \
                 via.dispatchEvent(new Event('change')); \
                 document.querySelector('#dialog select[name=resolution]').value = '1280x720';",
            )
            .expect("choose RDP, the gateway and a resolution");
        let port = driver
            .script("return document.querySelector('#dialog input[name=port]').value;")
            .unwrap();
        assert_eq!(port, serde_json::json!("3389"));
        assert!(
            !visible(&driver, "#dialog .rdp-only.hidden"),
            "the RDP settings are hidden"
        );
        driver.type_into("#dialog input[name=user]", RDP_USER);
        shot("18-rdp-host-dialog");
        driver.click("#host-save");
        driver.wait(".host[data-host='lab-desktop']");
        driver.clear("#search");
        driver.type_into("#search", "lab-desktop");
        driver.type_into("#search", ENTER);
        driver.wait("#dialog[open] input[name=answer]");
        let question = driver.text("#dialog");
        assert!(question.contains("rdplab"), "{question}");
        driver.type_into(
            "#dialog input[name=answer]",
            &format!("{RDP_PASSWORD}{ENTER}"),
        );
        driver.wait(".tab.connected[data-title='lab-desktop']");
        driver.wait_until(
            "the remote desktop in the inventory host's tab",
            &canvas_shows(20, 20, [0xff, 0x80, 0x00]),
        );
        driver.quit();
    });
    let audit = lab.audit();
    assert!(
        audit
            .iter()
            .any(|e| e["event"] == "tunnel_open" && e["host"] == "rdp1" && e["user"] == "alice"),
        "no tunnel to rdp1 in the audit"
    );
}

/// xrdp in the window: the desktop follows the tab's size (display control),
/// and clipboard text goes between the app's OS clipboard and the server's,
/// until the toolbar pauses it.
#[test]
fn desktop_window_fits_xrdp_to_the_tab_and_shares_the_clipboard() {
    let Some(mut lab) =
        Lab::lab_or_skip("desktop_window_fits_xrdp_to_the_tab_and_shares_the_clipboard")
    else {
        return;
    };
    for tool in ["xclip", "xrandr"] {
        require_tool(tool);
    }
    start_xrdp(&mut lab);
    // The help-desk case: the session's password lives in the gateway's vault,
    // so the app signs in with it and nobody types or sees it.
    lab.set_secret("rdp2", "password", SSH_USER, SSH_USER_PASSWORD);
    let desktop = Desktop::start(&lab, "e2e-xrdp");
    let window = desktop.window();
    let gateway_url = lab.gateway_url.clone();
    let app_display = desktop.display.clone();
    let session_home = lab.path("pclab-home");
    in_netns(&lab.out.clone(), move || {
        let driver = window.open();
        let shot = |name: &str| driver.shot(name);
        driver.wait("#search");
        open_granted_host(&driver, &gateway_url, "rdp2", None);
        assert!(visible(
            &driver,
            ".host.gateway[data-host='rdp2'] .badge.gateway-credential"
        ));
        driver.click("#dialog button[data-choice=accept_and_remember]");
        driver.wait(".tab.connected[data-title='rdp2']");
        assert!(
            !visible(&driver, "#dialog[open]"),
            "a password was asked for a host the gateway signs in to"
        );
        driver.wait_until(
            "the xrdp desktop in the canvas",
            &canvas_shows(20, 20, [0x2e, 0x8b, 0x57]),
        );
        // The session's own X display (its startup script wrote it down).
        let display = std::fs::read_to_string(session_home.join("display"))
            .expect("the session wrote its display")
            .trim()
            .to_owned();
        let auth = session_home.join(".Xauthority");

        // A smaller window: the server's desktop takes the tab's new size.
        let before = driver
            .script(
                "const c = document.querySelector('.panel.active canvas.desktop-canvas'); \
                 return c.width;",
            )
            .unwrap();
        let fits = format!(
            "const c = document.querySelector('.panel.active canvas.desktop-canvas'); \
             const box = document.querySelector('.panel.active .desktop').getBoundingClientRect(); \
             const w = Math.floor(box.width) - (Math.floor(box.width) % 2); \
             return c.width !== {before} && c.width === w && c.height === Math.floor(box.height) \
               ? [c.width, c.height] : false;"
        );
        driver.set_window_size(960, 640);
        let size = driver.wait_until("the remote desktop resized to the tab", &fits);
        let (width, height) = (size[0].as_u64().unwrap(), size[1].as_u64().unwrap());
        driver.wait_until(
            "the resized desktop drawn",
            &canvas_shows(width as u32 - 10, height as u32 - 10, [0x2e, 0x8b, 0x57]),
        );
        let screen = on_display(&display, &auth, "xrandr", &["--current"]);
        let screen = String::from_utf8_lossy(&screen.stdout).to_string();
        assert!(
            screen.contains(&format!("current {width} x {height}")),
            "the server's screen is not {width}x{height}: {screen}"
        );
        shot("19-rdp-resized-to-the-tab");

        // Copied in another program of this desktop, pasted on the server:
        // the text crosses when the person comes back to the remote desktop.
        xclip(
            &app_display,
            None,
            &["-selection", "clipboard", "-i"],
            Some("copied beside the app ✓"),
        );
        driver.click("#search");
        driver.click(".panel.active canvas.desktop-canvas");
        wait_for_clipboard(&display, Some(&auth), "copied beside the app ✓");
        // Copied on the server: this desktop's clipboard has it.
        xclip(
            &display,
            Some(&auth),
            &["-selection", "clipboard", "-i"],
            Some("copied on the server ✓"),
        );
        wait_for_clipboard(&app_display, None, "copied on the server ✓");

        // Paused from the toolbar: nothing crosses any more.
        driver.click(".panel.active .toggle-clipboard");
        driver.wait_until(
            "the paused clipboard",
            "return document.querySelector('.panel.active .toggle-clipboard').textContent === 'Clipboard: off';",
        );
        shot("20-rdp-clipboard-paused");
        xclip(
            &display,
            Some(&auth),
            &["-selection", "clipboard", "-i"],
            Some("kept on the server"),
        );
        // The server announces its new text at once; give it time to (not) arrive.
        std::thread::sleep(std::time::Duration::from_secs(3));
        let local = xclip(&app_display, None, &["-selection", "clipboard", "-o"], None);
        assert_eq!(
            String::from_utf8_lossy(&local.stdout),
            "copied on the server ✓",
            "text crossed while sharing was paused"
        );

        // Reconnect from the toolbar: a new session in the same tab, at the
        // tab's size (the certificate is pinned now; the gateway releases its
        // password again for the new session, and nothing is asked).
        driver.click(".panel.active .reconnect-now");
        driver.wait(".tab.connected[data-title='rdp2']");
        assert!(
            !visible(&driver, "#dialog[open]"),
            "a question on reconnecting"
        );
        driver.wait_until(
            "the desktop again, at the tab's size",
            "const c = document.querySelector('.panel.active canvas.desktop-canvas'); \
             const box = document.querySelector('.panel.active .desktop').getBoundingClientRect(); \
             return Math.abs(c.width - Math.floor(box.width)) <= 1 && c.height === Math.floor(box.height);",
        );
        driver.wait_until(
            "the xrdp desktop after reconnecting",
            &canvas_shows(20, 20, [0x2e, 0x8b, 0x57]),
        );
        assert_eq!(
            driver
                .script("return document.querySelectorAll('.tab').length;")
                .unwrap(),
            serde_json::json!(1),
            "one tab, reconnected in place"
        );
        driver.quit();
    });
    // One release per session, to alice, and the password nowhere the app writes.
    let releases = lab
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "secret_released" && e["user"] == "alice" && e["host"] == "rdp2")
        .count();
    assert_eq!(
        releases, 2,
        "a release for the session and one for its reconnection"
    );
    for file in ["inventory.db", "inventory.db-wal", "secrets.vault"] {
        let bytes = std::fs::read(desktop.home.join(file)).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SSH_USER_PASSWORD),
            "the vault's password is readable in {file}"
        );
    }
}
