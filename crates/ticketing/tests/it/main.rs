//! The ServiceDesk Plus connector against the fake server, and the docs' worked example.

mod conformance;
mod docs;
mod helpers;
mod jira;
mod properties;
mod servicedesk;
mod zendesk;
