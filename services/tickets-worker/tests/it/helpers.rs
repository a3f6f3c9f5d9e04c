//! The harness: the worker on an in-process queue and a real store (a
//! fresh Postgres database or SQLite, per test: `csp_store::test_support`),
//! the fake ServiceDesk Plus and the mock model. The worker's job records go
//! through [`Watched`], which passes every call to the store and notes the
//! order jobs start and end in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use csp_bus::worker::{Backoff, DeadLetter};
use csp_bus::{Deliveries, InProcessQueue, Queue};
use csp_domain::{EnhanceJob, EnhancementStatus, HistorySource, TenantId};
use csp_enhance::{CallOptions, GatherTimeouts, ProviderConfig};
use csp_mock_llm::{MockLlm, Options};
use csp_mock_ticketing::{MockRequest, MockSdp, RunningMock};
use csp_secrets::{Keyring, SecretKey};
use csp_store::test_support::{Backend, TestStore};
use csp_store::{
    Claim, EnhancementQuery, EnhancementRecord, EnhancementStore, Error, HistoryTicket,
    KbArticleRecord, NewEnhancement, NewTenant, Outcome, Recorded, StoredSecret, SystemRecord,
};
use csp_ticketing::connector::RetryPolicy;
use csp_tickets_worker::{Config, Stores, Worker};
use futures::StreamExt;
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub(crate) const SDP_KEY: &str = "sdp-technician-key-123";

/// The store's job records, watched: every call goes to the store.
pub(crate) struct Watched {
    store: Arc<dyn csp_store::Store>,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// `start_attempt` calls per job.
    starts: HashMap<Uuid, u32>,
    /// What each of them answered, per job, in order.
    claims: HashMap<Uuid, Vec<Claimed>>,
    /// Jobs in the order they were finished.
    finished: Vec<Uuid>,
}

/// What a `start_attempt` answered, without the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claimed {
    Started,
    Held,
    Final,
}

impl Watched {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }

    pub(crate) fn starts(&self, job: Uuid) -> u32 {
        self.seen().starts.get(&job).copied().unwrap_or(0)
    }

    /// What the job's claims answered, in order.
    pub(crate) fn claims(&self, job: Uuid) -> Vec<Claimed> {
        self.seen().claims.get(&job).cloned().unwrap_or_default()
    }

    pub(crate) fn any_started(&self) -> bool {
        !self.seen().starts.is_empty()
    }

    pub(crate) fn finished(&self) -> Vec<Uuid> {
        self.seen().finished.clone()
    }
}

