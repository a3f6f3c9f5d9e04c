use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// An id that is not a UUID.
#[derive(Debug, thiserror::Error)]
#[error("invalid {kind} id '{value}': expected a UUID")]
pub struct ParseIdError {
    kind: &'static str,
    value: String,
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| ParseIdError {
                    kind: $kind,
                    value: s.chars().take(64).collect(),
                })
            }
        }
    };
}

uuid_id!(
    /// A chat session. It is also the Claude Code session id (`--session-id`),
    /// so the CLI's transcript and csp's records share one key.
    SessionId,
    "session"
);
uuid_id!(
    /// A csp user.
    UserId,
    "user"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trip_and_error() {
        let id = SessionId::new();
        assert_eq!(id.to_string().parse::<SessionId>().unwrap(), id);
        let err = "nope".parse::<UserId>().unwrap_err().to_string();
        assert_eq!(err, "invalid user id 'nope': expected a UUID");
    }
}
