//! The distributed event bus: a NATS JetStream stream.
//!
//! One stream per deployment prefix, `<PREFIX>_SESSION_EVENTS`, holding
//! subjects `<prefix>.session.<session id>`. Limits per subject bound each
//! session's replay window; `max_age` bounds the stream as a whole. Every
//! message carries `Csp-Seq` (the session seq, readable without decoding the
//! payload) and `Nats-Msg-Id = <session>:<seq>` (so a retried publish is
//! stored once).
//!
//! A subscription is an ephemeral ordered push consumer filtered to one
//! session's subject. Before creating it we look up where in the stream
//! `after_seq + 1` sits (direct gets by subject, a binary search over stream
//! sequences), so a reconnect does not re-read the whole window. Only
//! streams and consumers are used: the key-value API of async-nats does not
//! work against the NATS 2.9 servers we support.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use async_trait::async_trait;
use bytes::Bytes;
use csp_domain::{SessionEvent, SessionId};
use futures::StreamExt;

use crate::{Cursor, Error, EventBus, EventStream, Step};
use csp_redact::{scrub, url as redact_url};

/// W3C trace context of the turn that produced an event (see
/// [`SessionEvent::trace`]).
const TRACE_HEADER: &str = "traceparent";
/// Header with the event's session seq.
pub const SEQ_HEADER: &str = "Csp-Seq";

/// How to reach NATS and how much to retain.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// NATS server URL(s), comma-separated; may carry credentials
    /// (`nats://user:password@host:4222`), which are never logged.
    pub url: String,
    /// Names the stream (`<PREFIX>_SESSION_EVENTS`) and its subjects
    /// (`<prefix>.session.*`), so several deployments can share a server.
    /// Letters, digits, `_` and `-` only.
    pub prefix: String,
    /// Events older than this are dropped. Must be non-zero so the stream
    /// stays bounded.
    pub max_age: Duration,
    /// Events retained per session (the replay window).
    pub max_msgs_per_subject: i64,
    /// Stream replicas (1 for a single server, 3 for a cluster).
    pub replicas: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            prefix: "csp".into(),
            // The bus only bridges reconnects; history older than this is
            // read from the store.
            max_age: Duration::from_secs(60 * 60),
            max_msgs_per_subject: 2048,
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
            .field("max_msgs_per_subject", &self.max_msgs_per_subject)
            .field("replicas", &self.replicas)
            .finish()
    }
}

/// How long JetStream remembers message ids: a publish retried within it
/// is stored once.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

impl Config {
    fn validate(&self) -> Result<(), Error> {
        validate_connection(&self.prefix, &self.url, self.replicas)?;
        if self.max_age.is_zero() {
            return Err(Error::Config(
                "max_age must be greater than zero, or the stream would grow without bound".into(),
            ));
        }
        if self.max_msgs_per_subject < 1 {
            return Err(Error::Config(format!(
                "max_msgs_per_subject must be at least 1 (events retained per session), got {}",
                self.max_msgs_per_subject
            )));
        }
        Ok(())
    }

    /// The stream's name for this prefix.
    pub fn stream_name(&self) -> String {
        format!("{}_SESSION_EVENTS", self.prefix.to_ascii_uppercase())
    }

    fn subjects(&self) -> String {
        format!("{}.session.*", self.prefix)
    }

    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream_name(),
            description: Some(
                "csp session events (replay window for reconnecting browsers)".into(),
            ),
            subjects: vec![self.subjects()],
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            storage: stream::StorageType::File,
            max_age: self.max_age,
            max_messages_per_subject: self.max_msgs_per_subject,
            num_replicas: self.replicas,
            duplicate_window: DUPLICATE_WINDOW.min(self.max_age),
            allow_direct: true,
            ..Default::default()
        }
    }
}

