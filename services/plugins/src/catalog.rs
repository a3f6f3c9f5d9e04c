//! The registry joined with what the store remembers (activation, config,
//! encrypted secrets): each plugin's status, the operator actions, and the
//! active set that sessions start with.
//!
//! Activation and configuration live in the database, so every replica of
//! the plugins service sees the same decisions; each replica scans its own
//! `PLUGINS_DIR` (the same volume in a deployment). The active set is
//! recomputed after every change here and every few seconds (another
//! replica's change), and published only when its fingerprint moves.

use crate::registry::{Changes, Entry, Registry};
use crate::status::PluginStatus;
use csp_domain::{AUDIT_TOPIC, AuditEvent, AuditStatus, ErrorCode, UserId};
use csp_manifest::{Manifest, PluginType, Problem};
use csp_proto::v1 as pb;
use csp_rpc::{status, status_with_message};
use csp_secrets::{Keyring, Sealed};
use csp_store::{PluginState, SecretChange, Store, StoredSecret};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::{Mutex, watch};
use tonic::Status;

/// What the API shows instead of a secret value.
pub const REDACTED: &str = "[REDACTED]";

/// One plugin as the operator sees it.
struct View<'a> {
    name: &'a str,
    entry: &'a Entry,
    state: Option<&'a PluginState>,
    status: PluginStatus,
    /// Why the saved configuration does not fit the manifest in force.
    config_errors: Vec<String>,
}

pub(crate) struct Catalog {
    registry: Mutex<Registry>,
    store: Arc<dyn Store>,
    keyring: Option<Keyring>,
    audit: Arc<dyn csp_bus::Queue>,
    active_set: watch::Sender<Arc<pb::ActiveSet>>,
    /// Secrets that could not be opened, by plugin, from the last
    /// resolution (shown with the plugin's errors).
    unusable: std::sync::Mutex<HashMap<String, String>>,
}

impl Catalog {
    pub(crate) fn new(
        registry: Registry,
        store: Arc<dyn Store>,
        keyring: Option<Keyring>,
        audit: Arc<dyn csp_bus::Queue>,
    ) -> Arc<Self> {
        let (active_set, _) = watch::channel(Arc::new(pb::ActiveSet::default()));
        Arc::new(Self {
            registry: Mutex::new(registry),
            store,
            keyring,
            audit,
            active_set,
            unusable: std::sync::Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<pb::ActiveSet>> {
        self.active_set.subscribe()
    }

    async fn states(&self) -> Result<BTreeMap<String, PluginState>, Status> {
        Ok(self
            .store
            .plugin_states()
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|s| (s.plugin_name.clone(), s))
            .collect())
    }

    /// Scans `PLUGINS_DIR` and publishes what changed.
    pub(crate) async fn rescan(&self) -> Result<Changes, Status> {
        let states = self.states().await?;
        let active = move |name: &str| states.get(name).is_some_and(|s| s.active);
        let mut registry = self.registry.lock().await;
        let changes = {
            let registry = &mut *registry;
            tokio::task::block_in_place(|| registry.scan(&active))
        };
        drop(registry);
        if !changes.is_empty() {
            tracing::info!(added = ?changes.added, changed = ?changes.changed, removed = ?changes.removed, "plugins rescanned");
            crate::metrics::rescanned(&changes);
        }
        self.publish().await?;
        Ok(changes)
    }

    /// Recomputes the active set and publishes it if it moved.
    pub(crate) async fn publish(&self) -> Result<(), Status> {
        let states = self.states().await?;
        let registry = self.registry.lock().await;
        let views = self.views(&registry, &states);
        let mut set = pb::ActiveSet::default();
        let mut hasher = Sha256::new();
        let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
        for v in &views {
            *counts.entry(v.status.as_str()).or_default() += 1;
            let Some(m) = &v.entry.manifest else { continue };
            let active = v.status == PluginStatus::Activated;
            for t in &m.tools {
                set.tools.push(pb::PluginToolRole {
                    tool_name: t.name.clone(),
                    plugin_name: m.name.clone(),
                    required_role: t.required_role.as_str().to_owned(),
                    active,
                });
            }
            if let Some(s) = &m.mcp {
                set.servers.push(pb::PluginServer {
                    server_name: s.server_name.clone(),
                    plugin_name: m.name.clone(),
                    active,
                });
            }
            if active {
                // What a session would start with: the manifest, the
                // config, and the secrets as stored (encrypted: the
                // fingerprint reveals nothing of them).
                hasher.update(m.name.as_bytes());
                hasher.update([0]);
                hasher.update(m_as_json(m).to_string());
                if let Some(s) = v.state {
                    hasher.update(Value::Object(s.config.clone()).to_string());
                    for secret in &s.secrets {
                        hasher.update(&secret.key);
                        hasher.update(&secret.encrypted_value);
                    }
                }
                hasher.update([0xff]);
            }
        }
        drop(registry);
        crate::metrics::statuses(&counts);
        set.fingerprint = hex(&hasher.finalize()[..16]);
        self.active_set.send_if_modified(|current| {
            if **current == set {
                return false;
            }
            tracing::info!(fingerprint = %set.fingerprint, "the plugin catalog changed (active servers or tool roles)");
            *current = Arc::new(set);
            true
        });
        Ok(())
    }

    fn views<'a>(
        &self,
        registry: &'a Registry,
        states: &'a BTreeMap<String, PluginState>,
    ) -> Vec<View<'a>> {
        registry
            .entries()
            .iter()
            .map(|(name, entry)| {
                let state = states.get(name);
                let (status, config_errors) = status_of(entry, state);
                View {
                    name,
                    entry,
                    state,
                    status,
                    config_errors,
                }
            })
            .collect()
    }

