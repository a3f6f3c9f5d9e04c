//! Ticketing tools as csp sees them: the webhooks a tool sends us and the
//! API calls we make back, one connector per tool behind one interface
//! ([`connector`]: [`connector::ToolType`], the registry
//! [`registry::connector`], the traits [`connector::Connector`] and
//! [`connector::TicketingClient`]).
//!
//! Owns: ServiceDesk Plus ([`servicedesk`], API v3, and csp's own webhook
//! contract in [`webhook`]: the new-ticket and resolved-ticket payloads,
//! their validation with errors that name the field, the
//! `X-ServiceDesk-Signature` HMAC scheme with its timestamp tolerance and
//! secret rotation); Jira Service Management ([`jira`]: `X-Hub-Signature`,
//! delivery ids, Atlassian Document Format to text, internal comments, JQL
//! import); Zendesk ([`zendesk`]: its signature over timestamp and body,
//! private comments, search-export import); the types they share
//! ([`Ticket`], [`ResolvedTicket`], [`JobMarker`], [`NoteFormat`]) and
//! turning a tool's HTML into plain text ([`html_to_text`]).
//!
//! Must never: put a tool's credential in an error, a log line or `Debug`
//! output (credentials are `SecretString`s, errors are redacted by
//! `csp-http`); compare a signature in time that depends on its content;
//! retry a call the tool refused (4xx); post a note for a job whose marker is
//! already on the ticket. `tests/it/conformance.rs` holds every connector to
//! that against its fake (`csp-mock-ticketing`);
//! `docs/connector-development.md` walks through adding one.

mod adf;
pub mod connector;
pub mod jira;
pub mod registry;
pub mod servicedesk;
mod text;
mod types;
pub mod webhook;
pub mod zendesk;

pub use text::{html_to_text, html_to_text_keeping_links};
pub use types::{
    InvalidJobId, InvalidTicketId, JobMarker, MAX_TICKET_ID_LEN, NoteFormat, NoteId,
    ResolvedTicket, Ticket, validate_ticket_id,
};
