//! The queue as the consumer loop sees it, watched for readiness: the loop
//! pulls again on its own after a failure, so whether the queue is
//! reachable is read from its pulls rather than probed with a pull of its
//! own (a NATS pull fetches messages ahead, which would then wait out their
//! ack deadline).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use csp_bus::{Deliveries, Error, Queue};
use futures::StreamExt as _;

pub(crate) struct ObservedQueue {
    inner: Arc<dyn Queue>,
    /// False from a failed pull (or a broken delivery stream) until the next
    /// pull works. True before the first pull: nothing says otherwise yet.
    reachable: Arc<AtomicBool>,
}

impl ObservedQueue {
    pub(crate) fn new(inner: Arc<dyn Queue>) -> Self {
        Self {
            inner,
            reachable: Arc::new(AtomicBool::new(true)),
        }
    }

    pub(crate) fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Queue for ObservedQueue {
    async fn push(&self, topic: &str, id: &str, payload: Bytes) -> Result<(), Error> {
        self.inner.push(topic, id, payload).await
    }

    async fn pull(&self, topic: &str, group: &str) -> Result<Deliveries, Error> {
        match self.inner.pull(topic, group).await {
            Ok(deliveries) => {
                self.reachable.store(true, Ordering::Relaxed);
                let reachable = self.reachable.clone();
                Ok(deliveries
                    .inspect(move |item| {
                        if item.is_err() {
                            reachable.store(false, Ordering::Relaxed);
                        }
                    })
                    .boxed())
            }
            Err(err) => {
                self.reachable.store(false, Ordering::Relaxed);
                Err(err)
            }
        }
    }

    async fn ping(&self) -> Result<(), Error> {
        self.inner.ping().await
    }
}
