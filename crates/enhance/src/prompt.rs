//! The model's instructions (seed story 2.9): the seed's system prompt and template, verbatim,
//! and the seed's helpers that turn the gathered context into the template's sections.
//!
//! Where this differs from the seed's Python, on purpose:
//! - `format_ip` gets every system found (the seed's took one): one block per system, blocks
//!   separated by a blank line; an empty field prints as the seed's default (`Unknown`, `N/A`).
//! - `format_tickets` and `format_docs` keep the seed's line and add one indented line with the
//!   resolution or the URL when there is one: the seed gathers both (stories 2.5, 2.6) and asks
//!   the model to cite how a ticket was resolved, which it cannot do from the description alone.
//! - Field values are put on one line (whitespace runs become one space) before they are cut,
//!   so a multi-line description cannot break the list apart; cuts count characters, as Python
//!   slices do.
//! - `{description}` is the ticket's subject, a newline, then its description: the template
//!   has no subject field and the subject is often the clearest line of a ticket.
//! - A tenant's `max_words` below 500 leaves the system prompt verbatim and adds one line after
//!   the template: "Use at most N words in total." (the word cap is enforced on the answer
//!   anyway, [`crate::cap_words`]).

use crate::context::{GatheredContext, KbArticle, SimilarTicket, SystemInfo, TicketInput};
use crate::pii::prepare_text;

/// The seed's `ENHANCEMENT_SYSTEM_PROMPT` (story 2.9), verbatim: the text between the
/// Python triple quotes, with its leading and trailing newline.
pub const ENHANCEMENT_SYSTEM_PROMPT: &str = r#"
You are an AI assistant helping MSP technicians resolve IT incidents faster.

Your role:
- Analyze gathered context (similar tickets, documentation, system info)
- Synthesize actionable insights
- Provide clear next steps

Guidelines:
- Maximum 500 words (concise!)
- Structure output with clear sections
- Cite sources (e.g., "Similar ticket TKT-123 resolved by...")
- Professional, helpful tone
- Focus on ACTIONABLE information, not theory

Output Format:
## Similar Tickets
[If found, summarize relevant past resolutions]

## Relevant Documentation
[If found, key points from knowledge base]

## System Information
[If found, relevant server/IP details]

## Recommended Next Steps
[Actionable troubleshooting steps based on context]
"#;

/// The seed's `ENHANCEMENT_TEMPLATE` (story 2.9), verbatim, placeholders in Python's
/// `str.format` syntax; [`fill_template`] fills them.
pub const ENHANCEMENT_TEMPLATE: &str = r#"
Ticket ID: {ticket_id}
Description: {description}
Priority: {priority}

Context Gathered:

### Similar Tickets Found:
{similar_tickets_summary}

### Knowledge Base Articles:
{kb_articles_summary}

### System Information:
{ip_info_summary}

### Monitoring Data:
{monitoring_data_summary}

Based on this context, provide your analysis and recommendations.
"#;

/// The words limit of the seed's system prompt ("Maximum 500 words").
pub const DEFAULT_MAX_WORDS: usize = 500;

/// The first line of [`ENHANCEMENT_SYSTEM_PROMPT`]; the mock model recognises enhancement
/// requests by it.
pub const SYSTEM_PROMPT_FIRST_LINE: &str =
    "You are an AI assistant helping MSP technicians resolve IT incidents faster.";

/// How a tenant wants its prompt built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptOptions {
    /// The tenant's `max_words`, clamped to 1..=500 by [`effective_max_words`].
    pub max_words: usize,
    /// Mask e-mail addresses and phone numbers as well as secrets.
    pub mask_pii: bool,
}

impl Default for PromptOptions {
    fn default() -> Self {
        Self {
            max_words: DEFAULT_MAX_WORDS,
            mask_pii: false,
        }
    }
}

/// The words limit for a tenant: its `max_words` when lower than 500, else 500; never 0.
pub fn effective_max_words(tenant_max_words: Option<u32>) -> usize {
    tenant_max_words.map_or(DEFAULT_MAX_WORDS, |n| {
        usize::try_from(n)
            .unwrap_or(DEFAULT_MAX_WORDS)
            .clamp(1, DEFAULT_MAX_WORDS)
    })
}

