//! The gateway's database: users, hosts, grants and the audit trail, in SQLite
//! through sqlx with migrations. Queries are checked at run time so the crate
//! builds without a database.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use portcullis_proto::policy::GrantTarget;
use portcullis_proto::wire::Protocol;
use portcullis_proto::{HostName, Tag, UserName};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::audit::{AuditEvent, AuditRecord};
use crate::vault::{Sealed, SecretKind};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database holds an invalid value: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A secret as stored: sealed, never its value.
#[derive(Debug, Clone)]
pub struct SecretRecord {
    pub id: i64,
    pub host: HostName,
    pub kind: SecretKind,
    pub user: String,
    pub sealed: Sealed,
    pub created_ms: i64,
}

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: i64,
    pub name: UserName,
    pub password_hash: String,
    pub is_admin: bool,
    pub disabled: bool,
}

#[derive(Debug, Clone)]
pub struct HostRecord {
    pub id: i64,
    pub name: HostName,
    pub address: String,
    pub port: u16,
    pub protocol: Protocol,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone)]
pub struct GrantRecord {
    pub id: i64,
    pub user: UserName,
    pub target: GrantTarget,
    /// Login names a certificate from the gateway may carry for these hosts.
    pub principals: Vec<String>,
    /// Sessions with the gateway's credential only: no bare tunnel, no certificate.
    pub launch_only: bool,
}

/// A revoked certificate serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCert {
    pub serial: u64,
    pub reason: String,
    pub revoked_ms: i64,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

fn now_ms() -> i64 {
    crate::clock::now_ms() as i64
}

