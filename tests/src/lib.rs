//! The namespace lab: three network namespaces in which "private" is literally private.
//!
//! ```text
//!  outside (client)          edge (gateway)                vnet (private hosts)
//!  10.201.0.2 ── veth ── 10.201.0.1 | 10.202.0.1 ── veth ── 10.202.0.2  sshd :22, echo :7
//! ```
//! Forwarding is off in every new namespace and outside has no route to vnet, so the
//! only way in is the gateway, which listens on one TLS port in edge.
//!
//! Everything here needs root. Only addresses inside the namespaces made here are used.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod keyring;
pub mod rdp;
pub mod webdriver;
pub mod x11;

use anyhow::{Context, bail};

pub const OUT_IP: &str = "10.201.0.2";
pub const EDGE_OUT_IP: &str = "10.201.0.1";
pub const EDGE_VNET_IP: &str = "10.202.0.1";
pub const VNET_IP: &str = "10.202.0.2";
pub const GATEWAY_PORT: u16 = 443;
pub const ECHO_PORT: u16 = 7;
pub const PASSWORD: &str = "lab-password-1";
/// OpenSSH jump host in the edge namespace, on an outside address of its own (a
/// jump host is another machine; the gateway's address shows only its TLS port).
pub const JUMP_IP: &str = "10.201.0.3";
pub const JUMP_PORT: u16 = 2222;
/// A password user that exists only inside the vnet namespace (its own
/// /etc/passwd, /etc/shadow and PAM files, bind-mounted by `ip netns exec`).
pub const SSH_USER: &str = "pclab";
pub const SSH_USER_PASSWORD: &str = "lab-ssh-password-1";
/// The passphrase of `ssh/client_pass_ed25519`.
pub const KEY_PASSPHRASE: &str = "lab-passphrase-1";
/// `openssl req` arguments for a new, unencrypted P-256 key.
pub const OPENSSL_NEW_P256_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// True when the lab can run. Without root it says so loudly; in CI it fails instead,
/// because CI must always run the lab.
pub fn lab_available(test: &str) -> bool {
    // SAFETY-free: geteuid has no preconditions; libc exposes it as unsafe only by form.
    #[allow(unsafe_code)]
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("LAB TEST {test} NEEDS ROOT and CI must run it: run the tests as root");
    }
    eprintln!(
        "\n!!!!!!!! LAB TEST {test} WAS NOT RUN: it needs root (network namespaces, sshd). \
         Run `cargo xtask test` as root to run it. !!!!!!!!\n"
    );
    false
}

/// Runs `f` on a thread inside the named network namespace: sockets it opens live there.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        use std::os::fd::AsRawFd;
        // SAFETY: setns on a valid namespace fd only changes this thread's network
        // namespace; the thread is ours and ends with `f`.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns({path}): {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread panicked")
}

/// Runs an async block on a current-thread runtime inside the namespace.
pub fn block_on_in<T: Send + 'static, F>(ns: &str, make: impl FnOnce() -> F + Send + 'static) -> T
where
    F: std::future::Future<Output = T>,
{
    in_netns(ns, move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(make())
    })
}

fn run(cmd: &mut Command) -> anyhow::Result<Output> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    run(Command::new("ip").args(args)).map(|_| ())
}

/// Where cargo put the workspace's binaries (`target/debug` next to `deps/`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PORTCULLIS_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace binaries first (`cargo build --workspace --bins`, which `cargo xtask test` does)",
        path.display()
    );
    path
}

pub fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).exists()))
        .unwrap_or(false)
        || Path::new(tool).exists();
    assert!(
        found,
        "{tool} is not installed: `cargo xtask test` installs what the lab needs"
    );
}

/// Waits until a TCP port accepts connections inside a namespace.
pub fn wait_for_port(ns: &str, addr: SocketAddr, what: &str) {
    let ok = in_netns(ns, move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    });
    assert!(ok, "{what} did not start listening on {addr}");
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Namespaces (and their processes) left by a lab whose process was killed before
/// it could clean up: names carry the creating pid, so a dead pid marks them stale.
fn remove_stale_namespaces() {
    // Files bind-mounted into namespaces of labs that died without cleaning up.
    if let Ok(dir) = std::fs::read_dir("/etc/netns") {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix("pcl-")
                .and_then(|rest| rest.split('x').next());
            if let Some(pid) = pid
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix("pcl-")
            .and_then(|rest| rest.split('x').next())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(pids) = Command::new("ip").args(["netns", "pids", name]).output() {
            for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                let _ = Command::new("kill").arg(pid).status();
            }
        }
        eprintln!("lab: removing stale namespace {name}");
        let _ = Command::new("ip").args(["netns", "del", name]).status();
        let _ = std::fs::remove_dir_all(netns_etc(name));
    }
}

