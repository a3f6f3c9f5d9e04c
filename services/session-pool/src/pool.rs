//! The pre-warmed pool and the table of live sessions.
//!
//! A warm slot is a CLI process that already answered `initialize` under a
//! fresh `--session-id`; acquiring it makes that id the user's session. The
//! refill task keeps `prewarm_pool_size` slots filled, one spawn at a time
//! (two cores: a burst of spawns would slow the sessions already running),
//! and never lets warm + active exceed `max_sessions`.
//!
//! Every process starts with the MCP servers of the plugin set of the
//! moment, and a warm slot remembers which set that was: when the set
//! changes, warm slots of the old one are replaced (acquire never hands one
//! out), while running sessions keep the servers they started with. Until
//! the first set is known nothing is pre-warmed, since those processes would
//! lack the plugins.
//!
//! Capacity follows people: a session nobody is attached to keeps its
//! process only while nobody else needs the slot. When a start (acquire, or
//! a resume that needs a process) finds `max_sessions` taken, or the user's
//! `max_sessions_per_user`, the least recently detached idle session (no
//! socket, no turn in flight, nothing queued; among the user's own for the
//! per-user limit) is suspended as by the idle timeout, before anyone is
//! refused (see [`Pool::room_for`]).
//!
//! The pool depends on the session actor, never the other way round: it
//! gives each actor the shared [`Context`] and a handle pair, keeps the
//! [`Handle`] in its table, and learns how the actor ended from the
//! [`Outcome`] its task returns (then the route, the gate binding and the
//! memory series go). What actors report back otherwise goes through the
//! context's sinks (`Usage`, `ModelKey`), which the pool reads.

use crate::context::Context;
use crate::egress::Egress;
use crate::gate::Bindings;
use crate::governor::Governor;
use crate::lifecycle::Limits;
use crate::metrics::{self as m, Usage};
use crate::model_check::{ModelCheck, ModelKey};
use crate::plugins::PluginSet;
use crate::process::{Output, Reason, Request, Started};
use crate::session::{Actor, Continue, Handle, Outcome, Start, Stop};
use crate::spawner::AgentSpawner;
use csp_agent::AgentEvent;
use csp_breaker::Breaker;
use csp_bus::EventBus;
use csp_cache::Cache;
use csp_domain::{ErrorCode, Role, SessionId, SessionStatus, StatusReason, TenantId, UserId};
use csp_store::{NewSession, SessionStore};
use futures::FutureExt;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, MutexGuard, Notify, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long a route to this replica lives without being renewed. Sessions
/// end well before (duration limit); ended sessions delete their route.
const ROUTE_TTL: Duration = Duration::from_secs(24 * 3600);

/// A session no browser has been seen to leave since it was (re)started
/// may be suspended for room only after this long: its browser may still be
/// on its way (the gateway records presence just after `Acquire`/`Resume`
/// returns), or it was started by a client that never attaches.
const UNSEEN_GRACE: Duration = Duration::from_secs(60);

/// How long making room may take in all (a suspended process gets its
/// stdin closed and up to 5 s to exit).
const MAKE_ROOM_WITHIN: Duration = Duration::from_secs(20);

/// The most events a browser may have seen beyond what the store and the
/// bus hold (see [`Pool::resume`]): far above one answer's deltas.
const MAX_UNSTORED_EVENTS: u64 = 1_000_000;

/// How long readiness waits for a session to say whether it is idle.
const READY_ASK: Duration = Duration::from_millis(200);

