//! Confining an agent process. The CLI runs arbitrary shell commands for
//! whoever chats with it, so every agent (the CLI, its tools and its MCP
//! servers) runs in a bubblewrap sandbox:
//!
//! - **Files**: an empty root with the system (`/usr`, selected `/etc`
//!   files) and the CLI's own package read-only, a private `/tmp`, and only
//!   its own session directory writable. The platform's data (keys, the
//!   database, other sessions) is not in its view at all.
//! - **Processes**: its own PID namespace (no `/proc/<pid>/environ` of csp
//!   or of another session, no signals to them), its own user namespace
//!   with no capabilities, IPC and UTS namespaces.
//! - **Network**: its own network namespace, which has only loopback.
//!   Inside, `socat` listens on loopback ports and forwards each to a Unix
//!   socket bound in from outside: the model proxy and the egress proxy
//!   of the session-pool (crate `csp-egress`). Nothing else is reachable:
//!   not the database, not Redis, not another replica.
//!
//! We use bubblewrap (Debian's `bubblewrap`) directly rather than
//! `@anthropic-ai/sandbox-runtime`: that runtime is bubblewrap plus a
//! proxy too, but it would put a second Node.js process and its own proxy
//! (with its own allow-list format) in front of every agent, while csp
//! must decide per process which session directory is visible and which
//! token the proxies accept, and already has both proxies in Rust.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

/// Where forwarded sockets appear inside the sandbox.
const SOCKET_DIR: &str = "/run/csp";

/// System files an agent's tools may read. Absent ones are skipped; the
/// rest of `/etc` (shadow, service configs) stays out of view.
const ETC_FILES: &[&str] = &[
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/os-release",
    "/etc/debian_version",
    "/etc/bash.bashrc",
    "/etc/profile",
    "/etc/inputrc",
    "/etc/mime.types",
    "/etc/gitconfig",
];

/// Top-level system directories: bound read-only, or recreated as the
/// symlinks they are on merged-`/usr` systems.
const SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64"];

/// Where the symbolic links directly inside `dir` lead, outside `dir`.
fn linked_targets(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let base = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()))
        .filter_map(|e| std::fs::canonicalize(e.path()).ok())
        .filter(|target| !target.starts_with(&base))
        .collect()
}

/// How agent processes of a deployment are confined (`CSP_AGENT_SANDBOX`).
#[derive(Debug, Clone)]
pub enum Sandbox {
    /// Every agent in its own bubblewrap sandbox (the default).
    Bubblewrap(Bubblewrap),
    /// No confinement: agents run as csp's user and see what it sees.
    /// For machines that cannot run bubblewrap, at the operator's risk.
    Off,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::Bubblewrap(Bubblewrap::default())
    }
}

impl Sandbox {
    pub fn is_on(&self) -> bool {
        matches!(self, Self::Bubblewrap(_))
    }
}

/// The bubblewrap sandbox's programs and extra read-only paths.
#[derive(Debug, Clone)]
pub struct Bubblewrap {
    /// `bwrap` (looked up on `PATH` when relative).
    pub bwrap: PathBuf,
    /// `socat`, run inside the sandbox to forward loopback ports.
    pub socat: PathBuf,
    /// More read-only paths (`CSP_AGENT_SANDBOX_READ_ONLY`), e.g. a Node.js
    /// installed outside `/usr`.
    pub read_only: Vec<PathBuf>,
}

impl Default for Bubblewrap {
    fn default() -> Self {
        Self {
            bwrap: "bwrap".into(),
            socat: "socat".into(),
            read_only: Vec::new(),
        }
    }
}

/// What one process may reach beyond the system files, decided per spawn.
#[derive(Debug, Clone, Default)]
pub struct Reach {
    /// Writable, at the same path inside (the session's directory).
    pub writable: Vec<PathBuf>,
    /// Read-only, at the same path inside (plugin directories).
    pub read_only: Vec<PathBuf>,
    /// Loopback ports inside, each forwarded to a Unix socket outside.
    pub forwards: Vec<Forward>,
}

