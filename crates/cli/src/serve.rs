//! `csp serve <service>`: one service against Postgres, Redis and NATS, as
//! a deployment runs it (its row of the composition table, `services.rs`,
//! built from its own options and run by `compose.rs`); and `csp mock-llm`.

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
