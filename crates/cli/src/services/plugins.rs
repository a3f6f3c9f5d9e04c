//! The plugins service's row: the registry of `PLUGINS_DIR`, activation,
//! configuration and encrypted plugin secrets.

use crate::backends::Deployment;
use crate::error::Error;
use crate::opts::SecretKeyOpts;
use crate::row::{Addrs, Api, BoxFuture, Built, Dev, LOOPBACK, Row};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub(crate) static ROW: Row = Row {
    name: "plugins",
    span: "csp-plugins",
    api: Api::Grpc,
    needs: &[],
    dev,
};

#[derive(Args)]
pub(crate) struct Options {
    #[arg(long, env = "CSP_GRPC_ADDR", default_value = "0.0.0.0:50053")]
    grpc_addr: SocketAddr,
    /// HTTP address of /metrics and the liveness probe.
    #[arg(long, env = "CSP_METRICS_ADDR", default_value = "0.0.0.0:9093")]
    metrics_addr: SocketAddr,
    /// One directory per plugin, each with a plugin.json.
    #[arg(long, env = "CSP_PLUGINS_DIR", default_value = "/var/lib/csp/plugins")]
    plugins_dir: PathBuf,
    #[command(flatten)]
    keys: SecretKeyOpts,
    #[command(flatten)]
    deployment: Deployment,
}

pub(crate) async fn serve(o: Options) -> Result<Built, Error> {
    let Deployment { tokens, backends } = o.deployment;
    let tokens = tokens.required()?;
    let keyring = o.keys.keyring()?;
    if keyring.is_none() {
        tracing::warn!("CSP_SECRET_KEY is not set: plugin settings marked secret cannot be saved");
    }
    let config = csp_plugins::Config {
        keyring,
        ..csp_plugins::Config::new(o.grpc_addr, tokens, o.plugins_dir)
    };
    let built = build(config, backends.store().await?, backends.queue().await?).await?;
    Ok(built.with_metrics_on(o.metrics_addr))
}

fn dev<'a>(d: &'a Dev, _: Addrs<'a>) -> BoxFuture<'a, Result<Built, Error>> {
    Box::pin(async move {
        let config = csp_plugins::Config {
            keyring: d.keyring.clone(),
            ..csp_plugins::Config::new(LOOPBACK, d.tokens.clone(), d.plugins_dir.clone())
        };
        build(config, d.store.clone(), d.queue.clone()).await
    })
}

async fn build(
    config: csp_plugins::Config,
    store: Arc<dyn csp_store::Store>,
    audit: Arc<dyn csp_bus::Queue>,
) -> Result<Built, Error> {
    let server = csp_plugins::Server::build(config, store, audit).await?;
    let (addr, probes) = (server.local_addr(), server.probes());
    Ok(Built::serving_the_pool(addr, probes, move |until| {
        server.run(until)
    }))
}
