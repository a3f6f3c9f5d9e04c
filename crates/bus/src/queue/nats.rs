//! The distributed work queue: a NATS JetStream stream.
//!
//! One stream per deployment prefix, `<PREFIX>_QUEUE`, holding subjects
//! `<prefix>.queue.<topic>`, on file storage. Each push carries
//! `Nats-Msg-Id = <topic>:<id>`, so a retried push is stored once (ids are
//! unique per topic, and the stream holds every topic). Each (topic, group)
//! is one durable pull consumer filtered to the topic's subject, with
//! explicit acks, `ack_wait` and unlimited redeliveries; every `pull` of the
//! same pair joins that consumer, so its pullers share the messages.
//!
//! Retention is `Limits` (bounded by `max_age`), not `WorkQueue` or
//! `Interest`: the trait lets several groups consume one topic, each
//! getting every message. A WorkQueue stream deletes a message at its first
//! ack and refuses a second consumer whose filter overlaps another's, so a
//! second group on a topic would fail to start; an Interest stream drops
//! messages pushed while no consumer exists, which loses whatever is pushed
//! before a group's first pull. The price of Limits: acked messages stay on
//! disk until `max_age` (each group's consumer records what it acked), and
//! a message nobody acked within `max_age` is dropped.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer, stream};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;

use super::{
    DUPLICATE_WINDOW, Deliveries, Delivery, Handle, Queue, dedup_key, validate_group, validate_id,
    validate_topic,
};
use crate::Error;
use crate::nats::{ensure_stream, validate_connection};
use csp_redact::{scrub, url as redact_url};

/// How to reach NATS, how long to keep messages and when to redeliver.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// NATS server URL(s), comma-separated; may carry credentials
    /// (`nats://user:password@host:4222`), which are never logged.
    pub url: String,
    /// Names the stream (`<PREFIX>_QUEUE`) and its subjects
    /// (`<prefix>.queue.>`), so several deployments can share a server.
    /// Letters, digits, `_` and `-` only.
    pub prefix: String,
    /// Messages older than this are dropped, acked or not: set it above the
    /// longest consumer outage to ride out. Must be non-zero so the stream
    /// stays bounded.
    pub max_age: Duration,
    /// How long a delivery may stay neither acked nor nacked before its
    /// message is delivered again. Applied when a group's consumer is
    /// created or joined.
    pub ack_wait: Duration,
    /// Messages each pull fetches ahead of its reader. Every fetched
    /// message's ack deadline is already running, so this times the time
    /// to handle one must stay well below `ack_wait`; fewer also spreads a
    /// group's messages more evenly over its pullers.
    pub prefetch: usize,
    /// Stream replicas (1 for a single server, 3 for a cluster).
    pub replicas: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            prefix: "csp".into(),
            max_age: Duration::from_secs(24 * 60 * 60),
            ack_wait: Duration::from_secs(30),
            prefetch: 16,
            replicas: 1,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("max_age", &self.max_age)
            .field("ack_wait", &self.ack_wait)
            .field("prefetch", &self.prefetch)
            .field("replicas", &self.replicas)
            .finish()
    }
}

impl Config {
    fn validate(&self) -> Result<(), Error> {
        validate_connection(&self.prefix, &self.url, self.replicas)?;
        if self.max_age.is_zero() {
            return Err(Error::Config(
                "max_age must be greater than zero, or the queue stream would grow without bound"
                    .into(),
            ));
        }
        if self.ack_wait.is_zero() {
            return Err(Error::Config(
                "ack_wait must be greater than zero, or every delivery would be redelivered at \
                 once"
                    .into(),
            ));
        }
        if self.prefetch == 0 {
            return Err(Error::Config(
                "prefetch must be at least 1 (messages a pull fetches ahead)".into(),
            ));
        }
        Ok(())
    }

    /// The stream's name for this prefix.
    pub fn stream_name(&self) -> String {
        format!("{}_QUEUE", self.prefix.to_ascii_uppercase())
    }

    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream_name(),
            description: Some(
                "csp work queue: each message at least once to every consumer group of its topic"
                    .into(),
            ),
            subjects: vec![format!("{}.queue.>", self.prefix)],
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            storage: stream::StorageType::File,
            max_age: self.max_age,
            num_replicas: self.replicas,
            duplicate_window: DUPLICATE_WINDOW.min(self.max_age),
            ..Default::default()
        }
    }
}

/// How often an idle pull hears from the server, so a dead connection is
/// noticed.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// The JetStream [`Queue`]. Cloning it shares the connection.
#[derive(Clone)]
pub struct NatsQueue {
    jetstream: jetstream::Context,
    stream: stream::Stream,
    stream_name: String,
    prefix: String,
    ack_wait: Duration,
    prefetch: usize,
}

impl std::fmt::Debug for NatsQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsQueue")
            .field("stream", &self.stream_name)
            .finish_non_exhaustive()
    }
}

