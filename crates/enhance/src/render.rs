//! The note as the ticketing tool gets it: Markdown as written, or HTML that model output
//! cannot turn into script.
//!
//! The HTML is not a sanitised copy of some other renderer's output: `pulldown-cmark` only
//! parses, and this module writes every tag itself from a short allow-list — `h2`, `h3`, `p`,
//! `ul`, `ol`, `li`, `strong`, `em`, `code`, `pre`, `br`, and `a` with an `href` that is an
//! `http`/`https` URL and no other attribute. Everything else keeps its text and loses its
//! markup: raw HTML in the Markdown is escaped and shown as text, images become their alt text,
//! a link to any other scheme becomes its text, headings of level 1 become `h2` and of level 4
//! to 6 become `h3`, block quotes and rules disappear around their content. All text is
//! escaped (`& < > " '`).

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// How a tenant wants its notes (`enhancement_preferences.note_format`):
/// the platform's one vocabulary.
pub use csp_domain::NoteFormat;

/// The note in `format`: the Markdown itself, or [`markdown_to_html`]. Markdown notes are
/// passed on as written; whoever renders them must not trust embedded HTML (the same rule as
/// the web app's).
pub fn render_note(markdown: &str, format: NoteFormat) -> String {
    match format {
        NoteFormat::Markdown => markdown.to_owned(),
        NoteFormat::Html => markdown_to_html(markdown),
    }
}

/// Markdown as HTML made only of allow-listed tags (see the module docs).
pub fn markdown_to_html(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len() * 5 / 4 + 16);
    // The closing tag of each open element, "" for one rendered without a tag.
    let mut open: Vec<&'static str> = Vec::new();
    // Inside an image, text is the alt text and is kept as text.
    for event in Parser::new_ext(markdown, Options::empty()) {
        match event {
            Event::Start(tag) => {
                let close = start_tag(&tag, &mut out);
                open.push(close);
            }
            Event::End(end) => {
                let close = open.pop().unwrap_or("");
                out.push_str(close);
                if matches!(
                    end,
                    TagEnd::Paragraph
                        | TagEnd::Heading(_)
                        | TagEnd::CodeBlock
                        | TagEnd::List(_)
                        | TagEnd::Item
                ) {
                    out.push('\n');
                }
            }
            Event::Text(text) => escape_into(&text, &mut out),
            Event::Code(code) => {
                out.push_str("<code>");
                escape_into(&code, &mut out);
                out.push_str("</code>");
            }
            // Raw HTML is shown, never interpreted.
            Event::Html(html) | Event::InlineHtml(html) => escape_into(&html, &mut out),
            Event::SoftBreak => out.push('\n'),
            Event::HardBreak => out.push_str("<br>\n"),
            Event::InlineMath(text) | Event::DisplayMath(text) | Event::FootnoteReference(text) => {
                escape_into(&text, &mut out)
            }
            Event::Rule | Event::TaskListMarker(_) => {}
        }
    }
    // The parser balances its events; this only guards against a future variant.
    while let Some(close) = open.pop() {
        out.push_str(close);
    }
    out.trim_end().to_owned()
}

