//! The policy service's row: users, login, tool permissions, cost caps and
//! the audit log. It follows the plugins service for plugin tools' roles.

use crate::backends::Deployment;
use crate::error::Error;
use crate::opts::{PluginsAddr, PolicyOpts};
use crate::row::{Addrs, Api, BoxFuture, Built, Dev, LOOPBACK, Row};
use clap::Args;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::sync::Arc;

pub(crate) static ROW: Row = Row {
    name: "policy",
    span: "csp-policy",
    api: Api::Grpc,
    needs: &["plugins"],
    dev,
};

#[derive(Args)]
pub(crate) struct Options {
    #[arg(long, env = "CSP_GRPC_ADDR", default_value = "0.0.0.0:50052")]
    grpc_addr: SocketAddr,
    /// Password of the `admin` account created when there is none.
    #[arg(long, env = "CSP_ADMIN_PASSWORD", hide_env_values = true, value_parser = crate::opts::secret)]
    admin_password: Option<SecretString>,
    /// HTTP address of /metrics and the liveness probe.
    #[arg(long, env = "CSP_METRICS_ADDR", default_value = "0.0.0.0:9092")]
    metrics_addr: SocketAddr,
    #[command(flatten)]
    plugins: PluginsAddr,
    #[command(flatten)]
    policy: PolicyOpts,
    #[command(flatten)]
    deployment: Deployment,
}

pub(crate) async fn serve(o: Options) -> Result<Built, Error> {
    let Deployment { tokens, backends } = o.deployment;
    let tokens = tokens.required()?;
    let store = backends.store().await?;
    if let Some(p) = csp_policy::bootstrap_admin(store.as_ref(), o.admin_password.as_ref()).await? {
        use secrecy::ExposeSecret;
        println!(
            "csp policy: created 'admin' with password {} (shown once; set CSP_ADMIN_PASSWORD to choose it)",
            p.expose_secret()
        );
    }
    let config = o
        .policy
        .config(o.grpc_addr, tokens, o.plugins.plugins_addr)?;
    let built = build(config, store, backends.queue().await?).await?;
    Ok(built.with_metrics_on(o.metrics_addr))
}

/// `csp dev` creates the admin account itself, before any service starts,
/// and prints its password with the rest of its banner.
fn dev<'a>(d: &'a Dev, addrs: Addrs<'a>) -> BoxFuture<'a, Result<Built, Error>> {
    Box::pin(async move {
        let config = d
            .policy
            .config(LOOPBACK, d.tokens.clone(), addrs.of("plugins")?)?;
        build(config, d.store.clone(), d.queue.clone()).await
    })
}

async fn build(
    config: csp_policy::Config,
    store: Arc<dyn csp_store::Store>,
    queue: Arc<dyn csp_bus::Queue>,
) -> Result<Built, Error> {
    let server = csp_policy::Server::build(config, store, queue).await?;
    let (addr, probes) = (server.local_addr(), server.probes());
    Ok(Built::serving_the_pool(addr, probes, move |until| {
        server.run(until)
    }))
}
