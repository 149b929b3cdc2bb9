-- SSH keys the app keeps: the public half and its fingerprint here; the private
-- key only in the secret store (the OS keychain or the encrypted file), under
-- `secret_ref`. Never a private key in this database.
CREATE TABLE ssh_keys (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    algorithm   TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    public_key  TEXT    NOT NULL,
    secret_ref  TEXT    NOT NULL,
    -- 'generated' in the app or 'imported' from a file
    origin      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
