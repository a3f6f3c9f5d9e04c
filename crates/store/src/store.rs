//! Everything csp keeps durably, as one trait object for the services.

use crate::audit::AuditStore;
use crate::budgets::BudgetStore;
use crate::context::ContextStore;
use crate::enhancements::EnhancementStore;
use crate::feedback::FeedbackStore;
use crate::plugins::PluginStore;
use crate::secrets::SecretStore;
use crate::sessions::SessionStore;
use crate::stats::StatsStore;
use crate::tenants::TenantStore;
use crate::throughput::ThroughputStore;
use crate::users::UserStore;

/// Every concern's trait; implemented by every adapter.
pub trait Store:
    UserStore
    + SessionStore
    + BudgetStore
    + AuditStore
    + PluginStore
    + SecretStore
    + TenantStore
    + EnhancementStore
    + FeedbackStore
    + ContextStore
    + StatsStore
    + ThroughputStore
{
}

impl<T> Store for T where
    T: UserStore
        + SessionStore
        + BudgetStore
        + AuditStore
        + PluginStore
        + SecretStore
        + TenantStore
        + EnhancementStore
        + FeedbackStore
        + ContextStore
        + StatsStore
        + ThroughputStore
        + ?Sized
{
}