/// `127.0.0.1:port` inside the sandbox → `socket` outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub port: u16,
    pub socket: PathBuf,
}

impl Bubblewrap {
    /// The command that runs `program args` confined to `reach`, in
    /// `workdir`. The caller sets the environment (bwrap passes it on).
    pub(crate) fn command(
        &self,
        program: &Path,
        args: &[String],
        workdir: &Path,
        reach: &Reach,
    ) -> Command {
        let mut command = Command::new(&self.bwrap);
        command
            .args(self.bwrap_args(program, workdir, reach))
            .args(args);
        command
    }

    fn bwrap_args(&self, program: &Path, workdir: &Path, reach: &Reach) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::with_capacity(64);
        let mut push = |items: &[&std::ffi::OsStr]| a.extend(items.iter().map(|s| s.into()));
        // The agent keeps csp's uid and gid inside, so the
        // files it writes belong to csp outside; it holds no capability.
        let (uid, gid) = (
            nix::unistd::geteuid().to_string(),
            nix::unistd::getegid().to_string(),
        );
        push(&[
            "--unshare-user".as_ref(),
            "--uid".as_ref(),
            uid.as_ref(),
            "--gid".as_ref(),
            gid.as_ref(),
            "--unshare-pid".as_ref(),
            "--unshare-net".as_ref(),
            "--unshare-ipc".as_ref(),
            "--unshare-uts".as_ref(),
            "--unshare-cgroup-try".as_ref(),
            "--hostname".as_ref(),
            "csp-agent".as_ref(),
            "--new-session".as_ref(),
            "--die-with-parent".as_ref(),
            "--cap-drop".as_ref(),
            "ALL".as_ref(),
        ]);
        for dir in SYSTEM_DIRS {
            let path = Path::new(dir);
            match std::fs::read_link(path) {
                Ok(target) => push(&["--symlink".as_ref(), target.as_ref(), path.as_ref()]),
                Err(_) if path.is_dir() => {
                    push(&["--ro-bind".as_ref(), path.as_ref(), path.as_ref()])
                }
                Err(_) => {}
            }
        }
        for file in ETC_FILES {
            push(&["--ro-bind-try".as_ref(), file.as_ref(), file.as_ref()]);
        }
        push(&[
            "--proc".as_ref(),
            "/proc".as_ref(),
            "--dev".as_ref(),
            "/dev".as_ref(),
            "--tmpfs".as_ref(),
            "/tmp".as_ref(),
            "--tmpfs".as_ref(),
            "/var/tmp".as_ref(),
        ]);
        // The CLI's package (a native binary with vendored helpers); its
        // path may be a symlink into it, as npm's `.bin/claude` is.
        let program = std::fs::canonicalize(program).unwrap_or_else(|_| program.to_owned());
        let package = program
            .parent()
            .and_then(|bin| bin.parent())
            .unwrap_or(Path::new("/"));
        if package != Path::new("/") {
            push(&["--ro-bind".as_ref(), package.as_ref(), package.as_ref()]);
        }
        for path in self.read_only.iter().chain(&reach.read_only) {
            push(&["--ro-bind-try".as_ref(), path.as_ref(), path.as_ref()]);
            // A plugin directory may link elsewhere (a shared node_modules):
            // the targets of its top-level links are readable too.
            for target in linked_targets(path) {
                push(&["--ro-bind-try".as_ref(), target.as_ref(), target.as_ref()]);
            }
        }
        for path in &reach.writable {
            push(&["--bind".as_ref(), path.as_ref(), path.as_ref()]);
        }
        let mut forwards = String::new();
        for (i, forward) in reach.forwards.iter().enumerate() {
            let inside = format!("{SOCKET_DIR}/{i}.sock");
            push(&["--bind".as_ref(), forward.socket.as_ref(), inside.as_ref()]);
            forwards.push_str(&format!(
                "\"$CSP_SOCAT\" TCP-LISTEN:{},bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:{inside} </dev/null >/dev/null 2>&1 & ",
                forward.port
            ));
        }
        push(&[
            "--setenv".as_ref(),
            "TMPDIR".as_ref(),
            "/tmp".as_ref(),
            "--setenv".as_ref(),
            "CSP_SOCAT".as_ref(),
            self.socat.as_ref(),
            "--chdir".as_ref(),
            workdir.as_ref(),
            "--".as_ref(),
            "/bin/sh".as_ref(),
            "-c".as_ref(),
        ]);
        // The forwarders run in the background of a shell that then
        // becomes the CLI; they die with the sandbox's PID namespace.
        a.push(format!("{forwards}unset CSP_SOCAT; exec \"$0\" \"$@\"").into());
        a.push(program.into_os_string());
        a
    }

    /// Runs `socat -V` in a sandbox like the agents' and reports why it
    /// cannot, so a deployment finds out at start, not at the first chat.
    pub async fn check(&self) -> Result<(), String> {
        let probe = Reach {
            writable: vec![std::env::temp_dir()],
            ..Reach::default()
        };
        let mut command = self.command(&self.socat, &["-V".to_owned()], Path::new("/"), &probe);
        command
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let output = command
            .output()
            .await
            .map_err(|e| format!("cannot run {}: {e}", self.bwrap.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            Err(match stderr.trim() {
                "" => format!("{} exited with {}", self.bwrap.display(), output.status),
                text => format!("{}: {text}", self.bwrap.display()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(reach: &Reach) -> Vec<String> {
        Bubblewrap::default()
            .bwrap_args(Path::new("/usr/bin/true"), Path::new("/s/work"), reach)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// `flag a b` appears in `args`.
    fn has(args: &[String], flag: &str, rest: &[&str]) -> bool {
        args.windows(rest.len() + 1)
            .any(|w| w[0] == flag && w[1..].iter().zip(rest).all(|(a, b)| a == b))
    }

    #[test]
    fn every_namespace_is_private_and_no_capability_is_kept() {
        let a = args(&Reach::default());
        for flag in [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--new-session",
            "--die-with-parent",
        ] {
            assert!(a.iter().any(|x| x == flag), "{flag} missing: {a:?}");
        }
        assert!(has(&a, "--cap-drop", &["ALL"]));
        assert!(has(&a, "--tmpfs", &["/tmp"]));
        assert!(has(&a, "--proc", &["/proc"]));
        assert!(has(&a, "--chdir", &["/s/work"]));
        // /etc only file by file: never the whole directory.
        assert!(!has(&a, "--ro-bind", &["/etc", "/etc"]) && !has(&a, "--bind", &["/etc", "/etc"]));
        assert!(!a.iter().any(|x| x == "/etc/shadow"));
        // Nothing writable but what the spawn names.
        assert!(!a.iter().any(|x| x == "--bind"), "{a:?}");
    }

    #[test]
    fn the_session_is_writable_plugins_readable_and_sockets_forwarded() {
        let reach = Reach {
            writable: vec!["/data/sessions/a".into()],
            read_only: vec!["/plugins/p".into()],
            forwards: vec![Forward {
                port: 4180,
                socket: "/data/run/model.sock".into(),
            }],
        };
        let a = args(&reach);
        assert!(has(&a, "--bind", &["/data/sessions/a", "/data/sessions/a"]));
        assert!(has(&a, "--ro-bind-try", &["/plugins/p", "/plugins/p"]));
        assert!(has(
            &a,
            "--bind",
            &["/data/run/model.sock", "/run/csp/0.sock"]
        ));
        let script = a
            .iter()
            .find(|x| x.contains("TCP-LISTEN"))
            .expect("a forwarder");
        assert!(
            script.contains("TCP-LISTEN:4180,bind=127.0.0.1"),
            "{script}"
        );
        assert!(script.contains("UNIX-CONNECT:/run/csp/0.sock"), "{script}");
        assert!(script.ends_with("exec \"$0\" \"$@\""), "{script}");
        assert_eq!(a.last().map(String::as_str), Some("/usr/bin/true"));
    }
}
