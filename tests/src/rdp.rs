//! Real RDP servers in the lab's private namespace (groundwork for the RDP issue):
//! FreeRDP's shadow server on an Xvfb display of its own, with NLA against a SAM
//! file, catalogued at the gateway as `rdp1` and granted to alice (tag `lab`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::{Lab, VNET_IP, require_tool, wait_for_port};

pub const RDP_USER: &str = "rdplab";
pub const RDP_PASSWORD: &str = "lab-rdp-password-1";
pub const RDP_PORT: u16 = 3389;

/// An Xvfb display started by the lab (stopped with it); returns ":N".
pub fn start_xvfb(lab: &mut Lab, geometry: &str) -> String {
    require_tool("Xvfb");
    let mut xvfb = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            geometry,
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start Xvfb");
    let mut line = String::new();
    BufReader::new(xvfb.stdout.take().expect("Xvfb stdout"))
        .read_line(&mut line)
        .expect("Xvfb display number");
    lab.adopt(xvfb);
    format!(":{}", line.trim())
}

/// Starts `freerdp-shadow-cli` in the private namespace on `VNET_IP:3389`, sharing
/// a fresh 1024×768 Xvfb display, and catalogues it at the gateway as `rdp1`.
/// Returns the display the server shows.
pub fn start_shadow_server(lab: &mut Lab) -> String {
    for tool in ["freerdp-shadow-cli", "winpr-hash"] {
        require_tool(tool);
    }
    let display = start_xvfb(lab, "1024x768x24");
    let dir = lab.path("rdp");
    std::fs::create_dir_all(&dir).expect("rdp dir");
    let sam = Command::new("winpr-hash")
        .args(["-u", RDP_USER, "-p", RDP_PASSWORD, "-f", "sam"])
        .output()
        .expect("winpr-hash");
    assert!(sam.status.success(), "winpr-hash failed");
    let sam_file = dir.join("sam");
    std::fs::write(&sam_file, &sam.stdout).expect("SAM file");
    let log = std::fs::File::create(dir.join("shadow.log")).expect("shadow log");
    let server = Command::new("ip")
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
    lab.adopt(server);
    wait_for_port(
        &lab.vnet,
        format!("{VNET_IP}:{RDP_PORT}").parse().expect("address"),
        "the FreeRDP shadow server",
    );
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
