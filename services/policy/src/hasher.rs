//! Password hashing with bounded memory.
//!
//! One argon2id computation holds its whole memory cost (19 MiB with the
//! default parameters) until it finishes. On tokio's blocking pool every
//! concurrent login got a thread of its own, and glibc's heaps kept what
//! they freed, fragmented around those blocks: 48 concurrent wrong logins
//! left the process at 4 GiB. Here a fixed set of threads does all hashing:
//! at most `threads` computations run at once (the rest wait in a queue of
//! small jobs), and each thread computes in one block of memory of its own
//! that it keeps and reuses ([`csp_auth::HashMemory`]), so both the peak and
//! what stays resident afterwards are `threads × 19 MiB`, allocated on each
//! thread's first hash.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use csp_auth::HashMemory;

type Job = Box<dyn FnOnce(&mut HashMemory) + Send>;

/// The hashing threads; they exit when the `Hasher` is dropped.
pub(crate) struct Hasher {
    jobs: mpsc::Sender<Job>,
    threads: usize,
}

impl Hasher {
    /// Starts `threads` hashing threads (at least one).
    pub(crate) fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("csp-hash-{i}"))
                .spawn(move || {
                    let mut memory = HashMemory::new();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok(job) = job else { return };
                        // A panicking job must not shrink the pool; its
                        // caller sees the dropped answer.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
                    }
                })
                .expect("the OS starts a hashing thread");
        }
        Self { jobs, threads }
    }

    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` on a hashing thread, with its memory; `None` if it panicked.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |memory: &mut HashMemory| {
                let _ = tx.send(f(memory));
            }))
            .ok()?;
        rx.await.ok()
    }

    /// An argon2id PHC hash of `password`.
    pub(crate) async fn hash(&self, password: String) -> Result<String, csp_auth::Error> {
        self.run(move |memory| memory.hash(&password))
            .await
            .unwrap_or_else(|| Err(csp_auth::Error::Hash("the hashing thread failed".into())))
    }

    /// Whether `password` matches the PHC `hash`.
    pub(crate) async fn verify(&self, password: String, hash: String) -> bool {
        self.run(move |memory| memory.verify(&password, &hash))
            .await
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn never_more_than_its_threads_at_once() {
        let hasher = Arc::new(Hasher::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let calls = (0..12).map(|_| {
            let (hasher, running, peak) = (hasher.clone(), running.clone(), peak.clone());
            async move {
                hasher
                    .run(move |_| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
            }
        });
        let done = futures::future::join_all(calls).await;
        assert!(done.iter().all(Option::is_some));
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn hashes_verify_and_a_panic_keeps_the_pool() {
        let hasher = Hasher::new(1);
        assert!(hasher.run(|_| -> u8 { panic!("boom") }).await.is_none());
        let hash = hasher.hash("correct horse".into()).await.unwrap();
        assert!(hasher.verify("correct horse".into(), hash.clone()).await);
        assert!(!hasher.verify("wrong".into(), hash).await);
    }
}
