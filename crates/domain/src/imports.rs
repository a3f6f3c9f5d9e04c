//! Where an import of a tenant's resolved tickets into its history stands
//! (the Tenants page's "Import history", `csp.v1.Tickets/StartImport`).

use crate::event::ParseStatusError;
use crate::tickets::vocabulary;
use serde::{Deserialize, Serialize};
use std::fmt;

vocabulary! {
    /// `Running` until the last page is stored (`Completed`) or a call to
    /// the tool, the store or the replica running it fails (`Failed`, with
    /// the error).
    ImportState, "import state" {
        Running = "running",
        Completed = "completed",
        Failed = "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_by_name() {
        for s in ImportState::ALL {
            assert_eq!(s.as_str().parse::<ImportState>().unwrap(), *s);
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert!("done".parse::<ImportState>().is_err());
    }
}
