//! The operations charts' vocabulary: the periods an operator can look back
//! over ([`ChartRange`]) and where the charted figures came from
//! ([`ChartSource`]).

use crate::event::ParseStatusError;
use crate::tickets::vocabulary;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

vocabulary! {
    /// How far back the charts look, up to now.
    ChartRange, "chart range" {
        Hour = "1h",
        SixHours = "6h",
        Day = "24h",
        Week = "7d",
    }
}

impl ChartRange {
    /// What the charts show when no range is asked for.
    pub const DEFAULT: ChartRange = ChartRange::Day;

    /// The period's length.
    pub const fn duration(self) -> Duration {
        Duration::from_secs(match self {
            ChartRange::Hour => 3600,
            ChartRange::SixHours => 6 * 3600,
            ChartRange::Day => 24 * 3600,
            ChartRange::Week => 7 * 24 * 3600,
        })
    }
}

vocabulary! {
    /// Where the charted figures come from: Prometheus' HTTP API (when
    /// `CSP_PROMETHEUS_URL` is set) or the platform's own enhancement
    /// history.
    ChartSource, "chart source" {
        Prometheus = "prometheus",
        History = "history",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_sources_round_trip_through_their_names() {
        for r in ChartRange::ALL {
            assert_eq!(r.as_str().parse::<ChartRange>().unwrap(), *r);
            assert_eq!(serde_json::to_string(r).unwrap(), format!("\"{r}\""));
        }
        for s in ChartSource::ALL {
            assert_eq!(s.as_str().parse::<ChartSource>().unwrap(), *s);
        }
        assert!("2d".parse::<ChartRange>().is_err());
        assert_eq!(ChartRange::DEFAULT.as_str(), "24h");
        assert_eq!(ChartRange::Week.duration(), Duration::from_secs(604_800));
    }
}