/// A prefix becomes a subject token and part of a stream name, so it is
/// held to the characters valid in both.
/// The settings every JetStream user of csp shares: prefix, server URL,
/// stream replicas.
pub(crate) fn validate_connection(prefix: &str, url: &str, replicas: usize) -> Result<(), Error> {
    validate_prefix(prefix)?;
    if url.trim().is_empty() {
        return Err(Error::Config(
            "url must name a NATS server, e.g. nats://127.0.0.1:4222".into(),
        ));
    }
    if !(1..=5).contains(&replicas) {
        return Err(Error::Config(format!(
            "replicas must be between 1 and 5 (JetStream's limit), got {replicas}"
        )));
    }
    Ok(())
}

fn validate_prefix(prefix: &str) -> Result<(), Error> {
    if prefix.is_empty() || prefix.len() > 32 {
        return Err(Error::Config(format!(
            "prefix must be 1 to 32 characters, got {} (e.g. \"csp\" or \"csp-staging\")",
            prefix.len()
        )));
    }
    if let Some(bad) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(Error::Config(format!(
            "prefix {prefix:?} contains {bad:?}: it must be a single NATS subject token of \
             letters, digits, '_' and '-' (no '.', '*', '>' or spaces), e.g. \"csp\""
        )));
    }
    Ok(())
}

/// The JetStream [`EventBus`]. Cloning it shares the connection.
#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    stream: stream::Stream,
    stream_name: String,
    prefix: String,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus")
            .field("stream", &self.stream_name)
            .finish_non_exhaustive()
    }
}

impl NatsBus {
    /// Connects and creates the stream, or updates its limits if it exists.
    #[tracing::instrument(name = "bus.connect", skip_all, fields(url = %redact_url(&config.url), prefix = %config.prefix), err)]
    pub async fn connect(config: Config) -> Result<Self, Error> {
        config.validate()?;
        let servers: Vec<&str> = config.url.split(',').map(str::trim).collect();
        let client = async_nats::ConnectOptions::new()
            .name("csp-bus")
            .connection_timeout(Duration::from_secs(5))
            .connect(servers.as_slice())
            .await
            .map_err(|err| Error::Connect {
                url: redact_url(&config.url),
                reason: scrub(&err.to_string(), &config.url),
            })?;
        let jetstream = jetstream::new(client.clone());
        let stream = ensure_stream(&jetstream, config.stream_config(), &config.prefix).await?;
        tracing::info!(stream = %config.stream_name(), "event bus stream ready");
        Ok(Self {
            client,
            jetstream,
            stream,
            stream_name: config.stream_name(),
            prefix: config.prefix,
        })
    }

    /// The JetStream stream holding the events.
    pub fn stream_name(&self) -> &str {
        &self.stream_name
    }

    fn subject(&self, session: SessionId) -> String {
        format!("{}.session.{session}", self.prefix)
    }