pub(crate) struct Settings {
    pub(crate) prewarm_pool_size: usize,
    pub(crate) max_sessions: usize,
    pub(crate) max_sessions_per_user: usize,
    pub(crate) data_dir: PathBuf,
    pub(crate) agent: csp_agent::Config,
    /// The model and egress proxies every agent goes through.
    pub(crate) egress: Arc<Egress>,
    /// The model API settings csp holds (never given to agents).
    pub(crate) model_env: Vec<(String, String)>,
    pub(crate) governor: Arc<dyn Governor>,
    pub(crate) audit: Arc<dyn csp_bus::Queue>,
    pub(crate) model_label: String,
    pub(crate) advertise_addr: String,
    pub(crate) limits: Limits,
    /// The plugin set new processes start with; `None` until the plugins
    /// service has told.
    pub(crate) plugins: watch::Sender<Option<Arc<PluginSet>>>,
    /// Issue 12: secrets redacted from every event (see `output`).
    pub(crate) known_secrets: csp_redact::KnownSecrets,
}

struct Warm {
    id: SessionId,
    started: Started,
    /// The plugin set it was started with.
    fingerprint: String,
}

/// A live session in the pool's table.
struct Live {
    handle: Handle,
    /// When it was started or last reattached (Unix ms): a detach recorded
    /// before this is an earlier browser's, not the current one's.
    since_ms: u64,
    /// Being suspended to make room; nobody else picks it.
    evicting: bool,
}

type Table = HashMap<SessionId, Live>;

/// Why a session had to make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Every slot of the replica is taken (`max_sessions`).
    Capacity,
    /// The user holds `max_sessions_per_user`.
    UserCap,
}

impl Need {
    fn as_str(self) -> &'static str {
        match self {
            Need::Capacity => "capacity",
            Need::UserCap => "user_cap",
        }
    }

    fn refusal(self) -> ErrorCode {
        match self {
            Need::Capacity => ErrorCode::AtCapacity,
            Need::UserCap => ErrorCode::TooManySessions,
        }
    }
}

/// A session that might make room, as the table showed it.
struct Candidate {
    id: SessionId,
    handle: Handle,
    since_ms: u64,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How many processes the pool keeps and runs.
struct Capacity {
    prewarm_pool_size: usize,
    max_sessions: usize,
    max_sessions_per_user: usize,
}

pub(crate) struct Pool {
    capacity: Capacity,
    /// How gateways reach this replica, recorded as each session's route.
    advertise_addr: String,
    /// Starts every agent process (warm slots here, the rest in the actors).
    spawner: Arc<AgentSpawner>,
    /// What every session actor is given.
    ctx: Arc<Context>,
    pub(crate) bus: Arc<dyn EventBus>,
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) cache: Arc<dyn Cache>,
    warm: Mutex<VecDeque<Warm>>,
    sessions: Mutex<Table>,
    /// Bumped whenever a session leaves the table.
    retired: watch::Sender<u64>,
    refill: Notify,
    created: Instant,
    /// Milliseconds from `created` to the first filled warm slot; 0 = not yet.
    started_ms: std::sync::atomic::AtomicU64,
    draining: AtomicBool,
    /// Cancelled when shutdown begins: no refill, actors finish their turn.
    shutdown: CancellationToken,
    /// Cancelled when the shutdown grace is over: actors stop at once.
    kill: CancellationToken,
    tasks: Mutex<JoinSet<()>>,
    pub(crate) breaker: Arc<Breaker>,
    key: Arc<ModelKey>,
    /// Memory and spend of the sessions, rendered at scrape time.
    usage: Arc<Usage>,
    /// Who each running session belongs to, for the permission gate.
    bindings: Bindings,
}

