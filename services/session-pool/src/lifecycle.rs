//! When a session must warn, end, restart or go idle. Pure: the actor feeds
//! it the time, whether a turn is in flight, the process tree's memory and
//! whether anyone is attached, and carries out what it answers. Time is
//! injected, so every rule is unit-tested without waiting.

use std::time::{Duration, Instant};

/// Limits of one session (per agent process run).
#[derive(Debug, Clone)]
pub struct Limits {
    /// `SESSION_MAX_DURATION_SECONDS`: a process run ends after this.
    pub max_duration: Duration,
    /// `SESSION_MAX_RSS_BYTES`: over this (whole process tree) the process
    /// is replaced after the current turn.
    pub max_rss_bytes: u64,
    /// `SESSION_IDLE_TIMEOUT_SECONDS`: with no browser attached for this
    /// long and no turn in flight, the process stops (resumable).
    pub idle_timeout: Duration,
    /// How long a turn in flight may run on once the duration limit is hit.
    pub turn_grace: Duration,
    /// A turn with no agent output (and no tool running) for this long is
    /// stopped: the model API stalled.
    pub stall_timeout: Duration,
    /// How often limits are checked.
    pub check_every: Duration,
    /// `CSP_TOOL_OUTPUT_MAX_BYTES`: a tool's output (and input) is stored
    /// and sent cut to this many bytes, with a marker naming its full size.
    pub tool_output_max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_duration: Duration::from_secs(4 * 3600),
            max_rss_bytes: 4 << 30,
            idle_timeout: Duration::from_secs(30 * 60),
            turn_grace: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(180),
            check_every: Duration::from_secs(5),
            tool_output_max_bytes: crate::output::DEFAULT_TOOL_OUTPUT_MAX_BYTES,
        }
    }
}

/// The warning goes out at this fraction of `max_duration`.
const WARN_AT: f64 = 0.9;

/// What the actor observed at one check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observation {
    pub(crate) now: Instant,
    pub(crate) in_flight: bool,
    /// A tool is running: silence is the tool's, not the model's.
    pub(crate) tool_running: bool,
    /// Last output of the agent (or start of the turn).
    pub(crate) last_output: Instant,
    pub(crate) rss_bytes: u64,
    /// At least one browser is attached.
    pub(crate) attended: bool,
    /// Messages wait in the session's queue.
    pub(crate) queued: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Tell the user how many minutes are left.
    WarnDuration { minutes_left: u64 },
    /// End the session for good (duration limit).
    EndDuration,
    /// Replace the process after the current turn (memory).
    Restart,
    /// Stop the process, keep the session resumable.
    Suspend,
    /// Interrupt the turn: the model API went silent.
    InterruptStalled,
}

/// Per-process-run state of the rules.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    limits: Limits,
    started: Instant,
    warned: bool,
    unattended_since: Option<Instant>,
    restart_flagged: bool,
    stall_reported: bool,
    /// Turns started by this process. Memory grows with use: a process
    /// that has served nothing is never restarted (with a limit below the
    /// CLI's idle footprint it would otherwise restart in a loop).
    turns: u64,
}

