//! Reaping zombies that nobody else will wait for.
//!
//! Killing an agent's tree (or a CLI dying on its own) orphans whatever it
//! still ran. Orphans go to the nearest subreaper, else PID 1, and a PID 1
//! that is not a real init (a container's entrypoint, this machine's) never
//! waits for them: each finished orphan stays a zombie, holding a pid, for
//! good. [`become_subreaper`] makes this process adopt them instead, and a
//! periodic [`reap_zombies`] (the session-pool runs it every 60 s) waits for
//! the ones that have finished.
//!
//! The danger is reaping a child that someone else is about to wait for:
//! their `waitpid` then fails with `ECHILD` and the exit status is lost. The
//! only such children are the agents' CLI processes, each owned by a tokio
//! `Child` that waits for it. They are registered here while they exist:
//! [`spawn_managed`] spawns and registers under one lock, and the reaper
//! decides and reaps under the same lock, so there is no moment in which an
//! agent's zombie is visible to the reaper but not yet registered. Any other
//! code that spawns a child and waits for it must not live in a process that
//! runs the reaper, or must register its child the same way.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tracing::{debug, warn};

use crate::process::scan;

/// Children whose exit a tokio `Child` waits for.
static MANAGED: Mutex<Managed> = Mutex::new(Managed(BTreeMap::new()));

/// Pids with a count: between tokio's reap of one child and that child's
/// removal from here, its pid may already belong to a new agent.
#[derive(Debug)]
struct Managed(BTreeMap<u32, usize>);

fn managed() -> MutexGuard<'static, Managed> {
    // Only counts are kept under the lock; a panic cannot leave them torn.
    MANAGED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Managed {
    fn contains(&self, pid: u32) -> bool {
        self.0.contains_key(&pid)
    }

    fn insert(&mut self, pid: u32) {
        *self.0.entry(pid).or_default() += 1;
    }

    fn remove(&mut self, pid: u32) {
        if let Some(count) = self.0.get_mut(&pid) {
            *count -= 1;
            if *count == 0 {
                self.0.remove(&pid);
            }
        }
    }
}

/// Keeps a child's pid away from the reaper. Drop it once the `Child`'s
/// wait has returned (tokio has reaped it), or together with the `Child`:
/// a dropped tokio child is reaped by tokio's orphan queue, which tolerates
/// finding it already reaped.
#[derive(Debug)]
pub(crate) struct ManagedPid(Option<u32>);

impl Drop for ManagedPid {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            managed().remove(pid);
        }
    }
}

/// Spawns `command` and registers the child before the reaper can see it.
pub(crate) fn spawn_managed(command: &mut Command) -> std::io::Result<(Child, ManagedPid)> {
    let mut registry = managed();
    let child = command.spawn()?;
    let pid = child.id();
    if let Some(pid) = pid {
        registry.insert(pid);
    }
    Ok((child, ManagedPid(pid)))
}

/// Makes this process adopt the orphans of its descendants
/// (`PR_SET_CHILD_SUBREAPER`), so that [`reap_zombies`] can wait for them.
pub fn become_subreaper() -> std::io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(std::io::Error::from)
}

/// Waits for every zombie child of this process that no tokio `Child`
/// owns, and returns how many it reaped.
pub fn reap_zombies() -> usize {
    let me = std::process::id();
    let zombies: Vec<u32> = scan()
        .into_iter()
        .filter(|stat| stat.ppid == me && stat.state == 'Z')
        .map(|stat| stat.pid)
        .collect();
    if zombies.is_empty() {
        return 0;
    }
    // Held while reaping: an agent spawned meanwhile could reuse the pid of
    // a zombie reaped here, and must be registered before it is looked at.
    let registry = managed();
    let mut reaped = 0;
    for pid in zombies {
        if registry.contains(pid) {
            continue;
        }
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        // WNOHANG: if the zombie was reaped since the scan and its pid is
        // now a live child, this must not block.
        match waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG)) {
            Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                debug!(pid, ?status, "reaped a zombie process");
                reaped += 1;
            }
            // Someone else reaped it after the scan.
            Ok(_) | Err(Errno::ECHILD) => {}
            Err(error) => warn!(pid, %error, "could not reap a zombie process"),
        }
    }
    reaped
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::process::Stdio;

    use super::*;
    use crate::process::parse_stat;
    use crate::testing::{children_lock, wait_until};

    fn stat(pid: u32) -> Option<crate::process::Stat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(pid, &text)
    }

    fn is_our_zombie(pid: u32) -> bool {
        stat(pid).is_some_and(|stat| stat.state == 'Z' && stat.ppid == std::process::id())
    }

    /// Undoes [`become_subreaper`], so that other tests in this process see
    /// orphans go where they normally do.
    struct Subreaper;

    impl Subreaper {
        fn become_one() -> Subreaper {
            become_subreaper().expect("PR_SET_CHILD_SUBREAPER");
            Subreaper
        }
    }

    impl Drop for Subreaper {
        fn drop(&mut self) {
            let _ = nix::sys::prctl::set_child_subreaper(false);
        }
    }

    #[test]
    fn an_unwaited_child_is_reaped_once() {
        let _lock = children_lock();
        #[expect(clippy::zombie_processes, reason = "the zombie is what is tested")]
        let child = std::process::Command::new("true").spawn().expect("true");
        let pid = child.id();
        wait_until("`true` is a zombie", || is_our_zombie(pid));

        assert_eq!(reap_zombies(), 1);
        assert!(stat(pid).is_none(), "the zombie is gone from /proc");
        assert_eq!(reap_zombies(), 0, "nothing left to reap");
    }

    #[test]
    fn an_orphan_is_adopted_and_reaped() {
        let _lock = children_lock();
        let _subreaper = Subreaper::become_one();
        // sh exits at once; its background sleep outlives it.
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 0.2 >/dev/null & echo $!"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh");
        let mut out = String::new();
        sh.stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .expect("the orphan's pid");
        sh.wait().expect("reap sh");
        let orphan: u32 = out.trim().parse().expect("a pid");
        assert_eq!(
            stat(orphan).map(|stat| stat.ppid),
            Some(std::process::id()),
            "adopted by this process, not PID 1"
        );

        wait_until("the orphan has finished", || is_our_zombie(orphan));
        assert_eq!(reap_zombies(), 1);
        assert!(stat(orphan).is_none(), "the zombie is gone from /proc");
    }

    #[test]
    fn a_managed_child_is_left_to_its_owner() {
        let _lock = children_lock();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (mut child, registered) = spawn_managed(&mut Command::new("true")).expect("true");
            let pid = child.id().expect("running");
            wait_until("`true` is a zombie", || is_our_zombie(pid));

            assert_eq!(reap_zombies(), 0);
            assert!(is_our_zombie(pid), "still there for its owner");
            let status = child.wait().await.expect("tokio's wait still works");
            assert!(status.success());

            drop(registered);
            assert!(!managed().contains(pid));
        });
    }

    #[test]
    fn registrations_are_counted() {
        let mut registry = Managed(BTreeMap::new());
        registry.insert(7);
        registry.insert(7);
        registry.remove(7);
        assert!(registry.contains(7), "a reused pid is still managed");
        registry.remove(7);
        assert!(!registry.contains(7));
        registry.remove(7);
        assert!(!registry.contains(7));
    }
}
