//! `csp audit verify`: walks the audit log's hash chain and reports the
//! first row that was edited, deleted or inserted out of order.

use anyhow::Context;
use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Check the tamper-evident hash chain of the audit log. Exits 1 at the
    /// first broken link.
    Verify(VerifyOptions),
}

#[derive(Args)]
pub(crate) struct VerifyOptions {
    /// Postgres URL of a deployment; without it, the `csp dev` database in
    /// CSP_DATA_DIR is checked.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = crate::opts::secret)]
    database_url: Option<SecretString>,
    /// The `csp dev` data directory.
    #[arg(long, env = "CSP_DATA_DIR", default_value = ".csp/dev")]
    data_dir: PathBuf,
}

/// Exit status: Ok(true) = intact.
pub(crate) async fn run(command: Command) -> anyhow::Result<bool> {
    let Command::Verify(o) = command;
    let store: Box<dyn csp_store::AuditStore> = match &o.database_url {
        Some(url) => Box::new(csp_store::PgStore::connect(url.expose_secret()).await?),
        None => {
            let path = o.data_dir.join("csp.db");
            anyhow::ensure!(
                path.is_file(),
                "no database at {} (set DATABASE_URL or CSP_DATA_DIR)",
                path.display()
            );
            Box::new(
                csp_store::SqliteStore::open(&path)
                    .await
                    .with_context(|| format!("opening {}", path.display()))?,
            )
        }
    };
    let v = csp_store::verify_audit_chain(store.as_ref()).await?;
    match v.first_broken {
        None => {
            println!("audit log intact: {} entries verified", v.checked);
            Ok(true)
        }
        Some(b) => {
            println!(
                "audit log BROKEN at seq {} (audit_id {}): {}; {} entries checked",
                b.seq, b.audit_id, b.reason, v.checked
            );
            Ok(false)
        }
    }
}
