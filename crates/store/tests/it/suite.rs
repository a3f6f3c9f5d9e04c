//! Behaviour every [`Store`] adapter must share. Each case gets a fresh,
//! empty store; `store_suite!` turns the list below into one test per case
//! for an adapter, so an adapter cannot skip a case.

use crate::helpers::{Dialect, Fixture, message, next_millisecond, session, user};
use csp_domain::{Role, SessionId, UserId};
use csp_store::{
    AUDIT_GENESIS_HASH, Admission, AuditQuery, AuditRecord, BrokenLink, Error, NewAuditEntry,
    NewMessage, NewSession, NewUser, Reservation, SessionRecord, Settled, Spend, Store, UserRecord,
    UserUpdate, Verification, audit_hash, verify_audit_chain,
};
use csp_store::{Owner, OwnerKind, PluginState, SecretChange, StoredSecret};
use futures::future::join_all;

mod feedback;
mod grants;
mod operations;
mod stats;
mod throughput;
mod tickets;
pub(crate) use feedback::*;
pub(crate) use grants::*;
pub(crate) use operations::*;
use serde_json::json;
pub(crate) use stats::*;
use std::collections::BTreeSet;
use std::time::Duration;
pub(crate) use throughput::*;
pub(crate) use tickets::*;
use time::macros::datetime;
use time::{OffsetDateTime, UtcOffset};

/// Expands to one `#[tokio::test]` per case, each on the store of a fresh
/// `$fixture` (an expression yielding a future of a `helpers::Fixture`).
macro_rules! store_suite {
    ($fixture:expr) => {
        store_suite!(@cases $fixture;
            create_user_and_look_up,
            username_is_unique_ignoring_case,
            login_time_round_trips_to_the_millisecond,
            record_login_of_unknown_user_is_not_found,
            create_session_and_read_back,
            session_requires_an_existing_user,
            duplicate_session_id_conflicts,
            set_session_status,
            sessions_of_lists_most_recently_active_first,
            all_sessions_spans_users_newest_first_up_to_the_limit,
            append_is_idempotent,
            messages_come_in_seq_order_with_watermark,
            concurrent_appends_are_counted_once_each,
            message_body_round_trips,
            appending_to_unknown_session_is_not_found,
            seq_beyond_i64_is_invalid,
            cost_and_title,
            updates_of_unknown_session_are_not_found,
            ping_answers,
            new_session_is_resumable_and_never_resumed,
            set_session_state_writes_status_resumability_and_reason,
            record_resume_counts_and_reopens,
            set_agent_session_replaces_the_cli_session,
            create_user_with_cap_and_list_oldest_first,
            update_user_changes_each_field,
            reserve_admits_below_the_cap_and_refuses_at_it,
            concurrent_reserves_never_overrun_the_cap,
            expired_reservations_do_not_count,
            settle_moves_reserved_to_spent_once,
            mark_warned_is_true_once,
            mark_warned_is_true_once_under_concurrency,
            a_new_month_starts_at_zero,
            budget_input_is_checked,
            append_audit_is_idempotent_and_round_trips,
            audit_page_filters_and_pages_without_gaps,
            audit_chain_links_and_verifies,
            concurrent_audit_appends_keep_one_chain,
            plugin_state_round_trips,
            set_plugin_active_upserts_and_keeps_config,
            save_plugin_config_replaces_config_and_applies_secret_changes,
            a_secret_in_the_plain_config_rolls_the_whole_save_back,
            reencrypt_counts_rewrites_and_a_second_run_rewrites_nothing,
            reencrypt_rolls_everything_back_when_f_fails,
            concurrent_saves_of_one_plugin_do_not_mix,
            secrets_are_put_read_and_deleted_per_owner,
            owners_with_the_same_key_name_are_isolated,
            reencrypt_covers_every_owner_kind_all_or_nothing,
            create_tenant_with_its_secrets_and_conflict_on_a_taken_id,
            update_tenant_changes_fields_and_secrets_together,
            tenant_spend_adds_up_per_month,
            tenant_secrets_are_reencrypted_with_every_owner,
            record_enhancement_is_idempotent_per_tenant_and_delivery,
            attempts_start_and_finish_once_and_final_jobs_stay_final,
            a_processing_job_is_held_until_its_lease_ends,
            the_sweeper_finds_unpublished_and_lost_jobs_oldest_first,
            mark_queued_many_marks_known_jobs_and_ignores_unknown_ones,
            enhancements_page_filters_by_tenant_status_time_and_text,
            enhancement_counts_and_the_pause_flag,
            ticket_history_upserts_by_tenant_and_ticket,
            similar_tickets_rank_any_word_and_read_no_syntax,
            kb_articles_upsert_by_url_and_rank_the_title_first,
            inventory_upserts_by_ip_and_answers_in_the_order_asked,
            tenant_a_never_reads_tenant_b,
            sessions_with_and_without_a_tenant_read_back_alike,
            session_with_an_unknown_tenant_is_not_found,
            grant_tenant_is_new_once_and_listed,
            revoke_tenant_is_true_once,
            grants_of_unknown_tenants_and_users_are_not_found,
            a_soft_deleted_tenant_is_no_longer_granted,
            a_vote_is_recorded_on_its_job_and_the_latest_one_stands,
            the_summary_counts_standing_votes_per_tenant_in_the_period,
            clearing_the_queue_fails_every_pending_job_and_only_those,
            a_guarded_end_leaves_a_job_queued_again_since,
            only_a_failed_job_is_retried_and_it_keeps_its_attempts,
            audit_page_filters_by_action,
            enhancement_stats_count_the_period_and_take_its_95th_percentile,
            a_workers_throughput_counts_the_jobs_it_ended_per_step,
            enhancement_steps_count_each_step_and_the_queue_at_its_end,
        );
        store_suite!(@fixture_cases $fixture;
            tampered_audit_row_is_found,
            audit_log_rejects_update_and_delete,
            enhancements_page_is_stable_and_complete_over_ties,
            similar_tickets_of_a_large_history_search_the_rare_words,
            the_export_pages_by_keyset_through_every_matching_job,
        );
    };
    (@cases $fixture:expr; $($case:ident),+ $(,)?) => {$(
        #[tokio::test]
        async fn $case() {
            use $crate::helpers::Fixture as _;
            let fixture = $fixture.await;
            $crate::suite::$case(fixture.store()).await;
        }
    )+};
    // Cases that also need the database itself, past the store's API.
    (@fixture_cases $fixture:expr; $($case:ident),+ $(,)?) => {$(
        #[tokio::test]
        async fn $case() {
            let fixture = $fixture.await;
            $crate::suite::$case(&fixture).await;
        }
    )+};
}

pub(crate) async fn create_user_and_look_up(store: &dyn Store) {
    assert_eq!(store.count_users().await.unwrap(), 0);
    let created = store
        .create_user(NewUser {
            username: "Alice".to_owned(),
            password_hash: "$argon2id$hash".to_owned(),
            role: Role::Admin,
            monthly_cost_cap_micros: None,
        })
        .await
        .unwrap();
    assert_eq!(created.username, "Alice");
    assert_eq!(created.password_hash, "$argon2id$hash");
    assert_eq!(created.role, Role::Admin);
    assert!(created.is_active);
    assert_eq!(created.last_login_at, None);
    assert_eq!(created.created_at.nanosecond() % 1_000_000, 0);

    assert_eq!(
        store.user_by_id(created.user_id).await.unwrap(),
        Some(created.clone())
    );
    for spelling in ["Alice", "alice", "ALICE"] {
        assert_eq!(
            store.user_by_name(spelling).await.unwrap(),
            Some(created.clone()),
            "{spelling}"
        );
    }
    assert_eq!(store.user_by_name("bob").await.unwrap(), None);
    assert_eq!(store.user_by_id(UserId::new()).await.unwrap(), None);
    user(store, "bob").await;
    assert_eq!(store.count_users().await.unwrap(), 2);
}