    /// Where the consumer should start so that its first event with
    /// `seq > after_seq` is `after_seq + 1`, or the gap if that is gone.
    ///
    /// Any stream position at or before `after_seq + 1` is correct (the
    /// reader skips the overlap), so every shortcut here falls back to an
    /// earlier one; the search only saves re-reading the window.
    async fn start_position(
        &self,
        session: SessionId,
        subject: &str,
        after_seq: u64,
    ) -> Result<Start, Error> {
        if after_seq == 0 {
            return Ok(Start::At(consumer::DeliverPolicy::All));
        }
        let Some(last) = self.last_on_subject(session, subject).await? else {
            return Ok(Start::At(consumer::DeliverPolicy::All));
        };
        if last.seq <= after_seq {
            return Ok(Start::from_stream_seq(last.stream_seq + 1));
        }
        let Some(first) = self.next_on_subject(session, subject, 0).await? else {
            return Ok(Start::At(consumer::DeliverPolicy::All));
        };
        if first.seq > after_seq + 1 {
            return Ok(Start::Gap {
                first_available: first.seq,
            });
        }
        if first.seq == after_seq + 1 {
            return Ok(Start::from_stream_seq(first.stream_seq));
        }
        // Invariants: every message of the session at or before stream seq
        // `lo` has seq <= after_seq; the first one at or after `hi` is
        // `found`, with seq > after_seq.
        let (mut lo, mut hi, mut found) = (first.stream_seq, last.stream_seq, last.stream_seq);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let Some(probe) = self.next_on_subject(session, subject, mid).await? else {
                // Retention moved under us; `lo` is still early enough.
                return Ok(Start::from_stream_seq(lo));
            };
            if probe.stream_seq >= hi {
                // Nothing of this session in [mid, hi): the answer is `found`.
                hi = mid;
                continue;
            }
            if probe.seq <= after_seq {
                lo = probe.stream_seq;
            } else {
                hi = mid;
                found = probe.stream_seq;
            }
        }
        Ok(Start::from_stream_seq(found))
    }

    async fn last_on_subject(
        &self,
        session: SessionId,
        subject: &str,
    ) -> Result<Option<Located>, Error> {
        let found = self.stream.direct_get_last_for_subject(subject).await;
        located(session, found)
    }

    async fn next_on_subject(
        &self,
        session: SessionId,
        subject: &str,
        from_stream_seq: u64,
    ) -> Result<Option<Located>, Error> {
        let from = (from_stream_seq > 0).then_some(from_stream_seq);
        let found = self.stream.direct_get_next_for_subject(subject, from).await;
        located(session, found)
    }
}

/// Creates the stream `desired` describes, or updates the limits of the one
/// that exists. `prefix` (from which `desired` was named) only words errors.
pub(crate) async fn ensure_stream(
    jetstream: &jetstream::Context,
    desired: stream::Config,
    prefix: &str,
) -> Result<stream::Stream, Error> {
    let name = desired.name.clone();
    let stream_error = |reason: String| Error::Stream {
        stream: name.clone(),
        reason,
    };
    match jetstream.get_stream(&name).await {
        Ok(mut existing) => {
            let info = existing
                .info()
                .await
                .map_err(|err| stream_error(err.to_string()))?;
            // Two prefixes that differ only in case map to one stream name;
            // never take over a stream that carries other subjects.
            if info.config.subjects != desired.subjects {
                return Err(stream_error(format!(
                    "it exists with subjects {:?}, not {:?}; another deployment uses a prefix \
                     that differs from {prefix:?} only in case, choose a different prefix",
                    info.config.subjects, desired.subjects,
                )));
            }
            jetstream
                .update_stream(desired)
                .await
                .map_err(|err| stream_error(format!("update failed: {err}")))?;
        }
        Err(err) => match err.kind() {
            jetstream::context::GetStreamErrorKind::JetStream(js)
                if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                // Another process may create it at the same moment; create
                // with an identical config succeeds, and update covers a
                // config that differs only in limits.
                // nats-server 2.9 can fail a create with 10077 ("mkdir
                // .../jetstream/$G/streams: no such file or directory") while
                // another stream of the account is being deleted: it removes
                // and recreates that directory. Creating is idempotent, so a
                // few retries ride it out.
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match jetstream.create_or_update_stream(desired.clone()).await {
                        Ok(_) => break,
                        Err(err) if attempt < 5 => {
                            tracing::warn!(stream = %name, attempt, error = %err, "stream create failed; retrying");
                            tokio::time::sleep(std::time::Duration::from_millis(100 * attempt))
                                .await;
                        }
                        Err(err) => return Err(stream_error(format!("create failed: {err}"))),
                    }
                }
            }
            _ => return Err(stream_error(err.to_string())),
        },
    }
    jetstream
        .get_stream(&name)
        .await
        .map_err(|err| stream_error(err.to_string()))
}

/// Where a subscription's consumer starts.
enum Start {
    At(consumer::DeliverPolicy),
    Gap { first_available: u64 },
}

