//! Atlassian Document Format (ADF) as plain text: Jira Cloud keeps issue
//! descriptions and comments as ADF documents (`{"type": "doc", "version": 1,
//! "content": [...]}`), and search, prompts and the history want the words.
//!
//! Block nodes (paragraphs, headings, code blocks, quotes, panels, table
//! rows, list items) each start a line; list items are `- ` or `1. `
//! (nested ones indented by two spaces), task items `[ ] `/`[x] `, quoted
//! lines `> `, table cells are joined by ` | `, a rule is `---`, code keeps
//! its lines. Inline nodes become their text: a mention its `@Name`, an
//! emoji its character or `:shortname:`, a card or a link its URL (a link's
//! text is followed by the URL in parentheses when they differ), a date
//! `YYYY-MM-DD`, a status lozenge its label. Media, extensions and
//! placeholders have no text and are dropped. Unknown nodes are read for
//! the text inside them, so a node type Atlassian adds later loses its
//! shape, not its words.
//!
//! The output is plain text, never markup to render. Nesting deeper than
//! [`MAX_DEPTH`] is not read (serde_json refuses deeper JSON anyway).

use serde_json::Value;
use time::OffsetDateTime;

/// How deep into nested nodes the renderer goes.
pub(crate) const MAX_DEPTH: usize = 64;

/// `doc` as plain text. A JSON string is taken as already plain (Jira's
/// webhooks and the v2 API give wiki markup or text); anything that is not
/// a node gives `""`.
pub(crate) fn to_text(doc: &Value) -> String {
    match doc {
        Value::String(s) => s.trim().to_owned(),
        Value::Object(_) => {
            let mut lines = Vec::new();
            block(doc, 0, &mut lines);
            tidy(&lines)
        }
        _ => String::new(),
    }
}

fn kind(node: &Value) -> &str {
    node.get("type").and_then(Value::as_str).unwrap_or_default()
}

fn content(node: &Value) -> &[Value] {
    node.get("content")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn attr<'a>(node: &'a Value, name: &str) -> Option<&'a str> {
    node.get("attrs")
        .and_then(|a| a.get(name))
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn blocks(nodes: &[Value], depth: usize, out: &mut Vec<String>) {
    for node in nodes {
        block(node, depth, out);
    }
}

