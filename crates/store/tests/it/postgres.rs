//! The suite against Postgres, one fresh database per test, plus connecting.

use crate::helpers::user;
use csp_domain::{HistorySource, TenantId};
use csp_store::test_support::{TestDb, TestStore};
use csp_store::{
    Config, ContextStore, EnhancementStore, Error, HistoryTicket, KbArticleRecord, NewEnhancement,
    NewTenant, PgStore, SessionStore, SystemRecord, TenantStore, UserStore,
};
use std::time::Duration;

store_suite!(TestStore::postgres());

#[tokio::test]
async fn reconnecting_keeps_data_and_does_not_remigrate() {
    let db = TestDb::create().await;
    let alice = user(db.store(), "alice").await;
    let again = PgStore::connect(db.url()).await.unwrap();
    assert_eq!(again.user_by_name("alice").await.unwrap(), Some(alice));
    again.close().await;
}

#[tokio::test]
async fn replicas_starting_together_migrate_once() {
    let db = TestDb::create().await;
    let (a, b, c) = tokio::join!(
        PgStore::connect(db.url()),
        PgStore::connect(db.url()),
        PgStore::connect(db.url())
    );
    for store in [a.unwrap(), b.unwrap(), c.unwrap()] {
        store.ping().await.unwrap();
        store.close().await;
    }
}

#[tokio::test]
async fn unreachable_server_names_the_url_without_the_password() {
    let config = Config {
        acquire_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    // Port 1 is closed: the connection is refused.
    let err = PgStore::connect_with("postgres://csp:hunter2@127.0.0.1:1/csp", &config)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("postgres://csp:***@127.0.0.1:1/csp"),
        "{message}"
    );
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}

#[tokio::test]
async fn invalid_url_is_reported_without_the_password() {
    let err = PgStore::connect("postgres://csp:hunter2@db/csp?sslmode=sometimes")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("postgres://csp:***@db/csp?sslmode=sometimes"),
        "{message}"
    );
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}

// Row-level security: what a tenant-scoped transaction sees and may write
// even when a statement forgets its tenant filter (the store's statements
// never do; these are written to forget on purpose).

/// Every tenant table: each table that carries a tenant_id but sessions,
/// which are users' rows.
const TENANT_TABLES: [&str; 7] = [
    "tenant_configs",
    "tenant_spend",
    "enhancement_history",
    "ticket_history",
    "kb_articles",
    "system_inventory",
    "tenant_grants",
];

/// Tenants a and b with a row of their own in every tenant table.
async fn two_tenants_with_rows(db: &TestDb) -> (TenantId, TenantId) {
    let store = db.store();
    let (a, b) = (
        TenantId::parse("aa").unwrap(),
        TenantId::parse("bb").unwrap(),
    );
    let granted = user(store, "granted").await;
    for (t, word) in [(&a, "alpha"), (&b, "bravo")] {
        store
            .create_tenant(NewTenant {
                tenant_id: t.clone(),
                name: t.to_string(),
                tool_type: "servicedesk_plus".to_owned(),
                settings: serde_json::json!({}),
                preferences: serde_json::json!({}),
                monthly_budget_micros: None,
                dedicated_queue: false,
                secrets: vec![],
            })
            .await
            .unwrap();
        store.add_tenant_spend(t, "2026-12", 5).await.unwrap();
        store
            .record_enhancement(NewEnhancement {
                job_id: uuid::Uuid::new_v4(),
                tenant_id: t.clone(),
                ticket_id: "1".to_owned(),
                delivery_key: "d".to_owned(),
                subject: "s".to_owned(),
                description: format!("disk {word}"),
                priority: "High".to_owned(),
                correlation_id: "c".to_owned(),
            })
            .await
            .unwrap();
        let ticket = HistoryTicket {
            ticket_id: "1".to_owned(),
            description: format!("Disk full {word}"),
            resolution: "Cleaned".to_owned(),
            resolved_date: time::OffsetDateTime::now_utc(),
            tags: vec![],
        };
        store
            .upsert_ticket_history(
                t,
                &[ticket],
                HistorySource::BulkImport,
                time::OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        let article = KbArticleRecord {
            title: format!("Disk {word}"),
            summary: "s".to_owned(),
            url: "https://kb.example/1".to_owned(),
            body: "b".to_owned(),
        };
        store.upsert_kb_articles(t, &[article]).await.unwrap();
        let system = SystemRecord {
            ip: "10.0.0.5".parse().unwrap(),
            hostname: format!("fs-{word}"),
            role: "r".to_owned(),
            client: "c".to_owned(),
            location: "l".to_owned(),
        };
        store.upsert_inventory(t, &[system]).await.unwrap();
        let now = time::OffsetDateTime::now_utc();
        assert!(
            store
                .grant_tenant(t, granted.user_id, None, now)
                .await
                .unwrap()
        );
    }
    (a, b)
}

/// The invariant TENANT_TABLES stands for, read from the catalog: every
/// table with a tenant_id column but sessions has row-level security
/// enabled and forced, with the two policies.
#[tokio::test]
async fn every_tenant_table_has_row_level_security_forced() {
    let db = TestDb::create().await;
    let raw = sqlx::PgPool::connect(db.url()).await.unwrap();
    let mut with_tenant_id: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND column_name = 'tenant_id' \
         AND table_name IN (SELECT tablename FROM pg_tables WHERE schemaname = 'public') \
         AND table_name <> 'sessions' ORDER BY 1",
    )
    .fetch_all(&raw)
    .await
    .unwrap();
    let mut expected = TENANT_TABLES.map(str::to_owned).to_vec();
    with_tenant_id.sort();
    expected.sort();
    assert_eq!(with_tenant_id, expected);
    for table in TENANT_TABLES {
        let (enabled, forced): (bool, bool) = sqlx::query_as(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class \
             WHERE oid = to_regclass($1)",
        )
        .bind(table)
        .fetch_one(&raw)
        .await
        .unwrap();
        assert!(enabled && forced, "{table}");
        let policies: Vec<String> = sqlx::query_scalar(
            "SELECT policyname::text FROM pg_policies WHERE tablename = $1 ORDER BY 1",
        )
        .bind(table)
        .fetch_all(&raw)
        .await
        .unwrap();
        assert_eq!(policies, ["platform", "tenant_isolation"], "{table}");
    }
    raw.close().await;
}

