//! A real OS keychain for tests: a private D-Bus session bus with gnome-keyring's
//! Secret Service on it, its "login" keyring created and unlocked with a known
//! password. Both daemons run in the foreground as children and stop on drop.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::require_tool;

const BUS_CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>ADDRESS</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#;

pub struct Keyring {
    /// The bus address to give clients (`DBUS_SESSION_BUS_ADDRESS`).
    pub address: String,
    bus: Child,
    keyring: Child,
    log: std::path::PathBuf,
}

impl Keyring {
    /// Starts both daemons with their state under `dir`.
    pub fn start(dir: &Path) -> Keyring {
        for tool in ["dbus-daemon", "gnome-keyring-daemon", "dbus-send"] {
            require_tool(tool);
        }
        let runtime = dir.join("run");
        std::fs::create_dir_all(&runtime).expect("keyring runtime dir");
        let address = format!("unix:path={}", dir.join("bus").display());
        // Debian's session.conf would let the bus *activate* a second
        // gnome-keyring (without our unlocked login keyring) on the first call:
        // a bus of our own has no activation at all.
        let config = dir.join("bus.conf");
        std::fs::write(&config, BUS_CONFIG.replace("ADDRESS", &address)).expect("bus config");
        let mut bus = Command::new("dbus-daemon")
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .arg(format!("--config-file={}", config.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        // The daemon prints its address once it listens.
        let mut line = String::new();
        BufReader::new(bus.stdout.take().expect("dbus stdout"))
            .read_line(&mut line)
            .expect("dbus-daemon address");
        assert!(line.starts_with("unix:"), "dbus-daemon printed {line:?}");
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("keyring.log")).expect("keyring log"))
            .spawn()
            .expect("start gnome-keyring-daemon");
        // `--unlock` reads the login keyring's password from stdin until EOF.
        let mut stdin = keyring.stdin.take().expect("keyring stdin");
        stdin
            .write_all(b"lab-keyring-password")
            .expect("keyring password");
        drop(stdin);
        let keyring = Keyring {
            address,
            bus,
            keyring,
            log: dir.join("keyring.log"),
        };
        keyring.wait_for_service();
        keyring
    }

    fn wait_for_service(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = Command::new("dbus-send")
                .arg(format!("--bus={}", self.address))
                .args([
                    "--print-reply",
                    "--dest=org.freedesktop.secrets",
                    "/org/freedesktop/secrets",
                    "org.freedesktop.Secret.Service.ReadAlias",
                    "string:default",
                ])
                .output()
                .expect("dbus-send");
            if out.status.success() && String::from_utf8_lossy(&out.stdout).contains("/login") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "gnome-keyring's Secret Service did not come up: {}; its log: {}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        for child in [&mut self.keyring, &mut self.bus] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