impl Lifecycle {
    pub(crate) fn new(limits: Limits, started: Instant) -> Self {
        Self {
            limits,
            started,
            warned: false,
            unattended_since: None,
            restart_flagged: false,
            stall_reported: false,
            turns: 0,
        }
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// When the duration limit is (or was) reached.
    pub(crate) fn deadline(&self) -> Instant {
        self.started + self.limits.max_duration
    }

    /// A new turn started: a stall may be reported again.
    pub(crate) fn turn_started(&mut self) {
        self.stall_reported = false;
        self.turns += 1;
    }

    /// Whether the process waits for its turn to end to be replaced.
    #[cfg(test)]
    pub(crate) fn restart_pending(&self) -> bool {
        self.restart_flagged
    }

    /// What to do now. Called every `check_every` and after each turn.
    pub(crate) fn check(&mut self, o: Observation) -> Option<Action> {
        let elapsed = o.now.saturating_duration_since(self.started);
        let max = self.limits.max_duration;

        if elapsed >= max {
            // An idle session ends at once; a turn in flight gets
            // `turn_grace` to finish (the actor enforces that deadline).
            let grace_over = elapsed >= max + self.limits.turn_grace;
            return (!o.in_flight || grace_over).then_some(Action::EndDuration);
        }
        if !self.warned && elapsed.as_secs_f64() >= max.as_secs_f64() * WARN_AT {
            self.warned = true;
            let left = max - elapsed;
            return Some(Action::WarnDuration {
                minutes_left: left.as_secs().div_ceil(60).max(1),
            });
        }
        if o.in_flight
            && !o.tool_running
            && !self.stall_reported
            && o.now.saturating_duration_since(o.last_output) >= self.limits.stall_timeout
        {
            self.stall_reported = true;
            return Some(Action::InterruptStalled);
        }
        if o.rss_bytes > self.limits.max_rss_bytes {
            self.restart_flagged = true;
        }
        if self.restart_flagged && !o.in_flight && self.turns > 0 {
            return Some(Action::Restart);
        }
        if o.attended {
            self.unattended_since = None;
        } else {
            let since = *self.unattended_since.get_or_insert(o.now);
            if !o.in_flight
                && !o.queued
                && o.now.saturating_duration_since(since) >= self.limits.idle_timeout
            {
                return Some(Action::Suspend);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn limits() -> Limits {
        Limits {
            max_duration: 240 * MIN,
            max_rss_bytes: 100 << 20,
            idle_timeout: 30 * MIN,
            turn_grace: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(120),
            check_every: Duration::from_secs(5),
            ..Limits::default()
        }
    }

    fn obs(now: Instant) -> Observation {
        Observation {
            now,
            in_flight: false,
            tool_running: false,
            last_output: now,
            rss_bytes: 10 << 20,
            attended: true,
            queued: false,
        }
    }

    #[test]
    fn warns_once_at_ninety_percent_with_minutes_left() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(limits(), t0);
        assert_eq!(l.check(obs(t0 + 215 * MIN)), None);
        // 3 h 36 min of 4 h: the seed's "Session will end in 24 minutes".
        assert_eq!(
            l.check(obs(t0 + 216 * MIN)),
            Some(Action::WarnDuration { minutes_left: 24 })
        );
        assert_eq!(l.check(obs(t0 + 217 * MIN)), None, "warned once");
    }

    #[test]
    fn idle_session_ends_at_the_limit() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(limits(), t0);
        l.check(obs(t0 + 216 * MIN));
        assert_eq!(l.check(obs(t0 + 240 * MIN)), Some(Action::EndDuration));
    }

    #[test]
    fn turn_in_flight_gets_thirty_seconds_at_the_limit() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(limits(), t0);
        l.check(obs(t0 + 216 * MIN));
        let busy = |at| Observation {
            in_flight: true,
            tool_running: true,
            ..obs(at)
        };
        assert_eq!(l.check(busy(t0 + 240 * MIN)), None);
        assert_eq!(
            l.check(busy(t0 + 240 * MIN + Duration::from_secs(29))),
            None
        );
        assert_eq!(
            l.check(busy(t0 + 240 * MIN + Duration::from_secs(30))),
            Some(Action::EndDuration)
        );
        // The turn finishing inside the grace ends the session right away.
        let mut l = Lifecycle::new(limits(), t0);
        l.check(obs(t0 + 216 * MIN));
        assert_eq!(l.check(busy(t0 + 240 * MIN)), None);
        assert_eq!(
            l.check(obs(t0 + 240 * MIN + Duration::from_secs(3))),
            Some(Action::EndDuration)
        );
    }

    #[test]
    fn memory_over_the_limit_restarts_after_the_turn() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(limits(), t0);
        l.turn_started();
        let fat = |at, in_flight| Observation {
            in_flight,
            tool_running: in_flight,
            rss_bytes: 101 << 20,
            ..obs(at)
        };
        assert_eq!(l.check(fat(t0 + MIN, true)), None);
        assert!(l.restart_pending());
        // Memory may drop before the turn ends; the flag stays.
        assert_eq!(
            l.check(Observation {
                in_flight: false,
                ..obs(t0 + 2 * MIN)
            }),
            Some(Action::Restart)
        );
        // A process that has served nothing is left alone, then restarted
        // after its first turn.
        let mut fresh = Lifecycle::new(limits(), t0);
        assert_eq!(fresh.check(fat(t0 + MIN, false)), None);
        fresh.turn_started();
        assert_eq!(fresh.check(fat(t0 + 2 * MIN, true)), None);
        assert_eq!(fresh.check(fat(t0 + 3 * MIN, false)), Some(Action::Restart));
    }

    #[test]
    fn unattended_idle_session_suspends_after_the_idle_timeout() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(limits(), t0);
        let away = |at| Observation {
            attended: false,
            ..obs(at)
        };
        assert_eq!(l.check(away(t0 + MIN)), None);
        assert_eq!(l.check(away(t0 + 30 * MIN)), None);
        assert_eq!(l.check(away(t0 + 31 * MIN)), Some(Action::Suspend));
        // Coming back resets the clock.
        let mut l = Lifecycle::new(limits(), t0);
        l.check(away(t0 + MIN));
        l.check(obs(t0 + 20 * MIN));
        assert_eq!(l.check(away(t0 + 32 * MIN)), None);
        assert_eq!(l.check(away(t0 + 62 * MIN)), Some(Action::Suspend));
        // Never while a turn runs or messages wait.
        let mut l = Lifecycle::new(limits(), t0);
        l.check(away(t0));
        let busy = Observation {
            in_flight: true,
            tool_running: true,
            ..away(t0 + 40 * MIN)
        };
        assert_eq!(l.check(busy), None);
        let queued = Observation {
            queued: true,
            ..away(t0 + 41 * MIN)
        };
        assert_eq!(l.check(queued), None);
    }

    #[test]
    fn silent_model_is_interrupted_once_per_turn_but_silent_tools_are_not() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(limits(), t0);
        let silent = |at, tool_running| Observation {
            in_flight: true,
            tool_running,
            last_output: t0,
            ..obs(at)
        };
        assert_eq!(l.check(silent(t0 + MIN, false)), None);
        assert_eq!(l.check(silent(t0 + 3 * MIN, true)), None, "a tool runs");
        assert_eq!(
            l.check(silent(t0 + 3 * MIN, false)),
            Some(Action::InterruptStalled)
        );
        assert_eq!(l.check(silent(t0 + 4 * MIN, false)), None, "reported once");
        l.turn_started();
        assert_eq!(
            l.check(silent(t0 + 5 * MIN, false)),
            Some(Action::InterruptStalled)
        );
    }
}
