//! The process's last log lines, in memory, for a page that shows them
//! (the tickets worker publishes its own beside its heartbeat).
//!
//! A [`LogRing`] is a `MakeWriter` for the text format's layer (`text_layer`,
//! ANSI off): each event is formatted exactly as the process logs it in
//! text — one line, control characters escaped — and then kept with its
//! level, secrets redacted ([`csp_redact::redact_text`]) and cut to a byte
//! budget. The ring holds a bounded number of lines, the oldest dropped
//! first, so its memory is bounded whatever the process logs. Trace lines
//! are not kept.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// What a line that was cut ends with.
const CUT: &str = " …[cut]";

/// One kept line: its level and its text, without the newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingLine {
    pub level: Level,
    pub text: String,
}

/// The last `capacity` log lines of the process, each at most `line_bytes`.
/// Cloning shares the ring.
#[derive(Clone)]
pub struct LogRing {
    inner: Arc<Inner>,
}

struct Inner {
    capacity: usize,
    line_bytes: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    lines: VecDeque<RingLine>,
    /// Lines ever kept: a reader that saw this count has seen every line.
    written: u64,
}

impl std::fmt::Debug for LogRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogRing")
            .field("capacity", &self.inner.capacity)
            .field("line_bytes", &self.inner.line_bytes)
            .finish_non_exhaustive()
    }
}

impl LogRing {
    /// A ring of `capacity` lines (at least 1), each cut to `line_bytes`
    /// (at least room for the cut marker).
    pub fn new(capacity: usize, line_bytes: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                capacity: capacity.max(1),
                line_bytes: line_bytes.max(CUT.len() + 4),
                state: Mutex::default(),
            }),
        }
    }

    /// Keeps `text` (one formatted line) at `level`: redacted, cut to the
    /// budget, the oldest line dropped when the ring is full.
    pub fn push(&self, level: Level, text: &str) {
        let text = text.trim_end_matches(['\n', '\r']);
        let text = cut(&csp_redact::redact_text(text), self.inner.line_bytes);
        let mut state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.lines.len() == self.inner.capacity {
            state.lines.pop_front();
        }
        state.lines.push_back(RingLine { level, text });
        state.written += 1;
    }

    /// The kept lines, oldest first.
    pub fn lines(&self) -> Vec<RingLine> {
        let state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        state.lines.iter().cloned().collect()
    }

    /// How many lines were ever kept: when it has not moved, nothing new
    /// was logged.
    pub fn written(&self) -> u64 {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .written
    }
}

/// `text` within `budget` bytes, cut on a character boundary and marked.
fn cut(text: &str, budget: usize) -> String {
    if text.len() <= budget {
        return text.to_owned();
    }
    let mut end = budget - CUT.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT}", &text[..end])
}

/// Collects one formatted event and keeps it in the ring when dropped (the
/// formatter writes an event in one or more writes, then drops its writer).
pub struct LineWriter {
    to: Option<(LogRing, Level)>,
    buf: Vec<u8>,
}

impl std::io::Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.to.is_some() {
            self.buf.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if let Some((ring, level)) = self.to.take()
            && !self.buf.is_empty()
        {
            ring.push(level, &String::from_utf8_lossy(&self.buf));
        }
    }
}

impl<'a> MakeWriter<'a> for LogRing {
    type Writer = LineWriter;

    /// Without the event's level nothing is kept (the fmt layer always
    /// asks with it, [`MakeWriter::make_writer_for`]).
    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            to: None,
            buf: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        let keep = *meta.level() != Level::TRACE;
        LineWriter {
            to: keep.then(|| (self.clone(), *meta.level())),
            buf: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `ring` keeps of the events `f` logs, through the same layer
    /// `init_tracing_with` installs.
    fn logged(ring: &LogRing, f: impl FnOnce()) {
        use tracing_subscriber::prelude::*;
        let subscriber = tracing_subscriber::registry()
            .with(crate::text_layer(ring.clone()).with_ansi(false))
            .with(tracing_subscriber::filter::LevelFilter::TRACE);
        tracing::subscriber::with_default(subscriber, f);
    }

    #[test]
    fn lines_are_the_text_format_with_their_level_oldest_first() {
        let ring = LogRing::new(10, 1024);
        logged(&ring, || {
            tracing::info!(job_id = "j-1", "job done");
            tracing::warn!("slow \x1b[31msource\nINFO forged");
            tracing::error!(error = "boom", "job failed");
            tracing::debug!("detail");
            tracing::trace!("not kept");
        });
        let lines = ring.lines();
        let levels: Vec<Level> = lines.iter().map(|l| l.level).collect();
        assert_eq!(
            levels,
            [Level::INFO, Level::WARN, Level::ERROR, Level::DEBUG]
        );
        assert!(lines[0].text.contains(" INFO "), "{:?}", lines[0]);
        assert!(
            lines[0].text.contains("job done job_id=\"j-1\"")
                || lines[0].text.contains("job done job_id=j-1"),
            "{:?}",
            lines[0]
        );
        assert!(!lines[0].text.ends_with('\n'));
        // Escaped as the process's own text log escapes it: one line, no
        // terminal escape.
        assert!(!lines[1].text.contains('\n') && !lines[1].text.contains('\x1b'));
        assert!(lines[1].text.contains("31msource"), "{:?}", lines[1]);
        assert!(lines[1].text.ends_with("INFO forged"), "{:?}", lines[1]);
        assert_eq!(ring.written(), 4);
    }

    #[test]
    fn the_ring_keeps_the_last_lines_only() {
        let ring = LogRing::new(3, 1024);
        for i in 0..5 {
            ring.push(Level::INFO, &format!("line {i}\n"));
        }
        let texts: Vec<String> = ring.lines().into_iter().map(|l| l.text).collect();
        assert_eq!(texts, ["line 2", "line 3", "line 4"]);
        assert_eq!(ring.written(), 5);
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let ring = LogRing::new(3, 40);
        ring.push(Level::INFO, &"é".repeat(100));
        let text = &ring.lines()[0].text;
        assert!(text.len() <= 40, "{} bytes", text.len());
        assert!(text.ends_with(CUT), "{text}");
        assert!(text.starts_with("éé"));
        ring.push(Level::INFO, "short");
        assert_eq!(ring.lines()[1].text, "short");
    }

    #[test]
    fn secrets_are_redacted_before_they_are_kept() {
        let ring = LogRing::new(3, 1024);
        logged(&ring, || {
            tracing::warn!(url = "postgres://csp:hunter2@db/csp", "connecting");
            tracing::info!("token sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789 used");
        });
        let all: String = ring.lines().into_iter().map(|l| l.text).collect();
        assert!(!all.contains("hunter2"), "{all}");
        assert!(
            !all.contains("abcdefghijklmnopqrstuvwxyz0123456789"),
            "{all}"
        );
    }
}
