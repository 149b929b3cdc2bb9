//! `portcullis ssh`: a session in the current terminal over the client core,
//! with OpenSSH's meanings (exit status, host key names, `-J`, `-i`, `-t`/`-T`).

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use futures_util::future::BoxFuture;
use portcullis_client::Client;
use portcullis_client::dial::{Dialer, JumpHop, Route};
use portcullis_client::gateway_auth::{self, GatewayCredential, GatewayPassword};
use portcullis_client::ssh::{
    AuthMethod, HostKeyDecision, HostKeyTrust, InteractiveRequest, LoadedKey, Prompter, PtyRequest,
    ShellEvent, SshAuth, SshSession, SshTarget, UnknownHostKey, decode_key, read_key_file,
};
use portcullis_proto::{HostName, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest answer read from the terminal for a password or passphrase.
const MAX_ANSWER: u64 = 1024;

pub struct SshArgs {
    pub destination: String,
    pub login: Option<String>,
    pub port: Option<u16>,
    pub identity: Vec<PathBuf>,
    pub jump: Option<String>,
    pub direct: bool,
    pub gateway: Option<String>,
    pub accept_new: bool,
    pub from_gateway: bool,
    pub certificate: bool,
    pub force_tty: bool,
    pub no_tty: bool,
    pub command: Vec<String>,
}

/// `[USER@]HOST[:PORT]`
fn split_destination(
    text: &str,
    port_allowed: bool,
) -> anyhow::Result<(Option<String>, String, Option<u16>)> {
    let (user, rest) = match text.rsplit_once('@') {
        Some((user, rest)) if !user.is_empty() => (Some(user.to_owned()), rest),
        Some(_) => bail!("{text:?}: empty user name before @"),
        None => (None, text),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if port_allowed && !host.contains(':') => (
            host,
            Some(
                port.parse::<u16>()
                    .with_context(|| format!("{text:?}: bad port"))?,
            ),
        ),
        _ => (rest, None),
    };
    if host.is_empty()
        || host.len() > 253
        || host.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        bail!("{text:?}: not a host name");
    }
    if let Some(user) = &user
        && (user.len() > 64 || user.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        bail!("{text:?}: not a user name");
    }
    Ok((user, host.to_owned(), port))
}

fn local_user() -> anyhow::Result<String> {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .context("no user name: give USER@HOST or -l USER")
}

/// OpenSSH's order: public keys (agent, then files), keyboard-interactive, password.
fn methods(identity: &[PathBuf], interactive: bool) -> Vec<AuthMethod> {
    let mut methods = Vec::new();
    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        methods.push(AuthMethod::Agent);
    }
    if identity.is_empty() {
        if let Some(home) = std::env::var_os("HOME") {
            for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                let path = Path::new(&home).join(".ssh").join(name);
                if path.exists() {
                    methods.push(AuthMethod::KeyFile { path });
                }
            }
        }
    } else {
        methods.extend(
            identity
                .iter()
                .map(|path| AuthMethod::KeyFile { path: path.clone() }),
        );
    }
    if interactive {
        methods.push(AuthMethod::KeyboardInteractive);
        methods.push(AuthMethod::Password);
    }
    methods
}

