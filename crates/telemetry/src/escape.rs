//! One event, one line: the text log's field formatter escapes control
//! characters, so text a user typed (a login name, a message, a file name)
//! can neither start a forged log line with a newline nor restyle the
//! terminal with an ANSI escape. The JSON format needs none of this: JSON
//! strings escape control characters already.

use std::fmt::{self, Write as _};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::{FormatFields, FormattedFields};

/// [`DefaultFields`] with every control character of the message and the
/// field values escaped (`\n`, `\r`, `\t`, `\u{1b}`…).
#[derive(Debug, Default)]
pub(crate) struct EscapedFields {
    inner: DefaultFields,
}

impl EscapedFields {
    /// Formats `fields` the default way, without ANSI styling (a field
    /// name in italics would be an escape sequence of ours), then escapes.
    fn render<R: RecordFields>(&self, fields: R) -> Result<String, fmt::Error> {
        let mut raw = String::new();
        self.inner.format_fields(Writer::new(&mut raw), fields)?;
        Ok(escape_control(&raw))
    }
}

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        writer.write_str(&self.render(fields)?)
    }

    /// Fields recorded on a span after it was created (`span.record`) go
    /// through here, not `format_fields`: escaped the same way.
    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let more = self.render(fields)?;
        if more.is_empty() {
            return Ok(());
        }
        if !current.fields.is_empty() {
            current.fields.push(' ');
        }
        current.fields.push_str(&more);
        Ok(())
    }
}

/// `s` with control characters (C0, DEL, C1) and the Unicode line and
/// paragraph separators written as Rust escapes; everything else as is.
/// Borrowed when nothing needs escaping would be nicer, but log lines are
/// short and this runs only for events that pass the filter.
pub fn escape_control(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What the text format writes for the events `f` logs.
    fn logged(ansi: bool, f: impl FnOnce()) -> String {
        use tracing_subscriber::prelude::*;
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::registry()
            .with(crate::text_layer(move || out.clone()).with_ansi(ansi));
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_newline_in_a_field_cannot_forge_a_log_line() {
        let name = "x\nINFO forged";
        let text = logged(false, || {
            tracing::warn!(username = %name, "login refused");
        });
        assert_eq!(text.matches('\n').count(), 1, "one line: {text:?}");
        assert!(text.ends_with('\n'));
        assert!(text.contains(r"username=x\nINFO forged"), "{text:?}");
    }

    #[test]
    fn ansi_escapes_and_newlines_in_the_message_and_spans_are_escaped() {
        let name = "\u{1b}[31mred\r\nWARN forged\u{2028}";
        let text = logged(false, || {
            let span = tracing::info_span!("policy.Login", username = %name, extra = tracing::field::Empty);
            let _e = span.enter();
            span.record("extra", tracing::field::display("a\nb"));
            tracing::info!("login refused for {name}");
        });
        assert_eq!(text.matches('\n').count(), 1, "one line: {text:?}");
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(!text.contains('\r'), "{text:?}");
        assert!(
            text.contains(r"\u{1b}[31mred\r\nWARN forged\u{2028}"),
            "{text:?}"
        );
        assert!(text.contains(r"extra=a\nb"), "{text:?}");
    }

    #[test]
    fn with_colours_only_our_own_styling_is_an_escape_sequence() {
        let text = logged(true, || {
            tracing::error!(username = %"\u{1b}[2J", "refused");
        });
        assert_eq!(text.matches('\n').count(), 1, "{text:?}");
        assert!(text.contains(r"\u{1b}[2J"), "{text:?}");
        assert!(!text.contains("\u{1b}[2J"), "{text:?}");
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(
            escape_control("héllo wörld \"q\" \\"),
            "héllo wörld \"q\" \\"
        );
        assert_eq!(escape_control("a\tb\u{7f}\u{85}"), r"a\tb\u{7f}\u{85}");
    }
}
