//! `csp tickets import` against a fake ServiceDesk Plus with 1,000 resolved
//! tickets, on SQLite (a `csp dev` data directory and its kept key) and on
//! Postgres (`DATABASE_URL`, `CSP_SECRET_KEY`).

use crate::helpers::{Location, csp, text};
use csp_domain::{HistorySource, TenantId};
use csp_mock_ticketing::{MockRequest, MockSdp, RunningMock};
use csp_secrets::{Keyring, SecretKey};
use csp_store::test_support::{Backend, TestStore};
use csp_store::{NewTenant, StoredSecret, TenantUpdate};
use secrecy::ExposeSecret;
use serde_json::json;

const SDP_KEY: &str = "sdp-technician-key";
const TICKETS: usize = 1000;

/// A store with tenant `acme` (its api_key sealed under a fresh key)
/// pointing at `sdp_url`, and what the binary needs to reach both.
struct Setup {
    store: TestStore,
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    key: String,
}

impl Setup {
    async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let store = match backend {
            Backend::Sqlite => TestStore::sqlite_file(&path.join("csp.db")).await,
            Backend::Postgres => TestStore::postgres().await,
        };
        let (_, key) = SecretKey::generate();
        Self {
            store,
            _dir: dir,
            dir: path,
            key: key.expose_secret().to_owned(),
        }
    }

    async fn tenant(&self, id: &str, sdp_url: &str, api_key: &str) -> TenantId {
        let keyring = Keyring::new(SecretKey::parse(&self.key).unwrap(), Vec::new());
        let sealed = keyring.seal(api_key);
        let tenant_id = TenantId::parse(id).unwrap();
        self.store
            .create_tenant(NewTenant {
                tenant_id: tenant_id.clone(),
                name: format!("{id} MSP"),
                tool_type: "servicedesk_plus".into(),
                settings: json!({"servicedesk_url": sdp_url, "servicedesk_auth": "authtoken"}),
                preferences: json!({}),
                monthly_budget_micros: None,
                dedicated_queue: false,
                secrets: vec![StoredSecret {
                    key: "api_key".into(),
                    encrypted_value: sealed.token,
                    encryption_key_version: sealed.key_version,
                }],
            })
            .await
            .unwrap();
        tenant_id
    }

    /// `csp tickets import --tenant-id <tenant> [extra…]`: on SQLite through
    /// the data directory and the key `csp dev` keeps there, on Postgres
    /// through `DATABASE_URL` and `CSP_SECRET_KEY`.
    async fn import(&self, tenant: &str, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["tickets", "import", "--tenant-id", tenant];
        args.extend_from_slice(extra);
        match self.store.postgres_db() {
            Some(db) => {
                csp(
                    Location::DatabaseUrl(db.url()),
                    &args,
                    &[("CSP_SECRET_KEY", &self.key)],
                )
                .await
            }
            None => {
                std::fs::write(self.dir.join("secret-key"), &self.key).unwrap();
                csp(Location::DataDir(&self.dir), &args, &[]).await
            }
        }
    }
}

async fn mock_with_tickets() -> RunningMock {
    let sdp = MockSdp::builder()
        .authtoken(SDP_KEY)
        .resolved(TICKETS)
        .build();
    // One resolved request without a resolution: listed, but not importable.
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    sdp.insert(MockRequest {
        id: 900_001,
        status: "Resolved".into(),
        resolved_ms: Some(now_ms - 86_400_000),
        ..MockRequest::open(900_001, "Printer jam", "<div>The printer jams</div>", "Low")
    });
    RunningMock::start(sdp).await.unwrap()
}

