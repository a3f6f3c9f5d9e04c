//! One session's bounded run of latest events, read through cursors: the
//! machinery both [`crate::InProcessBus`] and [`crate::FanoutBus`] deliver
//! from.
//!
//! The ring is both the replay window and the live feed: a reader is a
//! cursor into it plus a wake-up signal. Because there is no second channel
//! to join, replay and live cannot overlap or leave a hole between them, and
//! a slow reader catches up from the ring for as long as the ring still
//! holds what it missed; after that it gets `Lagged`, never a silent gap.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use csp_domain::SessionEvent;
use futures::StreamExt;
use tokio::sync::watch;

use crate::{Cursor, Error, EventStream, Step};

/// At most this many events are copied out of a ring per lock, so that a
/// reader replaying a long window does not hold up the appender.
const BATCH: usize = 64;

pub(crate) struct Ring {
    capacity: usize,
    state: Mutex<State>,
    /// Bumped after every append (and at the end), so that waiting readers
    /// look again.
    appended: watch::Sender<()>,
}

struct State {
    events: VecDeque<Arc<SessionEvent>>,
    /// Highest seq ever appended (or the seq the ring starts after), kept
    /// when the events are evicted, so that a retried publish is still
    /// recognised.
    last_seq: u64,
    /// Set once nothing will be appended any more: readers get it after
    /// the events they have not read yet.
    end: Option<Error>,
}

