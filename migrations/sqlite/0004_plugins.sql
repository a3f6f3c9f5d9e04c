-- Plugins as operators left them: whether each one is active, its non-secret
-- config, and its secret config values, encrypted.
--
-- The plugins themselves (plugin.json) live on disk. A row here outlives its
-- plugin's directory, so a plugin that is removed and put back keeps its
-- config.

CREATE TABLE plugin_state (
    plugin_name TEXT    PRIMARY KEY NOT NULL,
    active      INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),
    -- Non-secret values only, by config_schema property, as a JSON object.
    -- Secret values live in plugin_secrets; csp refuses a config that names
    -- a stored secret.
    config      TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(config) AND json_type(config) = 'object'),
    -- Who last changed the row; NULL when csp itself did. No foreign key, as
    -- in audit_log: it records who acted and must not hold on to the user.
    updated_by  TEXT,
    -- Unix ms.
    updated_at  INTEGER NOT NULL
) STRICT;

-- One row per secret value that is set: its Fernet token and the version of
-- the key that sealed it (first 16 hex characters of SHA-256 of the key), so
-- that a rotation finds what is not under the current key.
CREATE TABLE plugin_secrets (
    plugin_name            TEXT    NOT NULL REFERENCES plugin_state (plugin_name) ON DELETE CASCADE,
    config_key             TEXT    NOT NULL,
    encrypted_value        TEXT    NOT NULL,
    encryption_key_version TEXT    NOT NULL,
    -- Unix ms.
    updated_at             INTEGER NOT NULL,
    PRIMARY KEY (plugin_name, config_key)
) STRICT, WITHOUT ROWID;
