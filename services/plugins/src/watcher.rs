//! Hot rescan: a file watcher on `PLUGINS_DIR` triggers a rescan once the
//! directory has been quiet for the debounce interval (an editor's save or
//! a `cp -r` is many events; one rescan covers them all). A periodic rescan
//! backs the watcher up where file events do not arrive (network file
//! systems, Kubernetes ConfigMap symlink swaps) and picks up activation
//! changes made through another replica.

use crate::catalog::Catalog;
use notify::{RecursiveMode, Watcher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(crate) struct Settings {
    pub(crate) dir: PathBuf,
    pub(crate) debounce: Duration,
    pub(crate) every: Duration,
}

/// Runs until `shutdown`. Without a working watcher (inotify limits, say)
/// the periodic rescan still runs, and the failure is logged once.
pub(crate) async fn run(catalog: Arc<Catalog>, s: Settings, shutdown: CancellationToken) {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    })
    .and_then(|mut w| w.watch(&s.dir, RecursiveMode::Recursive).map(|()| w));
    let _watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(dir = %s.dir.display(), error = %e, every_s = s.every.as_secs(), "cannot watch the plugins directory; rescanning periodically only");
            None
        }
    };
    let mut tick = tokio::time::interval(s.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
            Some(()) = rx.recv() => {
                // Wait for quiet: every further event restarts the wait.
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(s.debounce) => break,
                        Some(()) = rx.recv() => continue,
                    }
                }
            }
        }
        if let Err(e) = catalog.rescan().await {
            tracing::warn!(error = %e.message(), "plugin rescan failed; retrying later");
        }
    }
}
