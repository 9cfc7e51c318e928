//! What only a shared database shows: several stores ("nodes", each with its own connection pool) on one
//! database, a transaction held open while others commit, and the schema's versioning.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kf_core::model::{
    Actor, Attachment, AttachmentId, ClientId, ConversationId, MessageBody, Seq, TenantId, Timestamp,
    VisitorId,
};
use kf_core::store::{
    AuditEntry, AuditLog, AuditQuery, ConversationLog, ConversationLogExt, EventDraft, FeedEntry,
    FeedPosition, FollowOptions, NewConversation, Upload, Uploads, follow,
};
use kf_store_postgres::{PostgresConfig, PostgresError, PostgresStore, SCHEMA_VERSION};

fn id<T: std::str::FromStr>(value: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    value.parse().expect("valid id")
}

fn new_conversation(visitor: &str, client_id: &str) -> NewConversation {
    NewConversation {
        id: ConversationId::generate(),
        tenant: id("shop"),
        visitor: id(visitor),
        group: id("support"),
        client_id: id(client_id),
        entry: None,
        fields: BTreeMap::new(),
        at: Timestamp(1),
    }
}

fn message(conversation: ConversationId, author: &Actor, client_id: &str, text: &str) -> EventDraft {
    EventDraft::message(
        conversation,
        author.clone(),
        Some(ClientId::new(client_id).expect("client id")),
        MessageBody::text(text),
        Timestamp(2),
    )
}

async fn whole_feed(store: &PostgresStore) -> Vec<FeedEntry> {
    store
        .feed_stream(FeedPosition::ZERO, 100)
        .map(|entry| entry.expect("feed read"))
        .collect()
        .await
}

/// Three nodes append to one conversation at once, each message also retried by another node (the same author
/// and client id): the log is 1..=n without gap or repeat, each message is stored once, and the feed holds every
/// event once, in seq order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_from_several_nodes_to_one_conversation_are_gapless_and_idempotent() {
    let url = common::fresh_database().await;
    let nodes = [
        Arc::new(common::open(&url).await),
        Arc::new(common::open(&url).await),
        Arc::new(common::open(&url).await),
    ];
    let conversation = nodes[0]
        .create_conversation(new_conversation("v1", "open"))
        .await
        .expect("create")
        .conversation
        .id;
    const PER_NODE: usize = 40;
    let mut tasks = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        // Each node sends its own messages, then retries the other nodes' (as a client reconnecting elsewhere).
        let node = Arc::clone(node);
        let retrying = Arc::clone(&nodes[(n + 1) % nodes.len()]);
        tasks.push(tokio::spawn(async move {
            let author = Actor::Agent(id(&format!("agent-{n}")));
            let mut seqs = Vec::new();
            for m in 0..PER_NODE {
                let key = format!("k-{n}-{m}");
                let first = node
                    .append(message(conversation, &author, &key, &key))
                    .await
                    .expect("append");
                let again = retrying
                    .append(message(conversation, &author, &key, &key))
                    .await
                    .expect("retry");
                assert!(!first.duplicate, "{key} stored once");
                assert!(again.duplicate, "{key}'s retry is a duplicate");
                assert_eq!(again.event, first.event);
                seqs.push(first.event.seq.0);
            }
            seqs
        }));
    }
    let mut seqs = HashSet::new();
    for task in tasks {
        for seq in task.await.expect("task") {
            assert!(seqs.insert(seq), "seq {seq} given twice");
        }
    }
    let total = 1 + nodes.len() * PER_NODE;
    let log = nodes[2]
        .all_events_after(conversation, Seq::ZERO)
        .await
        .expect("log");
    assert_eq!(
        log.iter().map(|event| event.seq.0).collect::<Vec<_>>(),
        (1..=total as u64).collect::<Vec<_>>(),
        "gapless"
    );
    let keys: HashSet<_> = log.iter().filter_map(|event| event.client_id.clone()).collect();
    assert_eq!(keys.len(), total, "each message once (and the open)");
    let record = nodes[1]
        .conversation(conversation)
        .await
        .expect("read")
        .expect("conversation");
    assert_eq!(record.last_seq, Seq(total as u64));
    let feed = whole_feed(&nodes[0]).await;
    assert_eq!(feed.len(), total);
    assert!(feed.windows(2).all(|pair| pair[0].position < pair[1].position));
    assert_eq!(
        feed.iter().map(|entry| entry.event.clone()).collect::<Vec<_>>(),
        log,
        "the feed in seq order"
    );
}

