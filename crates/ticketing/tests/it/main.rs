//! The ServiceDesk Plus connector against the fake server, and the docs' worked example.

mod docs;
mod helpers;
mod servicedesk;
