//! The note a ticket gets: the model's text, capped, or — when there was no synthesis — the
//! gathered context laid out in the same four sections, saying why.

use crate::context::{GatheredContext, SourceKind};
use crate::render::{NoteFormat, render_note};
use crate::synth::{Synthesis, SynthesisError};
use crate::words::cap_words;

/// The four sections of the seed's output format, in order.
pub const SECTIONS: [&str; 4] = [
    "## Similar Tickets",
    "## Relevant Documentation",
    "## System Information",
    "## Recommended Next Steps",
];

/// Why a note was written without the model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SkipReason {
    #[error(transparent)]
    Failed(#[from] SynthesisError),
    /// The tenant's monthly model budget is spent: no call was made.
    #[error("the tenant's model budget is spent")]
    OverBudget,
    /// The model-API circuit breaker is open: no call was made.
    #[error("the model API circuit breaker is open")]
    BreakerOpen,
    /// No model is configured for enhancements.
    #[error("no model is configured")]
    NoModel,
}

impl SkipReason {
    /// The words that go into "Automatic analysis unavailable (…)".
    pub fn short(&self) -> &'static str {
        match self {
            SkipReason::Failed(e) => e.short_reason(),
            SkipReason::OverBudget => "model budget reached",
            SkipReason::BreakerOpen => "model API temporarily unavailable",
            SkipReason::NoModel => "no model configured",
        }
    }
}

/// How a tenant wants its notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoteOptions {
    /// See [`crate::effective_max_words`].
    pub max_words: usize,
    pub format: NoteFormat,
}

impl Default for NoteOptions {
    fn default() -> Self {
        Self {
            max_words: crate::prompt::DEFAULT_MAX_WORDS,
            format: NoteFormat::Html,
        }
    }
}

/// A finished note.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    /// The note as Markdown (what the history shows as `llm_output`).
    pub markdown: String,
    /// The note in the tenant's format, ready to post.
    pub body: String,
    pub format: NoteFormat,
    /// The model's answer and its cost, when there was one.
    pub synthesis: Option<Synthesis>,
    /// Why there was no synthesis.
    pub skipped: Option<SkipReason>,
    /// The model's text was longer than the word limit and was cut.
    pub truncated: bool,
}

/// The note for a synthesis outcome: the model's text capped to the word limit, or the
/// fallback note for `ctx` when it failed or was skipped.
pub fn compose_note(
    outcome: Result<Synthesis, SkipReason>,
    ctx: &GatheredContext,
    opts: NoteOptions,
) -> Note {
    let max_words = opts.max_words.clamp(1, crate::prompt::DEFAULT_MAX_WORDS);
    match outcome {
        Ok(synthesis) => {
            let markdown = cap_words(synthesis.text.trim(), max_words);
            let truncated = markdown != synthesis.text.trim();
            if truncated {
                tracing::warn!(
                    max_words,
                    "the model's note exceeded the word limit; truncated"
                );
            }
            Note {
                body: render_note(&markdown, opts.format),
                markdown,
                format: opts.format,
                synthesis: Some(synthesis),
                skipped: None,
                truncated,
            }
        }
        Err(reason) => {
            let markdown = cap_words(&fallback_note(ctx, &reason), max_words);
            Note {
                body: render_note(&markdown, opts.format),
                markdown,
                format: opts.format,
                synthesis: None,
                skipped: Some(reason),
                truncated: false,
            }
        }
    }
}

