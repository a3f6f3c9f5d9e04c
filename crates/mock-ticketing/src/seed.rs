//! Deterministic resolved requests: request `i` of a seed always has the
//! same subject, description and resolution, so a demo and the tests know
//! which past ticket a new one should match.

use crate::request::MockRequest;

/// One kind of problem: the seed cycles through these in order.
#[derive(Debug, Clone, Copy)]
pub struct Topic {
    pub subject: &'static str,
    /// `{n}` is replaced by the request's sequence number.
    pub description: &'static str,
    pub resolution: &'static str,
    pub category: &'static str,
    pub subcategory: &'static str,
    pub priority: &'static str,
}

pub const TOPICS: [Topic; 8] = [
    Topic {
        subject: "Outlook crashes on start",
        description: "Outlook crashes immediately after start on workstation WS-{n}. Event log shows a faulting module olmapi32.dll.",
        resolution: "Repaired the Office installation and recreated the Outlook profile; Outlook starts normally.",
        category: "Email",
        subcategory: "Outlook",
        priority: "High",
    },
    Topic {
        subject: "VPN disconnects every few minutes",
        description: "The VPN client disconnects every few minutes for user {n}; the gateway at 10.0.0.1 logs certificate errors.",
        resolution: "Renewed the expired VPN client certificate and updated the VPN client; the tunnel stays up.",
        category: "Network",
        subcategory: "VPN",
        priority: "High",
    },
    Topic {
        subject: "Printer offline",
        description: "Printer PRN-{n} on the second floor shows offline; print jobs queue on print server 10.0.0.20.",
        resolution: "Restarted the print spooler on the print server and cleared the stuck queue.",
        category: "Hardware",
        subcategory: "Printer",
        priority: "Medium",
    },
    Topic {
        subject: "Password reset request",
        description: "User {n} is locked out of Active Directory after too many failed logins.",
        resolution: "Unlocked the account, reset the password and asked the user to update it on the phone as well.",
        category: "Access",
        subcategory: "Account",
        priority: "Low",
    },
    Topic {
        subject: "File server disk almost full",
        description: "Disk D: on file server FS-01 (10.0.0.30) is at 97%; users report save errors in share {n}.",
        resolution: "Moved old project archives to cold storage and enabled a quota on the share.",
        category: "Server",
        subcategory: "Storage",
        priority: "High",
    },
    Topic {
        subject: "Slow network in branch office",
        description: "Branch office {n} reports slow file transfers; switch SW-BR-{n} shows many CRC errors on the uplink.",
        resolution: "Replaced the faulty patch cable on the switch uplink; CRC errors stopped.",
        category: "Network",
        subcategory: "LAN",
        priority: "Medium",
    },
    Topic {
        subject: "Cannot open shared drive",
        description: "Mapped drive S: fails with access denied for user {n} since the group change.",
        resolution: "Added the user to the Finance-RW group and refreshed the Kerberos ticket with a new logon.",
        category: "Access",
        subcategory: "File share",
        priority: "Medium",
    },
    Topic {
        subject: "Mobile mail not syncing",
        description: "Phone of user {n} stopped syncing mail after the password change; Exchange ActiveSync shows 401.",
        resolution: "Removed and re-added the mail account on the phone with the new password.",
        category: "Email",
        subcategory: "Mobile",
        priority: "Low",
    },
];

/// The first id [`MockSdp::seed_resolved`](crate::MockSdp::seed_resolved) uses when the mock is empty.
pub const FIRST_SEED_ID: u64 = 100_001;

/// Request number `n` (from 0) of a seed, with id `id`, resolved at
/// `resolved_ms`: topic `n % 8`; even `n` are `Resolved` (with a
/// `resolved_time`), odd ones `Closed` (with only a `completed_time`), so
/// both halves of the resolved-or-completed filter are exercised.
pub fn seed_request(n: u64, id: u64, resolved_ms: i64) -> MockRequest {
    let topic = &TOPICS[usize::try_from(n % TOPICS.len() as u64).unwrap_or(0)];
    let seq = (n + 1).to_string();
    let closed = n % 2 == 1;
    MockRequest {
        id,
        subject: topic.subject.to_owned(),
        description: format!("<div>{}</div>", topic.description.replace("{n}", &seq)),
        status: if closed { "Closed" } else { "Resolved" }.to_owned(),
        priority: topic.priority.to_owned(),
        created_ms: resolved_ms - 3_600_000,
        resolved_ms: (!closed).then_some(resolved_ms),
        completed_ms: closed.then_some(resolved_ms),
        resolution: Some(format!("<p>{}</p>", topic.resolution)),
        category: Some(topic.category.to_owned()),
        subcategory: Some(topic.subcategory.to_owned()),
        item: None,
    }
}
