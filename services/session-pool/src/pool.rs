//! The pre-warmed pool and the table of live sessions.
//!
//! A warm slot is a CLI process that already answered `initialize` under a
//! fresh `--session-id`; acquiring it makes that id the user's session. The
//! refill task keeps `prewarm_pool_size` slots filled, one spawn at a time
//! (two cores: a burst of spawns would slow the sessions already running),
//! and never lets warm + active exceed `max_sessions`.

use crate::metrics as m;
use crate::session::{Actor, Handle, Outcome, Start};
use csp_agent::{Agent, AgentEvent, AgentEvents, PermissionHook, SpawnSpec};
use csp_bus::EventBus;
use csp_cache::Cache;
use csp_domain::{ErrorCode, SessionId, UserId};
use csp_store::{NewSession, SessionStore};
use futures::FutureExt;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long a route to this replica lives without being renewed. Sessions
/// end well before (duration limit); ended sessions delete their route.
const ROUTE_TTL: Duration = Duration::from_secs(24 * 3600);

pub(crate) struct Settings {
    pub(crate) prewarm_pool_size: usize,
    pub(crate) max_sessions: usize,
    pub(crate) data_dir: PathBuf,
    pub(crate) agent: csp_agent::Config,
    pub(crate) hook: Arc<dyn PermissionHook>,
    pub(crate) model_label: String,
    pub(crate) advertise_addr: String,
}

struct Warm {
    id: SessionId,
    agent: Agent,
    events: AgentEvents,
}

pub(crate) struct Pool {
    settings: Settings,
    pub(crate) bus: Arc<dyn EventBus>,
    pub(crate) store: Arc<dyn SessionStore>,
    cache: Arc<dyn Cache>,
    warm: Mutex<VecDeque<Warm>>,
    sessions: Mutex<HashMap<SessionId, Handle>>,
    refill: Notify,
    created: Instant,
    /// Milliseconds from `created` to the first filled warm slot; 0 = not yet.
    started_ms: std::sync::atomic::AtomicU64,
    draining: AtomicBool,
    shutdown: CancellationToken,
    tasks: Mutex<JoinSet<()>>,
}

