//! `csp secrets`: the keys that seal stored secrets (plugins', tenants').
//! `generate-key` prints a new Fernet key; `rotate` re-encrypts every owner's
//! stored secrets under `CSP_SECRET_KEY`, reading the old ones with
//! `CSP_SECRET_KEY_PREVIOUS`, in one transaction.

use crate::opts::{SecretKeyOpts, StoreLocation};
use anyhow::Context;
use clap::{Args, Subcommand};
use csp_secrets::{Keyring, Sealed};
use csp_store::{SecretStore, StoredSecret};
use secrecy::ExposeSecret;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Print a new random key for CSP_SECRET_KEY.
    GenerateKey,
    /// Re-encrypt every stored secret (of every plugin and tenant) under
    /// CSP_SECRET_KEY (the new key),
    /// reading secrets under CSP_SECRET_KEY_PREVIOUS (the old one). All or
    /// nothing; safe to run again (it then re-encrypts 0).
    Rotate(RotateOptions),
}

#[derive(Args)]
pub(crate) struct RotateOptions {
    #[command(flatten)]
    store: StoreLocation,
    #[command(flatten)]
    keys: SecretKeyOpts,
}

pub(crate) async fn run(command: Command) -> anyhow::Result<()> {
    let o = match command {
        Command::GenerateKey => {
            let (_, text) = csp_secrets::SecretKey::generate();
            println!("{}", text.expose_secret());
            return Ok(());
        }
        Command::Rotate(o) => o,
    };
    let keyring = o
        .keys
        .keyring()?
        .context("set CSP_SECRET_KEY to the new key and CSP_SECRET_KEY_PREVIOUS to the old one")?;
    let store = o.store.open().await?;
    let count = rotate(store.as_ref(), &keyring)
        .await
        .context("rotation rolled back; nothing was changed")?;
    println!(
        "re-encrypted {count} secret(s) under key version {}",
        keyring.current_version()
    );
    Ok(())
}

/// Re-encrypts the secrets of every owner that are not under the keyring's
/// current key, in one transaction: all of them, or (when one cannot be
/// opened) none. Returns how many were rewritten.
pub(crate) async fn rotate(
    store: &dyn SecretStore,
    keyring: &Keyring,
) -> Result<u64, csp_store::Error> {
    store
        .reencrypt_secrets(&|stored: &StoredSecret| {
            let sealed = Sealed {
                token: stored.encrypted_value.clone(),
                key_version: stored.encryption_key_version.clone(),
            };
            match keyring.reseal(&sealed) {
                Ok(None) => Ok(None),
                Ok(Some(new)) => Ok(Some(StoredSecret {
                    key: stored.key.clone(),
                    encrypted_value: new.token,
                    encryption_key_version: new.key_version,
                })),
                // The store names the owner and the key.
                Err(e) => Err(e.to_string()),
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use csp_secrets::SecretKey;
    use csp_store::{Owner, PluginStore as _, SecretChange, SqliteStore};

    fn stored(key: &str, sealed: Sealed) -> StoredSecret {
        StoredSecret {
            key: key.to_owned(),
            encrypted_value: sealed.token,
            encryption_key_version: sealed.key_version,
        }
    }

    fn opened(keyring: &Keyring, secret: &StoredSecret) -> String {
        let sealed = Sealed {
            token: secret.encrypted_value.clone(),
            key_version: secret.encryption_key_version.clone(),
        };
        keyring.open(&sealed).unwrap().expose_secret().to_owned()
    }

    #[tokio::test]
    async fn rotate_reencrypts_every_owner_kind_all_or_nothing() {
        let store = SqliteStore::in_memory().await.unwrap();
        let (old, new, lost) = (
            SecretKey::generate().0,
            SecretKey::generate().0,
            SecretKey::generate().0,
        );
        let under_old = Keyring::new(old.clone(), vec![]);
        let (plugin, tenant) = (Owner::plugin("everything"), Owner::tenant("acme"));
        store
            .save_plugin_config(
                "everything",
                Default::default(),
                vec![SecretChange::Set(stored(
                    "api_token",
                    under_old.seal("plugin-token"),
                ))],
                None,
            )
            .await
            .unwrap();
        store
            .put_secrets(
                &tenant,
                vec![
                    stored("api_key", under_old.seal("tenant-api-key")),
                    // Sealed under a key that is in no keyring any more.
                    stored(
                        "webhook_secret",
                        Keyring::new(lost, vec![]).seal("tenant-hook"),
                    ),
                ],
            )
            .await
            .unwrap();
        let before = (
            store.secrets(&plugin).await.unwrap(),
            store.secrets(&tenant).await.unwrap(),
        );

        // The unreadable tenant secret comes after the plugin's and the
        // tenant's first, which were already resealed: all roll back.
        let rotation = Keyring::new(new.clone(), vec![old.clone()]);
        let err = rotate(&store, &rotation).await.unwrap_err().to_string();
        assert!(
            err.contains("tenant 'acme'") && err.contains("'webhook_secret'"),
            "{err}"
        );
        let after = (
            store.secrets(&plugin).await.unwrap(),
            store.secrets(&tenant).await.unwrap(),
        );
        assert_eq!(after, before);

        // Without it, both owners' secrets move to the new key, once.
        assert!(
            store
                .delete_secret(&tenant, "webhook_secret")
                .await
                .unwrap()
        );
        assert_eq!(rotate(&store, &rotation).await.unwrap(), 2);
        assert_eq!(rotate(&store, &rotation).await.unwrap(), 0);
        let only_new = Keyring::new(new.clone(), vec![]);
        let plugin_secrets = store.secrets(&plugin).await.unwrap();
        let tenant_secrets = store.secrets(&tenant).await.unwrap();
        for secret in plugin_secrets.iter().chain(&tenant_secrets) {
            assert_eq!(secret.encryption_key_version, new.version());
        }
        assert_eq!(opened(&only_new, &plugin_secrets[0]), "plugin-token");
        assert_eq!(opened(&only_new, &tenant_secrets[0]), "tenant-api-key");
        // The plugin's state reads the rotated secret too.
        let state = store.plugin_state("everything").await.unwrap().unwrap();
        assert_eq!(state.secrets, plugin_secrets);
    }
}
