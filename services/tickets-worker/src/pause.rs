//! The pause flag's effect: the consumer runs only while processing is not
//! paused. The flag is read before the consumer starts and every
//! `pause_poll` while it runs; when it is set the consumer is stopped (jobs
//! already running finish and settle, deferred ones are handed back), and
//! nothing is pulled until the flag is cleared, so a paused worker starts
//! no job and spends no delivery attempt.

use std::sync::Arc;
use std::time::Duration;

use csp_bus::worker::{WorkerConfig, run_worker};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::message::Queued;
use crate::observed::ObservedQueue;
use crate::route::Routed;

pub(crate) async fn supervise(
    jobs: Arc<Routed>,
    queue: Arc<ObservedQueue>,
    config: WorkerConfig,
    poll: Duration,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    loop {
        if !wait_unpaused(&jobs, poll, &shutdown).await {
            return Ok(());
        }
        let stop = shutdown.child_token();
        tracing::info!(topic = %config.topic, group = %config.group, "tickets worker consuming");
        let mut consumer = tokio::spawn(run_worker::<Queued, Routed>(
            queue.clone(),
            config.clone(),
            jobs.clone(),
            stop.clone(),
        ));
        let ended = loop {
            tokio::select! {
                joined = &mut consumer => break Some(joined),
                () = shutdown.cancelled() => {
                    stop.cancel();
                    break None;
                }
                () = tokio::time::sleep(poll) => {
                    // An unreadable flag keeps things as they are: a store
                    // blip is not a pause.
                    if let Ok(true) = jobs.paused().await {
                        tracing::info!(operation = "pause", status = "paused", "processing paused; the consumer stops (jobs running finish)");
                        stop.cancel();
                        break None;
                    }
                }
            }
        };
        let joined = match ended {
            Some(joined) => joined,
            None => consumer.await,
        };
        joined.map_err(Error::Task)??;
        if shutdown.is_cancelled() {
            return Ok(());
        }
    }
}

/// Waits until the flag reads "not paused"; false when `shutdown` came first.
async fn wait_unpaused(jobs: &Routed, poll: Duration, shutdown: &CancellationToken) -> bool {
    let mut waited = false;
    loop {
        if shutdown.is_cancelled() {
            return false;
        }
        match jobs.paused().await {
            Ok(false) => {
                if waited {
                    tracing::info!(
                        operation = "pause",
                        status = "resumed",
                        "processing resumed"
                    );
                }
                return true;
            }
            Ok(true) => {
                if !waited {
                    tracing::info!(
                        operation = "pause",
                        status = "paused",
                        "processing is paused; no job is taken"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the pause flag; no job is taken until it can be read");
            }
        }
        waited = true;
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(poll) => {}
        }
    }
}