/// The gathered context as a note in the four sections, without synthesis; the last section
/// says why and lists what to look at first.
pub fn fallback_note(ctx: &GatheredContext, reason: &SkipReason) -> String {
    let failed = |kind: SourceKind| ctx.sources.get(&kind).is_some_and(|r| r.error.is_some());
    let mut out = String::new();

    out.push_str(SECTIONS[0]);
    out.push('\n');
    if ctx.similar_tickets.is_empty() {
        out.push_str(if failed(SourceKind::TicketHistory) {
            "Ticket history search unavailable.\n"
        } else {
            "No similar tickets found.\n"
        });
    }
    for t in &ctx.similar_tickets {
        let mut line = format!("- Ticket {}", md(&t.ticket_id));
        if !t.resolved_date.trim().is_empty() {
            line.push_str(&format!(" (resolved {})", md(&t.resolved_date)));
        }
        line.push_str(&format!(": {}", md(&cut(&t.description, 100))));
        if !t.resolution.trim().is_empty() {
            line.push_str(&format!(" Resolution: {}", md(&cut(&t.resolution, 150))));
        }
        out.push_str(&line);
        out.push('\n');
    }

    out.push('\n');
    out.push_str(SECTIONS[1]);
    out.push('\n');
    if ctx.kb_articles.is_empty() {
        out.push_str(if failed(SourceKind::Kb) {
            "Knowledge base search unavailable.\n"
        } else {
            "No relevant documentation found.\n"
        });
    }
    for a in &ctx.kb_articles {
        let title = md(&one_line(&a.title));
        let url = a.url.trim();
        let mut line = if is_web_url(url) {
            format!("- [{title}](<{}>)", url.replace(['<', '>'], ""))
        } else {
            format!("- {title}")
        };
        if !a.summary.trim().is_empty() {
            line.push_str(&format!(": {}", md(&cut(&a.summary, 200))));
        }
        out.push_str(&line);
        out.push('\n');
    }

    out.push('\n');
    out.push_str(SECTIONS[2]);
    out.push('\n');
    if ctx.systems.is_empty() {
        out.push_str(if failed(SourceKind::IpInventory) {
            "Inventory lookup unavailable.\n"
        } else {
            "No system information found.\n"
        });
    }
    for s in &ctx.systems {
        let host = if s.hostname.trim().is_empty() {
            "Unknown host".to_owned()
        } else {
            md(&one_line(&s.hostname))
        };
        let details: Vec<String> = [
            ("Role", &s.role),
            ("Client", &s.client),
            ("Location", &s.location),
        ]
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}: {}", md(&one_line(v))))
        .collect();
        let mut line = format!("- **{host}** ({})", md(&s.ip));
        if !details.is_empty() {
            line.push_str(&format!(" — {}", details.join("; ")));
        }
        out.push_str(&line);
        out.push('\n');
    }

    out.push('\n');
    out.push_str(SECTIONS[3]);
    out.push('\n');
    out.push_str(&format!(
        "Automatic analysis unavailable ({}); the context gathered is listed above without analysis.\n",
        reason.short()
    ));
    if let Some(t) = ctx.similar_tickets.first() {
        out.push_str(&format!(
            "- Compare with how ticket {} was resolved.\n",
            md(&t.ticket_id)
        ));
    }
    if let Some(a) = ctx.kb_articles.first() {
        out.push_str(&format!("- Read \"{}\".\n", md(&one_line(&a.title))));
    }
    for s in ctx.systems.iter().take(3) {
        let host = if s.hostname.trim().is_empty() {
            md(&s.ip)
        } else {
            md(&one_line(&s.hostname))
        };
        out.push_str(&format!("- Check {host} ({}).\n", md(&s.ip)));
    }
    out.trim_end().to_owned()
}

