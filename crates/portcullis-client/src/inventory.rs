//! The local inventory (SQLite through sqlx, migrations applied on open): hosts,
//! gateways, nested folders, tags and connection history. Shared by the desktop
//! app and the CLI. No secret is stored here: a host names its credential in the
//! secret store by `credential_ref`.

use std::path::Path;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use portcullis_proto::{HostName, Tag};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::ssh::AuthMethod;

pub const MAX_NOTES_CHARS: usize = 4000;
pub const MAX_TAGS: usize = 16;
pub const MAX_JUMP_HOPS: usize = 8;
pub const MAX_AUTH_METHODS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// A field a person typed is wrong; the UI shows `message` beside `field`.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("no {what} with id {id}")]
    NotFound { what: &'static str, id: i64 },
    #[error("the inventory database: {0}")]
    Database(String),
}

impl From<sqlx::Error> for InventoryError {
    fn from(e: sqlx::Error) -> InventoryError {
        InventoryError::Database(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for InventoryError {
    fn from(e: sqlx::migrate::MigrateError) -> InventoryError {
        InventoryError::Database(e.to_string())
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> InventoryError {
    InventoryError::Invalid {
        field,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Ssh,
    Rdp,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Protocol::Ssh => "ssh",
            Protocol::Rdp => "rdp",
        }
    }
}

/// How an inventory host is reached (see `dial::Route`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum RouteSpec {
    Direct,
    /// Through a gateway of the inventory; the address is its catalog name.
    Gateway {
        gateway_id: i64,
    },
    /// Through jump hosts of the inventory, by name, first to last.
    Jump {
        hops: Vec<String>,
    },
}

/// How an RDP host's session looks and what it shares. Ignored for SSH hosts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RdpSettings {
    /// A fixed desktop size; `None` (both) fits the desktop to the tab.
    #[serde(default)]
    pub width: Option<u16>,
    #[serde(default)]
    pub height: Option<u16>,
    /// Share clipboard text both ways.
    #[serde(default = "yes")]
    pub clipboard: bool,
    /// The Windows domain, when the user name does not carry one.
    #[serde(default)]
    pub domain: String,
}

fn yes() -> bool {
    true
}

impl Default for RdpSettings {
    fn default() -> RdpSettings {
        RdpSettings {
            width: None,
            height: None,
            clipboard: true,
            domain: String::new(),
        }
    }
}

/// A host as the UI edits it; `id` is `None` for a new one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostDraft {
    #[serde(default)]
    pub id: Option<i64>,
    pub name: String,
    pub address: String,
    pub port: u16,
    pub protocol: Protocol,
    pub route: RouteSpec,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub auth: Vec<AuthMethod>,
    #[serde(default)]
    pub credential_ref: Option<String>,
    #[serde(default)]
    pub folder_id: Option<i64>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub favourite: bool,
    #[serde(default)]
    pub rdp: RdpSettings,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Host {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub port: u16,
    pub protocol: Protocol,
    pub route: RouteSpec,
    pub user: String,
    pub auth: Vec<AuthMethod>,
    pub credential_ref: Option<String>,
    pub folder_id: Option<i64>,
    pub tags: Vec<String>,
    pub notes: String,
    pub favourite: bool,
    pub rdp: RdpSettings,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Host {
    pub fn draft(&self) -> HostDraft {
        HostDraft {
            id: Some(self.id),
            name: self.name.clone(),
            address: self.address.clone(),
            port: self.port,
            protocol: self.protocol,
            route: self.route.clone(),
            user: self.user.clone(),
            auth: self.auth.clone(),
            credential_ref: self.credential_ref.clone(),
            folder_id: self.folder_id,
            tags: self.tags.clone(),
            notes: self.notes.clone(),
            favourite: self.favourite,
            rdp: self.rdp.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Folder {
    pub id: i64,
    pub name: String,
    pub parent_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Gateway {
    pub id: i64,
    pub url: String,
    pub user: String,
    pub pinned_fingerprint: Option<String>,
}

/// An SSH key the app keeps: what the UI shows of it. The private half is in
/// the secret store under `secret_ref`, never here.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppKey {
    pub id: i64,
    pub name: String,
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, …
    pub algorithm: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// One OpenSSH line, for a host's `authorized_keys`.
    pub public_key: String,
    #[serde(skip)]
    pub secret_ref: String,
    /// `generated` or `imported`.
    pub origin: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryEntry {
    pub id: i64,
    pub host_name: String,
    pub gateway_url: Option<String>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub outcome: Option<String>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn plain_text(field: &'static str, value: &str, max: usize) -> Result<String, InventoryError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(invalid(field, format!("at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

fn no_spaces(field: &'static str, value: &str, max: usize) -> Result<String, InventoryError> {
    let value = plain_text(field, value, max)?;
    if value.chars().any(char::is_whitespace) {
        return Err(invalid(field, "must not contain spaces"));
    }
    Ok(value)
}

/// Desktop sizes a host may fix (as the RDP session accepts).
pub const RDP_MIN_SIZE: u16 = crate::rdp::MIN_SIZE;
pub const RDP_MAX_SIZE: u16 = crate::rdp::MAX_SIZE;

pub struct Inventory {
    pool: SqlitePool,
}

impl Inventory {
    /// Opens (creating if needed) the inventory at `path` and applies migrations.
    pub async fn open(path: &Path) -> Result<Inventory, InventoryError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| InventoryError::Database(format!("{}: {e}", parent.display())))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true);
        Inventory::with_options(options).await
    }

    /// A throwaway inventory in memory (tests).
    pub async fn in_memory() -> Result<Inventory, InventoryError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        Inventory::with_options(options).await
    }

    async fn with_options(options: SqliteConnectOptions) -> Result<Inventory, InventoryError> {
        // One connection: an in-memory database is per connection, and a desktop
        // inventory has one writer.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Inventory { pool })
    }

    pub async fn hosts(&self) -> Result<Vec<Host>, InventoryError> {
        let rows = sqlx::query(
            "SELECT id, name, address, port, protocol, route, user_name, auth, credential_ref, \
             folder_id, notes, favourite, rdp, created_at, updated_at FROM hosts ORDER BY name COLLATE NOCASE",
        )
        .fetch_all(&self.pool)
        .await?;
        let tags = sqlx::query("SELECT host_id, tag FROM host_tags ORDER BY tag")
            .fetch_all(&self.pool)
            .await?;
        let mut hosts = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.get("id");
            let protocol = match row.get::<String, _>("protocol").as_str() {
                "rdp" => Protocol::Rdp,
                _ => Protocol::Ssh,
            };
            let route: RouteSpec = serde_json::from_str(&row.get::<String, _>("route"))
                .map_err(|e| InventoryError::Database(format!("host {id}: route: {e}")))?;
            let auth: Vec<AuthMethod> = serde_json::from_str(&row.get::<String, _>("auth"))
                .map_err(|e| InventoryError::Database(format!("host {id}: auth: {e}")))?;
            // Unreadable settings fall back to the defaults rather than hiding the host.
            let rdp: RdpSettings =
                serde_json::from_str(&row.get::<String, _>("rdp")).unwrap_or_default();
            hosts.push(Host {
                id,
                name: row.get("name"),
                address: row.get("address"),
                port: row.get::<i64, _>("port") as u16,
                protocol,
                route,
                user: row.get("user_name"),
                auth,
                credential_ref: row.get("credential_ref"),
                folder_id: row.get("folder_id"),
                tags: tags
                    .iter()
                    .filter(|t| t.get::<i64, _>("host_id") == id)
                    .map(|t| t.get("tag"))
                    .collect(),
                notes: row.get("notes"),
                favourite: row.get::<i64, _>("favourite") != 0,
                rdp,
                created_at: row.get("created_at"),
                updated_at: row.get("updated_at"),
            });
        }
        Ok(hosts)
    }

    pub async fn host(&self, id: i64) -> Result<Host, InventoryError> {
        self.hosts()
            .await?
            .into_iter()
            .find(|h| h.id == id)
            .ok_or(InventoryError::NotFound { what: "host", id })
    }

    async fn validate(&self, draft: &HostDraft) -> Result<HostDraft, InventoryError> {
        let name = plain_text("name", &draft.name, 100)?;
        let mut clean = draft.clone();
        clean.name = name;
        if draft.port == 0 {
            return Err(invalid("port", "must be between 1 and 65535"));
        }
        clean.address = no_spaces("address", &draft.address, 253)?;
        clean.user = draft.user.trim().to_owned();
        if !clean.user.is_empty() {
            clean.user = no_spaces("user", &clean.user, 64)?;
        }
        if draft.notes.chars().count() > MAX_NOTES_CHARS {
            return Err(invalid(
                "notes",
                format!("at most {MAX_NOTES_CHARS} characters"),
            ));
        }
        if draft.tags.len() > MAX_TAGS {
            return Err(invalid("tags", format!("at most {MAX_TAGS} tags")));
        }
        let mut tags = Vec::with_capacity(draft.tags.len());
        for tag in &draft.tags {
            let tag: Tag = tag
                .trim()
                .parse()
                .map_err(|e| invalid("tags", format!("{tag:?}: {e}")))?;
            tags.push(tag.as_str().to_owned());
        }
        tags.sort();
        tags.dedup();
        clean.tags = tags;
        if draft.auth.len() > MAX_AUTH_METHODS {
            return Err(invalid(
                "auth",
                format!("at most {MAX_AUTH_METHODS} methods"),
            ));
        }
        let through_gateway = matches!(draft.route, RouteSpec::Gateway { .. });
        for method in &draft.auth {
            match method {
                AuthMethod::KeyFile { path }
                    if path.as_os_str().is_empty() || path.as_os_str().len() > 4096 =>
                {
                    return Err(invalid(
                        "key_file",
                        "enter the path of the private key file",
                    ));
                }
                AuthMethod::AppKey { key_id } | AuthMethod::GatewayCertificate { key_id }
                    if self.ssh_key(*key_id).await.is_err() =>
                {
                    return Err(invalid("app_key", "that key is not in the app any more"));
                }
                AuthMethod::GatewayCertificate { .. } | AuthMethod::FromGateway
                    if !through_gateway =>
                {
                    return Err(invalid(
                        "auth",
                        "the gateway signs in only for hosts reached through it: choose a gateway route",
                    ));
                }
                AuthMethod::Loaded { .. } => {
                    return Err(invalid("auth", "a key in memory is never saved"));
                }
                _ => {}
            }
        }
        if let Some(reference) = &draft.credential_ref {
            no_spaces("credential_ref", reference, 200)?;
        }
        match &draft.route {
            RouteSpec::Direct => {}
            RouteSpec::Gateway { gateway_id } => {
                if !self.gateways().await?.iter().any(|g| g.id == *gateway_id) {
                    return Err(invalid("route", "that gateway is not in the inventory"));
                }
                // Through a gateway the address is the gateway's name for the host.
                clean
                    .address
                    .parse::<HostName>()
                    .map_err(|e| invalid("address", format!("a gateway host name: {e}")))?;
            }
            RouteSpec::Jump { hops } => {
                if hops.is_empty() || hops.len() > MAX_JUMP_HOPS {
                    return Err(invalid("route", format!("1 to {MAX_JUMP_HOPS} jump hosts")));
                }
                let hosts = self.hosts().await?;
                for hop in hops {
                    if hop == &clean.name {
                        return Err(invalid("route", "a host cannot be its own jump host"));
                    }
                    match hosts.iter().find(|h| &h.name == hop) {
                        None => return Err(invalid("route", format!("unknown jump host {hop:?}"))),
                        Some(h) if h.protocol != Protocol::Ssh => {
                            return Err(invalid(
                                "route",
                                format!("jump host {hop:?} is not an SSH host"),
                            ));
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        match (draft.rdp.width, draft.rdp.height) {
            (None, None) => {}
            (Some(w), Some(h))
                if (RDP_MIN_SIZE..=RDP_MAX_SIZE).contains(&w)
                    && (RDP_MIN_SIZE..=RDP_MAX_SIZE).contains(&h) => {}
            _ => {
                return Err(invalid(
                    "resolution",
                    format!(
                        "width and height from {RDP_MIN_SIZE} to {RDP_MAX_SIZE} pixels, or fit to the tab"
                    ),
                ));
            }
        }
        clean.rdp.domain = draft.rdp.domain.trim().to_owned();
        if !clean.rdp.domain.is_empty() {
            clean.rdp.domain = no_spaces("domain", &clean.rdp.domain, 64)?;
        }
        if let Some(folder) = draft.folder_id
            && !self.folders().await?.iter().any(|f| f.id == folder)
        {
            return Err(invalid("folder", "that folder does not exist"));
        }
        Ok(clean)
    }

    /// Adds a host (no id) or replaces one (id), after validation.
    pub async fn save_host(&self, draft: &HostDraft) -> Result<Host, InventoryError> {
        let host = self.validate(draft).await?;
        let route = serde_json::to_string(&host.route).expect("route serializes");
        let auth = serde_json::to_string(&host.auth).expect("auth serializes");
        let rdp = serde_json::to_string(&host.rdp).expect("RDP settings serialize");
        let at = now();
        let mut tx = self.pool.begin().await?;
        let taken = sqlx::query("SELECT id FROM hosts WHERE name = ?")
            .bind(&host.name)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.get::<i64, _>("id"));
        if taken.is_some() && taken != host.id {
            return Err(invalid(
                "name",
                format!("a host named {:?} exists", host.name),
            ));
        }
        let id = match host.id {
            Some(id) => {
                let done = sqlx::query(
                    "UPDATE hosts SET name = ?, address = ?, port = ?, protocol = ?, route = ?, user_name = ?, \
                     auth = ?, credential_ref = ?, folder_id = ?, notes = ?, favourite = ?, rdp = ?, updated_at = ? WHERE id = ?",
                )
                .bind(&host.name)
                .bind(&host.address)
                .bind(i64::from(host.port))
                .bind(host.protocol.as_str())
                .bind(&route)
                .bind(&host.user)
                .bind(&auth)
                .bind(&host.credential_ref)
                .bind(host.folder_id)
                .bind(&host.notes)
                .bind(host.favourite)
                .bind(&rdp)
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(InventoryError::NotFound { what: "host", id });
                }
                sqlx::query("DELETE FROM host_tags WHERE host_id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                id
            }
            None => sqlx::query(
                "INSERT INTO hosts (name, address, port, protocol, route, user_name, auth, credential_ref, \
                 folder_id, notes, favourite, rdp, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&host.name)
            .bind(&host.address)
            .bind(i64::from(host.port))
            .bind(host.protocol.as_str())
            .bind(&route)
            .bind(&host.user)
            .bind(&auth)
            .bind(&host.credential_ref)
            .bind(host.folder_id)
            .bind(&host.notes)
            .bind(host.favourite)
            .bind(&rdp)
            .bind(at)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .last_insert_rowid(),
        };
        for tag in &host.tags {
            sqlx::query("INSERT INTO host_tags (host_id, tag) VALUES (?, ?)")
                .bind(id)
                .bind(tag)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.host(id).await
    }

    /// A copy named "NAME (copy)" (or "(copy 2)", …).
    pub async fn duplicate_host(&self, id: i64) -> Result<Host, InventoryError> {
        let original = self.host(id).await?;
        let names: Vec<String> = self.hosts().await?.into_iter().map(|h| h.name).collect();
        let mut draft = original.draft();
        draft.id = None;
        // The copy asks for its own password: one secret, one owner.
        draft.credential_ref = None;
        draft.name = (1..)
            .map(|n| {
                if n == 1 {
                    format!("{} (copy)", original.name)
                } else {
                    format!("{} (copy {n})", original.name)
                }
            })
            .find(|candidate| !names.contains(candidate))
            .expect("some name is free");
        self.save_host(&draft).await
    }

    /// Names the host's entry in the secret store (or forgets it with `None`).
    pub async fn set_credential_ref(
        &self,
        id: i64,
        reference: Option<&str>,
    ) -> Result<(), InventoryError> {
        if let Some(reference) = reference {
            no_spaces("credential_ref", reference, 200)?;
        }
        let done = sqlx::query("UPDATE hosts SET credential_ref = ?, updated_at = ? WHERE id = ?")
            .bind(reference)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(InventoryError::NotFound { what: "host", id });
        }
        Ok(())
    }

    /// The app's SSH keys, by name.
    pub async fn ssh_keys(&self) -> Result<Vec<AppKey>, InventoryError> {
        sqlx::query(
            "SELECT id, name, algorithm, fingerprint, public_key, secret_ref, origin, created_at
             FROM ssh_keys ORDER BY name COLLATE NOCASE",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(AppKey {
                id: r.get(0),
                name: r.get(1),
                algorithm: r.get(2),
                fingerprint: r.get(3),
                public_key: r.get(4),
                secret_ref: r.get(5),
                origin: r.get(6),
                created_at: r.get(7),
            })
        })
        .collect()
    }

    pub async fn ssh_key(&self, id: i64) -> Result<AppKey, InventoryError> {
        self.ssh_keys()
            .await?
            .into_iter()
            .find(|k| k.id == id)
            .ok_or(InventoryError::NotFound { what: "key", id })
    }

    /// Records a key whose private half is already in the secret store under
    /// `key.secret_ref`; `key.id` and `key.created_at` are set here.
    pub async fn add_ssh_key(&self, key: &AppKey) -> Result<AppKey, InventoryError> {
        let name = plain_text("name", &key.name, 64)?;
        let id = sqlx::query(
            "INSERT INTO ssh_keys (name, algorithm, fingerprint, public_key, secret_ref, origin, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&name)
        .bind(&key.algorithm)
        .bind(&key.fingerprint)
        .bind(&key.public_key)
        .bind(&key.secret_ref)
        .bind(&key.origin)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                invalid("name", format!("a key named {name:?} exists"))
            }
            _ => e.into(),
        })?
        .last_insert_rowid();
        self.ssh_key(id).await
    }

    /// Forgets a key; refused while a host signs in with it.
    pub async fn delete_ssh_key(&self, id: i64) -> Result<AppKey, InventoryError> {
        let key = self.ssh_key(id).await?;
        let users: Vec<String> = self
            .hosts()
            .await?
            .into_iter()
            .filter(|h| {
                h.auth.iter().any(|m| {
                    matches!(m, AuthMethod::AppKey { key_id } | AuthMethod::GatewayCertificate { key_id } if *key_id == id)
                })
            })
            .map(|h| h.name)
            .collect();
        if !users.is_empty() {
            return Err(invalid(
                "key",
                format!("{} signs in with it", users.join(", ")),
            ));
        }
        sqlx::query("DELETE FROM ssh_keys WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(key)
    }

    /// Deletes a host; refused while another host uses it as a jump host.
    pub async fn delete_host(&self, id: i64) -> Result<(), InventoryError> {
        let host = self.host(id).await?;
        let users: Vec<String> = self
            .hosts()
            .await?
            .into_iter()
            .filter(|h| matches!(&h.route, RouteSpec::Jump { hops } if hops.contains(&host.name)))
            .map(|h| h.name)
            .collect();
        if !users.is_empty() {
            return Err(invalid(
                "route",
                format!("{} is the jump host of {}", host.name, users.join(", ")),
            ));
        }
        sqlx::query("DELETE FROM hosts WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn folders(&self) -> Result<Vec<Folder>, InventoryError> {
        Ok(
            sqlx::query("SELECT id, name, parent_id FROM folders ORDER BY name COLLATE NOCASE")
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| Folder {
                    id: r.get("id"),
                    name: r.get("name"),
                    parent_id: r.get("parent_id"),
                })
                .collect(),
        )
    }

    pub async fn add_folder(
        &self,
        name: &str,
        parent_id: Option<i64>,
    ) -> Result<Folder, InventoryError> {
        let name = plain_text("name", name, 100)?;
        let folders = self.folders().await?;
        if let Some(parent) = parent_id
            && !folders.iter().any(|f| f.id == parent)
        {
            return Err(invalid("parent", "that folder does not exist"));
        }
        if folders
            .iter()
            .any(|f| f.parent_id == parent_id && f.name == name)
        {
            return Err(invalid(
                "name",
                format!("a folder named {name:?} exists here"),
            ));
        }
        let id = sqlx::query("INSERT INTO folders (name, parent_id) VALUES (?, ?)")
            .bind(&name)
            .bind(parent_id)
            .execute(&self.pool)
            .await?
            .last_insert_rowid();
        Ok(Folder {
            id,
            name,
            parent_id,
        })
    }

    /// Deletes a folder and its subfolders; their hosts stay, outside any folder.
    pub async fn delete_folder(&self, id: i64) -> Result<(), InventoryError> {
        let done = sqlx::query("DELETE FROM folders WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(InventoryError::NotFound { what: "folder", id });
        }
        Ok(())
    }

    pub async fn gateways(&self) -> Result<Vec<Gateway>, InventoryError> {
        Ok(
            sqlx::query("SELECT id, url, user_name, pinned_fingerprint FROM gateways ORDER BY url")
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| Gateway {
                    id: r.get("id"),
                    url: r.get("url"),
                    user: r.get("user_name"),
                    pinned_fingerprint: r.get("pinned_fingerprint"),
                })
                .collect(),
        )
    }

    /// Adds or updates (by URL) a gateway.
    pub async fn save_gateway(
        &self,
        url: &str,
        user: &str,
        pinned_fingerprint: Option<&str>,
    ) -> Result<Gateway, InventoryError> {
        let url = crate::api::GatewayUrl::parse(url)
            .map_err(|e| invalid("url", e.to_string()))?
            .to_string();
        let user = no_spaces("user", user, 64)?;
        sqlx::query(
            "INSERT INTO gateways (url, user_name, pinned_fingerprint) VALUES (?, ?, ?) \
             ON CONFLICT (url) DO UPDATE SET user_name = excluded.user_name, \
             pinned_fingerprint = excluded.pinned_fingerprint",
        )
        .bind(&url)
        .bind(&user)
        .bind(pinned_fingerprint)
        .execute(&self.pool)
        .await?;
        self.gateways()
            .await?
            .into_iter()
            .find(|g| g.url == url)
            .ok_or_else(|| InventoryError::Database("the gateway vanished".into()))
    }

    /// Deletes a gateway; refused while hosts are routed through it.
    pub async fn delete_gateway(&self, id: i64) -> Result<(), InventoryError> {
        let users: Vec<String> = self
            .hosts()
            .await?
            .into_iter()
            .filter(|h| h.route == RouteSpec::Gateway { gateway_id: id })
            .map(|h| h.name)
            .collect();
        if !users.is_empty() {
            return Err(invalid("route", format!("used by {}", users.join(", "))));
        }
        let done = sqlx::query("DELETE FROM gateways WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(InventoryError::NotFound {
                what: "gateway",
                id,
            });
        }
        Ok(())
    }

    /// A connection starts; returns the history entry to finish.
    pub async fn record_start(
        &self,
        host_name: &str,
        gateway_url: Option<&str>,
    ) -> Result<i64, InventoryError> {
        Ok(
            sqlx::query(
                "INSERT INTO history (host_name, gateway_url, started_at) VALUES (?, ?, ?)",
            )
            .bind(host_name)
            .bind(gateway_url)
            .bind(now())
            .execute(&self.pool)
            .await?
            .last_insert_rowid(),
        )
    }

    pub async fn record_end(&self, id: i64, outcome: &str) -> Result<(), InventoryError> {
        let outcome: String = outcome.chars().take(200).collect();
        sqlx::query("UPDATE history SET ended_at = ?, outcome = ? WHERE id = ?")
            .bind(now())
            .bind(outcome)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn recent(&self, limit: u32) -> Result<Vec<HistoryEntry>, InventoryError> {
        Ok(sqlx::query(
            "SELECT id, host_name, gateway_url, started_at, ended_at, outcome FROM history \
             ORDER BY started_at DESC, id DESC LIMIT ?",
        )
        .bind(i64::from(limit.min(1000)))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| HistoryEntry {
            id: r.get("id"),
            host_name: r.get("host_name"),
            gateway_url: r.get("gateway_url"),
            started_at: r.get("started_at"),
            ended_at: r.get("ended_at"),
            outcome: r.get("outcome"),
        })
        .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(name: &str) -> HostDraft {
        HostDraft {
            id: None,
            name: name.into(),
            address: "10.0.0.5".into(),
            port: 22,
            protocol: Protocol::Ssh,
            route: RouteSpec::Direct,
            user: "admin".into(),
            auth: vec![AuthMethod::Agent],
            credential_ref: None,
            folder_id: None,
            tags: vec!["prod".into(), "web".into(), "prod".into()],
            notes: "rack 4".into(),
            favourite: false,
            rdp: RdpSettings::default(),
        }
    }

    #[tokio::test]
    async fn rdp_hosts_keep_their_display_settings_and_bad_ones_are_refused() {
        let inventory = Inventory::in_memory().await.unwrap();
        let mut rdp = draft("win1");
        rdp.protocol = Protocol::Rdp;
        rdp.port = 3389;
        rdp.rdp = RdpSettings {
            width: Some(1280),
            height: Some(720),
            clipboard: false,
            domain: " CORP ".into(),
        };
        let saved = inventory.save_host(&rdp).await.unwrap();
        assert_eq!(saved.rdp.width, Some(1280));
        assert!(!saved.rdp.clipboard);
        assert_eq!(saved.rdp.domain, "CORP");
        let copy = inventory.duplicate_host(saved.id).await.unwrap();
        assert_eq!(copy.rdp, saved.rdp);
        for (width, height) in [
            (Some(1280), None),
            (Some(100), Some(720)),
            (Some(1280), Some(9000)),
        ] {
            let mut bad = rdp.clone();
            bad.name = "bad".into();
            bad.rdp.width = width;
            bad.rdp.height = height;
            assert_eq!(field(inventory.save_host(&bad).await), "resolution");
        }
        let mut bad = rdp.clone();
        bad.name = "bad".into();
        bad.rdp.domain = "two words".into();
        assert_eq!(field(inventory.save_host(&bad).await), "domain");
        // An SSH host saved by an older client (no settings) reads the defaults.
        let ssh = inventory.save_host(&draft("plain")).await.unwrap();
        assert_eq!(ssh.rdp, RdpSettings::default());
    }

    fn field(result: Result<Host, InventoryError>) -> &'static str {
        match result {
            Err(InventoryError::Invalid { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn migrations_apply_on_a_file_from_empty_and_hosts_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/inventory.db");
        let inventory = Inventory::open(&path).await.unwrap();
        assert!(inventory.hosts().await.unwrap().is_empty());
        let folder = inventory.add_folder("Datacentre", None).await.unwrap();
        let sub = inventory
            .add_folder("Rack 4", Some(folder.id))
            .await
            .unwrap();
        let mut web = draft("web1");
        web.folder_id = Some(sub.id);
        let saved = inventory.save_host(&web).await.unwrap();
        assert_eq!(
            saved.tags,
            ["prod", "web"],
            "tags are sorted and deduplicated"
        );
        assert_eq!(saved.folder_id, Some(sub.id));
        drop(inventory);
        // Reopened: the same data, migrations not applied twice.
        let inventory = Inventory::open(&path).await.unwrap();
        let hosts = inventory.hosts().await.unwrap();
        assert_eq!(hosts, vec![saved.clone()]);
        // Deleting the parent folder removes the subfolder; the host stays, unfiled.
        inventory.delete_folder(folder.id).await.unwrap();
        assert!(inventory.folders().await.unwrap().is_empty());
        assert_eq!(inventory.host(saved.id).await.unwrap().folder_id, None);
    }

    #[tokio::test]
    async fn edits_duplicates_and_deletes() {
        let inventory = Inventory::in_memory().await.unwrap();
        let web = inventory.save_host(&draft("web1")).await.unwrap();
        let mut edited = web.draft();
        edited.port = 2222;
        edited.favourite = true;
        edited.tags = vec!["staging".into()];
        let edited = inventory.save_host(&edited).await.unwrap();
        assert_eq!((edited.port, edited.favourite), (2222, true));
        assert_eq!(edited.tags, ["staging"]);
        assert_eq!(edited.created_at, web.created_at);
        inventory
            .set_credential_ref(web.id, Some("password/1-1"))
            .await
            .unwrap();
        let copy = inventory.duplicate_host(web.id).await.unwrap();
        assert_eq!(copy.name, "web1 (copy)");
        // One saved secret, one owner: the copy asks for its own.
        assert_eq!(copy.credential_ref, None);
        assert_eq!(
            inventory
                .host(web.id)
                .await
                .unwrap()
                .credential_ref
                .as_deref(),
            Some("password/1-1")
        );
        let copy2 = inventory.duplicate_host(web.id).await.unwrap();
        assert_eq!(copy2.name, "web1 (copy 2)");
        inventory.delete_host(copy.id).await.unwrap();
        assert_eq!(inventory.hosts().await.unwrap().len(), 2);
        assert!(matches!(
            inventory.delete_host(copy.id).await,
            Err(InventoryError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn bad_input_names_the_field_and_changes_nothing() {
        let inventory = Inventory::in_memory().await.unwrap();
        inventory.save_host(&draft("web1")).await.unwrap();
        let mut bad = draft("  ");
        assert_eq!(field(inventory.save_host(&bad).await), "name");
        bad = draft("web1");
        assert_eq!(
            field(inventory.save_host(&bad).await),
            "name",
            "duplicate name"
        );
        bad = draft("x");
        bad.port = 0;
        assert_eq!(field(inventory.save_host(&bad).await), "port");
        bad = draft("x");
        bad.address = "two words".into();
        assert_eq!(field(inventory.save_host(&bad).await), "address");
        bad = draft("x");
        bad.tags = vec!["not a tag!".into()];
        assert_eq!(field(inventory.save_host(&bad).await), "tags");
        bad = draft("x");
        bad.route = RouteSpec::Jump {
            hops: vec!["nowhere".into()],
        };
        assert_eq!(field(inventory.save_host(&bad).await), "route");
        bad = draft("x");
        bad.route = RouteSpec::Gateway { gateway_id: 99 };
        assert_eq!(field(inventory.save_host(&bad).await), "route");
        bad = draft("x");
        bad.notes = "n".repeat(MAX_NOTES_CHARS + 1);
        assert_eq!(field(inventory.save_host(&bad).await), "notes");
        bad = draft("x");
        bad.folder_id = Some(7);
        assert_eq!(field(inventory.save_host(&bad).await), "folder");
        bad = draft("x");
        bad.auth = vec![AuthMethod::KeyFile {
            path: std::path::PathBuf::new(),
        }];
        assert_eq!(field(inventory.save_host(&bad).await), "key_file");
        assert_eq!(inventory.hosts().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn routes_gateways_and_history() {
        let inventory = Inventory::in_memory().await.unwrap();
        let jump = inventory.save_host(&draft("bastion")).await.unwrap();
        let mut inner = draft("db1");
        inner.route = RouteSpec::Jump {
            hops: vec!["bastion".into()],
        };
        inventory.save_host(&inner).await.unwrap();
        // The jump host cannot go while db1 goes through it.
        assert!(matches!(
            inventory.delete_host(jump.id).await,
            Err(InventoryError::Invalid { field: "route", .. })
        ));
        assert!(
            inventory
                .save_gateway("not a url", "alice", None)
                .await
                .is_err()
        );
        let gateway = inventory
            .save_gateway("https://gw.example.com", "alice", Some("ab:cd"))
            .await
            .unwrap();
        let mut via = draft("vnet1");
        via.route = RouteSpec::Gateway {
            gateway_id: gateway.id,
        };
        assert_eq!(
            field(inventory.save_host(&via).await),
            "address",
            "an address is no gateway host name"
        );
        via.address = "vnet1".into();
        inventory.save_host(&via).await.unwrap();
        assert!(inventory.delete_gateway(gateway.id).await.is_err());

        let first = inventory.record_start("db1", None).await.unwrap();
        inventory.record_end(first, "exited 0").await.unwrap();
        let second = inventory
            .record_start("vnet1", Some("https://gw.example.com"))
            .await
            .unwrap();
        let recent = inventory.recent(10).await.unwrap();
        assert_eq!(recent[0].id, second);
        assert_eq!(recent[1].outcome.as_deref(), Some("exited 0"));
        assert_eq!(recent[0].ended_at, None);
    }
}
