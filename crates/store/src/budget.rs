//! Rules both adapters apply to budget calls before touching the database.

use crate::{Error, Spend};

/// A budget month is "YYYY-MM"; the schema checks the same, but a typo is
/// reported here as the caller's mistake rather than as a constraint failure.
pub(crate) fn check_month(month: &str) -> Result<(), Error> {
    let bytes = month.as_bytes();
    let well_formed = bytes.len() == 7
        && bytes[4] == b'-'
        && bytes[..4].iter().chain(&bytes[5..]).all(u8::is_ascii_digit)
        && matches!(month[5..].parse::<u8>(), Ok(1..=12));
    if well_formed {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "budget month {month:?} is not YYYY-MM"
        )))
    }
}

pub(crate) fn check_micros(what: &str, micros: i64) -> Result<(), Error> {
    if micros < 0 {
        return Err(Error::InvalidInput(format!(
            "{what} is negative: {micros} micro-dollars"
        )));
    }
    Ok(())
}

/// The admission rule: a turn may start while the month's spend plus what
/// turns in flight set aside is below the cap. Saturating, so that absurd
/// values refuse instead of overflowing.
pub(crate) fn admits(spend: &Spend, cap_micros: i64) -> bool {
    spend.spent_micros.saturating_add(spend.reserved_micros) < cap_micros
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_yyyy_mm() {
        for ok in ["2026-11", "1999-01", "2026-12"] {
            assert!(check_month(ok).is_ok(), "{ok}");
        }
        for bad in [
            "2026-13",
            "2026-00",
            "2026-1",
            "26-11",
            "2026/11",
            "2026-11-01",
            "",
            "２０２６-11",
            "2026-+1",
        ] {
            assert!(
                matches!(check_month(bad), Err(Error::InvalidInput(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn admission_is_strictly_below_the_cap() {
        let spend = |spent, reserved| Spend {
            spent_micros: spent,
            reserved_micros: reserved,
            warned: false,
        };
        assert!(admits(&spend(4, 5), 10));
        assert!(!admits(&spend(5, 5), 10));
        assert!(!admits(&spend(0, 0), 0));
        assert!(!admits(&spend(i64::MAX, i64::MAX), i64::MAX));
    }

    #[test]
    fn negative_money_is_invalid() {
        assert!(check_micros("cost", 0).is_ok());
        assert!(matches!(
            check_micros("cost", -1),
            Err(Error::InvalidInput(_))
        ));
    }
}