fn is_web_url(url: &str) -> bool {
    let lower = url
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    (lower.starts_with("http://") || lower.starts_with("https://"))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// On one line, at most `n` characters, `…` where cut.
fn cut(s: &str, n: usize) -> String {
    let s = one_line(s);
    if s.chars().count() > n {
        format!("{}…", s.chars().take(n).collect::<String>().trim_end())
    } else {
        s
    }
}

/// Text from tickets and inventories shown as text: Markdown's markup characters escaped.
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '!' | '|' | '&'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{KbArticle, SimilarTicket, SourceReport, SystemInfo};
    use crate::render::markdown_to_html;
    use std::time::Duration;

    fn ctx() -> GatheredContext {
        GatheredContext {
            similar_tickets: vec![SimilarTicket {
                ticket_id: "3900".into(),
                description: "Printer offline after the driver update".into(),
                resolution: "Restarted the spooler on prn-01.".into(),
                resolved_date: "2026-01-05".into(),
            }],
            kb_articles: vec![KbArticle {
                title: "Printer <b>troubleshooting</b>".into(),
                summary: "Steps to bring a network printer back.".into(),
                url: "https://kb.acme.example/printers".into(),
            }],
            systems: vec![SystemInfo {
                ip: "10.0.0.7".into(),
                hostname: "prn-01".into(),
                role: "printer".into(),
                client: "Acme".into(),
                location: "HQ".into(),
            }],
            ..GatheredContext::default()
        }
    }

    fn synthesis(text: &str) -> Synthesis {
        Synthesis {
            text: text.into(),
            input_tokens: 10,
            output_tokens: 20,
            cost_usd: 0.001,
            model: "claude-sonnet-4-5".into(),
        }
    }

    #[test]
    fn the_fallback_note_cites_the_context_in_four_sections() {
        let note = fallback_note(
            &ctx(),
            &SkipReason::Failed(SynthesisError::Timeout(Duration::from_secs(30))),
        );
        assert_eq!(
            note,
            "## Similar Tickets\n\
             - Ticket 3900 (resolved 2026-01-05): Printer offline after the driver update Resolution: Restarted the spooler on prn-01.\n\
             \n\
             ## Relevant Documentation\n\
             - [Printer \\<b\\>troubleshooting\\</b\\>](<https://kb.acme.example/printers>): Steps to bring a network printer back.\n\
             \n\
             ## System Information\n\
             - **prn-01** (10.0.0.7) — Role: printer; Client: Acme; Location: HQ\n\
             \n\
             ## Recommended Next Steps\n\
             Automatic analysis unavailable (model timed out); the context gathered is listed above without analysis.\n\
             - Compare with how ticket 3900 was resolved.\n\
             - Read \"Printer \\<b\\>troubleshooting\\</b\\>\".\n\
             - Check prn-01 (10.0.0.7)."
        );
        let html = markdown_to_html(&note);
        assert!(html.contains("<a href=\"https://kb.acme.example/printers\">Printer &lt;b&gt;troubleshooting&lt;/b&gt;</a>"), "{html}");
        assert!(
            html.contains("<li><strong>prn-01</strong> (10.0.0.7)"),
            "{html}"
        );
    }

    #[test]
    fn an_empty_context_and_failed_sources_say_so() {
        let mut ctx = GatheredContext::default();
        ctx.sources.insert(
            SourceKind::Kb,
            SourceReport {
                elapsed_ms: 10_000,
                error: Some("timed out after 10000 ms".into()),
            },
        );
        let note = fallback_note(&ctx, &SkipReason::OverBudget);
        assert_eq!(
            note,
            "## Similar Tickets\nNo similar tickets found.\n\n## Relevant Documentation\nKnowledge base search unavailable.\n\n## System Information\nNo system information found.\n\n## Recommended Next Steps\nAutomatic analysis unavailable (model budget reached); the context gathered is listed above without analysis."
        );
        for section in SECTIONS {
            assert!(note.contains(section));
        }
    }

    #[test]
    fn a_synthesis_is_capped_and_rendered() {
        let long = format!(
            "## Similar Tickets\n{}\n\n## Recommended Next Steps\n1. Reboot.",
            "word ".repeat(30)
        );
        let note = compose_note(
            Ok(synthesis(&long)),
            &ctx(),
            NoteOptions {
                max_words: 20,
                format: NoteFormat::Html,
            },
        );
        assert!(note.truncated);
        assert!(note.markdown.ends_with("word…"), "{}", note.markdown);
        assert!(!note.markdown.contains("Recommended"));
        assert!(
            note.body
                .starts_with("<h2>Similar Tickets</h2>\n<p>word word"),
            "{}",
            note.body
        );
        assert_eq!(note.synthesis.as_ref().unwrap().cost_usd, 0.001);
        assert_eq!(note.skipped, None);

        let short = compose_note(
            Ok(synthesis("## Similar Tickets\nNone.\n")),
            &ctx(),
            NoteOptions {
                max_words: 500,
                format: NoteFormat::Markdown,
            },
        );
        assert!(!short.truncated);
        assert_eq!(short.body, "## Similar Tickets\nNone.");
    }

    #[test]
    fn a_skipped_synthesis_gives_the_fallback_with_its_reason() {
        let note = compose_note(Err(SkipReason::BreakerOpen), &ctx(), NoteOptions::default());
        assert!(note.synthesis.is_none());
        assert_eq!(note.skipped, Some(SkipReason::BreakerOpen));
        assert!(
            note.markdown
                .contains("Automatic analysis unavailable (model API temporarily unavailable)")
        );
        assert!(
            note.body.contains("<h2>Recommended Next Steps</h2>"),
            "{}",
            note.body
        );
        assert!(note.body.contains("3900"));
    }
}