pub struct Lab {
    pub out: String,
    pub edge: String,
    pub vnet: String,
    pub dir: tempfile::TempDir,
    pub fingerprint: String,
    pub gateway_url: String,
    /// With `start_with_ca`: the lab CA that signed the gateway's certificate.
    pub ca_file: Option<PathBuf>,
    gateway: Option<Child>,
    children: Vec<Child>,
    /// Kept until the lab's processes are gone (turns on shared resources).
    held: Vec<Box<dyn std::any::Any + Send>>,
}

impl Lab {
    /// Namespaces, sshd and the echo server in vnet, and a configured gateway in edge.
    pub fn start() -> Lab {
        Lab::try_start(false).unwrap_or_else(|e| panic!("cannot start the lab: {e:#}"))
    }

    /// Like `start`, but the gateway uses a certificate from a lab CA (made with the
    /// openssl command), given to `init` with `--cert` and `--key`.
    pub fn start_with_ca() -> Lab {
        Lab::try_start(true).unwrap_or_else(|e| panic!("cannot start the lab: {e:#}"))
    }

    /// `start`, or `None` after saying loudly that `test` cannot run here (no root).
    pub fn lab_or_skip(test: &str) -> Option<Lab> {
        lab_available(test).then(Lab::start)
    }

    /// `start_with_ca`, or `None` after saying loudly that `test` cannot run here.
    pub fn lab_with_ca_or_skip(test: &str) -> Option<Lab> {
        lab_available(test).then(Lab::start_with_ca)
    }

