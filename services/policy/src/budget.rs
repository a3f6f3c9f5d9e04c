//! Monthly cost caps: admission before a turn, settlement after it.
//!
//! A turn is admitted while `spent + reserved < cap`, and admitting it
//! reserves `turn_reserve` until the turn's real cost settles it. So with
//! many turns of one user in flight, overspend is bounded by what was
//! already admitted: at most one reservation past the cap, plus whatever
//! the admitted turns cost beyond their reservations (docs/policy.md).
//!
//! Money is integer micro-dollars; months are calendar months in the
//! configured UTC offset (UTC by default), so spend restarts at $0.00 on
//! the first of each month without any job having to reset it.

use time::{OffsetDateTime, UtcOffset};

pub(crate) const MICROS_PER_USD: f64 = 1_000_000.0;

/// The service's notion of now; tests inject one to cross a month.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

pub(crate) fn micros(usd: f64) -> i64 {
    (usd * MICROS_PER_USD).round() as i64
}

pub(crate) fn usd(micros: i64) -> f64 {
    micros as f64 / MICROS_PER_USD
}

/// The budget month of `now` ("2026-11") in `offset`.
pub(crate) fn month(now: OffsetDateTime, offset: UtcOffset) -> String {
    let local = now.to_offset(offset);
    format!("{:04}-{:02}", local.year(), u8::from(local.month()))
}

/// Whole percent of the cap spent, rounded down.
pub(crate) fn percent(spent: i64, cap: i64) -> u32 {
    if cap <= 0 {
        return 100;
    }
    (spent.max(0) as i128 * 100 / cap as i128).min(u32::MAX as i128) as u32
}

/// "$100" for whole dollars, "$100.50" otherwise.
pub(crate) fn dollars(micros: i64) -> String {
    if micros % 1_000_000 == 0 {
        format!("${}", micros / 1_000_000)
    } else {
        format!("${:.2}", usd(micros))
    }
}

pub(crate) fn warning(spent: i64, cap: i64) -> String {
    format!(
        "You have used {}% of your {} monthly budget.",
        percent(spent, cap),
        dollars(cap)
    )
}

pub(crate) fn exceeded(spent: i64, cap: i64) -> String {
    format!(
        "Monthly budget exceeded (${:.2}/${:.2}). Contact your administrator to increase your limit.",
        usd(spent),
        usd(cap)
    )
}

/// The share of the cap after which the user is warned (80 %).
pub(crate) fn crosses_warning(spent: i64, cap: i64) -> bool {
    spent as i128 * 100 >= cap as i128 * 80
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, offset};

    #[test]
    fn seed_texts() {
        assert_eq!(
            warning(micros(81.0), micros(100.0)),
            "You have used 81% of your $100 monthly budget."
        );
        assert_eq!(
            exceeded(micros(100.0), micros(100.0)),
            "Monthly budget exceeded ($100.00/$100.00). Contact your administrator to increase your limit."
        );
        assert_eq!(dollars(micros(12.5)), "$12.50");
        assert!(crosses_warning(micros(80.0), micros(100.0)));
        assert!(!crosses_warning(micros(79.99), micros(100.0)));
        assert_eq!(percent(micros(79.5), micros(100.0)), 79);
    }

    #[test]
    fn months_follow_the_offset() {
        let t = datetime!(2026-11-30 23:30 UTC);
        assert_eq!(month(t, UtcOffset::UTC), "2026-11");
        assert_eq!(month(t, offset!(+01:00)), "2026-12");
        assert_eq!(
            month(datetime!(2026-01-01 00:30 UTC), offset!(-01:00)),
            "2025-12"
        );
    }
}