/// Appends `node`'s lines to `out`.
fn block(node: &Value, depth: usize, out: &mut Vec<String>) {
    if depth > MAX_DEPTH {
        return;
    }
    let depth = depth + 1;
    match kind(node) {
        "paragraph" | "heading" => push_text(out, &inline_text(content(node), depth)),
        "codeBlock" => {
            let code: String = content(node)
                .iter()
                .filter_map(|n| n.get("text").and_then(Value::as_str))
                .collect();
            out.extend(code.lines().map(str::to_owned));
        }
        "bulletList" | "decisionList" => {
            for item in content(node) {
                prefixed(out, "- ", &item_lines(item, depth));
            }
        }
        "orderedList" => {
            let start = node
                .get("attrs")
                .and_then(|a| a.get("order"))
                .and_then(Value::as_u64)
                .unwrap_or(1);
            for (i, item) in content(node).iter().enumerate() {
                let n = start.saturating_add(i as u64);
                prefixed(out, &format!("{n}. "), &item_lines(item, depth));
            }
        }
        "taskList" => {
            for item in content(node) {
                if kind(item) == "taskList" {
                    // A nested task list sits directly in its parent list.
                    let mut nested = Vec::new();
                    block(item, depth, &mut nested);
                    out.extend(nested.into_iter().map(|l| format!("  {l}")));
                    continue;
                }
                let done = attr(item, "state") == Some("DONE");
                let mark = if done { "[x] " } else { "[ ] " };
                prefixed(out, mark, &item_lines(item, depth));
            }
        }
        "blockquote" => {
            let mut quoted = Vec::new();
            blocks(content(node), depth, &mut quoted);
            out.extend(quoted.into_iter().map(|l| format!("> {l}")));
        }
        "rule" => out.push("---".to_owned()),
        "table" => {
            for row in content(node) {
                let cells: Vec<String> = content(row)
                    .iter()
                    .map(|cell| {
                        let mut lines = Vec::new();
                        blocks(content(cell), depth, &mut lines);
                        lines
                            .iter()
                            .map(|l| l.trim())
                            .filter(|l| !l.is_empty())
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect();
                if cells.iter().any(|c| !c.is_empty()) {
                    out.push(cells.join(" | "));
                }
            }
        }
        "expand" | "nestedExpand" => {
            if let Some(title) = attr(node, "title") {
                out.push(title.to_owned());
            }
            blocks(content(node), depth, out);
        }
        "blockCard" | "embedCard" => {
            if let Some(url) = attr(node, "url") {
                out.push(url.to_owned());
            }
        }
        "mediaSingle" | "mediaGroup" | "media" | "extension" | "bodiedExtension" => {}
        // `doc`, `panel`, `listItem`, layouts and anything unknown: their
        // children, whether blocks or (for an unknown node) inline text.
        _ => {
            let children = content(node);
            if children.iter().any(is_inline) {
                push_text(out, &inline_text(children, depth));
            } else {
                blocks(children, depth, out);
            }
        }
    }
}

fn is_inline(node: &Value) -> bool {
    matches!(
        kind(node),
        "text"
            | "hardBreak"
            | "mention"
            | "emoji"
            | "inlineCard"
            | "date"
            | "status"
            | "placeholder"
            | "mediaInline"
            | "inlineExtension"
    )
}

/// A list item's lines: its blocks, or its inline content for the item
/// kinds that hold text directly (task and decision items).
fn item_lines(item: &Value, depth: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let children = content(item);
    if children.iter().any(is_inline) {
        push_text(&mut lines, &inline_text(children, depth));
    } else {
        blocks(children, depth, &mut lines);
    }
    lines
}

/// `lines` with `prefix` on the first and as much indentation on the rest.
fn prefixed(out: &mut Vec<String>, prefix: &str, lines: &[String]) {
    let indent = " ".repeat(prefix.chars().count());
    match lines.split_first() {
        None => out.push(prefix.trim_end().to_owned()),
        Some((first, rest)) => {
            out.push(format!("{prefix}{first}"));
            out.extend(rest.iter().map(|l| {
                if l.is_empty() {
                    String::new()
                } else {
                    format!("{indent}{l}")
                }
            }));
        }
    }
}

fn push_text(out: &mut Vec<String>, text: &str) {
    out.extend(text.split('\n').map(str::to_owned));
}

fn inline_text(nodes: &[Value], depth: usize) -> String {
    let mut out = String::new();
    inline(nodes, depth, &mut out);
    out
}

fn inline(nodes: &[Value], depth: usize, out: &mut String) {
    if depth > MAX_DEPTH {
        return;
    }
    for node in nodes {
        match kind(node) {
            "text" => {
                let text = node.get("text").and_then(Value::as_str).unwrap_or_default();
                out.push_str(text);
                if let Some(href) = link_of(node)
                    && href != text.trim()
                {
                    out.push_str(&format!(" ({href})"));
                }
            }
            "hardBreak" => out.push('\n'),
            "mention" => {
                let name = attr(node, "text").unwrap_or("@someone");
                if !name.starts_with('@') {
                    out.push('@');
                }
                out.push_str(name);
            }
            "emoji" => {
                if let Some(e) = attr(node, "text").or_else(|| attr(node, "shortName")) {
                    out.push_str(e);
                }
            }
            "inlineCard" => {
                if let Some(url) = attr(node, "url") {
                    out.push_str(url);
                }
            }
            "date" => {
                if let Some(day) = attr(node, "timestamp").and_then(day_of) {
                    out.push_str(&day);
                }
            }
            "status" => {
                if let Some(label) = attr(node, "text") {
                    out.push_str(label);
                }
            }
            "placeholder" | "mediaInline" | "inlineExtension" => {}
            _ => {
                if let Some(text) = node.get("text").and_then(Value::as_str) {
                    out.push_str(text);
                }
                inline(content(node), depth + 1, out);
            }
        }
    }
}

/// The `href` of a text node's `link` mark.
fn link_of(node: &Value) -> Option<&str> {
    node.get("marks")?
        .as_array()?
        .iter()
        .find(|m| kind(m) == "link")
        .and_then(|m| attr(m, "href"))
}

/// A date node's `timestamp` (milliseconds, as a string) as `YYYY-MM-DD` (UTC).
fn day_of(ms: &str) -> Option<String> {
    let ms: i64 = ms.trim().parse().ok()?;
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}",
        t.year(),
        u8::from(t.month()),
        t.day()
    ))
}

