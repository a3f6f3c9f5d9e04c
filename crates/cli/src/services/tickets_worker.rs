//! The tickets worker's row: it takes enhancement jobs off the work queue,
//! gathers context, asks the model and posts the note. It listens on no
//! port: `csp serve tickets-worker` serves only `/metrics` and the probes.

use crate::backends::Deployment;
use crate::error::Error;
use crate::opts::{ModelOpts, SecretKeyOpts, TicketsWorkerOpts};
use crate::row::{Addrs, Api, BoxFuture, Built, Dev, Row};
use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub(crate) static ROW: Row = Row {
    name: "tickets-worker",
    span: "csp-tickets-worker",
    api: Api::Queue,
    needs: &[],
    dev,
};

#[derive(Args)]
pub(crate) struct Options {
    /// HTTP address of /metrics and the probes.
    #[arg(long, env = "CSP_METRICS_ADDR", default_value = "0.0.0.0:9095")]
    metrics_addr: SocketAddr,
    #[command(flatten)]
    worker: TicketsWorkerOpts,
    /// The chat's model settings: the Anthropic provider's defaults.
    #[command(flatten)]
    model: ModelOpts,
    /// Model API failures within the window that open the circuit (shared
    /// with the session-pools through Redis).
    #[arg(long, env = "CSP_BREAKER_FAILURES", default_value_t = 5)]
    breaker_failures: u32,
    /// The failure-counting window (s).
    #[arg(long, env = "CSP_BREAKER_WINDOW_SECONDS", default_value_t = 60)]
    breaker_window_seconds: u64,
    /// How long the circuit stays open before one probe is let through (s).
    #[arg(long, env = "CSP_BREAKER_OPEN_SECONDS", default_value_t = 60)]
    breaker_open_seconds: u64,
    #[command(flatten)]
    keys: SecretKeyOpts,
    /// The gateway's public base URL (`https://csp.example`), where the
    /// "Was this helpful?" links at the end of every note lead; unset: notes
    /// carry no links.
    #[arg(long, env = "CSP_PUBLIC_URL")]
    public_url: Option<String>,
    /// Take only this tenant's jobs, from its own queue
    /// (`tickets.enhance.tenant.<id>`; mark the tenant's dedicated_queue, and
    /// see `csp tenants k8s`); unset: the shared queue, which never carries a
    /// dedicated tenant's jobs.
    #[arg(long = "tenant", env = "CSP_WORKER_TENANT")]
    tenant: Option<csp_domain::TenantId>,
    #[command(flatten)]
    deployment: Deployment,
}

/// The queue a worker started with `tenant` consumes.
fn queue_of(tenant: Option<csp_domain::TenantId>) -> csp_domain::EnhanceQueue {
    tenant.map_or(
        csp_domain::EnhanceQueue::Shared,
        csp_domain::EnhanceQueue::Tenant,
    )
}

