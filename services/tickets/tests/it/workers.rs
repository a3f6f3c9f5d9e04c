//! What the Workers page asks of one worker (issue 16 item 6): its last
//! log lines, its jobs per hour over 7 days, and an admin's restart.

use crate::SHORT;
use crate::helpers::*;
use csp_cache::Cache;
use csp_domain::{
    AUDIT_TOPIC, AuditEvent, EnhancementStatus, ErrorCode, HEARTBEAT_TTL, LogLevel, TenantId,
    WorkerHeartbeat, WorkerLogLine, WorkerLogs,
};
use csp_proto::v1 as pb;
use csp_store::test_support::Backend;
use csp_store::{NewEnhancement, Outcome};
use time::OffsetDateTime;
use uuid::Uuid;

/// A worker's heartbeat written `age_secs` ago, in the shared cache.
async fn running_worker(r: &Running, age_secs: i64) -> WorkerHeartbeat {
    let now = r.now();
    let beat = WorkerHeartbeat {
        worker_id: Uuid::new_v4(),
        hostname: "worker-a".into(),
        started_at: now - time::Duration::minutes(10),
        sent_at: now - time::Duration::seconds(age_secs),
        interval_ms: 5000,
        active_jobs: 1,
        completed_jobs: 3,
        failed_jobs: 0,
        cpu_percent: 10.0,
        memory_percent: 2.0,
        jobs_per_minute: 1.0,
        draining: false,
    };
    r.shared
        .cache
        .put(
            &beat.key(),
            &serde_json::to_string(&beat).unwrap(),
            HEARTBEAT_TTL,
        )
        .await
        .unwrap();
    beat
}

fn logs_request(worker_id: &str, level: &str) -> pb::WorkerLogsRequest {
    pb::WorkerLogsRequest {
        worker_id: worker_id.to_owned(),
        level: level.to_owned(),
    }
}

fn worker(id: impl ToString) -> pb::WorkerRequest {
    pb::WorkerRequest {
        worker_id: id.to_string(),
    }
}

pub(crate) async fn a_workers_log_lines_are_read_at_least_at_the_asked_level(backend: Backend) {
    let r = start(backend).await;
    let mut c = r.client();
    let beat = running_worker(&r, 1).await;
    let id = beat.worker_id.to_string();
    // Running, but no line written yet: none.
    let none = c
        .get_worker_logs(as_(&r.operator, logs_request(&id, "")))
        .await
        .unwrap()
        .into_inner();
    assert!(none.lines.is_empty());
    assert_eq!(none.level, "debug");
    let line = |level, text: &str| WorkerLogLine {
        level,
        text: text.into(),
    };
    let logs = WorkerLogs {
        worker_id: beat.worker_id,
        lines: vec![
            line(LogLevel::Info, "INFO job started"),
            line(LogLevel::Debug, "DEBUG context gathered"),
            line(LogLevel::Warn, "WARN kb source timed out"),
            line(LogLevel::Error, "ERROR posting the note failed"),
        ],
    };
    r.shared
        .cache
        .put(
            &csp_domain::worker_logs_key(beat.worker_id),
            &serde_json::to_string(&logs).unwrap(),
            HEARTBEAT_TTL,
        )
        .await
        .unwrap();
    let texts = |answer: pb::WorkerLogLines| -> Vec<String> {
        answer.lines.into_iter().map(|l| l.text).collect()
    };
    let all = c
        .get_worker_logs(as_(&r.operator, logs_request(&id, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.lines.len(), 4);
    assert_eq!(all.lines[2].level, "warn");
    for (level, want) in [
        (
            "debug",
            vec![
                "INFO job started",
                "DEBUG context gathered",
                "WARN kb source timed out",
                "ERROR posting the note failed",
            ],
        ),
        (
            "info",
            vec![
                "INFO job started",
                "WARN kb source timed out",
                "ERROR posting the note failed",
            ],
        ),
        (
            "warn",
            vec!["WARN kb source timed out", "ERROR posting the note failed"],
        ),
        ("error", vec!["ERROR posting the note failed"]),
    ] {
        let got = c
            .get_worker_logs(as_(&r.operator, logs_request(&id, level)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.level, level);
        assert_eq!(texts(got), want, "{level}");
    }
    let e = c
        .get_worker_logs(as_(&r.operator, logs_request(&id, "trace")))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidRequest);
    assert!(e.message().contains("error, warn, info or debug"), "{e:?}");
    // An unknown worker, or no id at all: not found, saying why.
    for unknown in [Uuid::new_v4().to_string(), "worker-a".to_owned()] {
        let e = c
            .get_worker_logs(as_(&r.operator, logs_request(&unknown, "")))
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::WorkerNotFound, "{unknown}");
        assert!(e.message().contains("no heartbeat"), "{e:?}");
    }
    let e = c
        .get_worker_logs(as_(&r.user, logs_request(&id, "")))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::PermissionDenied);
}

