//! The ServiceDesk Plus connector against the fake server.

mod helpers;
mod servicedesk;