/// Lines without trailing spaces, without blank lines at either end and
/// never more than one blank line in a row.
fn tidy(lines: &[String]) -> String {
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    for line in lines.iter().map(|l| l.trim_end()) {
        if line.trim().is_empty() {
            if out.last().is_none_or(|l| l.is_empty()) {
                continue;
            }
            out.push("");
        } else {
            out.push(line);
        }
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(content: Value) -> Value {
        json!({"type": "doc", "version": 1, "content": content})
    }

    fn p(text: &str) -> Value {
        json!({"type": "paragraph", "content": [{"type": "text", "text": text}]})
    }

    #[test]
    fn paragraphs_marks_and_breaks() {
        let d = doc(json!([
            {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Outage"}]},
            {"type": "paragraph", "content": [
                {"type": "text", "text": "VPN "},
                {"type": "text", "text": "drops", "marks": [{"type": "strong"}]},
                {"type": "hardBreak"},
                {"type": "text", "text": "since 9:00 "},
                {"type": "emoji", "attrs": {"shortName": ":warning:", "text": "⚠️"}}
            ]},
            {"type": "paragraph", "content": []},
            p("Second paragraph"),
        ]));
        assert_eq!(
            to_text(&d),
            "Outage\nVPN drops\nsince 9:00 ⚠️\n\nSecond paragraph"
        );
    }

    #[test]
    fn lists_nest_and_number_from_their_order() {
        let d = doc(json!([
            {"type": "bulletList", "content": [
                {"type": "listItem", "content": [
                    p("one"),
                    {"type": "orderedList", "attrs": {"order": 3}, "content": [
                        {"type": "listItem", "content": [p("three")]},
                        {"type": "listItem", "content": [p("four")]}
                    ]}
                ]},
                {"type": "listItem", "content": [p("two")]}
            ]},
            {"type": "taskList", "attrs": {"localId": "t"}, "content": [
                {"type": "taskItem", "attrs": {"localId": "a", "state": "DONE"}, "content": [{"type": "text", "text": "restart"}]},
                {"type": "taskItem", "attrs": {"localId": "b", "state": "TODO"}, "content": [{"type": "text", "text": "verify"}]}
            ]}
        ]));
        assert_eq!(
            to_text(&d),
            "- one\n  3. three\n  4. four\n- two\n[x] restart\n[ ] verify"
        );
    }

    #[test]
    fn code_mentions_links_cards_dates_and_tables() {
        let d = doc(json!([
            {"type": "codeBlock", "attrs": {"language": "bash"}, "content": [
                {"type": "text", "text": "ping 10.0.0.1\ntraceroute 10.0.0.1"}
            ]},
            {"type": "paragraph", "content": [
                {"type": "mention", "attrs": {"id": "5b10a2844c20165700ede21g", "text": "@Jane Doe", "accessLevel": ""}},
                {"type": "text", "text": " see "},
                {"type": "text", "text": "the runbook", "marks": [{"type": "link", "attrs": {"href": "https://wiki.example/vpn"}}]},
                {"type": "text", "text": ", "},
                {"type": "inlineCard", "attrs": {"url": "https://acme.atlassian.net/browse/SUP-7"}},
                {"type": "text", "text": " on "},
                {"type": "date", "attrs": {"timestamp": "1705276800000"}},
                {"type": "text", "text": " "},
                {"type": "status", "attrs": {"text": "BLOCKED", "color": "red"}}
            ]},
            {"type": "blockquote", "content": [p("quoted")]},
            {"type": "rule"},
            {"type": "table", "content": [
                {"type": "tableRow", "content": [
                    {"type": "tableHeader", "content": [p("Host")]},
                    {"type": "tableHeader", "content": [p("IP")]}
                ]},
                {"type": "tableRow", "content": [
                    {"type": "tableCell", "content": [p("gw")]},
                    {"type": "tableCell", "content": [p("10.0.0.1")]}
                ]}
            ]},
            {"type": "mediaSingle", "content": [{"type": "media", "attrs": {"id": "x", "type": "file", "collection": "c"}}]},
            {"type": "panel", "attrs": {"panelType": "info"}, "content": [p("in a panel")]}
        ]));
        assert_eq!(
            to_text(&d),
            "ping 10.0.0.1\ntraceroute 10.0.0.1\n\
             @Jane Doe see the runbook (https://wiki.example/vpn), https://acme.atlassian.net/browse/SUP-7 on 2024-01-15 BLOCKED\n\
             > quoted\n---\nHost | IP\ngw | 10.0.0.1\nin a panel"
        );
    }

    #[test]
    fn strings_unknown_nodes_and_garbage() {
        assert_eq!(to_text(&json!("  plain text ")), "plain text");
        assert_eq!(to_text(&Value::Null), "");
        assert_eq!(to_text(&json!(42)), "");
        assert_eq!(to_text(&json!({"type": "doc"})), "");
        let d = doc(json!([{"type": "futureBlock", "content": [
            {"type": "text", "text": "kept"},
            {"type": "futureInline", "text": " too"}
        ]}]));
        assert_eq!(to_text(&d), "kept too");
        // A link whose text is its URL is not repeated.
        let d = doc(json!([{"type": "paragraph", "content": [
            {"type": "text", "text": "https://x.example", "marks": [{"type": "link", "attrs": {"href": "https://x.example"}}]}
        ]}]));
        assert_eq!(to_text(&d), "https://x.example");
    }

    #[test]
    fn deep_nesting_stops_instead_of_overflowing() {
        let mut node = p("bottom");
        for _ in 0..200 {
            node = json!({"type": "blockquote", "content": [node]});
        }
        let text = to_text(&doc(json!([node])));
        assert!(!text.contains("bottom"));
    }
}