impl Pool {
    pub(crate) fn new(
        settings: Settings,
        bus: Arc<dyn EventBus>,
        store: Arc<dyn SessionStore>,
        cache: Arc<dyn Cache>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            settings,
            bus,
            store,
            cache,
            warm: Mutex::new(VecDeque::new()),
            sessions: Mutex::new(HashMap::new()),
            refill: Notify::new(),
            created: Instant::now(),
            started_ms: std::sync::atomic::AtomicU64::new(0),
            draining: AtomicBool::new(false),
            shutdown,
            tasks: Mutex::new(JoinSet::new()),
        })
    }

    /// Ready warm slots right now.
    pub(crate) async fn depth(&self) -> usize {
        self.warm.lock().await.len()
    }

    pub(crate) fn max_sessions(&self) -> usize {
        self.settings.max_sessions
    }

    pub(crate) async fn active(&self) -> usize {
        self.sessions.lock().await.len()
    }

    pub(crate) async fn handle(&self, id: SessionId) -> Option<Handle> {
        self.sessions.lock().await.get(&id).cloned()
    }

    fn dirs(&self, id: SessionId) -> SpawnSpec {
        let root = self.settings.data_dir.join("sessions").join(id.to_string());
        let home = root.join("home");
        SpawnSpec {
            session_id: id.0,
            workdir: root.join("work"),
            config_dir: home.join(".claude"),
            home,
            resume: false,
        }
    }

    /// Spawns one agent and waits for its `initialize` reply.
    async fn spawn_agent(
        self: &Arc<Self>,
        id: SessionId,
        start: &'static str,
    ) -> Result<(Agent, AgentEvents), csp_agent::Error> {
        let spec = self.dirs(id);
        for dir in [&spec.workdir, &spec.home] {
            std::fs::create_dir_all(dir).map_err(|source| csp_agent::Error::Prepare {
                path: dir.clone(),
                source,
            })?;
        }
        let t0 = Instant::now();
        let result = Agent::spawn(&self.settings.agent, spec, self.settings.hook.clone()).await;
        match &result {
            Ok(_) => metrics::histogram!(m::SESSION_INIT_DURATION, "start" => start)
                .record(t0.elapsed().as_secs_f64()),
            Err(_) => metrics::counter!(m::AGENT_START_FAILURES, "start" => start).increment(1),
        }
        result
    }

    /// Keeps the warm pool filled until shutdown. Failures back off from 1 s
    /// to 30 s so a broken CLI or key does not spin the CPU.
    pub(crate) async fn refill_loop(self: Arc<Self>) {
        let mut backoff = Duration::from_secs(1);
        loop {
            if self.shutdown.is_cancelled() {
                return;
            }
            let want = {
                let warm = self.warm.lock().await.len();
                let active = self.sessions.lock().await.len();
                warm < self.settings.prewarm_pool_size && warm + active < self.settings.max_sessions
            };
            if want {
                let id = SessionId::new();
                let spawned = tokio::select! {
                    r = self.spawn_agent(id, "prewarm") => r,
                    _ = self.shutdown.cancelled() => return,
                };
                match spawned {
                    Ok((agent, events)) => {
                        backoff = Duration::from_secs(1);
                        let mut warm = self.warm.lock().await;
                        warm.push_back(Warm { id, agent, events });
                        metrics::gauge!(m::PREWARM_POOL_DEPTH).set(warm.len() as f64);
                        let ms = self.created.elapsed().as_millis().max(1) as u64;
                        let _ = self.started_ms.compare_exchange(
                            0,
                            ms,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        );
                        tracing::debug!(session.id = %id, depth = warm.len(), "warm slot filled");
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in_s = backoff.as_secs(), "pre-warm failed");
                        let _ = std::fs::remove_dir_all(
                            self.settings.data_dir.join("sessions").join(id.to_string()),
                        );
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = self.shutdown.cancelled() => return,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        continue;
                    }
                }
            }
            tokio::select! {
                _ = self.refill.notified() => {}
                // Also re-check periodically: a warm process may have died.
                _ = tokio::time::sleep(Duration::from_secs(5)) => self.evict_dead_warm().await,
                _ = self.shutdown.cancelled() => return,
            }
        }
    }

    async fn evict_dead_warm(&self) {
        let mut warm = self.warm.lock().await;
        let before = warm.len();
        let mut alive = VecDeque::with_capacity(before);
        while let Some(mut w) = warm.pop_front() {
            if is_alive(&mut w.events) {
                alive.push_back(w);
            } else {
                tracing::warn!(session.id = %w.id, "a warm agent process died; replacing it");
            }
        }
        *warm = alive;
        metrics::gauge!(m::PREWARM_POOL_DEPTH).set(warm.len() as f64);
    }

    /// Milliseconds from start until the first warm slot was filled, once
    /// it was (the startup probe). Without pre-warming there is nothing to
    /// wait for.
    pub(crate) fn started_after_ms(&self) -> Option<u64> {
        if self.settings.prewarm_pool_size == 0 {
            return Some(0);
        }
        match self.started_ms.load(Ordering::Acquire) {
            0 => None,
            ms => Some(ms),
        }
    }

    /// Binds a session to `user`: a warm slot if one is alive, else a cold start.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        user: UserId,
    ) -> Result<(SessionId, bool), ErrorCode> {
        if self.draining.load(Ordering::Acquire) {
            return Err(ErrorCode::Unavailable);
        }
        let mut sessions = self.sessions.lock().await;
        if sessions.len() >= self.settings.max_sessions {
            return Err(ErrorCode::AtCapacity);
        }
        let warm = {
            let mut warm = self.warm.lock().await;
            let mut found = None;
            while let Some(mut w) = warm.pop_front() {
                if is_alive(&mut w.events) {
                    found = Some(w);
                    break;
                }
                tracing::warn!(session.id = %w.id, "skipping a dead warm agent");
            }
            metrics::gauge!(m::PREWARM_POOL_DEPTH).set(warm.len() as f64);
            found
        };
        let is_warm = warm.is_some();
        let id = warm.as_ref().map(|w| w.id).unwrap_or_default();
        let created = self
            .store
            .create_session(NewSession {
                session_id: id,
                user_id: user,
                status: if is_warm { "active" } else { "preparing" }.into(),
            })
            .await;
        if let Err(e) = created {
            tracing::error!(error = %e, "could not record a new session");
            if let Some(w) = warm {
                self.warm.lock().await.push_front(w);
            }
            return Err(ErrorCode::Unavailable);
        }
        if let Err(e) = self
            .cache
            .set_route(id, &self.settings.advertise_addr, ROUTE_TTL)
            .await
        {
            tracing::error!(error = %e, "could not record the session's route");
            let _ = self.store.set_session_status(id, "failed").await;
            if let Some(w) = warm {
                self.warm.lock().await.push_front(w);
            }
            return Err(ErrorCode::Unavailable);
        }

        let start = match warm {
            Some(w) => Start::Warm(w.agent, w.events),
            None => {
                let pool = self.clone();
                Start::Cold(async move { pool.spawn_agent(id, "cold").await }.boxed())
            }
        };
        let (actor, handle, rx) = Actor::new(
            id,
            user,
            self.bus.clone(),
            self.store.clone(),
            self.settings.model_label.clone(),
            self.shutdown.child_token(),
        );
        sessions.insert(id, handle);
        metrics::gauge!(m::ACTIVE_SESSIONS).set(sessions.len() as f64);
        drop(sessions);

        let pool = self.clone();
        self.tasks.lock().await.spawn(async move {
            let outcome = actor.run(start, rx).await;
            pool.retire(id, outcome).await;
        });
        self.refill.notify_one();
        tracing::info!(session.id = %id, user.id = %user, warm = is_warm, "session acquired");
        Ok((id, is_warm))
    }

    async fn retire(&self, id: SessionId, outcome: Outcome) {
        let mut sessions = self.sessions.lock().await;
        sessions.remove(&id);
        metrics::gauge!(m::ACTIVE_SESSIONS).set(sessions.len() as f64);
        drop(sessions);
        if let Err(e) = self.cache.remove_route(id).await {
            tracing::warn!(session.id = %id, error = %e, "could not remove the session's route");
        }
        tracing::info!(session.id = %id, ?outcome, "session ended");
        self.refill.notify_one();
    }

    /// Stops taking sessions, ends every agent and waits for the actors.
    pub(crate) async fn drain(&self, grace: Duration) {
        self.draining.store(true, Ordering::Release);
        self.shutdown.cancel();
        let warm: Vec<Warm> = self.warm.lock().await.drain(..).collect();
        metrics::gauge!(m::PREWARM_POOL_DEPTH).set(0.0);
        for w in warm {
            w.agent.shutdown(Duration::from_millis(500)).await;
        }
        let mut tasks = std::mem::take(&mut *self.tasks.lock().await);
        let _ =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    }
}

/// A warm process that exited shows it as a pending `Exited` event; a live
/// one has nothing to say before its first user message.
fn is_alive(events: &mut AgentEvents) -> bool {
    !matches!(
        events.recv().now_or_never(),
        Some(None) | Some(Some(AgentEvent::Exited { .. }))
    )
}
