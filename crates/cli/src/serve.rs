//! `csp serve <service>`: one service against Postgres, Redis and NATS, as
//! a deployment runs it (its row of the composition table, `services.rs`,
//! built from its own options and run by `compose.rs`); `csp mock-llm` and
//! `csp mock-ticketing`.

use crate::error::Error;
use crate::services::Service;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

pub(crate) async fn run(service: Service, shutdown: CancellationToken) -> Result<(), Error> {
    let row = service.row();
    let built = service.build().await?;
    crate::compose::serve(row, built, shutdown).await
}

#[derive(Args)]
pub(crate) struct MockLlmOptions {
    #[arg(long, env = "CSP_MOCK_LISTEN", default_value = "127.0.0.1:4010")]
    listen: SocketAddr,
    /// Rules file (JSON, see docs/mock-llm.md).
    #[arg(long, env = "CSP_MOCK_RULES")]
    rules: Option<PathBuf>,
    /// Answer 401 to requests without this key, like the real API.
    #[arg(long, env = "CSP_MOCK_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

pub(crate) async fn mock_llm(o: MockLlmOptions, shutdown: CancellationToken) -> anyhow::Result<()> {
    let rules = match &o.rules {
        Some(p) => csp_mock_llm::Rules::from_path(p)?,
        None => csp_mock_llm::Rules::default(),
    };
    let mock = csp_mock_llm::MockLlm::start(csp_mock_llm::Options {
        addr: o.listen,
        rules,
        api_key: o.api_key,
    })
    .await?;
    println!("csp mock-llm: listening on {}", mock.base_url());
    shutdown.cancelled().await;
    mock.shutdown().await;
    Ok(())
}

#[derive(Args)]
pub(crate) struct MockTicketingOptions {
    #[arg(
        long,
        env = "CSP_MOCK_TICKETING_ADDR",
        default_value = "127.0.0.1:8090"
    )]
    addr: SocketAddr,
    /// ServiceDesk Plus: answer 401 to calls without `authtoken: <this>`
    /// (default: any credential, or none, is accepted).
    #[arg(long, env = "CSP_MOCK_TICKETING_AUTHTOKEN", hide_env_values = true)]
    authtoken: Option<String>,
    /// Jira: the account `<email>:<api token>` whose basic auth is accepted
    /// (default: any).
    #[arg(long, env = "CSP_MOCK_TICKETING_JIRA_ACCOUNT", hide_env_values = true)]
    jira_account: Option<String>,
    /// Zendesk: the agent `<email>:<api token>` whose basic auth is accepted
    /// (default: any).
    #[arg(long, env = "CSP_MOCK_TICKETING_ZENDESK_AGENT", hide_env_values = true)]
    zendesk_agent: Option<String>,
    /// Resolved tickets to seed in each tool (resolved over the last 80
    /// days in ServiceDesk Plus, the last days in Jira and Zendesk).
    #[arg(long, default_value_t = 0)]
    seed_resolved: usize,
}

/// `email:token` of `--jira-account` / `--zendesk-agent`.
fn account(flag: &str, text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once(':') {
        Some((email, token)) if !email.is_empty() && !token.is_empty() => {
            Ok((email.to_owned(), token.to_owned()))
        }
        _ => anyhow::bail!("{flag} must be <email>:<api token>"),
    }
}

pub(crate) async fn mock_ticketing(
    o: MockTicketingOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut sdp = csp_mock_ticketing::MockSdp::builder();
    if let Some(key) = o.authtoken {
        sdp = sdp.authtoken(key);
    }
    let mut jira = csp_mock_ticketing::MockJira::builder();
    if let Some(a) = &o.jira_account {
        let (email, token) = account("--jira-account", a)?;
        jira = jira.account(email, token);
    }
    let mut zendesk = csp_mock_ticketing::MockZendesk::builder();
    if let Some(a) = &o.zendesk_agent {
        let (email, token) = account("--zendesk-agent", a)?;
        zendesk = zendesk.credential(email, token);
    }
    let (sdp, jira, zendesk) = (sdp.build(), jira.build(), zendesk.build());
    let seeded = sdp.seed_resolved(o.seed_resolved);
    if o.seed_resolved > 0 {
        jira.seed_resolved(o.seed_resolved);
        zendesk.seed_solved(o.seed_resolved);
    }
    let listener = tokio::net::TcpListener::bind(o.addr)
        .await
        .with_context(|| format!("cannot listen on {} (--addr)", o.addr))?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("csp mock-ticketing: listening on {base}");
    println!(
        "csp mock-ticketing: ServiceDesk Plus at {base} (/api/v3), Jira at {base} (/rest), Zendesk at {base} (/api/v2, as zendesk_url)"
    );
    if let Some((first, last)) = seeded {
        println!("csp mock-ticketing: seeded resolved requests {first} to {last}");
    }
    csp_mock_ticketing::serve_all_tools(listener, sdp, jira, zendesk, shutdown).await?;
    Ok(())
}
