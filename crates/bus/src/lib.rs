//! The session event bus: carries every `SessionEvent` from the session-pool
//! that produced it to each gateway that relays it to a browser.
//!
//! Owns: the [`EventBus`] trait and its two adapters, [`InProcessBus`] (for
//! `csp dev`, one process) and [`NatsBus`] (JetStream, for distributed
//! mode); [`FanoutBus`], which shares one upstream subscription per session
//! among a process's subscribers (a gateway's sockets); and the replay
//! contract a reconnecting browser relies on:
//! `subscribe(session, after_seq)` yields every retained event with
//! `seq > after_seq` exactly once, in order, then the live ones, and says so
//! with [`Error::Gap`] or [`Error::Lagged`] when it cannot.
//!
//! Beside it, the [`Queue`] trait (module [`queue`]): a durable,
//! at-least-once work queue with consumer groups, for jobs that must
//! survive their consumer's restart (audit events to the policy service),
//! with [`NatsQueue`] and [`InProcessQueue`]; and its one consumer loop,
//! [`run_worker`] (module [`worker`]): a group's deliveries decoded and
//! handled with bounded concurrency, retried with exponential backoff up
//! to a maximum number of deliveries, then kept with their last error on a
//! dead-letter topic, handed back uncounted when a handler defers them,
//! kept alive past the ack deadline while a handler runs, and a graceful
//! stop that settles what is in flight.
//!
//! Must never: be the record of a conversation (the store is; the bus only
//! retains a bounded window to bridge reconnects), assign or rewrite sequence
//! numbers (the session-pool does), end a subscription with a silent gap, or
//! ack a queued message that was neither handled nor kept as a dead letter.

mod error;
pub mod fanout;
pub mod inprocess;
pub mod metrics;
pub mod nats;
pub mod queue;
mod ring;
pub mod worker;

use async_trait::async_trait;
use csp_domain::{SessionEvent, SessionId};

pub use error::Error;
pub use fanout::FanoutBus;
pub use inprocess::InProcessBus;
pub use nats::NatsBus;
pub use queue::{Deliveries, Delivery, InProcessQueue, NatsQueue, Queue, push_retrying};
pub use worker::{
    Backoff, DeadLetter, Handler, HandlerError, JobContext, WorkerConfig, run_worker,
};

/// One session's events, replayed then live. It ends only after an error
/// (a gap, a lag, a broken connection) has been yielded.
pub type EventStream = futures::stream::BoxStream<'static, Result<SessionEvent, Error>>;

/// Publish/subscribe for session events, with a bounded replay window per
/// session.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes one event. Callers publish each session's events
    /// sequentially in seq order. Publishing an event again (a retry) is
    /// harmless: subscribers never see it twice.
    async fn publish(&self, event: &SessionEvent) -> Result<(), Error>;

    /// Replays retained events with `seq > after_seq`, then continues live;
    /// in order, no duplicates.
    ///
    /// If the retained window no longer holds `after_seq + 1` (and later
    /// events exist), the stream yields [`Error::Gap`] and ends, so the
    /// caller can resync from the store. A subscriber that has already
    /// received events and then falls behind the retained window gets
    /// [`Error::Lagged`] instead. Either way the caller resyncs from the
    /// store and subscribes again after the last seq it holds.
    async fn subscribe(&self, session: SessionId, after_seq: u64) -> Result<EventStream, Error>;

    /// Checks that the bus can take events; readiness probes call this.
    async fn ping(&self) -> Result<(), Error>;

    /// The highest seq published for the session that the bus still
    /// retains, 0 when none. A session whose process restarts (resume)
    /// continues numbering after this, so its new events are never mistaken
    /// for retries (publishing dedups on (session, seq)).
    async fn last_seq(&self, session: SessionId) -> Result<u64, Error>;
}

/// Tracks what a subscription has delivered, so that replay overlap is
/// dropped and a hole is reported instead of skipped. Every adapter uses it,
/// so they agree on which error a hole becomes.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    session: SessionId,
    after_seq: u64,
    last: u64,
    delivered_any: bool,
}

/// What a subscription should do with the next event it sees.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Already delivered (or asked to be skipped): drop it.
    Skip,
    /// The next event in order: deliver it.
    Deliver,
}

impl Cursor {
    fn new(session: SessionId, after_seq: u64) -> Self {
        Self {
            session,
            after_seq,
            last: after_seq,
            delivered_any: false,
        }
    }

    /// Classifies the event with `seq`; `Err` is the hole it would leave.
    fn step(&mut self, seq: u64) -> Result<Step, Error> {
        if seq <= self.last {
            return Ok(Step::Skip);
        }
        if seq != self.last + 1 {
            return Err(self.hole(seq));
        }
        self.last = seq;
        self.delivered_any = true;
        Ok(Step::Deliver)
    }

    /// The error for a subscription whose next available event is `first_available`.
    fn hole(&self, first_available: u64) -> Error {
        if self.delivered_any {
            Error::Lagged {
                session: self.session,
                last_delivered: self.last,
                first_available,
            }
        } else {
            Error::Gap {
                session: self.session,
                after_seq: self.after_seq,
                first_available,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_skips_overlap_delivers_in_order_and_reports_holes() {
        let session = SessionId::new();
        let mut cursor = Cursor::new(session, 3);
        assert_eq!(cursor.step(2).unwrap(), Step::Skip);
        assert_eq!(cursor.step(3).unwrap(), Step::Skip);
        assert_eq!(cursor.step(4).unwrap(), Step::Deliver);
        assert_eq!(cursor.step(4).unwrap(), Step::Skip);
        assert!(matches!(
            cursor.step(7),
            Err(Error::Lagged {
                last_delivered: 4,
                first_available: 7,
                ..
            })
        ));

        let mut fresh = Cursor::new(session, 3);
        assert!(matches!(
            fresh.step(9),
            Err(Error::Gap {
                after_seq: 3,
                first_available: 9,
                ..
            })
        ));
    }
}
