use std::any::Any;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::sandbox::{Reach, Sandbox};

/// Where `scripts/setup.sh` installs the CLI, relative to the workspace root.
const BUNDLED_CLI: &str = "tools/claude-cli/node_modules/.bin/claude";

/// Parent variables the agent may see. Everything else (JWT secrets,
/// database URLs) stays out: the agent runs arbitrary shell commands.
const INHERITED_ENV: &[&str] = &["PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "SHELL"];

const FALLBACK_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// How every agent process of a deployment is launched.
#[derive(Debug, Clone)]
pub struct Config {
    pub cli_path: PathBuf,
    pub model: Option<String>,
    pub system_prompt: String,
    /// Passed as `--allowedTools`; the CLI then runs these without asking.
    /// Every call still goes through the [`crate::PermissionHook`].
    pub allowed_tools: Vec<String>,
    /// Appended verbatim, last.
    pub extra_args: Vec<String>,
    /// Applied last, e.g. `ANTHROPIC_BASE_URL`, `ANTHROPIC_API_KEY`.
    pub env: Vec<(String, String)>,
    /// `API_TIMEOUT_MS`: per API request, including waiting for headers.
    pub api_timeout: Duration,
    /// `CLAUDE_BYTE_STREAM_IDLE_TIMEOUT_MS`: the only setting that catches a
    /// stalled stream early (the CLI clamps it to 10 s – 30 min).
    pub byte_stream_idle_timeout: Duration,
    /// `CLAUDE_CODE_MAX_RETRIES`; the CLI default of 10 takes about 3 minutes.
    pub max_retries: u32,
    /// Spawn until the `initialize` reply (about 0.4 s when idle).
    pub init_timeout: Duration,
    /// The CLI waits for a permission answer forever; past this the driver
    /// denies the call.
    pub permission_timeout: Duration,
    /// Other control requests (`interrupt`, `set_model`, ...).
    pub control_timeout: Duration,
    /// How the process is confined. The library default is [`Sandbox::Off`];
    /// deployments choose (`CSP_AGENT_SANDBOX`, bubblewrap by default).
    pub sandbox: Sandbox,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cli_path: Self::cli_path_from_env(),
            model: None,
            system_prompt: String::new(),
            allowed_tools: Vec::new(),
            extra_args: Vec::new(),
            env: Vec::new(),
            api_timeout: Duration::from_secs(120),
            byte_stream_idle_timeout: Duration::from_secs(30),
            max_retries: 3,
            init_timeout: Duration::from_secs(30),
            permission_timeout: Duration::from_secs(30),
            control_timeout: Duration::from_secs(10),
            sandbox: Sandbox::Off,
        }
    }
}

impl Config {
    /// `CLAUDE_CLI` when set, otherwise the copy `scripts/setup.sh` installs
    /// into this workspace.
    pub fn cli_path_from_env() -> PathBuf {
        match std::env::var_os("CLAUDE_CLI") {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(BUNDLED_CLI),
        }
    }