    pub(crate) async fn list(&self) -> Result<Vec<pb::Plugin>, Status> {
        let states = self.states().await?;
        let registry = self.registry.lock().await;
        let views = self.views(&registry, &states);
        Ok(views.iter().map(|v| self.to_proto(v)).collect())
    }

    pub(crate) async fn get(&self, name: &str) -> Result<pb::Plugin, Status> {
        self.list()
            .await?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| not_found(name))
    }

    pub(crate) async fn activate(&self, name: &str, actor: UserId) -> Result<pb::Plugin, Status> {
        let states = self.states().await?;
        {
            let registry = self.registry.lock().await;
            let entry = registry.get(name).ok_or_else(|| not_found(name))?;
            let (status, config_errors) = status_of(entry, states.get(name));
            let why = match (status, &entry.manifest) {
                (PluginStatus::Errored, _) => Some(format!(
                    "Plugin '{name}' has errors in its plugin.json; fix them and rescan."
                )),
                (PluginStatus::Registered, Some(m)) => Some(format!(
                    "Plugin '{name}' is a {} plugin; only mcp plugins run in sessions.",
                    m.plugin_type
                )),
                (PluginStatus::NeedsConfig, _) => Some(format!(
                    "Plugin '{name}' needs configuration first: {}.",
                    config_errors.join("; ")
                )),
                _ => None,
            };
            if let Some(why) = why {
                return Err(status_with_message(ErrorCode::PluginNotActivatable, why));
            }
        }
        self.store
            .set_plugin_active(name, true, Some(actor))
            .await
            .map_err(store_error)?;
        self.audit(
            actor,
            "plugin.activate",
            serde_json::json!({ "plugin": name }),
        );
        self.after_change(name).await
    }

    pub(crate) async fn deactivate(&self, name: &str, actor: UserId) -> Result<pb::Plugin, Status> {
        // A plugin whose directory went away can still be switched off, so
        // it does not come back active with its directory. No directory is
        // named with a NUL, and the store (Postgres text) cannot be asked
        // about one: it is no plugin (the security suite's NUL id got 503).
        if name.contains('\0') {
            return Err(not_found(name));
        }
        let known = self.registry.lock().await.get(name).is_some()
            || self
                .store
                .plugin_state(name)
                .await
                .map_err(store_error)?
                .is_some_and(|s| s.active);
        if !known {
            return Err(not_found(name));
        }
        self.store
            .set_plugin_active(name, false, Some(actor))
            .await
            .map_err(store_error)?;
        self.audit(
            actor,
            "plugin.deactivate",
            serde_json::json!({ "plugin": name }),
        );
        match self.after_change(name).await {
            Err(e) if csp_rpc::error_code(&e) == ErrorCode::PluginNotFound => Ok(pb::Plugin {
                name: name.to_owned(),
                status: PluginStatus::Removed.as_str().to_owned(),
                ..Default::default()
            }),
            other => other,
        }
    }

    /// Saves a configuration: non-secret values replace the stored ones;
    /// secret fields set to a string are encrypted and replaced, omitted or
    /// [`REDACTED`] ones are kept, null ones removed. The whole result must
    /// validate against the manifest's `config_schema`.
    pub(crate) async fn configure(
        &self,
        name: &str,
        mut config: Map<String, Value>,
        actor: UserId,
    ) -> Result<pb::Plugin, Status> {
        let manifest = self
            .registry
            .lock()
            .await
            .get(name)
            .ok_or_else(|| not_found(name))?
            .manifest
            .clone()
            .ok_or_else(|| {
                status_with_message(
                    ErrorCode::InvalidPluginConfig,
                    format!("Plugin '{name}' has errors in its plugin.json; fix them before configuring it."),
                )
            })?;
        let stored = self.store.plugin_state(name).await.map_err(store_error)?;
        let secret_fields = manifest.secret_fields();
        let mut changes = Vec::new();
        let mut keep: Vec<String> = Vec::new();
        for field in &secret_fields {
            match config.remove(field) {
                None => keep.push(field.clone()),
                Some(Value::String(s)) if s == REDACTED => keep.push(field.clone()),
                Some(Value::Null) => changes.push(SecretChange::Remove(field.clone())),
                Some(Value::String(plain)) => {
                    let keyring = self.keyring.as_ref().ok_or_else(|| {
                        status_with_message(
                            ErrorCode::InvalidPluginConfig,
                            "Secret settings cannot be stored: CSP_SECRET_KEY is not set on the plugins service.",
                        )
                    })?;
                    let Sealed { token, key_version } = keyring.seal(&plain);
                    changes.push(SecretChange::Set(StoredSecret {
                        key: field.clone(),
                        encrypted_value: token,
                        encryption_key_version: key_version,
                    }));
                }
                Some(_) => {
                    return Err(status_with_message(
                        ErrorCode::InvalidPluginConfig,
                        format!(
                            "Invalid configuration for plugin '{name}': {field}: must be a string."
                        ),
                    ));
                }
            }
        }
        // Validate what the plugin would run with: the stored secrets that
        // stay, the new ones, and the new plain values.
        let mut effective = config.clone();
        let kept = stored.iter().flat_map(|s| &s.secrets);
        for s in kept.filter(|s| keep.contains(&s.key)) {
            effective.insert(s.key.clone(), Value::String(REDACTED.into()));
        }
        for c in &changes {
            if let SecretChange::Set(s) = c {
                effective.insert(s.key.clone(), Value::String(REDACTED.into()));
            }
        }
        if let Err(errors) = manifest.validate_config(&effective) {
            let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            return Err(status_with_message(
                ErrorCode::InvalidPluginConfig,
                format!(
                    "Invalid configuration for plugin '{name}': {}.",
                    list.join("; ")
                ),
            ));
        }
        let keys: Vec<&String> = config
            .keys()
            .chain(changes.iter().map(|c| match c {
                SecretChange::Set(s) => &s.key,
                SecretChange::Remove(k) => k,
            }))
            .collect();
        let details = serde_json::json!({ "plugin": name, "keys": keys });
        self.store
            .save_plugin_config(name, config, changes, Some(actor))
            .await
            .map_err(store_error)?;
        self.audit(actor, "plugin.configure", details);
        self.after_change(name).await
    }

    async fn after_change(&self, name: &str) -> Result<pb::Plugin, Status> {
        // An activation change decides which manifest is in force when the
        // file is broken (the running version stays only while active).
        let states = self.states().await?;
        self.registry
            .lock()
            .await
            .reconcile(&|n: &str| states.get(n).is_some_and(|s| s.active));
        self.publish().await?;
        self.get(name).await
    }

    /// The MCP servers of the activated plugins, secrets decrypted. A
    /// plugin whose secrets cannot be opened (a key missing from the ring)
    /// is left out and reports why.
    pub(crate) async fn active_servers(&self) -> Result<pb::ActiveServersResponse, Status> {
        let states = self.states().await?;
        let registry = self.registry.lock().await;
        let views = self.views(&registry, &states);
        let fingerprint = self.active_set.borrow().fingerprint.clone();
        let mut servers = Vec::new();
        let mut unusable = HashMap::new();
        for v in views.iter().filter(|v| v.status == PluginStatus::Activated) {
            let Some(m) = &v.entry.manifest else { continue };
            match self.resolve(m, v) {
                Ok(server) => servers.push(server),
                Err(why) => {
                    tracing::error!(plugin = v.name, reason = %why, "an active plugin cannot start");
                    unusable.insert(v.name.to_owned(), why);
                }
            }
        }
        *self.unusable.lock().expect("unusable lock") = unusable;
        Ok(pb::ActiveServersResponse {
            fingerprint,
            servers,
        })
    }

    fn resolve(&self, m: &Manifest, v: &View<'_>) -> Result<pb::McpServer, String> {
        let mut config = v.state.map(|s| s.config.clone()).unwrap_or_default();
        for secret in v.state.iter().flat_map(|s| &s.secrets) {
            let keyring = self
                .keyring
                .as_ref()
                .ok_or("secret settings are stored but CSP_SECRET_KEY is not set")?;
            let plain = keyring
                .open(&Sealed {
                    token: secret.encrypted_value.clone(),
                    key_version: secret.encryption_key_version.clone(),
                })
                .map_err(|e| format!("secret '{}' cannot be decrypted: {e}", secret.key))?;
            config.insert(
                secret.key.clone(),
                Value::String(plain.expose_secret().to_owned()),
            );
        }
        let server = m.resolve_mcp(&v.entry.dir, &config)?;
        Ok(pb::McpServer {
            plugin_name: m.name.clone(),
            server_name: server.server_name,
            command: server.command,
            args: server.args,
            env: server
                .env
                .into_iter()
                .map(|(k, v)| (k, v.expose_secret().to_owned()))
                .collect(),
            cwd: server
                .cwd
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            // A built-in's server is csp's own executable: nothing to mount.
            plugin_dir: if v.entry.builtin {
                String::new()
            } else {
                v.entry.dir.display().to_string()
            },
            builtin: v.entry.builtin,
            network: m.network.clone(),
        })
    }

    fn to_proto(&self, v: &View<'_>) -> pb::Plugin {
        let m = v.entry.manifest.as_deref();
        let mut errors: Vec<pb::ManifestProblem> = v.entry.errors.iter().map(problem).collect();
        let file = v.entry.file().display().to_string();
        let shown = if saved(v.state) {
            &v.config_errors[..]
        } else {
            &[]
        };
        for e in shown {
            errors.push(pb::ManifestProblem {
                file: file.clone(),
                field: "config".into(),
                message: e.clone(),
                ..Default::default()
            });
        }
        if let Some(why) = self.unusable.lock().expect("unusable lock").get(v.name) {
            errors.push(pb::ManifestProblem {
                file: file.clone(),
                field: "config".into(),
                message: why.clone(),
                ..Default::default()
            });
        }
        let (config_json, secrets_set) = match (v.state, m) {
            (Some(s), Some(m)) => {
                let mut shown = s.config.clone();
                let secret_fields = m.secret_fields();
                shown.retain(|k, _| !secret_fields.contains(k));
                let mut set = Vec::new();
                for secret in &s.secrets {
                    shown.insert(secret.key.clone(), Value::String(REDACTED.into()));
                    set.push(secret.key.clone());
                }
                (Value::Object(shown).to_string(), set)
            }
            _ => ("{}".to_owned(), Vec::new()),
        };
        pb::Plugin {
            name: v.name.to_owned(),
            version: m.map(|m| m.version.clone()).unwrap_or_default(),
            plugin_type: m
                .map(|m| m.plugin_type.as_str().to_owned())
                .unwrap_or_default(),
            description: m.map(|m| m.description.clone()).unwrap_or_default(),
            status: v.status.as_str().to_owned(),
            active: v.state.is_some_and(|s| s.active),
            required_role: m
                .map(|m| m.required_role.as_str().to_owned())
                .unwrap_or_default(),
            dir: v.entry.dir.display().to_string(),
            tools: m
                .map(|m| {
                    m.tools
                        .iter()
                        .map(|t| pb::PluginTool {
                            name: t.name.clone(),
                            description: t.description.clone().unwrap_or_default(),
                            required_role: t.required_role.as_str().to_owned(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            network: m.map(|m| m.network.clone()).unwrap_or_default(),
            config_schema_json: m
                .and_then(|m| m.config_schema.as_ref())
                .map(Value::to_string)
                .unwrap_or_default(),
            config_json,
            secrets_set,
            errors,
            updated_at: v.state.map(|s| rfc3339(s.updated_at)).unwrap_or_default(),
        }
    }

    /// Queues an operator action for the audit log (the policy service
    /// writes it); values of the configuration never appear, only keys.
    pub(crate) fn audit(&self, actor: UserId, action: &str, details: Value) {
        let event = AuditEvent {
            audit_id: uuid::Uuid::new_v4(),
            timestamp_ms: (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
                as i64,
            user_id: Some(actor),
            session_id: None,
            tool_name: action.to_owned(),
            sanitized_input: details.to_string(),
            result_status: AuditStatus::Success,
            execution_duration_ms: None,
            cost_usd: None,
        };
        let queue = self.audit.clone();
        tokio::spawn(async move {
            let Ok(payload) = serde_json::to_vec(&event) else {
                return;
            };
            let id = event.audit_id.to_string();
            let pushed =
                csp_bus::push_retrying(queue.as_ref(), AUDIT_TOPIC, &id, payload.into(), 5).await;
            if let Err(e) = pushed {
                tracing::error!(audit_id = %id, action = %event.tool_name, error = %e, "audit event lost: the queue is unavailable");
                metrics::counter!(crate::metrics::AUDIT_LOST).increment(1);
            }
        });
    }
}

/// The manifest as JSON, for the fingerprint.
fn m_as_json(m: &Manifest) -> Value {
    serde_json::json!({
        "version": m.version,
        "tools": m.tools.iter().map(|t| (&t.name, t.required_role.as_str())).collect::<Vec<_>>(),
        "mcp": m.mcp.as_ref().map(|s| serde_json::json!({
            "server_name": s.server_name, "command": s.command, "args": s.args, "env": s.env, "cwd": s.cwd,
        })),
    })
}

/// A plugin's status and, when its configuration (saved, or none) does not
/// fit the manifest in force, why. `needs_config` means exactly that: a
/// required setting is missing or a saved one is invalid.
fn status_of(entry: &Entry, state: Option<&PluginState>) -> (PluginStatus, Vec<String>) {
    let Some(m) = &entry.manifest else {
        return (PluginStatus::Errored, Vec::new());
    };
    if m.plugin_type != PluginType::Mcp {
        return (PluginStatus::Registered, Vec::new());
    }
    let saved = saved(state);
    let mut effective = state.map(|s| s.config.clone()).unwrap_or_default();
    for s in state.iter().flat_map(|s| &s.secrets) {
        effective.insert(s.key.clone(), Value::String(REDACTED.into()));
    }
    // Settings that are all optional (or have defaults) need nothing: the
    // plugin is ready as it is, configured once something was saved.
    let config_errors: Vec<String> = match m.validate_config(&effective) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.to_string()).collect(),
    };
    let status = match (state.is_some_and(|s| s.active), config_errors.is_empty()) {
        (true, true) => PluginStatus::Activated,
        (_, false) => PluginStatus::NeedsConfig,
        _ if saved => PluginStatus::Configured,
        _ => PluginStatus::Ready,
    };
    (status, config_errors)
}

/// Whether a configuration was ever saved: before that, a plugin that
/// needs one lists no configuration errors (its status says it all).
fn saved(state: Option<&PluginState>) -> bool {
    state.is_some_and(|s| !s.config.is_empty() || !s.secrets.is_empty())
}

fn problem(p: &Problem) -> pb::ManifestProblem {
    pb::ManifestProblem {
        file: p.file.display().to_string(),
        line: p.line,
        column: p.column,
        field: p.field.clone().unwrap_or_default(),
        message: p.message.clone(),
        suggestion: p.suggestion.clone().unwrap_or_default(),
    }
}

fn not_found(name: &str) -> Status {
    status_with_message(
        ErrorCode::PluginNotFound,
        format!("There is no plugin named '{name}'."),
    )
}

pub(crate) fn store_error(e: csp_store::Error) -> Status {
    tracing::error!(error = %e, "plugin store failed");
    status(ErrorCode::Unavailable, "plugin store unavailable")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