/// `CSP_PUBLIC_URL` if set; in `csp dev`, else the gateway's own address
/// when it is a fixed one (`CSP_LISTEN`, `127.0.0.1:8080` by default).
fn public_url(set: Option<&String>, dev_listen: Option<SocketAddr>) -> Option<String> {
    if let Some(url) = set.filter(|u| !u.trim().is_empty()) {
        return Some(url.trim().to_owned());
    }
    let mut listen = dev_listen.filter(|a| a.port() != 0)?;
    if listen.ip().is_unspecified() {
        listen.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Some(format!("http://{listen}"))
}

fn breaker_config(failures: u32, window_s: u64, open_s: u64) -> csp_breaker::Config {
    csp_breaker::Config {
        failure_threshold: failures.max(1),
        window: Duration::from_secs(window_s.max(1)),
        open_for: Duration::from_secs(open_s.max(1)),
        ..csp_breaker::Config::default()
    }
}

pub(crate) async fn serve(o: Options) -> Result<Built, Error> {
    // The worker calls no service: the token secret is not needed.
    let Deployment { backends, .. } = o.deployment;
    let keyring = o.keys.keyring()?;
    if keyring.is_none() {
        tracing::warn!(
            "CSP_SECRET_KEY is not set: no tenant's ServiceDesk Plus credential can be opened, so no note can be posted"
        );
    }
    let provider = o.worker.enhance.provider(
        o.model.anthropic_base_url.as_deref(),
        o.model.anthropic_api_key.as_ref(),
    )?;
    let queue = queue_of(o.tenant);
    tracing::info!(topic = %queue, "tickets worker queue");
    let config = csp_tickets_worker::Config {
        public_url: public_url(o.public_url.as_ref(), None),
        queue,
        log_lines: csp_telemetry::log_ring(),
        ..o.worker.config(provider, keyring)
    };
    let store = backends.store().await?;
    let cache = backends.cache().await?;
    let breaker = breaker_config(
        o.breaker_failures,
        o.breaker_window_seconds,
        o.breaker_open_seconds,
    );
    let built = build(
        config,
        csp_tickets_worker::Stores::of(store),
        backends.queue().await?,
        cache,
        breaker,
        OnRestart::Exit,
    )?;
    Ok(built.with_metrics_on(o.metrics_addr))
}

fn dev<'a>(d: &'a Dev, _: Addrs<'a>) -> BoxFuture<'a, Result<Built, Error>> {
    Box::pin(async move {
        let config = csp_tickets_worker::Config {
            public_url: public_url(d.gateway.public_url.as_ref(), Some(d.listen)),
            log_lines: csp_telemetry::log_ring(),
            ..d.tickets_worker
                .config(d.enhance_model.clone(), d.keyring.clone())
        };
        let breaker = breaker_config(
            d.pool.breaker_failures,
            d.pool.breaker_window_seconds,
            d.pool.breaker_open_seconds,
        );
        build(
            config,
            csp_tickets_worker::Stores::of(d.store.clone()),
            d.queue.clone(),
            d.cache.clone(),
            breaker,
            OnRestart::Rebuild,
        )
    })
}

/// What follows a worker's drain for a restart (an admin's
/// `POST /api/v1/tickets/workers/{id}/restart`), by who supervises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnRestart {
    /// `csp serve tickets-worker`: the process exits with
    /// `csp_tickets_worker::Exit::RESTART_CODE` ([`Error::Restart`]), and
    /// its supervisor (Docker's restart policy, Kubernetes) starts it again.
    Exit,
    /// `csp dev`, which is the supervisor: a new worker (new id, new
    /// heartbeat) is built and run in the process.
    Rebuild,
}

/// The breaker's state lives in the cache, so it is the one the chat's
/// session-pools open and close.
fn build(
    config: csp_tickets_worker::Config,
    stores: csp_tickets_worker::Stores,
    queue: Arc<dyn csp_bus::Queue>,
    cache: Arc<dyn csp_cache::Cache>,
    breaker: csp_breaker::Config,
    on_restart: OnRestart,
) -> Result<Built, Error> {
    use csp_tickets_worker::{Exit, Worker};
    let breaker = Arc::new(csp_breaker::Breaker::new(breaker, cache.clone()));
    let new_worker = move || {
        Worker::build(
            config.clone(),
            stores.clone(),
            queue.clone(),
            cache.clone(),
            breaker.clone(),
        )
    };
    let worker = new_worker()?;
    let probes = worker.probes();
    Ok(Built::consumer(move |stops: crate::row::Stops| async move {
        let mut worker = worker;
        loop {
            match (worker.run(stops.shutdown.clone()).await?, on_restart) {
                (Exit::Stopped, _) => return Ok(()),
                (Exit::Restart, OnRestart::Exit) => return Err(Error::Restart),
                (Exit::Restart, OnRestart::Rebuild) => {
                    tracing::warn!(
                        operation = "restart",
                        status = "restarting",
                        "csp dev: starting the tickets worker again after its restart"
                    );
                    worker = new_worker()?;
                }
            }
        }
    })
    .with_probes(probes))
}

#[cfg(test)]
mod tests {
    use crate::opts::{EnhanceOpts, EnhanceProvider};
    use clap::Parser;
    use csp_enhance::ProviderConfig;
    use secrecy::{ExposeSecret, SecretString};

    #[derive(Parser)]
    struct Opts {
        #[command(flatten)]
        enhance: EnhanceOpts,
    }

    fn opts(args: &[&str]) -> EnhanceOpts {
        let mut argv = vec!["csp"];
        argv.extend_from_slice(args);
        Opts::try_parse_from(argv).unwrap().enhance
    }