impl Start {
    fn from_stream_seq(start_sequence: u64) -> Self {
        Start::At(consumer::DeliverPolicy::ByStartSequence { start_sequence })
    }
}

/// A stored message's position: its session seq and its stream sequence.
struct Located {
    seq: u64,
    stream_seq: u64,
}

fn located(
    session: SessionId,
    found: Result<jetstream::message::StreamMessage, stream::DirectGetError>,
) -> Result<Option<Located>, Error> {
    match found {
        Ok(message) => {
            let seq = session_seq(session, message.headers.get(SEQ_HEADER), &message.payload)?;
            Ok(Some(Located {
                seq,
                stream_seq: message.sequence,
            }))
        }
        Err(err) if err.kind() == stream::DirectGetErrorKind::NotFound => Ok(None),
        Err(err) => Err(Error::Subscribe {
            session,
            source: Box::new(err),
        }),
    }
}

/// The session seq of a stored message: from its header when present,
/// else from its payload.
fn session_seq(
    session: SessionId,
    header: Option<&async_nats::HeaderValue>,
    payload: &[u8],
) -> Result<u64, Error> {
    if let Some(seq) = header.and_then(|value| value.as_str().parse().ok()) {
        return Ok(seq);
    }
    decode(session, payload).map(|event| event.seq)
}

fn decode(session: SessionId, payload: &[u8]) -> Result<SessionEvent, Error> {
    serde_json::from_slice(payload).map_err(|source| Error::Decode { session, source })
}

struct Reader {
    messages: consumer::push::Ordered,
    cursor: Cursor,
    done: bool,
}

impl Reader {
    async fn next(&mut self) -> Option<Result<SessionEvent, Error>> {
        if self.done {
            return None;
        }
        let session = self.cursor.session;
        loop {
            let message = match self.messages.next().await {
                Some(Ok(message)) => message,
                Some(Err(err))
                    if err.kind() == consumer::push::OrderedErrorKind::MissingHeartbeat =>
                {
                    // The ordered consumer recreates itself from the last
                    // stream sequence it delivered; nothing is lost.
                    tracing::warn!(session.id = %session, "event bus consumer missed heartbeats; recreating it");
                    continue;
                }
                Some(Err(err)) => {
                    self.done = true;
                    return Some(Err(Error::Subscribe {
                        session,
                        source: Box::new(err),
                    }));
                }
                None => {
                    self.done = true;
                    return Some(Err(Error::Subscribe {
                        session,
                        source: "the NATS connection was closed".into(),
                    }));
                }
            };
            let headers = message.headers.as_ref();
            let seq = match session_seq(
                session,
                headers.and_then(|h| h.get(SEQ_HEADER)),
                &message.payload,
            ) {
                Ok(seq) => seq,
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
            };
            match self.cursor.step(seq) {
                Ok(Step::Skip) => continue,
                Ok(Step::Deliver) => {
                    let event = decode(session, &message.payload).map(|mut event| {
                        event.trace = message
                            .headers
                            .as_ref()
                            .and_then(|h| h.get(TRACE_HEADER))
                            .map(|v| v.as_str().to_owned());
                        event
                    });
                    if event.is_err() {
                        self.done = true;
                    }
                    return Some(event);
                }
                Err(hole) => {
                    self.done = true;
                    return Some(Err(hole));
                }
            }
        }
    }
}

