-- Secrets attached to hosts (RDP passwords, SSH private keys), sealed with
-- AES-256-GCM under the vault key, which is never stored in this database.
-- `key_id` names the key that sealed a row; `user` is '' when the secret is the
-- host's for any user name.
CREATE TABLE secrets (
    id         INTEGER PRIMARY KEY,
    host_id    INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('password', 'ssh-key')),
    user       TEXT    NOT NULL DEFAULT '',
    key_id     TEXT    NOT NULL,
    nonce      BLOB    NOT NULL,
    sealed     BLOB    NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (host_id, kind, user)
);
