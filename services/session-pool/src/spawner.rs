//! The production [`Spawner`]: the Claude Code CLI through `csp-agent`, in
//! its sandbox, behind this replica's proxies.
//!
//! Owns everything one spawn needs and nothing that outlives it: the
//! session's directories (keyed by the csp session id, so a resumed or
//! restarted process finds the last one's transcript), the plugin set the
//! process starts with and its `--mcp-config` file (deleted once the CLI
//! initialised), the egress lease and proxy settings (`egress`), and the
//! permission gate that asks the governor about every tool call (`gate`).
//! The pool uses it for warm slots (with the set it is filling for), the
//! actors through the [`Spawner`] trait (with the set of the moment).

use crate::egress::Egress;
use crate::gate::{Bindings, SessionGate};
use crate::governor::Governor;
use crate::metrics as m;
use crate::plugins::{self, PluginSet};
use crate::process::{Request, Spawner, Started};
use async_trait::async_trait;
use csp_agent::{Agent, SpawnSpec};
use csp_domain::SessionId;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a session start waits for the first plugin set before it goes
/// ahead without plugins (the registry may be down at startup).
const FIRST_SET_WAIT: Duration = Duration::from_secs(10);

pub(crate) struct AgentSpawner {
    pub(crate) agent: csp_agent::Config,
    /// Working and config directories of every session live below this.
    pub(crate) data_dir: PathBuf,
    /// The model and egress proxies every agent goes through.
    pub(crate) egress: Arc<Egress>,
    pub(crate) governor: Arc<dyn Governor>,
    /// Who each running session belongs to, for the permission gate.
    pub(crate) bindings: Bindings,
    /// The plugin set new processes start with; `None` until the plugins
    /// service has told.
    pub(crate) plugins: watch::Sender<Option<Arc<PluginSet>>>,
}

impl AgentSpawner {
    pub(crate) fn session_root(&self, id: SessionId) -> PathBuf {
        self.data_dir.join("sessions").join(id.to_string())
    }

    /// The set a session's process starts with: the current one, or, while
    /// none is known yet, the first one to arrive within [`FIRST_SET_WAIT`].
    async fn set_for_session(&self, id: SessionId) -> Arc<PluginSet> {
        let mut sets = self.plugins.subscribe();
        let waited = tokio::time::timeout(FIRST_SET_WAIT, sets.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(set)) => set.clone().unwrap_or_else(|| Arc::new(PluginSet::empty())),
            _ => {
                tracing::warn!(session.id = %id, "the plugin registry has not answered yet; starting the session without plugins");
                Arc::new(PluginSet::empty())
            }
        }
    }

    /// A session's directories are keyed by the csp session id, so a
    /// resumed or restarted process finds the transcript of the last one.
    fn dirs(&self, request: Request) -> SpawnSpec {
        let root = self.session_root(request.session);
        let home = root.join("home");
        SpawnSpec {
            session_id: request.agent_session,
            workdir: root.join("work"),
            config_dir: home.join(".claude"),
            home,
            resume: request.resume(),
            mcp_config: None,
            reach: csp_agent::Reach::default(),
            env: Vec::new(),
            exit_guard: None,
        }
    }

    /// Spawns one agent with the MCP servers of `set` and waits for its
    /// `initialize` reply.
    pub(crate) async fn spawn_with(
        &self,
        request: Request,
        set: &PluginSet,
    ) -> Result<Started, csp_agent::Error> {
        let id = request.session;
        let mut spec = self.dirs(request);
        for dir in [&spec.workdir, &spec.home] {
            std::fs::create_dir_all(dir).map_err(|source| csp_agent::Error::Prepare {
                path: dir.clone(),
                source,
            })?;
        }
        let root = self.session_root(id);
        let builtin = self.egress.prepare(&mut spec, id, &root, set);
        // Deleted when dropped: right after the spawn, however it ends.
        let mcp_config =
            plugins::write_mcp_config(&root, set, builtin.as_ref()).map_err(|source| {
                csp_agent::Error::Prepare {
                    path: root.join(plugins::MCP_CONFIG_FILE),
                    source,
                }
            })?;
        drop(builtin);
        spec.mcp_config = mcp_config.as_ref().map(|f| f.path().to_owned());
        let t0 = Instant::now();
        let gate = Arc::new(SessionGate {
            governor: self.governor.clone(),
            bindings: self.bindings.clone(),
            session: id,
        });
        let result = Agent::spawn(&self.agent, spec, gate).await;
        drop(mcp_config);
        let start = request.reason.as_str();
        match &result {
            Ok(_) => metrics::histogram!(m::SESSION_INIT_DURATION, "start" => start)
                .record(t0.elapsed().as_secs_f64()),
            Err(_) => metrics::counter!(m::AGENT_START_FAILURES, "start" => start).increment(1),
        }
        result.map(Started::agent)
    }
}

#[async_trait]
impl Spawner for AgentSpawner {
    async fn spawn(&self, request: Request) -> Result<Started, csp_agent::Error> {
        let set = self.set_for_session(request.session).await;
        self.spawn_with(request, &set).await
    }
}
