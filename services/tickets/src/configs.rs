//! Tenant configuration as the webhook path needs it: the record, its
//! settings and preferences, and its secrets opened, cached in-process.
//!
//! Every webhook needs its tenant's secrets; reading the row and opening
//! three Fernet tokens per delivery would be most of the intake's cost, so
//! a replica keeps them for [`Configs::ttl`] (5 minutes). A change must
//! reach every replica before that, so each tenant has a version in the
//! shared cache (`csp_cache::Cache`, Redis in distributed mode):
//! [`Configs::changed`] writes a new random version after the store
//! committed, and a lookup reads the version first and reuses its entry
//! only while the version is the one it was loaded under.
//!
//! Why a cache version rather than a bus message: the event bus
//! (`csp_bus::EventBus`) carries session events only, and the queue is a
//! work queue (each message to one consumer of a group; a group per replica
//! would leave a durable consumer behind for every replica that ever ran).
//! A version read is one Redis GET per delivery, cheaper than the row and
//! the decryption, and it is never lost the way a missed broadcast is: the
//! version is read before the row and written after the commit, so an entry
//! loaded across a change is refused at the next lookup. The version lives
//! twice as long as an entry, so it outlives every entry loaded before it.
//! If the cache is down the lookup reads the store (correct, slower); if
//! the cache forgot the version (a Redis restart) an entry is at most
//! [`Configs::ttl`] old.

use crate::Clock;
use crate::tenants::{
    API_KEY, Preferences, Settings, WEBHOOK_SECRET, WEBHOOK_SECRET_GRACE, WEBHOOK_SECRET_PREVIOUS,
};
use csp_cache::Cache;
use csp_domain::TenantId;
use csp_secrets::{Keyring, Sealed};
use csp_store::{Owner, Store, TenantRecord};
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;

/// A tenant with its secrets opened. `Debug` shows no secret.
#[derive(Debug)]
pub(crate) struct TenantConfig {
    pub(crate) record: TenantRecord,
    #[allow(dead_code)] // for the connection check and the workers' view
    pub(crate) settings: Settings,
    #[allow(dead_code)]
    pub(crate) preferences: Preferences,
    #[allow(dead_code)]
    pub(crate) api_key: Option<SecretString>,
    pub(crate) webhook_secret: Option<SecretString>,
    pub(crate) webhook_secret_previous: Option<SecretString>,
}

impl TenantConfig {
    /// The previous webhook secret, while the rotation's grace period runs.
    pub(crate) fn previous_secret(&self, now: OffsetDateTime) -> Option<&SecretString> {
        let rotated = self.record.webhook_secret_rotated_at?;
        let grace = time::Duration::try_from(WEBHOOK_SECRET_GRACE).ok()?;
        (now <= rotated + grace)
            .then_some(self.webhook_secret_previous.as_ref())
            .flatten()
    }
}

/// Why a tenant's configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error(transparent)]
    Store(#[from] csp_store::Error),
    /// Its secrets cannot be opened (no keyring, or a key no longer held).
    #[error("tenant '{tenant}': {why}")]
    Secret { tenant: String, why: String },
}

struct Entry {
    config: Arc<TenantConfig>,
    loaded_at: OffsetDateTime,
    version: Option<String>,
}

pub(crate) struct Configs {
    store: Arc<dyn Store>,
    cache: Arc<dyn Cache>,
    keyring: Option<Keyring>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    /// Bounded by the tenant table: only tenants that exist are kept.
    entries: Mutex<HashMap<TenantId, Entry>>,
}

fn version_key(id: &TenantId) -> String {
    format!("tickets:tenant-config:{id}")
}