#[async_trait]
impl EnhancementStore for Watched {
    async fn record_enhancement(&self, new: NewEnhancement) -> Result<Recorded, Error> {
        self.store.record_enhancement(new).await
    }
    async fn mark_queued_many(&self, job_ids: &[Uuid], at: OffsetDateTime) -> Result<u64, Error> {
        self.store.mark_queued_many(job_ids, at).await
    }
    async fn unqueued_enhancements(
        &self,
        created_before: OffsetDateTime,
        queued_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<EnhancementRecord>, Error> {
        self.store
            .unqueued_enhancements(created_before, queued_before, limit)
            .await
    }
    async fn start_attempt(
        &self,
        job_id: Uuid,
        at: OffsetDateTime,
        lease: Duration,
    ) -> Result<Claim, Error> {
        *self.seen().starts.entry(job_id).or_default() += 1;
        let claim = self.store.start_attempt(job_id, at, lease).await?;
        let claimed = match &claim {
            Claim::Started(_) => Claimed::Started,
            Claim::Held { .. } => Claimed::Held,
            Claim::Final => Claimed::Final,
        };
        self.seen().claims.entry(job_id).or_default().push(claimed);
        Ok(claim)
    }
    async fn release_attempt(&self, job_id: Uuid, attempt: u32) -> Result<bool, Error> {
        self.store.release_attempt(job_id, attempt).await
    }
    async fn finish_enhancement(
        &self,
        job_id: Uuid,
        outcome: Outcome,
        at: OffsetDateTime,
    ) -> Result<bool, Error> {
        let finished = self.store.finish_enhancement(job_id, outcome, at).await?;
        if finished {
            self.seen().finished.push(job_id);
        }
        Ok(finished)
    }
    async fn enhancement(&self, job_id: Uuid) -> Result<Option<EnhancementRecord>, Error> {
        self.store.enhancement(job_id).await
    }
    async fn enhancements_page(
        &self,
        q: &EnhancementQuery,
    ) -> Result<(Vec<EnhancementRecord>, u64), Error> {
        self.store.enhancements_page(q).await
    }
    async fn enhancement_counts(&self) -> Result<Vec<(EnhancementStatus, u64)>, Error> {
        self.store.enhancement_counts().await
    }
    async fn processing_paused(&self) -> Result<bool, Error> {
        self.store.processing_paused().await
    }
    async fn set_processing_paused(&self, paused: bool) -> Result<(), Error> {
        self.store.set_processing_paused(paused).await
    }
    async fn clear_pending_enhancements(&self, at: OffsetDateTime) -> Result<u64, Error> {
        self.store.clear_pending_enhancements(at).await
    }
    async fn retry_enhancement(
        &self,
        job_id: Uuid,
        at: OffsetDateTime,
    ) -> Result<Option<EnhancementRecord>, Error> {
        self.store.retry_enhancement(job_id, at).await
    }
    async fn enhancements_after(
        &self,
        q: &EnhancementQuery,
        after: Option<csp_store::EnhancementCursor>,
        limit: u32,
    ) -> Result<Vec<EnhancementRecord>, Error> {
        self.store.enhancements_after(q, after, limit).await
    }
}

/// The worker and everything it talks to.
pub(crate) struct Harness {
    pub(crate) store: TestStore,
    pub(crate) watched: Arc<Watched>,
    pub(crate) queue: Arc<InProcessQueue>,
    /// The dead-letter topic, read as a group of its own from the start (the
    /// in-process queue keeps a message only for the groups it knows).
    dead_letters: tokio::sync::Mutex<Deliveries>,
    pub(crate) sdp: RunningMock,
    pub(crate) llm: MockLlm,
    pub(crate) keyring: Keyring,
    /// The shared cache: the breaker's state and the worker's heartbeat.
    pub(crate) cache: Arc<csp_cache::MemoryCache>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<csp_tickets_worker::Exit, csp_tickets_worker::Error>>>,
    /// Further workers on the same queue and store ([`Harness::start_another`]).
    others: Vec<JoinHandle<Result<csp_tickets_worker::Exit, csp_tickets_worker::Error>>>,
    next_ticket: Mutex<u64>,
}

/// Fast timings for tests; the model is the mock.
pub(crate) fn config(llm: &MockLlm, keyring: &Keyring) -> Config {
    Config {
        backoff: Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
            factor: 2.0,
        },
        pause_poll: Duration::from_millis(50),
        tenant_defer: Duration::from_millis(100),
        tenant_defer_max: Duration::from_millis(800),
        source_timeouts: GatherTimeouts::all(Duration::from_secs(5)),
        provider: Some(ProviderConfig::Anthropic {
            base_url: llm.base_url(),
            api_key: "sk-ant-test-key".into(),
            model: "claude-sonnet-4-5".into(),
        }),
        model_call: CallOptions {
            retry_delay: Duration::from_millis(10),
            ..CallOptions::default()
        },
        tool_retry: RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(10),
        },
        keyring: Some(keyring.clone()),
        ..Config::default()
    }
}

impl Harness {
    /// Everything but the worker, which [`Harness::start`] runs.
    pub(crate) async fn new(backend: Backend) -> Self {
        Self::with_ack_wait(backend, Duration::from_secs(30)).await
    }

    /// With the queue's ack deadline at `ack_wait`.
    pub(crate) async fn with_ack_wait(backend: Backend, ack_wait: Duration) -> Self {
        let (key, _) = SecretKey::generate();
        let store = backend.store().await;
        let queue = Arc::new(
            InProcessQueue::with_config(csp_bus::queue::inprocess::Config {
                ack_wait,
                ..Default::default()
            })
            .unwrap(),
        );
        let dead_letters = queue
            .pull(&format!("{}.dead", csp_domain::ENHANCE_TOPIC), "test")
            .await
            .unwrap();
        Self {
            watched: Arc::new(Watched {
                store: store.shared(),
                seen: Mutex::default(),
            }),
            store,
            dead_letters: tokio::sync::Mutex::new(dead_letters),
            queue,
            sdp: RunningMock::start(MockSdp::builder().authtoken(SDP_KEY).build())
                .await
                .unwrap(),
            llm: MockLlm::start(Options::default()).await.unwrap(),
            keyring: Keyring::new(key, Vec::new()),
            cache: Arc::new(csp_cache::MemoryCache::new()),
            shutdown: CancellationToken::new(),
            task: None,
            others: Vec::new(),
            next_ticket: Mutex::new(1000),
        }
    }

