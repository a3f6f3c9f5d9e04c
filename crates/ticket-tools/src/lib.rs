//! The ticket tools of a chat agent: `search_similar_tickets`, `search_kb`,
//! `lookup_ip`, `get_ticket` and `add_internal_note`, on the tenant its chat
//! session is bound to.
//!
//! Owns: the tools as types and the checks of their inputs
//! ([`catalogue`]), the wire shape of the session-pool's tool door and the
//! client that calls it ([`door`]), the MCP stdio server that `csp mcp
//! tickets` runs inside the agent's sandbox ([`mcp`]), and a checked input's
//! gRPC form, which the door sends to the tickets service (`proto.rs`:
//! [`ToolInput::into_proto`], [`ToolInput::from_proto`]).
//!
//! Must never: decide anything inside the sandbox. The MCP server holds no
//! authority of its own: it forwards each call with its process's token,
//! and the door decides the tenant, the role and the input's validity
//! ([`ToolInput::parse`] runs there). No input ever names a tenant, and the
//! token never appears in an error, a log line or `Debug`.

pub mod catalogue;
pub mod door;
pub mod mcp;
mod proto;

pub use catalogue::{
    DEFAULT_LIMIT, InputError, IpQuery, KbQuery, NoteInput, SERVER_NAME, SimilarQuery, TicketRef,
    TicketTool, ToolInput, UnknownTool,
};
pub use door::{DoorClient, DoorReply};
pub use mcp::{Door, serve};