pub async fn run(client: Client, args: SshArgs) -> anyhow::Result<u8> {
    let (user, host, _) = split_destination(&args.destination, false)?;
    let given_user = args.login.clone().or(user);
    let port = args.port.unwrap_or(22);
    let interactive = open_tty().is_some();
    let client = Arc::new(client);
    let mut prompter: Arc<dyn Prompter> = Arc::new(TtyPrompter {
        accept_new: args.accept_new,
    });
    let (user, methods) = if args.from_gateway {
        // The vault's credential, for this session only; the person never sees it.
        let name: HostName = host.parse()?;
        let released =
            gateway_auth::ssh_credential(&client, args.gateway.as_deref(), &name).await?;
        let user = match (given_user, released.login) {
            (Some(user), _) | (None, Some(user)) => user,
            (None, None) => local_user()?,
        };
        let method = match released.credential {
            GatewayCredential::Key(key) => AuthMethod::Loaded { key },
            GatewayCredential::Password(password) => {
                prompter = Arc::new(GatewayPassword::new(prompter, password));
                AuthMethod::Password
            }
        };
        (user, vec![method])
    } else if args.certificate {
        // The person's own key, certified by the gateway's CA for this host.
        let name: HostName = host.parse()?;
        let path = match args.identity.first() {
            Some(path) => path.clone(),
            None => Path::new(&std::env::var_os("HOME").context("no HOME: give -i KEYFILE")?)
                .join(".ssh/id_ed25519"),
        };
        let key = read_key(&path, prompter.as_ref()).await?;
        let key = gateway_auth::certify(&client, args.gateway.as_deref(), &name, key).await?;
        let user = match given_user {
            Some(user) => user,
            None => local_user()?,
        };
        (user, vec![AuthMethod::Loaded { key }])
    } else {
        let user = match given_user {
            Some(user) => user,
            None => local_user()?,
        };
        (user, methods(&args.identity, interactive))
    };
    let auth = SshAuth {
        user: user.clone(),
        methods,
        agent_socket: None,
    };
    let route = if let Some(jump) = &args.jump {
        let mut hops = Vec::new();
        for hop in jump.split(',') {
            let (hop_user, hop_host, hop_port) = split_destination(hop, true)?;
            hops.push(JumpHop {
                host: hop_host,
                port: hop_port.unwrap_or(22),
                auth: SshAuth {
                    user: hop_user.unwrap_or_else(|| user.clone()),
                    ..auth.clone()
                },
            });
        }
        Route::Jump { hops }
    } else if args.direct {
        Route::Direct
    } else {
        // Through the gateway the host is a catalog name, never an address.
        let name: HostName = host.parse()?;
        if args.port.is_some() {
            bail!("-p applies to --direct and -J routes; the gateway knows {name}'s port");
        }
        Route::Gateway {
            gateway: args.gateway.clone(),
        }
    };
    let trust = HostKeyTrust::standard(client.home().dir().join("known_hosts"));
    let dialer = Dialer::new(Some(client), trust.clone(), Arc::clone(&prompter));
    let connection = dialer.dial(&route, &host, port).await?;
    let session = SshSession::connect(
        connection,
        SshTarget {
            host: host.clone(),
            port,
        },
        &auth,
        trust,
        prompter,
        &dialer.ssh,
    )
    .await?;

    let stdin_tty = std::io::stdin().is_terminal();
    let want_pty = !args.no_tty && (args.force_tty || (args.command.is_empty() && stdin_tty));
    let command = (!args.command.is_empty()).then(|| args.command.join(" "));
    let pty = if want_pty {
        let (cols, rows) = terminal_size().unwrap_or((80, 24));
        let mut request = PtyRequest::xterm(cols, rows);
        if let Ok(lang) = std::env::var("LANG") {
            request.env.push(("LANG".into(), lang));
        }
        Some(request)
    } else {
        None
    };
    let shell = session.open_shell(pty.as_ref(), command.as_deref()).await?;
    let _raw = if want_pty && stdin_tty {
        Some(RawMode::enter()?)
    } else {
        None
    };
    let code = pump(shell, want_pty).await;
    drop(_raw);
    session.close().await;
    code
}

/// A private key file, its passphrase asked on the terminal when it has one.
async fn read_key(path: &Path, prompter: &dyn Prompter) -> anyhow::Result<LoadedKey> {
    let text = read_key_file(path)?;
    let key = decode_key(&text, path, prompter)
        .await?
        .with_context(|| format!("no passphrase for {}", path.display()))?;
    Ok(LoadedKey::new(path.display().to_string(), key))
}