/// What is sent to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub system: String,
    pub user: String,
}

/// The seed's prompt for `ticket` and `ctx`. All text from tickets and the context passes
/// through [`prepare_text`] (secrets redacted; e-mails and phones masked with `mask_pii`).
pub fn build_prompt(ticket: &TicketInput, ctx: &GatheredContext, opts: PromptOptions) -> Prompt {
    let clean = |s: &str| prepare_text(s, opts.mask_pii);
    let description = if ticket.subject.trim().is_empty() {
        clean(&ticket.description)
    } else {
        clean(&format!(
            "{}\n{}",
            ticket.subject.trim(),
            ticket.description
        ))
    };
    let tickets: Vec<SimilarTicket> = ctx
        .similar_tickets
        .iter()
        .map(|t| SimilarTicket {
            ticket_id: clean(&t.ticket_id),
            description: clean(&t.description),
            resolution: clean(&t.resolution),
            resolved_date: clean(&t.resolved_date),
        })
        .collect();
    let docs: Vec<KbArticle> = ctx
        .kb_articles
        .iter()
        .map(|a| KbArticle {
            title: clean(&a.title),
            summary: clean(&a.summary),
            url: csp_redact::redact_text(&a.url).into_owned(),
        })
        .collect();
    let systems: Vec<SystemInfo> = ctx
        .systems
        .iter()
        .map(|s| SystemInfo {
            ip: s.ip.clone(),
            hostname: clean(&s.hostname),
            role: clean(&s.role),
            client: clean(&s.client),
            location: clean(&s.location),
        })
        .collect();
    let mut user = fill_template(
        ENHANCEMENT_TEMPLATE,
        &[
            ("ticket_id", &clean(&ticket.ticket_id)),
            ("description", &description),
            ("priority", &clean(&ticket.priority)),
            ("similar_tickets_summary", &format_tickets(&tickets)),
            ("kb_articles_summary", &format_docs(&docs)),
            ("ip_info_summary", &format_ip(&systems)),
            ("monitoring_data_summary", format_monitoring()),
        ],
    );
    let max_words = opts.max_words.clamp(1, DEFAULT_MAX_WORDS);
    if max_words < DEFAULT_MAX_WORDS {
        user.push_str(&format!("Use at most {max_words} words in total.\n"));
    }
    Prompt {
        system: ENHANCEMENT_SYSTEM_PROMPT.to_owned(),
        user,
    }
}

