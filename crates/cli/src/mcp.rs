//! `csp mcp`: MCP servers built into csp, started by the Claude Code CLI
//! from its `--mcp-config` inside the agent's sandbox. `csp mcp tickets`
//! serves the ticket tools of the session's tenant over stdio, forwarding
//! every call to the session-pool's tool door (`csp-ticket-tools`).
//!
//! stdout is the protocol: nothing else may be written to it. Logs and
//! errors go to stderr, which the CLI keeps in its MCP debug log.

use anyhow::Context;
use clap::Subcommand;
use csp_ticket_tools::DoorClient;
use tokio_util::sync::CancellationToken;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Serve the ticket tools (similar tickets, knowledge base, IP lookup,
    /// tickets, internal notes) of this chat session's tenant over stdio.
    /// Reads CSP_TICKET_TOOLS_URL and CSP_TICKET_TOOLS_TOKEN, which the
    /// session-pool sets.
    Tickets,
}

pub(crate) async fn run(command: Command, shutdown: CancellationToken) -> anyhow::Result<()> {
    match command {
        Command::Tickets => {
            let door = DoorClient::from_env().context("cannot serve the ticket tools")?;
            let stdin = tokio::io::BufReader::new(tokio::io::stdin());
            tokio::select! {
                served = csp_ticket_tools::serve(&door, stdin, tokio::io::stdout()) => {
                    served.context("the ticket tools' stdio broke")
                }
                () = shutdown.cancelled() => {
                    // tokio reads stdin on a blocking thread that only a line
                    // or EOF releases, and the runtime waits for it when it
                    // is dropped: leave now, as an unhandled SIGTERM would.
                    std::process::exit(0)
                }
            }
        }
    }
}
