//! The vocabulary of ticket enhancement: who a tenant is, where a job
//! stands, where a resolved ticket came from and which context sources a
//! tenant wants. Each enum's JSON name and store text are its `as_str`.

use crate::event::ParseStatusError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The work queue of enhancement jobs: the tickets service pushes, the
/// tickets workers consume (group [`ENHANCE_GROUP`]).
pub const ENHANCE_TOPIC: &str = "tickets.enhance";
/// The consumer group of the tickets workers.
pub const ENHANCE_GROUP: &str = "tickets-workers";

/// Which tenants' enhancement jobs a queue carries: the one place that
/// names the topic of a tenant's jobs, used by every producer (the intake,
/// the outbox sweeper, an operator's retry) and by the workers.
///
/// A tenant marked *dedicated* (its own namespace and workers, story 3.6)
/// has a topic of its own, `tickets.enhance.tenant.<tenant_id>`, which the
/// shared workers never pull; every other tenant's jobs go to
/// [`ENHANCE_TOPIC`]. The topics are exact subjects, not a hierarchy: a
/// consumer of `tickets.enhance` receives nothing pushed to
/// `tickets.enhance.tenant.acme`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EnhanceQueue {
    /// The shared workers' queue, [`ENHANCE_TOPIC`].
    Shared,
    /// One dedicated tenant's queue, consumed only by its own workers.
    Tenant(TenantId),
}

impl EnhanceQueue {
    /// Where `tenant`'s jobs go, given whether it has a queue of its own.
    pub fn of(tenant: &TenantId, dedicated: bool) -> Self {
        if dedicated {
            Self::Tenant(tenant.clone())
        } else {
            Self::Shared
        }
    }

    /// The queue topic: `tickets.enhance` or `tickets.enhance.tenant.<id>`
    /// (a tenant id is a slug, never a '.', so it stays one segment).
    pub fn topic(&self) -> String {
        match self {
            Self::Shared => ENHANCE_TOPIC.to_owned(),
            Self::Tenant(id) => format!("{ENHANCE_TOPIC}.tenant.{id}"),
        }
    }

    /// The tenant whose jobs alone this queue carries; `None`: shared.
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Self::Shared => None,
            Self::Tenant(id) => Some(id),
        }
    }
}

impl fmt::Display for EnhanceQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.topic())
    }
}

/// One message of [`ENHANCE_TOPIC`]: which job to work on. The job's row in
/// the store is the source of truth; the message only points at it, so a
/// message pushed twice (the sweeper re-queueing) is harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnhanceJob {
    pub job_id: uuid::Uuid,
    pub tenant_id: TenantId,
    /// Also the trace id: one trace from the webhook to the note.
    pub correlation_id: String,
}

/// An MSP's id: a slug of 2 to 63 characters, `[a-z0-9][a-z0-9-]{1,62}`.
/// It appears in webhook paths, log lines and metric labels, so nothing
/// outside that alphabet is ever accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

/// Why a text is not a [`TenantId`]; the message is shown to admins.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "tenant_id must be 2 to 63 characters of lower-case letters, digits and '-', starting with a letter or digit (got '{0}')"
)]
pub struct ParseTenantIdError(String);

impl TenantId {
    pub const MAX_LEN: usize = 63;