#[tokio::test]
async fn a_tenant_scope_sees_only_its_tenants_grants() {
    let db = TestDb::create().await;
    let store = db.store();
    let (a, b) = two_tenants_with_rows(&db).await;
    // b granted to a user of its own too: none of b's grants shows in a's
    // scope, whoever they are for.
    let bobs = user(store, "bob").await;
    let now = time::OffsetDateTime::now_utc();
    assert!(
        store
            .grant_tenant(&b, bobs.user_id, None, now)
            .await
            .unwrap()
    );
    assert_eq!(store.tenant_grants(&b).await.unwrap().len(), 2);

    let every_grant = "SELECT tenant_id || ' ' || user_id::text FROM tenant_grants ORDER BY 1";
    let seen = db.query_in_tenant_scope(&a, every_grant).await.unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].starts_with("aa "), "{seen:?}");
    let by_b = format!(
        "SELECT tenant_id FROM tenant_grants WHERE tenant_id = 'bb' OR user_id = '{}'",
        bobs.user_id
    );
    assert_eq!(
        db.query_in_tenant_scope(&a, &by_b).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        db.query_in_tenant_scope(&b, every_grant)
            .await
            .unwrap()
            .len(),
        2
    );
    // Grants are the platform's to write.
    let err = db
        .query_in_tenant_scope(
            &a,
            &format!(
                "INSERT INTO tenant_grants (tenant_id, user_id, granted_at) \
                 VALUES ('aa', '{}', now()) RETURNING tenant_id",
                bobs.user_id
            ),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
}

#[tokio::test]
async fn a_tenant_scope_sees_only_its_rows_in_every_tenant_table() {
    let db = TestDb::create().await;
    let (a, b) = two_tenants_with_rows(&db).await;
    // The test connects as a superuser, whom row-level security would not
    // bind: the scope runs as csp_tenant.
    assert_eq!(
        db.query_in_tenant_scope(&a, "SELECT current_user::text")
            .await
            .unwrap(),
        ["csp_tenant"]
    );
    for table in TENANT_TABLES {
        let sql = format!("SELECT tenant_id FROM {table}");
        assert_eq!(
            db.query_in_tenant_scope(&a, &sql).await.unwrap(),
            ["aa"],
            "{table}"
        );
        assert_eq!(
            db.query_in_tenant_scope(&b, &sql).await.unwrap(),
            ["bb"],
            "{table}"
        );
        // A scope of a tenant that does not exist sees nothing.
        let none = TenantId::parse("zz").unwrap();
        assert_eq!(
            db.query_in_tenant_scope(&none, &sql).await.unwrap(),
            Vec::<String>::new()
        );
    }
    // Updates and deletes cannot reach another tenant's rows either.
    for table in ["ticket_history", "kb_articles", "system_inventory"] {
        let sql = format!("UPDATE {table} SET tenant_id = tenant_id RETURNING tenant_id");
        assert_eq!(
            db.query_in_tenant_scope(&a, &sql).await.unwrap(),
            ["aa"],
            "{table}"
        );
    }
}

