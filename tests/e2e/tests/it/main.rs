//! End-to-end tests: the real `csp` binary (built by `cargo build -p csp-cli`),
//! the real Claude Code CLI, and the scripted model server — in `csp dev` and
//! in multi-service mode against Postgres, Redis and NATS JetStream.

mod attack;
mod chat;
mod governance;
mod lifecycle;
mod login;
mod observability;
mod output;
mod plugins;
mod resilience;
mod sandbox;
mod scale;
mod security;
mod tenants;
mod throwaway_nats;
mod ticket_tools;
mod tickets;
mod tracing;
