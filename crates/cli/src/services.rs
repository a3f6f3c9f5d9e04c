//! The composition table: every service `csp` runs, one row each. `csp dev`
//! starts every row in one process (each after the rows it `needs`);
//! `csp serve <service>` runs one from its own options. A new service is
//! one line here plus its module in `services/`: its `ROW` (name, needs,
//! how `csp dev` builds it), its `Options` (flags and variables of
//! `csp serve <service>`) and `serve` (how it is built from them).

use crate::error::Error;
use crate::row::{Built, Row};
use clap::Subcommand;

mod gateway;
mod plugins;
mod policy;
mod session_pool;
mod tickets;
mod tickets_worker;

/// Declares [`Service`] (the `csp serve` subcommands) and [`TABLE`] from
/// the same lines, so no service can be served without its row.
macro_rules! services {
    ($($(#[$meta:meta])* $variant:ident => $module:ident,)+) => {
        #[derive(Subcommand)]
        // Parsed once at startup: the size of its largest variant costs nothing.
        #[allow(clippy::large_enum_variant)]
        pub(crate) enum Service {
            $($(#[$meta])* $variant($module::Options),)+
        }

        /// Every row, in `csp serve --help`'s order; `csp dev` starts them
        /// in the order their `needs` give (`compose::start_order`).
        pub(crate) static TABLE: &[&Row] = &[$(&$module::ROW,)+];

        impl Service {
            pub(crate) fn row(&self) -> &'static Row {
                match self {
                    $(Service::$variant(_) => &$module::ROW,)+
                }
            }

            /// Builds the service from its `csp serve` options.
            pub(crate) async fn build(self) -> Result<Built, Error> {
                match self {
                    $(Service::$variant(o) => $module::serve(o).await,)+
                }
            }
        }
    };
}

services! {
    /// Web app, REST, WebSockets, /metrics.
    Gateway => gateway,
    /// Agent processes: pre-warm pool, turns, session events.
    SessionPool => session_pool,
    /// Users, login, roles, tool permissions, cost caps, audit log.
    Policy => policy,
    /// Plugin registry (PLUGINS_DIR, hot rescan), activation, configuration
    /// and encrypted plugin secrets.
    Plugins => plugins,
    /// Ticket enhancement: tenants, signed webhooks (recorded, then
    /// queued), enhancement history, knowledge base and inventory uploads.
    Tickets => tickets,
    /// Ticket enhancement's workers: context, the model's note, posted to
    /// the tenant's ServiceDesk Plus.
    TicketsWorker => tickets_worker,
}
