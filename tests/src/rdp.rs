//! Real RDP servers in the lab's private namespace (groundwork for the RDP issue):
//! FreeRDP's shadow server on an Xvfb display of its own, with NLA against a SAM
//! file, catalogued at the gateway as `rdp1` and granted to alice (tag `lab`).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::{Lab, VNET_IP, in_netns, require_tool};

pub const RDP_USER: &str = "rdplab";
pub const RDP_PASSWORD: &str = "lab-rdp-password-1";
pub const RDP_PORT: u16 = 3389;

/// An Xvfb display started by the lab (stopped with it); returns ":N".
pub fn start_display(lab: &mut Lab, geometry: &str) -> String {
    let (xvfb, display) = crate::start_xvfb(geometry);
    lab.adopt(xvfb);
    display
}

/// Whether `address` accepts a TCP connection from inside `ns`, now.
fn port_open(ns: &str, address: std::net::SocketAddr) -> bool {
    in_netns(ns, move || {
        std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
    })
}

/// Starts `freerdp-shadow-cli` in the private namespace on `VNET_IP:3389`, sharing
/// a fresh 1024×768 Xvfb display, and catalogues it at the gateway as `rdp1`.
/// Returns the display the server shows.
pub fn start_shadow_server(lab: &mut Lab) -> String {
    start_shadow_server_sized(lab, "1024x768x24")
}

/// [`start_shadow_server`] on a display of `geometry` (`WxHxDEPTH`).
pub fn start_shadow_server_sized(lab: &mut Lab, geometry: &str) -> String {
    for tool in ["freerdp-shadow-cli", "winpr-hash"] {
        require_tool(tool);
    }
    let display = start_display(lab, geometry);
    let dir = lab.path("rdp");
    std::fs::create_dir_all(&dir).expect("rdp dir");
    let sam = Command::new("winpr-hash")
        .args(["-u", RDP_USER, "-p", RDP_PASSWORD, "-f", "sam"])
        .output()
        .expect("winpr-hash");
    assert!(sam.status.success(), "winpr-hash failed");
    let sam_file = dir.join("sam");
    std::fs::write(&sam_file, &sam.stdout).expect("SAM file");
    let log_path = dir.join("shadow.log");
    let address: std::net::SocketAddr = format!("{VNET_IP}:{RDP_PORT}").parse().expect("address");
    // Under load the shadow server sometimes exits before it listens (seen with
    // the window tests beside it): start it again, at most three times, and show
    // its log if it never comes up.
    for attempt in 1..=3 {
        let log = std::fs::File::create(&log_path).expect("shadow log");
        let mut server = Command::new("ip")
            .args(["netns", "exec", &lab.vnet, "freerdp-shadow-cli"])
            .arg(format!("/port:{RDP_PORT}"))
            .arg(format!("/bind-address:{VNET_IP}"))
            .args(["+auth", "/sec:nla"])
            .arg(format!("/sam-file:{}", sam_file.display()))
            // It writes its certificate under ~/.config/freerdp.
            .env("HOME", &dir)
            .env("DISPLAY", &display)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start freerdp-shadow-cli");
        let deadline = Instant::now() + Duration::from_secs(20);
        let listening = loop {
            if port_open(&lab.vnet, address) {
                break true;
            }
            if Instant::now() > deadline || server.try_wait().ok().flatten().is_some() {
                break false;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if listening {
            lab.adopt(server);
            break;
        }
        let _ = server.kill();
        let _ = server.wait();
        assert!(
            attempt < 3,
            "the FreeRDP shadow server did not start listening on {address}: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }
    let port = RDP_PORT.to_string();
    let added = lab.gw(
        &[
            "host",
            "add",
            "rdp1",
            "--address",
            VNET_IP,
            "--port",
            &port,
            "--protocol",
            "rdp",
            "--tag",
            "lab",
        ],
        None,
    );
    assert!(added.status.success(), "host add rdp1 failed");
    display
}
