//! Following a server stream across outages: the session-pool and the
//! policy service both mirror state another service streams to them (the
//! plugins service's active set), and both must keep doing so through
//! restarts of that service without spinning, panicking or flooding the log.

use std::future::Future;
use std::time::Duration;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

/// The first retry waits this long; each further one twice as long.
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// The longest wait between attempts.
const MAX_RETRY: Duration = Duration::from_secs(10);

/// Opens a stream with `open` and hands every item to `on_item`, until
/// `stop`. When the stream cannot be opened, fails, ends, or `on_item`
/// fails, it is opened again after a pause that grows from 0.5 s to 10 s and
/// is reset by the next item handled. Each outage is logged once at warn
/// (naming `what`) and its end at info; the attempts in between at debug.
///
/// The caller keeps whatever it last derived from an item: an outage does
/// not undo it.
pub async fn follow_stream<T, S, Open, Opened, OnItem, Handled>(
    what: &'static str,
    mut open: Open,
    mut on_item: OnItem,
    stop: CancellationToken,
) where
    Open: FnMut() -> Opened,
    Opened: Future<Output = Result<S, tonic::Status>>,
    S: Stream<Item = Result<T, tonic::Status>> + Unpin,
    OnItem: FnMut(T) -> Handled,
    Handled: Future<Output = Result<(), tonic::Status>>,
{
    let mut retry = FIRST_RETRY;
    let mut down = false;
    loop {
        let why = tokio::select! {
            _ = stop.cancelled() => return,
            why = follow_once(&mut open, &mut on_item, &mut retry, &mut down, what) => why,
        };
        if down {
            tracing::debug!(what, error = %why, retry_in_ms = retry.as_millis() as u64, "still cannot follow");
        } else {
            down = true;
            tracing::warn!(what, error = %why, retry_in_ms = retry.as_millis() as u64, "lost the stream; reconnecting");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(MAX_RETRY);
    }
}

/// One connection: returns why it ended. Resets the backoff (and ends the
/// outage) once an item has been handled.
async fn follow_once<T, S, Open, Opened, OnItem, Handled>(
    open: &mut Open,
    on_item: &mut OnItem,
    retry: &mut Duration,
    down: &mut bool,
    what: &'static str,
) -> tonic::Status
where
    Open: FnMut() -> Opened,
    Opened: Future<Output = Result<S, tonic::Status>>,
    S: Stream<Item = Result<T, tonic::Status>> + Unpin,
    OnItem: FnMut(T) -> Handled,
    Handled: Future<Output = Result<(), tonic::Status>>,
{
    let mut stream = match open().await {
        Ok(stream) => stream,
        Err(status) => return status,
    };
    loop {
        let item = match stream.next().await {
            Some(Ok(item)) => item,
            Some(Err(status)) => return status,
            None => return tonic::Status::unavailable("the stream ended"),
        };
        if let Err(status) = on_item(item).await {
            return status;
        }
        *retry = FIRST_RETRY;
        if std::mem::take(down) {
            tracing::info!(what, "following the stream again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::time::Instant;

    type Item = Result<u32, tonic::Status>;
    type Scripted = std::pin::Pin<Box<dyn Stream<Item = Item> + Send>>;

    /// Scripted connections: each `open` takes the next entry (`None`: the
    /// open fails); a stream yields its items, then ends.
    struct Script {
        connections: Mutex<Vec<Option<Vec<Item>>>>,
        opened_at: Mutex<Vec<Duration>>,
        start: Instant,
    }

    impl Script {
        fn new(mut connections: Vec<Option<Vec<Item>>>) -> Arc<Script> {
            connections.reverse();
            Arc::new(Script {
                connections: Mutex::new(connections),
                opened_at: Mutex::new(Vec::new()),
                start: Instant::now(),
            })
        }

        fn open(&self) -> Result<Scripted, tonic::Status> {
            self.opened_at.lock().unwrap().push(self.start.elapsed());
            match self.connections.lock().unwrap().pop() {
                Some(Some(items)) => Ok(Box::pin(tokio_stream::iter(items))),
                Some(None) => Err(tonic::Status::unavailable("refused")),
                // Out of script: a quiet, healthy stream.
                None => Ok(Box::pin(tokio_stream::pending())),
            }
        }

        fn gaps(&self) -> Vec<u128> {
            let at = self.opened_at.lock().unwrap();
            at.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn backs_off_from_half_a_second_to_ten_and_resets_after_an_item() {
        let mut script = vec![None; 7];
        script.push(Some(vec![Ok(1), Ok(2)]));
        script.push(None);
        script.push(Some(vec![
            Ok(3),
            Err(tonic::Status::internal("boom")),
            Ok(99),
        ]));
        let script = Script::new(script);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let task = tokio::spawn(follow_stream(
            "test",
            {
                let script = script.clone();
                move || std::future::ready(script.open())
            },
            {
                let seen = seen.clone();
                move |item: u32| {
                    seen.lock().unwrap().push(item);
                    std::future::ready(Ok(()))
                }
            },
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(120)).await;
        stop.cancel();
        task.await.unwrap();
        // The error ends the third stream: 99 is never seen.
        assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);
        let gaps = script.gaps();
        assert_eq!(
            gaps[..9],
            [500, 1000, 2000, 4000, 8000, 10000, 10000, 500, 1000]
        );
        // After the item of the last scripted stream: back to 0.5 s.
        assert_eq!(gaps[9..], [500]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_handler_reconnects_and_stop_ends_a_waiting_follower() {
        let script = Script::new(vec![Some(vec![Ok(1), Ok(2)]), Some(vec![Ok(3)])]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let task = tokio::spawn(follow_stream(
            "test",
            {
                let script = script.clone();
                move || std::future::ready(script.open())
            },
            {
                let seen = seen.clone();
                move |item: u32| {
                    seen.lock().unwrap().push(item);
                    std::future::ready(if item == 1 {
                        Err(tonic::Status::unavailable("follow-up call failed"))
                    } else {
                        Ok(())
                    })
                }
            },
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(600)).await;
        // Item 2 of the first stream is dropped with it; the second stream's
        // item arrives after one pause.
        assert_eq!(*seen.lock().unwrap(), [1, 3]);
        assert_eq!(script.gaps()[0], 500);
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("stop ends the follower")
            .unwrap();
    }
}