    fn try_start(with_ca: bool) -> anyhow::Result<Lab> {
        for tool in ["ip", "ssh", "ssh-keygen", "nmap", "/usr/sbin/sshd"] {
            require_tool(tool);
        }
        static CLEANUP: std::sync::Once = std::sync::Once::new();
        CLEANUP.call_once(remove_stale_namespaces);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        // The pid makes stale namespaces recognisable; "pa" + 7 digits + "x" + n stays
        // within the 15 bytes of an interface name.
        let tag = format!("{}x{n}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix("portcullis-lab-")
            .tempdir()?;
        let mut lab = Lab {
            out: format!("pcl-{tag}-out"),
            edge: format!("pcl-{tag}-edge"),
            vnet: format!("pcl-{tag}-vnet"),
            dir,
            fingerprint: String::new(),
            gateway_url: format!("https://{EDGE_OUT_IP}:{GATEWAY_PORT}"),
            ca_file: None,
            gateway: None,
            children: Vec::new(),
            held: Vec::new(),
        };
        for ns in [&lab.out, &lab.edge, &lab.vnet] {
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        // Interface names are at most 15 bytes.
        let (a, b, c, d) = (
            format!("pa{tag}"),
            format!("pb{tag}"),
            format!("pc{tag}"),
            format!("pd{tag}"),
        );
        ip(&[
            "link", "add", &a, "netns", &lab.out, "type", "veth", "peer", "name", &b, "netns",
            &lab.edge,
        ])?;
        ip(&[
            "link", "add", &c, "netns", &lab.edge, "type", "veth", "peer", "name", &d, "netns",
            &lab.vnet,
        ])?;
        for (ns, dev, addr) in [
            (&lab.out, &a, OUT_IP),
            (&lab.edge, &b, EDGE_OUT_IP),
            (&lab.edge, &b, JUMP_IP),
            (&lab.edge, &c, EDGE_VNET_IP),
            (&lab.vnet, &d, VNET_IP),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        lab.start_sshd()?;
        let echo = Command::new("ip")
            .args(["netns", "exec", &lab.vnet])
            .arg(bin("lab-echo"))
            .arg(format!("{VNET_IP}:{ECHO_PORT}"))
            .spawn()?;
        lab.children.push(echo);
        wait_for_port(
            &lab.vnet,
            format!("{VNET_IP}:{ECHO_PORT}").parse()?,
            "echo server",
        );
        let cert_and_key = if with_ca {
            Some(lab.make_ca_signed_cert()?)
        } else {
            None
        };
        lab.init_gateway(cert_and_key)?;
        lab.start_gateway();
        Ok(lab)
    }

    /// A CA and a server certificate for the gateway's outside address.
    fn make_ca_signed_cert(&mut self) -> anyhow::Result<(PathBuf, PathBuf)> {
        require_tool("openssl");
        let ca = self.path("ca");
        std::fs::create_dir_all(&ca)?;
        let p = |name: &str| ca.join(name).display().to_string();
        run(Command::new("openssl")
            .args(["req", "-x509"])
            .args(OPENSSL_NEW_P256_KEY)
            .args([
                "-keyout",
                &p("ca.key"),
                "-out",
                &p("ca.pem"),
                "-subj",
                "/CN=Portcullis Lab CA",
                "-days",
                "2",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]))?;
        run(Command::new("openssl")
            .args(["req"])
            .args(OPENSSL_NEW_P256_KEY)
            .args([
                "-keyout",
                &p("gateway.key"),
                "-out",
                &p("gateway.csr"),
                "-subj",
                &format!("/CN={EDGE_OUT_IP}"),
            ]))?;
        std::fs::write(
            ca.join("ext.cnf"),
            format!(
                "subjectAltName=IP:{EDGE_OUT_IP}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n"
            ),
        )?;
        run(Command::new("openssl").args([
            "x509",
            "-req",
            "-in",
            &p("gateway.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-out",
            &p("gateway.pem"),
            "-days",
            "2",
            "-extfile",
            &p("ext.cnf"),
        ]))?;
        self.ca_file = Some(ca.join("ca.pem"));
        Ok((ca.join("gateway.pem"), ca.join("gateway.key")))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn start_sshd(&mut self) -> anyhow::Result<()> {
        std::fs::create_dir_all("/run/sshd")?;
        let ssh = self.path("ssh");
        std::fs::create_dir_all(&ssh)?;
        for (key, kind, passphrase) in [
            ("host_ed25519", "ed25519", ""),
            ("jump_host_ed25519", "ed25519", ""),
            ("client_ed25519", "ed25519", ""),
            ("client_ecdsa", "ecdsa", ""),
            ("client_rsa", "rsa", ""),
            ("client_pass_ed25519", "ed25519", KEY_PASSPHRASE),
            ("host_ca", "ed25519", ""),
        ] {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", kind, "-N", passphrase, "-C", "lab", "-f"])
                .arg(ssh.join(key)))?;
        }
        let mut authorized = String::new();
        for key in [
            "client_ed25519",
            "client_ecdsa",
            "client_rsa",
            "client_pass_ed25519",
        ] {
            authorized.push_str(&std::fs::read_to_string(ssh.join(format!("{key}.pub")))?);
        }
        std::fs::write(ssh.join("authorized_keys"), authorized)?;
        let public = |name: &str| -> anyhow::Result<String> {
            let text = std::fs::read_to_string(ssh.join(format!("{name}.pub")))?;
            Ok(text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" "))
        };
        // The client knows the host by its catalog name (through the gateway, the
        // tunnel's local end is loopback) and by its address (through the jump host).
        std::fs::write(
            ssh.join("known_hosts"),
            format!(
                "vnet1,{VNET_IP} {}\n[{JUMP_IP}]:{JUMP_PORT} {}\n",
                public("host_ed25519")?,
                public("jump_host_ed25519")?
            ),
        )?;
        // A host certificate for the catalog name, offered to clients that ask for one.
        run(Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(ssh.join("host_ca"))
            .args(["-I", "vnet1-host", "-h", "-n", "vnet1", "-V", "-5m:+1d"])
            .arg(ssh.join("host_ed25519.pub")))?;
        self.make_vnet_user()?;
        let config = format!(
            "Port 22\nListenAddress {VNET_IP}\nHostKey {host}\nHostCertificate {host}-cert.pub\nPidFile {pid}\n\
             AuthorizedKeysFile {keys}\nPermitRootLogin prohibit-password\nPasswordAuthentication yes\n\
             KbdInteractiveAuthentication yes\nUsePAM yes\nStrictModes no\nAcceptEnv LANG PORTCULLIS_*\n\
             TrustedUserCAKeys {user_ca}\nRevokedKeys {revoked}\n",
            host = ssh.join("host_ed25519").display(),
            pid = ssh.join("sshd.pid").display(),
            keys = ssh.join("authorized_keys").display(),
            user_ca = ssh.join("user_ca.pub").display(),
            revoked = ssh.join("revoked.krl").display(),
        );
        // Empty until a test puts the gateway CA's key in it (sshd reads it at
        // each log-on).
        std::fs::write(ssh.join("user_ca.pub"), "")?;
        // An empty revocation list (OpenSSH's own); the gateway rewrites it on
        // `ssh-ca revoke`, and sshd reads it at each log-on.
        run(Command::new("ssh-keygen")
            .args(["-q", "-k", "-f"])
            .arg(ssh.join("revoked.krl"))
            .arg("/dev/null"))?;
        std::fs::write(ssh.join("sshd_config"), config)?;
        let vnet = self.vnet.clone();
        self.spawn_sshd(&vnet, "sshd")?;
        wait_for_port(&self.vnet, format!("{VNET_IP}:22").parse()?, "sshd");
        let jump = format!(
            "Port {JUMP_PORT}\nListenAddress {JUMP_IP}\nHostKey {host}\nPidFile {pid}\n\
             AuthorizedKeysFile {keys}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nAllowTcpForwarding yes\n",
            host = ssh.join("jump_host_ed25519").display(),
            pid = ssh.join("jump.pid").display(),
            keys = ssh.join("authorized_keys").display(),
        );
        std::fs::write(ssh.join("jump_config"), jump)?;
        let edge = self.edge.clone();
        self.spawn_sshd(&edge, "jump")?;
        wait_for_port(
            &self.edge,
            format!("{JUMP_IP}:{JUMP_PORT}").parse()?,
            "jump sshd",
        );
        Ok(())
    }

    /// Runs `/usr/sbin/sshd -f ssh/<name>_config` (or `sshd_config`) in `ns`, logging to ssh/<name>.log.
    fn spawn_sshd(&mut self, ns: &str, name: &str) -> anyhow::Result<()> {
        let ssh = self.path("ssh");
        let config = if name == "sshd" {
            ssh.join("sshd_config")
        } else {
            ssh.join(format!("{name}_config"))
        };
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "/usr/sbin/sshd", "-D", "-e", "-f"])
            .arg(config)
            .stderr(std::fs::File::create(ssh.join(format!("{name}.log")))?)
            .spawn()?;
        self.children.push(child);
        Ok(())
    }

    /// The password user, visible only in the vnet namespace: `ip netns exec`
    /// bind-mounts /etc/netns/<ns>/* over /etc, so the machine's own files are untouched.
    fn make_vnet_user(&self) -> anyhow::Result<()> {
        let etc = netns_etc(&self.vnet);
        std::fs::create_dir_all(etc.join("pam.d"))?;
        let hashed = run(Command::new("openssl").args(["passwd", "-6", SSH_USER_PASSWORD]))?;
        let hash = String::from_utf8_lossy(&hashed.stdout).trim().to_owned();
        let append = |file: &str, line: String| -> anyhow::Result<()> {
            let mut text = std::fs::read_to_string(Path::new("/etc").join(file))?;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&line);
            std::fs::write(etc.join(file), text)?;
            Ok(())
        };
        let home = self.path("pclab-home");
        std::fs::create_dir_all(&home)?;
        append(
            "passwd",
            format!("{SSH_USER}:x:4242:4242:lab:{}:/bin/sh\n", home.display()),
        )?;
        append("group", format!("{SSH_USER}:x:4242:\n"))?;
        append("shadow", format!("{SSH_USER}:{hash}:19000:0:99999:7:::\n"))?;
        std::fs::set_permissions(
            etc.join("shadow"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )?;
        std::fs::write(
            etc.join("pam.d/sshd"),
            "auth required pam_unix.so\naccount required pam_unix.so\n\
             session required pam_unix.so\npassword required pam_unix.so\n",
        )?;
        Ok(())
    }

    /// An ssh-agent holding the given keys of ssh/ (stopped with the lab).
    pub fn start_agent(&mut self, keys: &[&str]) -> PathBuf {
        let socket = self.path("agent.sock");
        let child = Command::new("ssh-agent")
            .args(["-D", "-a"])
            .arg(&socket)
            .stdout(Stdio::null())
            .spawn()
            .expect("start ssh-agent");
        self.children.push(child);
        for _ in 0..100 {
            if socket.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        for key in keys {
            let out = Command::new("ssh-add")
                .arg(self.path("ssh").join(key))
                .env("SSH_AUTH_SOCK", &socket)
                .output()
                .expect("ssh-add");
            assert!(
                out.status.success(),
                "ssh-add {key}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        socket
    }

    /// An OpenSSH client config (`ssh -F`) that logs in as root with the lab key and
    /// trusts exactly the lab's host keys: options given with -o do not reach a
    /// ProxyJump hop, a config file does.
    pub fn openssh_jump_config(&self) -> PathBuf {
        let ssh = self.path("ssh");
        let config = self.path("ssh_jump_config");
        std::fs::write(
            &config,
            format!(
                "Host *\n  User root\n  IdentityFile {key}\n  IdentitiesOnly yes\n  BatchMode yes\n  \
                 StrictHostKeyChecking yes\n  UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n",
                key = ssh.join("client_ed25519").display(),
                known = ssh.join("known_hosts").display(),
            ),
        )
        .expect("write the ssh config");
        config
    }

    /// Kills every sshd in the vnet namespace, sessions included: a host going away.
    pub fn kill_vnet_sshd(&self) {
        kill_netns_processes(&self.vnet, &["sshd"]);
    }

    pub fn gateway_config(&self) -> PathBuf {
        self.path("gw/gateway.toml")
    }

    /// Runs `portcullis-gateway --config <lab config> ARGS` (admin commands need no namespace).
    pub fn gw(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(bin("portcullis-gateway"));
        cmd.arg("--config").arg(self.gateway_config()).args(args);
        let out = pipe(cmd, stdin);
        assert!(
            out.status.success(),
            "portcullis-gateway {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn init_gateway(&mut self, cert_and_key: Option<(PathBuf, PathBuf)>) -> anyhow::Result<()> {
        let mut init = Command::new(bin("portcullis-gateway"));
        init.args([
            "init",
            "--dir",
            &self.path("gw").display().to_string(),
            "--hostname",
            EDGE_OUT_IP,
            "--listen",
            &format!("0.0.0.0:{GATEWAY_PORT}"),
        ]);
        if let Some((cert, key)) = cert_and_key {
            init.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        let out = run(&mut init)?;
        let printed = String::from_utf8_lossy(&out.stdout).to_string();
        // Short limits so the lab sees them act.
        let config = std::fs::read_to_string(self.gateway_config())?
            .replace(
                "handshake_timeout_seconds = 10",
                "handshake_timeout_seconds = 2",
            )
            .replace("shutdown_drain_seconds = 30", "shutdown_drain_seconds = 1");
        // The vault key, outside the gateway's folder (the SSH CA and host
        // secrets are sealed with it).
        let vault_key = self.path("vault.key");
        run(Command::new(bin("portcullis-gateway"))
            .args(["secret", "new-key"])
            .arg(&vault_key))?;
        let config = config
            .replace(
                "# key_file = \"/etc/portcullis/vault.key\"",
                &format!("key_file = {:?}", vault_key.display().to_string()),
            )
            // Certificates live a minute here, so a test can watch one expire;
            // revocations go straight to the list the lab's sshd reads.
            .replace("validity_minutes = 5", "validity_minutes = 1")
            .replace(
                "# revoked_keys_file = \"/etc/portcullis/revoked_keys.krl\"",
                &format!(
                    "revoked_keys_file = {:?}",
                    self.path("ssh/revoked.krl").display().to_string()
                ),
            );
        std::fs::write(self.gateway_config(), config)?;
        self.fingerprint = String::from_utf8(self.gw(&["fingerprint"], None).stdout)?
            .trim()
            .to_owned();
        assert!(
            printed.contains(&self.fingerprint),
            "init prints the fingerprint"
        );
        for (user, admin) in [
            ("alice", false),
            ("bob", false),
            ("carol", false),
            ("ops", true),
        ] {
            let mut args = vec!["user", "add", user, "--password-stdin"];
            if admin {
                args.push("--admin");
            }
            self.gw(&args, Some(&format!("{PASSWORD}\n")));
        }
        let ssh_port = "22".to_string();
        let echo_port = ECHO_PORT.to_string();
        self.gw(
            &[
                "host",
                "add",
                "vnet1",
                "--address",
                VNET_IP,
                "--port",
                &ssh_port,
                "--protocol",
                "ssh",
                "--tag",
                "lab",
            ],
            None,
        );
        self.gw(
            &[
                "host",
                "add",
                "echo1",
                "--address",
                VNET_IP,
                "--port",
                &echo_port,
                "--protocol",
                "ssh",
            ],
            None,
        );
        self.gw(&["grant", "add", "alice", "--tag", "lab"], None);
        self.gw(&["grant", "add", "alice", "--host", "echo1"], None);
        self.gw(&["grant", "add", "carol", "--host", "echo1"], None);
        self.gw(&["grant", "add", "ops", "--host", "echo1"], None);
        Ok(())
    }

    pub fn start_gateway(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("gateway.log"))
            .expect("gateway log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.edge])
            .arg(bin("portcullis-gateway"))
            .arg("--config")
            .arg(self.gateway_config())
            .arg("serve")
            .stderr(log)
            .spawn()
            .expect("start the gateway");
        self.gateway = Some(child);
        wait_for_port(
            &self.out,
            format!("{EDGE_OUT_IP}:{GATEWAY_PORT}").parse().unwrap(),
            "the gateway",
        );
    }

    /// Stops the gateway, edits its configuration, and starts it again.
    pub fn restart_gateway(&mut self, edit: impl FnOnce(String) -> String) {
        let status = self.stop_gateway();
        assert!(status.success(), "gateway exit status {status}");
        let config = std::fs::read_to_string(self.gateway_config()).expect("read config");
        std::fs::write(self.gateway_config(), edit(config)).expect("write config");
        self.start_gateway();
    }

    pub fn gateway_log(&self) -> String {
        std::fs::read_to_string(self.path("gateway.log")).unwrap_or_default()
    }

    /// The gateway's database as it is on disk: the file and its write-ahead
    /// log, where the running gateway's latest writes may still be.
    pub fn gateway_database(&self) -> Vec<u8> {
        let mut bytes = std::fs::read(self.path("gw/gateway.db")).expect("the gateway's database");
        bytes.extend(std::fs::read(self.path("gw/gateway.db-wal")).unwrap_or_default());
        bytes
    }

    /// `portcullis-gateway secret set HOST --kind KIND --user USER --stdin`.
    pub fn set_secret(&self, host: &str, kind: &str, user: &str, value: &str) {
        self.gw(
            &[
                "secret", "set", host, "--kind", kind, "--user", user, "--stdin",
            ],
            Some(value),
        );
    }

    /// Sends SIGTERM to the gateway and waits for it to exit.
    pub fn stop_gateway(&mut self) -> std::process::ExitStatus {
        let mut child = self.gateway.take().expect("gateway running");
        // `ip netns exec` execs the gateway, so the child pid is the gateway's.
        #[allow(unsafe_code)]
        // SAFETY: kill on a pid we own.
        let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        assert_eq!(rc, 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn gateway_pid(&self) -> u32 {
        self.gateway.as_ref().expect("gateway running").id()
    }

    /// Starts a lab helper process inside a namespace; it is stopped with the lab.
    pub fn spawn_in(&mut self, ns: &str, program: &Path, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(program)
            .args(args)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        self.children.push(child);
    }

    /// Stops this child with the lab.
    pub fn adopt(&mut self, child: Child) {
        self.children.push(child);
    }

    /// Keeps `value` until the lab's processes have been stopped.
    pub fn hold(&mut self, value: Box<dyn std::any::Any + Send>) {
        self.held.push(value);
    }

    pub fn gateway_alive(&mut self) -> bool {
        matches!(self.gateway.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// `portcullis --home <lab home for USER> ARGS`, run in the outside namespace.
    pub fn cli_command(&self, user: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.out])
            .arg(bin("portcullis"))
            .arg("--home")
            .arg(self.path(&format!("home-{user}")))
            .args(args);
        cmd
    }

    pub fn cli(&self, user: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = self.cli_command(user, args);
        pipe_bytes(&mut cmd, stdin)
    }

    /// `portcullis login` with the home of `home`, as `user`, pinning `fingerprint` if given.
    pub fn try_login(
        &self,
        home: &str,
        user: &str,
        fingerprint: Option<&str>,
        password: &[u8],
    ) -> Output {
        let mut args = vec![
            "login",
            &self.gateway_url,
            "--user",
            user,
            "--password-stdin",
        ];
        if let Some(fingerprint) = fingerprint {
            args.extend(["--fingerprint", fingerprint]);
        }
        self.cli(home, &args, Some(password))
    }

    /// Signs `user` in with the lab password and the gateway's fingerprint.
    pub fn login(&self, user: &str) {
        let out = self.try_login(
            user,
            user,
            Some(&self.fingerprint),
            format!("{PASSWORD}\n").as_bytes(),
        );
        assert!(
            out.status.success(),
            "login as {user} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn audit(&self) -> Vec<serde_json::Value> {
        let out = self.gw(&["audit", "--json"], None);
        String::from_utf8(out.stdout)
            .expect("utf-8 audit")
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect()
    }

    /// Arguments for OpenSSH that trust exactly the lab's host key.
    pub fn ssh_args(&self) -> Vec<String> {
        let ssh = self.path("ssh");
        vec![
            "-F".into(),
            "/dev/null".into(),
            "-i".into(),
            ssh.join("client_ed25519").display().to_string(),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
            "-o".into(),
            format!("UserKnownHostsFile={}", ssh.join("known_hosts").display()),
            "-o".into(),
            "GlobalKnownHostsFile=/dev/null".into(),
            "-o".into(),
            "ConnectTimeout=20".into(),
        ]
    }

    /// Starts `portcullis tunnel HOST --listen 127.0.0.1:0` and returns it with its port.
    pub fn tunnel_listener(&self, user: &str, host: &str) -> (Child, u16) {
        let mut child = self
            .cli_command(user, &["tunnel", host, "--listen", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tunnel --listen");
        let stderr = child.stderr.take().expect("stderr");
        let mut line = String::new();
        BufReader::new(stderr)
            .read_line(&mut line)
            .expect("read listener line");
        let port = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("127.0.0.1:"))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        (child, port)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut gateway) = self.gateway.take() {
            let _ = gateway.kill();
            let _ = gateway.wait();
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.held.clear();
        for ns in [&self.out, &self.edge, &self.vnet] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
            let _ = std::fs::remove_dir_all(netns_etc(ns));
        }
    }
}

/// What `ip netns exec NS` bind-mounts over /etc.
pub fn netns_etc(ns: &str) -> PathBuf {
    Path::new("/etc/netns").join(ns)
}

fn pipe(mut cmd: Command, stdin: Option<&str>) -> Output {
    pipe_bytes(&mut cmd, stdin.map(str::as_bytes))
}

/// A new ed25519 key pair at `path` and `path.pub`, without a passphrase.
pub fn new_ssh_key(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "lab", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen -f {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A public key file's `SHA256:…` fingerprint, as `ssh-keygen -l` prints it.
pub fn ssh_fingerprint(public_key_file: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public_key_file)
        .output()
        .expect("ssh-keygen");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no fingerprint of {}", public_key_file.display()))
        .to_owned()
}

pub fn pipe_bytes(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.map(<[u8]>::to_vec).unwrap_or_default();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    out
}

/// "YYYY-MM-DD HH:MM UTC", for benchmark headings.
pub fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Prints a benchmark's table and appends it to docs/BENCHMARKS.md.
pub fn append_benchmark(table: &str) {
    println!("{table}");
    let path = Path::new("docs/BENCHMARKS.md");
    let mut text = std::fs::read_to_string(path).unwrap_or_else(|_| {
        "# Benchmarks\n\nAppended by `cargo xtask bench ...`; newest last.\n".into()
    });
    text.push('\n');
    text.push_str(table);
    std::fs::write(path, text).expect("write docs/BENCHMARKS.md");
}

/// The real desktop window under Xvfb, driven through tauri-driver, with the app
/// in the lab's outside namespace (where a user's machine sits).
pub struct Desktop {
    /// tauri-driver's address, reachable from threads in the outside namespace.
    pub driver: String,
    pub home: PathBuf,
    pub user_home: PathBuf,
    /// The X display the window is on (its clipboard is the app's OS clipboard).
    pub display: String,
    namespace: String,
    log: PathBuf,
    xvfb: Child,
    tauri_driver: Child,
}

/// A process's command name (`/proc/PID/comm`: at most 15 characters), or ""
/// when it is gone.
pub fn process_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The processes in namespace `ns` whose command name is one of `names`
/// (none when `ip netns pids` fails, as when the namespace is gone).
pub fn netns_pids_named(ns: &str, names: &[&str]) -> Vec<u32> {
    let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .filter(|&pid| names.contains(&process_name(pid).as_str()))
        .collect()
}

/// SIGKILL to the processes in namespace `ns` whose command name is one of `names`.
pub fn kill_netns_processes(ns: &str, names: &[&str]) {
    for pid in netns_pids_named(ns, names) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

/// Where screenshots of the window go (kept as CI artifacts).
pub fn e2e_artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e")
}

/// Xvfb on a display it picks itself (`-displayfd`): the child and ":N".
pub fn start_xvfb(geometry: &str) -> (Child, String) {
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
    (xvfb, format!(":{}", line.trim()))
}

fn tauri_driver_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PORTCULLIS_TAURI_DRIVER") {
        return PathBuf::from(path);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"));
    cargo_home.join("bin/tauri-driver")
}

impl Desktop {
    /// Xvfb on a display it picks itself, then tauri-driver in the outside namespace
    /// with the app's state in fresh folders of the lab; no session bus (so no OS
    /// keychain).
    pub fn start(lab: &Lab, name: &str) -> Desktop {
        Desktop::start_with_bus(lab, name, None)
    }

    /// As [`Desktop::start`], with the app on the session bus at `bus` (a lab
    /// keyring's).
    pub fn start_with_bus(lab: &Lab, name: &str, bus: Option<&str>) -> Desktop {
        require_tool("Xvfb");
        require_tool("WebKitWebDriver");
        let driver_bin = tauri_driver_binary();
        assert!(
            driver_bin.exists(),
            "tauri-driver is not installed ({}); `cargo xtask test` installs it",
            driver_bin.display()
        );
        let home = lab.path(&format!("{name}-app-home"));
        let user_home = lab.path(&format!("{name}-user-home"));
        std::fs::create_dir_all(&home).expect("app home");
        std::fs::create_dir_all(user_home.join(".ssh")).expect("user home");
        let (xvfb, display) = start_xvfb("1280x800x24");
        let log_path = lab.path(&format!("{name}-tauri-driver.log"));
        let log = std::fs::File::create(&log_path).expect("log");
        let tauri_driver = Command::new("ip")
            .args(["netns", "exec", &lab.out])
            .arg(&driver_bin)
            .args(["--port", "4444", "--native-port", "4445"])
            .env("DISPLAY", &display)
            .env("PORTCULLIS_HOME", &home)
            .env("HOME", &user_home)
            .env_remove("SSH_AUTH_SOCK")
            .env("DBUS_SESSION_BUS_ADDRESS", bus.unwrap_or("disabled:"))
            .env("NO_AT_BRIDGE", "1")
            .env("PORTCULLIS_LOG", "warn,portcullis_client=info")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start tauri-driver");
        Desktop {
            driver: "127.0.0.1:4444".into(),
            home,
            user_home,
            display: display.clone(),
            namespace: lab.out.clone(),
            log: log_path,
            xvfb,
            tauri_driver,
        }
    }

    /// What a thread in the outside namespace needs to drive the window.
    pub fn window(&self) -> Window {
        Window {
            driver: self.driver.clone(),
            display: self.display.clone(),
        }
    }
}

/// What a thread in the outside namespace needs to drive a [`Desktop`]'s window.
#[derive(Clone)]
pub struct Window {
    driver: String,
    display: String,
}

impl Window {
    /// A WebDriver session on the app (tauri-driver starts it), its screenshots
    /// taken of the window's X display.
    pub fn open(&self) -> webdriver::WebDriver {
        webdriver::WebDriver::start(&self.driver, &bin("portcullis-desktop"))
            .expect("a WebDriver session")
            .on_display(&self.display)
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!(
                "---- tauri-driver, WebKitWebDriver and app output (last 60 lines) ----\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        // tauri-driver's children (WebKitWebDriver, the app) go first.
        kill_netns_processes(
            &self.namespace,
            &[
                "WebKitWebDriver",
                "portcullis-desk",
                "WebKitWebProces",
                "WebKitNetworkPr",
            ],
        );
        let _ = self.tauri_driver.kill();
        let _ = self.tauri_driver.wait();
        let _ = self.xvfb.kill();
        let _ = self.xvfb.wait();
    }
}