#[tokio::test]
async fn a_tenant_scope_cannot_write_another_tenants_rows() {
    let db = TestDb::create().await;
    let (a, _) = two_tenants_with_rows(&db).await;
    let inserts = [
        "INSERT INTO ticket_history (tenant_id, ticket_id, description, resolution, \
         resolved_date, source, ingested_at) \
         VALUES ('bb', '99', 'x', 'y', now(), 'bulk_import', now()) RETURNING tenant_id",
        "INSERT INTO kb_articles (tenant_id, url, title, summary, body, updated_at) \
         VALUES ('bb', 'https://kb.example/99', 't', 's', 'b', now()) RETURNING tenant_id",
        "INSERT INTO system_inventory (tenant_id, ip, hostname, role, client, location, updated_at) \
         VALUES ('bb', '10.9.9.9', 'h', 'r', 'c', 'l', now()) RETURNING tenant_id",
        // Moving one's own row to another tenant fails the WITH CHECK.
        "UPDATE ticket_history SET tenant_id = 'bb', ticket_id = '98' RETURNING tenant_id",
    ];
    for sql in inserts {
        let err = db.query_in_tenant_scope(&a, sql).await.unwrap_err();
        assert!(
            err.to_string().contains("row-level security"),
            "{sql}: {err}"
        );
    }
    // The scope has no write access to what only the platform writes.
    let err = db
        .query_in_tenant_scope(
            &a,
            "UPDATE tenant_configs SET name = 'x' RETURNING tenant_id",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
}

#[tokio::test]
async fn search_functions_answer_only_for_the_scoped_tenant() {
    let db = TestDb::create().await;
    let (a, b) = two_tenants_with_rows(&db).await;
    for (function, column) in [
        ("csp_similar_tickets", "ticket_id"),
        ("csp_search_kb", "title"),
    ] {
        let asking =
            |tenant: &str| format!("SELECT {column} FROM {function}('{tenant}', 'disk', 5)");
        assert_eq!(
            db.query_in_tenant_scope(&a, &asking("aa"))
                .await
                .unwrap()
                .len(),
            1,
            "{function}"
        );
        // Another tenant's id, passed from a's scope: nothing.
        assert_eq!(
            db.query_in_tenant_scope(&a, &asking("bb")).await.unwrap(),
            Vec::<String>::new(),
            "{function}"
        );
        assert_eq!(
            db.query_in_tenant_scope(&b, &asking("bb"))
                .await
                .unwrap()
                .len(),
            1
        );
        // Outside any tenant scope (the platform's connection): nothing.
        let raw = sqlx::PgPool::connect(db.url()).await.unwrap();
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(asking("aa")))
            .fetch_all(&raw)
            .await
            .unwrap();
        assert_eq!(rows, Vec::<String>::new());
        raw.close().await;
    }
}

/// In production csp connects as a non-superuser that owns its tables:
/// FORCE subjects it to row-level security, its platform policy lets it see
/// every tenant, and it may still enter a tenant's scope.
#[tokio::test]
async fn a_non_superuser_owner_works_platform_wide_and_in_tenant_scopes() {
    use sqlx::{AssertSqlSafe, Connection, PgConnection};
    let server = csp_store::test_support::server_url();
    let mut admin = PgConnection::connect(&server).await.unwrap();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (role, name) = (format!("csp_owner_{suffix}"), format!("csp_owned_{suffix}"));
    // CREATEROLE: to grant itself csp_tenant (and create it on a new
    // cluster).
    for sql in [
        format!("CREATE ROLE {role} LOGIN CREATEROLE"),
        format!("CREATE DATABASE {name} OWNER {role}"),
    ] {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let mut url = url::Url::parse(&server).unwrap();
    url.set_path(&name);
    url.set_username(&role).unwrap();
    url.set_password(None).unwrap();
    let outcome = std::panic::AssertUnwindSafe(async {
        let store = PgStore::connect(url.as_str()).await.unwrap();
        let rows: (bool, bool) = sqlx::query_as(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
        )
        .fetch_one(&sqlx::PgPool::connect(url.as_str()).await.unwrap())
        .await
        .unwrap();
        assert_eq!(rows, (false, false));
        let a = TenantId::parse("aa").unwrap();
        let b = TenantId::parse("bb").unwrap();
        for t in [&a, &b] {
            store
                .create_tenant(NewTenant {
                    tenant_id: t.clone(),
                    name: t.to_string(),
                    tool_type: "servicedesk_plus".to_owned(),
                    settings: serde_json::json!({}),
                    preferences: serde_json::json!({}),
                    monthly_budget_micros: None,
                    dedicated_queue: false,
                    secrets: vec![],
                })
                .await
                .unwrap();
            let ticket = HistoryTicket {
                ticket_id: "1".to_owned(),
                description: format!("Disk full {t}"),
                resolution: "Cleaned".to_owned(),
                resolved_date: time::OffsetDateTime::now_utc(),
                tags: vec![],
            };
            store
                .upsert_ticket_history(
                    t,
                    &[ticket],
                    HistorySource::BulkImport,
                    time::OffsetDateTime::now_utc(),
                )
                .await
                .unwrap();
        }
        assert_eq!(store.list_tenants().await.unwrap().len(), 2);
        let found = store.similar_tickets(&a, "disk", 5).await.unwrap();
        assert_eq!(found.len(), 1);
        assert!(found[0].description.ends_with("aa"));
        assert_eq!(store.count_ticket_history(&b).await.unwrap(), 1);
        store.close().await;
    });
    let outcome = futures::FutureExt::catch_unwind(outcome).await;
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("DROP ROLE IF EXISTS {role}"),
    ] {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
