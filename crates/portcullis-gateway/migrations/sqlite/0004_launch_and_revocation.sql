-- A launch-only grant opens tunnels only for sessions the gateway's own
-- credential logs on (the help-desk case): never a bare tunnel, never a certificate.
ALTER TABLE grants ADD COLUMN launch_only INTEGER NOT NULL DEFAULT 0;

-- Certificate serials an operator revoked; the KRL for sshd is written from these.
CREATE TABLE revoked_certs (
    serial     INTEGER PRIMARY KEY,
    reason     TEXT    NOT NULL,
    revoked_ms INTEGER NOT NULL
);
