//! The mock against its wire format, over HTTP.

use std::time::Duration;

use csp_mock_ticketing::{MockRequest, MockSdp, NoteFault, RunningMock, TOPICS, seed_request};
use serde_json::{Value, json};

const KEY: &str = "tech-key-123";

async fn start(mock: MockSdp) -> (RunningMock, reqwest::Client) {
    (
        RunningMock::start(mock).await.unwrap(),
        reqwest::Client::new(),
    )
}

fn url(m: &RunningMock, path: &str, input: Option<Value>) -> String {
    let mut u = url::Url::parse(&format!("{}{path}", m.base_url())).unwrap();
    if let Some(input) = input {
        u.query_pairs_mut()
            .append_pair("input_data", &input.to_string());
    }
    u.to_string()
}

async fn get(c: &reqwest::Client, url: String) -> (u16, Value) {
    let r = c.get(url).header("authtoken", KEY).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn post_note(c: &reqwest::Client, url: String, input: Value) -> (u16, Value) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("input_data", &input.to_string())
        .finish();
    let r = c
        .post(url)
        .header("authtoken", KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

fn note(description: &str) -> Value {
    json!({"note": {"description": description, "show_to_requester": false}})
}

#[tokio::test]
async fn credentials_are_checked_with_the_apis_401() {
    let (m, c) = start(
        MockSdp::builder()
            .authtoken(KEY)
            .oauth_token("zoho-tok")
            .resolved(1)
            .build(),
    )
    .await;
    for req in [
        c.get(url(&m, "/api/v3/requests", None)),
        c.get(url(&m, "/api/v3/requests", None))
            .header("authtoken", "wrong"),
        c.get(url(&m, "/api/v3/requests", None))
            .header("authorization", "Zoho-oauthtoken nope"),
    ] {
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["response_status"]["status"], "failed");
        assert_eq!(body["response_status"]["messages"][0]["status_code"], 4022);
    }
    let (status, _) = get(&c, url(&m, "/api/v3/requests", None)).await;
    assert_eq!(status, 200);
    // The cloud's path and token.
    let r = c
        .get(url(&m, "/app/itdesk/api/v3/requests/100001", None))
        .header("authorization", "Zoho-oauthtoken zoho-tok")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    m.shutdown().await;
}

#[tokio::test]
async fn the_request_list_pages_and_filters() {
    let mock = MockSdp::builder().resolved(250).build();
    mock.insert(MockRequest::open(
        1,
        "New ticket",
        "<p>Outlook crashes</p>",
        "High",
    ));
    let (m, c) = start(mock).await;
    let criteria =
        json!([{"field": "status.name", "condition": "is", "values": ["Resolved", "Closed"]}]);
    let mut start_index = 1;
    let mut ids = Vec::new();
    let mut pages = Vec::new();
    loop {
        let input = json!({"list_info": {"row_count": 100, "start_index": start_index, "sort_field": "id",
                                         "get_total_count": true, "search_criteria": criteria}});
        let (status, body) = get(&c, url(&m, "/api/v3/requests", Some(input))).await;
        assert_eq!(status, 200, "{body}");
        let rows = body["requests"].as_array().unwrap();
        assert_eq!(body["list_info"]["total_count"], 250);
        assert_eq!(body["list_info"]["start_index"], start_index);
        assert!(
            rows.iter().all(|r| r.get("description").is_none()),
            "lists carry no description"
        );
        ids.extend(
            rows.iter()
                .map(|r| r["id"].as_str().unwrap().parse::<u64>().unwrap()),
        );
        pages.push(rows.len());
        if !body["list_info"]["has_more_rows"].as_bool().unwrap() {
            break;
        }
        start_index += rows.len();
    }
    assert_eq!(pages, [100, 100, 50]);
    assert_eq!(ids, (100_001..=100_250).collect::<Vec<_>>());

    // Without a filter the open request is there too; a bad filter is the API's 400.
    let (_, body) = get(
        &c,
        url(
            &m,
            "/api/v3/requests",
            Some(json!({"list_info": {"row_count": 1}})),
        ),
    )
    .await;
    assert_eq!(body["requests"][0]["id"], "1");
    assert_eq!(body["requests"][0]["status"]["name"], "Open");
    let bad =
        json!({"list_info": {"search_criteria": {"field": "nope", "condition": "is", "value": 1}}});
    let (status, body) = get(&c, url(&m, "/api/v3/requests", Some(bad))).await;
    assert_eq!(status, 400);
    assert_eq!(body["response_status"]["status"], "failed");
    m.shutdown().await;
}

#[tokio::test]
async fn details_and_resolutions_carry_html_and_millisecond_times() {
    let (m, c) = start(MockSdp::builder().build()).await;
    m.mock().seed_resolved_at(2, 1_700_000_000_000);
    let (status, body) = get(&c, url(&m, "/api/v3/requests/100001", None)).await;
    assert_eq!(status, 200);
    let r = &body["request"];
    assert_eq!(r["subject"], TOPICS[0].subject);
    assert!(r["description"].as_str().unwrap().starts_with("<div>"));
    assert_eq!(r["status"]["name"], "Resolved");
    assert!(
        r["resolved_time"]["value"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            < 1_700_000_000_000
    );
    assert!(
        r["resolution"]["content"]
            .as_str()
            .unwrap()
            .contains("Repaired the Office installation")
    );
    let (_, closed) = get(&c, url(&m, "/api/v3/requests/100002", None)).await;
    assert_eq!(closed["request"]["status"]["name"], "Closed");
    assert!(closed["request"]["resolved_time"].is_null());
    assert!(closed["request"]["completed_time"]["value"].is_string());
    let (_, res) = get(&c, url(&m, "/api/v3/requests/100002/resolutions", None)).await;
    assert!(
        res["resolution"]["content"]
            .as_str()
            .unwrap()
            .contains("VPN client certificate")
    );
    let (status, body) = get(&c, url(&m, "/api/v3/requests/999", None)).await;
    assert_eq!(
        (
            status,
            body["response_status"]["messages"][0]["status_code"].as_u64()
        ),
        (404, Some(4007))
    );
    m.shutdown().await;
}

#[tokio::test]
async fn notes_are_created_from_input_data_and_listed() {
    let mock = MockSdp::builder().authtoken(KEY).build();
    mock.insert(MockRequest::open(1234, "VPN", "<p>VPN drops</p>", "High"));
    let (m, c) = start(mock).await;
    let (status, body) = post_note(
        &c,
        url(&m, "/api/v3/requests/1234/notes", None),
        note("<p>hello</p>"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["note"]["id"], "1");
    let (status, body) = post_note(
        &c,
        url(&m, "/api/v3/requests/1234/notes", None),
        json!({"note": {}}),
    )
    .await;
    assert_eq!(
        (
            status,
            body["response_status"]["messages"][0]["status_code"].as_u64()
        ),
        (400, Some(4012))
    );
    let (status, _) = post_note(&c, url(&m, "/api/v3/requests/77/notes", None), note("x")).await;
    assert_eq!(status, 404);
    let (_, list) = get(&c, url(&m, "/api/v3/requests/1234/notes", None)).await;
    assert_eq!(list["notes"][0]["description"], "<p>hello</p>");
    assert_eq!(list["notes"][0]["show_to_requester"], false);
    let (_, one) = get(&c, url(&m, "/api/v3/requests/1234/notes/1", None)).await;
    assert_eq!(one["note"]["description"], "<p>hello</p>");
    assert_eq!(m.mock().note_posts(), 3);
    assert_eq!(m.mock().notes_for(1234).len(), 1);
    m.shutdown().await;
}

#[tokio::test]
async fn taking_the_notes_removes_them_and_their_requests() {
    let mock = MockSdp::builder().authtoken(KEY).build();
    mock.insert(MockRequest::open(1, "VPN", "down", "High"));
    mock.insert(MockRequest::open(2, "Mail", "slow", "Low"));
    let (m, c) = start(mock).await;
    let (status, _) = post_note(&c, url(&m, "/api/v3/requests/1/notes", None), note("a")).await;
    assert_eq!(status, 201);
    let taken = m.mock().take_notes();
    assert_eq!(taken.iter().map(|n| n.request_id).collect::<Vec<_>>(), [1]);
    assert!(m.mock().notes().is_empty());
    assert!(m.mock().request(1).is_none());
    assert!(m.mock().request(2).is_some());
    assert_eq!(m.mock().note_posts(), 1);
    m.shutdown().await;
}

#[tokio::test]
async fn the_next_note_posts_fail_as_told() {
    let mock = MockSdp::builder()
        .hang_for(Duration::from_millis(200))
        .build();
    mock.insert(MockRequest::open(5, "s", "d", "Low"));
    let (m, c) = start(mock).await;
    let notes_url = || url(&m, "/api/v3/requests/5/notes", None);
    // Through the control route, as a demo script would.
    let r = c
        .post(url(&m, "/_mock/notes/fail", None))
        .json(&json!({"count": 2, "mode": "status", "status": 503}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    for _ in 0..2 {
        let (status, body) = post_note(&c, notes_url(), note("a")).await;
        assert_eq!(
            (status, body["response_status"]["status"].as_str()),
            (503, Some("failed"))
        );
    }
    assert_eq!(post_note(&c, notes_url(), note("a")).await.0, 201);

    m.mock().fail_next_note_posts(1, NoteFault::Hang);
    let started = std::time::Instant::now();
    assert_eq!(post_note(&c, notes_url(), note("b")).await.0, 500);
    assert!(started.elapsed() >= Duration::from_millis(200));
    m.mock()
        .fail_next_note_posts(1, NoteFault::CreateThenStatus { status: 500 });
    assert_eq!(post_note(&c, notes_url(), note("c")).await.0, 500);

    let stats: Value = c
        .get(url(&m, "/_mock/stats", None))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["note_posts"], 5);
    assert_eq!(
        stats["notes"], 2,
        "the first success and the create-then-fail"
    );
    let notes: Value = c
        .get(url(&m, "/_mock/notes?request_id=5", None))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(notes.as_array().unwrap().len(), 2);
    assert_eq!(notes[1]["description"], "c");
    let r = c.post(url(&m, "/_mock/reset", None)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(m.mock().stats().note_posts, 0);
    assert_eq!(m.mock().stats().requests, 1, "requests survive a reset");
    m.shutdown().await;
}

#[tokio::test]
async fn a_hanging_post_ends_at_shutdown() {
    let mock = MockSdp::default();
    mock.insert(MockRequest::open(5, "s", "d", "Low"));
    mock.fail_next_note_posts(1, NoteFault::Hang);
    let (m, c) = start(mock).await;
    let pending = tokio::spawn(post_note_owned(
        c,
        url(&m, "/api/v3/requests/5/notes", None),
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(5), m.shutdown())
        .await
        .expect("shutdown does not wait 10 minutes");
    let _ = pending.await;
}

async fn post_note_owned(c: reqwest::Client, url: String) -> u16 {
    post_note(&c, url, note("x")).await.0
}

#[tokio::test]
async fn seeding_is_deterministic_and_controlled_over_http() {
    let (m, c) = start(MockSdp::default()).await;
    let r: Value = c
        .post(url(&m, "/_mock/seed", None))
        .json(&json!({"resolved": 16}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r,
        json!({"first_id": 100_001, "last_id": 100_016, "count": 16})
    );
    let again: Value = c
        .post(url(&m, "/_mock/seed", None))
        .json(&json!({"resolved": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["first_id"], 100_017);
    for n in [0u64, 9] {
        let r = m.mock().request(100_001 + n).unwrap();
        let expected = seed_request(n, 100_001 + n, 0);
        assert_eq!(
            (r.subject, r.description, r.resolution),
            (expected.subject, expected.description, expected.resolution)
        );
    }
    assert_eq!(
        m.mock().request(100_010).unwrap().subject,
        TOPICS[1].subject
    );
    let added: Value = c
        .post(url(&m, "/_mock/requests", None))
        .json(&json!([{"id": 1234, "subject": "Outlook crashes", "description": "<p>Outlook crashes on start</p>",
                        "status": "Open", "priority": "High", "created_ms": 1}]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(added["count"], 1);
    assert_eq!(m.mock().request(1234).unwrap().status, "Open");
    m.shutdown().await;
}
