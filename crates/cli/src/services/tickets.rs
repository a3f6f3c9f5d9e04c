//! The tickets service's row: tenants, the intake of signed webhooks
//! (record, then queue), the outbox sweeper, the enhancement history and
//! the context uploads. The gateway is its only caller.

use crate::backends::Deployment;
use crate::error::Error;
use crate::opts::{SecretKeyOpts, TicketsOpts};
use crate::row::{Addrs, Api, BoxFuture, Built, Dev, LOOPBACK, Row};
use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;

pub(crate) static ROW: Row = Row {
    name: "tickets",
    span: "csp-tickets",
    api: Api::Grpc,
    needs: &[],
    dev,
};

#[derive(Args)]
pub(crate) struct Options {
    #[arg(long, env = "CSP_GRPC_ADDR", default_value = "0.0.0.0:50054")]
    grpc_addr: SocketAddr,
    /// HTTP address of /metrics and the liveness probe.
    #[arg(long, env = "CSP_METRICS_ADDR", default_value = "0.0.0.0:9094")]
    metrics_addr: SocketAddr,
    #[command(flatten)]
    tickets: TicketsOpts,
    /// Prometheus' base URL (e.g. http://prometheus:9090): the operations
    /// charts read its HTTP API; unset, they read the enhancement history.
    #[arg(long, env = "CSP_PROMETHEUS_URL")]
    prometheus_url: Option<String>,
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
        tracing::warn!(
            "CSP_SECRET_KEY is not set: tenants cannot be created and stored tenants' credentials cannot be opened"
        );
    }
    let config = csp_tickets::Config {
        prometheus_url: o.prometheus_url.filter(|url| !url.trim().is_empty()),
        ..o.tickets.config(o.grpc_addr, tokens, keyring)
    };
    let built = build(
        config,
        backends.store().await?,
        backends.queue().await?,
        backends.cache().await?,
    )
    .await?;
    Ok(built.with_metrics_on(o.metrics_addr))
}

fn dev<'a>(d: &'a Dev, _: Addrs<'a>) -> BoxFuture<'a, Result<Built, Error>> {
    Box::pin(async move {
        let config = csp_tickets::Config {
            // The in-process queue died with the last run: its jobs that
            // never finished are queued again at start.
            volatile_queue: true,
            backends: csp_tickets::Backends::EMBEDDED,
            ..d.tickets
                .config(LOOPBACK, d.tokens.clone(), d.keyring.clone())
        };
        build(config, d.store.clone(), d.queue.clone(), d.cache.clone()).await
    })
}

/// In `csp dev` it answers until the session-pool has drained, as long as
/// the gateway that calls it keeps serving.
async fn build(
    config: csp_tickets::Config,
    store: Arc<dyn csp_store::Store>,
    queue: Arc<dyn csp_bus::Queue>,
    cache: Arc<dyn csp_cache::Cache>,
) -> Result<Built, Error> {
    let server = csp_tickets::Server::build(config, store, queue, cache).await?;
    let (addr, probes) = (server.local_addr(), server.probes());
    Ok(Built::serving_the_pool(addr, probes, move |until| {
        server.run(until)
    }))
}
