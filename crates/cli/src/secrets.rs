//! `csp secrets`: plugin secret keys. `generate-key` prints a new Fernet key;
//! `rotate` re-encrypts every stored secret under `CSP_SECRET_KEY`, reading
//! the old ones with `CSP_SECRET_KEY_PREVIOUS`, in one transaction.

use crate::opts::{SecretKeyOpts, StoreLocation};
use anyhow::Context;
use clap::{Args, Subcommand};
use secrecy::ExposeSecret;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Print a new random key for CSP_SECRET_KEY.
    GenerateKey,
    /// Re-encrypt every plugin secret under CSP_SECRET_KEY (the new key),
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
    let count = store
        .reencrypt_secrets(&|stored: &csp_store::StoredSecret| {
            let sealed = csp_secrets::Sealed {
                token: stored.encrypted_value.clone(),
                key_version: stored.encryption_key_version.clone(),
            };
            match keyring.reseal(&sealed) {
                Ok(None) => Ok(None),
                Ok(Some(new)) => Ok(Some(csp_store::StoredSecret {
                    config_key: stored.config_key.clone(),
                    encrypted_value: new.token,
                    encryption_key_version: new.key_version,
                })),
                // The store names the plugin and the key.
                Err(e) => Err(e.to_string()),
            }
        })
        .await
        .context("rotation rolled back; nothing was changed")?;
    println!(
        "re-encrypted {count} secret(s) under key version {}",
        keyring.current_version()
    );
    Ok(())
}