pub(crate) async fn username_is_unique_ignoring_case(store: &dyn Store) {
    user(store, "Émile").await;
    for taken in ["Émile", "émile", "ÉMILE"] {
        let err = store
            .create_user(NewUser {
                username: taken.to_owned(),
                password_hash: "h".to_owned(),
                role: Role::User,
                monthly_cost_cap_micros: None,
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{taken}: {err:?}");
    }
    assert_eq!(store.count_users().await.unwrap(), 1);
    assert_eq!(
        store.user_by_name("ÉMILE").await.unwrap().unwrap().username,
        "Émile"
    );
}

pub(crate) async fn login_time_round_trips_to_the_millisecond(store: &dyn Store) {
    let alice = user(store, "alice").await;
    store
        .record_login(
            alice.user_id,
            datetime!(2025-03-04 05:06:07.123_456_789 +02:00),
        )
        .await
        .unwrap();
    let stored = store.user_by_id(alice.user_id).await.unwrap().unwrap();
    let at = stored.last_login_at.unwrap();
    assert_eq!(at, datetime!(2025-03-04 03:06:07.123 UTC));
    assert_eq!(at.offset(), UtcOffset::UTC);
    assert_eq!(stored.created_at, alice.created_at);
}

pub(crate) async fn record_login_of_unknown_user_is_not_found(store: &dyn Store) {
    let err = store
        .record_login(UserId::new(), datetime!(2025-01-01 0:00 UTC))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
}

pub(crate) async fn create_session_and_read_back(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let id = SessionId::new();
    let created = store
        .create_session(NewSession {
            session_id: id,
            user_id: alice.user_id,
            status: "starting".to_owned(),
            tenant_id: None,
        })
        .await
        .unwrap();
    assert_eq!(created.session_id, id);
    assert_eq!(created.user_id, alice.user_id);
    assert_eq!(created.status, "starting");
    assert_eq!(created.created_at, created.last_active_at);
    assert_eq!(
        (
            created.message_count,
            created.last_seq,
            created.total_cost_usd
        ),
        (0, 0, 0.0)
    );
    assert_eq!(created.title, None);
    assert_eq!(created.tenant_id, None);
    assert_eq!(store.session(id).await.unwrap(), Some(created));
    assert_eq!(store.session(SessionId::new()).await.unwrap(), None);
    assert_eq!(store.messages(id).await.unwrap(), (vec![], 0));
}

pub(crate) async fn session_requires_an_existing_user(store: &dyn Store) {
    let err = store
        .create_session(NewSession {
            session_id: SessionId::new(),
            user_id: UserId::new(),
            status: "starting".to_owned(),
            tenant_id: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
}

pub(crate) async fn duplicate_session_id_conflicts(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let first = session(store, alice.user_id).await;
    let err = store
        .create_session(NewSession {
            session_id: first.session_id,
            user_id: bob.user_id,
            status: "starting".to_owned(),
            tenant_id: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    let kept = store.session(first.session_id).await.unwrap().unwrap();
    assert_eq!(kept.user_id, alice.user_id);
}

pub(crate) async fn set_session_status(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = session(store, alice.user_id).await;
    store
        .set_session_status(s.session_id, "ended")
        .await
        .unwrap();
    let stored = store.session(s.session_id).await.unwrap().unwrap();
    assert_eq!(stored.status, "ended");
    // Changing the status is not activity.
    assert_eq!(stored.last_active_at, s.last_active_at);
}

pub(crate) async fn all_sessions_spans_users_newest_first_up_to_the_limit(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let a = session(store, alice.user_id).await;
    next_millisecond().await;
    let b = session(store, bob.user_id).await;
    next_millisecond().await;
    let c = session(store, alice.user_id).await;
    let ids: Vec<_> = store
        .all_sessions(10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    assert_eq!(ids, [c.session_id, b.session_id, a.session_id]);
    assert_eq!(store.all_sessions(2).await.unwrap().len(), 2);
}

pub(crate) async fn sessions_of_lists_most_recently_active_first(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let first = session(store, alice.user_id).await;
    next_millisecond().await;
    let second = session(store, alice.user_id).await;
    next_millisecond().await;
    let third = session(store, alice.user_id).await;
    session(store, bob.user_id).await;

    let ids = |list: Vec<csp_store::SessionRecord>| {
        list.into_iter().map(|s| s.session_id).collect::<Vec<_>>()
    };
    let listed = ids(store.sessions_of(alice.user_id).await.unwrap());
    assert_eq!(
        listed,
        [third.session_id, second.session_id, first.session_id]
    );

    next_millisecond().await;
    store
        .append_message(message(first.session_id, 1, "hello again"))
        .await
        .unwrap();
    let listed = ids(store.sessions_of(alice.user_id).await.unwrap());
    assert_eq!(
        listed,
        [first.session_id, third.session_id, second.session_id]
    );
    let touched = store.session(first.session_id).await.unwrap().unwrap();
    assert!(touched.last_active_at > first.last_active_at);

    assert_eq!(store.sessions_of(UserId::new()).await.unwrap(), vec![]);
}

pub(crate) async fn append_is_idempotent(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = session(store, alice.user_id).await;
    store
        .append_message(message(s.session_id, 1, "one"))
        .await
        .unwrap();
    store
        .append_message(message(s.session_id, 2, "two"))
        .await
        .unwrap();
    let before = store.session(s.session_id).await.unwrap().unwrap();
    let (messages_before, _) = store.messages(s.session_id).await.unwrap();

    next_millisecond().await;
    // A retry, even one whose body differs, changes nothing.
    store
        .append_message(message(s.session_id, 1, "one, retried"))
        .await
        .unwrap();
    store
        .append_message(message(s.session_id, 2, "two"))
        .await
        .unwrap();

    let after = store.session(s.session_id).await.unwrap().unwrap();
    assert_eq!(after, before);
    assert_eq!((after.message_count, after.last_seq), (2, 2));
    let (messages, watermark) = store.messages(s.session_id).await.unwrap();
    assert_eq!(messages, messages_before);
    assert_eq!(watermark, 2);
    assert_eq!(messages[0].body, json!({ "text": "one" }));
}

pub(crate) async fn messages_come_in_seq_order_with_watermark(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = session(store, alice.user_id).await;
    let other = session(store, alice.user_id).await;
    store
        .append_message(message(other.session_id, 9, "elsewhere"))
        .await
        .unwrap();

    store
        .append_message(message(s.session_id, 3, "three"))
        .await
        .unwrap();
    // A late, lower seq is stored but does not move the watermark back.
    store
        .append_message(message(s.session_id, 1, "one"))
        .await
        .unwrap();
    let (_, watermark) = store.messages(s.session_id).await.unwrap();
    assert_eq!(watermark, 3);
    store
        .append_message(message(s.session_id, 2, "two"))
        .await
        .unwrap();

    let (messages, watermark) = store.messages(s.session_id).await.unwrap();
    assert_eq!(watermark, 3);
    let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(messages.iter().all(|m| m.session_id == s.session_id));
    assert_eq!(messages[1].body, json!({ "text": "two" }));
    let stored = store.session(s.session_id).await.unwrap().unwrap();
    assert_eq!((stored.message_count, stored.last_seq), (3, 3));
}

pub(crate) async fn concurrent_appends_are_counted_once_each(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = session(store, alice.user_id).await;
    let append = |seq| store.append_message(message(s.session_id, seq, "x"));
    let results = tokio::join!(
        append(1),
        append(1),
        append(2),
        append(1),
        append(3),
        append(2)
    );
    for result in [
        results.0, results.1, results.2, results.3, results.4, results.5,
    ] {
        result.unwrap();
    }
    let (messages, watermark) = store.messages(s.session_id).await.unwrap();
    assert_eq!(
        messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(watermark, 3);
    let stored = store.session(s.session_id).await.unwrap().unwrap();
    assert_eq!(stored.message_count, 3);
}

pub(crate) async fn message_body_round_trips(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = session(store, alice.user_id).await;
    let body = json!({
        "type": "assistant",
        "content": [{ "type": "text", "text": "naïve café ✓ \"quoted\"\n" }],
        "usage": { "input_tokens": 12, "cost_usd": 0.0042, "big": 9_007_199_254_740_993_u64 },
        "empty": {},
        "none": null,
        "flags": [true, false],
    });
    store
        .append_message(NewMessage {
            session_id: s.session_id,
            seq: 7,
            kind: "assistant".to_owned(),
            body: body.clone(),
        })
        .await
        .unwrap();
    let (messages, _) = store.messages(s.session_id).await.unwrap();
    let [stored] = messages.as_slice() else {
        panic!("expected one message, got {messages:?}");
    };
    assert_eq!(stored.body, body);
    assert_eq!(stored.kind, "assistant");
    assert_eq!(stored.seq, 7);
    assert_eq!(stored.created_at.nanosecond() % 1_000_000, 0);
    assert!(stored.created_at >= s.created_at);
}

pub(crate) async fn appending_to_unknown_session_is_not_found(store: &dyn Store) {
    let err = store
        .append_message(message(SessionId::new(), 1, "hi"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    let err = store.messages(SessionId::new()).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
}

pub(crate) async fn seq_beyond_i64_is_invalid(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = session(store, alice.user_id).await;
    let err = store
        .append_message(message(s.session_id, u64::MAX, "hi"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    let max = i64::MAX as u64;
    store
        .append_message(message(s.session_id, max, "last"))
        .await
        .unwrap();
    assert_eq!(store.messages(s.session_id).await.unwrap().1, max);
}

pub(crate) async fn cost_and_title(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = session(store, alice.user_id).await;
    store.set_total_cost(s.session_id, 0.1234).await.unwrap();
    store
        .set_title(s.session_id, "Fix the flaky build")
        .await
        .unwrap();
    let stored = store.session(s.session_id).await.unwrap().unwrap();
    assert_eq!(stored.total_cost_usd, 0.1234);
    assert_eq!(stored.title.as_deref(), Some("Fix the flaky build"));

    store.set_total_cost(s.session_id, 1.0 / 3.0).await.unwrap();
    store.set_title(s.session_id, "Renamed").await.unwrap();
    let stored = store.session(s.session_id).await.unwrap().unwrap();
    assert_eq!(stored.total_cost_usd, 1.0 / 3.0);
    assert_eq!(stored.title.as_deref(), Some("Renamed"));
}

pub(crate) async fn updates_of_unknown_session_are_not_found(store: &dyn Store) {
    let missing = SessionId::new();
    let results = [
        store.set_session_status(missing, "ended").await,
        store.set_total_cost(missing, 1.0).await,
        store.set_title(missing, "t").await,
        store
            .set_session_state(missing, "ended", false, Some("idle_timeout"))
            .await,
        store.record_resume(missing).await,
        store.set_agent_session(missing, uuid::Uuid::new_v4()).await,
    ];
    for result in results {
        assert!(matches!(result, Err(Error::NotFound(_))), "{result:?}");
    }
}

pub(crate) async fn ping_answers(store: &dyn Store) {
    store.ping().await.unwrap();
}

pub(crate) async fn new_session_is_resumable_and_never_resumed(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let created = session(store, alice.user_id).await;
    assert_eq!(created.agent_session_id, None);
    assert_eq!(created.resume_count, 0);
    assert!(created.is_resumable);
    assert_eq!(created.ended_reason, None);
    assert_eq!(
        store.session(created.session_id).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(
        store.sessions_of(alice.user_id).await.unwrap(),
        vec![created]
    );
}

pub(crate) async fn set_session_state_writes_status_resumability_and_reason(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = session(store, alice.user_id).await;
    let other = session(store, alice.user_id).await;

    store
        .set_session_state(
            s.session_id,
            "ended",
            false,
            Some("resume failed: no transcript"),
        )
        .await
        .unwrap();
    let ended = store.session(s.session_id).await.unwrap().unwrap();
    assert_eq!(ended.status, "ended");
    assert!(!ended.is_resumable);
    assert_eq!(
        ended.ended_reason.as_deref(),
        Some("resume failed: no transcript")
    );
    // Ending is not activity, and touches nothing else.
    assert_eq!(
        SessionRecord {
            status: s.status.clone(),
            is_resumable: s.is_resumable,
            ended_reason: None,
            ..ended
        },
        s
    );

    store
        .set_session_state(s.session_id, "idle", true, None)
        .await
        .unwrap();
    let idle = store.session(s.session_id).await.unwrap().unwrap();
    assert_eq!(
        (idle.status.as_str(), idle.is_resumable, idle.ended_reason),
        ("idle", true, None)
    );
    assert_eq!(store.session(other.session_id).await.unwrap(), Some(other));
}

pub(crate) async fn record_resume_counts_and_reopens(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = session(store, alice.user_id).await;
    let other = session(store, alice.user_id).await;
    store
        .append_message(message(s.session_id, 1, "before the break"))
        .await
        .unwrap();
    store
        .set_session_state(s.session_id, "ended", true, Some("idle_timeout"))
        .await
        .unwrap();
    let before = store.session(s.session_id).await.unwrap().unwrap();

    next_millisecond().await;
    store.record_resume(s.session_id).await.unwrap();
    let resumed = store.session(s.session_id).await.unwrap().unwrap();
    assert_eq!(resumed.resume_count, 1);
    assert_eq!(resumed.status, "preparing");
    assert_eq!(resumed.ended_reason, None);
    assert!(resumed.is_resumable);
    assert!(resumed.last_active_at > before.last_active_at);
    // The conversation itself is untouched.
    assert_eq!(
        (resumed.message_count, resumed.last_seq, resumed.created_at),
        (1, 1, before.created_at)
    );
    // A resumed session is the most recently active.
    let listed: Vec<SessionId> = store
        .sessions_of(alice.user_id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    assert_eq!(listed, [s.session_id, other.session_id]);

    store
        .set_session_state(s.session_id, "ended", false, Some("process exited"))
        .await
        .unwrap();
    store.record_resume(s.session_id).await.unwrap();
    let again = store.session(s.session_id).await.unwrap().unwrap();
    assert_eq!(again.resume_count, 2);
    assert_eq!(
        (again.status.as_str(), again.ended_reason),
        ("preparing", None)
    );
    // Whether a resume is allowed is the caller's decision, not the count's.
    assert!(!again.is_resumable);
    assert_eq!(
        store
            .session(other.session_id)
            .await
            .unwrap()
            .unwrap()
            .resume_count,
        0
    );
}

pub(crate) async fn set_agent_session_replaces_the_cli_session(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = session(store, alice.user_id).await;
    let other = session(store, alice.user_id).await;
    let (first, second) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());

    store.set_agent_session(s.session_id, first).await.unwrap();
    let stored = store.session(s.session_id).await.unwrap().unwrap();
    assert_eq!(stored.agent_session_id, Some(first));
    assert_eq!(
        SessionRecord {
            agent_session_id: None,
            ..stored
        },
        s
    );

    store.set_agent_session(s.session_id, second).await.unwrap();
    let stored = store.session(s.session_id).await.unwrap().unwrap();
    assert_eq!(stored.agent_session_id, Some(second));
    assert_eq!(store.session(other.session_id).await.unwrap(), Some(other));
}

// Users: caps and administration.

const USD: i64 = 1_000_000;

pub(crate) async fn create_user_with_cap_and_list_oldest_first(store: &dyn Store) {
    assert_eq!(store.list_users().await.unwrap(), vec![]);
    let capped = store
        .create_user(NewUser {
            username: "Carol".to_owned(),
            password_hash: "h".to_owned(),
            role: Role::Operator,
            monthly_cost_cap_micros: Some(25 * USD),
        })
        .await
        .unwrap();
    assert_eq!(capped.monthly_cost_cap_micros, Some(25 * USD));
    assert_eq!(
        store.user_by_id(capped.user_id).await.unwrap(),
        Some(capped.clone())
    );
    next_millisecond().await;
    let uncapped = user(store, "alice").await;
    assert_eq!(uncapped.monthly_cost_cap_micros, None);
    next_millisecond().await;
    let third = user(store, "bob").await;
    assert_eq!(
        store.user_by_name("carol").await.unwrap(),
        Some(capped.clone())
    );
    // Oldest first, not by name.
    assert_eq!(
        store.list_users().await.unwrap(),
        vec![capped, uncapped, third]
    );

    let err = store
        .create_user(NewUser {
            username: "dave".to_owned(),
            password_hash: "h".to_owned(),
            role: Role::User,
            monthly_cost_cap_micros: Some(-1),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert_eq!(store.count_users().await.unwrap(), 3);
}

pub(crate) async fn update_user_changes_each_field(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;

    let unchanged = store
        .update_user(alice.user_id, UserUpdate::default())
        .await
        .unwrap();
    assert_eq!(unchanged, alice);

    let admin = store
        .update_user(
            alice.user_id,
            UserUpdate {
                role: Some(Role::Admin),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        admin,
        UserRecord {
            role: Role::Admin,
            ..alice.clone()
        }
    );

    let capped = store
        .update_user(
            alice.user_id,
            UserUpdate {
                monthly_cost_cap_micros: Some(Some(7 * USD)),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (capped.role, capped.monthly_cost_cap_micros),
        (Role::Admin, Some(7 * USD))
    );

    let deactivated = store
        .update_user(
            alice.user_id,
            UserUpdate {
                is_active: Some(false),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(!deactivated.is_active);
    assert_eq!(deactivated.monthly_cost_cap_micros, Some(7 * USD));

    // All at once, and `Some(None)` removes the cap.
    let all = store
        .update_user(
            alice.user_id,
            UserUpdate {
                role: Some(Role::User),
                monthly_cost_cap_micros: Some(None),
                is_active: Some(true),
            },
        )
        .await
        .unwrap();
    assert_eq!(all, alice);
    assert_eq!(store.user_by_id(alice.user_id).await.unwrap(), Some(all));
    assert_eq!(store.user_by_id(bob.user_id).await.unwrap(), Some(bob));

    let err = store
        .update_user(
            UserId::new(),
            UserUpdate {
                is_active: Some(false),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    let err = store
        .update_user(
            alice.user_id,
            UserUpdate {
                monthly_cost_cap_micros: Some(Some(-5)),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert_eq!(
        store
            .user_by_id(alice.user_id)
            .await
            .unwrap()
            .unwrap()
            .monthly_cost_cap_micros,
        None
    );
}

// Budgets.

const MONTH: &str = "2026-11";

fn in_a_minute() -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::from_secs(60)
}

fn reservation(user: UserId, amount_micros: i64, cap_micros: i64) -> Reservation {
    Reservation {
        id: uuid::Uuid::new_v4(),
        user_id: user,
        month: MONTH.to_owned(),
        amount_micros,
        cap_micros,
        expires_at: in_a_minute(),
    }
}

fn spend(spent_micros: i64, reserved_micros: i64) -> Spend {
    Spend {
        spent_micros,
        reserved_micros,
        warned: false,
    }
}

pub(crate) async fn reserve_admits_below_the_cap_and_refuses_at_it(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let cap = 3 * USD;
    assert_eq!(
        store.spend(alice.user_id, MONTH).await.unwrap(),
        spend(0, 0)
    );

    let first = reservation(alice.user_id, 2 * USD, cap);
    assert_eq!(
        store.reserve(first.clone()).await.unwrap(),
        Admission::Admitted(spend(0, 2 * USD))
    );
    // Below the cap, so admitted even though it ends above it: the rule
    // bounds what is set aside before a turn starts, not what it costs.
    assert_eq!(
        store
            .reserve(reservation(alice.user_id, 2 * USD, cap))
            .await
            .unwrap(),
        Admission::Admitted(spend(0, 4 * USD))
    );
    // Over the cap: refused, nothing recorded.
    assert_eq!(
        store
            .reserve(reservation(alice.user_id, 1, cap))
            .await
            .unwrap(),
        Admission::Exceeded(spend(0, 4 * USD))
    );
    // Exactly at the cap is refused too.
    assert_eq!(
        store
            .reserve(reservation(alice.user_id, 1, 4 * USD))
            .await
            .unwrap(),
        Admission::Exceeded(spend(0, 4 * USD))
    );
    assert_eq!(
        store
            .reserve(reservation(alice.user_id, 1, 4 * USD + 1))
            .await
            .unwrap(),
        Admission::Admitted(spend(0, 4 * USD + 1))
    );
    // A retried reservation is admitted again without counting twice, even
    // when the cap is reached by now.
    assert_eq!(
        store.reserve(first).await.unwrap(),
        Admission::Admitted(spend(0, 4 * USD + 1))
    );
    assert_eq!(
        store.spend(alice.user_id, MONTH).await.unwrap(),
        spend(0, 4 * USD + 1)
    );
    // Another user's month is their own.
    assert_eq!(
        store
            .reserve(reservation(bob.user_id, USD, cap))
            .await
            .unwrap(),
        Admission::Admitted(spend(0, USD))
    );
    // A zero cap admits nothing.
    let carol = user(store, "carol").await;
    assert_eq!(
        store
            .reserve(reservation(carol.user_id, 1, 0))
            .await
            .unwrap(),
        Admission::Exceeded(spend(0, 0))
    );
}

pub(crate) async fn concurrent_reserves_never_overrun_the_cap(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let outcomes =
        join_all((0..64).map(|_| store.reserve(reservation(alice.user_id, USD, 10 * USD)))).await;
    let mut admitted = 0;
    for outcome in outcomes {
        match outcome.unwrap() {
            Admission::Admitted(after) => {
                admitted += 1;
                assert!(after.reserved_micros <= 10 * USD, "{after:?}");
            }
            Admission::Exceeded(now) => assert_eq!(now, spend(0, 10 * USD)),
        }
    }
    assert_eq!(admitted, 10);
    assert_eq!(
        store.spend(alice.user_id, MONTH).await.unwrap(),
        spend(0, 10 * USD)
    );
}

pub(crate) async fn expired_reservations_do_not_count(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let cap = 2 * USD;
    // Expired already: admitted (nothing counts yet) but it sets nothing aside.
    let stale = Reservation {
        expires_at: OffsetDateTime::now_utc() - Duration::from_secs(1),
        ..reservation(alice.user_id, 5 * USD, cap)
    };
    assert_eq!(
        store.reserve(stale).await.unwrap(),
        Admission::Admitted(spend(0, 0))
    );

    let short = Reservation {
        // Long enough to still count on a busy machine for the next two calls.
        expires_at: OffsetDateTime::now_utc() + Duration::from_millis(1500),
        ..reservation(alice.user_id, 3 * USD, cap)
    };
    assert_eq!(
        store.reserve(short.clone()).await.unwrap(),
        Admission::Admitted(spend(0, 3 * USD))
    );
    assert_eq!(
        store
            .reserve(reservation(alice.user_id, USD, cap))
            .await
            .unwrap(),
        Admission::Exceeded(spend(0, 3 * USD))
    );

    let left = short.expires_at - OffsetDateTime::now_utc();
    tokio::time::sleep(left.try_into().unwrap_or_default()).await;
    next_millisecond().await;
    assert_eq!(
        store.spend(alice.user_id, MONTH).await.unwrap(),
        spend(0, 0)
    );
    assert_eq!(
        store
            .reserve(reservation(alice.user_id, USD, cap))
            .await
            .unwrap(),
        Admission::Admitted(spend(0, USD))
    );
    // That reserve cleaned the expired one away, so its turn's cost can no
    // longer be settled: nothing changes.
    let late = store
        .settle(short.id, alice.user_id, MONTH, 3 * USD)
        .await
        .unwrap();
    assert_eq!(
        late,
        Settled {
            before: spend(0, USD),
            after: spend(0, USD),
            applied: false
        }
    );
}

pub(crate) async fn settle_moves_reserved_to_spent_once(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let cap = 10 * USD;
    let a = reservation(alice.user_id, 2 * USD, cap);
    let b = reservation(alice.user_id, USD, cap);
    store.reserve(a.clone()).await.unwrap();
    store.reserve(b.clone()).await.unwrap();

    let settled = store
        .settle(a.id, alice.user_id, MONTH, 1_234_567)
        .await
        .unwrap();
    assert_eq!(
        settled,
        Settled {
            before: spend(0, 3 * USD),
            after: spend(1_234_567, USD),
            applied: true
        }
    );
    assert_eq!(
        store.spend(alice.user_id, MONTH).await.unwrap(),
        settled.after
    );

    // Settling again (a retry) changes nothing, whatever the cost.
    let again = store
        .settle(a.id, alice.user_id, MONTH, 9 * USD)
        .await
        .unwrap();
    assert_eq!(
        again,
        Settled {
            before: spend(1_234_567, USD),
            after: spend(1_234_567, USD),
            applied: false
        }
    );

    // A reservation id of another user is refused and stays reserved.
    let bob = user(store, "bob").await;
    let err = store.settle(b.id, bob.user_id, MONTH, 1).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    let err = store
        .settle(b.id, alice.user_id, "2026-12", 1)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert_eq!(
        store.spend(alice.user_id, MONTH).await.unwrap(),
        spend(1_234_567, USD)
    );

    // A turn that cost nothing still releases its reservation.
    let free = store.settle(b.id, alice.user_id, MONTH, 0).await.unwrap();
    assert_eq!(free.after, spend(1_234_567, 0));
    assert!(free.applied);

    // Nothing ever recorded for this user: zeros, not applied.
    let unknown = store
        .settle(uuid::Uuid::new_v4(), bob.user_id, MONTH, USD)
        .await
        .unwrap();
    assert_eq!(
        unknown,
        Settled {
            before: Spend::default(),
            after: Spend::default(),
            applied: false
        }
    );
    assert_eq!(
        store.spend(bob.user_id, MONTH).await.unwrap(),
        Spend::default()
    );
}

pub(crate) async fn mark_warned_is_true_once(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    assert!(store.mark_warned(alice.user_id, MONTH).await.unwrap());
    assert!(!store.mark_warned(alice.user_id, MONTH).await.unwrap());
    assert_eq!(
        store.spend(alice.user_id, MONTH).await.unwrap(),
        Spend {
            warned: true,
            ..Spend::default()
        }
    );
    // Warning keeps the money as it is, and reserving keeps the flag.
    store
        .reserve(reservation(alice.user_id, USD, 10 * USD))
        .await
        .unwrap();
    assert_eq!(
        store.spend(alice.user_id, MONTH).await.unwrap(),
        Spend {
            spent_micros: 0,
            reserved_micros: USD,
            warned: true
        }
    );
    assert!(!store.spend(bob.user_id, MONTH).await.unwrap().warned);
    assert!(!store.spend(alice.user_id, "2026-12").await.unwrap().warned);
    assert!(store.mark_warned(bob.user_id, MONTH).await.unwrap());

    let err = store.mark_warned(UserId::new(), MONTH).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
}

pub(crate) async fn mark_warned_is_true_once_under_concurrency(store: &dyn Store) {
    let alice = user(store, "alice").await;
    // A month without a row yet (the callers race to create it) and one
    // whose row exists (they race to flip the flag).
    store
        .reserve(Reservation {
            month: "2026-12".to_owned(),
            ..reservation(alice.user_id, USD, 10 * USD)
        })
        .await
        .unwrap();
    for month in [MONTH, "2026-12"] {
        let results = join_all((0..16).map(|_| store.mark_warned(alice.user_id, month))).await;
        let firsts = results
            .into_iter()
            .map(Result::unwrap)
            .filter(|set| *set)
            .count();
        assert_eq!(firsts, 1, "{month}");
        assert!(store.spend(alice.user_id, month).await.unwrap().warned);
    }
}

pub(crate) async fn a_new_month_starts_at_zero(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let cap = 5 * USD;
    let turn = reservation(alice.user_id, USD, cap);
    store.reserve(turn.clone()).await.unwrap();
    store
        .settle(turn.id, alice.user_id, MONTH, 6 * USD)
        .await
        .unwrap();
    store.mark_warned(alice.user_id, MONTH).await.unwrap();
    assert_eq!(
        store
            .reserve(reservation(alice.user_id, USD, cap))
            .await
            .unwrap(),
        Admission::Exceeded(Spend {
            spent_micros: 6 * USD,
            reserved_micros: 0,
            warned: true
        })
    );

    assert_eq!(
        store.spend(alice.user_id, "2026-12").await.unwrap(),
        Spend::default()
    );
    let december = Reservation {
        month: "2026-12".to_owned(),
        ..reservation(alice.user_id, USD, cap)
    };
    assert_eq!(
        store.reserve(december).await.unwrap(),
        Admission::Admitted(spend(0, USD))
    );
    assert_eq!(
        store
            .spend(alice.user_id, MONTH)
            .await
            .unwrap()
            .spent_micros,
        6 * USD
    );
}

pub(crate) async fn budget_input_is_checked(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let results = [
        store
            .reserve(Reservation {
                month: "2026-13".to_owned(),
                ..reservation(alice.user_id, USD, 10 * USD)
            })
            .await
            .map(drop),
        store
            .reserve(reservation(alice.user_id, -1, 10 * USD))
            .await
            .map(drop),
        store
            .settle(uuid::Uuid::new_v4(), alice.user_id, MONTH, -1)
            .await
            .map(drop),
        store
            .settle(uuid::Uuid::new_v4(), alice.user_id, "Nov 2026", 1)
            .await
            .map(drop),
        store.mark_warned(alice.user_id, "2026-1").await.map(drop),
        store.spend(alice.user_id, "").await.map(drop),
    ];
    for result in results {
        assert!(matches!(result, Err(Error::InvalidInput(_))), "{result:?}");
    }
    let err = store
        .reserve(reservation(UserId::new(), USD, 10 * USD))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert_eq!(
        store.spend(alice.user_id, MONTH).await.unwrap(),
        Spend::default()
    );
}

// Audit log.

fn audit_entry(user: Option<UserId>, at: OffsetDateTime, input: &str) -> NewAuditEntry {
    NewAuditEntry {
        audit_id: uuid::Uuid::new_v4(),
        timestamp: at,
        user_id: user,
        session_id: Some(SessionId::new()),
        tool_name: "Bash".to_owned(),
        sanitized_input: input.to_owned(),
        result_status: "success".to_owned(),
        execution_duration_ms: Some(42),
        cost_micros: Some(1_500),
    }
}

async fn whole_chain(store: &dyn Store) -> Vec<AuditRecord> {
    store.audit_chain(0, u32::MAX).await.unwrap()
}

pub(crate) async fn append_audit_is_idempotent_and_round_trips(store: &dyn Store) {
    let alice = UserId::new();
    let entry = audit_entry(
        Some(alice),
        datetime!(2026-11-05 12:00:00.123_456 +02:00),
        r#"{"command":"ls -la","env":"[REDACTED]"}"#,
    );
    assert!(store.append_audit(entry.clone()).await.unwrap());
    // The same id again, even with other contents, is stored once.
    let retry = NewAuditEntry {
        sanitized_input: "changed".to_owned(),
        ..entry.clone()
    };
    assert!(!store.append_audit(retry).await.unwrap());

    // An admin action: no session, no duration, no cost, a non-ASCII input.
    let admin = NewAuditEntry {
        session_id: None,
        tool_name: "admin.user.create".to_owned(),
        sanitized_input: "{\"username\":\"émile\",\"note\":\"tab\\there\"}".to_owned(),
        result_status: "denied".to_owned(),
        execution_duration_ms: None,
        cost_micros: None,
        ..audit_entry(Some(alice), datetime!(2026-11-05 10:00:01 UTC), "")
    };
    assert!(store.append_audit(admin.clone()).await.unwrap());

    let chain = whole_chain(store).await;
    let [first, second] = chain.as_slice() else {
        panic!("expected two rows, got {chain:?}");
    };
    // Stored to the millisecond, in UTC.
    let stored = NewAuditEntry {
        timestamp: datetime!(2026-11-05 10:00:00.123 UTC),
        ..entry
    };
    assert_eq!(first.entry, stored);
    assert_eq!(first.entry.timestamp.offset(), UtcOffset::UTC);
    assert_eq!(first.prev_hash, AUDIT_GENESIS_HASH);
    assert_eq!(first.hash, audit_hash(AUDIT_GENESIS_HASH, &stored));
    assert_eq!(second.entry, admin);
    assert!(second.seq > first.seq);
    assert_eq!(second.prev_hash, first.hash);
    assert_eq!(second.hash, audit_hash(&first.hash, &admin));

    let err = store
        .append_audit(NewAuditEntry {
            result_status: "ok".to_owned(),
            ..audit_entry(None, datetime!(2026-11-05 10:00 UTC), "")
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert_eq!(whole_chain(store).await.len(), 2);
}

pub(crate) async fn audit_page_filters_and_pages_without_gaps(store: &dyn Store) {
    let (alice, bob) = (UserId::new(), UserId::new());
    let base = datetime!(2026-11-01 00:00 UTC);
    // Row i: second i of the month; every third row is Alice's, the rest
    // Bob's or (every seventh) nobody's.
    for i in 0..250_i64 {
        let who = if i % 3 == 0 {
            Some(alice)
        } else if i % 7 == 0 {
            None
        } else {
            Some(bob)
        };
        let at = base + Duration::from_secs(i as u64);
        assert!(
            store
                .append_audit(audit_entry(who, at, &format!("row {i}")))
                .await
                .unwrap()
        );
    }
    let row_number = |record: &AuditRecord| -> i64 {
        record.entry.sanitized_input["row ".len()..]
            .parse()
            .unwrap()
    };
    let all_seqs: Vec<i64> = whole_chain(store).await.iter().map(|r| r.seq).collect();
    assert_eq!(all_seqs.len(), 250);

    // Pages of 100 by keyset: newest first, no gaps, no duplicates.
    let mut paged = Vec::new();
    let mut pages = Vec::new();
    let mut before_seq = None;
    loop {
        let page = store
            .audit_page(&AuditQuery {
                before_seq,
                limit: 100,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        pages.push(page.len());
        let Some(last) = page.last() else { break };
        before_seq = Some(last.seq);
        paged.extend(page);
    }
    assert_eq!(pages, [100, 100, 50, 0]);
    let paged_seqs: Vec<i64> = paged.iter().map(|r| r.seq).collect();
    let mut expected = all_seqs.clone();
    expected.reverse();
    assert_eq!(paged_seqs, expected);
    assert_eq!(row_number(&paged[0]), 249);

    // One user's rows, paged.
    let mut alices = Vec::new();
    let mut before_seq = None;
    loop {
        let page = store
            .audit_page(&AuditQuery {
                user_id: Some(alice),
                before_seq,
                limit: 30,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert!(page.len() <= 30);
        let Some(last) = page.last() else { break };
        before_seq = Some(last.seq);
        alices.extend(page);
    }
    assert!(alices.iter().all(|r| r.entry.user_id == Some(alice)));
    let numbers: Vec<i64> = alices.iter().map(row_number).collect();
    let expected: Vec<i64> = (0..250).rev().filter(|i| i % 3 == 0).collect();
    assert_eq!(numbers, expected);

    // A time range: start inclusive, end exclusive.
    let in_range = store
        .audit_page(&AuditQuery {
            start: Some(base + Duration::from_secs(50)),
            end: Some(base + Duration::from_secs(100)),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let numbers: Vec<i64> = in_range.iter().map(row_number).collect();
    assert_eq!(numbers, (50..100).rev().collect::<Vec<_>>());

    // Everything together, one small page.
    let combined = store
        .audit_page(&AuditQuery {
            user_id: Some(bob),
            start: Some(base + Duration::from_secs(10)),
            end: Some(base + Duration::from_secs(200)),
            before_seq: Some(paged_seqs[150]),
            limit: 4,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let numbers: Vec<i64> = combined.iter().map(row_number).collect();
    // paged_seqs[150] is row 99; Bob's rows below it, newest first.
    assert_eq!(numbers, [97, 95, 94, 92]);

    assert_eq!(
        store
            .audit_page(&AuditQuery {
                user_id: Some(UserId::new()),
                limit: 100,
                ..AuditQuery::default()
            })
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        store.audit_page(&AuditQuery::default()).await.unwrap(),
        vec![]
    );
}

pub(crate) async fn audit_chain_links_and_verifies(store: &dyn Store) {
    assert_eq!(
        verify_audit_chain(store).await.unwrap(),
        Verification {
            checked: 0,
            first_broken: None
        }
    );
    let base = datetime!(2026-11-01 00:00 UTC);
    for i in 0..5_u64 {
        let entry = audit_entry(None, base + Duration::from_secs(i), &format!("{i}"));
        store.append_audit(entry).await.unwrap();
    }
    let chain = whole_chain(store).await;
    assert_eq!(chain.len(), 5);
    assert_eq!(chain[0].prev_hash, AUDIT_GENESIS_HASH);
    for pair in chain.windows(2) {
        assert!(pair[1].seq > pair[0].seq);
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    for record in &chain {
        assert_eq!(record.hash, audit_hash(&record.prev_hash, &record.entry));
    }

    // In pages after a seq.
    assert_eq!(store.audit_chain(0, 2).await.unwrap(), chain[..2]);
    assert_eq!(
        store.audit_chain(chain[1].seq, 100).await.unwrap(),
        chain[2..]
    );
    assert_eq!(store.audit_chain(chain[4].seq, 100).await.unwrap(), vec![]);
    assert_eq!(store.audit_chain(0, 0).await.unwrap(), vec![]);

    assert_eq!(
        verify_audit_chain(store).await.unwrap(),
        Verification {
            checked: 5,
            first_broken: None
        }
    );
}

pub(crate) async fn concurrent_audit_appends_keep_one_chain(store: &dyn Store) {
    let entries: Vec<NewAuditEntry> = (0..24)
        .map(|i| audit_entry(None, OffsetDateTime::now_utc(), &format!("{i}")))
        .collect();
    // Each entry twice, all at once: every entry once, in one linear chain.
    let appends = entries
        .iter()
        .chain(&entries)
        .map(|e| store.append_audit(e.clone()));
    let inserted = join_all(appends)
        .await
        .into_iter()
        .map(Result::unwrap)
        .filter(|inserted| *inserted)
        .count();
    assert_eq!(inserted, 24);
    let chain = whole_chain(store).await;
    let ids: BTreeSet<uuid::Uuid> = chain.iter().map(|r| r.entry.audit_id).collect();
    assert_eq!(ids, entries.iter().map(|e| e.audit_id).collect());
    assert_eq!(
        verify_audit_chain(store).await.unwrap(),
        Verification {
            checked: 24,
            first_broken: None
        }
    );
}

// Cases on the database itself: the append-only trigger, and what
// verification finds when something got past it.

/// Statements that switch the append-only trigger off for an UPDATE, as
/// someone with the table owner's rights could.
fn without_append_only_trigger(dialect: Dialect, statement: &str) -> String {
    match dialect {
        Dialect::Postgres => format!(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only; {statement}; \
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;"
        ),
        Dialect::Sqlite => format!("DROP TRIGGER audit_log_no_update; {statement};"),
    }
}

pub(crate) async fn tampered_audit_row_is_found(fixture: &impl Fixture) {
    let store = fixture.store();
    let base = datetime!(2026-11-01 00:00 UTC);
    for i in 0..5_u64 {
        let entry = audit_entry(None, base + Duration::from_secs(i), "rm -rf build");
        store.append_audit(entry).await.unwrap();
    }
    let chain = whole_chain(store).await;
    let target = &chain[2];

    let tamper = format!(
        "UPDATE audit_log SET sanitized_input = 'ls' WHERE seq = {}",
        target.seq
    );
    fixture
        .execute_raw(&without_append_only_trigger(fixture.dialect(), &tamper))
        .await
        .unwrap();
    assert_eq!(whole_chain(store).await[2].entry.sanitized_input, "ls");

    let verification = verify_audit_chain(store).await.unwrap();
    assert_eq!(verification.checked, 3);
    let Some(BrokenLink {
        seq,
        audit_id,
        reason,
    }) = verification.first_broken
    else {
        panic!("tampering went unnoticed");
    };
    assert_eq!((seq, audit_id), (target.seq, target.entry.audit_id));
    assert!(reason.contains("hash does not match"), "{reason}");

    // Rewriting the row's hash to match hides it from that row, not from the
    // next one, which still names the old hash.
    let forged = audit_hash(
        &target.prev_hash,
        &NewAuditEntry {
            sanitized_input: "ls".to_owned(),
            ..target.entry.clone()
        },
    );
    let rehash = format!(
        "UPDATE audit_log SET hash = '{forged}' WHERE seq = {}",
        target.seq
    );
    let rehash = match fixture.dialect() {
        // The SQLite trigger is gone already.
        Dialect::Sqlite => rehash,
        Dialect::Postgres => without_append_only_trigger(Dialect::Postgres, &rehash),
    };
    fixture.execute_raw(&rehash).await.unwrap();
    let verification = verify_audit_chain(store).await.unwrap();
    let broken = verification.first_broken.expect("still broken");
    assert_eq!(broken.seq, chain[3].seq);
    assert!(broken.reason.contains("prev_hash"), "{}", broken.reason);
    assert_eq!(verification.checked, 4);
}

pub(crate) async fn audit_log_rejects_update_and_delete(fixture: &impl Fixture) {
    let store = fixture.store();
    let entry = audit_entry(Some(UserId::new()), datetime!(2026-11-01 00:00 UTC), "ls");
    store.append_audit(entry).await.unwrap();
    let before = whole_chain(store).await;

    for statement in [
        "UPDATE audit_log SET sanitized_input = 'nothing to see'",
        "UPDATE audit_log SET hash = hash",
        "DELETE FROM audit_log",
    ] {
        let err = fixture.execute_raw(statement).await.unwrap_err();
        assert!(
            err.to_string().contains("audit_log is append-only"),
            "{statement}: {err}"
        );
    }
    if fixture.dialect() == Dialect::Postgres {
        let err = fixture.execute_raw("TRUNCATE audit_log").await.unwrap_err();
        assert!(
            err.to_string().contains("audit_log is append-only"),
            "{err}"
        );
    }
    assert_eq!(whole_chain(store).await, before);
    // Appending still works.
    store
        .append_audit(audit_entry(None, datetime!(2026-11-01 00:01 UTC), "pwd"))
        .await
        .unwrap();
    assert_eq!(verify_audit_chain(store).await.unwrap().checked, 2);
}

// Plugins.

fn plugin_config(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map,
        other => panic!("not a JSON object: {other}"),
    }
}

fn stored(key: &str, value: &str, version: &str) -> StoredSecret {
    StoredSecret {
        key: key.to_owned(),
        encrypted_value: value.to_owned(),
        encryption_key_version: version.to_owned(),
    }
}

/// What a rotation to key version "v2" does with a secret: rewrite it unless
/// it is under v2 already.
fn to_v2(secret: &StoredSecret) -> Result<Option<StoredSecret>, String> {
    if secret.encryption_key_version == "v2" {
        return Ok(None);
    }
    Ok(Some(StoredSecret {
        encrypted_value: format!("{}@v2", secret.encrypted_value),
        encryption_key_version: "v2".to_owned(),
        ..secret.clone()
    }))
}

pub(crate) async fn plugin_state_round_trips(store: &dyn Store) {
    assert_eq!(store.plugin_states().await.unwrap(), vec![]);
    assert_eq!(store.plugin_state("everything").await.unwrap(), None);
    let operator = UserId::new();
    let config = plugin_config(json!({
        "greeting": "hi",
        "retries": 3,
        "nested": { "list": [1, "two", null, 2.5], "flag": true },
    }));
    let saved = store
        .save_plugin_config(
            "everything",
            config.clone(),
            vec![
                SecretChange::Set(stored("z_token", "token-z", "v1")),
                SecretChange::Set(stored("api_token", "token-a", "v1")),
                SecretChange::Remove("never_set".to_owned()),
            ],
            Some(operator),
        )
        .await
        .unwrap();
    assert_eq!(saved.plugin_name, "everything");
    assert!(!saved.active, "a new plugin starts inactive");
    assert_eq!(saved.config, config);
    assert_eq!(
        saved.secrets,
        vec![
            stored("api_token", "token-a", "v1"),
            stored("z_token", "token-z", "v1"),
        ]
    );
    assert_eq!(saved.updated_by, Some(operator));
    assert_eq!(saved.updated_at.offset(), UtcOffset::UTC);
    assert_eq!(saved.updated_at.nanosecond() % 1_000_000, 0);
    assert!(
        (OffsetDateTime::now_utc() - saved.updated_at)
            .whole_seconds()
            .abs()
            < 60
    );

    assert_eq!(
        store.plugin_state("everything").await.unwrap(),
        Some(saved.clone())
    );
    assert_eq!(store.plugin_states().await.unwrap(), vec![saved]);
    assert_eq!(store.plugin_state("Everything").await.unwrap(), None);
}

pub(crate) async fn set_plugin_active_upserts_and_keeps_config(store: &dyn Store) {
    let operator = UserId::new();
    let created = store
        .set_plugin_active("slack", true, Some(operator))
        .await
        .unwrap();
    assert!(created.active);
    assert!(created.config.is_empty());
    assert!(created.secrets.is_empty());
    assert_eq!(created.updated_by, Some(operator));
    assert_eq!(
        store.plugin_state("slack").await.unwrap(),
        Some(created.clone())
    );

    let saved = store
        .save_plugin_config(
            "slack",
            plugin_config(json!({ "channel": "#ops" })),
            vec![SecretChange::Set(stored("bot_token", "t", "v1"))],
            None,
        )
        .await
        .unwrap();
    assert!(saved.active, "saving config keeps the plugin active");
    assert_eq!(saved.updated_by, None);

    next_millisecond().await;
    let deactivated = store
        .set_plugin_active("slack", false, Some(operator))
        .await
        .unwrap();
    assert!(!deactivated.active);
    assert_eq!(deactivated.config, saved.config);
    assert_eq!(deactivated.secrets, saved.secrets);
    assert_eq!(deactivated.updated_by, Some(operator));
    assert!(deactivated.updated_at > saved.updated_at);
    let again = store.set_plugin_active("slack", false, None).await.unwrap();
    assert!(!again.active);
    assert_eq!(again.secrets, saved.secrets);

    // Names are ordered by byte value on every backend, whatever the
    // database's collation.
    for name in ["ab", "a_b", "a-b", "B"] {
        store.set_plugin_active(name, false, None).await.unwrap();
    }
    let names: Vec<String> = store
        .plugin_states()
        .await
        .unwrap()
        .into_iter()
        .map(|state| state.plugin_name)
        .collect();
    assert_eq!(names, ["B", "a-b", "a_b", "ab", "slack"]);

    let err = store.set_plugin_active("", true, None).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert_eq!(store.plugin_states().await.unwrap().len(), 5);
}

pub(crate) async fn save_plugin_config_replaces_config_and_applies_secret_changes(
    store: &dyn Store,
) {
    let operator = UserId::new();
    store
        .save_plugin_config(
            "p",
            plugin_config(json!({ "a": 1, "b": 2 })),
            vec![
                SecretChange::Set(stored("keep", "k1", "v1")),
                SecretChange::Set(stored("replace", "r1", "v1")),
                SecretChange::Set(stored("drop", "d1", "v1")),
            ],
            None,
        )
        .await
        .unwrap();
    let other = store
        .save_plugin_config(
            "q",
            plugin_config(json!({ "a": "q's" })),
            vec![SecretChange::Set(stored("keep", "q1", "v1"))],
            None,
        )
        .await
        .unwrap();

    let second = store
        .save_plugin_config(
            "p",
            plugin_config(json!({ "c": 3 })),
            vec![
                SecretChange::Set(stored("replace", "r2", "v2")),
                SecretChange::Remove("drop".to_owned()),
                SecretChange::Set(stored("new", "n1", "v2")),
            ],
            Some(operator),
        )
        .await
        .unwrap();
    assert_eq!(second.config, plugin_config(json!({ "c": 3 })));
    assert_eq!(
        second.secrets,
        vec![
            stored("keep", "k1", "v1"),
            stored("new", "n1", "v2"),
            stored("replace", "r2", "v2"),
        ]
    );
    assert_eq!(second.updated_by, Some(operator));
    assert_eq!(store.plugin_state("p").await.unwrap(), Some(second));
    assert_eq!(store.plugin_state("q").await.unwrap(), Some(other));

    // Changes to one key apply in the order given.
    let removed_last = store
        .save_plugin_config(
            "p",
            serde_json::Map::new(),
            vec![
                SecretChange::Set(stored("keep", "k2", "v2")),
                SecretChange::Remove("keep".to_owned()),
            ],
            None,
        )
        .await
        .unwrap();
    let keys: Vec<&str> = removed_last
        .secrets
        .iter()
        .map(|s| s.key.as_str())
        .collect();
    assert_eq!(keys, ["new", "replace"]);
    let set_last = store
        .save_plugin_config(
            "p",
            serde_json::Map::new(),
            vec![
                SecretChange::Remove("keep".to_owned()),
                SecretChange::Set(stored("keep", "k3", "v3")),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(set_last.secrets[0], stored("keep", "k3", "v3"));

    for (name, change) in [
        ("", SecretChange::Remove("x".to_owned())),
        ("p", SecretChange::Set(stored("", "e", "v1"))),
        ("p", SecretChange::Remove(String::new())),
    ] {
        let err = store
            .save_plugin_config(name, serde_json::Map::new(), vec![change], None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    }
    assert_eq!(store.plugin_state("p").await.unwrap(), Some(set_last));
}

pub(crate) async fn a_secret_in_the_plain_config_rolls_the_whole_save_back(store: &dyn Store) {
    let before = store
        .save_plugin_config(
            "p",
            plugin_config(json!({ "greeting": "hi" })),
            vec![SecretChange::Set(stored("api_token", "tok1", "v1"))],
            None,
        )
        .await
        .unwrap();

    // Refused only after the secret changes were written (the check reads
    // the state as saved), so this shows that they are rolled back too.
    let err = store
        .save_plugin_config(
            "p",
            plugin_config(json!({ "greeting": "changed", "api_token": "plain-text-leak" })),
            vec![
                SecretChange::Set(stored("other", "o1", "v1")),
                SecretChange::Set(stored("api_token", "tok2", "v2")),
            ],
            Some(UserId::new()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("'api_token'"), "{message}");
    assert!(!message.contains("plain-text-leak"), "{message}");
    assert_eq!(store.plugin_state("p").await.unwrap(), Some(before.clone()));

    // The first save of a plugin, refused, leaves no state behind.
    let err = store
        .save_plugin_config(
            "fresh",
            plugin_config(json!({ "token": "plain" })),
            vec![SecretChange::Set(stored("token", "t1", "v1"))],
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert_eq!(store.plugin_states().await.unwrap(), vec![before]);

    // A field that stops being secret: its secret goes and its plain value
    // comes in one save.
    let after = store
        .save_plugin_config(
            "p",
            plugin_config(json!({ "api_token": "no longer secret" })),
            vec![SecretChange::Remove("api_token".to_owned())],
            None,
        )
        .await
        .unwrap();
    assert!(after.secrets.is_empty());
    assert_eq!(after.config["api_token"], "no longer secret");
}

pub(crate) async fn reencrypt_counts_rewrites_and_a_second_run_rewrites_nothing(store: &dyn Store) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    assert_eq!(store.reencrypt_secrets(&to_v2).await.unwrap(), 0);
    let a = store
        .save_plugin_config(
            "a",
            serde_json::Map::new(),
            vec![
                SecretChange::Set(stored("x", "ax", "v1")),
                SecretChange::Set(stored("y", "ay", "v2")),
            ],
            None,
        )
        .await
        .unwrap();
    let b = store
        .save_plugin_config(
            "b",
            serde_json::Map::new(),
            vec![SecretChange::Set(stored("x", "bx", "v1"))],
            None,
        )
        .await
        .unwrap();
    let c = store
        .save_plugin_config("c", plugin_config(json!({ "k": 1 })), vec![], None)
        .await
        .unwrap();

    let calls = AtomicUsize::new(0);
    let counted = |secret: &StoredSecret| -> Result<Option<StoredSecret>, String> {
        calls.fetch_add(1, Ordering::SeqCst);
        to_v2(secret)
    };
    assert_eq!(store.reencrypt_secrets(&counted).await.unwrap(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "f sees every secret");
    let states = store.plugin_states().await.unwrap();
    assert_eq!(
        states,
        vec![
            PluginState {
                secrets: vec![stored("x", "ax@v2", "v2"), stored("y", "ay", "v2")],
                ..a
            },
            PluginState {
                secrets: vec![stored("x", "bx@v2", "v2")],
                ..b
            },
            c,
        ],
        "only the secrets change, not the states' updated_at"
    );

    assert_eq!(store.reencrypt_secrets(&counted).await.unwrap(), 0);
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    assert_eq!(store.plugin_states().await.unwrap(), states);
}

pub(crate) async fn reencrypt_rolls_everything_back_when_f_fails(store: &dyn Store) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    for (name, keys) in [("a", ["k1", "k2"].as_slice()), ("b", ["k1"].as_slice())] {
        let secrets = keys
            .iter()
            .map(|key| SecretChange::Set(stored(key, &format!("{name}-{key}"), "v1")))
            .collect();
        store
            .save_plugin_config(name, serde_json::Map::new(), secrets, None)
            .await
            .unwrap();
    }
    let before = store.plugin_states().await.unwrap();

    // The first two rewrites are written inside the transaction before the
    // third call fails; neither survives.
    let calls = AtomicUsize::new(0);
    let fails_third = |secret: &StoredSecret| -> Result<Option<StoredSecret>, String> {
        if calls.fetch_add(1, Ordering::SeqCst) == 2 {
            return Err("key version v1 is not configured".to_owned());
        }
        to_v2(secret)
    };
    let err = store.reencrypt_secrets(&fails_third).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    match &err {
        Error::Aborted(message) => {
            for part in ["plugin 'b'", "'k1'", "key version v1 is not configured"] {
                assert!(message.contains(part), "{message}");
            }
        }
        other => panic!("expected Aborted, got {other:?}"),
    }
    assert_eq!(store.plugin_states().await.unwrap(), before);

    // A replacement under another key is refused the same way.
    let renames = |secret: &StoredSecret| -> Result<Option<StoredSecret>, String> {
        Ok(Some(StoredSecret {
            key: format!("{}-renamed", secret.key),
            ..secret.clone()
        }))
    };
    let err = store.reencrypt_secrets(&renames).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert_eq!(store.plugin_states().await.unwrap(), before);

    assert_eq!(store.reencrypt_secrets(&to_v2).await.unwrap(), 3);
}

/// The `who` of a state saved by `concurrent_saves_...`, after checking that
/// its secrets come from that same save (possibly re-encrypted since).
fn one_save(state: &PluginState, keys: &[&str]) -> i64 {
    let who = state.config["who"].as_i64().expect("who is a number");
    let found: Vec<&str> = state.secrets.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(found, keys, "{state:?}");
    for secret in &state.secrets {
        let (value, version) = (&secret.encrypted_value, &secret.encryption_key_version);
        let original = (format!("t{who}"), format!("v{who}"));
        let rotated = (format!("t{who}@v2"), "v2".to_owned());
        assert!(
            (value, version) == (&original.0, &original.1)
                || (value, version) == (&rotated.0, &rotated.1),
            "secret of another save mixed in: {state:?}"
        );
    }
    who
}

pub(crate) async fn concurrent_saves_of_one_plugin_do_not_mix(store: &dyn Store) {
    store
        .save_plugin_config(
            "p",
            plugin_config(json!({ "who": -1 })),
            ["a", "b", "c"]
                .iter()
                .map(|key| SecretChange::Set(stored(key, "t-1", "v-1")))
                .collect(),
            None,
        )
        .await
        .unwrap();
    // Keys deliberately out of order: rows must still be locked in key
    // order, or a save and a re-encryption could deadlock on Postgres.
    let saves = (0..6).map(|i: i64| {
        let secrets = ["c", "a", "b"]
            .iter()
            .map(|key| SecretChange::Set(stored(key, &format!("t{i}"), &format!("v{i}"))))
            .collect();
        store.save_plugin_config("p", plugin_config(json!({ "who": i })), secrets, None)
    });
    // Concurrent first saves of a plugin that has no state yet.
    let first_saves = (0..4).map(|i: i64| {
        let secret = stored("token", &format!("t{i}"), &format!("v{i}"));
        store.save_plugin_config(
            "fresh",
            plugin_config(json!({ "who": i })),
            vec![SecretChange::Set(secret)],
            None,
        )
    });
    let rotations = (0..2).map(|_| store.reencrypt_secrets(&to_v2));
    let (saved, first_saved, rotated) =
        tokio::join!(join_all(saves), join_all(first_saves), join_all(rotations));

    // Each save returns what it wrote, read inside its own transaction.
    for (i, state) in saved.into_iter().enumerate() {
        let state = state.unwrap();
        assert_eq!(one_save(&state, &["a", "b", "c"]), i as i64);
    }
    for (i, state) in first_saved.into_iter().enumerate() {
        let state = state.unwrap();
        assert_eq!(one_save(&state, &["token"]), i as i64);
    }
    for count in rotated {
        count.unwrap();
    }
    let p = store.plugin_state("p").await.unwrap().unwrap();
    assert!((0..6).contains(&one_save(&p, &["a", "b", "c"])), "{p:?}");
    let fresh = store.plugin_state("fresh").await.unwrap().unwrap();
    assert!((0..4).contains(&one_save(&fresh, &["token"])), "{fresh:?}");
}

pub(crate) async fn secrets_are_put_read_and_deleted_per_owner(store: &dyn Store) {
    let tenant = Owner::tenant("acme");
    assert_eq!(store.secrets(&tenant).await.unwrap(), vec![]);
    store
        .put_secrets(
            &tenant,
            vec![
                stored("webhook_secret", "w1", "v1"),
                stored("api_key", "a1", "v1"),
                stored("api_key", "a2", "v1"),
            ],
        )
        .await
        .unwrap();
    // By key; of two values under one key the last wins.
    assert_eq!(
        store.secrets(&tenant).await.unwrap(),
        vec![
            stored("api_key", "a2", "v1"),
            stored("webhook_secret", "w1", "v1")
        ]
    );
    // A put replaces the keys it names and leaves the others.
    store
        .put_secrets(&tenant, vec![stored("api_key", "a3", "v2")])
        .await
        .unwrap();
    assert_eq!(
        store.secrets(&tenant).await.unwrap(),
        vec![
            stored("api_key", "a3", "v2"),
            stored("webhook_secret", "w1", "v1")
        ]
    );
    assert!(store.delete_secret(&tenant, "api_key").await.unwrap());
    assert!(!store.delete_secret(&tenant, "api_key").await.unwrap());
    assert_eq!(
        store.secrets(&tenant).await.unwrap(),
        vec![stored("webhook_secret", "w1", "v1")]
    );

    // Empty ids and keys are refused, and nothing of the put is written.
    for (owner, secrets) in [
        (Owner::tenant(""), vec![stored("k", "x", "v1")]),
        (
            tenant.clone(),
            vec![stored("fine", "x", "v1"), stored("", "x", "v1")],
        ),
    ] {
        let err = store.put_secrets(&owner, secrets).await.unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    }
    assert_eq!(
        store.secrets(&tenant).await.unwrap(),
        vec![stored("webhook_secret", "w1", "v1")]
    );
}

pub(crate) async fn owners_with_the_same_key_name_are_isolated(store: &dyn Store) {
    let (plugin, tenant) = (Owner::plugin("acme"), Owner::tenant("acme"));
    let other_tenant = Owner::tenant("globex");
    store
        .save_plugin_config(
            "acme",
            serde_json::Map::new(),
            vec![SecretChange::Set(stored("api_key", "plugin-key", "v1"))],
            None,
        )
        .await
        .unwrap();
    store
        .put_secrets(&tenant, vec![stored("api_key", "tenant-key", "v1")])
        .await
        .unwrap();
    store
        .put_secrets(&other_tenant, vec![stored("api_key", "globex-key", "v1")])
        .await
        .unwrap();

    // Same id, same key name, different kinds: three separate values, and a
    // plugin's state shows its own only.
    assert_eq!(
        store.secrets(&plugin).await.unwrap(),
        vec![stored("api_key", "plugin-key", "v1")]
    );
    assert_eq!(
        store.secrets(&tenant).await.unwrap(),
        vec![stored("api_key", "tenant-key", "v1")]
    );
    let state = store.plugin_state("acme").await.unwrap().unwrap();
    assert_eq!(state.secrets, vec![stored("api_key", "plugin-key", "v1")]);

    // Deleting one owner's secret leaves the others'.
    assert!(store.delete_secret(&tenant, "api_key").await.unwrap());
    assert_eq!(store.secrets(&tenant).await.unwrap(), vec![]);
    assert_eq!(
        store.secrets(&other_tenant).await.unwrap(),
        vec![stored("api_key", "globex-key", "v1")]
    );
    let state = store.plugin_state("acme").await.unwrap().unwrap();
    assert_eq!(state.secrets, vec![stored("api_key", "plugin-key", "v1")]);

    // A plugin's secret set through the generic API is its state's secret.
    store
        .put_secrets(&plugin, vec![stored("api_key", "plugin-key-2", "v1")])
        .await
        .unwrap();
    let state = store.plugin_state("acme").await.unwrap().unwrap();
    assert_eq!(state.secrets, vec![stored("api_key", "plugin-key-2", "v1")]);
    assert_eq!(store.secrets(&tenant).await.unwrap(), vec![]);
}

pub(crate) async fn reencrypt_covers_every_owner_kind_all_or_nothing(store: &dyn Store) {
    use std::sync::Mutex;
    store
        .save_plugin_config(
            "p",
            serde_json::Map::new(),
            vec![SecretChange::Set(stored("token", "p-token", "v1"))],
            None,
        )
        .await
        .unwrap();
    let tenant = Owner::tenant("t");
    store
        .put_secrets(
            &tenant,
            vec![
                stored("api_key", "t-api", "v1"),
                stored("webhook_secret", "t-hook", "v1"),
            ],
        )
        .await
        .unwrap();
    let seen = |store_of: &Mutex<Vec<String>>| store_of.lock().unwrap().clone();

    // The tenant's second secret cannot be opened: the plugin's and the
    // tenant's first, rewritten before it, are rolled back with it.
    let calls = Mutex::new(Vec::new());
    let fails_on_hook = |secret: &StoredSecret| -> Result<Option<StoredSecret>, String> {
        calls.lock().unwrap().push(secret.encrypted_value.clone());
        if secret.key == "webhook_secret" {
            return Err("key version v1 is not configured".to_owned());
        }
        to_v2(secret)
    };
    let err = store.reencrypt_secrets(&fails_on_hook).await.unwrap_err();
    // Plugins before tenants, each owner's by key.
    assert_eq!(seen(&calls), vec!["p-token", "t-api", "t-hook"]);
    match &err {
        Error::Aborted(message) => {
            for part in ["tenant 't'", "'webhook_secret'", "is not configured"] {
                assert!(message.contains(part), "{message}");
            }
        }
        other => panic!("expected Aborted, got {other:?}"),
    }
    assert_eq!(
        store.secrets(&Owner::plugin("p")).await.unwrap(),
        vec![stored("token", "p-token", "v1")]
    );
    assert_eq!(
        store.secrets(&tenant).await.unwrap(),
        vec![
            stored("api_key", "t-api", "v1"),
            stored("webhook_secret", "t-hook", "v1")
        ]
    );

    assert_eq!(store.reencrypt_secrets(&to_v2).await.unwrap(), 3);
    assert_eq!(
        store
            .secrets(&Owner::new(OwnerKind::Plugin, "p"))
            .await
            .unwrap(),
        vec![stored("token", "p-token@v2", "v2")]
    );
    assert_eq!(
        store.secrets(&tenant).await.unwrap(),
        vec![
            stored("api_key", "t-api@v2", "v2"),
            stored("webhook_secret", "t-hook@v2", "v2")
        ]
    );
    assert_eq!(store.reencrypt_secrets(&to_v2).await.unwrap(), 0);
}