async fn importing_twice_keeps_one_row_per_ticket(backend: Backend) {
    let mock = mock_with_tickets().await;
    let setup = Setup::new(backend).await;
    let acme = setup.tenant("acme", &mock.base_url(), SDP_KEY).await;

    for run in 1..=2 {
        let out = setup.import("acme", &["--days", "90"]).await;
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "run {run} failed: {}\n{stdout}",
            text(&out.stderr)
        );
        assert_eq!(
            setup.store.count_ticket_history(&acme).await.unwrap(),
            TICKETS as u64,
            "after run {run}"
        );
        // A page of 100 at a time, counted against the first page's total.
        for line in [
            "Imported 100/1001 tickets (9%)",
            "Imported 500/1001 tickets (49%)",
            "Imported 1000/1001 tickets (100%)",
        ] {
            assert!(stdout.contains(line), "run {run}: no {line:?} in\n{stdout}");
        }
        assert!(
            stdout.contains("Skipped ticket 900001"),
            "the invalid ticket is logged: {stdout}"
        );
        assert!(
            stdout.contains("1000 tickets imported, 1 skipped"),
            "{stdout}"
        );
        // Not a terminal: no progress bar.
        assert!(!text(&out.stderr).contains("\r["), "{}", text(&out.stderr));
    }
    let first = csp_mock_ticketing::FIRST_SEED_ID.to_string();
    let stored = setup
        .store
        .ticket_history(&acme, &first)
        .await
        .unwrap()
        .expect("the first seeded ticket is stored");
    assert_eq!(stored.source, HistorySource::BulkImport);
    assert!(!stored.ticket.resolution.is_empty());
    assert!(
        setup
            .store
            .ticket_history(&acme, "900001")
            .await
            .unwrap()
            .is_none()
    );
    mock.shutdown().await;
}

async fn a_date_range_imports_only_its_days(backend: Backend) {
    let mock = mock_with_tickets().await;
    let setup = Setup::new(backend).await;
    let acme = setup.tenant("acme", &mock.base_url(), SDP_KEY).await;
    // The seed spreads its tickets over the last 80 days: a range that
    // ended 100 days ago holds none of them.
    let end = (time::OffsetDateTime::now_utc() - time::Duration::days(100)).date();
    let start = end - time::Duration::days(30);
    let out = setup
        .import(
            "acme",
            &[
                "--start-date",
                &start.to_string(),
                "--end-date",
                &end.to_string(),
            ],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(setup.store.count_ticket_history(&acme).await.unwrap(), 0);
    assert!(
        text(&out.stdout).contains("Imported 0/0 tickets (100%)"),
        "{}",
        text(&out.stdout)
    );
    mock.shutdown().await;
}

async fn failures_exit_non_zero_and_say_why(backend: Backend) {
    let mock = mock_with_tickets().await;
    let setup = Setup::new(backend).await;
    setup.tenant("acme", &mock.base_url(), SDP_KEY).await;

    let failed = |out: &std::process::Output, expected: &str| {
        assert!(!out.status.success(), "succeeded: {}", text(&out.stdout));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in {stderr}"
        );
    };

    failed(
        &setup.import("nobody", &[]).await,
        "unknown tenant 'nobody'",
    );

    let wrong_key = setup
        .tenant("wrong-key", &mock.base_url(), "not-the-key")
        .await;
    failed(
        &setup.import(wrong_key.as_str(), &[]).await,
        "rejected the tenant's api_key",
    );

    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    setup.tenant("offline", &url, SDP_KEY).await;
    failed(&setup.import("offline", &[]).await, "could not be reached");

    let gone = setup.tenant("gone", &mock.base_url(), SDP_KEY).await;
    setup
        .store
        .update_tenant(
            &gone,
            TenantUpdate {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    failed(
        &setup.import("gone", &[]).await,
        "tenant 'gone' is inactive",
    );

    failed(&setup.import("Not A Slug", &[]).await, "is not a tenant id");
    mock.shutdown().await;
}

csp_store::backend_tests!(
    #[tokio::test(flavor = "multi_thread")]
    importing_twice_keeps_one_row_per_ticket,
    a_date_range_imports_only_its_days,
    failures_exit_non_zero_and_say_why,
);