impl Ring {
    /// An empty ring whose first event will be `last_seq + 1`.
    pub(crate) fn new(capacity: usize, last_seq: u64) -> Self {
        Self {
            capacity,
            state: Mutex::new(State {
                events: VecDeque::new(),
                last_seq,
                end: None,
            }),
            appended: watch::Sender::new(()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the ring consistent (each
        // mutation is a push, a pop or a clear), so carry on.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends `event` unless its seq was already appended (a retry);
    /// returns whether it was appended.
    pub(crate) fn append(&self, event: SessionEvent) -> bool {
        {
            let mut state = self.state();
            if event.seq <= state.last_seq || state.end.is_some() {
                return false;
            }
            state.last_seq = event.seq;
            state.events.push_back(Arc::new(event));
            if state.events.len() > self.capacity {
                state.events.pop_front();
            }
        }
        self.appended.send_replace(());
        true
    }

    /// Like [`Ring::append`], for a borrowed event: it is cloned only when it
    /// is new.
    pub(crate) fn append_ref(&self, event: &SessionEvent) -> bool {
        if event.seq <= self.state().last_seq {
            return false;
        }
        self.append(event.clone())
    }

    /// The highest seq appended (or that the ring started after): what
    /// [`Ring::append`] takes a lower or equal seq to be a retry of, even
    /// once the event itself was dropped.
    pub(crate) fn last_seq(&self) -> u64 {
        self.state().last_seq
    }

    /// Drops the retained events; `last_seq` stays, so readers see the hole.
    pub(crate) fn clear(&self) {
        self.state().events.clear();
    }

    /// Ends the ring: every reader gets `error` (see [`delivered_end`]) once
    /// it has read what is retained, then its stream ends.
    pub(crate) fn end(&self, error: Error) {
        {
            let mut state = self.state();
            if state.end.is_some() {
                return;
            }
            state.end = Some(error);
        }
        self.appended.send_replace(());
    }

    pub(crate) fn has_ended(&self) -> bool {
        self.state().end.is_some()
    }

    /// Whether a reader starting after `after_seq` would miss nothing: the
    /// ring still holds `after_seq + 1`, or has not got that far yet.
    pub(crate) fn serves(&self, after_seq: u64) -> bool {
        let state = self.state();
        after_seq >= state.last_seq
            || state
                .events
                .front()
                .is_some_and(|first| first.seq <= after_seq + 1)
    }

    /// The ring's events after `cursor`, then every later append, as a
    /// stream that holds `guard` until it is dropped.
    pub(crate) fn stream<G: Send + 'static>(
        self: &Arc<Self>,
        cursor: Cursor,
        guard: G,
    ) -> EventStream {
        let reader = Reader {
            appended: self.appended.subscribe(),
            ring: Arc::clone(self),
            _guard: guard,
            cursor,
            pending: VecDeque::new(),
            done: false,
        };
        futures::stream::unfold(reader, |mut reader| async move {
            let item = reader.next().await?;
            Some((item, reader))
        })
        .boxed()
    }
}

/// The error a reader at `cursor` gets for a ring that ended with `end`.
/// A hole is restated from the reader's own position (what it asked for or
/// last received), so `Gap` and `Lagged` keep meaning what they mean for a
/// direct subscriber; any other error is passed on as it is.
fn delivered_end(cursor: &Cursor, end: &Error) -> Error {
    match end {
        Error::Gap {
            first_available, ..
        }
        | Error::Lagged {
            first_available, ..
        } => cursor.hole(*first_available),
        other => other.duplicate(),
    }
}

struct Reader<G> {
    ring: Arc<Ring>,
    appended: watch::Receiver<()>,
    /// Whatever the reader's owner needs kept alive while it reads.
    _guard: G,
    cursor: Cursor,
    /// Events copied out of the ring, not yet yielded.
    pending: VecDeque<Arc<SessionEvent>>,
    done: bool,
}

impl<G> Reader<G> {
    async fn next(&mut self) -> Option<Result<SessionEvent, Error>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(SessionEvent::clone(&event)));
            }
            if self.done {
                return None;
            }
            // Marking the signal seen before reading the ring means an append
            // that lands after the read wakes `changed()` below.
            self.appended.borrow_and_update();
            if let Err(error) = self.fill() {
                self.done = true;
                return Some(Err(error));
            }
            if self.pending.is_empty() && self.appended.changed().await.is_err() {
                // Unreachable while `ring`, which owns the sender, is held;
                // end rather than spin if it ever happens.
                return None;
            }
        }
    }

    /// Copies the next run of events after the cursor out of the ring; `Err`
    /// is a hole, or the ring's end once everything before it was read.
    fn fill(&mut self) -> Result<(), Error> {
        let state = self.ring.state();
        let start = state
            .events
            .partition_point(|event| event.seq <= self.cursor.last);
        for event in state.events.range(start..).take(BATCH) {
            match self.cursor.step(event.seq) {
                Ok(Step::Deliver) => self.pending.push_back(Arc::clone(event)),
                Ok(Step::Skip) => {}
                // Deliver what came before the hole first, then report it.
                Err(hole) if self.pending.is_empty() => return Err(hole),
                Err(_) => break,
            }
        }
        match &state.end {
            // The end is set after the last append, under this lock: with
            // nothing left to copy, the reader has had every event.
            Some(end) if self.pending.is_empty() => Err(delivered_end(&self.cursor, end)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use csp_domain::{Event, SessionId};

    fn event(session: SessionId, seq: u64) -> SessionEvent {
        SessionEvent {
            session_id: session,
            seq,
            event: Event::Delta {
                text: seq.to_string(),
            },
            trace: None,
        }
    }

    async fn seqs(stream: &mut EventStream, n: usize) -> Vec<u64> {
        let mut got = Vec::new();
        for _ in 0..n {
            got.push(stream.next().await.unwrap().unwrap().seq);
        }
        got
    }

    #[test]
    fn serves_what_it_retains_and_what_it_has_not_reached() {
        let session = SessionId::new();
        let ring = Ring::new(3, 10);
        assert!(ring.serves(10) && ring.serves(50));
        assert!(!ring.serves(9));
        for seq in 11..=15 {
            assert!(ring.append(event(session, seq)));
        }
        // Retains 13..=15.
        assert!(ring.serves(12) && ring.serves(14) && ring.serves(15));
        assert!(!ring.serves(11));
        assert!(!ring.append(event(session, 14)));
    }

    #[tokio::test]
    async fn readers_get_the_events_then_the_end_restated_from_their_position() {
        let session = SessionId::new();
        let ring = Arc::new(Ring::new(8, 0));
        let mut caught_up = ring.stream(Cursor::new(session, 0), ());
        let mut at_the_edge = ring.stream(Cursor::new(session, 3), ());
        for seq in 1..=3 {
            ring.append(event(session, seq));
        }
        assert_eq!(seqs(&mut caught_up, 3).await, [1, 2, 3]);
        ring.end(Error::Lagged {
            session,
            last_delivered: 3,
            first_available: 9,
        });
        assert!(!ring.append(event(session, 4)), "appended after the end");

        let lagged = caught_up.next().await.unwrap().unwrap_err();
        assert!(
            matches!(
                lagged,
                Error::Lagged {
                    last_delivered: 3,
                    first_available: 9,
                    ..
                }
            ),
            "{lagged:?}"
        );
        assert!(caught_up.next().await.is_none());
        // Received nothing yet: for this reader it is a gap after 3.
        let gap = at_the_edge.next().await.unwrap().unwrap_err();
        assert!(
            matches!(
                gap,
                Error::Gap {
                    after_seq: 3,
                    first_available: 9,
                    ..
                }
            ),
            "{gap:?}"
        );
        assert!(at_the_edge.next().await.is_none());
    }

    #[tokio::test]
    async fn other_end_errors_reach_every_reader_after_the_events() {
        let session = SessionId::new();
        let ring = Arc::new(Ring::new(8, 0));
        let mut readers = [
            ring.stream(Cursor::new(session, 0), ()),
            ring.stream(Cursor::new(session, 1), ()),
        ];
        ring.append(event(session, 1));
        ring.append(event(session, 2));
        ring.end(Error::Subscribe {
            session,
            source: "connection reset".into(),
        });
        assert_eq!(seqs(&mut readers[0], 2).await, [1, 2]);
        assert_eq!(seqs(&mut readers[1], 1).await, [2]);
        for reader in &mut readers {
            let err = reader.next().await.unwrap().unwrap_err();
            assert!(matches!(err, Error::Subscribe { .. }), "{err:?}");
            assert!(err.to_string().contains("connection reset"), "{err}");
            assert!(reader.next().await.is_none());
        }
    }
}
