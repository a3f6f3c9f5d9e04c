//! Turning a JSON syntax error into a message a plugin author can act on.
//!
//! serde_json says `expected `,` or `}` at line 12 column 3`; the author
//! needs "Expected comma after 'version' field (Add a ',' at the end of line
//! 11.)". The parser's position is kept as the problem's position (it is
//! where the parser tripped: the next key, for a missing comma); the walker
//! in [`crate::scan`] supplies what came before it.
//!
//! serde_json does not expose its error codes, only their text, so the
//! classification below matches that text; a message it does not know falls
//! through to serde_json's own wording, capitalised.

use std::path::Path;

use crate::Problem;
use crate::scan::{Kind, LineIndex, Walker, context_at, floor_char_boundary};

/// Problem for non-UTF-8 input: `valid_up_to` bytes decode, the next does not.
pub(crate) fn not_utf8(file: &Path, bytes: &[u8], valid_up_to: usize) -> Problem {
    let prefix = std::str::from_utf8(&bytes[..valid_up_to]).unwrap_or_default();
    let (line, column) = LineIndex::new(prefix).position(valid_up_to);
    let byte = bytes.get(valid_up_to).copied().unwrap_or_default();
    Problem {
        file: file.to_path_buf(),
        line,
        column,
        field: None,
        message: format!("File is not valid UTF-8 (byte 0x{byte:02X})"),
        suggestion: Some("Save plugin.json with UTF-8 encoding.".into()),
    }
}

/// Problem for a serde_json error in `text`.
pub(crate) fn problem(file: &Path, text: &str, err: &serde_json::Error) -> Problem {
    let lines = LineIndex::new(text);
    let offset = if err.classify() == serde_json::error::Category::Eof {
        text.len()
    } else {
        // serde_json's column is 1-based and counts bytes; column 0 means
        // the byte it stopped at is the line break ending the line before.
        let start = lines.line_start(err.line()).unwrap_or(text.len());
        let offset = (start + err.column()).saturating_sub(1).min(text.len());
        floor_char_boundary(text, offset)
    };
    let ctx = context_at(text, offset);
    let code = error_code(err);
    let d = Diagnosis {
        text,
        lines: &lines,
        offset,
        ctx: &ctx,
    };
    let (at, message, suggestion) = d.explain(&code);
    let (line, column) = lines.position(at);
    // Where no key is being read, the field is the object or list around.
    let field = match code.as_str() {
        "key must be a string" | "EOF while parsing an object" | "EOF while parsing a list" => {
            ctx.container_path()
        }
        _ => &ctx.path,
    };
    let field = Some(field.to_owned()).filter(|p| !p.is_empty());
    Problem {
        file: file.to_path_buf(),
        line,
        column,
        field,
        message,
        suggestion,
    }
}

/// serde_json's message without its ` at line L column C` suffix.
fn error_code(err: &serde_json::Error) -> String {
    let full = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    full.strip_suffix(&suffix).unwrap_or(&full).to_owned()
}

struct Diagnosis<'a> {
    text: &'a str,
    lines: &'a LineIndex<'a>,
    /// Where the parser stopped.
    offset: usize,
    ctx: &'a Walker,
}

