//! The session-pool's row: agent processes, turns and session events. It
//! asks the policy service about every tool call and turn, starts agents
//! with the plugins service's active MCP servers, and answers the built-in
//! ticket tools from the tickets service.

use crate::backends::Deployment;
use crate::error::Error;
use crate::opts::{ModelOpts, PluginsAddr, PolicyAddr, PoolOpts, PoolWiring, TicketsAddr};
use crate::row::{Addrs, Api, BoxFuture, Built, Dev, LOOPBACK, Row};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub(crate) static ROW: Row = Row {
    name: "session-pool",
    span: "csp-session-pool",
    api: Api::Grpc,
    needs: &["policy", "plugins", "tickets"],
    dev,
};

#[derive(Args)]
pub(crate) struct Options {
    #[arg(long, env = "CSP_GRPC_ADDR", default_value = "0.0.0.0:50051")]
    grpc_addr: SocketAddr,
    /// How gateways reach this replica (default: http://<bound address>).
    #[arg(long, env = "CSP_ADVERTISE_ADDR")]
    advertise_addr: Option<String>,
    #[arg(long, env = "CSP_DATA_DIR", default_value = "/var/lib/csp")]
    data_dir: PathBuf,
    /// HTTP address of /metrics and the liveness probe.
    #[arg(long, env = "CSP_METRICS_ADDR", default_value = "0.0.0.0:9091")]
    metrics_addr: SocketAddr,
    #[command(flatten)]
    policy: PolicyAddr,
    #[command(flatten)]
    plugins: PluginsAddr,
    #[command(flatten)]
    tickets: TicketsAddr,
    #[command(flatten)]
    pub(crate) pool: PoolOpts,
    #[command(flatten)]
    model: ModelOpts,
    #[command(flatten)]
    deployment: Deployment,
}

pub(crate) async fn serve(o: Options) -> Result<Built, Error> {
    let Deployment {
        tokens: token_opts,
        backends,
    } = o.deployment;
    let tokens = token_opts.required()?;
    if !o.model.configured() {
        return Err(Error::config(
            "no model API configured: set ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN), and ANTHROPIC_BASE_URL for a gateway or the scripted test server",
        ));
    }
    let config = o.pool.config(
        o.grpc_addr,
        o.advertise_addr,
        o.data_dir,
        &o.model,
        PoolWiring {
            model_env: o.model.env(),
            model_label: o.model.label(),
            governor: o.pool.governor(&o.policy.policy_addr, &tokens)?,
            audit: backends.queue().await?,
            tokens: tokens.clone(),
            plugins_addr: o.plugins.plugins_addr,
            tickets_addr: o.tickets.tickets_addr,
            // Issue 12: secrets redacted from agent output.
            known_secrets: crate::opts::known_secrets(
                token_opts.jwt_secret.iter().chain(o.model.secrets()),
                backends.urls(),
            ),
        },
    );
    let built = build(
        config,
        backends.bus().await?,
        backends.store().await?,
        backends.cache().await?,
    )
    .await?;
    Ok(built.with_metrics_on(o.metrics_addr))
}

fn dev<'a>(d: &'a Dev, addrs: Addrs<'a>) -> BoxFuture<'a, Result<Built, Error>> {
    Box::pin(async move {
        let config = d.pool.config(
            LOOPBACK,
            None,
            d.data_dir.join("agents"),
            &d.model,
            PoolWiring {
                model_env: d.model_env.clone(),
                model_label: d.model_label.clone(),
                governor: d.pool.governor(&addrs.of("policy")?, &d.tokens)?,
                audit: d.queue.clone(),
                tokens: d.tokens.clone(),
                plugins_addr: addrs.of("plugins")?,
                tickets_addr: addrs.of("tickets")?,
                // Issue 12: every secret this process holds, redacted from
                // agent output.
                known_secrets: crate::opts::known_secrets(&d.secrets, []),
            },
        );
        build(config, d.bus.clone(), d.store.clone(), d.cache.clone()).await
    })
}

/// It stops on shutdown by draining; `drained` tells the others when that
/// is done.
async fn build(
    config: csp_session_pool::Config,
    bus: Arc<dyn csp_bus::EventBus>,
    store: Arc<dyn csp_store::SessionStore>,
    cache: Arc<dyn csp_cache::Cache>,
) -> Result<Built, Error> {
    let server = csp_session_pool::Server::build(config, bus, store, cache).await?;
    let (probes, drained) = (server.probes(), server.drained());
    Ok(
        Built::new(server.local_addr(), move |stops| server.run(stops.shutdown))
            .with_probes(probes)
            .with_drained(drained),
    )
}