    pub(crate) fn config(&self) -> Config {
        config(&self.llm, &self.keyring)
    }

    pub(crate) fn start(&mut self, config: Config) {
        self.task = Some(self.spawn(config));
    }

    /// Another worker (another process, in production) on the same queue,
    /// group and store; stopped with the first.
    pub(crate) fn start_another(&mut self, config: Config) {
        let task = self.spawn(config);
        self.others.push(task);
    }

    fn spawn(
        &self,
        config: Config,
    ) -> JoinHandle<Result<csp_tickets_worker::Exit, csp_tickets_worker::Error>> {
        let cache: Arc<dyn csp_cache::Cache> = self.cache.clone();
        let breaker = Arc::new(csp_breaker::Breaker::new(
            csp_breaker::Config::default(),
            cache.clone(),
        ));
        let stores = Stores {
            jobs: self.watched.clone(),
            ..Stores::of(self.store.shared())
        };
        let worker = Worker::build(config, stores, self.queue.clone(), cache, breaker).unwrap();
        tokio::spawn(worker.run(self.shutdown.clone()))
    }

    /// How the running worker ended, without being asked to stop (a
    /// restart command).
    pub(crate) async fn ended(&mut self) -> csp_tickets_worker::Exit {
        let task = self.task.take().expect("a running worker");
        task.await.unwrap().unwrap()
    }

