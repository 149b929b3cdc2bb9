//! RDP through the gateway with FreeRDP's own client (`xfreerdp +auth-only`):
//! the private RDP server is reached only through a Portcullis tunnel, and NLA
//! tells a right password from a wrong one end to end.

use std::process::Command;

use portcullis_lab::rdp::{RDP_PASSWORD, RDP_USER, start_display, start_shadow_server};
use portcullis_lab::*;

#[test]
fn rdp_nla_reaches_the_private_shadow_server_only_through_the_gateway() {
    let Some(mut lab) =
        Lab::lab_or_skip("rdp_nla_reaches_the_private_shadow_server_only_through_the_gateway")
    else {
        return;
    };
    require_tool("xfreerdp");
    start_shadow_server(&mut lab);
    // xfreerdp wants a display even to authenticate only.
    let client_display = start_display(&mut lab, "800x600x24");
    let client_home = lab.path("rdp-client-home");
    std::fs::create_dir_all(&client_home).unwrap();
    lab.login("alice");
    let (listener, port) = lab.tunnel_listener("alice", "rdp1");
    lab.adopt(listener);
    let auth_only = |target: &str, password: &str| {
        Command::new("ip")
            .args(["netns", "exec", &lab.out, "xfreerdp"])
            .arg(format!("/v:{target}"))
            .arg(format!("/u:{RDP_USER}"))
            .arg(format!("/p:{password}"))
            .args(["/sec:nla", "/cert:ignore", "+auth-only", "/timeout:10000"])
            .env("DISPLAY", &client_display)
            .env("HOME", &client_home)
            .output()
            .expect("xfreerdp")
    };
    let through = format!("127.0.0.1:{port}");
    let good = auth_only(&through, RDP_PASSWORD);
    assert!(
        good.status.success(),
        "NLA through the tunnel failed: {}",
        String::from_utf8_lossy(&good.stderr)
    );
    let bad = auth_only(&through, "not-the-rdp-password");
    assert!(!bad.status.success(), "a wrong password was accepted");
    // It got as far as the server (TCP through the tunnel) and was refused there.
    let said = |out: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    assert!(
        !said(&bad).contains("ERRCONNECT_CONNECT_FAILED"),
        "{}",
        said(&bad)
    );
    // The private address is not reachable from the outside namespace directly.
    let direct = auth_only(&format!("{VNET_IP}:3389"), RDP_PASSWORD);
    assert!(
        !direct.status.success(),
        "the private RDP server answered directly"
    );
    assert!(
        said(&direct).contains("ERRCONNECT_CONNECT_FAILED"),
        "{}",
        said(&direct)
    );
    assert!(
        lab.audit()
            .iter()
            .any(|e| e["event"] == "tunnel_open" && e["host"] == "rdp1" && e["user"] == "alice"),
        "no tunnel_open for rdp1 in the audit"
    );
}
