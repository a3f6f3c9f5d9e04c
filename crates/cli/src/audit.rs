//! `csp audit verify`: walks the audit log's hash chain and reports the
//! first row that was edited, deleted or inserted out of order.

use crate::opts::StoreLocation;
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Check the tamper-evident hash chain of the audit log. Exits 1 at the
    /// first broken link.
    Verify(VerifyOptions),
}

#[derive(Args)]
pub(crate) struct VerifyOptions {
    #[command(flatten)]
    store: StoreLocation,
}

/// Exit status: Ok(true) = intact.
pub(crate) async fn run(command: Command) -> anyhow::Result<bool> {
    let Command::Verify(o) = command;
    let store = o.store.open().await?;
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
