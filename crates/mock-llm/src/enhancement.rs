//! The offline demo model's answer to a ticket-enhancement request: a deterministic note in
//! the four sections of the enhancement system prompt, built from the context the request's
//! template carries, so that a demo (and an end-to-end test) gets a note that cites the
//! similar tickets, knowledge-base articles and systems it was given.
//!
//! A request is an enhancement request when its system prompt's first line is the seed's
//! (`csp-enhance`'s `ENHANCEMENT_SYSTEM_PROMPT`). The template is read by its section headings
//! (`### Similar Tickets Found:` …) and the line shapes `csp-enhance` writes (`- Ticket {id}:
//! … (Resolved: {date})`, `- {title}: {summary}`, `System: {hostname} ({ip})`); lines it does
//! not recognise are ignored.

/// The first line of the seed's enhancement system prompt.
pub(crate) const FIRST_LINE: &str =
    "You are an AI assistant helping MSP technicians resolve IT incidents faster.";

/// Whether `system` is the enhancement system prompt (its first non-empty line is
/// [`FIRST_LINE`]).
pub(crate) fn is_enhancement_system(system: &str) -> bool {
    system
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .is_some_and(|l| l == FIRST_LINE)
}

#[derive(Debug, Default, PartialEq)]
struct Ticket {
    id: String,
    resolved: Option<String>,
    resolution: Option<String>,
}

#[derive(Debug, Default, PartialEq)]
struct Article {
    title: String,
    url: Option<String>,
}

#[derive(Debug, Default, PartialEq)]
struct System {
    hostname: String,
    ip: String,
    role: Option<String>,
    client: Option<String>,
}

#[derive(Debug, Default, PartialEq)]
struct Context {
    ticket_id: Option<String>,
    tickets: Vec<Ticket>,
    articles: Vec<Article>,
    systems: Vec<System>,
}

#[derive(Clone, Copy, PartialEq)]
enum Section {
    None,
    Tickets,
    Docs,
    Systems,
}

fn parse(user: &str) -> Context {
    let mut ctx = Context::default();
    let mut section = Section::None;
    for raw in user.lines() {
        let line = raw.trim();
        if let Some(id) = line.strip_prefix("Ticket ID:") {
            ctx.ticket_id = Some(id.trim().to_owned()).filter(|s| !s.is_empty());
            continue;
        }
        if line.starts_with("###") {
            section = match line {
                "### Similar Tickets Found:" => Section::Tickets,
                "### Knowledge Base Articles:" => Section::Docs,
                "### System Information:" => Section::Systems,
                _ => Section::None,
            };
            continue;
        }
        if line.starts_with("Based on this context") {
            section = Section::None;
            continue;
        }
        match section {
            Section::Tickets => {
                if let Some(rest) = line.strip_prefix("- Ticket ") {
                    let (id, rest) = rest.split_once(':').unwrap_or((rest, ""));
                    let resolved = rest
                        .rfind("(Resolved:")
                        .map(|at| rest[at + "(Resolved:".len()..].trim_end_matches(')').trim())
                        .filter(|d| !d.is_empty())
                        .map(str::to_owned);
                    ctx.tickets.push(Ticket {
                        id: id.trim().to_owned(),
                        resolved,
                        resolution: None,
                    });
                } else if let Some(resolution) = line.strip_prefix("Resolution:")
                    && let Some(t) = ctx.tickets.last_mut()
                {
                    t.resolution = Some(resolution.trim().to_owned());
                }
            }
            Section::Docs => {
                if let Some(url) = line.strip_prefix("URL:") {
                    if let Some(a) = ctx.articles.last_mut() {
                        a.url = Some(url.trim().to_owned());
                    }
                } else if let Some(rest) = line.strip_prefix("- ") {
                    let title = rest.split_once(": ").map_or(rest, |(t, _)| t);
                    ctx.articles.push(Article {
                        title: title.trim().to_owned(),
                        url: None,
                    });
                }
            }
            Section::Systems => {
                if let Some(rest) = line.strip_prefix("System:") {
                    let rest = rest.trim();
                    let (hostname, ip) = match rest.rsplit_once(" (") {
                        Some((h, ip)) => (h, ip.trim_end_matches(')')),
                        None => (rest, ""),
                    };
                    ctx.systems.push(System {
                        hostname: hostname.trim().to_owned(),
                        ip: ip.trim().to_owned(),
                        role: None,
                        client: None,
                    });
                } else if let Some(role) = line.strip_prefix("Role:") {
                    if let Some(s) = ctx.systems.last_mut() {
                        s.role = known(role);
                    }
                } else if let Some(client) = line.strip_prefix("Client:")
                    && let Some(s) = ctx.systems.last_mut()
                {
                    s.client = known(client);
                }
            }
            Section::None => {}
        }
    }
    ctx
}

fn known(value: &str) -> Option<String> {
    Some(value.trim().to_owned()).filter(|v| !v.is_empty() && v != "Unknown")
}

