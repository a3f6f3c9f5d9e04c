//! The seed's word cap (FR013: 500 words, or a tenant's lower `max_words`) on the model's
//! answer, cut so that the note still reads as a note.
//!
//! Words are what Python's `str.split()` counts: runs of non-whitespace. The cut falls after the
//! last word that fits, and `…` marks it. A section heading the cut leaves without any body
//! (`## Recommended Next Steps` as the last line, or a heading cut in half) is dropped rather
//! than shown empty, and a code fence the cut leaves open is closed.

/// The mark appended where text was cut.
pub const ELLIPSIS: &str = "…";

/// `text` with at most `max_words` words. Text within the limit comes back unchanged.
pub fn cap_words(text: &str, max_words: usize) -> String {
    if text.split_whitespace().count() <= max_words {
        return text.to_owned();
    }
    let mut kept: Vec<String> = Vec::new();
    let mut budget = max_words;
    for line in text.lines() {
        let words = line.split_whitespace().count();
        if words <= budget {
            kept.push(line.to_owned());
            budget -= words;
            continue;
        }
        if budget > 0 && !is_heading(line) {
            kept.push(first_words(line, budget).to_owned());
        }
        break;
    }
    // Trailing blank lines and headings with nothing under them go.
    while let Some(last) = kept.last() {
        if last.trim().is_empty() || is_heading(last) {
            kept.pop();
        } else {
            break;
        }
    }
    let mut out = kept.join("\n");
    if out.is_empty() {
        return ELLIPSIS.to_owned();
    }
    let fences = kept
        .iter()
        .filter(|l| l.trim_start().starts_with("```"))
        .count();
    if fences % 2 == 1 {
        out.push_str(&format!("{ELLIPSIS}\n```"));
    } else {
        out.push_str(ELLIPSIS);
    }
    out
}

/// A Markdown ATX heading (`#` to `######`, then a space or nothing).
pub(crate) fn is_heading(line: &str) -> bool {
    let t = line.trim_start();
    let hashes = t.bytes().take_while(|&b| b == b'#').count();
    (1..=6).contains(&hashes)
        && t[hashes..].chars().next().is_none_or(char::is_whitespace)
        && line.len() - t.len() <= 3
}

/// `line` up to the end of its `n`th word (n ≥ 1), trailing punctuation of that word kept.
fn first_words(line: &str, n: usize) -> &str {
    let mut seen = 0;
    let mut in_word = false;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            if in_word {
                seen += 1;
                if seen == n {
                    return &line[..i];
                }
            }
            in_word = false;
        } else {
            in_word = true;
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> usize {
        text.split_whitespace().filter(|w| *w != ELLIPSIS).count()
    }

    #[test]
    fn text_within_the_limit_is_unchanged() {
        let text = "## Similar Tickets\nNone.\n\n## Recommended Next Steps\n1. Reboot.\n";
        assert_eq!(cap_words(text, 500), text);
        assert_eq!(cap_words(text, 10), text);
    }

    #[test]
    fn cuts_at_a_word_boundary_with_an_ellipsis() {
        let text =
            "## Similar Tickets\nTicket 3900 was resolved by restarting the spooler service.";
        let capped = cap_words(text, 6);
        assert_eq!(capped, "## Similar Tickets\nTicket 3900 was…");
        assert_eq!(words(&capped), 6);
    }

    #[test]
    fn a_heading_left_without_body_is_dropped() {
        let text = "## Similar Tickets\nOne two three.\n\n## Recommended Next Steps\n1. Restart the spooler.";
        // Exactly up to the heading: the heading would dangle.
        assert_eq!(cap_words(text, 10), "## Similar Tickets\nOne two three.…");
        assert_eq!(cap_words(text, 8), "## Similar Tickets\nOne two three.…");
        // A budget that ends inside the heading drops it too.
        assert_eq!(cap_words(text, 6), "## Similar Tickets\nOne two three.…");
        // One word of body keeps it.
        assert_eq!(
            cap_words(text, 11),
            "## Similar Tickets\nOne two three.\n\n## Recommended Next Steps\n1.…"
        );
    }

    #[test]
    fn consecutive_dangling_headings_all_go() {
        let text = "## A\nbody words here\n## B\n### C\nmore text follows here";
        assert_eq!(cap_words(text, 8), "## A\nbody words here…");
    }

    #[test]
    fn nothing_but_a_heading_fits() {
        assert_eq!(cap_words("## Similar Tickets\nsome body text", 2), ELLIPSIS);
    }

    #[test]
    fn an_open_code_fence_is_closed() {
        let text = "## Steps\n```\nsystemctl restart cups\nsystemctl status cups\n```\nThen test.";
        assert_eq!(cap_words(text, 5), "## Steps\n```\nsystemctl restart…\n```");
    }

    #[test]
    fn a_long_note_is_capped_to_500_words() {
        let body = "word ".repeat(200);
        let text = format!(
            "## Similar Tickets\n{body}\n\n## Relevant Documentation\n{body}\n\n## System Information\n{body}\n\n## Recommended Next Steps\n{body}"
        );
        let capped = cap_words(&text, 500);
        assert!(words(&capped) <= 500);
        assert!(capped.ends_with("word…"), "{capped}");
        assert!(capped.contains("## System Information\nword"));
        assert!(!capped.contains("## Recommended Next Steps"));
    }

    #[test]
    fn headings_are_recognised() {
        assert!(is_heading("## Similar Tickets"));
        assert!(is_heading("  ### x"));
        assert!(is_heading("#"));
        assert!(!is_heading("#hashtag"));
        assert!(!is_heading("####### seven"));
        assert!(!is_heading("    ## indented code"));
    }
}
