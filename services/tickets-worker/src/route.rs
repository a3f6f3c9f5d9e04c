//! Which jobs of its queue a worker takes (story 3.6, tenant namespaces).
//!
//! A worker consumes one queue ([`EnhanceQueue`]): the shared one, or one
//! dedicated tenant's (`CSP_WORKER_TENANT`, the worker of that tenant's own
//! Kubernetes namespace). The producers push every job to its tenant's
//! queue, so a job normally arrives where it belongs; this is the check that
//! keeps the promise when it does not, decided before the job's row is
//! touched:
//!
//! - **A tenant's worker refuses another tenant's job.** It may not act on
//!   another tenant's job, not even to record a failure on it, so the
//!   message is dead-lettered on the worker's own dead-letter topic with the
//!   reason (visible there, and in the log at error level) and the job's row
//!   is left as it is: still pending, it is queued again on its own tenant's
//!   queue by the tickets service's sweeper once its message counts as
//!   lost. Such a message can only come from something other than csp's own
//!   producers, which is why it is refused rather than handed on: a worker
//!   confined to one tenant does not route for others.
//! - **A shared worker hands a dedicated tenant's job on.** This happens
//!   legitimately: jobs queued on the shared queue before an admin gave the
//!   tenant a queue of its own. The message is pushed, unchanged and under
//!   its id, to the tenant's queue, then acked; the job's row is not
//!   touched, and a push that fails is retried like any failed delivery.
//!   The tenant's flag is read from the store and kept for [`FLAG_TTL`]
//!   (2 s): every delivery is routed, deferred ones included, so a read per
//!   delivery would slow the round through a burst that lets another
//!   tenant's job overtake it (`fairness.rs`); a change takes effect within
//!   those seconds, and jobs pushed after it go to the new queue anyway.
//! - A dedicated tenant's worker takes its own tenant's jobs even after the
//!   flag was cleared: those were queued for it, and no isolation is at
//!   stake (new ones go to the shared queue).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use csp_bus::Queue;
use csp_bus::worker::{Handler, HandlerError, JobContext};
use csp_domain::{EnhanceJob, EnhanceQueue, TenantId};
use csp_store::TenantStore;
use tokio::time::Instant;

use crate::job::Jobs;
use crate::message::Queued;

/// The queue's handler: every delivery routed first, then (when it is this
/// worker's) handled by [`Jobs`].
pub(crate) struct Routed {
    router: Router,
    jobs: Arc<Jobs>,
}

impl Routed {
    pub(crate) fn new(router: Router, jobs: Arc<Jobs>) -> Self {
        Self { router, jobs }
    }

    pub(crate) async fn paused(&self) -> Result<bool, csp_store::Error> {
        self.jobs.paused().await
    }

    pub(crate) async fn store_answers(&self) -> bool {
        self.jobs.store_answers().await
    }
}

#[async_trait]
impl Handler<Queued> for Routed {
    async fn handle(&self, queued: Queued, context: &JobContext) -> Result<(), HandlerError> {
        // Before anything else, the job's row included: a job this worker
        // may not take is handed on or refused untouched.
        match self.router.route(&queued.job).await? {
            Route::Take => self.jobs.handle(queued, context).await,
            Route::Forward(to) => self.router.forward(&queued, &to, context).await,
        }
    }
}

/// What to do with a delivered job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// It belongs here: work on it.
    Take,
    /// It belongs on another queue: push it there, untouched.
    Forward(EnhanceQueue),
}

/// How long a tenant's `dedicated_queue` read from the store is used.
pub(crate) const FLAG_TTL: Duration = Duration::from_secs(2);

pub(crate) struct Router {
    /// The queue this worker consumes.
    queue: EnhanceQueue,
    tenants: Arc<dyn TenantStore>,
    bus: Arc<dyn Queue>,
    /// Tenants' `dedicated_queue` as read, and when (one entry per tenant
    /// whose job this worker saw).
    flags: Mutex<HashMap<TenantId, (bool, Instant)>>,
    /// [`FLAG_TTL`]; shorter in tests.
    flag_ttl: Duration,
}

