//! Start-up and shutdown. The CLI makes no API call before the first user
//! message, so none of these needs a model server.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use csp_agent::{Agent, AgentEvent, AllowList, Config, Error, PermissionHook};

use crate::helpers::{NO_MODEL, Sandbox, config, group_alive, next_event, spawn};

fn no_tools() -> Arc<dyn PermissionHook> {
    Arc::new(AllowList::default())
}

fn environ(pid: u32) -> Vec<(String, String)> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("environ is readable");
    raw.split(|&b| b == 0)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (key, value) = entry.split_once('=').unwrap_or((&entry, ""));
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn ready_after_initialize_with_a_scrubbed_environment_then_clean_shutdown() {
    let sandbox = Sandbox::new();
    let (agent, _events) = spawn(&config(NO_MODEL), &sandbox, no_tools()).await;
    assert_eq!(agent.session_id(), sandbox.session_id);
    let pid = agent.pid();
    assert!(group_alive(pid), "the CLI leads its own process group");

    // cargo sets CARGO_* for this test process; none of it may reach the agent.
    let env = environ(pid);
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
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_API_KEY",
    ];
    let unexpected: Vec<_> = env
        .iter()
        .filter(|(key, _)| !allowed.contains(&key.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "leaked into the agent: {unexpected:?}"
    );
    let get = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    assert_eq!(get("HOME"), sandbox.path("home").to_str());
    assert_eq!(get("CLAUDE_CODE_MAX_RETRIES"), Some("0"));
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).expect("cwd");
    assert_eq!(cwd, sandbox.workdir().canonicalize().unwrap());
    let mode = std::fs::metadata(sandbox.path("claude"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);

    // node alone holds tens of megabytes.
    assert_eq!(csp_agent::tree_pids(pid).first(), Some(&pid));
    assert!(agent.rss_bytes() > 10 << 20, "{} bytes", agent.rss_bytes());

    // An idle CLI exits 0 on stdin EOF, and takes its whole group with it.
    assert_eq!(agent.shutdown(Duration::from_secs(20)).await, Some(0));
    assert!(!group_alive(pid), "processes left in the agent's group");
    assert_eq!(csp_agent::tree_pids(pid), Vec::<u32>::new(), "reaped");
    assert_eq!(csp_agent::tree_rss_bytes(pid), 0);
}

#[tokio::test]
async fn control_requests_round_trip_and_rejections_are_typed() {
    let sandbox = Sandbox::new();
    let (agent, _events) = spawn(&config(NO_MODEL), &sandbox, no_tools()).await;

    agent
        .interrupt()
        .await
        .expect("an idle interrupt is acknowledged");
    let mode = agent
        .request(serde_json::json!({"subtype": "set_permission_mode", "mode": "acceptEdits"}))
        .await
        .expect("set_permission_mode");
    assert_eq!(mode["mode"], "acceptEdits");

    let rejected = agent
        .request(serde_json::json!({"subtype": "no_such_thing"}))
        .await
        .expect_err("unknown subtypes are refused");
    let Error::ControlRejected {
        subtype,
        message,
        code,
    } = rejected
    else {
        panic!("not a rejection: {rejected:?}")
    };
    assert_eq!(subtype, "no_such_thing");
    assert!(message.contains("no_such_thing"), "{message}");
    assert_eq!(code.as_deref(), Some("unsupported_request"));

    assert!(matches!(
        agent.request(serde_json::json!({"no": "subtype"})).await,
        Err(Error::InvalidRequest)
    ));
    agent.shutdown(Duration::from_secs(20)).await;
}

#[tokio::test]
async fn a_missing_cli_says_how_to_install_it() {
    let sandbox = Sandbox::new();
    let not_executable = sandbox.path("claude-but-not-executable");
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    for cli_path in [sandbox.path("nowhere/claude"), not_executable] {
        let cfg = Config {
            cli_path: cli_path.clone(),
            ..config(NO_MODEL)
        };
        let error = Agent::spawn(&cfg, sandbox.spec(), no_tools())
            .await
            .expect_err("there is no CLI to start");
        assert!(matches!(&error, Error::CliNotFound { path } if *path == cli_path));
        let message = error.to_string();
        assert!(
            message.contains(&cli_path.display().to_string()),
            "{message}"
        );
        assert!(message.contains("scripts/setup.sh"), "{message}");
        assert!(message.contains("CLAUDE_CLI="), "{message}");
    }
}

#[tokio::test]
async fn resuming_an_unknown_session_is_a_typed_error() {
    let sandbox = Sandbox::new();
    let spec = csp_agent::SpawnSpec {
        resume: true,
        ..sandbox.spec()
    };
    let error = Agent::spawn(&config(NO_MODEL), spec, no_tools())
        .await
        .expect_err("there is nothing to resume");
    let Error::StartRejected { errors, .. } = error else {
        panic!("not a start rejection: {error:?}")
    };
    let expected = format!(
        "No conversation found with session ID: {}",
        sandbox.session_id
    );
    assert!(errors.iter().any(|e| e.contains(&expected)), "{errors:?}");
}

#[tokio::test]
async fn a_cli_that_exits_before_ready_reports_its_stderr() {
    let sandbox = Sandbox::new();
    let cfg = Config {
        extra_args: vec!["--no-such-flag".into()],
        ..config(NO_MODEL)
    };
    let error = Agent::spawn(&cfg, sandbox.spec(), no_tools())
        .await
        .expect_err("the CLI rejects the flag");
    let Error::ExitedBeforeReady { code, stderr_tail } = error else {
        panic!("not an early exit: {error:?}")
    };
    assert_eq!(code, Some(1));
    assert!(stderr_tail.contains("no-such-flag"), "{stderr_tail}");
}

#[tokio::test]
async fn a_cli_that_never_answers_initialize_times_out_and_is_killed() {
    let sandbox = Sandbox::new();
    let script = sandbox.path("silent-claude");
    let pid_file = sandbox.path("pid");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ > {}\nexec sleep 600\n",
            pid_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = Config {
        cli_path: script,
        init_timeout: Duration::from_millis(500),
        ..config(NO_MODEL)
    };
    let error = Agent::spawn(&cfg, sandbox.spec(), no_tools())
        .await
        .expect_err("nothing ever answers");
    assert!(matches!(error, Error::InitTimeout { .. }), "{error:?}");

    let pid: u32 = std::fs::read_to_string(pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SIGKILL is sent before spawn returns; the reaping happens in the background.
    let gone = async {
        while group_alive(pid) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), gone)
        .await
        .expect("the silent CLI was not killed");
}

#[tokio::test]
async fn dropping_the_handle_kills_the_group_and_reports_the_exit() {
    let sandbox = Sandbox::new();
    let (agent, mut events) = spawn(&config(NO_MODEL), &sandbox, no_tools()).await;
    let pid = agent.pid();
    drop(agent);
    let AgentEvent::Exited { code, .. } = next_event(&mut events).await else {
        panic!("expected the exit report")
    };
    assert_eq!(code, None, "ended by SIGKILL, not by itself");
    assert!(!group_alive(pid));
    assert!(events.recv().await.is_none(), "Exited is the last event");
}
