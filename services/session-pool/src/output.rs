//! What leaves the session-pool is bounded and carries no platform secret.
//! Pure: the actor runs every event through [`Outgoing`] before numbering,
//! storing and publishing it, and the history read path bounds stored rows
//! (older ones were stored whole) with [`bound_frame`] and [`bound_history`].
//!
//! Why bounds: a tool can print megabytes (a `Read` of a large file), and
//! every hop has a ceiling — NATS' 1 MiB payload, the gateway's 2 MiB
//! WebSocket write buffer, gRPC's 4 MiB message. One oversized event used to
//! close the browser's socket and make the history unreadable for good.
//! Sizes are measured as the text is sent: JSON-escaped, so output full of
//! control characters (6 bytes each as `\u0000`) cannot slip past a bound.

use csp_domain::Event;
use csp_redact::KnownSecrets;
use serde_json::Value;
use std::fmt::Write as _;

/// Default of `CSP_TOOL_OUTPUT_MAX_BYTES`.
pub const DEFAULT_TOOL_OUTPUT_MAX_BYTES: usize = 256 * 1024;
/// The setting's range: at least this much output is worth showing…
pub const MIN_TOOL_OUTPUT_MAX_BYTES: usize = 1024;
/// …and above this one event would not fit NATS' default 1 MiB payload
/// with its frame around it.
pub const MAX_TOOL_OUTPUT_MAX_BYTES: usize = 512 * 1024;
/// Assistant text and user messages are never cut below this, whatever the
/// tool output bound: only a runaway block reaches it.
const TEXT_MAX_BYTES: usize = MAX_TOOL_OUTPUT_MAX_BYTES;
/// The history answer stays under this (the gRPC client's limit is 4 MiB).
pub(crate) const HISTORY_BUDGET_BYTES: usize = 3 * 1024 * 1024;
/// Per history row: seq, kind, timestamp and protobuf framing.
const ROW_OVERHEAD: usize = 64;
/// Smallest share a tool output is cut to when a history must shrink.
const HISTORY_MIN_CAP: usize = 1024;

/// The bounds and the secrets of one session's outgoing events, and the
/// streamed text held back while it could be the start of a secret.
#[derive(Debug)]
pub(crate) struct Outgoing {
    secrets: KnownSecrets,
    max_tool_output: usize,
    held: Option<(Stream, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Text,
    Thinking,
}

impl Stream {
    fn event(self, text: String) -> Event {
        match self {
            Stream::Text => Event::Delta { text },
            Stream::Thinking => Event::Thinking { text },
        }
    }
}

impl Outgoing {
    pub(crate) fn new(secrets: KnownSecrets, max_tool_output: usize) -> Self {
        Self {
            secrets,
            max_tool_output,
            held: None,
        }
    }

    pub(crate) fn secrets(&self) -> &KnownSecrets {
        &self.secrets
    }

    /// What to emit for `event`, in order: held-back text first when the
    /// stream moves on, then the event itself, redacted and bounded. A
    /// streamed piece may come out shorter (its end held back) or not at all.
    pub(crate) fn process(&mut self, event: Event) -> Vec<Event> {
        let mut out = Vec::with_capacity(2);
        match event {
            Event::Delta { text } => self.stream(Stream::Text, text, &mut out),
            Event::Thinking { text } => self.stream(Stream::Thinking, text, &mut out),
            mut event => {
                out.extend(self.flush());
                self.sanitize(&mut event);
                out.push(event);
            }
        }
        out
    }

    /// The text held back, as its event.
    pub(crate) fn flush(&mut self) -> Option<Event> {
        self.held.take().map(|(kind, text)| kind.event(text))
    }

    /// A secret can arrive split over two deltas; the end of a piece that
    /// could begin one waits for the next piece (or the next event).
    fn stream(&mut self, kind: Stream, text: String, out: &mut Vec<Event>) {
        let mut text = match self.held.take() {
            Some((k, held)) if k == kind => held + &text,
            Some((k, held)) => {
                out.push(k.event(held));
                text
            }
            None => text,
        };
        self.secrets.redact_string(&mut text);
        let hold = self.secrets.partial_suffix(&text);
        if hold > 0 {
            let rest = text.split_off(text.len() - hold);
            self.held = Some((kind, rest));
        }
        bound_text(&mut text, TEXT_MAX_BYTES, "text");
        if !text.is_empty() {
            out.push(kind.event(text));
        }
    }