/// Two nodes open the same visitor's conversation with the same client id at once: one conversation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opens_racing_on_two_nodes_make_one_conversation() {
    let url = common::fresh_database().await;
    let (a, b) = (common::open(&url).await, common::open(&url).await);
    for round in 0..10 {
        let client_id = format!("open-{round}");
        let (first, second) = tokio::join!(
            a.create_conversation(new_conversation("v1", &client_id)),
            b.create_conversation(new_conversation("v1", &client_id)),
        );
        let (first, second) = (first.expect("create"), second.expect("create"));
        assert_eq!(first.conversation.id, second.conversation.id);
        assert_eq!(first.event, second.event);
        assert!(first.created ^ second.created, "exactly one created it");
    }
    let tenant: TenantId = id("shop");
    let visitor: VisitorId = id("v1");
    assert_eq!(
        a.conversations_of_visitor(&tenant, &visitor)
            .await
            .expect("list")
            .len(),
        10
    );
    assert_eq!(whole_feed(&b).await.len(), 10);
}

/// Waits until some session of the database waits for a lock.
async fn until_a_writer_waits(url: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    loop {
        let waiting: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if waiting > 0 {
            return;
        }
        // Polled: the server offers no notice of a session starting to wait.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A transaction that took a feed position and has not committed holds back every later commit, on any node:
/// a follower never passes its position before it commits, and then reads it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_never_passes_a_position_still_in_flight() {
    let url = common::fresh_database().await;
    let slow = Arc::new(common::open(&url).await);
    let fast = Arc::new(common::open(&url).await);
    let visitor = Actor::Visitor(id("v1"));
    let first = fast
        .create_conversation(new_conversation("v1", "open-1"))
        .await
        .expect("create")
        .conversation
        .id;
    let second = fast
        .create_conversation(new_conversation("v2", "open-2"))
        .await
        .expect("create")
        .conversation
        .id;
    let head = fast.feed_head().await.expect("head");
    let options = FollowOptions::default().with_poll_interval(Duration::from_millis(10));
    let mut follower = follow(fast.clone(), head, options, None);

    // The slow node's transaction takes the next position and stays open.
    let (held, open) = slow
        .append_uncommitted(message(first, &visitor, "slow", "slow"))
        .await
        .expect("append held open");
    // Another node appends to another conversation (no row lock in common) and commits.
    let other = Arc::clone(&fast);
    let mut late = tokio::spawn(async move {
        other
            .append(message(second, &Actor::Visitor(id("v2")), "fast", "fast"))
            .await
            .expect("append")
    });
    tokio::select! {
        () = until_a_writer_waits(&url) => {}
        finished = &mut late => panic!(
            "an append committed while an earlier feed position was still in flight: {finished:?}"
        ),
    }
    // Nothing past the open transaction's position is visible: not to a read, not to the follower.
    assert_eq!(fast.feed_head().await.expect("head"), head);
    assert!(fast.feed_after(head, 10).await.expect("feed").is_empty());
    assert!(
        tokio::time::timeout(Duration::from_millis(100), follower.next())
            .await
            .is_err(),
        "the follower has nothing to read while the first position is in flight"
    );
    assert!(
        !late.is_finished(),
        "the later commit waits for the earlier position"
    );

    open.commit().await.expect("commit");
    let late = late.await.expect("task");
    let read: Vec<FeedEntry> = vec![
        follower.next().await.expect("entry").expect("read"),
        follower.next().await.expect("entry").expect("read"),
    ];
    assert_eq!(read[0].event, held.event, "the slow transaction's event first");
    assert_eq!(read[1].event, late.event);
    assert_eq!(read[0].position, head.next());
    assert!(read[1].position > read[0].position);
}

/// Three nodes write to many conversations at once while a follower on a fourth reads the feed as it grows: what
/// the follower collected, position after position, is exactly the whole feed — no event skipped by a commit that
/// landed late, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_during_concurrent_writes_on_several_nodes_misses_nothing() {
    let url = common::fresh_database().await;
    let writers = [
        Arc::new(common::open(&url).await),
        Arc::new(common::open(&url).await),
        Arc::new(common::open(&url).await),
    ];
    let reader = Arc::new(common::open(&url).await);
    let mut conversations = Vec::new();
    for n in 0..6 {
        let opened = writers[n % 3]
            .create_conversation(new_conversation(&format!("v{n}"), "open"))
            .await
            .expect("create");
        conversations.push(opened.conversation.id);
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let follower = {
        let reader = Arc::clone(&reader);
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut seen: Vec<FeedEntry> = Vec::new();
            let mut position = FeedPosition::ZERO;
            loop {
                // Read the flag first: a read after it was set sees every write.
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let page = reader.feed_after(position, 7).await.expect("feed");
                if let Some(last) = page.last() {
                    position = last.position;
                }
                let caught_up = page.len() < 7;
                seen.extend(page);
                if finished && caught_up {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let mut tasks = Vec::new();
    for task in 0..12usize {
        let writer = Arc::clone(&writers[task % 3]);
        let conversations = conversations.clone();
        tasks.push(tokio::spawn(async move {
            let author = Actor::Agent(id(&format!("a{task}")));
            for m in 0..15usize {
                let c = conversations[(task + m) % conversations.len()];
                let key = format!("k-{task}-{m}");
                writer
                    .append(message(c, &author, &key, &key))
                    .await
                    .expect("append");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = follower.await.expect("follower");
    let whole = whole_feed(&reader).await;
    assert_eq!(whole.len(), 6 + 12 * 15);
    assert_eq!(
        seen, whole,
        "the follower saw the whole feed, in order, each event once"
    );
}

/// A transaction dropped without commit gives its position back unseen: the feed goes on without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolled_back_append_leaves_no_trace() {
    let store = common::fresh_store().await;
    let visitor = Actor::Visitor(id("v1"));
    let c = store
        .create_conversation(new_conversation("v1", "open"))
        .await
        .expect("create")
        .conversation
        .id;
    let (held, open) = store
        .append_uncommitted(message(c, &visitor, "gone", "gone"))
        .await
        .expect("append");
    assert_eq!(held.event.seq, Seq(2));
    drop(open);
    let kept = store
        .append(message(c, &visitor, "kept", "kept"))
        .await
        .expect("append");
    assert_eq!(kept.event.seq, Seq(2), "the seq is given again");
    let feed = whole_feed(&store).await;
    assert_eq!(feed.len(), 2);
    assert_eq!(feed[1].event, kept.event);
}

/// A second store on the same database finds its data and epoch; a database of a newer schema is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_keep_data_and_refuse_a_newer_schema() {
    let url = common::fresh_database().await;
    let first = common::open(&url).await;
    let created = first
        .create_conversation(new_conversation("v1", "open"))
        .await
        .expect("create");
    let again = common::open(&url).await;
    assert_eq!(
        again.epoch().await.expect("epoch"),
        first.epoch().await.expect("epoch")
    );
    assert_eq!(
        again.conversation(created.conversation.id).await.expect("read"),
        Some(created.conversation)
    );
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .execute("UPDATE kf_schema SET version = $1", &[&(SCHEMA_VERSION + 1)])
        .await
        .expect("bump");
    match PostgresStore::open(PostgresConfig::new(&url)).await {
        Err(PostgresError::FutureSchema { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("a newer schema must be refused: {other:?}"),
    }
}

/// A database of schema 2 (before the audit log, the statistics checkpoint and the upload records) keeps its
/// data when a store of this build opens it, and gains the new tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_2_database_keeps_its_data_and_gains_step_3() {
    let url = common::fresh_database().await;
    let first = common::open(&url).await;
    let created = first
        .create_conversation(new_conversation("v1", "open"))
        .await
        .expect("create");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    // Back to what step 2 left.
    client
        .batch_execute("DROP TABLE audit_log, stats_checkpoint, uploads; UPDATE kf_schema SET version = 2")
        .await
        .expect("downgrade");
    let again = common::open(&url).await;
    assert_eq!(
        again.conversation(created.conversation.id).await.expect("read"),
        Some(created.conversation)
    );
    let version: i64 = client
        .query_one("SELECT version FROM kf_schema", &[])
        .await
        .expect("version")
        .get(0);
    assert_eq!(version, SCHEMA_VERSION);
    let entry = AuditEntry::new(
        id("t1"),
        id("boss"),
        Timestamp(1),
        "label.put",
        "label",
        "vip",
        None,
        Some(serde_json::json!({ "name": "vip" })),
    );
    let audit_id = again.append_audit(entry).await.expect("audit");
    let page = again
        .audit_entries(&AuditQuery::new(id("t1")))
        .await
        .expect("list");
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].id, audit_id);
}

/// Finishes of one conversation's uploads racing on three nodes never take it over its byte limit together:
/// exactly as many fit as the limit allows, and the total is the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upload_finishes_racing_on_several_nodes_keep_the_conversation_limit() {
    const UPLOADS: usize = 24;
    const SIZE: u64 = 100;
    const LIMIT: u64 = 700;
    let url = common::fresh_database().await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(Arc::new(common::open(&url).await));
    }
    let conversation = ConversationId::generate();
    let owner = Actor::Visitor(id("v1"));
    let mut ids = Vec::new();
    for index in 0..UPLOADS {
        let upload_id = AttachmentId::generate();
        let upload = Upload::receiving(
            conversation,
            owner.clone(),
            Timestamp(1),
            upload_id.clone(),
            format!("file-{index}.txt"),
        );
        nodes[0].begin_upload(upload).await.expect("begin");
        ids.push(upload_id);
    }
    let finishes: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(index, upload_id)| {
            let node = Arc::clone(&nodes[index % nodes.len()]);
            let attachment = Attachment::new(upload_id.clone(), "file.txt", "text/plain", SIZE);
            tokio::spawn(async move { node.finish_upload(attachment, LIMIT).await })
        })
        .collect();
    let mut finished = 0;
    for finish in finishes {
        if finish.await.expect("join").expect("finish") {
            finished += 1;
        }
    }
    assert_eq!(finished, LIMIT / SIZE);
    assert_eq!(
        nodes[1]
            .conversation_upload_bytes(conversation)
            .await
            .expect("bytes"),
        LIMIT
    );
}

/// Bad configuration is refused before connecting.
#[tokio::test]
async fn bad_configuration_is_refused() {
    let refused = PostgresStore::open(PostgresConfig::new("host=/nowhere").with_batch_max(0)).await;
    assert!(
        matches!(refused, Err(PostgresError::InvalidConfig(_))),
        "{refused:?}"
    );
    let refused = PostgresStore::open(PostgresConfig::new("not a = valid = string")).await;
    assert!(
        matches!(refused, Err(PostgresError::InvalidUrl(_))),
        "{refused:?}"
    );
}

/// A request whose statement fails (a label with a NUL, which a PostgreSQL text cannot hold) fails alone and
/// stores nothing, however the writer batched it: the batch runs again with a transaction per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_statement_fails_only_its_own_request() {
    let store = Arc::new(common::fresh_store().await);
    let c = store
        .create_conversation(new_conversation("v1", "open"))
        .await
        .expect("create")
        .conversation
        .id;
    let agent = Actor::Agent(id("a1"));
    let mut tasks = Vec::new();
    for n in 0..20 {
        let store = Arc::clone(&store);
        let agent = agent.clone();
        tasks.push(tokio::spawn(async move {
            let draft = if n == 10 {
                EventDraft::new(
                    c,
                    agent,
                    kf_core::model::EventKind::Labeled {
                        label: "bad\0label".into(),
                    },
                    Timestamp(3),
                )
            } else {
                message(c, &agent, &format!("m{n}"), "hi")
            };
            (n, store.append(draft).await)
        }));
    }
    for task in tasks {
        let (n, result) = task.await.expect("task");
        if n == 10 {
            assert!(result.is_err(), "the bad request fails: {result:?}");
        } else {
            result.unwrap_or_else(|error| panic!("request {n} failed with the bad one: {error}"));
        }
    }
    let log = store.all_events_after(c, Seq::ZERO).await.expect("log");
    assert_eq!(
        log.iter().map(|event| event.seq.0).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    let record = store.conversation(c).await.expect("read").expect("conversation");
    assert!(record.labels.is_empty());
    assert_eq!(whole_feed(&store).await.len(), 20);
}

/// Opened outside a Tokio runtime, the store says so instead of panicking.
#[test]
fn opening_outside_a_runtime_is_refused() {
    let refused = futures::executor::block_on(PostgresStore::open(PostgresConfig::new("host=/nowhere")));
    assert!(matches!(refused, Err(PostgresError::NoRuntime)), "{refused:?}");
}