impl Configs {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        cache: Arc<dyn Cache>,
        keyring: Option<Keyring>,
        clock: Arc<dyn Clock>,
        ttl: Duration,
    ) -> Self {
        Self {
            store,
            cache,
            keyring,
            clock,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's configuration, `None` when there is no such tenant
    /// (active or not: the caller decides what inactive means).
    pub(crate) async fn get(&self, id: &TenantId) -> Result<Option<Arc<TenantConfig>>, LoadError> {
        // The version first, then the row: see the module docs.
        let version = match self.cache.get(&version_key(id)).await {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(tenant_id = %id, error = %e, "tenant config version unreadable; reading the store");
                None
            }
        };
        let now = self.clock.now();
        if let Some(version) = &version {
            let entries = self.entries.lock().expect("configs lock");
            if let Some(e) = entries.get(id) {
                let fresh = now - e.loaded_at < self.ttl && e.loaded_at <= now;
                if fresh && &e.version == version {
                    return Ok(Some(e.config.clone()));
                }
            }
        }
        let Some(config) = self.load(id).await? else {
            self.entries.lock().expect("configs lock").remove(id);
            return Ok(None);
        };
        let config = Arc::new(config);
        if let Some(version) = version {
            self.entries.lock().expect("configs lock").insert(
                id.clone(),
                Entry {
                    config: config.clone(),
                    loaded_at: now,
                    version,
                },
            );
        }
        Ok(Some(config))
    }

    /// After a committed change of the tenant: forget it here and move its
    /// version so every other replica reloads it at its next lookup.
    pub(crate) async fn changed(&self, id: &TenantId) {
        self.entries.lock().expect("configs lock").remove(id);
        let _ = self.announce(id).await;
    }

    /// An admin's "reload": every cached configuration is dropped here, and
    /// every tenant's version moves, so every other replica reloads each at
    /// its next lookup (the same announcement as [`Configs::changed`], for
    /// every tenant: a tenant no replica holds costs one cache write).
    /// Returns how many tenants were announced, and how many announcements
    /// failed (those replicas keep their copy until it expires).
    pub(crate) async fn reload_all(&self) -> Result<(usize, usize), csp_store::Error> {
        let tenants = self.store.list_tenants().await?;
        self.entries.lock().expect("configs lock").clear();
        let mut failed = 0;
        for t in &tenants {
            if self.announce(&t.tenant_id).await.is_err() {
                failed += 1;
            }
        }
        Ok((tenants.len(), failed))
    }

    /// Moves the tenant's version in the shared cache.
    async fn announce(&self, id: &TenantId) -> Result<(), ()> {
        let version = uuid::Uuid::new_v4().to_string();
        self.cache
            .put(&version_key(id), &version, self.ttl * 2)
            .await
            .map_err(|e| {
                tracing::error!(tenant_id = %id, error = %e, ttl_s = self.ttl.as_secs(),
                    "tenant config change not announced: other replicas keep their copy until it expires");
            })
    }

    async fn load(&self, id: &TenantId) -> Result<Option<TenantConfig>, LoadError> {
        let Some(record) = self.store.tenant(id).await? else {
            return Ok(None);
        };
        let sealed = self.store.secrets(&Owner::tenant(id.as_str())).await?;
        let mut opened: HashMap<String, SecretString> = HashMap::new();
        for s in sealed {
            let keyring = self.keyring.as_ref().ok_or_else(|| LoadError::Secret {
                tenant: id.to_string(),
                why: "its secrets are stored but CSP_SECRET_KEY is not set on the tickets service"
                    .into(),
            })?;
            let plain = keyring
                .open(&Sealed {
                    token: s.encrypted_value,
                    key_version: s.encryption_key_version,
                })
                .map_err(|e| LoadError::Secret {
                    tenant: id.to_string(),
                    why: format!("secret '{}' cannot be decrypted: {e}", s.key),
                })?;
            opened.insert(s.key, plain);
        }
        Ok(Some(TenantConfig {
            settings: Settings::from_stored(&record.settings),
            preferences: Preferences::from_stored(&record.preferences),
            api_key: opened.remove(API_KEY),
            webhook_secret: opened.remove(WEBHOOK_SECRET),
            webhook_secret_previous: opened.remove(WEBHOOK_SECRET_PREVIOUS),
            record,
        }))
    }
}
