-- Users, the host catalog, grants and the audit trail.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_ms    INTEGER NOT NULL
);

CREATE TABLE hosts (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    address    TEXT    NOT NULL,
    port       INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    protocol   TEXT    NOT NULL CHECK (protocol IN ('ssh', 'rdp')),
    created_ms INTEGER NOT NULL
);

CREATE TABLE host_tags (
    host_id INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    tag     TEXT    NOT NULL,
    PRIMARY KEY (host_id, tag)
);
CREATE INDEX host_tags_by_tag ON host_tags (tag);

-- A grant names exactly one host or one tag.
CREATE TABLE grants (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    host_id    INTEGER REFERENCES hosts (id) ON DELETE CASCADE,
    tag        TEXT,
    created_ms INTEGER NOT NULL,
    CHECK ((host_id IS NULL) <> (tag IS NULL))
);
CREATE UNIQUE INDEX grants_user_host ON grants (user_id, host_id) WHERE host_id IS NOT NULL;
CREATE UNIQUE INDEX grants_user_tag ON grants (user_id, tag) WHERE tag IS NOT NULL;

-- Append-only. Names are copied, not referenced, so the trail outlives the catalog.
CREATE TABLE audit (
    id                INTEGER PRIMARY KEY,
    time_ms           INTEGER NOT NULL,
    event             TEXT    NOT NULL,
    user              TEXT,
    host              TEXT,
    source            TEXT,
    tunnel_id         TEXT,
    reason            TEXT,
    bytes_from_client INTEGER,
    bytes_to_client   INTEGER,
    duration_ms       INTEGER
);
CREATE INDEX audit_by_time ON audit (time_ms);
