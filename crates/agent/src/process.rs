//! Signalling the agent's process tree.
//!
//! The CLI leads its own process group, but it starts every Bash command in
//! a new session (own process group), so `killpg` of the CLI's group does
//! not reach running tools. On SIGTERM the CLI kills them itself; a SIGKILL
//! leaves them orphaned unless they are found first, by walking `/proc`
//! while the CLI is still their parent.

use std::collections::HashMap;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tracing::warn;

pub(crate) fn signal_group(pgid: u32, signal: Signal) {
    let Ok(raw) = i32::try_from(pgid) else {
        return;
    };
    match killpg(Pid::from_raw(raw), signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(error) => warn!(pgid, %signal, %error, "could not signal the agent's process group"),
    }
}

/// SIGKILLs the CLI's group and every process descended from it, including
/// the separate groups of running tools.
pub(crate) fn kill_tree(root: u32) {
    // Frozen, the CLI can start no new tool between the walk and the kill.
    signal_group(root, Signal::SIGSTOP);
    for process in descendants(root) {
        if process.pgrp != root {
            signal_group(process.pgrp, Signal::SIGKILL);
        }
        if let Ok(pid) = i32::try_from(process.pid) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    signal_group(root, Signal::SIGKILL);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    pid: u32,
    ppid: u32,
    pgrp: u32,
}

fn descendants(root: u32) -> Vec<Stat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: HashMap<u32, Vec<Stat>> = HashMap::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        // Processes may vanish mid-walk; they need no signal then.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(stat) = parse_stat(pid, &stat) {
            children.entry(stat.ppid).or_default().push(stat);
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(parent) = queue.pop() {
        for child in children.remove(&parent).unwrap_or_default() {
            queue.push(child.pid);
            found.push(child);
        }
    }
    found
}

/// `pid (comm) state ppid pgrp ...`; `comm` may itself hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(pid: u32, stat: &str) -> Option<Stat> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(1);
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(Stat { pid, ppid, pgrp })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines_with_awkward_command_names() {
        assert_eq!(
            parse_stat(7428, "7428 (sleep) S 7400 7428 7428 0 -1 4194304"),
            Some(Stat {
                pid: 7428,
                ppid: 7400,
                pgrp: 7428
            })
        );
        assert_eq!(
            parse_stat(9, "9 (a) b (c) R 1 9 9 0"),
            Some(Stat {
                pid: 9,
                ppid: 1,
                pgrp: 9
            })
        );
        assert_eq!(parse_stat(9, "9 (trunc"), None);
        assert_eq!(parse_stat(9, "9 (x) S"), None);
    }

    #[test]
    fn finds_this_process_s_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let found = descendants(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.iter().any(|stat| stat.pid == child.id()), "{found:?}");
    }
}
