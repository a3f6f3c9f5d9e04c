use csp_domain::SessionId;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong on the event bus. Messages name the fix;
/// URLs in them have their credentials replaced by `***`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is unusable.
    #[error("invalid event bus config: {0}")]
    Config(String),

    /// The NATS server could not be reached or refused the connection.
    #[error(
        "cannot connect to NATS at {url}: {reason}; check that nats-server is running and \
         reachable at that address and that the credentials in the URL are right"
    )]
    Connect { url: String, reason: String },

    /// The JetStream stream could not be created, updated or read.
    #[error(
        "cannot set up JetStream stream '{stream}': {reason}; check that the NATS server runs \
         with JetStream enabled (nats-server -js) and that the account may manage streams"
    )]
    Stream { stream: String, reason: String },

    /// An event was not stored. Publishing it again is safe: it is
    /// de-duplicated by session and seq.
    #[error(
        "cannot publish event {seq} of session {session}: {source}; the event bus may be \
         unavailable, publish the event again once it is back"
    )]
    Publish {
        session: SessionId,
        seq: u64,
        #[source]
        source: BoxError,
    },

    /// A subscription could not be started, or broke.
    #[error(
        "cannot subscribe to events of session {session}: {source}; the event bus may be \
         unavailable, resync from the store and subscribe again"
    )]
    Subscribe {
        session: SessionId,
        #[source]
        source: BoxError,
    },

    /// What the bus retains of a session could not be read.
    #[error(
        "cannot read the events the event bus retains for session {session}: {source}; the \
         event bus may be unavailable, try again once it is back"
    )]
    Read {
        session: SessionId,
        #[source]
        source: BoxError,
    },

    /// The retained window no longer holds `after_seq + 1`.
    #[error(
        "events of session {session} after seq {after_seq} are no longer retained by the event \
         bus (the oldest retained is {first_available}); resync from the store, then subscribe \
         again after the last seq it holds"
    )]
    Gap {
        session: SessionId,
        after_seq: u64,
        first_available: u64,
    },

    /// A subscriber fell so far behind that the events it had not received
    /// yet were dropped from the retained window.
    #[error(
        "subscriber of session {session} fell behind: it received up to seq {last_delivered} \
         but the oldest event still retained is {first_available}; resync from the store, then \
         subscribe again after the last seq it holds"
    )]
    Lagged {
        session: SessionId,
        last_delivered: u64,
        first_available: u64,
    },

    /// A message on the bus is not a valid `SessionEvent`.
    #[error(
        "cannot decode an event of session {session} from the event bus: {source}; a publisher \
         with a different csp version may share this bus prefix, use a separate prefix for it"
    )]
    Decode {
        session: SessionId,
        #[source]
        source: serde_json::Error,
    },

    /// The readiness check failed.
    #[error("event bus is not ready: {reason}; check the NATS server and its JetStream status")]
    Unavailable { reason: String },

    /// A work-queue message was not stored. Pushing it again with the same
    /// id is safe: it is stored once.
    #[error(
        "cannot push message '{id}' to queue topic '{topic}': {source}; push it again with the \
         same id once the queue is back (a retry is stored once)"
    )]
    Push {
        topic: String,
        id: String,
        #[source]
        source: BoxError,
    },

    /// A work-queue consumer could not be started, or its deliveries broke.
    #[error(
        "cannot pull from queue topic '{topic}' as group '{group}': {source}; pull again once \
         the queue is back (messages not acked are delivered again)"
    )]
    Pull {
        topic: String,
        group: String,
        #[source]
        source: BoxError,
    },

    /// An ack or nack of a work-queue message was not recorded.
    #[error(
        "cannot acknowledge message '{id}' of queue topic '{topic}': {source}; it will be \
         delivered again after its ack deadline, so handling it must be idempotent"
    )]
    Ack {
        topic: String,
        id: String,
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// An equal error for another subscriber of the same failed
    /// subscription: same variant and fields, and a source that reads the
    /// same (sources are not `Clone`, so they are carried as their text).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Config(reason) => Error::Config(reason.clone()),
            Error::Connect { url, reason } => Error::Connect {
                url: url.clone(),
                reason: reason.clone(),
            },
            Error::Stream { stream, reason } => Error::Stream {
                stream: stream.clone(),
                reason: reason.clone(),
            },
            Error::Publish {
                session,
                seq,
                source,
            } => Error::Publish {
                session: *session,
                seq: *seq,
                source: source.to_string().into(),
            },
            Error::Subscribe { session, source } => Error::Subscribe {
                session: *session,
                source: source.to_string().into(),
            },
            Error::Read { session, source } => Error::Read {
                session: *session,
                source: source.to_string().into(),
            },
            Error::Gap {
                session,
                after_seq,
                first_available,
            } => Error::Gap {
                session: *session,
                after_seq: *after_seq,
                first_available: *first_available,
            },
            Error::Lagged {
                session,
                last_delivered,
                first_available,
            } => Error::Lagged {
                session: *session,
                last_delivered: *last_delivered,
                first_available: *first_available,
            },
            Error::Decode { session, source } => Error::Decode {
                session: *session,
                source: serde::de::Error::custom(source),
            },
            Error::Unavailable { reason } => Error::Unavailable {
                reason: reason.clone(),
            },
            Error::Push { topic, id, source } => Error::Push {
                topic: topic.clone(),
                id: id.clone(),
                source: source.to_string().into(),
            },
            Error::Pull {
                topic,
                group,
                source,
            } => Error::Pull {
                topic: topic.clone(),
                group: group.clone(),
                source: source.to_string().into(),
            },
            Error::Ack { topic, id, source } => Error::Ack {
                topic: topic.clone(),
                id: id.clone(),
                source: source.to_string().into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_error_never_shows_the_password() {
        let err = Error::Connect {
            url: csp_redact::url("nats://alice:s3cret@h:4222"),
            reason: "timed out".into(),
        };
        let text = err.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("nats://alice:***@h:4222"), "{text}");
    }

    #[test]
    fn a_duplicate_reads_the_same() {
        let session = SessionId::new();
        let decode = serde_json::from_str::<csp_domain::SessionEvent>("{").unwrap_err();
        let errors = [
            Error::Subscribe {
                session,
                source: "connection reset".into(),
            },
            Error::Decode {
                session,
                source: decode,
            },
            Error::Lagged {
                session,
                last_delivered: 4,
                first_available: 9,
            },
            Error::Unavailable {
                reason: "stream gone".into(),
            },
        ];
        for error in errors {
            let copy = error.duplicate();
            assert_eq!(copy.to_string(), error.to_string());
            assert_eq!(
                std::mem::discriminant(&copy),
                std::mem::discriminant(&error)
            );
        }
    }
}
