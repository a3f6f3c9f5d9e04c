//! Behaviour every [`Store`] adapter must share. Each case gets a fresh,
//! empty store; `store_suite!` turns the list below into one test per case
//! for an adapter, so an adapter cannot skip a case.

use crate::helpers::{message, next_millisecond, session, user};
use csp_domain::{Role, SessionId, UserId};
use csp_store::{Error, NewMessage, NewSession, NewUser, SessionRecord, Store};
use serde_json::json;
use time::UtcOffset;
use time::macros::datetime;

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
}

pub(crate) async fn create_user_and_look_up(store: &dyn Store) {
    assert_eq!(store.count_users().await.unwrap(), 0);
    let created = store
        .create_user(NewUser {
            username: "Alice".to_owned(),
            password_hash: "$argon2id$hash".to_owned(),
            role: Role::Admin,
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
