//! Ticketing tools as csp sees them: the webhooks a tool sends us and the
//! API calls we make back. ServiceDesk Plus (API v3) is the one tool today.
//!
//! Owns: the webhook contract ([`webhook`]: the new-ticket and resolved-ticket
//! payloads, their validation with errors that name the field, the
//! `X-ServiceDesk-Signature` HMAC scheme with its timestamp tolerance and
//! secret rotation); the ServiceDesk Plus client ([`servicedesk`]: reading
//! requests, their notes and resolutions, pages of resolved requests for the
//! import, posting an internal note at most once per job, testing a
//! connection); the types both share ([`Ticket`], [`ResolvedTicket`],
//! [`JobMarker`], [`NoteFormat`]) and turning a tool's HTML into plain text
//! ([`html_to_text`]).
//!
//! Must never: put a tool's credential in an error, a log line or `Debug`
//! output (credentials are `SecretString`s, errors are redacted by
//! `csp-http`); compare a signature in time that depends on its content;
//! retry a call the tool refused (4xx); post a note for a job whose marker is
//! already on the ticket.
//!
//! The shape is one connector per tool (verify a webhook, extract its
//! metadata, get a ticket, post an internal note with a job marker, list
//! resolved tickets page by page, test the connection), so that a
//! `Connector` trait can be drawn over [`servicedesk::SdpClient`] and
//! [`webhook`] when a second tool arrives.

pub mod servicedesk;
mod text;
mod types;
pub mod webhook;

pub use text::html_to_text;
pub use types::{
    InvalidJobId, InvalidTicketId, JobMarker, MAX_TICKET_ID_LEN, NoteFormat, NoteId,
    ResolvedTicket, Ticket, validate_ticket_id,
};