    /// Secrets first, then the bound: a cut can then never leave half a
    /// secret at the end.
    fn sanitize(&self, event: &mut Event) {
        match event {
            Event::ToolResult { content, .. } => {
                self.secrets.redact_string(content);
                bound_text(content, self.max_tool_output, "output");
            }
            Event::ToolUse { input, .. } => {
                self.secrets.redact_value(input);
                bound_json(input, self.max_tool_output);
            }
            Event::UserMessage { text, .. } => {
                self.secrets.redact_string(text);
                bound_text(text, TEXT_MAX_BYTES, "text");
            }
            Event::Delta { text } | Event::Thinking { text } => {
                self.secrets.redact_string(text);
                bound_text(text, TEXT_MAX_BYTES, "text");
            }
            Event::Session { .. }
            | Event::Result { .. }
            | Event::Error { .. }
            | Event::Notice { .. } => {}
        }
    }
}

/// Bytes `c` takes inside a JSON string (as serde_json writes it).
fn json_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// Where `s` must be cut so the part before fits `max` JSON bytes; `None`
/// when all of it fits. Always a character boundary.
fn cut_point(s: &str, max: usize) -> Option<usize> {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += json_len(c);
        if used > max {
            return Some(i);
        }
    }
    None
}

fn marker_prefix(what: &str) -> String {
    format!("\n… [{what} truncated: ")
}

/// "4.8 MiB", "256 KiB", "900 bytes".
fn human(bytes: usize) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    if v.fract() == 0.0 {
        format!("{v:.0} {unit}")
    } else {
        format!("{v:.1} {unit}")
    }
}

/// The marker that ends a cut text: what it was, how big in full (human and
/// exact) and how much is shown.
fn marker(what: &str, total: usize, shown: usize) -> String {
    let mut m = marker_prefix(what);
    let _ = write!(
        m,
        "{} ({total} bytes), showing the first {}]",
        human(total),
        human(shown)
    );
    m
}

/// The text before an earlier marker and the full size that marker names.
fn split_marker<'a>(text: &'a str, what: &str) -> Option<(&'a str, usize)> {
    if !text.ends_with(']') {
        return None;
    }
    let at = text.rfind(&marker_prefix(what))?;
    let tail = &text[at..];
    let open = tail.find(" (")?;
    let close = tail[open..].find(" bytes)")? + open;
    let total = tail[open + 2..close].parse().ok()?;
    Some((&text[..at], total))
}

/// Cuts `text` (at a character boundary) so it takes at most `max` bytes in
/// JSON, and ends it with a marker naming the full size, e.g.
/// "… [output truncated: 4.8 MiB (5000000 bytes), showing the first 256 KiB]".
/// A text cut before keeps naming its original size. True when cut.
pub(crate) fn bound_text(text: &mut String, max: usize, what: &str) -> bool {
    let (body, total) = split_marker(text, what).unwrap_or((text.as_str(), text.len()));
    let Some(cut) = cut_point(body, max) else {
        return false;
    };
    let mut out = String::with_capacity(cut + 96);
    out.push_str(&body[..cut]);
    out.push_str(&marker(what, total, cut));
    *text = out;
    true
}

/// Bounds a tool's JSON input to about `max` bytes: its longest strings are
/// cut (each with its marker) until it fits; an input that still does not
/// (thousands of small values) is replaced by a note of its size.
pub(crate) fn bound_json(input: &mut Value, max: usize) -> bool {
    let size = |v: &Value| v.to_string().len();
    let total = size(input);
    if total <= max {
        return false;
    }
    let original = input.clone();
    let mut cap = max / 2;
    while cap >= 256 {
        let mut v = original.clone();
        cut_strings(&mut v, cap);
        if size(&v) <= max + max / 4 {
            *input = v;
            return true;
        }
        cap /= 2;
    }
    *input = Value::String(format!(
        "… [input truncated: {} ({total} bytes), not shown]",
        human(total)
    ));
    true
}

