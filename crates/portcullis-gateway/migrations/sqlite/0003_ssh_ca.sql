-- Vault items that belong to the gateway itself (the SSH user CA's private
-- key), sealed like host secrets; and the SSH principals a grant allows.
CREATE TABLE vault_items (
    name       TEXT    PRIMARY KEY,
    key_id     TEXT    NOT NULL,
    nonce      BLOB    NOT NULL,
    sealed     BLOB    NOT NULL,
    created_ms INTEGER NOT NULL
);

-- Comma-separated login names a certificate from the gateway may carry for the
-- hosts of this grant ('' = none).
ALTER TABLE grants ADD COLUMN principals TEXT NOT NULL DEFAULT '';