    pub(crate) async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        for task in self.others.drain(..) {
            task.await.unwrap().unwrap();
        }
    }

    /// An active ServiceDesk Plus tenant with every source and the context
    /// of the happy path: a similar resolved ticket, an article, a system.
    pub(crate) async fn tenant(&self, id: &str, budget: Option<i64>) -> TenantId {
        let tenant_id = self
            .tool_tenant(
                id,
                "servicedesk_plus",
                serde_json::json!({ "servicedesk_url": self.sdp.base_url() }),
                &[("api_key", SDP_KEY)],
                budget,
            )
            .await;
        self.store
            .upsert_ticket_history(
                &tenant_id,
                &[HistoryTicket {
                    ticket_id: "TKT-4711".into(),
                    description: "Printer offline on floor 2, print spooler stuck".into(),
                    resolution: "Restarted the print spooler service".into(),
                    resolved_date: OffsetDateTime::now_utc(),
                    tags: Vec::new(),
                }],
                HistorySource::BulkImport,
                OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        self.store
            .upsert_kb_articles(
                &tenant_id,
                &[KbArticleRecord {
                    title: "Printer spooler recovery guide".into(),
                    summary: "How to clear and restart a stuck spooler".into(),
                    url: "https://kb.example/printer-spooler".into(),
                    body: "printer spooler offline".into(),
                }],
            )
            .await
            .unwrap();
        self.store
            .upsert_inventory(
                &tenant_id,
                &[SystemRecord {
                    ip: "10.0.0.5".parse().unwrap(),
                    hostname: "prn-floor2.acme.local".into(),
                    role: "print server".into(),
                    client: "Acme".into(),
                    location: "HQ floor 2".into(),
                }],
            )
            .await
            .unwrap();
        tenant_id
    }

    /// An active tenant of `tool_type` with `settings` and the secrets
    /// `(name, value)` sealed under their names, and no context.
    pub(crate) async fn tool_tenant(
        &self,
        id: &str,
        tool_type: &str,
        settings: serde_json::Value,
        secrets: &[(&str, &str)],
        budget: Option<i64>,
    ) -> TenantId {
        let tenant_id = TenantId::parse(id).unwrap();
        let secrets = secrets
            .iter()
            .map(|(key, value)| {
                let sealed = self.keyring.seal(value);
                StoredSecret {
                    key: (*key).into(),
                    encrypted_value: sealed.token,
                    encryption_key_version: sealed.key_version,
                }
            })
            .collect();
        self.store
            .create_tenant(NewTenant {
                tenant_id: tenant_id.clone(),
                name: format!("{id} MSP"),
                tool_type: tool_type.into(),
                settings,
                preferences: serde_json::json!({ "sources": ["ticket_history", "kb", "ip_inventory"] }),
                monthly_budget_micros: budget,
                dedicated_queue: false,
                secrets,
            })
            .await
            .unwrap();
        tenant_id
    }

    /// Records a pending job for a new ticket (also opened on the fake
    /// ServiceDesk Plus) and queues it, as the tickets service does.
    pub(crate) async fn job(&self, tenant: &TenantId) -> EnhanceJob {
        let job = self.recorded_job(tenant).await;
        self.push(&job, &job.job_id.to_string()).await;
        job
    }

    /// A pending job, recorded and not queued.
    pub(crate) async fn recorded_job(&self, tenant: &TenantId) -> EnhanceJob {
        let ticket = {
            let mut next = self.next_ticket.lock().unwrap();
            *next += 1;
            *next
        };
        let description = "The printer at 10.0.0.5 is offline and the spooler is stuck";
        self.sdp.mock().insert(MockRequest::open(
            ticket,
            "Printer offline",
            description,
            "High",
        ));
        let job = EnhanceJob {
            job_id: Uuid::new_v4(),
            tenant_id: tenant.clone(),
            correlation_id: format!("corr-{ticket}"),
        };
        self.store
            .record_enhancement(NewEnhancement {
                job_id: job.job_id,
                tenant_id: tenant.clone(),
                ticket_id: ticket.to_string(),
                delivery_key: format!("key-{ticket}"),
                subject: "Printer offline".into(),
                description: description.into(),
                priority: "High".into(),
                correlation_id: job.correlation_id.clone(),
            })
            .await
            .unwrap();
        job
    }

    pub(crate) async fn push(&self, job: &EnhanceJob, message_id: &str) {
        self.queue
            .push(
                csp_domain::ENHANCE_TOPIC,
                message_id,
                Bytes::from(serde_json::to_vec(job).unwrap()),
            )
            .await
            .unwrap();
    }

    pub(crate) async fn record(&self, job: &EnhanceJob) -> EnhancementRecord {
        self.store
            .enhancement(job.job_id)
            .await
            .unwrap()
            .expect("the job is recorded")
    }

    /// Waits (up to 30 s) until the job is completed or failed.
    pub(crate) async fn finished(&self, job: &EnhanceJob) -> EnhancementRecord {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let record = self.record(job).await;
            if record.status.is_final() {
                return record;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {} not final within 30 s: {record:?}",
                job.job_id
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn notes_for(&self, record: &EnhancementRecord) -> Vec<String> {
        self.sdp
            .mock()
            .notes_for(record.ticket_id.parse().unwrap())
            .into_iter()
            .map(|n| n.description)
            .collect()
    }

    /// The next dead letter of the enhancement topic.
    pub(crate) async fn dead_letter(&self) -> DeadLetter {
        let mut deliveries = self.dead_letters.lock().await;
        let delivery = tokio::time::timeout(Duration::from_secs(10), deliveries.next())
            .await
            .expect("a dead letter")
            .unwrap()
            .unwrap();
        let letter = DeadLetter::decode(&delivery.payload).unwrap();
        delivery.ack().await.unwrap();
        letter
    }

    /// Pushes `letter` to the dead-letter topic, as the loop does.
    pub(crate) async fn push_dead_letter(&self, letter: &DeadLetter) {
        self.queue
            .push(
                &format!("{}.dead", csp_domain::ENHANCE_TOPIC),
                &letter.id,
                Bytes::from(serde_json::to_vec(letter).unwrap()),
            )
            .await
            .unwrap();
    }

    /// Calls the mock model received on its Messages API.
    pub(crate) fn model_calls(&self) -> usize {
        self.llm
            .log()
            .iter()
            .filter(|e| e.path == "/v1/messages")
            .count()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub(crate) async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