    pub(crate) fn args(&self, spec: &SpawnSpec) -> Vec<String> {
        let mut args: Vec<String> = [
            "--output-format",
            "stream-json",
            "--verbose",
            "--input-format",
            "stream-json",
        ]
        .map(String::from)
        .into();
        args.push(format!("--system-prompt={}", self.system_prompt));
        args.extend(
            [
                "--permission-prompt-tool",
                "stdio",
                "--include-partial-messages",
            ]
            .map(String::from),
        );
        if spec.resume {
            args.push(format!("--resume={}", spec.session_id));
        } else {
            args.push(format!("--session-id={}", spec.session_id));
        }
        if let Some(model) = &self.model {
            args.push(format!("--model={model}"));
        }
        if !self.allowed_tools.is_empty() {
            args.push("--allowedTools".into());
            args.push(self.allowed_tools.join(","));
        }
        // Always strict: MCP servers come from `spec.mcp_config` alone, never
        // from a `.mcp.json` the agent wrote into its workdir or a user-scope
        // config under its HOME.
        args.push("--strict-mcp-config".into());
        if let Some(path) = &spec.mcp_config {
            args.push("--mcp-config".into());
            args.push(path.display().to_string());
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// The complete environment of the child; it starts from nothing.
    pub(crate) fn env(&self, spec: &SpawnSpec) -> Vec<(String, OsString)> {
        let mut env: Vec<(String, OsString)> = INHERITED_ENV
            .iter()
            .filter_map(|key| std::env::var_os(key).map(|value| ((*key).to_owned(), value)))
            .collect();
        if !env.iter().any(|(key, _)| key == "PATH") {
            env.push(("PATH".into(), FALLBACK_PATH.into()));
        }
        let fixed = [
            ("HOME", spec.home.as_os_str().to_owned()),
            ("CLAUDE_CONFIG_DIR", spec.config_dir.as_os_str().to_owned()),
            ("PWD", spec.workdir.as_os_str().to_owned()),
            ("CLAUDE_CODE_ENTRYPOINT", "sdk-ts".into()),
            ("CLAUDE_CODE_SDK_READS_SESSION_STATE", "1".into()),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".into()),
            ("API_TIMEOUT_MS", millis(self.api_timeout).into()),
            (
                "CLAUDE_BYTE_STREAM_IDLE_TIMEOUT_MS",
                millis(self.byte_stream_idle_timeout).into(),
            ),
            (
                "CLAUDE_CODE_MAX_RETRIES",
                self.max_retries.to_string().into(),
            ),
        ];
        env.extend(fixed.map(|(key, value)| (key.to_owned(), value)));
        env.extend(
            self.env
                .iter()
                .chain(&spec.env)
                .map(|(key, value)| (key.clone(), value.into())),
        );
        env
    }
}

fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

/// One agent process: which session, and where it lives on disk.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    pub session_id: Uuid,
    /// The agent's cwd; must exist.
    pub workdir: PathBuf,
    /// `HOME` of the agent; created if missing.
    pub home: PathBuf,
    /// `CLAUDE_CONFIG_DIR` (transcripts live here); created if missing and
    /// restricted to the owner.
    pub config_dir: PathBuf,
    /// Continue the stored transcript (`--resume`) instead of starting
    /// a new session (`--session-id`).
    pub resume: bool,
    /// A `--mcp-config` file naming the MCP servers this process runs. The
    /// CLI has started them by the time it answers `initialize`, so the
    /// caller may delete the file (it may hold secrets) once
    /// [`crate::Agent::spawn`] returns. `None`: no MCP servers at all.
    pub mcp_config: Option<PathBuf>,
    /// What the sandbox lets this process reach (ignored without one).
    pub reach: Reach,
    /// This process's own variables, applied after [`Config::env`] (its
    /// model credential and proxy settings).
    pub env: Vec<(String, String)>,
    /// Dropped once the process has exited (and not before): e.g. the
    /// lease of its model credential. Keep no other clone of it.
    pub exit_guard: Option<Arc<dyn Any + Send + Sync>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(resume: bool) -> SpawnSpec {
        SpawnSpec {
            session_id: Uuid::nil(),
            workdir: "/w".into(),
            home: "/h".into(),
            config_dir: "/c".into(),
            resume,
            mcp_config: None,
            reach: Reach::default(),
            env: Vec::new(),
            exit_guard: None,
        }
    }

    #[test]
    fn args_pass_dash_values_inline_and_omit_empty_options() {
        let cfg = Config {
            system_prompt: "-be brief".into(),
            ..Config::default()
        };
        let args = cfg.args(&spec(false));
        assert!(args.contains(&"--system-prompt=-be brief".to_owned()));
        assert!(args.contains(&format!("--session-id={}", Uuid::nil())));
        assert!(
            !args
                .iter()
                .any(|a| a.starts_with("--allowedTools") || a.starts_with("--model"))
        );
        assert!(!args.iter().any(|a| a.starts_with("--resume")));
        // Strict even without servers: no config file of the agent's counts.
        assert!(args.contains(&"--strict-mcp-config".to_owned()));
        assert!(!args.contains(&"--mcp-config".to_owned()));
    }

    #[test]
    fn args_resume_model_tools_mcp_config_and_extra_args_in_order() {
        let cfg = Config {
            model: Some("claude-sonnet-4-5".into()),
            allowed_tools: vec!["Bash".into(), "mcp__calc".into()],
            extra_args: vec!["--debug".into()],
            ..Config::default()
        };
        let spec = SpawnSpec {
            mcp_config: Some("/r/mcp-config.json".into()),
            ..spec(true)
        };
        let args = cfg.args(&spec);
        let tail = &args[args.len() - 8..];
        assert_eq!(
            tail,
            [
                format!("--resume={}", Uuid::nil()),
                "--model=claude-sonnet-4-5".into(),
                "--allowedTools".into(),
                "Bash,mcp__calc".into(),
                "--strict-mcp-config".into(),
                "--mcp-config".into(),
                "/r/mcp-config.json".into(),
                "--debug".into(),
            ]
        );
        assert!(!args.iter().any(|a| a.starts_with("--session-id")));
    }

    #[test]
    fn env_holds_only_the_allow_list_and_caller_values_win() {
        let cfg = Config {
            max_retries: 0,
            env: vec![("CLAUDE_CODE_MAX_RETRIES".into(), "1".into())],
            ..Config::default()
        };
        let env = cfg.env(&spec(false));
        let allowed = [
            "PATH",
            "LANG",
            "LC_ALL",
            "TZ",
            "TMPDIR",
            "USER",
            "SHELL",
            "HOME",
            "CLAUDE_CONFIG_DIR",
            "PWD",
            "CLAUDE_CODE_ENTRYPOINT",
            "CLAUDE_CODE_SDK_READS_SESSION_STATE",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
            "API_TIMEOUT_MS",
            "CLAUDE_BYTE_STREAM_IDLE_TIMEOUT_MS",
            "CLAUDE_CODE_MAX_RETRIES",
        ];
        for (key, _) in &env {
            assert!(allowed.contains(&key.as_str()), "unexpected variable {key}");
        }
        let last = |key: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(last("HOME"), Some("/h".into()));
        assert_eq!(last("API_TIMEOUT_MS"), Some("120000".into()));
        assert_eq!(last("CLAUDE_CODE_MAX_RETRIES"), Some("1".into()));
        assert!(last("PATH").is_some());
    }
}