/// Writes the opening tag of `tag` (if it has an allowed one) and returns its closing tag.
fn start_tag(tag: &Tag<'_>, out: &mut String) -> &'static str {
    let (open, close) = match tag {
        Tag::Paragraph => ("<p>", "</p>"),
        Tag::Heading { level, .. } => match level {
            HeadingLevel::H1 | HeadingLevel::H2 => ("<h2>", "</h2>"),
            _ => ("<h3>", "</h3>"),
        },
        Tag::CodeBlock(CodeBlockKind::Fenced(_) | CodeBlockKind::Indented) => {
            ("<pre><code>", "</code></pre>")
        }
        // The parser marks raw HTML blocks; their lines arrive as `Event::Html` and are escaped.
        Tag::HtmlBlock => ("<p>", "</p>"),
        Tag::List(None) => ("<ul>\n", "</ul>"),
        Tag::List(Some(_)) => ("<ol>\n", "</ol>"),
        Tag::Item => ("<li>", "</li>"),
        Tag::Emphasis => ("<em>", "</em>"),
        Tag::Strong => ("<strong>", "</strong>"),
        Tag::Link { dest_url, .. } => {
            return match safe_href(dest_url) {
                Some(href) => {
                    out.push_str("<a href=\"");
                    escape_into(href, out);
                    out.push_str("\">");
                    "</a>"
                }
                None => "",
            };
        }
        // Images show their alt text (the events inside), everything else its content.
        _ => ("", ""),
    };
    out.push_str(open);
    close
}

/// The URL when it is an absolute `http`/`https` URL without whitespace or control characters.
fn safe_href(url: &str) -> Option<&str> {
    let lower = url
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let scheme_ok = lower.starts_with("http://") || lower.starts_with("https://");
    let clean = !url.chars().any(|c| c.is_whitespace() || c.is_control());
    (scheme_ok && clean).then_some(url)
}

/// Appends `text` with `& < > " '` escaped.
pub(crate) fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use csp_testkit::proptest_config;
    use proptest::prelude::*;

    /// Every tag in `html` is on the allow-list, and `<` appears nowhere else.
    fn assert_only_allowed_tags(html: &str) {
        const PLAIN: &[&str] = &[
            "h2", "/h2", "h3", "/h3", "p", "/p", "ul", "/ul", "ol", "/ol", "li", "/li", "strong",
            "/strong", "em", "/em", "code", "/code", "pre", "/pre", "br", "/a",
        ];
        let mut rest = html;
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            let close = after
                .find('>')
                .unwrap_or_else(|| panic!("unclosed tag in {html}"));
            let tag = &after[..close];
            let ok = PLAIN.contains(&tag)
                || tag
                    .strip_prefix("a href=\"")
                    .and_then(|t| t.strip_suffix('"'))
                    .is_some_and(|href| {
                        (href.starts_with("http://") || href.starts_with("https://"))
                            && !href.contains(['"', '<', '>', '\'', ' '])
                    });
            assert!(ok, "tag <{tag}> is not allowed in {html}");
            rest = &after[close + 1..];
        }
    }

    #[test]
    fn a_note_renders_as_expected() {
        let md = "## Similar Tickets\nTicket **3900** was _resolved_ by restarting `spooler`.\n\n## Recommended Next Steps\n1. Check [the KB](https://kb.example/a?b=1&c=2).\n2. Reboot\n\n```\nsystemctl restart cups\n```";
        let html = markdown_to_html(md);
        assert_eq!(
            html,
            "<h2>Similar Tickets</h2>\n<p>Ticket <strong>3900</strong> was <em>resolved</em> by restarting <code>spooler</code>.</p>\n<h2>Recommended Next Steps</h2>\n<ol>\n<li>Check <a href=\"https://kb.example/a?b=1&amp;c=2\">the KB</a>.</li>\n<li>Reboot</li>\n</ol>\n<pre><code>systemctl restart cups\n</code></pre>"
        );
        assert_only_allowed_tags(&html);
    }

    #[test]
    fn headings_lists_and_breaks_map_to_the_allow_list() {
        let html = markdown_to_html(
            "# One\n#### Four\n> quoted\n\n---\n\n- a  \n  b\n- c\n\n![alt text](https://img.example/x.png)",
        );
        assert_eq!(
            html,
            "<h2>One</h2>\n<h3>Four</h3>\n<p>quoted</p>\n<ul>\n<li>a<br>\nb</li>\n<li>c</li>\n</ul>\n<p>alt text</p>"
        );
    }

    #[test]
    fn xss_payloads_are_inert() {
        for payload in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "<div onclick=\"alert(1)\">click</div>",
            "text <b onmouseover=alert(1)>bold</b> text",
            "<iframe src=\"javascript:alert(1)\"></iframe>",
            "<svg/onload=alert(1)>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "[x](javascript:alert(1))",
            "[x](JaVaScRiPt:alert(1))",
            "[x](jav&#x61;script:alert(1))",
            "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
            "[x](vbscript:msgbox)",
            "[x](//evil.example/x)",
            "[x](http://ok.example/\" onmouseover=\"alert(1))",
            "[x](<http://a.example/ onmouseover=alert(1)>)",
            "![x](javascript:alert(1))",
            "![x\" onerror=\"alert(1)](http://img.example/x.png)",
            "<http://ok.example/'\"><script>alert(1)</script>>",
            "[ref]\n\n[ref]: javascript:alert(1)",
            "```\n</code></pre><script>alert(1)</script>\n```",
            "`</code><script>alert(1)</script>`",
            "<!-- <script>alert(1)</script> -->",
            "<style>body{display:none}</style>",
            "&lt;script&gt;alert(1)&lt;/script&gt;",
        ] {
            let html = markdown_to_html(payload);
            assert_only_allowed_tags(&html);
            let lower = html.to_ascii_lowercase();
            assert!(!lower.contains("<script"), "{payload} -> {html}");
            assert!(
                !lower.contains("href=\"javascript") && !lower.contains("href=\"data"),
                "{payload} -> {html}"
            );
        }
        // Raw HTML stays readable as text.
        assert_eq!(
            markdown_to_html("<script>alert(1)</script>"),
            "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
        );
        assert_eq!(
            markdown_to_html("[x](javascript:alert(1)) and [y](http://ok.example/)"),
            "<p>x and <a href=\"http://ok.example/\">y</a></p>"
        );
    }

    #[test]
    fn markdown_format_is_passed_through() {
        let md = "## Similar Tickets\n<b>as written</b>";
        assert_eq!(render_note(md, NoteFormat::Markdown), md);
        assert_eq!(render_note(md, NoteFormat::Html), markdown_to_html(md));
        assert_eq!(
            serde_json::to_string(&NoteFormat::Html).unwrap(),
            "\"html\""
        );
        assert_eq!(
            serde_json::from_str::<NoteFormat>("\"markdown\"").unwrap(),
            NoteFormat::Markdown
        );
    }

    proptest! {
        #![proptest_config(proptest_config(256))]

        #[test]
        fn any_input_yields_only_allowed_tags(md in "(\\PC|[<>\\[\\]()!*_`#&\"'\n:/ -]){0,300}") {
            assert_only_allowed_tags(&markdown_to_html(&md));
        }
    }
}