impl Pool {
    pub(crate) fn new(
        settings: Settings,
        bus: Arc<dyn EventBus>,
        store: Arc<dyn SessionStore>,
        cache: Arc<dyn Cache>,
        breaker: Arc<Breaker>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let key = Arc::new(ModelKey::new(ModelCheck::from_agent_env(
            &settings.model_env,
        )));
        let usage = Arc::new(Usage::default());
        let bindings = Bindings::default();
        let spawner = Arc::new(AgentSpawner {
            agent: settings.agent,
            data_dir: settings.data_dir,
            egress: settings.egress,
            governor: settings.governor.clone(),
            bindings: bindings.clone(),
            plugins: settings.plugins,
        });
        let ctx = Arc::new(Context {
            spawner: spawner.clone(),
            store: store.clone(),
            bus: bus.clone(),
            cache: cache.clone(),
            breaker: breaker.clone(),
            governor: settings.governor,
            bindings: bindings.clone(),
            audit: settings.audit,
            usage: usage.clone(),
            model_key: key.clone(),
            limits: settings.limits,
            known_secrets: settings.known_secrets,
            model_label: settings.model_label,
        });
        Arc::new(Self {
            capacity: Capacity {
                prewarm_pool_size: settings.prewarm_pool_size,
                max_sessions: settings.max_sessions,
                max_sessions_per_user: settings.max_sessions_per_user,
            },
            advertise_addr: settings.advertise_addr,
            spawner,
            ctx,
            bus,
            store,
            cache,
            warm: Mutex::new(VecDeque::new()),
            sessions: Mutex::new(HashMap::new()),
            retired: watch::Sender::new(0),
            refill: Notify::new(),
            created: Instant::now(),
            started_ms: std::sync::atomic::AtomicU64::new(0),
            draining: AtomicBool::new(false),
            shutdown,
            kill: CancellationToken::new(),
            tasks: Mutex::new(JoinSet::new()),
            breaker,
            key,
            usage,
            bindings,
        })
    }

    /// Where the plugins follower publishes new sets.
    pub(crate) fn plugin_sets(&self) -> watch::Sender<Option<Arc<PluginSet>>> {
        self.spawner.plugins.clone()
    }

    fn current_fingerprint(&self) -> Option<String> {
        self.spawner
            .plugins
            .borrow()
            .as_ref()
            .map(|set| set.fingerprint.clone())
    }

    /// Replaces nothing itself: takes the warm slots built for another set
    /// out of the pool and ends them in the background.
    async fn drop_stale_warm(&self, fingerprint: &str) {
        let stale: VecDeque<Warm> = {
            let mut warm = self.warm.lock().await;
            let (keep, stale) = std::mem::take(&mut *warm)
                .into_iter()
                .partition(|w| w.fingerprint == fingerprint);
            *warm = keep;
            metrics::gauge!(m::PREWARM_POOL_DEPTH).set(warm.len() as f64);
            stale
        };
        for w in stale {
            self.retire_stale(w);
        }
    }

    /// Ends a warm process of an old plugin set; it never had a user, so its
    /// directories go with it.
    fn retire_stale(&self, w: Warm) {
        metrics::counter!(m::PREWARM_REBUILDS).increment(1);
        tracing::info!(session.id = %w.id, "replacing a warm agent process: the plugin set changed");
        let root = self.spawner.session_root(w.id);
        tokio::spawn(async move {
            w.started.process.shutdown(Duration::from_millis(500)).await;
            if let Err(e) = std::fs::remove_dir_all(&root) {
                tracing::debug!(error = %e, "could not remove a replaced warm process's directory");
            }
        });
    }

    /// Decides every tool call and admits every turn.
    /// Whom each running session serves (the tool door reads it).
    pub(crate) fn bindings(&self) -> Bindings {
        self.bindings.clone()
    }

    pub(crate) fn governor(&self) -> &Arc<dyn Governor> {
        &self.ctx.governor
    }

    /// Issue 12: what `output` redacts from every event.
    pub(crate) fn known_secrets(&self) -> &csp_redact::KnownSecrets {
        &self.ctx.known_secrets
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.ctx.limits
    }

    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// True when the model API rejected the configured key.
    pub(crate) fn key_rejected(&self) -> bool {
        self.key.rejected()
    }

    /// What the scrape renders of the sessions (memory, spend).
    pub(crate) fn usage(&self) -> &Usage {
        &self.usage
    }

    /// Ready warm slots right now.
    pub(crate) async fn depth(&self) -> usize {
        self.warm.lock().await.len()
    }

