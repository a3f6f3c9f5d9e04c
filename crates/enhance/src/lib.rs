//! Ticket enhancement, from the gathered context to the note (seed stories 2.5–2.9): the
//! pieces a tickets worker composes, none of which knows about queues, tenants' storage or the
//! ticketing tool.
//!
//! Owns: the context types stored on a job ([`GatheredContext`]); running the context sources
//! concurrently, each under its own deadline ([`gather`], the [`SimilarTickets`],
//! [`KnowledgeBase`] and [`Inventory`] traits the store and the knowledge-base client
//! implement); finding IP addresses in ticket text ([`extract_ips`]); the seed's system prompt
//! and template, verbatim, and its formatting helpers ([`build_prompt`]); what ticket text loses
//! before it leaves ([`prepare_text`]: secrets, and with `mask_pii` e-mails and phones); the
//! model call over the Anthropic Messages API or an OpenAI-compatible chat-completions API
//! ([`Synthesizer`], [`synthesizer`]), its price table and its typed errors; the word cap
//! ([`cap_words`]); the note without synthesis ([`fallback_note`]); the note's Markdown or
//! allow-listed HTML ([`compose_note`], [`markdown_to_html`]); and the signed "Was this
//! helpful?" links that end a posted note ([`FeedbackLinks`], checked with [`FeedbackKey`]).
//!
//! Must never: send ticket text to a model without [`prepare_text`] (which [`build_prompt`]
//! applies to every field); let a failing context source fail the whole; put an API key into
//! an error, a log line or a `Debug` output; emit an HTML tag or attribute outside the
//! allow-list, or a link that is not `http(s)`. It never decides whether a call may be made
//! (budget, circuit breaker): the caller does, and says why with a [`SkipReason`].
//!
//! ```no_run
//! # async fn demo(similar: &dyn csp_enhance::SimilarTickets, ticket: csp_enhance::TicketInput)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use csp_enhance::*;
//! let ctx = gather(Sources { similar: Some(similar), ..Sources::default() }, &ticket, GatherTimeouts::default()).await;
//! let prompt = build_prompt(&ticket, &ctx, PromptOptions::default());
//! let model = synthesizer(
//!     ProviderConfig::Anthropic {
//!         base_url: "https://api.anthropic.com".into(),
//!         api_key: "sk-ant-...".into(),
//!         model: "claude-sonnet-4-5".into(),
//!     },
//!     csp_http::HttpClient::new()?,
//!     CallOptions::default(),
//! )?;
//! let outcome = model.synthesize(&prompt).await.map_err(SkipReason::from);
//! let note = compose_note(outcome, &ctx, NoteOptions::default());
//! println!("{}", note.body);
//! # Ok(()) }
//! ```

mod context;
mod feedback;
mod gather;
mod ip;
mod note;
mod pii;
mod prompt;
mod render;
mod synth;
mod words;

pub use context::{
    GatheredContext, KbArticle, SimilarTicket, SourceKind, SourceReport, SystemInfo, TicketInput,
};
pub use feedback::{FEEDBACK_PATH, FeedbackKey, FeedbackLinks, InvalidPublicUrl, KEY_PURPOSE};
pub use gather::{
    GatherTimeouts, Inventory, KnowledgeBase, MAX_KB_ARTICLES, MAX_SIMILAR_TICKETS, MAX_SYSTEMS,
    SimilarTickets, SourceError, Sources, gather,
};
pub use ip::{MAX_IPS, extract_ips};
pub use note::{Note, NoteOptions, SECTIONS, SkipReason, compose_note, fallback_note};
pub use pii::{EMAIL_MASK, PHONE_MASK, mask_emails, mask_phones, prepare_text};
pub use prompt::{
    DEFAULT_MAX_WORDS, ENHANCEMENT_SYSTEM_PROMPT, ENHANCEMENT_TEMPLATE, Prompt, PromptOptions,
    SYSTEM_PROMPT_FIRST_LINE, build_prompt, effective_max_words, fill_template, format_docs,
    format_ip, format_monitoring, format_tickets,
};
pub use render::{NoteFormat, markdown_to_html, render_note};
pub use synth::{
    ANTHROPIC_VERSION, CallOptions, MAX_TOKENS, PriceTable, ProviderConfig, Synthesis,
    SynthesisError, Synthesizer, TEMPERATURE, TIMEOUT, synthesizer,
};
pub use words::{ELLIPSIS, cap_words};