impl NatsQueue {
    /// Connects and creates the stream, or updates its limits if it exists.
    #[tracing::instrument(name = "queue.connect", skip_all, fields(url = %redact_url(&config.url), prefix = %config.prefix), err)]
    pub async fn connect(config: Config) -> Result<Self, Error> {
        config.validate()?;
        let servers: Vec<&str> = config.url.split(',').map(str::trim).collect();
        let client = async_nats::ConnectOptions::new()
            .name("csp-queue")
            .connection_timeout(Duration::from_secs(5))
            .connect(servers.as_slice())
            .await
            .map_err(|err| Error::Connect {
                url: redact_url(&config.url),
                reason: scrub(&err.to_string(), &config.url),
            })?;
        let jetstream = jetstream::new(client);
        let stream = ensure_stream(&jetstream, config.stream_config(), &config.prefix).await?;
        tracing::info!(stream = %config.stream_name(), "work queue stream ready");
        Ok(Self {
            jetstream,
            stream,
            stream_name: config.stream_name(),
            prefix: config.prefix,
            ack_wait: config.ack_wait,
            prefetch: config.prefetch,
        })
    }

    /// The JetStream stream holding the messages.
    pub fn stream_name(&self) -> &str {
        &self.stream_name
    }

    /// The durable consumer of `group` on `topic`.
    pub fn consumer_name(topic: &str, group: &str) -> String {
        // Readable for operators, and made unique by a hash of the exact
        // pair: a '.' in the topic cannot be kept, and mapping it to '_'
        // alone would give topics "a.b" and "a_b" one consumer.
        format!(
            "{group}_{}_{:016x}",
            topic.replace('.', "_"),
            fnv1a(format!("{topic}\n{group}").as_bytes())
        )
    }

    fn subject(&self, topic: &str) -> String {
        format!("{}.queue.{topic}", self.prefix)
    }
}

/// FNV-1a, 64 bits: stable across Rust versions and processes, unlike
/// `DefaultHasher`, as consumer names must be.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[async_trait]
impl Queue for NatsQueue {
    #[tracing::instrument(name = "queue.push", skip_all, fields(topic, id), err)]
    async fn push(&self, topic: &str, id: &str, payload: Bytes) -> Result<(), Error> {
        validate_topic(topic)?;
        validate_id(id)?;
        let push_error = |source: BoxError| Error::Push {
            topic: topic.to_owned(),
            id: id.to_owned(),
            source,
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            dedup_key(topic, id).as_str(),
        );
        let ack = self
            .jetstream
            .publish_with_headers(self.subject(topic), headers, payload)
            .await
            .map_err(|err| push_error(Box::new(err)))?
            .await
            .map_err(|err| push_error(Box::new(err)))?;
        if ack.duplicate {
            tracing::debug!("duplicate push dropped");
        }
        Ok(())
    }

    #[tracing::instrument(name = "queue.pull", skip_all, fields(topic, group), err)]
    async fn pull(&self, topic: &str, group: &str) -> Result<Deliveries, Error> {
        validate_topic(topic)?;
        validate_group(group)?;
        let pull_error = |source: BoxError| Error::Pull {
            topic: topic.to_owned(),
            group: group.to_owned(),
            source,
        };
        let name = Self::consumer_name(topic, group);
        // Creating an existing durable consumer with the same config joins
        // it; concurrent pulls of one group may all do so.
        let consumer = self
            .stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(name),
                description: Some(format!("csp queue: group {group} of topic {topic}")),
                filter_subject: self.subject(topic),
                deliver_policy: consumer::DeliverPolicy::All,
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: self.ack_wait,
                max_deliver: -1,
                ..Default::default()
            })
            .await
            .map_err(|err| pull_error(Box::new(err)))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(self.prefetch)
            .heartbeat(HEARTBEAT)
            .messages()
            .await
            .map_err(|err| pull_error(Box::new(err)))?;
        let reader = Reader {
            messages,
            topic: topic.to_owned(),
            group: group.to_owned(),
            ack_wait: self.ack_wait,
            done: false,
        };
        let deliveries = futures::stream::unfold(reader, |mut reader| async move {
            let item = reader.next().await?;
            Some((item, reader))
        });
        Ok(deliveries.boxed())
    }

    async fn ping(&self) -> Result<(), Error> {
        self.stream
            .get_info()
            .await
            .map(drop)
            .map_err(|err| Error::Unavailable {
                reason: format!("cannot read stream '{}': {err}", self.stream_name),
            })
    }
}

struct Reader {
    messages: consumer::pull::Stream,
    topic: String,
    group: String,
    ack_wait: Duration,
    done: bool,
}

impl Reader {
    fn error(&mut self, source: BoxError) -> Option<Result<Delivery, Error>> {
        self.done = true;
        Some(Err(Error::Pull {
            topic: self.topic.clone(),
            group: self.group.clone(),
            source,
        }))
    }