fn cut_strings(v: &mut Value, cap: usize) {
    match v {
        Value::String(s) => {
            bound_text(s, cap, "input");
        }
        Value::Array(items) => items.iter_mut().for_each(|i| cut_strings(i, cap)),
        Value::Object(map) => map.values_mut().for_each(|i| cut_strings(i, cap)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// A stored frame (the WebSocket frame JSON) redacted and bounded like a
/// live event: rows stored before the bound existed load again.
pub(crate) fn bound_frame(frame: &mut Value, secrets: &KnownSecrets, max_tool_output: usize) {
    let kind = frame
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (field, max, what) = match kind {
        "tool_result" => ("content", max_tool_output, "output"),
        "tool_use" => ("input", max_tool_output, ""),
        "delta" | "thinking" | "user_message" => ("text", TEXT_MAX_BYTES, "text"),
        _ => return,
    };
    let Some(value) = frame.get_mut(field) else {
        return;
    };
    secrets.redact_value(value);
    match value {
        Value::String(s) if !what.is_empty() => {
            bound_text(s, max, what);
        }
        v if what.is_empty() => {
            bound_json(v, max);
        }
        _ => {}
    }
}

/// Keeps a history answer under `budget` bytes: tool outputs are cut to a
/// smaller share (halving, down to 1 KiB) until it fits; if even that does
/// not fit, the oldest rows are left out (the newest part of a conversation
/// is what a reload needs). Rows are `(frame, stored size)`. Returns how
/// many leading rows to leave out.
pub(crate) fn bound_history(
    frames: &mut [Value],
    secrets: &KnownSecrets,
    max_tool_output: usize,
    budget: usize,
) -> usize {
    let total = |frames: &[Value]| -> usize {
        frames
            .iter()
            .map(|f| f.to_string().len() + ROW_OVERHEAD)
            .sum()
    };
    for f in frames.iter_mut() {
        bound_frame(f, secrets, max_tool_output);
    }
    if total(frames) <= budget {
        return 0;
    }
    let mut cap = max_tool_output / 2;
    while cap >= HISTORY_MIN_CAP {
        for f in frames.iter_mut() {
            bound_frame(f, secrets, cap);
        }
        if total(frames) <= budget {
            return 0;
        }
        cap /= 2;
    }
    let mut size = total(frames);
    let mut skip = 0;
    while size > budget && skip < frames.len() {
        size -= frames[skip].to_string().len() + ROW_OVERHEAD;
        skip += 1;
    }
    skip
}

#[cfg(test)]
mod tests {
    use super::*;
    use csp_domain::ToolStatus;
    use serde_json::json;

    const JWT: &str = "jwt-secret-0123456789abcdef0123456789";

    fn result(content: String) -> Event {
        Event::ToolResult {
            tool_use_id: "t".into(),
            status: ToolStatus::Complete,
            duration_ms: 1,
            content,
        }
    }

    fn content(e: &Event) -> &str {
        match e {
            Event::ToolResult { content, .. } => content,
            other => panic!("not a tool_result: {other:?}"),
        }
    }

    #[test]
    fn a_five_megabyte_output_is_cut_with_a_marker_naming_its_size() {
        let mut o = Outgoing::new(KnownSecrets::default(), DEFAULT_TOOL_OUTPUT_MAX_BYTES);
        let out = o.process(result("a".repeat(5_000_000)));
        assert_eq!(out.len(), 1);
        let c = content(&out[0]);
        assert!(c.starts_with(&"a".repeat(1000)));
        assert!(
            c.ends_with(
                "\n… [output truncated: 4.8 MiB (5000000 bytes), showing the first 256 KiB]"
            ),
            "{}",
            &c[c.len() - 100..]
        );
        assert_eq!(
            c.len(),
            256 * 1024 + marker("output", 5_000_000, 256 * 1024).len()
        );
        let frame = serde_json::to_string(&out[0]).unwrap();
        assert!(frame.len() < 256 * 1024 + 300, "{}", frame.len());
    }

    #[test]
    fn output_under_the_bound_is_untouched() {
        let mut o = Outgoing::new(KnownSecrets::default(), 1024);
        let text = "é".repeat(512);
        assert_eq!(o.process(result(text.clone())), vec![result(text)]);
    }

    #[test]
    fn the_cut_is_utf8_safe_and_counts_json_escapes() {
        let mut s = "ü".repeat(1000);
        assert!(bound_text(&mut s, 1001, "output"));
        assert!(s.starts_with(&"ü".repeat(500)) && !s.starts_with(&"ü".repeat(501)));
        // NULs take 6 bytes each in JSON: 1 KiB of them is 6 KiB on the wire.
        let mut zeros = "\0".repeat(1024);
        assert!(bound_text(&mut zeros, 1024, "output"));
        assert!(zeros.starts_with(&"\0".repeat(170)) && !zeros.starts_with(&"\0".repeat(171)));
        assert!(
            zeros.ends_with("(1024 bytes), showing the first 170 bytes]"),
            "{zeros:?}"
        );
    }

    #[test]
    fn bounding_again_keeps_the_original_size_and_changes_nothing_at_the_same_bound() {
        let mut s = "x".repeat(10_000);
        assert!(bound_text(&mut s, 2048, "output"));
        let once = s.clone();
        assert!(!bound_text(&mut s, 2048, "output"));
        assert_eq!(s, once);
        assert!(bound_text(&mut s, 1024, "output"));
        assert!(
            s.ends_with("[output truncated: 9.8 KiB (10000 bytes), showing the first 1 KiB]"),
            "{s}"
        );
        assert_eq!(s.matches("truncated").count(), 1);
    }

    #[test]
    fn known_secrets_are_redacted_in_results_inputs_and_messages() {
        let mut o = Outgoing::new(KnownSecrets::new([JWT]), 1024);
        let out = o.process(result(format!("CSP_JWT_SECRET={JWT}\n")));
        assert_eq!(content(&out[0]), "CSP_JWT_SECRET=[REDACTED]\n");
        let out = o.process(Event::ToolUse {
            tool_use_id: "t".into(),
            name: "Bash".into(),
            input: json!({"command": format!("echo {JWT}")}),
        });
        assert!(
            matches!(&out[0], Event::ToolUse { input, .. } if input == &json!({"command": "echo [REDACTED]"}))
        );
        let out = o.process(Event::UserMessage {
            text: format!("is {JWT} safe?"),
            client_id: None,
        });
        assert!(
            matches!(&out[0], Event::UserMessage { text, .. } if text == "is [REDACTED] safe?")
        );
    }

    #[test]
    fn a_secret_split_over_deltas_never_goes_out() {
        let mut o = Outgoing::new(KnownSecrets::new([JWT]), 1024);
        let mut sent = String::new();
        let mut take = |events: Vec<Event>| {
            for e in events {
                match e {
                    Event::Delta { text } => sent.push_str(&text),
                    Event::Result { .. } => sent.push('|'),
                    other => panic!("{other:?}"),
                }
            }
        };
        take(o.process(Event::Delta {
            text: format!("the key is {}", &JWT[..10]),
        }));
        take(o.process(Event::Delta {
            text: JWT[10..20].to_owned(),
        }));
        take(o.process(Event::Delta {
            text: format!("{} and jw", &JWT[20..]),
        }));
        // "jw" might begin the secret: held until the turn's result.
        take(o.process(Event::Result {
            cost_usd: 0.0,
            total_cost_usd: 0.0,
            is_error: false,
            interrupted: false,
            duration_ms: 0,
        }));
        assert_eq!(sent, "the key is [REDACTED] and jw|");
    }

    #[test]
    fn held_text_goes_out_before_a_different_stream() {
        let mut o = Outgoing::new(KnownSecrets::new([JWT]), 1024);
        assert!(
            o.process(Event::Thinking {
                text: "jwt-".into()
            })
            .is_empty()
        );
        let out = o.process(Event::Delta { text: "hi".into() });
        assert_eq!(
            out,
            vec![
                Event::Thinking {
                    text: "jwt-".into()
                },
                Event::Delta { text: "hi".into() }
            ]
        );
        assert_eq!(o.flush(), None);
    }

    #[test]
    fn a_huge_tool_input_is_bounded() {
        let mut input = json!({"file_path": "/tmp/x", "content": "y".repeat(2_000_000)});
        assert!(bound_json(&mut input, 4096));
        assert_eq!(input["file_path"], "/tmp/x");
        assert!(
            input.to_string().len() <= 4096 + 1024,
            "{}",
            input.to_string().len()
        );
        assert!(
            input["content"]
                .as_str()
                .unwrap()
                .contains("(2000000 bytes)")
        );
        let mut many = Value::Array((0..5000).map(|i| json!(i.to_string())).collect());
        assert!(bound_json(&mut many, 1024));
        assert!(
            many.as_str().unwrap().starts_with("… [input truncated:"),
            "{many}"
        );
    }

    #[test]
    fn stored_rows_are_bounded_on_the_way_out() {
        let secrets = KnownSecrets::new([JWT]);
        let mut frame = json!({"type": "tool_result", "tool_use_id": "t", "status": "complete",
            "duration_ms": 5, "content": format!("{JWT}{}", "a".repeat(4_700_000)), "seq": 7});
        bound_frame(&mut frame, &secrets, DEFAULT_TOOL_OUTPUT_MAX_BYTES);
        let c = frame["content"].as_str().unwrap();
        assert!(c.starts_with("[REDACTED]aaa"));
        assert!(
            c.contains("(4700010 bytes), showing the first 256 KiB]"),
            "{}",
            &c[c.len() - 90..]
        );
        assert_eq!(frame["seq"], 7);
        let mut text = json!({"type": "delta", "text": format!("said {JWT}"), "seq": 8});
        bound_frame(&mut text, &secrets, 1024);
        assert_eq!(text["text"], "said [REDACTED]");
    }

    #[test]
    fn a_history_fits_the_budget_by_cutting_outputs_then_dropping_the_oldest() {
        let big = |seq: u64| {
            json!({"type": "tool_result", "tool_use_id": "t", "status": "complete",
                "duration_ms": 5, "content": "b".repeat(300_000), "seq": seq})
        };
        let small = |seq: u64| json!({"type": "delta", "text": "hello", "seq": seq});
        let none = KnownSecrets::default();
        // 20 outputs of 256 KiB: 5 MiB, over a 3 MiB budget.
        let mut frames: Vec<Value> = (1..=20).map(big).collect();
        assert_eq!(
            bound_history(
                &mut frames,
                &none,
                DEFAULT_TOOL_OUTPUT_MAX_BYTES,
                HISTORY_BUDGET_BYTES
            ),
            0
        );
        let size: usize = frames
            .iter()
            .map(|f| f.to_string().len() + ROW_OVERHEAD)
            .sum();
        assert!(size <= HISTORY_BUDGET_BYTES, "{size}");
        assert!(
            frames[0]["content"]
                .as_str()
                .unwrap()
                .contains("showing the first 128 KiB")
        );
        // Too many rows even at the smallest share: the oldest go.
        let mut frames: Vec<Value> = (1..=100).map(small).collect();
        let skip = bound_history(
            &mut frames,
            &none,
            DEFAULT_TOOL_OUTPUT_MAX_BYTES,
            50 * (ROW_OVERHEAD + 40),
        );
        assert!(skip > 0 && skip < 100, "{skip}");
        let kept: usize = frames[skip..]
            .iter()
            .map(|f| f.to_string().len() + ROW_OVERHEAD)
            .sum();
        assert!(kept <= 50 * (ROW_OVERHEAD + 40));
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human(900), "900 bytes");
        assert_eq!(human(256 * 1024), "256 KiB");
        assert_eq!(human(5_000_000), "4.8 MiB");
        assert_eq!(human(3 << 30), "3 GiB");
    }
}
