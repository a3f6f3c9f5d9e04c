//! What the mock remembers, behind one mutex, bounded.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::request::MockRequest;
pub(crate) use crate::request::now_ms;
use crate::seed::{FIRST_SEED_ID, seed_request};

/// The most requests the mock holds.
pub const MAX_REQUESTS: usize = 200_000;
/// The most notes the mock holds; further posts are refused.
pub const MAX_NOTES: usize = 10_000;

/// A note posted to the mock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MockNote {
    pub id: u64,
    pub request_id: u64,
    pub description: String,
    pub show_to_requester: bool,
    pub mark_first_response: bool,
    pub add_to_linked_requests: bool,
    pub added_ms: i64,
    /// The `input_data` key it came under: `note` (on premises) or `request_note` (cloud).
    pub key: String,
}

/// What the next note posts do instead of succeeding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum NoteFault {
    /// Answer this status (with the API's error body); nothing is stored.
    Status {
        #[serde(default = "internal_error")]
        status: u16,
    },
    /// Answer nothing until the hang limit or shutdown; nothing is stored.
    Hang,
    /// Store the note, then answer this status: a client retrying blindly posts twice.
    CreateThenStatus {
        #[serde(default = "internal_error")]
        status: u16,
    },
    /// Store the note, then answer nothing: the client times out after the write.
    CreateThenHang,
}

fn internal_error() -> u16 {
    500
}

/// Counters for tests and `GET /_mock/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Authenticated `POST .../notes` calls, failed ones included.
    pub note_posts: u64,
    pub notes: usize,
    pub requests: usize,
    pub pending_faults: usize,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) requests: BTreeMap<u64, MockRequest>,
    pub(crate) notes: Vec<MockNote>,
    pub(crate) next_note_id: u64,
    pub(crate) note_posts: u64,
    pub(crate) faults: VecDeque<NoteFault>,
}

pub(crate) struct Inner {
    pub(crate) state: Mutex<State>,
    pub(crate) authtokens: Vec<String>,
    pub(crate) oauth_tokens: Vec<String>,
    pub(crate) hang_for: Duration,
}

/// The fake ServiceDesk Plus's data and controls. Cloning shares them.
#[derive(Clone)]
pub struct MockSdp {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for MockSdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockSdp")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// How to make a [`MockSdp`].
#[derive(Default)]
pub struct Builder {
    authtokens: Vec<String>,
    oauth_tokens: Vec<String>,
    requests: Vec<MockRequest>,
    resolved: usize,
    hang_for: Option<Duration>,
}

impl Builder {
    /// Accept `authtoken: <key>` (on premises). With no key and no token
    /// configured, any credential or none is accepted.
    pub fn authtoken(mut self, key: impl Into<String>) -> Self {
        self.authtokens.push(key.into());
        self
    }

    /// Accept `Authorization: Zoho-oauthtoken <token>` (cloud).
    pub fn oauth_token(mut self, token: impl Into<String>) -> Self {
        self.oauth_tokens.push(token.into());
        self
    }

    pub fn request(mut self, request: MockRequest) -> Self {
        self.requests.push(request);
        self
    }

    /// Seed `n` resolved requests ([`MockSdp::seed_resolved`]).
    pub fn resolved(mut self, n: usize) -> Self {
        self.resolved = n;
        self
    }

    /// How long a hanging note post waits before answering 500 (default 10 min;
    /// shutdown ends it sooner).
    pub fn hang_for(mut self, d: Duration) -> Self {
        self.hang_for = Some(d);
        self
    }

    pub fn build(self) -> MockSdp {
        let mock = MockSdp {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    next_note_id: 1,
                    ..State::default()
                }),
                authtokens: self.authtokens,
                oauth_tokens: self.oauth_tokens,
                hang_for: self.hang_for.unwrap_or(Duration::from_secs(600)),
            }),
        };
        for r in self.requests {
            mock.insert(r);
        }
        if self.resolved > 0 {
            mock.seed_resolved(self.resolved);
        }
        mock
    }
}

