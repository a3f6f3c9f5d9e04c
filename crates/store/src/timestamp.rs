//! Both backends keep milliseconds (SQLite as unix ms, Postgres could keep
//! microseconds), so every timestamp is truncated before it is written and a
//! record reads back exactly as it was returned.

use crate::error::Error;
use time::{OffsetDateTime, UtcOffset};

pub(crate) fn now() -> OffsetDateTime {
    truncate(OffsetDateTime::now_utc())
}

/// UTC, to the millisecond.
pub(crate) fn truncate(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(UtcOffset::UTC);
    let millis_as_nanos = at.nanosecond() / 1_000_000 * 1_000_000;
    at.replace_nanosecond(millis_as_nanos)
        .expect("a whole number of milliseconds is a valid nanosecond")
}

pub(crate) fn to_unix_ms(at: OffsetDateTime) -> i64 {
    // Fits: OffsetDateTime spans +-9999 years, about 3.2e14 ms.
    (truncate(at).unix_timestamp_nanos() / 1_000_000) as i64
}

pub(crate) fn from_unix_ms(ms: i64) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| Error::Corrupt(format!("timestamp {ms} ms is out of range: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn truncates_to_utc_milliseconds() {
        let at = datetime!(2025-03-04 05:06:07.123_456_789 +02:00);
        assert_eq!(truncate(at), datetime!(2025-03-04 03:06:07.123 UTC));
        assert_eq!(truncate(at).offset(), UtcOffset::UTC);
    }

    #[test]
    fn unix_ms_round_trips_including_before_1970() {
        for at in [
            datetime!(2025-03-04 05:06:07.123 UTC),
            datetime!(1969-12-31 23:59:59.999 UTC),
        ] {
            assert_eq!(from_unix_ms(to_unix_ms(at)).unwrap(), at);
        }
    }
}