pub(crate) async fn a_workers_throughput_is_its_jobs_per_hour_over_seven_days(backend: Backend) {
    let r = start(backend).await;
    r.create("acme").await;
    let mut c = r.client();
    let store = &r.shared.store;
    let (ours, theirs) = (Uuid::new_v4(), Uuid::new_v4());
    let now = r.now();
    let end = |worker, status, at: OffsetDateTime| {
        let store = store.clone();
        async move {
            let job_id = Uuid::new_v4();
            let job = NewEnhancement {
                job_id,
                tenant_id: TenantId::parse("acme").unwrap(),
                ticket_id: job_id.to_string(),
                delivery_key: job_id.to_string(),
                subject: "s".into(),
                description: "d".into(),
                priority: "Low".into(),
                correlation_id: "c".into(),
            };
            let outcome = Outcome {
                status: Some(status),
                worker_id: Some(worker),
                ..Outcome::default()
            };
            ended_job(&store, job, Some(outcome), at).await;
        }
    };
    end(ours, EnhancementStatus::Completed, now).await;
    end(ours, EnhancementStatus::Failed, now).await;
    end(
        ours,
        EnhancementStatus::Completed,
        now - time::Duration::days(3),
    )
    .await;
    end(
        ours,
        EnhancementStatus::Completed,
        now - time::Duration::days(8),
    )
    .await;
    end(theirs, EnhancementStatus::Completed, now).await;
    let t = c
        .get_worker_throughput(as_(&r.operator, worker(ours)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.worker_id, ours.to_string());
    assert_eq!(t.hours.len(), 168);
    let last = t.hours.last().unwrap();
    assert_eq!((last.completed, last.failed), (1, 1), "this hour: {last:?}");
    let start = |h: &pb::ThroughputHour| {
        OffsetDateTime::parse(&h.start, &time::format_description::well_known::Rfc3339).unwrap()
    };
    assert!(start(last) <= now && now - start(last) < time::Duration::hours(1));
    assert_eq!(start(&t.hours[0]), start(last) - time::Duration::hours(167));
    let total: u64 = t.hours.iter().map(|h| h.completed + h.failed).sum();
    assert_eq!(
        total, 3,
        "8 days ago is not in the week; theirs are not ours"
    );
    // Answered for a worker that is gone too (its history stays); an id
    // that is not a worker's is not found.
    let e = c
        .get_worker_throughput(as_(&r.operator, worker("worker-a")))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::WorkerNotFound);
    let e = c
        .get_worker_throughput(as_(&r.user, worker(ours)))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::PermissionDenied);
}

pub(crate) async fn an_admin_restarts_a_worker_through_a_command_it_reads_and_it_is_audited(
    backend: Backend,
) {
    let r = start(backend).await;
    let mut c = r.client();
    let beat = running_worker(&r, 1).await;
    let key = csp_domain::worker_drain_key(beat.worker_id);
    // Operators may look, not restart.
    let e = c
        .restart_worker(as_(&r.operator, worker(beat.worker_id)))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::PermissionDenied);
    assert_eq!(r.shared.cache.get(&key).await.unwrap(), None);
    let answer = c
        .restart_worker(as_(&r.admin, worker(beat.worker_id)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.worker_id, beat.worker_id.to_string());
    assert_eq!(answer.status, "active");
    let command = r.shared.cache.get(&key).await.unwrap();
    assert!(command.is_some(), "the worker's command is in the cache");
    let audited: Vec<AuditEvent> = r
        .drain(AUDIT_TOPIC, SHORT)
        .await
        .iter()
        .map(|d| serde_json::from_slice::<AuditEvent>(&d.payload).unwrap())
        .filter(|e| e.tool_name == "tickets.restart_worker")
        .collect();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0].user_id, Some(r.admin_id));
    let details: serde_json::Value = serde_json::from_str(&audited[0].sanitized_input).unwrap();
    assert_eq!(details["worker_id"], beat.worker_id.to_string());
    assert_eq!(details["hostname"], "worker-a");
    // Unknown worker: not found, nothing written.
    let unknown = Uuid::new_v4();
    let e = c
        .restart_worker(as_(&r.admin, worker(unknown)))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::WorkerNotFound);
    assert_eq!(
        r.shared
            .cache
            .get(&csp_domain::worker_drain_key(unknown))
            .await
            .unwrap(),
        None
    );
    // An unresponsive worker would never read it: refused, saying so.
    let silent = running_worker(&r, 60).await;
    let e = c
        .restart_worker(as_(&r.admin, worker(silent.worker_id)))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidRequest);
    assert!(e.message().contains("unresponsive"), "{e:?}");
}