impl Router {
    pub(crate) fn new(
        queue: EnhanceQueue,
        tenants: Arc<dyn TenantStore>,
        bus: Arc<dyn Queue>,
    ) -> Self {
        Self {
            queue,
            tenants,
            bus,
            flags: Mutex::default(),
            flag_ttl: FLAG_TTL,
        }
    }

    /// Whether `tenant` has a queue of its own, as read within [`FLAG_TTL`].
    async fn dedicated(&self, tenant: &TenantId) -> Result<bool, HandlerError> {
        let now = Instant::now();
        let cached = self.flags.lock().expect("flags lock").get(tenant).copied();
        if let Some((flag, at)) = cached
            && now.duration_since(at) < self.flag_ttl
        {
            return Ok(flag);
        }
        let flag = self
            .tenants
            .tenant(tenant)
            .await
            .map_err(|e| HandlerError::retryable(format!("cannot read the tenant's queue: {e}")))?
            // An unknown tenant's job is taken, and its attempt records why
            // it cannot be done.
            .is_some_and(|t| t.dedicated_queue);
        self.flags
            .lock()
            .expect("flags lock")
            .insert(tenant.clone(), (flag, now));
        Ok(flag)
    }

    /// Where `job` goes; a [`HandlerError::Permanent`] for a job this worker
    /// must refuse (another tenant's on a tenant's queue), a retryable one
    /// when the tenant's flag cannot be read.
    pub(crate) async fn route(&self, job: &EnhanceJob) -> Result<Route, HandlerError> {
        match &self.queue {
            EnhanceQueue::Tenant(mine) if *mine == job.tenant_id => Ok(Route::Take),
            EnhanceQueue::Tenant(mine) => {
                tracing::error!(tenant_id = %job.tenant_id, job_id = %job.job_id,
                    correlation_id = %job.correlation_id, worker_tenant = %mine,
                    operation = "take_job", status = "refused",
                    "a job of another tenant reached this tenant's queue; refused untouched");
                Err(HandlerError::Permanent(refusal(mine, job)))
            }
            EnhanceQueue::Shared => {
                let dedicated = self.dedicated(&job.tenant_id).await?;
                Ok(match EnhanceQueue::of(&job.tenant_id, dedicated) {
                    EnhanceQueue::Shared => Route::Take,
                    own => Route::Forward(own),
                })
            }
        }
    }

    /// Pushes the message, as it was read and under its id, to `to`. The
    /// loop acks the delivery once this returns `Ok`: the copy is stored
    /// first, so a crash in between leaves a duplicate, never nothing.
    pub(crate) async fn forward(
        &self,
        queued: &Queued,
        to: &EnhanceQueue,
        context: &JobContext,
    ) -> Result<(), HandlerError> {
        let job = &queued.job;
        let payload = serde_json::to_vec(queued)
            .map_err(|e| HandlerError::permanent(format!("cannot encode the job: {e}")))?;
        let topic = to.topic();
        self.bus
            .push(&topic, &context.id, payload.into())
            .await
            .map_err(|e| {
                HandlerError::retryable(format!(
                    "cannot hand the job on to its tenant's queue {topic}: {e}"
                ))
            })?;
        tracing::info!(tenant_id = %job.tenant_id, job_id = %job.job_id,
            correlation_id = %job.correlation_id, operation = "take_job", status = "forwarded",
            topic = %topic, "the tenant has a queue of its own; job handed on to it");
        Ok(())
    }
}

