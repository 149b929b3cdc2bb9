//! `portcullis-gateway`: the command line of the gateway.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use portcullis_gateway::audit::{AuditEvent, AuditKind};
use portcullis_gateway::config::{GatewayConfig, LogFormat};
use portcullis_gateway::init::{InitOptions, init};
use portcullis_gateway::store::Store;
use portcullis_gateway::vault::{self, Kek, SecretKind};
use portcullis_gateway::{clock, password, server, ssh_ca, tls};
use portcullis_proto::policy::GrantTarget;
use portcullis_proto::wire::{MAX_PASSWORD_LEN, Protocol};
use portcullis_proto::{HostName, Secret, Tag, UserName};

const DEFAULT_CONFIG: &str = "/etc/portcullis/gateway.toml";

#[derive(Parser)]
#[command(
    name = "portcullis-gateway",
    version,
    about = "The Portcullis gateway: one TLS port in front of a private network"
)]
struct Cli {
    /// The gateway's configuration file.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_GATEWAY_CONFIG",
        value_name = "PATH"
    )]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a configuration, TLS certificate, signing key and database in a folder.
    Init {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// A name or address clients use for the gateway (repeatable); goes into the certificate.
        #[arg(long = "hostname", value_name = "NAME")]
        hostnames: Vec<String>,
        /// Use this PEM certificate chain instead of a self-signed one (needs --key).
        #[arg(long, value_name = "PEM", requires = "key")]
        cert: Option<PathBuf>,
        /// The PEM private key for --cert.
        #[arg(long, value_name = "PEM", requires = "cert")]
        key: Option<PathBuf>,
        /// The address the configuration listens on.
        #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:443")]
        listen: SocketAddr,
    },
    /// Serve the HTTPS API and tunnels until SIGTERM.
    Serve {
        /// Overrides server.listen from the configuration.
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<SocketAddr>,
    },
    /// Print the SHA-256 fingerprint of the gateway's TLS certificate.
    Fingerprint,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the host catalog.
    #[command(subcommand)]
    Host(HostCommand),
    /// Manage grants: which user may reach which hosts.
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Secrets attached to hosts (RDP passwords, SSH private keys), sealed with
    /// the vault key named in the configuration; values are never printed.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// The gateway's SSH user certificate authority (its key is in the vault).
    #[command(subcommand, name = "ssh-ca")]
    SshCa(SshCaCommand),
    /// Print the audit trail.
    Audit {
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add {
        name: String,
        #[arg(long)]
        admin: bool,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    List,
    /// Stop a user at once: sign-ins, token refreshes and new tunnels are refused.
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
}

#[derive(Subcommand)]
enum SshCaCommand {
    /// Make the CA: a new ed25519 key sealed into the vault (never replaced).
    Init,
    /// Print the CA's public key: the line for sshd's TrustedUserCAKeys file.
    PublicKey,
    /// Revoke a certificate by its serial (from the audit trail or
    /// `ssh-keygen -L`), and rewrite [ssh_ca] revoked_keys_file when set.
    Revoke {
        serial: u64,
        /// Why, for the audit trail.
        #[arg(long, default_value = "revoked by an operator")]
        reason: String,
    },
    /// The revoked serials, one a line.
    Revoked,
    /// Write the revocation list (OpenSSH KRL) for sshd's RevokedKeys to PATH.
    Krl { path: PathBuf },
}

#[derive(Subcommand)]
enum SecretCommand {
    /// Attach a secret to a host, read from standard input; replaces the host's
    /// secret of the same kind and user.
    Set {
        host: String,
        #[arg(long, value_enum)]
        kind: SecretKind,
        /// The user name the secret logs on as (default: any user of the host).
        #[arg(long)]
        user: Option<String>,
        #[arg(long, required = true)]
        stdin: bool,
    },
    /// Hosts, kinds, users and sealing keys of the secrets (never their values).
    List,
    /// Remove a host's secrets: all of them, or of one kind or user.
    Remove {
        host: String,
        #[arg(long, value_enum)]
        kind: Option<SecretKind>,
        #[arg(long)]
        user: Option<String>,
    },
    /// Write a new random vault key to PATH (mode 0600; never over a file).
    NewKey { path: PathBuf },
    /// Seal every secret again under the key in PATH (all or nothing), then
    /// name that key under [vault] in the configuration.
    RotateKey {
        #[arg(long, value_name = "PATH")]
        new_key_file: PathBuf,
    },
}

#[derive(Subcommand)]
enum HostCommand {
    Add {
        name: String,
        /// IP address or DNS name the gateway connects to.
        #[arg(long)]
        address: String,
        /// Defaults to 22 for ssh and 3389 for rdp.
        #[arg(long)]
        port: Option<u16>,
        #[arg(long)]
        protocol: Protocol,
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    List,
    Remove {
        name: String,
    },
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct GrantTargetArgs {
    #[arg(long)]
    host: Option<String>,
    #[arg(long)]
    tag: Option<String>,
}

impl GrantTargetArgs {
    fn target(&self) -> anyhow::Result<GrantTarget> {
        Ok(match (&self.host, &self.tag) {
            (Some(host), _) => GrantTarget::Host(host.parse()?),
            (_, Some(tag)) => GrantTarget::Tag(tag.parse()?),
            _ => bail!("give --host NAME or --tag TAG"),
        })
    }
}

#[derive(Subcommand)]
enum GrantCommand {
    Add {
        user: String,
        #[command(flatten)]
        target: GrantTargetArgs,
        /// A login name an SSH certificate from the gateway may carry for these
        /// hosts (repeatable); none: no certificates for this grant.
        #[arg(long = "principal", value_name = "LOGIN")]
        principals: Vec<String>,
        /// Sessions the gateway's own credential (`secret set`) logs on, opened
        /// from the app's host list: no bare tunnel, no certificate (help desk).
        #[arg(long, conflicts_with = "principals")]
        launch_only: bool,
    },
    List {
        #[arg(long)]
        user: Option<String>,
    },
    Remove {
        user: String,
        #[command(flatten)]
        target: GrantTargetArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portcullis-gateway: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(path: Option<PathBuf>) -> anyhow::Result<GatewayConfig> {
    GatewayConfig::load(&path.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG)))
}

async fn open_store(config: &GatewayConfig) -> anyhow::Result<Store> {
    Store::open(&config.database.path, false)
        .await
        .with_context(|| format!("cannot open database {}", config.database.path.display()))
}

fn init_logging(config: Option<&GatewayConfig>) {
    let (format, level) = match config {
        Some(c) => (c.log.format, c.log.level.clone()),
        None => (LogFormat::Text, "warn".into()),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn read_password_stdin() -> anyhow::Result<Secret<String>> {
    let mut raw = Vec::with_capacity(64);
    std::io::stdin()
        .take(MAX_PASSWORD_LEN as u64 + 2)
        .read_to_end(&mut raw)
        .context("cannot read the password from standard input")?;
    let mut text = Secret::new(String::from_utf8(raw).context("the password is not UTF-8")?);
    let trimmed = text.expose().trim_end_matches(['\n', '\r']).to_owned();
    text = Secret::new(trimmed);
    let length = text.expose().chars().count();
    if length < 8 {
        bail!("the password must have at least 8 characters");
    }
    if text.expose().len() > MAX_PASSWORD_LEN {
        bail!("the password must have at most {MAX_PASSWORD_LEN} bytes");
    }
    Ok(text)
}

/// An IP literal or a DNS name; never a `host:port` or a URL.
fn validate_address(address: &str) -> anyhow::Result<()> {
    if address.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let dns_ok = !address.is_empty()
        && address.len() <= 253
        && address.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !dns_ok {
        bail!(
            "address {address:?} is neither an IP address nor a DNS name (give the port with --port)"
        );
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init {
            dir,
            hostnames,
            cert,
            key,
            listen,
        } => {
            init_logging(None);
            let done = init(InitOptions {
                dir,
                hostnames,
                cert_and_key: cert.zip(key),
                listen,
            })
            .await?;
            println!("initialised gateway: {}", done.config_path.display());
            println!("certificate fingerprint (SHA-256): {}", done.fingerprint);
            println!(
                "next: portcullis-gateway --config {} user add NAME --admin --password-stdin",
                done.config_path.display()
            );
            Ok(())
        }
        Command::Serve { listen } => {
            let config = load_config(cli.config)?;
            init_logging(Some(&config));
            server::serve(config, listen).await
        }
        Command::Fingerprint => {
            let config = load_config(cli.config)?;
            println!("{}", tls::fingerprint_of(&config.tls.certificate)?);
            Ok(())
        }
        Command::User(command) => {
            let config = load_config(cli.config)?;
            init_logging(None);
            let store = open_store(&config).await?;
            user_command(&store, command).await
        }
        Command::Host(command) => {
            let config = load_config(cli.config)?;
            init_logging(None);
            let store = open_store(&config).await?;
            host_command(&store, command).await
        }
        Command::Grant(command) => {
            let config = load_config(cli.config)?;
            init_logging(None);
            let store = open_store(&config).await?;
            grant_command(&store, command).await
        }
        Command::SshCa(command) => {
            let config = load_config(cli.config)?;
            init_logging(None);
            let store = open_store(&config).await?;
            ssh_ca_command(&config, &store, command).await
        }
        // Needs no configuration: the key is made before one names it.
        Command::Secret(SecretCommand::NewKey { path }) => {
            let kek = vault::write_new_key(&path)?;
            println!(
                "wrote vault key {} to {}; name it in the configuration:\n[vault]\nkey_file = {:?}",
                kek.id(),
                path.display(),
                path.display().to_string()
            );
            Ok(())
        }
        Command::Secret(command) => {
            let config = load_config(cli.config)?;
            init_logging(None);
            secret_command(&config, command).await
        }
        Command::Audit { json } => {
            let config = load_config(cli.config)?;
            init_logging(None);
            let store = open_store(&config).await?;
            for record in store.audit().await? {
                if json {
                    println!("{}", record.to_json());
                } else {
                    println!("{}", record.to_text());
                }
            }
            Ok(())
        }
    }
}

async fn user_command(store: &Store, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            admin,
            password_stdin: _,
        } => {
            let name: UserName = name.parse()?;
            let password = read_password_stdin()?;
            let hash = tokio::task::spawn_blocking(move || password::hash(&password)).await??;
            store.add_user(&name, &hash, admin).await?;
            println!("added user {name}{}", if admin { " (admin)" } else { "" });
        }
        UserCommand::List => {
            for user in store.users().await? {
                println!(
                    "{}{}{}",
                    user.name,
                    if user.is_admin { "\tadmin" } else { "" },
                    if user.disabled { "\tdisabled" } else { "" }
                );
            }
        }
        UserCommand::Disable { name } => {
            let name: UserName = name.parse()?;
            store.set_user_disabled(&name, true).await?;
            println!("disabled user {name}");
        }
        UserCommand::Enable { name } => {
            let name: UserName = name.parse()?;
            store.set_user_disabled(&name, false).await?;
            println!("enabled user {name}");
        }
    }
    Ok(())
}

async fn host_command(store: &Store, command: HostCommand) -> anyhow::Result<()> {
    match command {
        HostCommand::Add {
            name,
            address,
            port,
            protocol,
            tags,
        } => {
            let name: HostName = name.parse()?;
            validate_address(&address)?;
            let port = port.unwrap_or(protocol.default_port());
            if port == 0 {
                bail!("port must be between 1 and 65535");
            }
            let tags = tags
                .iter()
                .map(|t| t.parse::<Tag>())
                .collect::<Result<Vec<_>, _>>()?;
            store
                .add_host(&name, &address, port, protocol, &tags)
                .await?;
            println!("added host {name} ({protocol} {address} port {port})");
        }
        HostCommand::List => {
            for host in store.hosts().await? {
                let tags: Vec<&str> = host.tags.iter().map(Tag::as_str).collect();
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    host.name,
                    host.protocol,
                    host.address,
                    host.port,
                    tags.join(",")
                );
            }
        }
        HostCommand::Remove { name } => {
            let name: HostName = name.parse()?;
            store.remove_host(&name).await?;
            println!("removed host {name} and its grants");
        }
    }
    Ok(())
}

/// A secret from standard input: at most [`vault::MAX_SECRET_BYTES`]; a
/// password loses its line ending.
fn read_secret_stdin(kind: SecretKind) -> anyhow::Result<Secret<Vec<u8>>> {
    // Zeroized however this returns.
    let mut buffer = zeroize::Zeroizing::new(Vec::with_capacity(4096));
    std::io::stdin()
        .take(vault::MAX_SECRET_BYTES as u64 + 1)
        .read_to_end(&mut buffer)
        .context("cannot read the secret from standard input")?;
    if buffer.len() > vault::MAX_SECRET_BYTES {
        bail!("a secret has at most {} bytes", vault::MAX_SECRET_BYTES);
    }
    if kind == SecretKind::Password {
        while matches!(buffer.last(), Some(b'\n' | b'\r')) {
            buffer.pop();
        }
    }
    let value = Secret::new(std::mem::take(&mut *buffer));
    kind.validate(&value)?;
    Ok(value)
}

fn validate_secret_user(user: &str) -> anyhow::Result<()> {
    if user.len() > vault::MAX_USER_BYTES || user.chars().any(|c| c.is_control()) {
        bail!(
            "a user name has at most {} bytes and no control characters",
            vault::MAX_USER_BYTES
        );
    }
    Ok(())
}

async fn secret_command(config: &GatewayConfig, command: SecretCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    match command {
        SecretCommand::NewKey { .. } => unreachable!("made without a configuration"),
        SecretCommand::Set {
            host,
            kind,
            user,
            stdin: _,
        } => {
            let host: HostName = host.parse()?;
            let user = user.unwrap_or_default();
            validate_secret_user(&user)?;
            let kek = Kek::load(&config.vault)?;
            if store.host(&host).await?.is_none() {
                bail!("no host named {host}: add it with `portcullis-gateway host add`");
            }
            let value = read_secret_stdin(kind)?;
            let sealed = kek.seal(&host, kind, &user, &value);
            drop(value);
            store.put_secret(&host, kind, &user, &sealed).await?;
            let mut event = AuditEvent::new(AuditKind::SecretSet);
            event.host = Some(host.to_string());
            event.reason = Some(describe_secret(kind, &user));
            store.append_audit(&event).await?;
            println!(
                "sealed the {} for {host} with vault key {}",
                describe_secret(kind, &user),
                kek.id()
            );
        }
        SecretCommand::List => {
            for secret in store.secrets().await? {
                let user = if secret.user.is_empty() {
                    "*"
                } else {
                    &secret.user
                };
                println!(
                    "{}\t{}\t{user}\t{}",
                    secret.host,
                    secret.kind.as_str(),
                    secret.sealed.key_id
                );
            }
        }
        SecretCommand::Remove { host, kind, user } => {
            let host: HostName = host.parse()?;
            let removed = store.remove_secrets(&host, kind, user.as_deref()).await?;
            if removed == 0 {
                bail!("{host} has no such secret");
            }
            let mut event = AuditEvent::new(AuditKind::SecretRemoved);
            event.host = Some(host.to_string());
            event.reason = Some(format!("{removed} removed"));
            store.append_audit(&event).await?;
            println!("removed {removed} secret(s) of {host}");
        }
        SecretCommand::RotateKey { new_key_file } => {
            let old = Kek::load(&config.vault)?;
            let new = Kek::from_file(&new_key_file)?;
            if old.id() == new.id() {
                bail!("{} is the key in use already", new_key_file.display());
            }
            let mut updates = Vec::new();
            for secret in store.secrets().await? {
                // Rows already sealed by the new key (an interrupted rotation) stay.
                if secret.sealed.key_id == new.id() {
                    continue;
                }
                let value = old.open(&secret.host, secret.kind, &secret.user, &secret.sealed)?;
                updates.push((
                    secret.id,
                    new.seal(&secret.host, secret.kind, &secret.user, &value),
                ));
            }
            store.reseal(&updates).await?;
            let mut event = AuditEvent::new(AuditKind::VaultKeyRotated);
            event.reason = Some(format!("{} → {}", old.id(), new.id()));
            store.append_audit(&event).await?;
            println!(
                "sealed {} secret(s) again with vault key {}; now name {} under [vault] in the configuration",
                updates.len(),
                new.id(),
                new_key_file.display()
            );
        }
    }
    Ok(())
}

async fn ssh_ca_command(
    config: &GatewayConfig,
    store: &Store,
    command: SshCaCommand,
) -> anyhow::Result<()> {
    let kek = Kek::load(&config.vault)?;
    match command {
        SshCaCommand::Init => {
            let public = ssh_ca::init(store, &kek).await?;
            println!("{}", public.to_openssh()?);
        }
        SshCaCommand::PublicKey => {
            let ca = ssh_ca::load(store, &kek).await?;
            println!("{}", ca.public_key().to_openssh()?);
        }
        SshCaCommand::Revoke { serial, reason } => {
            let reason: String = reason
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            store.revoke_cert(serial, &reason).await?;
            let mut event = AuditEvent::new(AuditKind::SshCertRevoked);
            event.reason = Some(format!("serial={serial} {reason}"));
            store.append_audit(&event).await?;
            match &config.ssh_ca.revoked_keys_file {
                Some(path) => {
                    write_revocation_list(store, &kek, path).await?;
                    println!(
                        "revoked serial {serial}; wrote {} (sshd's RevokedKeys)",
                        path.display()
                    );
                }
                None => println!(
                    "revoked serial {serial}; write the list for sshd with `ssh-ca krl PATH`"
                ),
            }
        }
        SshCaCommand::Revoked => {
            for revoked in store.revoked_certs().await? {
                println!(
                    "{}\t{}\t{}",
                    revoked.serial,
                    clock::rfc3339_ms(revoked.revoked_ms),
                    revoked.reason
                );
            }
        }
        SshCaCommand::Krl { path } => {
            let count = write_revocation_list(store, &kek, &path).await?;
            println!("wrote {} revoking {count} serial(s)", path.display());
        }
    }
    Ok(())
}

/// The KRL of every revoked serial, written whole to `path`; how many it revokes.
async fn write_revocation_list(
    store: &Store,
    kek: &Kek,
    path: &std::path::Path,
) -> anyhow::Result<usize> {
    let ca = ssh_ca::load(store, kek).await?;
    let serials: Vec<u64> = store
        .revoked_certs()
        .await?
        .into_iter()
        .map(|r| r.serial)
        .collect();
    let list = ssh_ca::krl(
        ca.public_key(),
        &serials,
        serials.len() as u64,
        clock::now_secs(),
    )?;
    ssh_ca::write_krl(path, &list)?;
    Ok(serials.len())
}

fn describe_secret(kind: SecretKind, user: &str) -> String {
    if user.is_empty() {
        format!("{} (any user)", kind.as_str())
    } else {
        format!("{} of {user}", kind.as_str())
    }
}

fn describe(target: &GrantTarget) -> String {
    match target {
        GrantTarget::Host(host) => format!("host {host}"),
        GrantTarget::Tag(tag) => format!("tag {tag}"),
    }
}

async fn grant_command(store: &Store, command: GrantCommand) -> anyhow::Result<()> {
    match command {
        GrantCommand::Add {
            user,
            target,
            principals,
            launch_only,
        } => {
            let user: UserName = user.parse()?;
            let target = target.target()?;
            if principals.len() > ssh_ca::MAX_PRINCIPALS {
                bail!("at most {} principals a grant", ssh_ca::MAX_PRINCIPALS);
            }
            for principal in &principals {
                ssh_ca::validate_principal(principal)?;
            }
            store
                .add_grant_with(&user, &target, &principals, launch_only)
                .await?;
            if launch_only {
                println!(
                    "granted {} to {user}, launch-only (sessions with the gateway's credential)",
                    describe(&target)
                );
            } else if principals.is_empty() {
                println!("granted {} to {user}", describe(&target));
            } else {
                println!(
                    "granted {} to {user}, with SSH certificates for {}",
                    describe(&target),
                    principals.join(", ")
                );
            }
        }
        GrantCommand::List { user } => {
            let user = user.map(|u| u.parse::<UserName>()).transpose()?;
            for grant in store.grants(user.as_ref()).await? {
                println!(
                    "{}\t{}\t{}{}",
                    grant.user,
                    describe(&grant.target),
                    grant.principals.join(","),
                    if grant.launch_only {
                        "\tlaunch-only"
                    } else {
                        ""
                    }
                );
            }
        }
        GrantCommand::Remove { user, target } => {
            let user: UserName = user.parse()?;
            let target = target.target()?;
            store.remove_grant(&user, &target).await?;
            println!("removed grant of {} from {user}", describe(&target));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(validate_address("10.0.0.5").is_ok());
        assert!(validate_address("::1").is_ok());
        assert!(validate_address("db.internal").is_ok());
        assert!(validate_address("db.internal:22").is_err());
        assert!(validate_address("http://x").is_err());
        assert!(validate_address("").is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
