-- The desktop app's and the CLI's inventory. No secret is ever stored here:
-- `credential_ref` names an entry of the secret store (OS keychain or the
-- encrypted file store).

CREATE TABLE folders (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    parent_id INTEGER REFERENCES folders(id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX folders_unique_name ON folders (ifnull(parent_id, 0), name);

CREATE TABLE gateways (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    user_name TEXT NOT NULL,
    pinned_fingerprint TEXT
);

CREATE TABLE hosts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    address TEXT NOT NULL,
    port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    protocol TEXT NOT NULL CHECK (protocol IN ('ssh', 'rdp')),
    -- JSON: {"via":"direct"} | {"via":"gateway","gateway_id":N} | {"via":"jump","hops":["name",...]}
    route TEXT NOT NULL,
    user_name TEXT NOT NULL DEFAULT '',
    -- JSON list of auth methods, tried in order.
    auth TEXT NOT NULL DEFAULT '[]',
    credential_ref TEXT,
    folder_id INTEGER REFERENCES folders(id) ON DELETE SET NULL,
    notes TEXT NOT NULL DEFAULT '',
    favourite INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE host_tags (
    host_id INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (host_id, tag)
);

CREATE TABLE history (
    id INTEGER PRIMARY KEY,
    host_name TEXT NOT NULL,
    -- Set for hosts launched from a gateway's list (not in the local inventory).
    gateway_url TEXT,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    outcome TEXT
);
CREATE INDEX history_recent ON history (started_at DESC);