fn corrupt<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl Store {
    /// Opens (creating if asked) the database and applies pending migrations.
    pub async fn open(path: &Path, create: bool) -> StoreResult<Store> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            // INVARIANT: an audit row is durable once its insert returns.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Store { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ----- users -----

    pub async fn add_user(
        &self,
        name: &UserName,
        password_hash: &str,
        admin: bool,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (name, password_hash, is_admin, created_ms) VALUES (?, ?, ?, ?)",
        )
        .bind(name.as_str())
        .bind(password_hash)
        .bind(admin)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("user {name} exists already"))
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    pub async fn user(&self, name: &UserName) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query(
            "SELECT id, name, password_hash, is_admin, disabled FROM users WHERE name = ?",
        )
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    pub async fn users(&self) -> StoreResult<Vec<UserRecord>> {
        let rows = sqlx::query(
            "SELECT id, name, password_hash, is_admin, disabled FROM users ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    pub async fn set_user_disabled(&self, name: &UserName, disabled: bool) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET disabled = ? WHERE name = ?")
            .bind(disabled)
            .bind(name.as_str())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no user named {name}")));
        }
        Ok(())
    }

    // ----- hosts -----

    pub async fn add_host(
        &self,
        name: &HostName,
        address: &str,
        port: u16,
        protocol: Protocol,
        tags: &[Tag],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO hosts (name, address, port, protocol, created_ms) VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(name.as_str())
        .bind(address)
        .bind(i64::from(port))
        .bind(protocol.as_str())
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("host {name} exists already"))
            } else {
                e.into()
            }
        })?
        .get(0);
        for tag in tags {
            sqlx::query("INSERT OR IGNORE INTO host_tags (host_id, tag) VALUES (?, ?)")
                .bind(id)
                .bind(tag.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn remove_host(&self, name: &HostName) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM hosts WHERE name = ?")
            .bind(name.as_str())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no host named {name}")));
        }
        Ok(())
    }

    pub async fn host(&self, name: &HostName) -> StoreResult<Option<HostRecord>> {
        let row = sqlx::query("SELECT id, name, address, port, protocol FROM hosts WHERE name = ?")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let mut host = host_from_row(&row)?;
                host.tags = self.tags_of(host.id).await?;
                Ok(Some(host))
            }
        }
    }

    pub async fn hosts(&self) -> StoreResult<Vec<HostRecord>> {
        let rows = sqlx::query("SELECT id, name, address, port, protocol FROM hosts ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let mut hosts = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut host = host_from_row(row)?;
            host.tags = self.tags_of(host.id).await?;
            hosts.push(host);
        }
        Ok(hosts)
    }

    async fn tags_of(&self, host_id: i64) -> StoreResult<Vec<Tag>> {
        let rows = sqlx::query("SELECT tag FROM host_tags WHERE host_id = ? ORDER BY tag")
            .bind(host_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Tag::from_str(r.get::<&str, _>(0)).map_err(corrupt("tag")))
            .collect()
    }

    // ----- grants -----

    pub async fn add_grant(&self, user: &UserName, target: &GrantTarget) -> StoreResult<()> {
        self.add_grant_with(user, target, &[], false).await
    }

    /// A grant whose hosts the user may also reach with an SSH certificate from
    /// the gateway, as any of `principals` (validated by the caller); or, when
    /// `launch_only`, only in sessions the gateway's credential logs on.
    pub async fn add_grant_with(
        &self,
        user: &UserName,
        target: &GrantTarget,
        principals: &[String],
        launch_only: bool,
    ) -> StoreResult<()> {
        let user_id = self.user_id(user).await?;
        let principals = principals.join(",");
        let query = match target {
            GrantTarget::Host(host) => {
                let host_id: i64 = sqlx::query("SELECT id FROM hosts WHERE name = ?")
                    .bind(host.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("no host named {host}")))?
                    .get(0);
                sqlx::query(
                    "INSERT INTO grants (user_id, host_id, principals, launch_only, created_ms)
                     VALUES (?, ?, ?, ?, ?)",
                )
                .bind(user_id)
                .bind(host_id)
                .bind(principals)
                .bind(launch_only)
            }
            GrantTarget::Tag(tag) => sqlx::query(
                "INSERT INTO grants (user_id, tag, principals, launch_only, created_ms)
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(user_id)
            .bind(tag.as_str())
            .bind(principals)
            .bind(launch_only),
        };
        query
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("user {user} has that grant already"))
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    pub async fn remove_grant(&self, user: &UserName, target: &GrantTarget) -> StoreResult<()> {
        let user_id = self.user_id(user).await?;
        let done = match target {
            GrantTarget::Host(host) => sqlx::query(
                "DELETE FROM grants WHERE user_id = ? AND host_id = (SELECT id FROM hosts WHERE name = ?)",
            )
            .bind(user_id)
            .bind(host.as_str()),
            GrantTarget::Tag(tag) => sqlx::query("DELETE FROM grants WHERE user_id = ? AND tag = ?")
                .bind(user_id)
                .bind(tag.as_str()),
        }
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "user {user} has no such grant"
            )));
        }
        Ok(())
    }

    /// All grants, or those of one user.
    pub async fn grants(&self, user: Option<&UserName>) -> StoreResult<Vec<GrantRecord>> {
        let rows = sqlx::query(
            "SELECT g.id, u.name, h.name, g.tag, g.principals, g.launch_only FROM grants g
             JOIN users u ON u.id = g.user_id
             LEFT JOIN hosts h ON h.id = g.host_id
             WHERE ?1 IS NULL OR u.name = ?1
             ORDER BY u.name, g.id",
        )
        .bind(user.map(UserName::as_str))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let user = UserName::from_str(r.get::<&str, _>(1)).map_err(corrupt("user name"))?;
                let target = match (r.get::<Option<&str>, _>(2), r.get::<Option<&str>, _>(3)) {
                    (Some(host), None) => {
                        GrantTarget::Host(HostName::from_str(host).map_err(corrupt("host name"))?)
                    }
                    (None, Some(tag)) => {
                        GrantTarget::Tag(Tag::from_str(tag).map_err(corrupt("tag"))?)
                    }
                    _ => {
                        return Err(StoreError::Corrupt(
                            "grant with neither host nor tag".into(),
                        ));
                    }
                };
                let principals: String = r.get(4);
                Ok(GrantRecord {
                    id: r.get(0),
                    user,
                    target,
                    principals: principals
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    launch_only: r.get(5),
                })
            })
            .collect()
    }

    async fn user_id(&self, user: &UserName) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT id FROM users WHERE name = ?")
            .bind(user.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no user named {user}")))?
            .get(0))
    }

    // ----- vault -----

    /// Attaches a sealed secret to a host, replacing one of the same kind and user.
    pub async fn put_secret(
        &self,
        host: &HostName,
        kind: SecretKind,
        user: &str,
        sealed: &Sealed,
    ) -> StoreResult<()> {
        let host_id = self.host_id(host).await?;
        sqlx::query(
            "INSERT INTO secrets (host_id, kind, user, key_id, nonce, sealed, created_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (host_id, kind, user) DO UPDATE SET
               key_id = excluded.key_id, nonce = excluded.nonce,
               sealed = excluded.sealed, created_ms = excluded.created_ms",
        )
        .bind(host_id)
        .bind(kind.as_str())
        .bind(user)
        .bind(&sealed.key_id)
        .bind(&sealed.nonce)
        .bind(&sealed.sealed)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every secret, sealed, with its host, kind and user.
    pub async fn secrets(&self) -> StoreResult<Vec<SecretRecord>> {
        let rows = sqlx::query(
            "SELECT s.id, h.name, s.kind, s.user, s.key_id, s.nonce, s.sealed, s.created_ms
             FROM secrets s JOIN hosts h ON h.id = s.host_id ORDER BY h.name, s.kind, s.user",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SecretRecord {
                    id: r.get(0),
                    host: HostName::from_str(r.get::<&str, _>(1)).map_err(corrupt("host name"))?,
                    kind: SecretKind::parse(r.get::<&str, _>(2))
                        .ok_or_else(|| StoreError::Corrupt("secret kind".into()))?,
                    user: r.get(3),
                    sealed: Sealed {
                        key_id: r.get(4),
                        nonce: r.get(5),
                        sealed: r.get(6),
                    },
                    created_ms: r.get(7),
                })
            })
            .collect()
    }

    /// Removes a host's secrets (of one kind and user when given); how many went.
    pub async fn remove_secrets(
        &self,
        host: &HostName,
        kind: Option<SecretKind>,
        user: Option<&str>,
    ) -> StoreResult<u64> {
        let host_id = self.host_id(host).await?;
        let done = sqlx::query(
            "DELETE FROM secrets WHERE host_id = ?
               AND (? IS NULL OR kind = ?) AND (? IS NULL OR user = ?)",
        )
        .bind(host_id)
        .bind(kind.map(SecretKind::as_str))
        .bind(kind.map(SecretKind::as_str))
        .bind(user)
        .bind(user)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Records a revoked certificate serial; revoking one twice is a conflict.
    pub async fn revoke_cert(&self, serial: u64, reason: &str) -> StoreResult<()> {
        let serial = i64::try_from(serial)
            .map_err(|_| StoreError::NotFound(format!("no certificate has serial {serial}")))?;
        sqlx::query("INSERT INTO revoked_certs (serial, reason, revoked_ms) VALUES (?, ?, ?)")
            .bind(serial)
            .bind(reason)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("serial {serial} is revoked already"))
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    /// Every revoked serial, smallest first.
    pub async fn revoked_certs(&self) -> StoreResult<Vec<RevokedCert>> {
        let rows =
            sqlx::query("SELECT serial, reason, revoked_ms FROM revoked_certs ORDER BY serial")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(RevokedCert {
                    serial: u64::try_from(r.get::<i64, _>(0)).map_err(corrupt("serial"))?,
                    reason: r.get(1),
                    revoked_ms: r.get(2),
                })
            })
            .collect()
    }

    /// Replaces sealed values in one transaction (a key rotation): all or none.
    pub async fn reseal(&self, updates: &[(i64, Sealed)]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for (id, sealed) in updates {
            let done =
                sqlx::query("UPDATE secrets SET key_id = ?, nonce = ?, sealed = ? WHERE id = ?")
                    .bind(&sealed.key_id)
                    .bind(&sealed.nonce)
                    .bind(&sealed.sealed)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict(
                    "the secrets changed during the rotation; run it again".into(),
                ));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Seals-at-rest storage for the gateway's own items (the SSH user CA).
    /// `Conflict` when `name` exists and `replace` is false.
    pub async fn put_item(&self, name: &str, sealed: &Sealed, replace: bool) -> StoreResult<()> {
        sqlx::query(if replace {
            "INSERT OR REPLACE INTO vault_items (name, key_id, nonce, sealed, created_ms) VALUES (?, ?, ?, ?, ?)"
        } else {
            "INSERT INTO vault_items (name, key_id, nonce, sealed, created_ms) VALUES (?, ?, ?, ?, ?)"
        })
        .bind(name)
        .bind(&sealed.key_id)
        .bind(&sealed.nonce)
        .bind(&sealed.sealed)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("the vault holds {name} already"))
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    pub async fn item(&self, name: &str) -> StoreResult<Option<Sealed>> {
        Ok(
            sqlx::query("SELECT key_id, nonce, sealed FROM vault_items WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| Sealed {
                    key_id: r.get(0),
                    nonce: r.get(1),
                    sealed: r.get(2),
                }),
        )
    }

    async fn host_id(&self, host: &HostName) -> StoreResult<i64> {
        sqlx::query("SELECT id FROM hosts WHERE name = ?")
            .bind(host.as_str())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::NotFound(format!("no host named {host}")))
    }

    // ----- audit -----

    /// INVARIANT: returns only once the row is committed, so callers write the event
    /// before acknowledging the action it records.
    pub async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit (time_ms, event, user, host, source, tunnel_id, reason,
                                bytes_from_client, bytes_to_client, duration_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(event.time_ms as i64)
        .bind(event.kind.as_str())
        .bind(event.user.as_deref())
        .bind(event.host.as_deref())
        .bind(event.source.as_deref())
        .bind(event.tunnel_id.as_deref())
        .bind(event.reason.as_deref())
        .bind(event.bytes_from_client.map(|b| b as i64))
        .bind(event.bytes_to_client.map(|b| b as i64))
        .bind(event.duration_ms.map(|b| b as i64))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn audit(&self) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT id, time_ms, event, user, host, source, tunnel_id, reason,
                    bytes_from_client, bytes_to_client, duration_ms
             FROM audit ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| AuditRecord {
                id: r.get(0),
                time_ms: r.get(1),
                event: r.get(2),
                user: r.get(3),
                host: r.get(4),
                source: r.get(5),
                tunnel_id: r.get(6),
                reason: r.get(7),
                bytes_from_client: r.get(8),
                bytes_to_client: r.get(9),
                duration_ms: r.get(10),
            })
            .collect())
    }
}

