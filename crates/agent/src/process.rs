//! Walking, measuring and signalling the agent's process tree.
//!
//! The CLI leads its own process group, but it starts every Bash command in
//! a new session (own process group), so `killpg` of the CLI's group does
//! not reach running tools. On SIGTERM the CLI kills them itself; a SIGKILL
//! leaves them orphaned unless they are found first, by walking `/proc`
//! while the CLI is still their parent.

use std::collections::HashMap;
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, SysconfVar, sysconf};
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
pub(crate) struct Stat {
    pub(crate) pid: u32,
    /// `R`, `S`, `Z` (zombie), ... as in `ps`.
    pub(crate) state: char,
    pub(crate) ppid: u32,
    pub(crate) pgrp: u32,
}

/// Every process in `/proc`. Processes vanish mid-walk (a tool finishing);
/// they are simply missing from the result.
pub(crate) fn scan() -> Vec<Stat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            parse_stat(pid, &stat)
        })
        .collect()
}

/// `root` first, then everything descended from it; empty when `root` is
/// gone. Zombies are included: they still hold their pid until reaped.
///
/// One walk gives a consistent-enough picture; a process re-parented away
/// from the tree (an orphan adopted by a subreaper or init) is no longer
/// part of it, which is why the caller should not let orphans arise in the
/// first place.
fn tree(root: u32) -> Vec<Stat> {
    let mut root_stat = None;
    let mut children: HashMap<u32, Vec<Stat>> = HashMap::new();
    for stat in scan() {
        if stat.pid == root {
            root_stat = Some(stat);
        } else {
            children.entry(stat.ppid).or_default().push(stat);
        }
    }
    let Some(root_stat) = root_stat else {
        return Vec::new();
    };
    let mut found = vec![root_stat];
    let mut queue = vec![root];
    while let Some(parent) = queue.pop() {
        // `remove`, so that even a pid reused mid-walk cannot make a cycle.
        for child in children.remove(&parent).unwrap_or_default() {
            queue.push(child.pid);
            found.push(child);
        }
    }
    found
}

fn descendants(root: u32) -> Vec<Stat> {
    let mut tree = tree(root);
    if !tree.is_empty() {
        tree.remove(0);
    }
    tree
}

/// The pids of `root` (if it still exists, zombie or not) and of every
/// process descended from it, root first.
pub fn tree_pids(root: u32) -> Vec<u32> {
    tree(root).into_iter().map(|stat| stat.pid).collect()
}

/// Resident memory of `root` and all its descendants, in bytes; 0 when
/// `root` is gone. Pages shared between members (the same binary, copy on
/// write after fork) are counted once per process, as `ps` would, so this
/// overstates what the tree alone holds: a limit on it errs on the safe side.
pub fn tree_rss_bytes(root: u32) -> u64 {
    let pages: u64 = tree(root)
        .iter()
        .filter_map(|stat| resident_pages(stat.pid))
        .sum();
    pages.saturating_mul(page_size())
}

/// Field 2 of `/proc/<pid>/statm`; a zombie has 0, a vanished process `None`.
fn resident_pages(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    statm.split_ascii_whitespace().nth(1)?.parse().ok()
}

fn page_size() -> u64 {
    static PAGE_SIZE: OnceLock<u64> = OnceLock::new();
    *PAGE_SIZE.get_or_init(|| {
        sysconf(SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|size| u64::try_from(size).ok())
            .filter(|&size| size > 0)
            .unwrap_or(4096)
    })
}

/// `pid (comm) state ppid pgrp ...`; `comm` may itself hold spaces and
/// parentheses, so fields are counted from the last `)`.
pub(crate) fn parse_stat(pid: u32, stat: &str) -> Option<Stat> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let mut state = fields.next()?.chars();
    let (Some(state), None) = (state.next(), state.next()) else {
        return None;
    };
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(Stat {
        pid,
        state,
        ppid,
        pgrp,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};

    use super::*;
    use crate::testing::{children_lock, wait_until};

    #[test]
    fn parses_stat_lines_with_awkward_command_names() {
        assert_eq!(
            parse_stat(7428, "7428 (sleep) S 7400 7428 7428 0 -1 4194304"),
            Some(Stat {
                pid: 7428,
                state: 'S',
                ppid: 7400,
                pgrp: 7428
            })
        );
        assert_eq!(
            parse_stat(9, "9 (a) b (c) Z 1 9 9 0"),
            Some(Stat {
                pid: 9,
                state: 'Z',
                ppid: 1,
                pgrp: 9
            })
        );
        assert_eq!(parse_stat(9, "9 (trunc"), None);
        assert_eq!(parse_stat(9, "9 (x) S"), None);
        assert_eq!(parse_stat(9, "9 (x) SZ 1 9"), None);
    }

    #[test]
    fn finds_this_process_s_children() {
        let _lock = children_lock();
        let mut child = Command::new("sleep").arg("30").spawn().expect("sleep");
        let found = descendants(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.iter().any(|stat| stat.pid == child.id()), "{found:?}");
    }

    /// VmRSS from `/proc/<pid>/status`: another view of the same counter.
    fn vm_rss_bytes(pid: u32) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let line = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .expect("a live process has VmRSS");
        let kib: u64 = line.trim().trim_end_matches("kB").trim().parse().unwrap();
        kib * 1024
    }

    fn comm(pid: u32) -> String {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// `sh` and two `sleep`s, in a group of their own like an agent's tree.
    fn shell_with_two_sleeps() -> (Child, u32, Vec<u32>) {
        let child = Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .process_group(0)
            .spawn()
            .expect("sh");
        let root = child.id();
        // Until both sleeps have replaced their forked copy of sh and all
        // three are blocked, so that their memory no longer changes.
        wait_until("sh has started its two sleeps", || {
            let tree = tree(root);
            tree.len() == 3
                && tree[1..].iter().all(|stat| comm(stat.pid) == "sleep")
                && tree.iter().all(|stat| stat.state == 'S')
        });
        (child, root, tree_pids(root))
    }

    #[test]
    fn a_tree_counts_the_memory_of_every_member_until_it_is_gone() {
        let _lock = children_lock();
        let (mut child, root, pids) = shell_with_two_sleeps();
        assert_eq!(pids[0], root, "root first");
        assert_eq!(comm(root), "sh");

        let total = tree_rss_bytes(root);
        let expected: u64 = pids.iter().map(|&pid| vm_rss_bytes(pid)).sum();
        assert_eq!(total, expected, "members {pids:?}");
        assert!(total > vm_rss_bytes(root), "the sleeps hold memory too");

        // sh reaps the killed sleeps itself and then exits: no orphans.
        for &pid in &pids[1..] {
            kill(Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGKILL).expect("kill sleep");
        }
        wait_until("sh is a zombie", || {
            tree(root).first().is_some_and(|stat| stat.state == 'Z')
        });
        assert_eq!(tree_pids(root), [root], "a zombie still holds its pid");
        assert_eq!(tree_rss_bytes(root), 0, "a zombie holds no memory");

        child.wait().expect("reap sh");
        assert_eq!(tree_pids(root), Vec::<u32>::new());
        assert_eq!(tree_rss_bytes(root), 0);
    }

    #[test]
    fn a_missing_root_has_no_tree() {
        let _lock = children_lock();
        let mut child = Command::new("true").spawn().expect("true");
        let pid = child.id();
        child.wait().expect("reap");
        assert_eq!(tree_pids(pid), Vec::<u32>::new());
        assert_eq!(tree_rss_bytes(pid), 0);
    }
}