/// Python's `str.format` for `{name}` placeholders, in one pass: a value that itself contains
/// `{name}` is not filled again. A placeholder without a value stays as it is.
pub fn fill_template(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let filled = after.find('}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v, close))
        });
        match filled {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The seed's `format_tickets`: up to 5 lines `- Ticket {id}: {description[:100]}... (Resolved:
/// {date})`, each followed by `  Resolution: …` when the resolution is known.
pub fn format_tickets(tickets: &[SimilarTicket]) -> String {
    if tickets.is_empty() {
        return "No similar tickets found.".to_owned();
    }
    let mut lines = Vec::new();
    for t in tickets.iter().take(5) {
        lines.push(format!(
            "- Ticket {}: {}... (Resolved: {})",
            one_line(&t.ticket_id),
            chars(&one_line(&t.description), 100),
            one_line(&t.resolved_date)
        ));
        let resolution = one_line(&t.resolution);
        if !resolution.is_empty() {
            lines.push(format!("  Resolution: {}", cut(&resolution, 200)));
        }
    }
    lines.join("\n")
}

/// The seed's `format_docs`: up to 3 lines `- {title}: {summary[:200]}...`, each followed by
/// `  URL: …` when the article has one.
pub fn format_docs(docs: &[KbArticle]) -> String {
    if docs.is_empty() {
        return "No relevant documentation found.".to_owned();
    }
    let mut lines = Vec::new();
    for d in docs.iter().take(3) {
        lines.push(format!(
            "- {}: {}...",
            one_line(&d.title),
            chars(&one_line(&d.summary), 200)
        ));
        let url = one_line(&d.url);
        if !url.is_empty() {
            lines.push(format!("  URL: {url}"));
        }
    }
    lines.join("\n")
}

/// The seed's `format_ip`, one block per system:
/// `System: {hostname} ({ip})\nRole: {role}\nClient: {client}`.
pub fn format_ip(systems: &[SystemInfo]) -> String {
    if systems.is_empty() {
        return "No system information found.".to_owned();
    }
    let or = |value: &str, default: &str| {
        let value = one_line(value);
        if value.is_empty() {
            default.to_owned()
        } else {
            value
        }
    };
    systems
        .iter()
        .map(|s| {
            format!(
                "System: {} ({})\nRole: {}\nClient: {}",
                or(&s.hostname, "Unknown"),
                or(&s.ip, "N/A"),
                or(&s.role, "Unknown"),
                or(&s.client, "Unknown")
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The seed's `format_monitoring` without a monitoring source: there is none yet.
pub fn format_monitoring() -> &'static str {
    "No monitoring data available."
}

/// The first `n` characters (Python's `s[:n]`).
fn chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The first `n` characters, and `...` when something was cut.
fn cut(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!("{}...", chars(s, n))
    } else {
        s.to_owned()
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> TicketInput {
        TicketInput {
            ticket_id: "4521".into(),
            subject: "Printer offline".into(),
            description: "The printer at 10.0.0.7 is offline; call me on 555-123-4567 or mail jo@acme.example. password: Sup3rS3cret!".into(),
            priority: "High".into(),
        }
    }

    fn ctx() -> GatheredContext {
        GatheredContext {
            similar_tickets: vec![SimilarTicket {
                ticket_id: "3900".into(),
                description: "Printer\n  offline after   update ".repeat(10),
                resolution: "Restarted the spooler on PRN-01.".into(),
                resolved_date: "2026-01-05".into(),
            }],
            kb_articles: vec![KbArticle {
                title: "Printer troubleshooting".into(),
                summary: "Steps to bring a network printer back.".into(),
                url: "https://kb.acme.example/printers".into(),
            }],
            systems: vec![
                SystemInfo {
                    ip: "10.0.0.7".into(),
                    hostname: "prn-01".into(),
                    role: "printer".into(),
                    client: "Acme".into(),
                    location: "HQ".into(),
                },
                SystemInfo {
                    ip: "10.0.0.8".into(),
                    hostname: String::new(),
                    role: String::new(),
                    client: "Acme".into(),
                    location: String::new(),
                },
            ],
            ..GatheredContext::default()
        }
    }

    #[test]
    fn the_seed_text_is_verbatim() {
        assert!(
            ENHANCEMENT_SYSTEM_PROMPT
                .starts_with(&format!("\n{SYSTEM_PROMPT_FIRST_LINE}\n\nYour role:\n"))
        );
        assert!(ENHANCEMENT_SYSTEM_PROMPT.contains("\n- Maximum 500 words (concise!)\n"));
        assert!(
            ENHANCEMENT_SYSTEM_PROMPT
                .contains("- Cite sources (e.g., \"Similar ticket TKT-123 resolved by...\")\n")
        );
        assert!(ENHANCEMENT_SYSTEM_PROMPT.ends_with(
            "## Recommended Next Steps\n[Actionable troubleshooting steps based on context]\n"
        ));
        assert_eq!(ENHANCEMENT_SYSTEM_PROMPT.lines().count(), 27);
        assert_eq!(
            ENHANCEMENT_TEMPLATE,
            "\nTicket ID: {ticket_id}\nDescription: {description}\nPriority: {priority}\n\nContext Gathered:\n\n### Similar Tickets Found:\n{similar_tickets_summary}\n\n### Knowledge Base Articles:\n{kb_articles_summary}\n\n### System Information:\n{ip_info_summary}\n\n### Monitoring Data:\n{monitoring_data_summary}\n\nBased on this context, provide your analysis and recommendations.\n"
        );
    }

    #[test]
    fn the_prompt_fills_the_template() {
        let prompt = build_prompt(&ticket(), &ctx(), PromptOptions::default());
        assert_eq!(prompt.system, ENHANCEMENT_SYSTEM_PROMPT);
        let expected_ticket_line = format!(
            "- Ticket 3900: {}... (Resolved: 2026-01-05)\n  Resolution: Restarted the spooler on PRN-01.",
            "Printer offline after update "
                .repeat(4)
                .chars()
                .take(100)
                .collect::<String>()
        );
        let user = &prompt.user;
        assert!(user.starts_with("\nTicket ID: 4521\nDescription: Printer offline\nThe printer at 10.0.0.7 is offline"), "{user}");
        assert!(
            user.contains(&format!(
                "### Similar Tickets Found:\n{expected_ticket_line}\n\n"
            )),
            "{user}"
        );
        assert!(user.contains("### Knowledge Base Articles:\n- Printer troubleshooting: Steps to bring a network printer back....\n  URL: https://kb.acme.example/printers\n\n"), "{user}");
        assert!(user.contains("### System Information:\nSystem: prn-01 (10.0.0.7)\nRole: printer\nClient: Acme\n\nSystem: Unknown (10.0.0.8)\nRole: Unknown\nClient: Acme\n\n"), "{user}");
        assert!(
            user.contains("### Monitoring Data:\nNo monitoring data available.\n\n"),
            "{user}"
        );
        assert!(
            user.ends_with("Based on this context, provide your analysis and recommendations.\n")
        );
        // Secrets never leave; without mask_pii contact details do.
        assert!(!user.contains("Sup3rS3cret"), "{user}");
        assert!(user.contains("555-123-4567") && user.contains("jo@acme.example"));
    }

    #[test]
    fn mask_pii_and_a_lower_word_limit() {
        let prompt = build_prompt(
            &ticket(),
            &ctx(),
            PromptOptions {
                max_words: 200,
                mask_pii: true,
            },
        );
        assert!(
            prompt.user.contains("call me on [PHONE] or mail [EMAIL]."),
            "{}",
            prompt.user
        );
        assert!(prompt.user.contains("10.0.0.7"), "addresses are not phones");
        assert!(
            prompt
                .user
                .ends_with("recommendations.\nUse at most 200 words in total.\n")
        );
        assert_eq!(
            prompt.system, ENHANCEMENT_SYSTEM_PROMPT,
            "the system prompt stays verbatim"
        );
    }

    #[test]
    fn empty_context_uses_the_seed_fallbacks() {
        let prompt = build_prompt(
            &ticket(),
            &GatheredContext::default(),
            PromptOptions::default(),
        );
        for line in [
            "### Similar Tickets Found:\nNo similar tickets found.\n",
            "### Knowledge Base Articles:\nNo relevant documentation found.\n",
            "### System Information:\nNo system information found.\n",
            "### Monitoring Data:\nNo monitoring data available.\n",
        ] {
            assert!(prompt.user.contains(line), "{line}");
        }
    }

    #[test]
    fn the_seed_limits_five_tickets_three_docs_in_characters() {
        let tickets: Vec<SimilarTicket> = (0..7)
            .map(|i| SimilarTicket {
                ticket_id: format!("T{i}"),
                description: "é".repeat(150),
                resolution: String::new(),
                resolved_date: "2026-01-01".into(),
            })
            .collect();
        let text = format_tickets(&tickets);
        assert_eq!(text.lines().count(), 5);
        assert_eq!(
            text.lines().next().unwrap(),
            format!("- Ticket T0: {}... (Resolved: 2026-01-01)", "é".repeat(100))
        );
        let docs: Vec<KbArticle> = (0..5)
            .map(|i| KbArticle {
                title: format!("D{i}"),
                summary: "s".repeat(300),
                url: String::new(),
            })
            .collect();
        let text = format_docs(&docs);
        assert_eq!(text.lines().count(), 3);
        assert_eq!(text.lines().next().unwrap().len(), "- D0: ".len() + 200 + 3);
    }

    #[test]
    fn fill_template_is_one_pass() {
        assert_eq!(
            fill_template("{a} and {b} {c} {", &[("a", "{b}"), ("b", "x")]),
            "{b} and x {c} {"
        );
    }

    #[test]
    fn word_limits() {
        assert_eq!(effective_max_words(None), 500);
        assert_eq!(effective_max_words(Some(200)), 200);
        assert_eq!(effective_max_words(Some(900)), 500);
        assert_eq!(effective_max_words(Some(0)), 1);
    }
}
