//! `csp`: the one binary of the Claude Session Platform.
//!
//! `csp dev` runs every service in one process on embedded backends;
//! `csp serve <service>` runs one service against Postgres, Redis and NATS;
//! both compose the services from one table (`services.rs`: one row per
//! service, run by `compose.rs`), so a new service is one row there;
//! `csp mock-llm` runs the scripted model server, `csp mock-ticketing` the
//! fake ServiceDesk Plus; `csp audit verify` checks the audit log's hash
//! chain; `csp tickets import` seeds a tenant's ticket history; `csp tenants k8s`
//! writes a tenant's own Kubernetes namespace (an overlay); `csp mcp tickets`
//! is the ticket tools' MCP server that an agent's CLI starts in its sandbox.
//! This crate only parses configuration and composes the service crates; it
//! holds no service logic.

mod audit;
mod backends;
mod compose;
mod config_file;
mod dev;
mod error;
mod mcp;
mod opts;
mod row;
mod secrets;
mod serve;
mod services;
mod tenants;
mod tickets;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use csp_telemetry::LogFormat;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "csp", version, about = "Claude Session Platform")]
pub(crate) struct Cli {
    /// Settings file (TOML, environment variable names as keys); its values
    /// replace the defaults, the environment and flags still win.
    #[arg(long, env = "CSP_CONFIG", global = true)]
    config: Option<std::path::PathBuf>,
    /// Log format: text or json.
    #[arg(long, env = "CSP_LOG_FORMAT", default_value = "text", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
// Parsed once at startup: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Command {
    /// Run every service in one process on embedded backends (SQLite,
    /// in-process bus, in-memory cache). Without ANTHROPIC_API_KEY or
    /// ANTHROPIC_BASE_URL it also runs the scripted offline demo model.
    Dev(dev::Options),
    /// Run one service against Postgres, Redis and NATS JetStream.
    Serve {
        #[command(subcommand)]
        service: services::Service,
    },
    /// Run the scripted Anthropic Messages API server (tests and demos only).
    MockLlm(serve::MockLlmOptions),
    /// Run the fake ServiceDesk Plus (API v3) with seeded resolved tickets
    /// (tests and the offline demo only).
    MockTicketing(serve::MockTicketingOptions),
    /// Ticket enhancement tools: import a tenant's resolved tickets.
    Tickets {
        #[command(subcommand)]
        command: tickets::Command,
    },
    /// Tenant deployment tools: a tenant's own Kubernetes namespace.
    Tenants {
        #[command(subcommand)]
        command: tenants::Command,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: audit::Command,
    },
    /// Plugin secret keys: generate one, rotate to a new one.
    Secrets {
        #[command(subcommand)]
        command: secrets::Command,
    },
    /// MCP servers built into csp, started by an agent's Claude Code CLI
    /// inside its sandbox (stdio).
    Mcp {
        #[command(subcommand)]
        command: mcp::Command,
    },
}

impl Command {
    /// Whether this process keeps its last log lines in memory: the ones
    /// running a tickets worker, which publishes them for the Workers page.
    fn keeps_log_lines(&self) -> bool {
        match self {
            Command::Dev(_) => true,
            Command::Serve { service } => service.row().name == "tickets-worker",
            _ => false,
        }
    }

    /// `service.name` of the spans this process exports.
    fn service_name(&self) -> &'static str {
        match self {
            Command::Dev(_) => "csp-dev",
            Command::Serve { service } => service.row().span,
            Command::MockLlm(_) => "csp-mock-llm",
            Command::MockTicketing(_) => "csp-mock-ticketing",
            Command::Mcp { .. } => "csp-mcp",
            Command::Secrets { .. }
            | Command::Audit { .. }
            | Command::Tickets { .. }
            | Command::Tenants { .. } => "csp-tools",
        }
    }
}

/// Raises the soft limit on open files to the hard limit. Every browser
/// WebSocket, gRPC stream and agent pipe is a file descriptor, and the
/// usual soft default of 1024 would refuse connections long before memory
/// or CPU run out; the hard limit is what the operator actually granted.
fn raise_nofile_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "raised the open-file limit"),
            Err(e) => tracing::warn!(soft, hard, error = %e, "could not raise the open-file limit"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the open-file limit"),
    }
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

/// Parses flags and environment over the config file's values over defaults.
fn parse_cli() -> Cli {
    let args: Vec<String> = std::env::args().collect();
    let mut cmd = Cli::command();
    if let Some(path) = config_file::path_from(&args) {
        match config_file::load(&path).and_then(|values| config_file::apply(cmd, &values)) {
            Ok(c) => cmd = c,
            Err(e) => {
                eprintln!("csp: error: {e:#}");
                std::process::exit(2);
            }
        }
    }
    let matches = cmd.get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = parse_cli();
    let _spans = csp_telemetry::init_tracing_with(
        cli.log_format,
        cli.command.service_name(),
        cli.command.keeps_log_lines().then(|| {
            csp_telemetry::LogRing::new(
                csp_domain::WORKER_LOG_LINES,
                csp_domain::WORKER_LOG_LINE_BYTES,
            )
        }),
    );
    raise_nofile_limit();
    // Install the recorder before any service records a metric.
    let _ = csp_telemetry::metrics_handle();
    let shutdown = shutdown_signal();
    let result = match cli.command {
        Command::Dev(o) => dev::run(o, shutdown).await.map_err(anyhow::Error::from),
        Command::Serve { service } => match serve::run(service, shutdown).await {
            // Drained for a restart: its supervisor starts it again.
            Err(error::Error::Restart) => {
                eprintln!(
                    "csp: the tickets worker drained for a restart; exiting with {} so its supervisor starts it again",
                    csp_tickets_worker::Exit::RESTART_CODE
                );
                return std::process::ExitCode::from(csp_tickets_worker::Exit::RESTART_CODE);
            }
            other => other.map_err(anyhow::Error::from),
        },
        Command::MockLlm(o) => serve::mock_llm(o, shutdown).await,
        Command::MockTicketing(o) => serve::mock_ticketing(o, shutdown).await,
        Command::Tickets { command } => tickets::run(command).await,
        Command::Tenants { command } => tenants::run(command).await,
        Command::Secrets { command } => secrets::run(command).await,
        Command::Mcp { command } => mcp::run(command, shutdown).await,
        Command::Audit { command } => match audit::run(command).await {
            Ok(true) => Ok(()),
            Ok(false) => return std::process::ExitCode::FAILURE,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("csp: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