/// The dead letter's reason for a refused job.
fn refusal(mine: &csp_domain::TenantId, job: &EnhanceJob) -> String {
    format!(
        "refused: job {} of tenant {} on the queue of tenant {mine}",
        job.job_id, job.tenant_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use csp_bus::InProcessQueue;
    use csp_domain::TenantId;
    use csp_store::TenantUpdate;
    use futures::StreamExt;
    use std::time::Duration;

    fn job(tenant: &str) -> EnhanceJob {
        EnhanceJob {
            job_id: uuid::Uuid::new_v4(),
            tenant_id: TenantId::parse(tenant).unwrap(),
            correlation_id: "c0ffee".into(),
        }
    }

    async fn store_with(dedicated: &[&str], shared: &[&str]) -> Arc<csp_store::SqliteStore> {
        let store = Arc::new(csp_store::SqliteStore::in_memory().await.unwrap());
        for (ids, flag) in [(dedicated, true), (shared, false)] {
            for id in ids {
                let tenant_id = TenantId::parse(id).unwrap();
                store
                    .create_tenant(csp_store::NewTenant {
                        tenant_id: tenant_id.clone(),
                        name: (*id).into(),
                        tool_type: "servicedesk_plus".into(),
                        settings: serde_json::json!({}),
                        preferences: serde_json::json!({}),
                        monthly_budget_micros: None,
                        dedicated_queue: flag,
                        secrets: vec![],
                    })
                    .await
                    .unwrap();
            }
        }
        store
    }

    fn router(
        queue: EnhanceQueue,
        store: Arc<csp_store::SqliteStore>,
    ) -> (Router, Arc<InProcessQueue>) {
        let bus = Arc::new(InProcessQueue::new());
        (Router::new(queue, store, bus.clone()), bus)
    }

    #[tokio::test]
    async fn a_tenants_worker_takes_its_own_jobs_and_refuses_the_rest() {
        let store = store_with(&["acme"], &["globex"]).await;
        let acme = TenantId::parse("acme").unwrap();
        let (r, _) = router(EnhanceQueue::Tenant(acme.clone()), store.clone());
        assert_eq!(r.route(&job("acme")).await.unwrap(), Route::Take);
        // Refused whether the other tenant is dedicated or not, known or not.
        for other in ["globex", "nobody"] {
            let j = job(other);
            let Err(HandlerError::Permanent(why)) = r.route(&j).await else {
                panic!("{other}'s job was not refused")
            };
            assert_eq!(why, refusal(&acme, &j));
        }
        // Its own job after the flag was cleared: still its own.
        store
            .update_tenant(
                &acme,
                TenantUpdate {
                    dedicated_queue: Some(false),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(r.route(&job("acme")).await.unwrap(), Route::Take);
    }

    #[tokio::test]
    async fn a_changed_flag_is_seen_within_its_ttl() {
        let store = store_with(&[], &["acme"]).await;
        let (mut r, _) = router(EnhanceQueue::Shared, store.clone());
        r.flag_ttl = Duration::from_millis(200);
        let acme = TenantId::parse("acme").unwrap();
        assert_eq!(r.route(&job("acme")).await.unwrap(), Route::Take);
        store
            .update_tenant(
                &acme,
                TenantUpdate {
                    dedicated_queue: Some(true),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        // Read once per TTL, not per delivery.
        assert_eq!(r.route(&job("acme")).await.unwrap(), Route::Take);
        tokio::time::sleep(r.flag_ttl).await;
        assert_eq!(
            r.route(&job("acme")).await.unwrap(),
            Route::Forward(EnhanceQueue::Tenant(acme))
        );
    }

    #[tokio::test]
    async fn a_shared_worker_hands_a_dedicated_tenants_job_on_unchanged() {
        let store = store_with(&["acme"], &["globex"]).await;
        let (r, bus) = router(EnhanceQueue::Shared, store);
        assert_eq!(r.route(&job("globex")).await.unwrap(), Route::Take);
        assert_eq!(r.route(&job("nobody")).await.unwrap(), Route::Take);
        let acme = TenantId::parse("acme").unwrap();
        let j = job("acme");
        let to = EnhanceQueue::Tenant(acme);
        assert_eq!(r.route(&j).await.unwrap(), Route::Forward(to.clone()));

        let queued = Queued {
            job: j,
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        };
        let context = JobContext {
            id: "original-id".into(),
            attempt: 1,
            deferrals: 0,
        };
        r.forward(&queued, &to, &context).await.unwrap();
        let mut own = bus.pull(&to.topic(), "tickets-workers").await.unwrap();
        let delivery = tokio::time::timeout(Duration::from_secs(5), own.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(delivery.id, "original-id");
        let read: Queued = serde_json::from_slice(&delivery.payload).unwrap();
        assert_eq!(read, queued, "the job and its trace, unchanged");
    }
}
