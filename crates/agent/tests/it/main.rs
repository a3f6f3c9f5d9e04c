//! Drives the real Claude Code CLI; the turn tests point it at the scripted
//! Messages API server of `csp-mock-llm`.

mod helpers;
mod spawn;
mod turn;