async fn pump(shell: portcullis_client::ssh::Shell, resize: bool) -> anyhow::Result<u8> {
    let portcullis_client::ssh::Shell { mut reader, writer } = shell;
    let input_writer = writer.clone();
    let input = tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match stdin.read(&mut buffer).await {
                Ok(0) | Err(_) => {
                    let _ = input_writer.eof().await;
                    return;
                }
                Ok(n) => {
                    if input_writer.write(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let resizer = resize.then(|| {
        let writer = writer.clone();
        tokio::spawn(async move {
            let Ok(mut winch) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
            else {
                return;
            };
            while winch.recv().await.is_some() {
                if let Some((cols, rows)) = terminal_size()
                    && writer.resize(cols, rows).await.is_err()
                {
                    return;
                }
            }
        })
    });
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let outcome = loop {
        match reader.next().await {
            Some(ShellEvent::Output(bytes)) => {
                stdout.write_all(&bytes).await?;
                stdout.flush().await?;
            }
            Some(ShellEvent::Stderr(bytes)) => {
                stderr.write_all(&bytes).await?;
                stderr.flush().await?;
            }
            Some(ShellEvent::Exited(exit)) => {
                break match (exit.status, exit.signal) {
                    (Some(status), _) => Ok(u8::try_from(status).unwrap_or(255)),
                    (None, Some(signal)) => {
                        eprintln!("portcullis: remote command killed by signal {signal}");
                        Ok(255)
                    }
                    (None, None) => Ok(255),
                };
            }
            Some(ShellEvent::Closed) | None => break Ok(0),
            Some(ShellEvent::Lost(cause)) => {
                break Err(anyhow::anyhow!("connection lost: {cause}"));
            }
        }
    };
    input.abort();
    if let Some(resizer) = resizer {
        resizer.abort();
    }
    outcome
}

fn terminal_size() -> Option<(u16, u16)> {
    let size = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
    (size.ws_col > 0 && size.ws_row > 0).then_some((size.ws_col, size.ws_row))
}

/// The local terminal in raw mode for as long as this lives.
struct RawMode {
    saved: rustix::termios::Termios,
}

impl RawMode {
    fn enter() -> anyhow::Result<RawMode> {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin).context("cannot read the terminal mode")?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw)
            .context("cannot put the terminal in raw mode")?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

fn open_tty() -> Option<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()
}

/// Asks on the controlling terminal, like OpenSSH; without one, only what the
/// flags allow (`--accept-new`) and nothing secret.
struct TtyPrompter {
    accept_new: bool,
}

fn ask(prompt: String, echo: bool) -> Option<Secret<String>> {
    let mut tty = open_tty()?;
    tty.write_all(prompt.as_bytes()).ok()?;
    tty.flush().ok()?;
    let saved = rustix::termios::tcgetattr(&tty).ok()?;
    if !echo {
        let mut quiet = saved.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        rustix::termios::tcsetattr(&tty, rustix::termios::OptionalActions::Now, &quiet).ok()?;
    }
    let mut line = String::new();
    let read = std::io::BufReader::new((&tty).take(MAX_ANSWER)).read_line(&mut line);
    if !echo {
        let _ = rustix::termios::tcsetattr(&tty, rustix::termios::OptionalActions::Now, &saved);
        let _ = tty.write_all(b"\n");
    }
    let line = Secret::new(line);
    read.ok()?;
    Some(Secret::new(
        line.expose().trim_end_matches(['\n', '\r']).to_owned(),
    ))
}

async fn ask_blocking(prompt: String, echo: bool) -> Option<Secret<String>> {
    tokio::task::spawn_blocking(move || ask(prompt, echo))
        .await
        .ok()
        .flatten()
}

impl Prompter for TtyPrompter {
    fn unknown_host_key<'a>(&'a self, key: &'a UnknownHostKey) -> BoxFuture<'a, HostKeyDecision> {
        Box::pin(async move {
            if self.accept_new {
                eprintln!(
                    "portcullis: trusting the new host key of {} ({} {}) as asked by --accept-new",
                    key.host, key.key_type, key.fingerprint
                );
                return HostKeyDecision::AcceptAndRemember;
            }
            let prompt = format!(
                "The authenticity of host '{}' can't be established.\n{} key fingerprint is {}.\n\
                 Are you sure you want to continue connecting (yes/no)? ",
                portcullis_client::known_hosts::host_key_name(&key.host, key.port),
                key.key_type,
                key.fingerprint
            );
            loop {
                let Some(answer) = ask_blocking(prompt.clone(), true).await else {
                    return HostKeyDecision::Reject;
                };
                match answer.expose().trim().to_ascii_lowercase().as_str() {
                    "yes" => return HostKeyDecision::AcceptAndRemember,
                    "no" | "" => return HostKeyDecision::Reject,
                    _ => continue,
                }
            }
        })
    }

    fn passphrase<'a>(&'a self, key_file: &'a Path) -> BoxFuture<'a, Option<Secret<String>>> {
        Box::pin(ask_blocking(
            format!("Enter passphrase for key '{}': ", key_file.display()),
            false,
        ))
    }

    fn password<'a>(
        &'a self,
        user: &'a str,
        host: &'a str,
    ) -> BoxFuture<'a, Option<Secret<String>>> {
        Box::pin(ask_blocking(format!("{user}@{host}'s password: "), false))
    }

    fn keyboard_interactive<'a>(
        &'a self,
        request: &'a InteractiveRequest,
    ) -> BoxFuture<'a, Option<Vec<Secret<String>>>> {
        Box::pin(async move {
            if !request.instructions.is_empty() {
                eprintln!("{}", request.instructions);
            }
            let mut answers = Vec::with_capacity(request.prompts.len());
            for (prompt, echo) in &request.prompts {
                answers.push(ask_blocking(prompt.clone(), *echo).await?);
            }
            Some(answers)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse_like_openssh() {
        assert_eq!(
            split_destination("root@vnet1", false).unwrap(),
            (Some("root".into()), "vnet1".into(), None)
        );
        assert_eq!(
            split_destination("jump@10.201.0.1:2222", true).unwrap(),
            (Some("jump".into()), "10.201.0.1".into(), Some(2222))
        );
        assert_eq!(
            split_destination("host", true).unwrap(),
            (None, "host".into(), None)
        );
        assert!(split_destination("@host", false).is_err());
        assert!(split_destination("a b", false).is_err());
        assert!(split_destination("host:99999", true).is_err());
        assert!(split_destination("", false).is_err());
    }
}