/// The deterministic note for an enhancement request whose user message is `user`.
pub(crate) fn note(user: &str) -> String {
    let ctx = parse(user);
    let this_ticket = ctx
        .ticket_id
        .as_deref()
        .map_or_else(|| "this ticket".to_owned(), |id| format!("ticket {id}"));
    let mut out = String::from("## Similar Tickets\n");
    if ctx.tickets.is_empty() {
        out.push_str("No similar past tickets were found.\n");
    }
    for t in &ctx.tickets {
        out.push_str(&format!("- Similar ticket {}", t.id));
        if let Some(date) = &t.resolved {
            out.push_str(&format!(" (resolved {date})"));
        }
        match &t.resolution {
            Some(r) => out.push_str(&format!(" was resolved by: {r}\n")),
            None => out.push_str(" looks related.\n"),
        }
    }
    out.push_str("\n## Relevant Documentation\n");
    if ctx.articles.is_empty() {
        out.push_str("No relevant knowledge-base articles were found.\n");
    }
    for a in &ctx.articles {
        match &a.url {
            Some(url) => out.push_str(&format!("- \"{}\" ({url}) applies here.\n", a.title)),
            None => out.push_str(&format!("- \"{}\" applies here.\n", a.title)),
        }
    }
    out.push_str("\n## System Information\n");
    if ctx.systems.is_empty() {
        out.push_str("No known systems are mentioned in the ticket.\n");
    }
    for s in &ctx.systems {
        out.push_str(&format!("- {} ({})", s.hostname, s.ip));
        let details: Vec<String> = [("role", &s.role), ("client", &s.client)]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
            .collect();
        if !details.is_empty() {
            out.push_str(&format!(": {}", details.join(", ")));
        }
        out.push('\n');
    }
    out.push_str("\n## Recommended Next Steps\n");
    let mut steps = Vec::new();
    if let Some(t) = ctx.tickets.first() {
        steps.push(format!(
            "Try the resolution of ticket {} on {this_ticket}.",
            t.id
        ));
    }
    if let Some(a) = ctx.articles.first() {
        steps.push(format!("Follow \"{}\".", a.title));
    }
    for s in &ctx.systems {
        steps.push(format!("Check {} ({}).", s.hostname, s.ip));
    }
    steps.push(format!("Record what you find on {this_ticket}."));
    for (i, step) in steps.iter().enumerate() {
        out.push_str(&format!("{}. {step}\n", i + 1));
    }
    out.push_str("\n_Written by the offline demo model from the gathered context._");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "
Ticket ID: 4521
Description: Printer offline
The printer at 10.0.0.7 is offline
Priority: High

Context Gathered:

### Similar Tickets Found:
- Ticket 3900: Printer offline after update... (Resolved: 2026-01-05)
  Resolution: Restarted the spooler on prn-01.
- Ticket TKT-12: Printer jam: paper... (Resolved: 2025-12-01)

### Knowledge Base Articles:
- Printer troubleshooting: Steps to bring a network printer back....
  URL: https://kb.acme.example/printers

### System Information:
System: prn-01 (10.0.0.7)
Role: printer
Client: Acme

System: Unknown (10.0.0.8)
Role: Unknown
Client: Acme

### Monitoring Data:
No monitoring data available.

Based on this context, provide your analysis and recommendations.
";

    #[test]
    fn recognises_the_enhancement_system_prompt() {
        assert!(is_enhancement_system(&format!(
            "\n{FIRST_LINE}\n\nYour role:\n"
        )));
        assert!(!is_enhancement_system("You are Claude."));
        assert!(!is_enhancement_system(&format!("Intro\n{FIRST_LINE}")));
    }

    #[test]
    fn parses_the_template() {
        let ctx = parse(USER);
        assert_eq!(ctx.ticket_id.as_deref(), Some("4521"));
        assert_eq!(
            ctx.tickets,
            [
                Ticket {
                    id: "3900".into(),
                    resolved: Some("2026-01-05".into()),
                    resolution: Some("Restarted the spooler on prn-01.".into())
                },
                Ticket {
                    id: "TKT-12".into(),
                    resolved: Some("2025-12-01".into()),
                    resolution: None
                },
            ]
        );
        assert_eq!(
            ctx.articles,
            [Article {
                title: "Printer troubleshooting".into(),
                url: Some("https://kb.acme.example/printers".into())
            }]
        );
        assert_eq!(ctx.systems.len(), 2);
        assert_eq!(ctx.systems[0].hostname, "prn-01");
        assert_eq!(ctx.systems[0].ip, "10.0.0.7");
        assert_eq!(ctx.systems[1].role, None);
    }

    #[test]
    fn the_note_cites_the_context_in_four_sections() {
        let note = note(USER);
        assert_eq!(note, note_again());
        for needle in [
            "## Similar Tickets\n- Similar ticket 3900 (resolved 2026-01-05) was resolved by: Restarted the spooler on prn-01.\n",
            "- Similar ticket TKT-12 (resolved 2025-12-01) looks related.\n",
            "## Relevant Documentation\n- \"Printer troubleshooting\" (https://kb.acme.example/printers) applies here.\n",
            "## System Information\n- prn-01 (10.0.0.7): role printer, client Acme\n- Unknown (10.0.0.8): client Acme\n",
            "## Recommended Next Steps\n1. Try the resolution of ticket 3900 on ticket 4521.\n2. Follow \"Printer troubleshooting\".\n3. Check prn-01 (10.0.0.7).\n",
        ] {
            assert!(note.contains(needle), "{needle}\n---\n{note}");
        }
    }

    fn note_again() -> String {
        note(USER)
    }

    #[test]
    fn an_empty_context_still_has_the_four_sections() {
        let user = "Ticket ID: 7\n\n### Similar Tickets Found:\nNo similar tickets found.\n\n### Knowledge Base Articles:\nNo relevant documentation found.\n\n### System Information:\nNo system information found.\n";
        let note = note(user);
        assert!(note.starts_with("## Similar Tickets\nNo similar past tickets were found.\n\n## Relevant Documentation\nNo relevant knowledge-base articles were found.\n\n## System Information\nNo known systems are mentioned in the ticket.\n\n## Recommended Next Steps\n1. Record what you find on ticket 7.\n"), "{note}");
    }
}