    #[test]
    fn links_lead_to_the_public_url_or_the_dev_gateway() {
        let set = "https://csp.example".to_owned();
        let listen = |a: &str| Some(a.parse().unwrap());
        assert_eq!(
            super::public_url(Some(&set), listen("127.0.0.1:8080")).as_deref(),
            Some("https://csp.example")
        );
        assert_eq!(super::public_url(None, None), None);
        assert_eq!(super::public_url(Some(&" ".to_owned()), None), None);
        assert_eq!(
            super::public_url(None, listen("127.0.0.1:8080")).as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            super::public_url(None, listen("0.0.0.0:9000")).as_deref(),
            Some("http://127.0.0.1:9000")
        );
        // A port picked at start is not known here.
        assert_eq!(super::public_url(None, listen("127.0.0.1:0")), None);
    }

    #[test]
    fn a_worker_with_a_tenant_consumes_only_its_queue() {
        use crate::Cli;
        use clap::Parser;
        let serve = |args: &[&str]| {
            let mut argv = vec!["csp", "serve", "tickets-worker"];
            argv.extend_from_slice(args);
            match Cli::try_parse_from(argv) {
                Ok(cli) => Ok(cli),
                Err(e) => Err(e.to_string()),
            }
        };
        let tenant_of = |args: &[&str]| -> Option<String> {
            let cli = serve(args).unwrap();
            let crate::Command::Serve {
                service: crate::services::Service::TicketsWorker(o),
            } = cli.command
            else {
                panic!("not serve tickets-worker")
            };
            o.tenant.map(|t| t.to_string())
        };
        assert_eq!(tenant_of(&[]), None);
        assert_eq!(tenant_of(&["--tenant", "acme"]).as_deref(), Some("acme"));
        let err = serve(&["--tenant", "Acme Corp"]).err().unwrap();
        assert!(err.contains("tenant_id must be"), "{err}");
        assert_eq!(
            super::queue_of(None).topic(),
            csp_domain::ENHANCE_TOPIC,
            "the shared queue"
        );
        assert_eq!(
            super::queue_of(Some(csp_domain::TenantId::parse("acme").unwrap())).topic(),
            "tickets.enhance.tenant.acme"
        );
    }

    #[test]
    fn every_command_line_is_consistent() {
        use clap::CommandFactory;
        crate::Cli::command().debug_assert();
    }

    #[test]
    fn the_anthropic_provider_defaults_to_the_chats_endpoint_and_key() {
        let o = opts(&[]);
        assert_eq!(o.enhance_provider, EnhanceProvider::Anthropic);
        assert!(
            o.provider(None, None).unwrap().is_none(),
            "nothing configured"
        );
        let key = SecretString::from("chat-key".to_owned());
        let Some(ProviderConfig::Anthropic {
            base_url,
            api_key,
            model,
        }) = o
            .provider(Some("http://127.0.0.1:4010"), Some(&key))
            .unwrap()
        else {
            panic!("not the Anthropic provider")
        };
        assert_eq!(base_url, "http://127.0.0.1:4010");
        assert_eq!(api_key.expose_secret(), "chat-key");
        assert_eq!(model, "claude-sonnet-4-5");
        // Its own settings win over the chat's.
        let o = opts(&[
            "--enhance-base-url",
            "https://models.example",
            "--enhance-api-key",
            "own",
            "--enhance-model",
            "claude-haiku-4-5",
        ]);
        let Some(ProviderConfig::Anthropic {
            base_url,
            api_key,
            model,
        }) = o.provider(Some("http://chat"), Some(&key)).unwrap()
        else {
            panic!("not the Anthropic provider")
        };
        assert_eq!(
            (base_url.as_str(), api_key.expose_secret(), model.as_str()),
            ("https://models.example", "own", "claude-haiku-4-5")
        );
    }

    #[test]
    fn the_openai_provider_needs_a_key_and_defaults_to_openrouter() {
        let err = opts(&["--enhance-provider", "openai"])
            .provider(None, None)
            .unwrap_err();
        assert!(err.to_string().contains("OPENROUTER_API_KEY"), "{err}");
        let o = opts(&[
            "--enhance-provider",
            "openai",
            "--openrouter-api-key",
            "or-key",
            "--enhance-title",
            "csp",
        ]);
        let Some(ProviderConfig::OpenAiCompatible {
            base_url,
            api_key,
            model,
            referer,
            title,
        }) = o.provider(None, None).unwrap()
        else {
            panic!("not the OpenAI-compatible provider")
        };
        assert_eq!(base_url, "https://openrouter.ai/api/v1");
        assert_eq!(api_key.expose_secret(), "or-key");
        assert_eq!(model, "anthropic/claude-sonnet-4.5");
        assert_eq!((referer, title.as_deref()), (None, Some("csp")));
    }
}