impl Default for MockSdp {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl MockSdp {
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data; keep serving.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds or replaces a request; `false` when the mock is full.
    pub fn insert(&self, request: MockRequest) -> bool {
        let mut s = self.lock();
        if s.requests.len() >= MAX_REQUESTS && !s.requests.contains_key(&request.id) {
            return false;
        }
        s.requests.insert(request.id, request);
        true
    }

    pub fn request(&self, id: u64) -> Option<MockRequest> {
        self.lock().requests.get(&id).cloned()
    }

    /// Adds `n` resolved requests ([`crate::seed_request`]), resolved within
    /// the last 80 days (at most 10 minutes apart, the newest a step before
    /// now), with ids following the highest so far (from 100001). Returns
    /// the first and last id; fewer are added when the mock would overflow.
    pub fn seed_resolved(&self, n: usize) -> Option<(u64, u64)> {
        self.seed_resolved_at(n, now_ms())
    }

    /// [`MockSdp::seed_resolved`] relative to `now_ms`.
    pub fn seed_resolved_at(&self, n: usize, now_ms: i64) -> Option<(u64, u64)> {
        let mut s = self.lock();
        let n = n.min(MAX_REQUESTS.saturating_sub(s.requests.len()));
        if n == 0 {
            return None;
        }
        let first = s
            .requests
            .keys()
            .next_back()
            .map_or(FIRST_SEED_ID, |&max| (max + 1).max(FIRST_SEED_ID));
        const SPAN_MS: i64 = 80 * 24 * 3_600_000;
        let count = i64::try_from(n).unwrap_or(i64::MAX);
        let step = (SPAN_MS / count).clamp(1, 600_000);
        for i in 0..n {
            let i64_i = i64::try_from(i).unwrap_or(i64::MAX);
            let resolved = now_ms - (count - i64_i) * step;
            let id = first + i as u64;
            s.requests.insert(id, seed_request(i as u64, id, resolved));
        }
        Some((first, first + n as u64 - 1))
    }

    /// The next `count` note posts fail with `fault`, in order, after any queued before.
    pub fn fail_next_note_posts(&self, count: usize, fault: NoteFault) {
        let mut s = self.lock();
        let room = 1000usize.saturating_sub(s.faults.len());
        s.faults.extend(std::iter::repeat_n(fault, count.min(room)));
    }

    /// Every stored note, oldest first.
    pub fn notes(&self) -> Vec<MockNote> {
        self.lock().notes.clone()
    }

    pub fn notes_for(&self, request_id: u64) -> Vec<MockNote> {
        self.lock()
            .notes
            .iter()
            .filter(|n| n.request_id == request_id)
            .cloned()
            .collect()
    }

    /// Authenticated note posts received, failed ones included.
    pub fn note_posts(&self) -> u64 {
        self.lock().note_posts
    }

    pub fn stats(&self) -> Stats {
        let s = self.lock();
        Stats {
            note_posts: s.note_posts,
            notes: s.notes.len(),
            requests: s.requests.len(),
            pending_faults: s.faults.len(),
        }
    }

    /// Removes every stored note and the requests they were posted to, and
    /// returns the notes (oldest first), in one step: a long run
    /// (`csp-bench soak`) counts every note while the mock stays within
    /// [`MAX_NOTES`] and [`MAX_REQUESTS`]. Counters stay.
    pub fn take_notes(&self) -> Vec<MockNote> {
        let mut s = self.lock();
        let notes = std::mem::take(&mut s.notes);
        for n in &notes {
            s.requests.remove(&n.request_id);
        }
        notes
    }

    /// Forgets notes, queued faults and counters; requests stay.
    pub fn reset(&self) {
        let mut s = self.lock();
        s.notes.clear();
        s.faults.clear();
        s.note_posts = 0;
        s.next_note_id = 1;
    }
}
