//! Login that resists abuse: throttling with 429 and Retry-After, one answer
//! for every refusal, JSON only, no cross-site requests with the cookie,
//! logout that revokes, normalised and unconfusable usernames, and memory
//! that stays bounded under a burst of logins.

use crate::governance::{call, unique};
use csp_e2e::{ADMIN_PASSWORD, Csp, Mode, Options};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn dev(env: &[(&str, &str)]) -> Csp {
    Csp::start(
        Mode::Dev,
        Options {
            prewarm: 0,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Options::default()
        },
    )
    .await
    .expect("csp starts")
}

/// POST /api/v1/auth/login with a JSON body: status, Retry-After, body.
async fn login(csp: &Csp, user: &str, password: &str) -> (u16, Option<u64>, Value) {
    let resp = csp
        .http()
        .post(format!("{}/api/v1/auth/login", csp.base))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .expect("login reaches csp");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().expect("Retry-After in seconds"));
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}

async fn account_throttle(mode: Mode) {
    let csp = Csp::start(
        mode,
        Options {
            prewarm: 0,
            ..Options::default()
        },
    )
    .await
    .expect("csp starts");
    for i in 1..=5 {
        let (status, retry, body) = login(&csp, "admin", "wrong").await;
        assert_eq!((status, retry), (401, None), "failure {i}: {body}");
    }
    // The sixth attempt waits, even with the right password and another spelling.
    for name in ["admin", "ADMIN", "\u{430}dmin"] {
        let (status, retry, body) = login(&csp, name, ADMIN_PASSWORD).await;
        assert_eq!(status, 429, "{name}: {body}");
        assert_eq!(retry, Some(1), "{name}: {body}");
        assert_eq!(body["error"]["code"], "too_many_login_attempts", "{body}");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, body) = login(&csp, "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    // The success reset the count: five more failures before the next wait.
    for i in 1..=5 {
        let (status, _, body) = login(&csp, "admin", "wrong").await;
        assert_eq!(status, 401, "failure {i} after the reset: {body}");
    }
    let (status, retry, _) = login(&csp, "admin", "wrong").await;
    assert_eq!((status, retry), (429, Some(1)));
    csp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn five_failures_make_the_account_wait_and_a_success_resets_it() {
    account_throttle(Mode::Dev).await;
}

/// The counts live in Redis there, shared by every gateway replica.
#[tokio::test(flavor = "multi_thread")]
async fn the_account_throttle_holds_in_multi_service_mode() {
    account_throttle(Mode::Distributed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_failures_from_one_address_make_it_wait() {
    let csp = dev(&[]).await;
    for i in 1..=20 {
        let (status, retry, body) = login(&csp, &unique("nobody"), "wrong").await;
        assert_eq!((status, retry), (401, None), "failure {i}: {body}");
    }
    // Every account, the admin's with its right password too, waits now.
    let (status, retry, body) = login(&csp, "admin", ADMIN_PASSWORD).await;
    assert_eq!((status, retry), (429, Some(1)), "{body}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, body) = login(&csp, "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    csp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_user_wrong_password_and_deactivated_account_get_one_answer() {
    let csp = dev(&[]).await;
    let admin = csp.login().await.unwrap();
    let gone = unique("gone");
    let (status, body) = call(
        &csp,
        Method::POST,
        "/api/v1/users",
        Some(&admin),
        Some(json!({"username": gone, "password": "gone-password", "role": "user"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["user_id"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &csp,
        Method::PATCH,
        &format!("/api/v1/users/{id}"),
        Some(&admin),
        Some(json!({"is_active": false})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let raw = |user: String| {
        let csp = &csp;
        async move {
            let t0 = Instant::now();
            let resp = csp
                .http()
                .post(format!("{}/api/v1/auth/login", csp.base))
                .json(&json!({"username": user, "password": "not-the-password"}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.bytes().await.unwrap(), t0.elapsed())
        }
    };
    let mut answers = Vec::new();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); 3];
    // Four rounds: four failures per account (one more for the deactivated
    // account below stays under the five), twelve from this address.
    for _ in 0..4 {
        for (i, user) in ["admin".to_owned(), unique("nobody"), gone.clone()]
            .into_iter()
            .enumerate()
        {
            let (status, body, took) = raw(user).await;
            times[i].push(took);
            answers.push((status, body));
        }
    }
    let (status, body) = &answers[0];
    assert_eq!(*status, 401);
    let v: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["error"]["code"], "bad_credentials", "{v}");
    assert!(
        answers.iter().all(|a| a == &answers[0]),
        "one answer for all three: {answers:?}"
    );
    // Each costs one password check: no case is several times faster.
    let medians: Vec<Duration> = times
        .iter_mut()
        .map(|t| {
            t.sort();
            t[2]
        })
        .collect();
    let (fast, slow) = (
        *medians.iter().min().unwrap(),
        *medians.iter().max().unwrap(),
    );
    assert!(
        slow < fast * 3,
        "wrong password, unknown user, deactivated: {medians:?}"
    );
    // The right password of a deactivated account says so: only its owner learns it.
    let (status, _, body) = login(&csp, &gone, "gone-password").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "account_deactivated", "{body}");
    csp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn login_takes_json_only_and_cookies_act_only_from_allowed_origins() {
    let csp = dev(&[]).await;
    let url = format!("{}/api/v1/auth/login", csp.base);
    let creds = json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string();
    for ct in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
    ] {
        let resp = csp
            .http()
            .post(&url)
            .header("content-type", ct)
            .header("origin", "https://evil.example")
            .body(creds.clone())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        assert!(resp.headers().get("set-cookie").is_none(), "{ct}");
        let body: Value = resp.json().await.unwrap();
        // A foreign page is refused before the body is read.
        assert_eq!(status, 403, "{ct}: {body}");
        let resp = csp
            .http()
            .post(&url)
            .header("content-type", ct)
            .body(creds.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 415, "{ct}");
        assert!(resp.headers().get("set-cookie").is_none(), "{ct}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unsupported_media_type", "{body}");
    }
    // An untyped body (a page's Blob) from a browser, even the own page's: 415.
    let resp = csp
        .http()
        .post(&url)
        .header("origin", &csp.base)
        .body(creds.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    assert!(resp.headers().get("set-cookie").is_none());
    // JSON from a foreign page: refused, no cookie.
    let post = |origin: Option<&str>| {
        let mut req = csp
            .http()
            .post(&url)
            .header("content-type", "application/json")
            .body(creds.clone());
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let resp = post(Some("https://evil.example")).await.unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("set-cookie").is_none());
    // From the gateway's own page: signed in, cookie set.
    let resp = post(Some(&csp.base)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_owned();

    // A state change with the cookie: only from the own origin.
    let create = |origin: Option<&str>, bearer: bool| {
        let mut req = csp.http().post(format!("{}/api/v1/users", csp.base)).json(
            &json!({"username": unique("csrf"), "password": "long-enough-pw", "role": "user"}),
        );
        req = if bearer {
            req.bearer_auth(&token)
        } else {
            req.header("cookie", &cookie)
        };
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let resp = create(Some("https://evil.example"), false).await.unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    assert_eq!(create(None, false).await.unwrap().status(), 403);
    assert_eq!(create(Some(&csp.base), false).await.unwrap().status(), 201);
    // A bearer token cannot be attached by another site: no Origin check.
    assert_eq!(
        create(Some("https://evil.example"), true)
            .await
            .unwrap()
            .status(),
        201
    );
    // Reads with the cookie need no Origin.
    let resp = csp
        .http()
        .get(format!("{}/api/v1/me", csp.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    csp.stop().await;
}

async fn me(csp: &Csp, auth: (&str, &str)) -> u16 {
    csp.http()
        .get(format!("{}/api/v1/me", csp.base))
        .header(auth.0, auth.1)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn logout(csp: &Csp, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = csp.http().post(format!("{}/api/v1/auth/logout", csp.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn logout_revokes(mode: Mode) {
    let csp = Csp::start(
        mode,
        Options {
            prewarm: 0,
            ..Options::default()
        },
    )
    .await
    .expect("csp starts");
    let token = csp.login().await.unwrap();
    let other = csp.login().await.unwrap();
    let bearer = format!("Bearer {token}");
    let cookie = format!("csp_token={token}");
    assert_eq!(me(&csp, ("authorization", &bearer)).await, 200);
    // Not from another site's page.
    let resp = logout(
        &csp,
        &[("cookie", &cookie), ("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(me(&csp, ("cookie", &cookie)).await, 200);
    // From the own page: the cookie is cleared and its token revoked.
    let resp = logout(&csp, &[("cookie", &cookie), ("origin", &csp.base)]).await;
    assert_eq!(resp.status(), 204);
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // The same token, on REST (as cookie or bearer) and on the WebSocket: refused.
    assert_eq!(me(&csp, ("cookie", &cookie)).await, 401);
    assert_eq!(me(&csp, ("authorization", &bearer)).await, 401);
    let e = csp.ws(&token, "").await.err().expect("refused");
    assert!(e.to_string().contains("401"), "{e}");
    // Another login of the same user is a token of its own.
    let other_bearer = format!("Bearer {other}");
    assert_eq!(me(&csp, ("authorization", &other_bearer)).await, 200);
    // Logout with only a bearer token clears nothing server-side: a
    // program's token ends at its expiry.
    let resp = logout(&csp, &[("authorization", &other_bearer)]).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(me(&csp, ("authorization", &other_bearer)).await, 200);
    csp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_revokes_the_token_in_dev_mode() {
    logout_revokes(Mode::Dev).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_revokes_the_token_in_multi_service_mode() {
    logout_revokes(Mode::Distributed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn usernames_are_normalised_and_look_alikes_refused() {
    let csp = dev(&[]).await;
    let admin = csp.login().await.unwrap();
    let create = |name: &str| {
        call(
            &csp,
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(json!({"username": name, "password": "long-enough-pw", "role": "user"})),
        )
    };
    // Cyrillic а, capitals, fullwidth, "rn" for "m": all read as "admin".
    for alike in ["\u{430}dmin", "\u{410}DMIN", "adrnin", "adm\u{456}n"] {
        let (status, body) = create(alike).await;
        assert_eq!(status, 409, "{alike}: {body}");
        assert_eq!(body["error"]["code"], "username_taken", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("looks like the existing username 'admin'"),
            "{alike}: {message}"
        );
    }
    for same in ["admin", "Admin", "ａｄｍｉｎ"] {
        let (status, body) = create(same).await;
        assert_eq!(status, 409, "{same}: {body}");
        assert_eq!(
            body["error"]["message"], "That username is already taken.",
            "{same}"
        );
    }
    // A fullwidth name is stored in NFKC, and logs in however it is typed.
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let fullwidth: String = format!("zoe{suffix}")
        .chars()
        .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap())
        .collect();
    let (status, body) = create(&fullwidth).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["username"], format!("zoe{suffix}"), "{body}");
    let (status, _, body) = login(&csp, &format!("zoe{suffix}"), "long-enough-pw").await;
    assert_eq!(status, 200, "{body}");
    // The admin, typed in fullwidth letters, is the admin.
    let (status, _, body) = login(&csp, "ａｄｍｉｎ", ADMIN_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["username"], "admin", "{body}");
    csp.stop().await;
}

/// Resident memory of a process (`VmRSS` or `VmHWM`, the peak), in KiB.
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// argon2id's default memory cost: 19 MiB per hash while it runs.
const HASH_MIB: u64 = 19;

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_wrong_logins_keep_memory_bounded() {
    // Two hashing threads; no throttling in the way of the burst.
    let csp = dev(&[
        ("CSP_PASSWORD_HASH_CONCURRENCY", "2"),
        ("CSP_LOGIN_MAX_FAILURES_PER_ADDRESS", "1000"),
    ])
    .await;
    let pid = csp.pid_of("dev").expect("the csp dev process");
    csp.login().await.unwrap();
    let before = proc_kib(pid, "VmRSS");
    let burst = (0..50).map(|_| {
        let csp = &csp;
        async move { login(csp, &unique("nobody"), "wrong").await.0 }
    });
    let statuses = futures::future::join_all(burst).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let peak = proc_kib(pid, "VmHWM");
    let after = proc_kib(pid, "VmRSS");
    // Two hashing threads with 19 MiB each (one already counted in `before`,
    // after the first login), plus 20 MiB for the requests and allocator
    // slack. Before the bound, the same burst took 50 × 19 MiB.
    let bound_mib = 2 * HASH_MIB + 20;
    eprintln!(
        "RSS before {} MiB, peak {} MiB, after {} MiB (bound: before + {bound_mib} MiB)",
        before / 1024,
        peak / 1024,
        after / 1024
    );
    assert!(
        peak <= before + bound_mib * 1024,
        "peak {peak} KiB exceeds {before} KiB + {bound_mib} MiB"
    );
    assert!(
        after <= before + bound_mib * 1024,
        "after {after} KiB exceeds {before} KiB + {bound_mib} MiB"
    );
    csp.stop().await;
}
