//! The backends of `csp serve`: Postgres, NATS JetStream and Redis, each
//! connected only by the services that use it.

use crate::error::Error;
use crate::opts::TokenOpts;
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

/// The local servers `scripts/setup.sh` starts.
const REDIS_URL: &str = "redis://127.0.0.1:6379";
const NATS_URL: &str = "nats://127.0.0.1:4222";

/// What every `csp serve` process is given besides its own options: the
/// token secret the services share, and the backends.
#[derive(Args, Clone)]
pub(crate) struct Deployment {
    #[command(flatten)]
    pub(crate) tokens: TokenOpts,
    #[command(flatten)]
    pub(crate) backends: Backends,
}

#[derive(Args, Clone)]
pub(crate) struct Backends {
    /// Postgres URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = crate::opts::secret)]
    database_url: Option<SecretString>,
    /// Redis URL.
    #[arg(long, env = "CSP_REDIS_URL", default_value = REDIS_URL, hide_env_values = true)]
    redis_url: String,
    /// Prefix of every Redis key (several deployments can share a server).
    #[arg(long, env = "CSP_REDIS_PREFIX", default_value = "csp:")]
    redis_prefix: String,
    /// NATS URL.
    #[arg(long, env = "CSP_NATS_URL", default_value = NATS_URL, hide_env_values = true)]
    nats_url: String,
    /// Prefix of the JetStream stream and subjects.
    #[arg(long, env = "CSP_NATS_PREFIX", default_value = "csp")]
    nats_prefix: String,
}

impl Backends {
    /// The backend URLs, whose passwords agent output must not carry.
    pub(crate) fn urls(&self) -> Vec<&str> {
        let mut urls = vec![self.redis_url.as_str(), self.nats_url.as_str()];
        urls.extend(self.database_url.as_ref().map(|u| u.expose_secret()));
        urls
    }

    pub(crate) async fn store(&self) -> Result<Arc<csp_store::PgStore>, Error> {
        let url = self.database_url.as_ref().ok_or_else(|| {
            Error::config("DATABASE_URL is required (postgres://user:password@host:5432/db)")
        })?;
        let store = csp_store::PgStore::connect(url.expose_secret())
            .await
            .map_err(|source| Error::Store {
                what: "connecting to the database (DATABASE_URL)",
                source,
            })?;
        Ok(Arc::new(store))
    }

    pub(crate) async fn bus(&self) -> Result<Arc<dyn csp_bus::EventBus>, Error> {
        let (url, prefix) = (self.nats_url.clone(), self.nats_prefix.clone());
        let config = csp_bus::nats::Config {
            url,
            prefix,
            ..Default::default()
        };
        Ok(Arc::new(csp_bus::NatsBus::connect(config).await?))
    }

    /// The durable work queue, on the same NATS server as the bus.
    pub(crate) async fn queue(&self) -> Result<Arc<dyn csp_bus::Queue>, Error> {
        let (url, prefix) = (self.nats_url.clone(), self.nats_prefix.clone());
        let config = csp_bus::queue::nats::Config {
            url,
            prefix,
            ..Default::default()
        };
        Ok(Arc::new(csp_bus::NatsQueue::connect(config).await?))
    }

    pub(crate) async fn cache(&self) -> Result<Arc<dyn csp_cache::Cache>, Error> {
        Ok(Arc::new(
            csp_cache::RedisCache::connect(&self.redis_url, &self.redis_prefix).await?,
        ))
    }
}
