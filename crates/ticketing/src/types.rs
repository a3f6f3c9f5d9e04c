//! What every connector shares: tickets, resolved tickets, notes and the
//! marker that ties a note to the job that wrote it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The longest ticket id accepted, in bytes (ids are ASCII).
pub const MAX_TICKET_ID_LEN: usize = 64;

/// A ticket id is 1 to 64 characters of `A-Z a-z 0-9 . _ -`: it becomes a
/// URL path segment and a store key, so nothing that needs escaping.
pub fn validate_ticket_id(id: &str) -> Result<(), InvalidTicketId> {
    let ok = !id.is_empty()
        && id.len() <= MAX_TICKET_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && id != "."
        && id != "..";
    if ok { Ok(()) } else { Err(InvalidTicketId) }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ticket_id must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'")]
pub struct InvalidTicketId;

/// A ticket as read from the tool; text fields are plain text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub ticket_id: String,
    pub subject: String,
    pub description: String,
    pub priority: Option<String>,
    pub status: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When it was resolved, or else closed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    pub resolution: Option<String>,
    /// The tool's classification (ServiceDesk Plus: category, subcategory, item).
    pub tags: Vec<String>,
}

/// A resolved or closed ticket, as `ticket_history` stores it; from the bulk
/// import or the resolved-ticket webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedTicket {
    pub ticket_id: String,
    pub description: String,
    pub resolution: String,
    #[serde(with = "time::serde::rfc3339")]
    pub resolved_date: OffsetDateTime,
    pub tags: Vec<String>,
}

/// A note's id in the tool.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NoteId(pub String);

impl std::fmt::Display for NoteId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a tenant wants its notes written: the platform's one vocabulary.
pub use csp_domain::NoteFormat;

/// Ties a note to the job that wrote it, so a redelivered job finds its note
/// instead of posting a second one.
///
/// The marker is visible text, `csp-job:<job_id>`, in a small footer, not an
/// HTML comment: ServiceDesk Plus stores note descriptions as rich text and
/// sanitises them, and comments are among the first things an HTML sanitiser
/// drops (tags and attributes may be rewritten too). Plain text of letters,
/// digits, `-`, `_` and `:` passes every sanitiser and every HTML escaper
/// unchanged, and reads back the same from the notes list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobMarker {
    job_id: String,
}

/// The longest job id a marker takes.
const MAX_JOB_ID_LEN: usize = 64;
const MARKER_PREFIX: &str = "csp-job:";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a job id for a note marker must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")]
pub struct InvalidJobId;

fn is_job_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

impl JobMarker {
    pub fn new(job_id: &str) -> Result<Self, InvalidJobId> {
        if job_id.is_empty() || job_id.len() > MAX_JOB_ID_LEN || !job_id.bytes().all(is_job_id_byte)
        {
            return Err(InvalidJobId);
        }
        Ok(Self {
            job_id: job_id.to_owned(),
        })
    }

    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// `csp-job:<job_id>`, the text searched for.
    pub fn token(&self) -> String {
        format!("{MARKER_PREFIX}{}", self.job_id)
    }

    /// The footer appended to a note's body.
    pub fn footer(&self, format: NoteFormat) -> String {
        match format {
            NoteFormat::Html => format!(
                "<p style=\"font-size:11px;color:#888888\">Added by csp ({})</p>",
                self.token()
            ),
            NoteFormat::Markdown => format!("\n\n---\nAdded by csp ({})", self.token()),
        }
    }

    /// `body` with the footer.
    pub fn apply(&self, body: &str, format: NoteFormat) -> String {
        format!("{body}{}", self.footer(format))
    }

    /// Whether `text` carries this marker; `csp-job:ab` is not found in
    /// `csp-job:abc`.
    pub fn found_in(&self, text: &str) -> bool {
        let token = self.token();
        text.match_indices(&token).any(|(at, _)| {
            text.as_bytes()
                .get(at + token.len())
                .is_none_or(|&b| !is_job_id_byte(b))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_ids_are_short_and_safe() {
        for ok in ["1234", "SR-12.a_b", &"9".repeat(64)] {
            assert_eq!(validate_ticket_id(ok), Ok(()), "{ok}");
        }
        for bad in ["", "..", ".", "12/34", "12 34", "é", "a?b", &"9".repeat(65)] {
            assert_eq!(validate_ticket_id(bad), Err(InvalidTicketId), "{bad}");
        }
    }

    #[test]
    fn a_marker_is_found_only_whole() {
        let m = JobMarker::new("job-1").unwrap();
        let note = m.apply("<p>Hello</p>", NoteFormat::Html);
        assert!(m.found_in(&note));
        assert!(m.found_in(&m.apply("Hello", NoteFormat::Markdown)));
        assert!(!JobMarker::new("job").unwrap().found_in(&note));
        assert!(!JobMarker::new("job-10").unwrap().found_in(&note));
        assert!(!m.found_in("csp-job:job-10 and csp-job:job-1x"));
        assert!(m.found_in("csp-job:job-10 and csp-job:job-1"));
        // A sanitiser that drops the style attribute and the tags keeps the text.
        assert!(m.found_in("Added by csp (csp-job:job-1)"));
    }

    #[test]
    fn job_ids_that_could_be_rewritten_are_refused() {
        for bad in ["", "a b", "a<b", "a&b", "a:b", &"x".repeat(65)] {
            assert_eq!(JobMarker::new(bad), Err(InvalidJobId), "{bad}");
        }
        let uuid = "0b6f3c1e-2d7a-4f0e-9a57-6c1d2e3f4a5b";
        assert_eq!(
            JobMarker::new(uuid).unwrap().token(),
            format!("csp-job:{uuid}")
        );
    }

    #[test]
    fn note_format_is_lowercase_json_and_html_by_default() {
        assert_eq!(NoteFormat::default(), NoteFormat::Html);
        assert_eq!(
            serde_json::to_string(&NoteFormat::Markdown).unwrap(),
            "\"markdown\""
        );
    }
}
