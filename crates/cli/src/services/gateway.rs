//! The gateway's row: the web app, REST, WebSockets and `/metrics`; it
//! calls every other service.

use crate::backends::Deployment;
use crate::error::Error;
use crate::opts::{
    GatewayOpts, ModelOpts, PluginsAddr, PolicyAddr, SessionPoolAddr, TicketsAddr, Upstreams,
};
use crate::row::{Addrs, Api, BoxFuture, Built, Dev, Row};
use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;

pub(crate) static ROW: Row = Row {
    name: "gateway",
    span: "csp-gateway",
    api: Api::Http,
    needs: &["session-pool", "policy", "plugins", "tickets"],
    dev,
};

/// What a standalone gateway tells browsers to expect; the session-pool's
/// own `SHUTDOWN_GRACE_SECONDS` default.
const DEFAULT_SHUTDOWN_NOTICE_SECONDS: u64 = 30;

/// `CSP_TICKETS_ADDR`'s default, for `csp dev` before it runs the tickets
/// service in process.
const DEV_TICKETS_ADDR: &str = "http://127.0.0.1:50054";

#[derive(Args)]
pub(crate) struct Options {
    #[arg(long, env = "CSP_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,
    #[command(flatten)]
    session_pool: SessionPoolAddr,
    #[command(flatten)]
    policy: PolicyAddr,
    #[command(flatten)]
    plugins: PluginsAddr,
    #[command(flatten)]
    tickets: TicketsAddr,
    /// The session-pool's shutdown grace (s), told to browsers when a
    /// shutdown begins; set it to the session-pool's
    /// `SHUTDOWN_GRACE_SECONDS`.
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = DEFAULT_SHUTDOWN_NOTICE_SECONDS)]
    shutdown_grace_seconds: u64,
    #[command(flatten)]
    gateway: GatewayOpts,
    #[command(flatten)]
    model: ModelOpts,
    #[command(flatten)]
    deployment: Deployment,
}

pub(crate) async fn serve(o: Options) -> Result<Built, Error> {
    let Deployment { tokens, backends } = o.deployment;
    let tokens = tokens.required()?;
    // Every browser socket subscribes to its session's events: fan them out
    // in-process so the gateway holds one JetStream consumer per session,
    // not one per socket.
    let bus = csp_bus::FanoutBus::new(backends.bus().await?, Default::default())?;
    let config = o.gateway.config(
        o.http_addr,
        Upstreams {
            session_pool: o.session_pool.session_pool_addr,
            policy: o.policy.policy_addr,
            plugins: o.plugins.plugins_addr,
            tickets: o.tickets.tickets_addr,
        },
        tokens,
        o.model.label(),
        o.shutdown_grace_seconds,
    );
    build(config, Arc::new(bus), backends.cache().await?).await
}

fn dev<'a>(d: &'a Dev, addrs: Addrs<'a>) -> BoxFuture<'a, Result<Built, Error>> {
    Box::pin(async move {
        let config = d.gateway.config(
            d.listen,
            Upstreams {
                session_pool: addrs.of("session-pool")?,
                policy: addrs.of("policy")?,
                plugins: addrs.of("plugins")?,
                // The in-process tickets service's once its row lists it in
                // `needs`; until then its standalone default. The gateway
                // connects lazily, so it starts either way (its ticket
                // routes answer 503 while nothing listens there).
                tickets: addrs
                    .of("tickets")
                    .unwrap_or_else(|_| DEV_TICKETS_ADDR.to_owned()),
            },
            d.tokens.clone(),
            d.model_label.clone(),
            d.pool.shutdown_grace_seconds,
        );
        build(config, d.bus.clone(), d.cache.clone()).await
    })
}

/// On shutdown it keeps relaying turns in flight: in `csp dev` until the
/// in-process session-pool has drained, alone for a second.
async fn build(
    config: csp_gateway::Config,
    bus: Arc<dyn csp_bus::EventBus>,
    cache: Arc<dyn csp_cache::Cache>,
) -> Result<Built, Error> {
    let server = csp_gateway::Server::build(config, bus, cache).await?;
    Ok(Built::new(server.local_addr(), move |stops| {
        let server = match stops.drained {
            Some(drained) => server.hold_until(drained),
            None => server,
        };
        server.run(stops.shutdown)
    }))
}
