mod auth;
mod chat;
mod cli;
mod docs;
mod faults;
mod helpers;
mod scripting;
mod wire;
