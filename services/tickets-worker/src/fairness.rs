//! The per-tenant in-flight cap: one tenant's burst must not take every
//! slot of a worker.
//!
//! A job whose tenant already has `tenant_inflight` jobs running in this
//! worker is not waited for: its handler answers
//! [`csp_bus::HandlerError::Defer`], the loop frees the slot at once and
//! hands the message back (to the back of the queue, its attempt not
//! spent). So the loop keeps pulling past a burst of any length and reaches
//! other tenants' jobs behind it; the burst's jobs come round again until a
//! slot of theirs is free. The cap is per worker process: with N workers a
//! tenant runs at most N × `tenant_inflight`.
//!
//! Each deferral costs one push and one ack, so the delay doubles with each
//! deferral of a job ([`defer_delay`]: 500 ms, 1 s, … 8 s): a burst of
//! 2,000 waiting jobs settles at a few hundred copies a second rather than
//! 4,000, and still brings back enough of them each second to fill its
//! tenant's slots as they free. The delay is jittered (between half and
//! all of it, by the job's id): a burst is deferred all at once, and
//! without jitter it would come back in waves, each able to fill only the
//! slots free at that instant. Within one tenant's burst the order is loose
//! (whichever job comes round when a slot is free).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub(crate) struct Fairness {
    per_tenant: usize,
    tenants: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Fairness {
    pub(crate) fn new(per_tenant: usize) -> Self {
        Self {
            per_tenant,
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// One of `tenant`'s in-flight permits, or `None` when it is at its cap.
    pub(crate) fn try_acquire(&self, tenant: &str) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
            // One entry per tenant seen: bounded by the tenants configured.
            tenants
                .entry(tenant.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
                .clone()
        };
        semaphore.try_acquire_owned().ok()
    }
}

/// The delay of `job`'s next deferral after `deferrals` earlier ones:
/// `first`, doubling, at most `max`, and of that between half and all
/// (spread by the job's id and the deferral, so a burst's jobs spread out).
pub(crate) fn defer_delay(
    first: Duration,
    max: Duration,
    job: uuid::Uuid,
    deferrals: u64,
) -> Duration {
    let doublings = u32::try_from(deferrals.min(31)).unwrap_or(31);
    let full = first
        .checked_mul(1u32 << doublings)
        .map_or(max, |delay| delay.min(max));
    // splitmix64 of the id and the deferral: uniform enough, no RNG needed.
    let mut x = (job.as_u128() as u64) ^ (job.as_u128() >> 64) as u64 ^ deferrals;
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let share = 0.5 + (x >> 11) as f64 / (1u64 << 53) as f64 / 2.0;
    full.mul_f64(share)
}

/// At most one attempt of a job at a time in this process: a delivery that
/// overran its ack deadline is delivered again while the first still runs,
/// and the second waits for the first instead of racing it to the ticket.
#[derive(Default)]
pub(crate) struct OnePerJob {
    running: Mutex<HashMap<uuid::Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

pub(crate) struct JobGuard<'a> {
    owner: &'a OnePerJob,
    job: uuid::Uuid,
    lock: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl OnePerJob {
    pub(crate) async fn enter(&self, job: uuid::Uuid) -> JobGuard<'_> {
        let lock = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running.entry(job).or_default().clone()
        };
        JobGuard {
            owner: self,
            job,
            lock: Some(lock.lock_owned().await),
        }
    }
}

impl Drop for JobGuard<'_> {
    fn drop(&mut self) {
        drop(self.lock.take());
        let mut running = self.owner.running.lock().unwrap_or_else(|e| e.into_inner());
        // Only the map holds it: nobody waits, the entry can go.
        if running
            .get(&self.job)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            running.remove(&self.job);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deferrals_double_up_to_the_max_jittered() {
        let ms = Duration::from_millis;
        for _ in 0..100 {
            let job = uuid::Uuid::new_v4();
            for (n, full) in [
                (0, 500),
                (1, 1000),
                (2, 2000),
                (3, 4000),
                (4, 8000),
                (5, 8000),
                (40, 8000),
                (u64::MAX, 8000),
            ] {
                let delay = defer_delay(ms(500), ms(8000), job, n);
                assert!(delay >= ms(full) / 2 && delay <= ms(full), "{n}: {delay:?}");
            }
        }
        // A burst's first deferrals spread over the whole range.
        let delays: Vec<Duration> = (0..200)
            .map(|_| defer_delay(ms(500), ms(8000), uuid::Uuid::new_v4(), 0))
            .collect();
        assert!(delays.iter().any(|d| *d < ms(300)) && delays.iter().any(|d| *d > ms(450)));
    }

    #[test]
    fn a_tenant_at_its_cap_is_refused_and_others_are_not() {
        let fairness = Fairness::new(2);
        let a1 = fairness.try_acquire("a").expect("a's first");
        let _a2 = fairness.try_acquire("a").expect("a's second");
        assert!(fairness.try_acquire("a").is_none(), "a is at its cap");
        assert!(fairness.try_acquire("b").is_some(), "b is not");
        drop(a1);
        assert!(fairness.try_acquire("a").is_some(), "a's freed permit");
    }

    #[tokio::test]
    async fn one_attempt_per_job_at_a_time() {
        let jobs = OnePerJob::default();
        let id = uuid::Uuid::new_v4();
        let first = jobs.enter(id).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(50), jobs.enter(id))
                .await
                .is_err()
        );
        let _other = jobs.enter(uuid::Uuid::new_v4()).await;
        drop(first);
        let again = jobs.enter(id).await;
        drop(again);
        // Only the job still entered keeps an entry.
        assert_eq!(jobs.running.lock().unwrap().len(), 1);
    }
}