#[async_trait]
impl EventBus for NatsBus {
    #[tracing::instrument(name = "bus.publish", skip_all, fields(session.id = %event.session_id, seq = event.seq), err)]
    async fn publish(&self, event: &SessionEvent) -> Result<(), Error> {
        let publish_error = |source: Box<dyn std::error::Error + Send + Sync>| Error::Publish {
            session: event.session_id,
            seq: event.seq,
            source,
        };
        let payload = serde_json::to_vec(event).map_err(|err| publish_error(Box::new(err)))?;
        let mut headers = HeaderMap::new();
        headers.insert(SEQ_HEADER, event.seq.to_string().as_str());
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("{}:{}", event.session_id, event.seq).as_str(),
        );
        if let Some(trace) = &event.trace {
            headers.insert(TRACE_HEADER, trace.as_str());
        }
        let ack = self
            .jetstream
            .publish_with_headers(
                self.subject(event.session_id),
                headers,
                Bytes::from(payload),
            )
            .await
            .map_err(|err| publish_error(Box::new(err)))?;
        ack.await.map_err(|err| publish_error(Box::new(err)))?;
        Ok(())
    }

    #[tracing::instrument(name = "bus.subscribe", skip_all, fields(session.id = %session, after_seq), err)]
    async fn subscribe(&self, session: SessionId, after_seq: u64) -> Result<EventStream, Error> {
        let subject = self.subject(session);
        let deliver_policy = match self.start_position(session, &subject, after_seq).await? {
            Start::At(policy) => policy,
            Start::Gap { first_available } => {
                let gap = Error::Gap {
                    session,
                    after_seq,
                    first_available,
                };
                return Ok(futures::stream::once(async move { Err(gap) }).boxed());
            }
        };
        let subscribe_error =
            |source: Box<dyn std::error::Error + Send + Sync>| Error::Subscribe { session, source };
        let consumer = self
            .stream
            .create_consumer(consumer::push::OrderedConfig {
                deliver_subject: self.client.new_inbox(),
                filter_subject: subject,
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|err| subscribe_error(Box::new(err)))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|err| subscribe_error(Box::new(err)))?;
        let reader = Reader {
            messages,
            cursor: Cursor::new(session, after_seq),
            done: false,
        };
        let stream = futures::stream::unfold(reader, |mut reader| async move {
            let item = reader.next().await?;
            Some((item, reader))
        });
        Ok(stream.boxed())
    }

    #[tracing::instrument(name = "bus.last_seq", skip_all, fields(session.id = %session), err)]
    async fn last_seq(&self, session: SessionId) -> Result<u64, Error> {
        // The session's latest message holds its highest seq, as each
        // session is published in seq order. Asked of the stream leader,
        // not with a direct get (which any replica may answer, possibly
        // behind): numbering restarted from a stale answer would be
        // deduplicated away as retries.
        let last = self
            .stream
            .get_last_raw_message_by_subject(&self.subject(session))
            .await;
        match last {
            Ok(message) => session_seq(session, message.headers.get(SEQ_HEADER), &message.payload),
            Err(err) if err.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(0),
            Err(err) => Err(Error::Read {
                session,
                source: Box::new(err),
            }),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_must_be_one_subject_token() {
        for good in ["csp", "CSP", "csp-staging", "t_1"] {
            validate_prefix(good).unwrap();
        }
        for bad in ["", "csp.prod", "a*", "a>", "a b", "naïve", &"x".repeat(33)] {
            let err = validate_prefix(bad).unwrap_err().to_string();
            assert!(err.contains("prefix"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn stream_and_subjects_follow_the_prefix() {
        let config = Config {
            prefix: "csp-dev".into(),
            ..Config::default()
        };
        assert_eq!(config.stream_name(), "CSP-DEV_SESSION_EVENTS");
        assert_eq!(config.subjects(), "csp-dev.session.*");
        let stream = config.stream_config();
        assert!(stream.allow_direct);
        assert_eq!(stream.max_messages_per_subject, 2048);
    }

    #[test]
    fn duplicate_window_never_exceeds_max_age() {
        let config = Config {
            max_age: Duration::from_secs(30),
            ..Config::default()
        };
        assert_eq!(
            config.stream_config().duplicate_window,
            Duration::from_secs(30)
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
                    max_msgs_per_subject: 0,
                    ..Config::default()
                },
                "max_msgs_per_subject",
            ),
            (
                Config {
                    replicas: 0,
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