    pub(crate) fn max_sessions(&self) -> usize {
        self.capacity.max_sessions
    }

    pub(crate) async fn active(&self) -> usize {
        self.sessions.lock().await.len()
    }

    pub(crate) fn max_sessions_per_user(&self) -> usize {
        self.capacity.max_sessions_per_user
    }

    /// The proxies agents reach the model and the network through.
    pub(crate) fn egress(&self) -> &Egress {
        &self.spawner.egress
    }

    pub(crate) async fn handle(&self, id: SessionId) -> Option<Handle> {
        self.sessions
            .lock()
            .await
            .get(&id)
            .map(|l| l.handle.clone())
    }

    /// Returns the locked table once it has room for one more session of
    /// `user`, suspending idle sessions nobody is attached to for it: the
    /// user's own least recently detached one while the user holds
    /// `max_sessions_per_user`, then anyone's while every slot is taken.
    /// Refuses (`too_many_sessions`, `at_capacity`) only when no session
    /// can yield: every one is attached, busy, or just started.
    async fn room_for<'a>(
        &'a self,
        user: UserId,
        mut sessions: MutexGuard<'a, Table>,
    ) -> Result<MutexGuard<'a, Table>, ErrorCode> {
        let deadline = Instant::now() + MAKE_ROOM_WITHIN;
        loop {
            if self.draining() {
                return Err(ErrorCode::ServerShuttingDown);
            }
            let mine = sessions.values().filter(|l| l.handle.user == user).count();
            let need = if mine >= self.capacity.max_sessions_per_user {
                Need::UserCap
            } else if sessions.len() >= self.capacity.max_sessions {
                Need::Capacity
            } else {
                return Ok(sessions);
            };
            let candidates: Vec<Candidate> = sessions
                .iter()
                .filter(|(_, l)| !l.evicting && (need == Need::Capacity || l.handle.user == user))
                .map(|(id, l)| Candidate {
                    id: *id,
                    handle: l.handle.clone(),
                    since_ms: l.since_ms,
                })
                .collect();
            drop(sessions);
            if Instant::now() >= deadline || !self.suspend_one(candidates, need).await {
                return Err(need.refusal());
            }
            sessions = self.sessions.lock().await;
        }
    }

    /// The candidates nobody is attached to, least recently detached first.
    /// The gateway records when a session's last socket closed; a session
    /// with no such record since it was (re)started counts from its start,
    /// once [`UNSEEN_GRACE`] has passed. Presence the cache cannot tell is
    /// not "away" (as for the idle timeout).
    async fn detached(&self, candidates: Vec<Candidate>) -> Vec<(u64, Candidate)> {
        let now = unix_ms();
        let looks = candidates.into_iter().map(|c| async move {
            match self.cache.presence(c.id).await {
                Ok(0) => {}
                Ok(_) => return None,
                Err(e) => {
                    tracing::debug!(session.id = %c.id, error = %e, "presence lookup failed");
                    return None;
                }
            }
            let left = match self.cache.get(&csp_cache::detached_key(c.id)).await {
                Ok(v) => v.and_then(|v| v.parse::<u64>().ok()),
                Err(e) => {
                    tracing::debug!(session.id = %c.id, error = %e, "detach lookup failed");
                    None
                }
            };
            let at = match left {
                Some(at) if at >= c.since_ms => at,
                _ if now.saturating_sub(c.since_ms) >= UNSEEN_GRACE.as_millis() as u64 => {
                    c.since_ms
                }
                _ => return None,
            };
            Some((at, c))
        });
        let mut found: Vec<(u64, Candidate)> = futures::future::join_all(looks)
            .await
            .into_iter()
            .flatten()
            .collect();
        found.sort_by_key(|(at, _)| *at);
        found
    }

    /// Suspends the least recently detached idle candidate and waits until
    /// it has left the table; false when none is idle.
    async fn suspend_one(&self, candidates: Vec<Candidate>, need: Need) -> bool {
        for (left_ms, c) in self.detached(candidates).await {
            {
                // Claimed once: another start may be making room too, and
                // a session reattached since the look is not detached.
                let mut sessions = self.sessions.lock().await;
                match sessions.get_mut(&c.id) {
                    Some(l) if !l.evicting && l.since_ms == c.since_ms => l.evicting = true,
                    _ => continue,
                }
            }
            if c.handle.yield_process(true).await {
                metrics::counter!(m::SESSIONS_EVICTED, "reason" => need.as_str()).increment(1);
                tracing::info!(
                    session.id = %c.id,
                    user.id = %c.handle.user,
                    reason = need.as_str(),
                    detached_ms = unix_ms().saturating_sub(left_ms),
                    "suspending an idle session to make room"
                );
                self.wait_retired(c.id).await;
                return true;
            }
            // Busy (a turn, queued messages) or still starting.
            if let Some(l) = self.sessions.lock().await.get_mut(&c.id) {
                l.evicting = false;
            }
        }
        false
    }

    /// Waits (bounded) until the session has left the table.
    async fn wait_retired(&self, id: SessionId) {
        let mut retired = self.retired.subscribe();
        let gone = async {
            loop {
                if !self.sessions.lock().await.contains_key(&id) {
                    return;
                }
                if retired.changed().await.is_err() {
                    return;
                }
            }
        };
        if tokio::time::timeout(MAKE_ROOM_WITHIN, gone).await.is_err() {
            tracing::warn!(session.id = %id, "a suspended session is slow to stop");
        }
    }

    /// Whether a start could get a slot now by suspending an idle session
    /// nobody is attached to (readiness: such a pool still serves new users).
    /// Whether this replica runs `id`'s process now.
    pub(crate) async fn runs(&self, id: SessionId) -> bool {
        self.sessions.lock().await.contains_key(&id)
    }

    pub(crate) async fn could_make_room(&self) -> bool {
        let candidates: Vec<Candidate> = {
            let sessions = self.sessions.lock().await;
            if sessions.values().any(|l| l.evicting) {
                return true;
            }
            sessions
                .iter()
                .map(|(id, l)| Candidate {
                    id: *id,
                    handle: l.handle.clone(),
                    since_ms: l.since_ms,
                })
                .collect()
        };
        for (_, c) in self.detached(candidates).await {
            // A probe must answer in time; an actor that cannot say at once
            // is busy anyway.
            let asked = tokio::time::timeout(READY_ASK, c.handle.yield_process(false));
            if asked.await.unwrap_or(false) {
                return true;
            }
        }
        false
    }

    /// Keeps the warm pool filled until shutdown. Failures back off from 1 s
    /// to 30 s so a broken CLI or key does not spin the CPU.
    pub(crate) async fn refill_loop(self: Arc<Self>) {
        let mut backoff = Duration::from_secs(1);
        let mut sets = self.spawner.plugins.subscribe();
        loop {
            if self.shutdown.is_cancelled() {
                return;
            }
            let Some(set) = sets.borrow_and_update().clone() else {
                tokio::select! {
                    _ = sets.changed() => {}
                    _ = self.shutdown.cancelled() => return,
                }
                continue;
            };
            self.drop_stale_warm(&set.fingerprint).await;
            let want = {
                let warm = self.warm.lock().await.len();
                let active = self.sessions.lock().await.len();
                warm < self.capacity.prewarm_pool_size && warm + active < self.capacity.max_sessions
            };
            if want && !self.key.ok().await {
                // A warm slot with a rejected key would serve nothing but
                // errors: the attempt fails like a failed spawn.
                metrics::counter!(m::AGENT_START_FAILURES, "start" => "prewarm").increment(1);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = self.shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
            if want {
                let id = SessionId::new();
                let request = Request {
                    session: id,
                    agent_session: id.0,
                    reason: Reason::Prewarm,
                };
                let spawned = tokio::select! {
                    r = self.spawner.spawn_with(request, &set) => r,
                    _ = self.shutdown.cancelled() => return,
                };
                match spawned {
                    Ok(started) => {
                        backoff = Duration::from_secs(1);
                        let sessions = self.sessions.lock().await;
                        let mut warm = self.warm.lock().await;
                        if warm.len() + sessions.len() >= self.capacity.max_sessions {
                            // The slot went to a session while this process
                            // started (a start that made room by suspending
                            // one): never run more than MAX_SESSIONS.
                            drop((warm, sessions));
                            let root = self.spawner.session_root(id);
                            tokio::spawn(async move {
                                started.process.shutdown(Duration::from_millis(500)).await;
                                let _ = std::fs::remove_dir_all(&root);
                            });
                            continue;
                        }
                        drop(sessions);
                        warm.push_back(Warm {
                            id,
                            started,
                            fingerprint: set.fingerprint.clone(),
                        });
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
                        let _ = std::fs::remove_dir_all(self.spawner.session_root(id));
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
                // An agent's key was refused: check it before pre-warming on.
                _ = self.key.suspected() => {}
                // A new plugin set: the loop's next round replaces the warm slots.
                _ = sets.changed() => {}
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
            if is_alive(&mut *w.started.output) {
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
        if self.capacity.prewarm_pool_size == 0 {
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
        role: Option<Role>,
        tenant: Option<TenantId>,
    ) -> Result<(SessionId, bool), ErrorCode> {
        if self.draining() {
            return Err(ErrorCode::ServerShuttingDown);
        }
        let mut sessions = self.room_for(user, self.sessions.lock().await).await?;
        let current = self.current_fingerprint();
        let warm = {
            let mut warm = self.warm.lock().await;
            let mut found = None;
            while let Some(mut w) = warm.pop_front() {
                if current.as_deref() != Some(w.fingerprint.as_str()) {
                    // Built for an old plugin set: the session would lack
                    // the new one's servers (or keep a removed one's).
                    self.retire_stale(w);
                    continue;
                }
                if is_alive(&mut *w.started.output) {
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
                status: if is_warm {
                    SessionStatus::Ready
                } else {
                    SessionStatus::Preparing
                }
                .store_text()
                .into(),
                tenant_id: tenant.clone(),
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
            .set_route(id, &self.advertise_addr, ROUTE_TTL)
            .await
        {
            tracing::error!(error = %e, "could not record the session's route");
            let _ = self
                .store
                .set_session_status(id, SessionStatus::Failed.store_text())
                .await;
            if let Some(w) = warm {
                self.warm.lock().await.push_front(w);
            }
            return Err(ErrorCode::Unavailable);
        }

        let start = match warm {
            Some(w) => Start::Warm(w.started),
            None => Start::Cold,
        };
        self.launch(&mut sessions, id, (user, role, tenant), start, None)
            .await;
        drop(sessions);
        self.refill.notify_one();
        tracing::info!(session.id = %id, user.id = %user, warm = is_warm, "session acquired");
        Ok((id, is_warm))
    }

    /// Starts the actor of a session; `sessions` is the locked table, so
    /// a session is never started twice.
    async fn launch(
        self: &Arc<Self>,
        sessions: &mut Table,
        id: SessionId,
        (user, role, tenant): (UserId, Option<Role>, Option<TenantId>),
        start: Start,
        from: Option<Continue>,
    ) {
        self.bindings.bind(id, user, role, tenant);
        let stop = Stop {
            drain: self.shutdown.child_token(),
            kill: self.kill.child_token(),
        };
        let (actor, handle, rx) = Actor::new(self.ctx.clone(), id, user, stop, from);
        sessions.insert(
            id,
            Live {
                handle,
                since_ms: unix_ms(),
                evicting: false,
            },
        );
        metrics::gauge!(m::ACTIVE_SESSIONS).set(sessions.len() as f64);
        let pool = self.clone();
        self.tasks.lock().await.spawn(async move {
            let outcome = actor.run(start, rx).await;
            pool.retire(id, outcome).await;
        });
    }

    /// Makes sure the user's session runs here: `Ok(false)` when it already
    /// does, `Ok(true)` when a new process now continues it. Readiness is
    /// reported on the bus.
    pub(crate) async fn resume(
        self: &Arc<Self>,
        id: SessionId,
        user: UserId,
        role: Option<Role>,
        seen_seq: u64,
    ) -> Result<bool, ErrorCode> {
        if self.draining() {
            return Err(ErrorCode::ServerShuttingDown);
        }
        let mut sessions = loop {
            let mut sessions = self.sessions.lock().await;
            let Some(live) = sessions.get_mut(&id) else {
                break sessions;
            };
            if live.handle.user != user {
                return Err(ErrorCode::SessionNotFound);
            }
            if live.evicting {
                // Being suspended for room right now: continue it once stopped.
                drop(sessions);
                self.wait_retired(id).await;
                continue;
            }
            // A browser is (re)attaching: its last socket's close, recorded
            // before now, no longer counts as "detached".
            live.since_ms = unix_ms();
            drop(sessions);
            // The gateway asks only when it found no route that works: a
            // cache that lost its contents (Redis restarted without
            // persistence) forgot it, and until it is recorded again every
            // message to this running session is refused as unavailable.
            if let Err(e) = self
                .cache
                .set_route(id, &self.advertise_addr, ROUTE_TTL)
                .await
            {
                tracing::warn!(session.id = %id, error = %e, "could not record the session's route again");
            }
            return Ok(false);
        };
        let record = match self.store.session(id).await {
            Ok(Some(r)) if r.user_id == user => r,
            Ok(_) => return Err(ErrorCode::SessionNotFound),
            Err(e) => {
                tracing::error!(error = %e, "could not read the session to resume");
                return Err(ErrorCode::Unavailable);
            }
        };
        if !record.is_resumable {
            let reason = record.ended_reason.as_deref().map(str::parse);
            return Err(match reason {
                Some(Ok(StatusReason::DurationLimit)) => ErrorCode::DurationLimit,
                _ => ErrorCode::SessionUnavailable,
            });
        }
        sessions = self.room_for(user, sessions).await?;
        if sessions.contains_key(&id) {
            // Resumed by another request while room was being made.
            return Ok(false);
        }
        {
            // Warm processes count toward MAX_SESSIONS: make room if needed.
            let mut warm = self.warm.lock().await;
            if sessions.len() + warm.len() >= self.capacity.max_sessions
                && let Some(w) = warm.pop_back()
            {
                metrics::gauge!(m::PREWARM_POOL_DEPTH).set(warm.len() as f64);
                tokio::spawn(async move {
                    w.started.process.shutdown(Duration::from_millis(500)).await
                });
            }
        }
        // Events published by an earlier process may not all be in the
        // store (deltas are buffered, a crash loses the tail): numbering
        // continues after the highest of the store's, the bus's and the
        // reattaching browser's, so no new event reuses a seq. The bus
        // alone is not enough: the in-process bus of `csp dev` dies with the
        // process that crashed, and a browser holding seq n would skip the
        // new event numbered n as already seen.
        let bus_seq = match self.bus.last_seq(id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "could not read the session's last event");
                return Err(ErrorCode::Unavailable);
            }
        };
        if let Err(e) = self.store.record_resume(id).await {
            tracing::error!(error = %e, "could not record the resume");
            return Err(ErrorCode::Unavailable);
        }
        if let Err(e) = self
            .cache
            .set_route(id, &self.advertise_addr, ROUTE_TTL)
            .await
        {
            tracing::error!(error = %e, "could not record the session's route");
            return Err(ErrorCode::Unavailable);
        }
        // What a browser says it saw is believed only within the unstored
        // tail one process can leave (its own session's numbering is all a
        // wrong figure could upset, and never up to an overflow).
        let seen_seq = seen_seq.min(record.last_seq.max(bus_seq) + MAX_UNSTORED_EVENTS);
        let from = Continue {
            last_seq: record.last_seq.max(bus_seq).max(seen_seq),
            total_cost_usd: record.total_cost_usd,
            titled: record.title.is_some(),
            agent_session: record.agent_session_id.unwrap_or(id.0),
        };
        let whom = (user, role, record.tenant_id.clone());
        self.launch(&mut sessions, id, whom, Start::Resume, Some(from))
            .await;
        drop(sessions);
        metrics::counter!(m::SESSION_RESUMES).increment(1);
        tracing::info!(session.id = %id, user.id = %user, resume_count = record.resume_count + 1, "session resuming");
        Ok(true)
    }

    async fn retire(&self, id: SessionId, outcome: Outcome) {
        let mut sessions = self.sessions.lock().await;
        sessions.remove(&id);
        self.bindings.unbind(id);
        metrics::gauge!(m::ACTIVE_SESSIONS).set(sessions.len() as f64);
        drop(sessions);
        self.retired.send_modify(|n| *n = n.wrapping_add(1));
        if let Err(e) = self.cache.remove_route(id).await {
            tracing::warn!(session.id = %id, error = %e, "could not remove the session's route");
        }
        self.usage.forget_rss(id);
        metrics::counter!(m::SESSION_TERMINATIONS, "reason" => outcome.reason().as_str())
            .increment(1);
        tracing::info!(session.id = %id, ?outcome, "session stopped");
        self.refill.notify_one();
    }

    /// Stops taking sessions at once; idle sessions stop now, turns in
    /// flight get `grace` to finish; then everything left is ended. Every
    /// session stays resumable.
    pub(crate) async fn drain(&self, grace: Duration) {
        self.draining.store(true, Ordering::Release);
        let t0 = Instant::now();
        let active = self.active().await;
        tracing::info!(
            active_sessions = active,
            grace_s = grace.as_secs(),
            "shutting down: draining sessions"
        );
        self.shutdown.cancel();
        let warm: Vec<Warm> = self.warm.lock().await.drain(..).collect();
        metrics::gauge!(m::PREWARM_POOL_DEPTH).set(0.0);
        for w in warm {
            w.started.process.shutdown(Duration::from_millis(500)).await;
        }
        let mut tasks = std::mem::take(&mut *self.tasks.lock().await);
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!("shutdown grace over; stopping the remaining turns");
            self.kill.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(15), async {
                while tasks.join_next().await.is_some() {}
            })
            .await;
        }
        tracing::info!(
            active_sessions = active,
            drain_ms = t0.elapsed().as_millis() as u64,
            "sessions drained"
        );
    }

    /// Reaps zombie processes every `every` (orphans of agent trees that
    /// csp adopted as their subreaper).
    pub(crate) async fn reaper_loop(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.kill.cancelled() => return,
            }
            let reaped = tokio::task::spawn_blocking(csp_agent::reap_zombies)
                .await
                .unwrap_or(0);
            if reaped > 0 {
                tracing::warn!(reaped, "reaped zombie processes");
                metrics::counter!(m::ZOMBIES_REAPED).increment(reaped as u64);
            }
        }
    }

    /// Ends the reaper and anything else waiting for the final stop.
    pub(crate) fn stopped(&self) {
        self.kill.cancel();
    }
}

/// A warm process that exited shows it as a pending `Exited` event; a live
/// one has nothing to say before its first user message.
fn is_alive(output: &mut dyn Output) -> bool {
    !matches!(
        output.recv().now_or_never(),
        Some(None) | Some(Some(AgentEvent::Exited { .. }))
    )
}
