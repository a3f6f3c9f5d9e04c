//! Measures publish → receive latency through each event bus adapter.
//!
//! ```text
//! cargo run --release -p csp-bus --example relay_latency -- [EVENTS] [INTERVAL_US]
//! ```
//!
//! Publishes EVENTS (default 5000) events of one session, one every
//! INTERVAL_US microseconds (default 200; 0 = back to back), to a subscriber
//! that is already attached, and prints latency percentiles. NATS is read
//! from `CSP_NATS_URL` (default `nats://127.0.0.1:4222`); the example creates
//! a stream with a unique prefix and deletes it afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use csp_bus::{EventBus, InProcessBus, NatsBus, inprocess, nats};
use csp_domain::{Event, SessionEvent, SessionId};
use futures::StreamExt;
use hdrhistogram::Histogram;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5000);
    let interval =
        Duration::from_micros(args.next().map(|a| a.parse()).transpose()?.unwrap_or(200));
    println!("{events} events, one every {interval:?}, publish → receive latency");

    let in_process = InProcessBus::new(inprocess::Config::default())?;
    report(
        "in-process",
        measure(Arc::new(in_process), events, interval).await?,
    );

    let url = std::env::var("CSP_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let config = nats::Config {
        url: url.clone(),
        prefix: format!("bench{}", &SessionId::new().0.simple().to_string()[..12]),
        max_msgs_per_subject: events as i64 + 1,
        ..nats::Config::default()
    };
    match NatsBus::connect(config).await {
        Ok(bus) => {
            let stream = bus.stream_name().to_owned();
            let result = measure(Arc::new(bus), events, interval).await;
            let client = async_nats::connect(url.as_str()).await?;
            async_nats::jetstream::new(client)
                .delete_stream(&stream)
                .await?;
            report("nats", result?);
        }
        Err(err) => println!("nats: skipped: {err}"),
    }
    Ok(())
}

async fn measure(
    bus: Arc<dyn EventBus>,
    events: u64,
    interval: Duration,
) -> Result<Histogram<u64>, Box<dyn std::error::Error>> {
    let session = SessionId::new();
    let mut stream = bus.subscribe(session, 0).await?;
    let sent_at: Arc<std::sync::Mutex<Vec<Option<Instant>>>> =
        Arc::new(std::sync::Mutex::new(vec![None; events as usize + 1]));

    let receiver = {
        let sent_at = Arc::clone(&sent_at);
        tokio::spawn(async move {
            let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            while let Some(item) = stream.next().await {
                let received = Instant::now();
                let event = item.map_err(|err| err.to_string())?;
                let sent = sent_at.lock().unwrap()[event.seq as usize]
                    .ok_or("received before it was sent")?;
                latencies.saturating_record(received.duration_since(sent).as_micros() as u64);
                if event.seq == events {
                    break;
                }
            }
            Ok::<_, String>(latencies)
        })
    };

    let mut ticker = tokio::time::interval(interval.max(Duration::from_micros(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for seq in 1..=events {
        if !interval.is_zero() {
            ticker.tick().await;
        }
        let event = SessionEvent {
            session_id: session,
            seq,
            event: Event::Delta {
                text: "a token of typical length".into(),
            },
            trace: None,
        };
        sent_at.lock().unwrap()[seq as usize] = Some(Instant::now());
        bus.publish(&event).await?;
    }
    Ok(receiver.await??)
}

fn report(adapter: &str, latencies: Histogram<u64>) {
    let ms = |q: f64| latencies.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{adapter:>10}: n={} p50={:.3} ms p90={:.3} ms p99={:.3} ms max={:.3} ms",
        latencies.len(),
        ms(0.50),
        ms(0.90),
        ms(0.99),
        latencies.max() as f64 / 1000.0,
    );
}
