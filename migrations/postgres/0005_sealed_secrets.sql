-- Sealed secrets of any owner: a plugin's secret config values (owner_kind
-- 'plugin', owner_id its name) and, next, a tenant's credentials (owner_kind
-- 'tenant'). Replaces plugin_secrets, whose rows move here unchanged.
--
-- One row per secret value that is set: its Fernet token and the version of
-- the key that sealed it (first 16 hex characters of SHA-256 of the key), so
-- that a rotation finds what is not under the current key. No foreign key to
-- the owner: owners live in different tables; plugin_state rows are never
-- deleted.
CREATE TABLE sealed_secrets (
    owner_kind             TEXT        NOT NULL CHECK (owner_kind IN ('plugin', 'tenant')),
    owner_id               TEXT        NOT NULL CHECK (owner_id <> ''),
    secret_key             TEXT        NOT NULL CHECK (secret_key <> ''),
    encrypted_value        TEXT        NOT NULL,
    encryption_key_version TEXT        NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (owner_kind, owner_id, secret_key)
);

INSERT INTO sealed_secrets (owner_kind, owner_id, secret_key, encrypted_value,
                            encryption_key_version, updated_at)
SELECT 'plugin', plugin_name, config_key, encrypted_value, encryption_key_version, updated_at
FROM plugin_secrets;

DROP TABLE plugin_secrets;
