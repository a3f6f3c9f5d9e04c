//! Everything csp keeps durably, as one trait object for the services.

use crate::audit::AuditStore;
use crate::budgets::BudgetStore;
use crate::plugins::PluginStore;
use crate::secrets::SecretStore;
use crate::sessions::SessionStore;
use crate::users::UserStore;

/// Every concern's trait; implemented by every adapter.
pub trait Store:
    UserStore + SessionStore + BudgetStore + AuditStore + PluginStore + SecretStore
{
}

impl<T: UserStore + SessionStore + BudgetStore + AuditStore + PluginStore + SecretStore + ?Sized>
    Store for T
{
}
