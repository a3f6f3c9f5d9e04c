//! A position-recording walk over JSON text.
//!
//! serde_json tells where a syntax error is but not where a parsed value came
//! from, and a plugin author needs the line of the field that is wrong. This
//! walker reads the same text a second time and reports, for every value, the
//! field path (`capabilities.tools[1].name`) and the byte offsets of its key
//! and value. It also runs over the prefix of a broken file, up to the error,
//! to learn which object or list the parser was in and which key came last.
//!
//! It never recurses (a file of 100 000 `[` is a `Vec` of frames, not a stack
//! overflow) and never panics on malformed input: on text that is not JSON it
//! still stops, with a best-effort picture of where it was.

use std::collections::HashMap;

/// Byte offsets → 1-based line and column, columns counted in characters
/// because that is what an editor's status bar shows.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    /// Line and column of the character at byte `offset` (clamped to the end).
    pub(crate) fn position(&self, offset: usize) -> (u32, u32) {
        let offset = floor_char_boundary(self.text, offset.min(self.text.len()));
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = self.text[start..offset].chars().count() + 1;
        (to_u32(line), to_u32(column))
    }

    /// Byte offset where 1-based `line` starts, if the text has that line.
    pub(crate) fn line_start(&self, line: usize) -> Option<usize> {
        line.checked_sub(1)
            .and_then(|i| self.starts.get(i).copied())
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub(crate) fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Object,
    Array,
}

/// One open `{` or `[`.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) kind: Kind,
    /// Byte offset of the opening bracket.
    pub(crate) open: usize,
    /// Length of [`Walker::path`] that names this container itself.
    base_len: usize,
    /// Arrays: index of the current element (commas seen so far).
    pub(crate) index: usize,
    /// Objects: true after `{` or `,`, when the next string is a key.
    pub(crate) expect_key: bool,
    /// Objects: the most recent key, the one a missing comma comes after.
    pub(crate) last_key: Option<String>,
    /// Objects, when duplicate detection is on: key → offset of its first use.
    keys: HashMap<String, usize>,
}

/// A key that occurs twice in one object (serde_json silently keeps the last).
#[derive(Debug)]
pub(crate) struct Duplicate {
    pub(crate) path: String,
    pub(crate) first: usize,
    pub(crate) second: usize,
}

/// Where a value was found: offset of its key (members only) and of the value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub(crate) key: Option<usize>,
    pub(crate) value: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Walker {
    pub(crate) stack: Vec<Frame>,
    /// Path of the current value: keys joined by `.`, indices as `[i]`.
    pub(crate) path: String,
    /// Offset of the key whose value comes next.
    pending_key: Option<usize>,
    /// Set when the walk stopped inside a string: offset of its opening quote.
    pub(crate) open_string: Option<usize>,
    track_keys: bool,
    pub(crate) duplicates: Vec<Duplicate>,
}

impl Walker {
    /// Path of the innermost open container.
    pub(crate) fn container_path(&self) -> &str {
        self.stack
            .last()
            .map_or("", |f| &self.path[..f.base_len.min(self.path.len())])
    }

    /// Walks `text[..stop]`, calling `on_value(path, span)` at the start of
    /// every value.
    pub(crate) fn walk(&mut self, text: &str, stop: usize, mut on_value: impl FnMut(&str, Span)) {
        let bytes = text.as_bytes();
        let stop = stop.min(bytes.len());
        let mut i = 0;
        while i < stop {
            match bytes[i] {
                b' ' | b'\t' | b'\r' | b'\n' => i += 1,
                b'"' => {
                    let Some(end) = string_end(bytes, i, stop) else {
                        self.open_string = Some(i);
                        return;
                    };
                    let is_key = matches!(self.stack.last(), Some(f) if f.kind == Kind::Object && f.expect_key);
                    if is_key {
                        self.enter_key(unescape(&text[i..end]), i);
                    } else {
                        self.enter_value(i, &mut on_value);
                    }
                    i = end;
                }
                b':' => i += 1,
                b',' => {
                    if let Some(frame) = self.stack.last_mut() {
                        match frame.kind {
                            Kind::Object => frame.expect_key = true,
                            Kind::Array => frame.index += 1,
                        }
                    }
                    i += 1;
                }
                b'{' | b'[' => {
                    self.enter_value(i, &mut on_value);
                    let kind = if bytes[i] == b'{' {
                        Kind::Object
                    } else {
                        Kind::Array
                    };
                    self.stack.push(Frame {
                        kind,
                        open: i,
                        base_len: self.path.len(),
                        index: 0,
                        expect_key: kind == Kind::Object,
                        last_key: None,
                        keys: HashMap::new(),
                    });
                    i += 1;
                }
                b'}' | b']' => {
                    if let Some(frame) = self.stack.pop() {
                        self.path.truncate(frame.base_len);
                    }
                    i += 1;
                }
                _ => {
                    self.enter_value(i, &mut on_value);
                    i += 1;
                    while i < stop && !is_delimiter(bytes[i]) {
                        i += 1;
                    }
                }
            }
        }
    }

