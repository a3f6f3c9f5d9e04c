//! csp-domain's statuses ⇄ proto values, each mapped here once.

use crate::v1 as pb;
use csp_domain::{ChartRange, ParseStatusError, SessionStatus};

impl From<SessionStatus> for pb::SessionStatus {
    fn from(s: SessionStatus) -> Self {
        match s {
            SessionStatus::Preparing => pb::SessionStatus::Preparing,
            SessionStatus::Ready => pb::SessionStatus::Ready,
            SessionStatus::Failed => pb::SessionStatus::Failed,
            SessionStatus::Idle => pb::SessionStatus::Idle,
            SessionStatus::Ended => pb::SessionStatus::Terminated,
        }
    }
}

/// `Unspecified` (or a value this build does not know) names no status.
impl TryFrom<pb::SessionStatus> for SessionStatus {
    type Error = ParseStatusError;
    fn try_from(s: pb::SessionStatus) -> Result<Self, Self::Error> {
        SessionStatus::ALL
            .into_iter()
            .find(|d| pb::SessionStatus::from(*d) == s)
            .ok_or_else(|| ParseStatusError::new("session status", s.as_str_name()))
    }
}

impl From<ChartRange> for pb::ChartRange {
    fn from(r: ChartRange) -> Self {
        match r {
            ChartRange::Hour => pb::ChartRange::ChartRange1h,
            ChartRange::SixHours => pb::ChartRange::ChartRange6h,
            ChartRange::Day => pb::ChartRange::ChartRange24h,
            ChartRange::Week => pb::ChartRange::ChartRange7d,
        }
    }
}

/// `Unspecified` is the default range (24 hours).
impl From<pb::ChartRange> for ChartRange {
    fn from(r: pb::ChartRange) -> Self {
        ChartRange::ALL
            .iter()
            .copied()
            .find(|d| pb::ChartRange::from(*d) == r)
            .unwrap_or(ChartRange::DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use csp_domain::{AuditStatus, StatusReason};
    use serde_json::json;

    #[test]
    fn chart_ranges_round_trip_and_unspecified_is_the_default() {
        for r in ChartRange::ALL {
            assert_eq!(ChartRange::from(pb::ChartRange::from(*r)), *r);
        }
        assert_eq!(
            ChartRange::from(pb::ChartRange::Unspecified),
            ChartRange::Day
        );
    }

    /// Store text ⇄ enum ⇄ proto ⇄ JSON, for every variant.
    #[test]
    fn session_status_round_trips_through_every_representation() {
        for s in SessionStatus::ALL {
            let stored = SessionStatus::from_store_text(s.store_text()).unwrap();
            let wire = pb::SessionStatus::from(stored);
            let back = SessionStatus::try_from(wire).unwrap();
            let json = serde_json::to_value(back).unwrap();
            assert_eq!(json, json!(s.as_str()));
            assert_eq!(serde_json::from_value::<SessionStatus>(json).unwrap(), s);
            // Through the i32 the messages carry, too.
            let raw = wire as i32;
            assert_eq!(
                SessionStatus::try_from(pb::SessionStatus::try_from(raw).unwrap()),
                Ok(s)
            );
        }
        // The proto values the services have always sent.
        let wire = SessionStatus::ALL.map(|s| pb::SessionStatus::from(s) as i32);
        assert_eq!(wire, [1, 2, 3, 5, 4]);
        assert!(SessionStatus::try_from(pb::SessionStatus::Unspecified).is_err());
        // Every proto value but Unspecified names a status.
        let named = (0..=5)
            .filter_map(|v| pb::SessionStatus::try_from(v).ok())
            .filter(|p| SessionStatus::try_from(*p).is_ok())
            .count();
        assert_eq!(named, SessionStatus::ALL.len());
    }

    /// Ended reasons and audit results are strings in the proto: the same
    /// text as in the store and JSON.
    #[test]
    fn reasons_and_audit_results_round_trip_through_their_proto_strings() {
        for r in StatusReason::ALL {
            let info = pb::SessionInfo {
                ended_reason: r.as_str().to_owned(),
                ..Default::default()
            };
            assert_eq!(info.ended_reason.parse::<StatusReason>(), Ok(r));
            assert_eq!(serde_json::to_value(r).unwrap(), json!(info.ended_reason));
        }
        for a in AuditStatus::ALL {
            let entry = pb::AuditEntry {
                result_status: a.as_str().to_owned(),
                ..Default::default()
            };
            assert_eq!(entry.result_status.parse::<AuditStatus>(), Ok(a));
            assert_eq!(serde_json::to_value(a).unwrap(), json!(entry.result_status));
        }
    }
}