fn user_from_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: r.get(0),
        name: UserName::from_str(r.get::<&str, _>(1)).map_err(corrupt("user name"))?,
        password_hash: r.get(2),
        is_admin: r.get(3),
        disabled: r.get(4),
    })
}

fn host_from_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<HostRecord> {
    let port: i64 = r.get(3);
    Ok(HostRecord {
        id: r.get(0),
        name: HostName::from_str(r.get::<&str, _>(1)).map_err(corrupt("host name"))?,
        address: r.get(2),
        port: u16::try_from(port).map_err(corrupt("port"))?,
        protocol: Protocol::from_str(r.get::<&str, _>(4)).map_err(corrupt("protocol"))?,
        tags: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditKind;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), true).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn users_hosts_grants_round_trip() {
        let (_dir, s) = store().await;
        let alice: UserName = "alice".parse().unwrap();
        let web: HostName = "web1".parse().unwrap();
        let prod: Tag = "prod".parse().unwrap();
        s.add_user(&alice, "hash", false).await.unwrap();
        assert!(matches!(
            s.add_user(&alice, "hash", false).await,
            Err(StoreError::Conflict(_))
        ));
        s.add_host(
            &web,
            "10.0.0.5",
            22,
            Protocol::Ssh,
            std::slice::from_ref(&prod),
        )
        .await
        .unwrap();
        let host = s.host(&web).await.unwrap().unwrap();
        assert_eq!(
            (host.port, host.protocol, host.tags.clone()),
            (22, Protocol::Ssh, vec![prod.clone()])
        );
        s.add_grant(&alice, &GrantTarget::Host(web.clone()))
            .await
            .unwrap();
        s.add_grant(&alice, &GrantTarget::Tag(prod.clone()))
            .await
            .unwrap();
        assert!(matches!(
            s.add_grant(&alice, &GrantTarget::Tag(prod.clone())).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(s.grants(Some(&alice)).await.unwrap().len(), 2);
        s.remove_host(&web).await.unwrap();
        assert_eq!(
            s.grants(None).await.unwrap().len(),
            1,
            "host grant goes with the host"
        );
        s.set_user_disabled(&alice, true).await.unwrap();
        assert!(s.user(&alice).await.unwrap().unwrap().disabled);
        assert!(matches!(
            s.set_user_disabled(&"bob".parse().unwrap(), true).await,
            Err(StoreError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn launch_only_grants_and_revoked_serials_are_kept() {
        let (_dir, s) = store().await;
        let bob: UserName = "bob".parse().unwrap();
        let desk: Tag = "desk".parse().unwrap();
        s.add_user(&bob, "hash", false).await.unwrap();
        s.add_grant_with(&bob, &GrantTarget::Tag(desk.clone()), &[], true)
            .await
            .unwrap();
        let grants = s.grants(Some(&bob)).await.unwrap();
        assert_eq!(grants.len(), 1);
        assert!(grants[0].launch_only);
        s.revoke_cert(1 << 62, "laptop stolen").await.unwrap();
        s.revoke_cert(7, "left").await.unwrap();
        assert!(matches!(
            s.revoke_cert(7, "again").await,
            Err(StoreError::Conflict(_))
        ));
        assert!(s.revoke_cert(u64::MAX, "too big").await.is_err());
        let revoked = s.revoked_certs().await.unwrap();
        let serials: Vec<u64> = revoked.iter().map(|r| r.serial).collect();
        assert_eq!(serials, [7, 1 << 62]);
        assert_eq!(revoked[1].reason, "laptop stolen");
    }

    #[tokio::test]
    async fn audit_appends_in_order() {
        let (_dir, s) = store().await;
        let mut event = AuditEvent::new(AuditKind::LoginOk);
        event.user = Some("alice".into());
        s.append_audit(&event).await.unwrap();
        event.kind = AuditKind::TunnelClose;
        event.bytes_from_client = Some(7);
        s.append_audit(&event).await.unwrap();
        let rows = s.audit().await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].event, "tunnel_close");
        assert_eq!(rows[1].bytes_from_client, Some(7));
    }
}