    fn enter_key(&mut self, key: String, offset: usize) {
        let Some(frame) = self.stack.last_mut() else {
            return;
        };
        frame.expect_key = false;
        self.path.truncate(frame.base_len);
        if frame.base_len > 0 {
            self.path.push('.');
        }
        self.path.push_str(&key);
        if self.track_keys {
            if let Some(&first) = frame.keys.get(&key) {
                self.duplicates.push(Duplicate {
                    path: self.path.clone(),
                    first,
                    second: offset,
                });
            } else {
                frame.keys.insert(key.clone(), offset);
            }
        }
        frame.last_key = Some(key);
        self.pending_key = Some(offset);
    }

    fn enter_value(&mut self, offset: usize, on_value: &mut impl FnMut(&str, Span)) {
        if let Some(frame) = self.stack.last()
            && frame.kind == Kind::Array
        {
            use std::fmt::Write;
            self.path.truncate(frame.base_len);
            let _ = write!(self.path, "[{}]", frame.index);
        }
        let span = Span {
            key: self.pending_key.take(),
            value: offset,
        };
        on_value(&self.path, span);
    }
}

/// Offset just past the closing quote of the string opening at `start`, or
/// `None` if it does not close before `stop`.
fn string_end(bytes: &[u8], start: usize, stop: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < stop {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b',' | b':' | b'{' | b'}' | b'[' | b']' | b'"' | b' ' | b'\t' | b'\r' | b'\n'
    )
}

/// The text of a quoted JSON string; the raw inside if it does not decode.
fn unescape(quoted: &str) -> String {
    let inner = quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(quoted);
    if inner.contains('\\') {
        serde_json::from_str(quoted).unwrap_or_else(|_| inner.to_owned())
    } else {
        inner.to_owned()
    }
}

/// Spans of the values at `wanted` paths, and every duplicate key, in text
/// that serde_json has already accepted.
pub(crate) fn index(
    text: &str,
    wanted: &std::collections::HashSet<String>,
) -> (HashMap<String, Span>, Vec<Duplicate>) {
    let mut spans = HashMap::new();
    let mut walker = Walker {
        track_keys: true,
        ..Walker::default()
    };
    walker.walk(text, text.len(), |path, span| {
        if wanted.contains(path) {
            spans.insert(path.to_owned(), span);
        }
    });
    (spans, walker.duplicates)
}

/// The walker's state just before byte `stop` of a file that failed to parse.
pub(crate) fn context_at(text: &str, stop: usize) -> Walker {
    let mut walker = Walker::default();
    walker.walk(text, stop, |_, _| {});
    walker
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str, paths: &[&str]) -> HashMap<String, Span> {
        let wanted = paths.iter().map(|p| p.to_string()).collect();
        index(text, &wanted).0
    }

    #[test]
    fn records_key_and_value_offsets_by_path() {
        let text = r#"{"a": {"b": [1, {"c": "x"}]}, "d": true}"#;
        let s = spans(text, &["", "a", "a.b", "a.b[1].c", "a.b[0]", "d"]);
        assert_eq!(s[""].value, 0);
        assert_eq!(s["a"].key, Some(1));
        assert_eq!(s["a.b"].value, 12);
        assert_eq!(s["a.b[0]"].value, 13);
        assert_eq!(s["a.b[1].c"].key, Some(17));
        assert_eq!(
            &text[s["a.b[1].c"].value..s["a.b[1].c"].value + 3],
            r#""x""#
        );
        assert_eq!(s["d"].key, Some(30));
    }

    #[test]
    fn escaped_keys_and_quotes_in_strings() {
        let text = r#"{"a\"b": "}\"{", "c\u0041": 1}"#;
        let s = spans(text, &["a\"b", "cA"]);
        assert_eq!(s["a\"b"].key, Some(1));
        assert_eq!(s["cA"].key, Some(17));
    }

    #[test]
    fn reports_duplicate_keys() {
        let (_, dups) = index(r#"{"a": 1, "b": {"a": 2}, "a": 3}"#, &Default::default());
        assert_eq!(dups.len(), 1);
        assert_eq!(dups[0].path, "a");
        assert_eq!((dups[0].first, dups[0].second), (1, 24));
    }

    #[test]
    fn context_names_last_key_and_container() {
        let text = "{\"a\": 1,\n \"b\": [1, 2 3]}";
        let stop = text.find('3').unwrap();
        let w = context_at(text, stop);
        let top = w.stack.last().unwrap();
        assert_eq!(top.kind, Kind::Array);
        assert_eq!(top.index, 1);
        assert_eq!(w.container_path(), "b");
        assert_eq!(w.stack[0].last_key.as_deref(), Some("b"));
    }

    #[test]
    fn deep_nesting_is_iterative() {
        let text = "[".repeat(200_000);
        let w = context_at(&text, text.len());
        assert_eq!(w.stack.len(), 200_000);
    }

    #[test]
    fn line_index_counts_characters() {
        let text = "ab\nçd\n\nx";
        let idx = LineIndex::new(text);
        assert_eq!(idx.position(0), (1, 1));
        assert_eq!(idx.position(3), (2, 1));
        assert_eq!(idx.position(5), (2, 2)); // after the two-byte 'ç'
        assert_eq!(idx.position(8), (4, 1));
        assert_eq!(idx.position(99), (4, 2));
        assert_eq!(idx.line_start(3), Some(7));
        assert_eq!(idx.line_start(9), None);
    }
}
