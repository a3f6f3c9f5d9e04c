//! `csp`: the one binary of the Claude Session Platform.
//!
//! `csp dev` runs every service in one process on embedded backends;
//! `csp serve <service>` runs one service against Postgres, Redis and NATS;
//! `csp mock-llm` runs the scripted model server. This crate only parses
//! configuration and composes the service crates; it holds no service logic.

mod dev;
mod opts;
mod serve;

use clap::{Parser, Subcommand};
use csp_telemetry::LogFormat;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "csp", version, about = "Claude Session Platform")]
struct Cli {
    /// Log format: text or json.
    #[arg(long, env = "CSP_LOG_FORMAT", default_value = "text", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in one process on embedded backends (SQLite,
    /// in-process bus, in-memory cache). Without ANTHROPIC_API_KEY or
    /// ANTHROPIC_BASE_URL it also runs the scripted offline demo model.
    Dev(dev::Options),
    /// Run one service against Postgres, Redis and NATS JetStream.
    Serve {
        #[command(subcommand)]
        service: serve::Service,
    },
    /// Run the scripted Anthropic Messages API server (tests and demos only).
    MockLlm(serve::MockLlmOptions),
}

/// Cancelled on the first SIGINT or SIGTERM.
fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        t.cancel();
    });
    token
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    csp_telemetry::init_tracing(cli.log_format);
    // Install the recorder before any service records a metric.
    let _ = csp_telemetry::metrics_handle();
    let shutdown = shutdown_signal();
    let result = match cli.command {
        Command::Dev(o) => dev::run(o, shutdown).await,
        Command::Serve { service } => serve::run(service, shutdown).await,
        Command::MockLlm(o) => serve::mock_llm(o, shutdown).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("csp: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
