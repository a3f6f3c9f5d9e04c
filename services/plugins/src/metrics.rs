//! Metric names of the plugins service.

use crate::registry::Changes;
use crate::status::PluginStatus;
use std::collections::BTreeMap;

pub(crate) const PLUGINS: &str = "csp_plugins";
pub(crate) const PLUGIN_CHANGES: &str = "csp_plugin_changes_total";
pub(crate) const AUDIT_LOST: &str = "csp_audit_events_lost_total";

pub(crate) fn describe() {
    metrics::describe_gauge!(PLUGINS, "Plugins in PLUGINS_DIR by status");
    metrics::describe_counter!(
        PLUGIN_CHANGES,
        "Plugin directories added, changed or removed, as seen by rescans"
    );
    metrics::describe_counter!(
        AUDIT_LOST,
        "Audit events dropped because the queue stayed unavailable"
    );
}

pub(crate) fn statuses(counts: &BTreeMap<&'static str, u64>) {
    // Every status a registered plugin can have, so a gauge drops to 0
    // instead of keeping its last value when its last plugin moves on.
    let counted = PluginStatus::ALL
        .into_iter()
        .filter(|s| *s != PluginStatus::Removed);
    for s in counted.map(PluginStatus::as_str) {
        metrics::gauge!(PLUGINS, "status" => s).set(counts.get(s).copied().unwrap_or(0) as f64);
    }
}

pub(crate) fn rescanned(changes: &Changes) {
    for (kind, names) in [
        ("added", &changes.added),
        ("changed", &changes.changed),
        ("removed", &changes.removed),
    ] {
        metrics::counter!(PLUGIN_CHANGES, "change" => kind).increment(names.len() as u64);
    }
}
