//! An in-memory [`SessionStore`] for the actor's unit tests. SQLite's
//! worker thread and pool timeouts do not mix with tokio's paused clock
//! (time jumps while a query is in flight), and the actor needs no SQL:
//! only what it writes, kept so a test can read it back.

use async_trait::async_trait;
use csp_domain::{SessionId, UserId};
use csp_store::{Error, MessageRecord, NewMessage, NewSession, SessionRecord, SessionStore};
use std::collections::HashMap;
use std::sync::Mutex;
use time::OffsetDateTime;

#[derive(Default)]
pub(crate) struct MemoryStore {
    sessions: Mutex<HashMap<SessionId, (SessionRecord, Vec<MessageRecord>)>>,
}

impl MemoryStore {
    fn with<T>(
        &self,
        id: SessionId,
        f: impl FnOnce(&mut SessionRecord, &mut Vec<MessageRecord>) -> T,
    ) -> Result<T, Error> {
        let mut sessions = self.sessions.lock().expect("lock");
        let (record, messages) = sessions
            .get_mut(&id)
            .ok_or_else(|| Error::NotFound(format!("session {id}")))?;
        Ok(f(record, messages))
    }

    fn listed(&self, keep: impl Fn(&SessionRecord) -> bool) -> Vec<SessionRecord> {
        let sessions = self.sessions.lock().expect("lock");
        let mut out: Vec<_> = sessions
            .values()
            .map(|(r, _)| r)
            .filter(|r| keep(r))
            .cloned()
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.last_active_at));
        out
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(&self, new: NewSession) -> Result<SessionRecord, Error> {
        let now = OffsetDateTime::now_utc();
        let record = SessionRecord::new(new.clone(), now);
        let mut sessions = self.sessions.lock().expect("lock");
        if sessions.contains_key(&new.session_id) {
            return Err(Error::Conflict(format!("session {}", new.session_id)));
        }
        sessions.insert(new.session_id, (record.clone(), Vec::new()));
        Ok(record)
    }

    async fn ping(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn set_session_status(&self, id: SessionId, status: &str) -> Result<(), Error> {
        self.with(id, |r, _| r.status = status.to_owned())
    }

    async fn set_session_state(
        &self,
        id: SessionId,
        status: &str,
        is_resumable: bool,
        ended_reason: Option<&str>,
    ) -> Result<(), Error> {
        self.with(id, |r, _| {
            r.status = status.to_owned();
            r.is_resumable = is_resumable;
            r.ended_reason = ended_reason.map(str::to_owned);
        })
    }

    async fn record_resume(&self, id: SessionId) -> Result<(), Error> {
        self.with(id, |r, _| {
            r.resume_count += 1;
            r.status = "preparing".into();
            r.ended_reason = None;
        })
    }

    async fn set_agent_session(&self, id: SessionId, agent: uuid::Uuid) -> Result<(), Error> {
        self.with(id, |r, _| r.agent_session_id = Some(agent))
    }

    async fn session(&self, id: SessionId) -> Result<Option<SessionRecord>, Error> {
        Ok(self.with(id, |r, _| r.clone()).ok())
    }

    async fn sessions_of(&self, user: UserId) -> Result<Vec<SessionRecord>, Error> {
        Ok(self.listed(|r| r.user_id == user))
    }

    async fn all_sessions(&self, limit: u32) -> Result<Vec<SessionRecord>, Error> {
        let mut all = self.listed(|_| true);
        all.truncate(limit as usize);
        Ok(all)
    }

    async fn append_message(&self, msg: NewMessage) -> Result<(), Error> {
        self.with(msg.session_id, |r, messages| {
            if messages.iter().any(|m| m.seq == msg.seq) {
                return;
            }
            r.last_seq = r.last_seq.max(msg.seq);
            r.message_count += 1;
            messages.push(MessageRecord {
                session_id: msg.session_id,
                seq: msg.seq,
                kind: msg.kind,
                body: msg.body,
                created_at: OffsetDateTime::now_utc(),
            });
            messages.sort_by_key(|m| m.seq);
        })
    }

    async fn set_total_cost(&self, id: SessionId, total_cost_usd: f64) -> Result<(), Error> {
        self.with(id, |r, _| r.total_cost_usd = total_cost_usd)
    }

    async fn set_title(&self, id: SessionId, title: &str) -> Result<(), Error> {
        self.with(id, |r, _| r.title = Some(title.to_owned()))
    }

    async fn messages(&self, id: SessionId) -> Result<(Vec<MessageRecord>, u64), Error> {
        self.with(id, |r, messages| (messages.clone(), r.last_seq))
    }
}
