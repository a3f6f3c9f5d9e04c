-- Plugins as operators left them: whether each one is active, its non-secret
-- config, and its secret config values, encrypted.
--
-- The plugins themselves (plugin.json) live on disk. A row here outlives its
-- plugin's directory, so a plugin that is removed and put back keeps its
-- config.

CREATE TABLE plugin_state (
    plugin_name TEXT        PRIMARY KEY,
    active      BOOLEAN     NOT NULL DEFAULT FALSE,
    -- Non-secret values only, by config_schema property. Secret values live
    -- in plugin_secrets; csp refuses a config that names a stored secret.
    config      JSONB       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    -- Who last changed the row; NULL when csp itself did. No foreign key, as
    -- in audit_log: it records who acted and must not hold on to the user.
    updated_by  UUID,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- One row per secret value that is set: its Fernet token and the version of
-- the key that sealed it (first 16 hex characters of SHA-256 of the key), so
-- that a rotation finds what is not under the current key.
CREATE TABLE plugin_secrets (
    plugin_name            TEXT        NOT NULL REFERENCES plugin_state (plugin_name) ON DELETE CASCADE,
    config_key             TEXT        NOT NULL,
    encrypted_value        TEXT        NOT NULL,
    encryption_key_version TEXT        NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (plugin_name, config_key)
);
