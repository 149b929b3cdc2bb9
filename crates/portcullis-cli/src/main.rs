//! `portcullis`: sign in to a gateway, list its hosts, open SSH sessions, and open
//! tunnels that native clients (OpenSSH, FreeRDP, anything over TCP) use.

mod ssh;

use std::io::{BufRead, IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use portcullis_client::api::GatewayUrl;
use portcullis_client::home::ClientHome;
use portcullis_client::session::PinPolicy;
use portcullis_client::{Client, tunnel};
use portcullis_proto::wire::MAX_PASSWORD_LEN;
use portcullis_proto::{CertFingerprint, HostName, Secret};

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Reach private hosts through a Portcullis gateway"
)]
struct Cli {
    /// Where client state lives (default: $PORTCULLIS_HOME, else the XDG data folder).
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in to a gateway; the password is read from standard input.
    Login {
        /// https://HOST[:PORT] of the gateway.
        url: String,
        #[arg(long)]
        user: String,
        #[arg(long, required = true)]
        password_stdin: bool,
        /// The SHA-256 fingerprint of the gateway's certificate, as its operator
        /// gave it (hex; colons and case are ignored).
        #[arg(long, value_name = "HEX")]
        fingerprint: Option<String>,
    },
    /// List the hosts the gateway grants you.
    Hosts {
        #[arg(long)]
        json: bool,
        /// Which signed-in gateway (default: the last one signed in to).
        #[arg(long, value_name = "URL")]
        gateway: Option<String>,
    },
    /// Get a short-lived SSH certificate from the gateway's CA for your public
    /// key, written beside it as KEY-cert.pub (where OpenSSH looks for it).
    SshCert {
        host: String,
        /// Your private key's file; its `.pub` is sent (the private key never is).
        #[arg(short = 'i', value_name = "KEYFILE")]
        identity: PathBuf,
        #[arg(long, value_name = "URL")]
        gateway: Option<String>,
    },
    /// Carry a TCP connection to a host through the gateway.
    Tunnel {
        host: String,
        /// Use standard input and output, e.g. as OpenSSH's ProxyCommand.
        #[arg(long, conflicts_with = "listen", required_unless_present = "listen")]
        stdio: bool,
        /// Accept local connections on this loopback address, one tunnel each.
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<SocketAddr>,
        #[arg(long, value_name = "URL")]
        gateway: Option<String>,
    },
    /// Open an SSH session to a host of the signed-in gateway (or, with -J or
    /// --direct, to an address); the exit status is the remote command's.
    Ssh {
        /// [USER@]HOST: a host name from `portcullis hosts`, or an address with -J/--direct.
        destination: String,
        /// Log in as this user (default: USER@ in the destination, else $USER).
        #[arg(short = 'l', value_name = "USER")]
        login: Option<String>,
        /// Port, for -J and --direct (the gateway knows its hosts' ports).
        #[arg(short = 'p', value_name = "PORT")]
        port: Option<u16>,
        /// Private key file; repeat for several (default: ~/.ssh/id_ed25519, id_ecdsa, id_rsa).
        #[arg(short = 'i', value_name = "KEYFILE")]
        identity: Vec<PathBuf>,
        /// Through OpenSSH jump hosts instead of the gateway, like ssh -J.
        #[arg(short = 'J', value_name = "[USER@]HOST[:PORT],...", conflicts_with_all = ["direct", "gateway"])]
        jump: Option<String>,
        /// Straight TCP from this machine instead of the gateway.
        #[arg(long, conflicts_with = "gateway")]
        direct: bool,
        #[arg(long, value_name = "URL")]
        gateway: Option<String>,
        /// Trust an unknown host key and remember it (a changed key is always refused).
        #[arg(long)]
        accept_new: bool,
        /// Log on with the host's credential from the gateway's vault (released
        /// for this session only, never shown); its login unless -l or USER@.
        #[arg(long, conflicts_with_all = ["jump", "direct", "certificate", "identity"])]
        from_gateway: bool,
        /// Log on with a short-lived certificate from the gateway's SSH CA for
        /// your key (-i, default ~/.ssh/id_ed25519); only the public key is sent.
        #[arg(long, conflicts_with_all = ["jump", "direct"])]
        certificate: bool,
        /// Ask for a terminal even when running a command.
        #[arg(short = 't', conflicts_with = "no_tty")]
        force_tty: bool,
        /// Never ask for a terminal.
        #[arg(short = 'T')]
        no_tty: bool,
        /// The command to run instead of the login shell.
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// List or remove the host keys this app trusts (OpenSSH's own files are only read).
    KnownHosts {
        #[command(subcommand)]
        action: Option<KnownHostsAction>,
    },
}

#[derive(Subcommand)]
enum KnownHostsAction {
    /// List the trusted keys (the default).
    List,
    /// Forget the keys of a host.
    Remove {
        host: String,
        #[arg(long, default_value_t = 22)]
        port: u16,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    // One thread: a CLI carries few streams, and cross-thread wake-ups cost more
    // CPU per byte than they win (measured with `cargo xtask bench tunnel`).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portcullis: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    // A read of standard input may still be parked on a blocking thread.
    runtime.shutdown_background();
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn read_password_stdin() -> anyhow::Result<Secret<String>> {
    let mut raw = Vec::with_capacity(64);
    std::io::stdin()
        .take(MAX_PASSWORD_LEN as u64 + 2)
        .read_to_end(&mut raw)
        .context("cannot read the password from standard input")?;
    let text = Secret::new(String::from_utf8(raw).context("the password is not UTF-8")?);
    let password = Secret::new(text.expose().trim_end_matches(['\n', '\r']).to_owned());
    if password.expose().is_empty() {
        bail!("no password on standard input");
    }
    if password.expose().len() > MAX_PASSWORD_LEN {
        bail!("the password is longer than {MAX_PASSWORD_LEN} bytes");
    }
    Ok(password)
}

/// Asks on the controlling terminal, since standard input carries the password.
fn ask_on_terminal(url: &GatewayUrl, presented: &CertFingerprint) -> bool {
    let Ok(mut tty) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    else {
        return false;
    };
    let _ = write!(
        tty,
        "The gateway {url} presented a certificate no system CA vouches for.\n\
         SHA-256 fingerprint: {presented}\n\
         Compare it with `portcullis-gateway fingerprint` on the gateway.\n\
         Trust this certificate? (yes/no) "
    );
    let _ = tty.flush();
    let mut answer = String::new();
    let mut reader = std::io::BufReader::new(tty.take(64));
    if reader.read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "yes" | "y")
}

fn has_terminal() -> bool {
    std::io::stderr().is_terminal() && std::fs::File::open("/dev/tty").is_ok()
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let client = Client::new(ClientHome::resolve(cli.home)?);
    match cli.command {
        Command::Ssh {
            destination,
            login,
            port,
            identity,
            jump,
            direct,
            gateway,
            accept_new,
            from_gateway,
            certificate,
            force_tty,
            no_tty,
            command,
        } => {
            let args = ssh::SshArgs {
                destination,
                login,
                port,
                identity,
                jump,
                direct,
                gateway,
                accept_new,
                from_gateway,
                certificate,
                force_tty,
                no_tty,
                command,
            };
            // Like OpenSSH: 255 when the session itself failed.
            match ssh::run(client, args).await {
                Ok(code) => Ok(code),
                Err(e) => {
                    eprintln!("portcullis: {e:#}");
                    Ok(255)
                }
            }
        }
        Command::KnownHosts { action } => {
            known_hosts(&client, action.unwrap_or(KnownHostsAction::List))?;
            Ok(0)
        }
        Command::Login {
            url,
            user,
            password_stdin: _,
            fingerprint,
        } => {
            let fingerprint = fingerprint
                .map(|f| f.parse::<CertFingerprint>())
                .transpose()?;
            let password = read_password_stdin()?;
            let mut ask = ask_on_terminal;
            let policy = match fingerprint {
                Some(fp) => PinPolicy::Expect(fp),
                None if has_terminal() => PinPolicy::Ask(&mut ask),
                None => PinPolicy::Refuse,
            };
            let outcome = client.login(&url, &user, password, policy).await?;
            match outcome.pinned {
                Some(fp) => eprintln!(
                    "signed in to {} as {}{} (certificate pinned: {fp})",
                    outcome.gateway,
                    outcome.user,
                    if outcome.admin { ", admin" } else { "" }
                ),
                None => eprintln!(
                    "signed in to {} as {}{} (certificate trusted by a system CA)",
                    outcome.gateway,
                    outcome.user,
                    if outcome.admin { ", admin" } else { "" }
                ),
            }
            Ok(0)
        }
        Command::Hosts { json, gateway } => {
            let list = client.hosts(gateway.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.hosts.is_empty() {
                eprintln!("no hosts are granted to you on this gateway");
            } else {
                for host in &list.hosts {
                    let tags: Vec<&str> = host.tags.iter().map(|t| t.as_str()).collect();
                    let mut line = format!("{}\t{}\t{}", host.name, host.protocol, tags.join(","));
                    if let (Some(address), Some(port)) = (&host.address, host.port) {
                        line.push_str(&format!("\t{address}:{port}"));
                    }
                    // How the gateway helps you log on (`portcullis ssh --from-gateway`
                    // / `--certificate`), and whether only that is allowed.
                    let offers: Vec<&str> = [
                        (host.gateway_credential, "gateway-credential"),
                        (host.ssh_certificate, "ssh-certificate"),
                        (host.launch_only, "launch-only"),
                    ]
                    .into_iter()
                    .filter_map(|(on, name)| on.then_some(name))
                    .collect();
                    if !offers.is_empty() {
                        line.push_str(&format!("\t[{}]", offers.join(",")));
                    }
                    println!("{line}");
                }
            }
            Ok(0)
        }
        Command::SshCert {
            host,
            identity,
            gateway,
        } => {
            let host: HostName = host.parse()?;
            let mut public = identity.clone().into_os_string();
            public.push(".pub");
            let public = PathBuf::from(public);
            let meta = std::fs::metadata(&public)
                .with_context(|| format!("cannot read the public key {}", public.display()))?;
            if meta.len() > 8 * 1024 {
                bail!("{} is not a public key (too long)", public.display());
            }
            let key = std::fs::read_to_string(&public)
                .with_context(|| format!("cannot read the public key {}", public.display()))?;
            let issued = client
                .ssh_certificate(gateway.as_deref(), &host, key.trim())
                .await?;
            let mut out = identity.into_os_string();
            out.push("-cert.pub");
            let out = PathBuf::from(out);
            std::fs::write(&out, format!("{}\n", issued.certificate))
                .with_context(|| format!("cannot write {}", out.display()))?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let minutes = issued.valid_before.saturating_sub(now).div_ceil(60);
            eprintln!(
                "wrote {} (serial {}, for {}, valid {} more minutes)",
                out.display(),
                issued.serial,
                issued.principals.join(", "),
                minutes
            );
            Ok(0)
        }
        Command::Tunnel {
            host,
            stdio,
            listen,
            gateway,
        } => {
            let host: HostName = host.parse()?;
            if stdio {
                let socket = client
                    .open_tunnel(gateway.as_deref(), host.as_str())
                    .await?;
                let outcome = tunnel::pump(socket, tokio::io::stdin(), tokio::io::stdout()).await?;
                tracing::debug!(?outcome, "tunnel closed");
                return Ok(0);
            }
            let listen = listen.expect("clap requires --stdio or --listen");
            if !listen.ip().is_loopback() {
                bail!(
                    "--listen {listen}: only loopback addresses are allowed, since anyone who reaches the port uses your sign-in"
                );
            }
            serve_listener(Arc::new(client), gateway, host, listen).await?;
            Ok(0)
        }
    }
}

fn known_hosts(client: &Client, action: KnownHostsAction) -> anyhow::Result<()> {
    use portcullis_client::known_hosts::{self, KnownHosts, Marker};
    let path = client.home().dir().join("known_hosts");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    match action {
        KnownHostsAction::List => {
            let parsed = KnownHosts::parse(&text);
            if parsed.entries.is_empty() {
                eprintln!(
                    "no host keys are trusted by this app yet ({})",
                    path.display()
                );
            }
            for entry in &parsed.entries {
                let marker = match entry.marker {
                    Marker::None => "",
                    Marker::CertAuthority => "@cert-authority ",
                    Marker::Revoked => "@revoked ",
                };
                println!(
                    "{marker}{}\t{}\t{}",
                    entry.hosts_shown(),
                    entry.key_type,
                    known_hosts::fingerprint(&entry.key)
                );
            }
            for error in &parsed.errors {
                eprintln!("{} line {}: {}", path.display(), error.line, error.reason);
            }
            Ok(())
        }
        KnownHostsAction::Remove { host, port } => {
            let (kept, removed) = known_hosts::without_host(&text, &host, port);
            if removed == 0 {
                bail!(
                    "no key of {} is in {}; keys in OpenSSH's files are removed with ssh-keygen -R",
                    known_hosts::host_key_name(&host, port),
                    path.display()
                );
            }
            let temporary = path.with_extension("tmp");
            std::fs::write(&temporary, kept)
                .and_then(|()| std::fs::rename(&temporary, &path))
                .with_context(|| format!("cannot rewrite {}", path.display()))?;
            eprintln!("removed {removed} key(s) of {host} from {}", path.display());
            Ok(())
        }
    }
}

async fn serve_listener(
    client: Arc<Client>,
    gateway: Option<String>,
    host: HostName,
    listen: SocketAddr,
) -> anyhow::Result<()> {
    // Fail early, before anyone connects, if we are not signed in.
    client.hosts(gateway.as_deref()).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!(
        "listening on {} (each connection is a tunnel to {host}); Ctrl-C stops",
        listener.local_addr()?
    );
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (tcp, peer) = tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = sigterm.recv() => return Ok(()),
            accepted = listener.accept() => accepted?,
        };
        let client = Arc::clone(&client);
        let gateway = gateway.clone();
        let host = host.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            match client.open_tunnel(gateway.as_deref(), host.as_str()).await {
                Ok(socket) => {
                    let (read, write) = tcp.into_split();
                    if let Err(e) = tunnel::pump(socket, read, write).await {
                        eprintln!("portcullis: tunnel for {peer} ended with an error: {e}");
                    }
                }
                Err(e) => eprintln!("portcullis: tunnel for {peer} refused: {e}"),
            }
        });
    }
}
