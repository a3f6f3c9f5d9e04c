//! Agents are untrusted code with a shell: each runs in its own sandbox and
//! reaches nothing of the platform or of another session, whatever its role
//! (these tests use the admin, whose Bash is allowed) and tools.

use csp_e2e::{Csp, Mode, Options, Ws};
use serde_json::{Value, json};

use crate::governance::{new_user, ready};

/// The `tool_result` content of a Bash call that runs `command`.
async fn bash(ws: &mut Ws, command: &str) -> String {
    tool_output(ws, format!("run {command}")).await
}

/// Sends `text` (which makes the scripted model call a tool) and returns
/// the content of the tool's result, which must have completed.
async fn tool_output(ws: &mut Ws, text: String) -> String {
    let result = tool_result(ws, text).await;
    assert_eq!(result["status"], "complete", "{result}");
    content(&result)
}

/// Sends `text` and returns the `tool_result` frame of the turn.
async fn tool_result(ws: &mut Ws, text: String) -> Value {
    ws.send(json!({"type": "send", "text": text}))
        .await
        .unwrap();
    let turn = ws.turn().await.unwrap();
    turn.into_iter()
        .find(|f| f["type"] == "tool_result")
        .expect("the turn has a tool_result")
}

fn content(frame: &Value) -> String {
    match &frame["content"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The key files `csp dev` writes when no key is configured.
fn plant_keys(data: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    for (name, value) in [
        ("jwt-secret", csp_e2e::JWT_SECRET),
        ("secret-key", csp_e2e::SECRET_KEY),
    ] {
        let path = data.join(name);
        std::fs::write(&path, value).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

async fn sees_only_its_own_session(mode: Mode) {
    let csp = Csp::start(mode, Options::default()).await.unwrap();
    let admin = csp.login().await.unwrap();

    // Session A leaves a transcript and a file.
    let mut a = csp.ws(&admin, "").await.unwrap();
    let a_id = ready(&mut a).await;
    let a_workdir = bash(&mut a, "echo secret-of-a > mine.txt && pwd").await;
    let a_workdir = a_workdir.trim().to_owned();
    assert!(a_workdir.contains(&a_id), "{a_workdir}");
    let transcript = csp.transcripts(&a_id);
    assert!(!transcript.is_empty(), "session A has a transcript");

    let mut b = csp.ws(&admin, "").await.unwrap();
    let b_id = ready(&mut b).await;
    assert_ne!(a_id, b_id);
    let agents = csp.agents_dir();
    let data = agents.parent().unwrap().to_owned();
    let pid = csp
        .pid_of(if mode == Mode::Dev {
            "dev"
        } else {
            "session-pool"
        })
        .expect("csp's pid");
    let mut targets: Vec<String> = vec![
        format!("{a_workdir}/mine.txt"),
        transcript[0].display().to_string(),
        format!("/proc/{pid}/environ"),
        format!("/proc/{pid}/cmdline"),
    ];
    if mode == Mode::Dev {
        // `csp dev` keeps its generated keys here when none is configured
        // (the harness configures them, so they are planted as they would be).
        plant_keys(&data);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700, "the data directory is csp's alone");
        assert_eq!(mode(&agents), 0o700, "the agents' tree is csp's alone");
        assert_eq!(
            mode(&data.join("csp.db")),
            0o600,
            "the database is csp's alone"
        );
        for f in ["jwt-secret", "secret-key", "csp.db", "csp.db-wal"] {
            let path = data.join(f);
            assert!(path.exists(), "{} exists outside", path.display());
            targets.push(path.display().to_string());
        }
    }
    let gateway_port = csp.base.rsplit(':').next().unwrap().to_owned();
    let probe = format!(
        "for f in {files}; do if cat \"$f\" >/dev/null 2>&1; then echo \"READABLE $f\"; else echo \"HIDDEN $f\"; fi; done; \
         ln -s /proc/{pid}/environ link && (cat link >/dev/null 2>&1 && echo LINK-READABLE || echo LINK-HIDDEN); \
         kill -0 {pid} 2>/dev/null && echo SIGNAL-DELIVERED || echo SIGNAL-REFUSED; \
         echo PROCS $(ls /proc | grep -cE '^[0-9]+$'); \
         ls {agents}/sessions; \
         for p in {gateway_port} 5432 6379 4222; do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && echo PORT-OPEN-$p || echo PORT-CLOSED-$p; done; \
         curl -s -o /dev/null -w 'TUNNEL-%{{http_connect}}\\n' https://example.com/; \
         env",
        files = targets.join(" "),
        agents = agents.display(),
    );
    let out = bash(&mut b, &probe).await;
    assert!(
        !out.contains("READABLE"),
        "a platform or foreign file is readable:\n{out}"
    );
    for t in &targets {
        assert!(
            out.contains(&format!("HIDDEN {t}")),
            "{t} not probed:\n{out}"
        );
    }
    assert!(out.contains("LINK-HIDDEN"), "{out}");
    assert!(out.contains("SIGNAL-REFUSED"), "{out}");
    // `ls sessions`: B's own directory, and no other.
    let listed: Vec<&str> = out
        .lines()
        .filter(|l| uuid::Uuid::parse_str(l.trim()).is_ok())
        .collect();
    assert_eq!(listed, [b_id.as_str()], "sessions visible from B:\n{out}");
    assert!(
        !out.contains("PORT-OPEN"),
        "a platform port is reachable:\n{out}"
    );
    // No plugin declares example.com: the egress proxy refuses the tunnel.
    assert!(out.contains("TUNNEL-403"), "{out}");
    // Only the sandbox's own processes: its init, the forwarders, the CLI,
    // the shell of this tool call and what it runs.
    let procs: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("PROCS "))
        .and_then(|n| n.trim().parse().ok())
        .expect("process count");
    assert!(procs < 15, "{procs} processes visible:\n{out}");
    // The agent's environment holds a lease token, never the model key.
    assert!(!out.contains("e2e-test-key"), "{out}");
    assert!(
        !out.contains(csp_e2e::JWT_SECRET) && !out.contains(csp_e2e::SECRET_KEY),
        "{out}"
    );
    assert!(out.contains("ANTHROPIC_API_KEY=csp-agent-"), "{out}");
    assert!(
        !out.contains("CSP_JWT_SECRET") && !out.contains("DATABASE_URL"),
        "{out}"
    );

    // The lease is worthless outside its process's life, and never the key.
    a.close().await;
    b.close().await;
    csp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_sees_only_its_own_session_in_dev_mode() {
    sees_only_its_own_session(Mode::Dev).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_sees_only_its_own_session_in_distributed_mode() {
    sees_only_its_own_session(Mode::Distributed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_read_of_platform_files_fails() {
    let csp = Csp::start(Mode::Dev, Options::default()).await.unwrap();
    let admin = csp.login().await.unwrap();
    let (_, _, user) = new_user(&csp, &admin, "user", None).await;
    let data = csp.agents_dir().parent().unwrap().to_owned();
    plant_keys(&data);
    let secret = std::fs::read_to_string(data.join("jwt-secret")).unwrap();
    let pid = csp.pid_of("dev").unwrap();
    let mut ws = csp.ws(&user, "").await.unwrap();
    ready(&mut ws).await;
    for path in [
        data.join("jwt-secret").display().to_string(),
        data.join("csp.db-wal").display().to_string(),
        format!("/proc/{pid}/environ"),
        // The attack that worked: relative to the work directory
        // (`<data>/agents/sessions/<id>/work`).
        "../../../../jwt-secret".to_owned(),
    ] {
        let directive = json!({"type": "tool_use", "name": "Read", "input": {"file_path": path}});
        let result = tool_result(&mut ws, csp_e2e::scripted(directive)).await;
        let text = content(&result);
        assert_ne!(result["status"], "complete", "{path} was read: {text}");
        assert!(
            !text.contains(secret.trim()),
            "{path} leaked the JWT secret"
        );
    }
    ws.close().await;
    csp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_working_sandbox_no_agent_starts() {
    let result = Csp::start(
        Mode::Dev,
        Options {
            env: vec![(
                "CSP_AGENT_SANDBOX_BWRAP".into(),
                "/nonexistent/bwrap".into(),
            )],
            await_startup: false,
            ..Options::default()
        },
    )
    .await;
    let error = match result {
        Ok(csp) => {
            let logs = csp.all_logs();
            csp.stop().await;
            panic!("csp started without a sandbox:\n{logs}");
        }
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("CSP_AGENT_SANDBOX"), "{error}");
}

/// What the netcheck plugin's server reports for `target`.
async fn reach(ws: &mut Ws, target: String) -> String {
    let directive =
        json!({"type": "tool_use", "name": "mcp__netcheck__connect", "input": {"target": target}});
    tool_output(ws, csp_e2e::scripted(directive)).await
}

/// A TCP echo server on loopback.
async fn echo_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

/// A plugin's MCP server reaches the host its manifest declares (through the
/// egress proxy) and nothing else: not an undeclared host, not even the
/// declared one directly.
#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_reaches_only_the_hosts_it_declares() {
    let csp = Csp::start(Mode::Dev, Options::default()).await.unwrap();
    let admin = csp.login().await.unwrap();
    let (declared, undeclared) = (echo_server().await, echo_server().await);

    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/netcheck");
    let dir = csp.plugins_dir.join("netcheck");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture.join("server.js"), dir.join("server.js")).unwrap();
    let manifest = json!({
        "manifest_version": 1,
        "name": "netcheck",
        "version": "1.0.0",
        "plugin_type": "mcp",
        "description": "Reports what its server can reach (sandbox test).",
        "required_role": "user",
        "capabilities": {"tools": [{"name": "mcp__netcheck__connect", "description": "Tries a host"}]},
        "permissions": {"network": [format!("127.0.0.1:{declared}")]},
        "mcp": {"server_name": "netcheck", "command": "/usr/bin/node", "args": ["${plugin_dir}/server.js"]}
    });
    std::fs::write(
        dir.join("plugin.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, body) = crate::governance::call(
            &csp,
            reqwest::Method::POST,
            "/api/v1/plugins/netcheck/activate",
            Some(&admin),
            None,
        )
        .await;
        if status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not activated: {status} {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    crate::plugins::warm_rebuilt(&csp).await;

    let mut ws = csp.ws(&admin, "").await.unwrap();
    ready(&mut ws).await;
    let out = reach(&mut ws, format!("127.0.0.1:{declared}")).await;
    assert!(
        out.contains("TUNNEL HTTP/1.1 200 ECHO ping"),
        "declared host: {out}"
    );
    assert!(!out.contains("DIRECT open"), "reached directly: {out}");
    let out = reach(&mut ws, format!("127.0.0.1:{undeclared}")).await;
    assert!(
        out.contains("TUNNEL HTTP/1.1 403"),
        "undeclared host: {out}"
    );
    assert!(!out.contains("DIRECT open"), "reached directly: {out}");
    ws.close().await;
    csp.stop().await;
}

/// `CSP_AGENT_SANDBOX=off` runs agents unconfined, and says so: at start,
/// in readiness and in the config the admin pages read.
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_off_is_announced_everywhere() {
    for (setting, shown) in [("off", "off"), ("bubblewrap", "bubblewrap")] {
        let csp = Csp::start(
            Mode::Dev,
            Options {
                env: vec![("CSP_AGENT_SANDBOX".into(), setting.into())],
                ..Options::default()
            },
        )
        .await
        .unwrap();
        let probe: Value = csp
            .http()
            .get(format!("{}/api/v1/health/ready", csp.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(probe["agent_sandbox"], shown, "{probe}");
        let admin = csp.login().await.unwrap();
        let (status, config) = csp.get(&admin, "/api/v1/config").await.unwrap();
        assert_eq!(status, 200, "{config}");
        assert_eq!(config["agent_sandbox"], shown, "{config}");
        let warned = csp
            .all_logs()
            .contains("CSP_AGENT_SANDBOX=off: agents run unconfined");
        assert_eq!(warned, setting == "off", "start warning for {setting}");
        if setting == "off" {
            // Unconfined agents still never hold the model key.
            let mut ws = csp.ws(&admin, "").await.unwrap();
            ready(&mut ws).await;
            let env = bash(&mut ws, "env").await;
            assert!(env.contains("ANTHROPIC_API_KEY=csp-agent-"), "{env}");
            assert!(
                env.contains("ANTHROPIC_BASE_URL=http://127.0.0.1:"),
                "{env}"
            );
            ws.close().await;
        }
        csp.stop().await;
    }
}