    pub fn parse(text: &str) -> Result<Self, ParseTenantIdError> {
        let bytes = text.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let valid = (2..=Self::MAX_LEN).contains(&bytes.len())
            && bytes.first().is_some_and(alnum)
            && bytes.iter().all(|b| alnum(b) || *b == b'-');
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            // Shown back to an admin: bounded, and only printable ASCII.
            let shown: String = text
                .chars()
                .take(Self::MAX_LEN + 1)
                .map(|c| if c.is_ascii_graphic() { c } else { '?' })
                .collect();
            Err(ParseTenantIdError(shown))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for TenantId {
    type Err = ParseTenantIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Declares a closed vocabulary whose JSON name and store text are one
/// string per variant, with `ALL`, `as_str`, `FromStr` and `Display`.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every variant, for exhaustive mapping and the store's checks.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The one name everywhere: JSON, the store and the proto text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseStatusError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| ParseStatusError::new($what, s))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use vocabulary;

vocabulary! {
    /// Where an enhancement job stands. `Pending` until a worker takes it,
    /// `Processing` while one works on it (again after a redelivery), then
    /// `Completed` (the note is on the ticket) or `Failed` (the error kept).
    EnhancementStatus, "enhancement status" {
        Pending = "pending",
        Processing = "processing",
        Completed = "completed",
        Failed = "failed",
    }
}

impl EnhancementStatus {
    /// Completed and failed jobs are never worked on again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

vocabulary! {
    /// A technician's vote on a posted note, from the "Was this helpful?"
    /// links at its end; a job keeps its latest vote.
    FeedbackVote, "feedback vote" {
        Helpful = "helpful",
        NotHelpful = "not_helpful",
    }
}

impl FeedbackVote {
    /// The other vote: what a technician who changes their mind clicks.
    pub fn other(self) -> Self {
        match self {
            Self::Helpful => Self::NotHelpful,
            Self::NotHelpful => Self::Helpful,
        }
    }
}

vocabulary! {
    /// How a resolved ticket reached the history.
    HistorySource, "ticket history source" {
        BulkImport = "bulk_import",
        WebhookResolved = "webhook_resolved",
    }
}

vocabulary! {
    /// A context source a tenant may switch on.
    ContextSource, "context source" {
        TicketHistory = "ticket_history",
        Kb = "kb",
        IpInventory = "ip_inventory",
    }
}

vocabulary! {
    /// How the note is written on the ticket; HTML unless a tenant asks
    /// for Markdown.
    #[derive(Default)]
    NoteFormat, "note format" {
        #[default]
        Html = "html",
        Markdown = "markdown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dedicated_tenant_has_a_topic_of_its_own() {
        let acme = TenantId::parse("acme").unwrap();
        let shared = EnhanceQueue::of(&acme, false);
        assert_eq!(shared, EnhanceQueue::Shared);
        assert_eq!(shared.topic(), "tickets.enhance");
        assert_eq!(shared.tenant(), None);
        let own = EnhanceQueue::of(&acme, true);
        assert_eq!(own.topic(), "tickets.enhance.tenant.acme");
        assert_eq!(own.tenant(), Some(&acme));
        // Neither is another's dead-letter topic (`<topic>.dead`), even for a
        // tenant called "dead", and no two tenants share one.
        let dead = EnhanceQueue::of(&TenantId::parse("dead").unwrap(), true);
        assert_ne!(dead.topic(), format!("{}.dead", shared.topic()));
        assert_ne!(
            EnhanceQueue::of(&TenantId::parse("acme-2").unwrap(), true).topic(),
            own.topic()
        );
    }

    #[test]
    fn tenant_ids_are_slugs() {
        for ok in ["acme", "a1", "acme-msp-2", &"a".repeat(63)] {
            assert_eq!(TenantId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "a",
            "-acme",
            "Acme",
            "acme_msp",
            "acme msp",
            "acme/../b",
            "ácme",
            &"a".repeat(64),
        ] {
            let err = TenantId::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("tenant_id must be"), "{bad}: {err}");
        }
    }

    #[test]
    fn tenant_id_errors_echo_only_printable_ascii() {
        let err = TenantId::parse("a\nb\u{202e}c").unwrap_err().to_string();
        assert!(err.ends_with("(got 'a?b?c')"), "{err}");
    }

    #[test]
    fn tenant_ids_deserialize_through_the_check() {
        assert!(serde_json::from_str::<TenantId>("\"acme\"").is_ok());
        assert!(serde_json::from_str::<TenantId>("\"ACME\"").is_err());
    }

    #[test]
    fn vocabularies_round_trip() {
        for s in EnhancementStatus::ALL {
            assert_eq!(s.as_str().parse::<EnhancementStatus>().unwrap(), *s);
            assert_eq!(
                serde_json::to_string(s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        for s in HistorySource::ALL {
            assert_eq!(s.as_str().parse::<HistorySource>().unwrap(), *s);
        }
        for s in ContextSource::ALL {
            assert_eq!(s.as_str().parse::<ContextSource>().unwrap(), *s);
        }
        for v in FeedbackVote::ALL {
            assert_eq!(v.as_str().parse::<FeedbackVote>().unwrap(), *v);
            assert_eq!(v.other().other(), *v);
            assert_ne!(v.other(), *v);
        }
        assert!("Helpful".parse::<FeedbackVote>().is_err());
        assert!("done".parse::<EnhancementStatus>().is_err());
        assert_eq!(NoteFormat::default(), NoteFormat::Html);
        assert!(EnhancementStatus::Failed.is_final());
        assert!(!EnhancementStatus::Processing.is_final());
    }
}
