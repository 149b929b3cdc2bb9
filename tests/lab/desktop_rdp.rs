//! An RDP desktop in the real window: the help-desk path (a host the gateway
//! grants, launched from its list) draws FreeRDP's shadow server into a canvas,
//! takes a click and keys, and an inventory RDP host keeps its settings.

use std::process::{Command, Stdio};

use portcullis_lab::rdp::{RDP_PASSWORD, RDP_USER, set_root, start_shadow_server};
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
    let app = bin("portcullis-desktop");
    let driver_address = desktop.driver.clone();
    let artifacts = desktop.artifacts.clone();
    let gateway_url = lab.gateway_url.clone();
    let typed_file = typed.clone();
    let root = display.clone();
    in_netns(&lab.out.clone(), move || {
        let driver = WebDriver::start(&driver_address, &app).expect("a WebDriver session");
        let shot = |name: &str| driver.screenshot(&artifacts.join(format!("{name}.png")));
        driver.wait("#search");
        driver.click("#sign-in");
        driver.type_into("#dialog input[name=url]", &gateway_url);
        driver.type_into("#dialog input[name=user]", "alice");
        driver.type_into("#dialog input[name=password]", PASSWORD);
        driver.click("#sign-in-submit");
        driver.wait("#dialog code.fingerprint");
        driver.click("#sign-in-submit");
        driver.wait(".host.gateway[data-host='rdp1']");

        // The help-desk path: the granted RDP host, by name, as the RDP user.
        driver.type_into("#search", "rdp1");
        driver.type_into("#search", ENTER);
        driver.clear("#dialog input[name=answer]");
        driver.type_into("#dialog input[name=answer]", &format!("{RDP_USER}{ENTER}"));
        driver.wait("#dialog[open] button[data-choice=accept_and_remember]");
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