    async fn next(&mut self) -> Option<Result<Delivery, Error>> {
        if self.done {
            return None;
        }
        loop {
            let message = match self.messages.next().await {
                Some(Ok(message)) => message,
                Some(Err(err))
                    if err.kind() == consumer::pull::MessagesErrorKind::MissingHeartbeat =>
                {
                    // The pull stream re-requests on its own (it also
                    // notices a reconnect); nothing was lost.
                    tracing::warn!(topic = %self.topic, group = %self.group, "work queue pull missed heartbeats; waiting on");
                    continue;
                }
                Some(Err(err)) => return self.error(Box::new(err)),
                None => return self.error("the NATS connection was closed".into()),
            };
            let attempt = match message.info() {
                Ok(info) => u64::try_from(info.delivered).unwrap_or(1).max(1),
                Err(err) => return self.error(err),
            };
            // Pushes carry `<topic>:<id>`; a message published to the
            // subject some other way has no id to report.
            let id = message
                .headers
                .as_ref()
                .and_then(|headers| headers.get(async_nats::header::NATS_MESSAGE_ID))
                .and_then(|value| {
                    value
                        .as_str()
                        .strip_prefix(self.topic.as_str())?
                        .strip_prefix(':')
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            let (message, acker) = message.split();
            return Some(Ok(Delivery {
                id,
                payload: message.payload,
                attempt,
                ack_wait: self.ack_wait,
                handle: Handle::Nats(Box::new(Acker {
                    inner: acker,
                    topic: self.topic.clone(),
                })),
            }));
        }
    }
}

/// Settles one delivery. Both kinds wait for the server to confirm, so a
/// returned `Ok` means the server recorded it.
pub(super) struct Acker {
    inner: jetstream::message::Acker,
    topic: String,
}

impl Acker {
    pub(super) async fn ack(self, id: &str) -> Result<(), Error> {
        self.settle(id, AckKind::Ack).await
    }

    /// `+WPI`, not waited for: the server resets the deadline when it reads
    /// it, and a lost one is followed by the next.
    pub(super) async fn in_progress(&self, id: &str) -> Result<(), Error> {
        self.inner
            .ack_with(AckKind::Progress)
            .await
            .map_err(|source| Error::Ack {
                topic: self.topic.clone(),
                id: id.to_owned(),
                source,
            })
    }

    pub(super) async fn nack(self, id: &str, delay: Duration) -> Result<(), Error> {
        let delay = (!delay.is_zero()).then_some(delay);
        self.settle(id, AckKind::Nak(delay)).await
    }

    async fn settle(self, id: &str, kind: AckKind) -> Result<(), Error> {
        self.inner
            .double_ack_with(kind)
            .await
            .map_err(|source| Error::Ack {
                topic: self.topic,
                id: id.to_owned(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_follows_the_prefix_and_keeps_messages_for_every_group() {
        let config = Config {
            prefix: "csp-dev".into(),
            ..Config::default()
        };
        assert_eq!(config.stream_name(), "CSP-DEV_QUEUE");
        let stream = config.stream_config();
        assert_eq!(stream.subjects, ["csp-dev.queue.>"]);
        assert_eq!(stream.retention, stream::RetentionPolicy::Limits);
        assert_eq!(stream.storage, stream::StorageType::File);
        assert_eq!(stream.duplicate_window, DUPLICATE_WINDOW);
    }

    #[test]
    fn consumer_names_are_stable_valid_and_distinct() {
        let name = NatsQueue::consumer_name("tickets.jobs", "worker");
        // Pinned: a changed name would orphan every deployed group's
        // consumer and redeliver its retained messages to a new one.
        assert_eq!(name, "worker_tickets_jobs_0ebfce99948a3c9c");
        assert!(!name.contains(['.', '*', '>', ' ']), "{name}");
        assert_ne!(
            NatsQueue::consumer_name("a.b", "g"),
            NatsQueue::consumer_name("a_b", "g")
        );
        assert_ne!(
            NatsQueue::consumer_name("b", "a_c"),
            NatsQueue::consumer_name("c_b", "a")
        );
    }

    #[test]
    fn limits_are_validated_with_the_key_name() {
        let cases = [
            (
                Config {
                    max_age: Duration::ZERO,
                    ..Config::default()
                },
                "max_age",
            ),
            (
                Config {
                    ack_wait: Duration::ZERO,
                    ..Config::default()
                },
                "ack_wait",
            ),
            (
                Config {
                    prefetch: 0,
                    ..Config::default()
                },
                "prefetch",
            ),
            (
                Config {
                    replicas: 6,
                    ..Config::default()
                },
                "replicas",
            ),
            (
                Config {
                    url: " ".into(),
                    ..Config::default()
                },
                "url",
            ),
            (
                Config {
                    prefix: "csp.prod".into(),
                    ..Config::default()
                },
                "prefix",
            ),
        ];
        for (config, key) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn debug_hides_credentials() {
        let config = Config {
            url: "nats://alice:s3cret@h:4222".into(),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("***@h:4222"),
            "{shown}"
        );
    }
}
