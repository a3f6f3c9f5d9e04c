//! Where a plugin stands ([`PluginStatus`]): computed by the catalog,
//! counted by the metrics, sent as the proto's (and the gateway's) string.

/// Where a plugin stands; the furthest stage it reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginStatus {
    /// Its names are claimed, but its type does not run in sessions.
    Registered,
    /// It has settings to fill in before it can be activated.
    NeedsConfig,
    /// Nothing to configure: it can be activated.
    Ready,
    /// Its configuration is saved and valid: it can be activated.
    Configured,
    /// New sessions start with it.
    Activated,
    /// Its manifest is invalid or its names are taken; nothing of it runs.
    Errored,
    /// Only in the answer to deactivating a plugin whose directory is gone:
    /// no plugin in the registry has it.
    Removed,
}

impl PluginStatus {
    /// Every variant, so metrics and tests see each one.
    pub const ALL: [PluginStatus; 7] = [
        Self::Registered,
        Self::NeedsConfig,
        Self::Ready,
        Self::Configured,
        Self::Activated,
        Self::Errored,
        Self::Removed,
    ];

    /// The one name everywhere: the proto's `Plugin.status`, hence the
    /// gateway's JSON, and the `csp_plugins` gauge's `status` label. Plugin
    /// statuses are computed, never stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::NeedsConfig => "needs_config",
            Self::Ready => "ready",
            Self::Configured => "configured",
            Self::Activated => "activated",
            Self::Errored => "errored",
            Self::Removed => "removed",
        }
    }
}

impl std::str::FromStr for PluginStatus {
    type Err = csp_domain::ParseStatusError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| csp_domain::ParseStatusError::new("plugin status", s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use csp_proto::v1 as pb;

    /// Text ⇄ enum ⇄ proto string ⇄ the gateway's JSON, for every variant.
    #[test]
    fn plugin_status_round_trips_through_every_representation() {
        // A new variant fails to compile here: add it to `ALL` as well.
        let listed = |s: PluginStatus| match s {
            PluginStatus::Registered
            | PluginStatus::NeedsConfig
            | PluginStatus::Ready
            | PluginStatus::Configured
            | PluginStatus::Activated
            | PluginStatus::Errored
            | PluginStatus::Removed => PluginStatus::ALL.contains(&s),
        };
        assert!(PluginStatus::ALL.into_iter().all(listed));
        for s in PluginStatus::ALL {
            let wire = pb::Plugin {
                status: s.as_str().to_owned(),
                ..Default::default()
            };
            assert_eq!(wire.status.parse::<PluginStatus>(), Ok(s));
            let json = serde_json::json!({ "status": wire.status });
            assert_eq!(json["status"].as_str().map(str::parse), Some(Ok(s)));
        }
        let names = PluginStatus::ALL.map(PluginStatus::as_str);
        assert_eq!(
            names,
            [
                "registered",
                "needs_config",
                "ready",
                "configured",
                "activated",
                "errored",
                "removed"
            ]
        );
        assert!("active".parse::<PluginStatus>().is_err());
    }
}