impl Diagnosis<'_> {
    /// Position, message and suggestion for serde_json's error `code`.
    fn explain(&self, code: &str) -> (usize, String, Option<String>) {
        let here = self.offset;
        let found = self.char_at(here);
        match code {
            "expected `,` or `}`" => self.missing_comma_in_object(found),
            "expected `,` or `]`" => self.missing_comma_in_list(found),
            "trailing comma" => self.trailing_comma(),
            "key must be a string" => (here, self.unquoted_key(found), Some(self.quote_key_hint(found))),
            "expected value" => self.bad_value(found),
            "expected ident" => self.bad_literal(),
            "expected `:`" => (
                here,
                format!("Expected ':' after field name '{}'", self.last_key_or("?")),
                Some(format!(
                    "Write \"{}\": <value>.",
                    self.last_key_or("field")
                )),
            ),
            "EOF while parsing an object" | "EOF while parsing a list" => self.unclosed(),
            "EOF while parsing a string" => {
                let start = self.ctx.open_string.unwrap_or(here);
                (
                    here,
                    format!(
                        "Unexpected end of file inside a string that starts on line {}",
                        self.line_of(start)
                    ),
                    Some("Close the string with '\"'.".into()),
                )
            }
            "EOF while parsing a value" => self.eof_value(),
            "trailing characters" => self.trailing_characters(found),
            "recursion limit exceeded" => (
                here,
                "Nesting too deep: more than 128 levels of '[' and '{'".into(),
                Some("A plugin.json is one object with a few nested sections; look for runaway brackets.".into()),
            ),
            "invalid escape" => (
                here,
                format!("Invalid escape sequence in {}", self.in_string()),
                Some("Valid escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX; write \\\\ for a backslash (as in Windows paths).".into()),
            ),
            "invalid unicode code point"
            | "lone leading surrogate in hex escape"
            | "unexpected end of hex escape" => (
                here,
                format!("Invalid \\u escape in {}", self.in_string()),
                Some("Write \\u followed by exactly four hex digits; characters beyond U+FFFF need a surrogate pair.".into()),
            ),
            "invalid number" | "number out of range" => (
                here,
                format!("Invalid number{}", self.for_field()),
                Some("Write numbers like 1, -2, 3.5 or 1e3 (no leading zeros, '+' sign or trailing '.'); quote text in double quotes.".into()),
            ),
            c if c.starts_with("control character") => (
                here,
                format!("Unescaped control character (such as a line break or tab) in {}", self.in_string()),
                Some("A string must end on the line it starts; write \\n for a line break and \\t for a tab.".into()),
            ),
            other => (here, capitalise(other), None),
        }
    }

    fn char_at(&self, offset: usize) -> Option<char> {
        self.text.get(offset..).and_then(|s| s.chars().next())
    }

    fn line_of(&self, offset: usize) -> u32 {
        self.lines.position(offset).0
    }

    /// Offset of the last non-whitespace byte before `offset`.
    fn previous_token(&self, offset: usize) -> Option<usize> {
        self.text.as_bytes()[..offset.min(self.text.len())]
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
    }

    fn last_key(&self) -> Option<&str> {
        self.ctx
            .stack
            .last()
            .filter(|f| f.kind == Kind::Object)
            .and_then(|f| f.last_key.as_deref())
    }

    fn last_key_or<'s>(&'s self, default: &'s str) -> &'s str {
        self.last_key().unwrap_or(default)
    }

    /// `" for field 'x.y'"`, or nothing at the top level.
    fn for_field(&self) -> String {
        if self.ctx.path.is_empty() {
            String::new()
        } else {
            format!(" for field '{}'", self.ctx.path)
        }
    }

    fn in_string(&self) -> String {
        if self.ctx.path.is_empty() {
            "a string".into()
        } else {
            format!("field '{}'", self.ctx.path)
        }
    }

    /// How the innermost list is named in messages.
    fn list_name(&self) -> String {
        match self.ctx.container_path() {
            "" => "the list".into(),
            p => format!("'{p}'"),
        }
    }

    fn add_comma_hint(&self) -> Option<String> {
        self.previous_token(self.offset)
            .map(|p| format!("Add a ',' at the end of line {}.", self.line_of(p)))
    }

    fn missing_comma_in_object(&self, found: Option<char>) -> (usize, String, Option<String>) {
        let key = self.last_key_or("?");
        match found {
            Some(c) if c == '"' || c == '\'' || is_word_char(c) => (
                self.offset,
                format!("Expected comma after '{key}' field"),
                self.add_comma_hint(),
            ),
            Some(']') => (
                self.offset,
                format!(
                    "Expected '}}' to close the object opened on line {}, found ']'",
                    self.open_line()
                ),
                Some("Every '{' needs a matching '}' and every '[' a matching ']'.".into()),
            ),
            other => (
                self.offset,
                format!(
                    "Expected ',' or '}}' after '{key}' field{}",
                    found_suffix(other)
                ),
                Some("Separate fields with ',' and close the object with '}'.".into()),
            ),
        }
    }

    fn missing_comma_in_list(&self, found: Option<char>) -> (usize, String, Option<String>) {
        let element = self.ctx.stack.last().map_or(0, |f| f.index) + 1;
        let list = self.list_name();
        match found {
            Some(c) if matches!(c, '"' | '\'' | '{' | '[' | '-') || is_word_char(c) => (
                self.offset,
                format!("Expected comma after element {element} of {list}"),
                self.add_comma_hint(),
            ),
            Some('}') => (
                self.offset,
                format!(
                    "Expected ']' to close {list} opened on line {}, found '}}'",
                    self.open_line()
                ),
                Some(format!(
                    "Add ']' before the '}}' on line {}.",
                    self.line_of(self.offset)
                )),
            ),
            other => (
                self.offset,
                format!(
                    "Expected ',' or ']' after element {element} of {list}{}",
                    found_suffix(other)
                ),
                Some("Separate list elements with ',' and close the list with ']'.".into()),
            ),
        }
    }

    fn open_line(&self) -> u32 {
        self.ctx.stack.last().map_or(1, |f| self.line_of(f.open))
    }

    fn trailing_comma(&self) -> (usize, String, Option<String>) {
        let comma = self.previous_token(self.offset).unwrap_or(self.offset);
        let (message, closer) = match self.ctx.stack.last() {
            Some(f) if f.kind == Kind::Array => (
                format!(
                    "Trailing comma after the last element of {}",
                    self.list_name()
                ),
                ']',
            ),
            _ => (
                format!("Trailing comma after '{}' field", self.last_key_or("?")),
                '}',
            ),
        };
        let suggestion = format!(
            "Remove the ',' at the end of line {}: JSON allows no comma before '{closer}'.",
            self.line_of(comma)
        );
        (comma, message, Some(suggestion))
    }

    fn unquoted_key(&self, found: Option<char>) -> String {
        match found {
            Some('/' | '#') => COMMENTS.into(),
            Some('\'') => "Field names must be in double quotes, not single quotes".into(),
            Some(c) if is_word_char(c) => {
                format!(
                    "Field name '{}' must be in double quotes",
                    self.word_at(self.offset)
                )
            }
            other => format!(
                "Expected a field name in double quotes{}",
                found_suffix(other)
            ),
        }
    }

    fn quote_key_hint(&self, found: Option<char>) -> String {
        match found {
            Some('/' | '#') => COMMENTS_HINT.into(),
            Some('\'') => {
                let inner = self.single_quoted(self.offset);
                format!("Write \"{inner}\" instead of '{inner}'.")
            }
            Some(c) if is_word_char(c) => {
                let word = self.word_at(self.offset);
                format!("Write \"{word}\" instead of {word}.")
            }
            _ => "Each field is written \"name\": value.".into(),
        }
    }

    fn bad_value(&self, found: Option<char>) -> (usize, String, Option<String>) {
        let here = self.offset;
        match found {
            Some('\'') => {
                let inner = self.single_quoted(here);
                (
                    here,
                    format!(
                        "Strings must be in double quotes, not single quotes{}",
                        self.for_field()
                    ),
                    Some(format!("Write \"{inner}\" instead of '{inner}'.")),
                )
            }
            Some('/' | '#') => (here, COMMENTS.into(), Some(COMMENTS_HINT.into())),
            Some(',' | '}' | ']') => (
                here,
                format!("Missing value{}", self.for_field()),
                self.previous_token(here)
                    .map(|p| format!("Add a value after the ':' on line {}.", self.line_of(p))),
            ),
            Some(c) if is_word_char(c) => self.invalid_word(here),
            other => (
                here,
                format!(
                    "Expected a value{}{}",
                    self.for_field(),
                    found_suffix(other)
                ),
                Some(VALUE_HINT.into()),
            ),
        }
    }

    /// serde_json stops in the middle of a misspelt `true`/`false`/`null`.
    fn bad_literal(&self) -> (usize, String, Option<String>) {
        let bytes = self.text.as_bytes();
        let mut start = self.offset.min(bytes.len());
        while start > 0 && bytes[start - 1].is_ascii_alphanumeric() {
            start -= 1;
        }
        self.invalid_word(start)
    }

    fn invalid_word(&self, start: usize) -> (usize, String, Option<String>) {
        let word = self.word_at(start);
        let lower = word.to_ascii_lowercase();
        let suggestion = match lower.as_str() {
            "true" | "false" | "null" => format!("JSON literals are lowercase: write {lower}."),
            "none" | "nil" | "undefined" => "Write null.".into(),
            _ if lower.starts_with('t') => {
                format!("Did you mean true? Otherwise write \"{word}\" in double quotes.")
            }
            _ if lower.starts_with('f') => {
                format!("Did you mean false? Otherwise write \"{word}\" in double quotes.")
            }
            _ if lower.starts_with('n') => {
                format!("Did you mean null? Otherwise write \"{word}\" in double quotes.")
            }
            _ => VALUE_HINT.into(),
        };
        (
            start,
            format!("Invalid value '{word}'{}", self.for_field()),
            Some(suggestion),
        )
    }

    fn unclosed(&self) -> (usize, String, Option<String>) {
        let Some(innermost) = self.ctx.stack.last() else {
            return (self.offset, "Unexpected end of file".into(), None);
        };
        let what = match innermost.kind {
            Kind::Object => "object",
            Kind::Array => "list",
        };
        let path = self.ctx.container_path();
        let name = if path.is_empty() {
            String::new()
        } else {
            format!(" '{path}'")
        };
        let message = format!(
            "Unexpected end of file: the {what}{name} opened on line {} is not closed",
            self.line_of(innermost.open)
        );
        let closers: String = self
            .ctx
            .stack
            .iter()
            .rev()
            .map(|f| if f.kind == Kind::Object { '}' } else { ']' })
            .collect();
        let suggestion = if closers.len() <= 8 {
            format!("Add '{closers}' at the end of the file.")
        } else {
            format!(
                "{} brackets are still open; every '{{' needs a '}}' and every '[' a ']'.",
                closers.len()
            )
        };
        (self.offset, message, Some(suggestion))
    }

    fn eof_value(&self) -> (usize, String, Option<String>) {
        if self.text.trim().is_empty() {
            return (
                0,
                "File is empty".into(),
                Some(format!(
                    "A {} holds one JSON object: {{\"manifest_version\": 1, \"name\": ..., ...}}.",
                    crate::MANIFEST_FILE
                )),
            );
        }
        (
            self.offset,
            format!("Unexpected end of file: missing value{}", self.for_field()),
            Some("The file looks cut off; complete the value and close every '{' and '['.".into()),
        )
    }

    fn trailing_characters(&self, found: Option<char>) -> (usize, String, Option<String>) {
        let end_line = self
            .previous_token(self.offset)
            .map_or(1, |p| self.line_of(p));
        let suggestion = match found {
            Some(c @ ('}' | ']')) => {
                format!(
                    "Remove the extra '{c}': the manifest object already ends on line {end_line}."
                )
            }
            _ => format!(
                "Remove everything after the '}}' on line {end_line}; a {} holds exactly one JSON object.",
                crate::MANIFEST_FILE
            ),
        };
        (
            self.offset,
            format!(
                "Unexpected content after the end of the manifest{}",
                found_suffix(found)
            ),
            Some(suggestion),
        )
    }

    /// The run of identifier characters starting at `start`, at most 40.
    fn word_at(&self, start: usize) -> &str {
        let rest = self.text.get(start..).unwrap_or_default();
        let end = rest
            .char_indices()
            .find(|&(_, c)| !is_word_char(c))
            .map_or(rest.len(), |(i, _)| i);
        let end = floor_char_boundary(rest, end.min(40));
        &rest[..end]
    }

    /// The text between the single quote at `start` and the next one on the line.
    fn single_quoted(&self, start: usize) -> &str {
        let rest = self.text.get(start + 1..).unwrap_or_default();
        let line = rest.split('\n').next().unwrap_or_default();
        let inner = line.split('\'').next().unwrap_or_default();
        &inner[..floor_char_boundary(inner, inner.len().min(60))]
    }
}

const COMMENTS: &str = "Comments are not allowed in JSON";
const COMMENTS_HINT: &str =
    "Remove the comment; notes can go in 'description' or in a field whose name starts with 'x-'.";

const VALUE_HINT: &str =
    "A value is a string in double quotes, a number, true, false, null, an object or a list.";

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || c == '$'
}

fn found_suffix(found: Option<char>) -> String {
    match found {
        Some(c) if c.is_control() => format!(", found character U+{:04X}", c as u32),
        Some(c) => format!(", found '{c}'"),
        None => ", found end of file".into(),
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
