//! Statistics kept by the engine's follower task: figures of real requests, and a restart that resumes from the
//! checkpoint instead of folding the feed again.

use super::*;
use crate::model::Timestamp;
use crate::stats::{StatsOptions, StatsQuery};
use crate::store::StatsCheckpoints;

fn with_stats(store: Arc<MemoryStore>) -> EngineBuilder {
    let options = StatsOptions::default().with_checkpoint_interval(Duration::from_millis(50));
    builder(store.clone()).statistics(store, options)
}

fn totals(engine: &Engine) -> crate::stats::Report {
    let now = Timestamp::now().0;
    let query = StatsQuery::new(tenant(), Timestamp(now - 86_400_000), Timestamp(now + 3_600_000));
    let rows = engine.stats(&query).expect("stats");
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows[0].figures.clone()
}

#[tokio::test]
async fn statistics_follow_commits_and_resume_from_the_checkpoint_after_a_restart() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine_from(with_stats(store.clone())).await;
    let (mut alice, v1, conversation) = assigned_chat(&engine).await;
    alice.send(conversation, "a1", "Hello!").await;
    engine.close(&visitor("v1"), conversation).await.expect("close");
    engine.stats_settled().await.expect("settled");
    let before = totals(&engine);
    assert_eq!(
        (
            before.conversations,
            before.assignments,
            before.closed,
            before.first_response.count
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(before.unanswered_assigned + before.unanswered_unassigned, 0);
    let reached = engine.stats_status().expect("kept").position;
    assert!(reached.0 >= 4, "created, assigned, message, closed");
    drop((alice, v1));
    engine.shutdown().await;
    // The shutdown saved a checkpoint at the position reached.
    let saved = store.load_stats_checkpoint().await.expect("load").expect("saved");
    assert_eq!(saved.position, reached);

    let engine = builder(store.clone())
        .statistics(store.clone(), StatsOptions::default())
        .build()
        .await
        .expect("restart");
    engine.stats_settled().await.expect("settled");
    let status = engine.stats_status().expect("kept");
    assert_eq!(
        status.resumed_from, reached,
        "resumed from the checkpoint, not from the start"
    );
    assert_eq!(totals(&engine), before);
    // And keeps following: a new conversation counts on top.
    let mut v2 = Client::connect(&engine, visitor("v2")).await;
    v2.open("o2").await;
    engine.stats_settled().await.expect("settled");
    assert_eq!(totals(&engine).conversations, 2);
}

#[tokio::test]
async fn an_engine_without_statistics_says_so() {
    let engine = engine().await;
    let query = StatsQuery::new(tenant(), Timestamp(0), Timestamp(1));
    assert_eq!(engine.stats(&query), Err(crate::stats::StatsError::NotKept));
    engine.stats_settled().await.expect("nothing to wait for");
}

#[tokio::test]
async fn the_monitor_shows_queues_agents_and_visitors_now() {
    let engine = engine().await;
    engine.put_agent(agent("alice", 1)).await.expect("agent");
    engine.put_agent(agent("bob", 3)).await.expect("agent");
    let _alice = Client::connect(&engine, agent_identity("alice")).await;
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let _v1_again = Client::connect(&engine, visitor("v1")).await;
    let mut v2 = Client::connect(&engine, visitor("v2")).await;
    let _v3 = Client::connect(&engine, visitor("v3")).await;
    let page = serde_json::json!({"type": "page", "url": "https://shop.example/boots"});
    assert!(matches!(v1.request(page).await, ServerFrame::Noted { .. }));
    v1.open("o1").await;
    // alice (capacity 1) has v1's; v2's waits.
    let waiting = v2.open("o2").await;
    assert_eq!(engine.queue(&tenant(), &group()), vec![waiting.id]);

    let now = engine.monitor(&tenant());
    assert_eq!(now.tenant, tenant());
    let [support] = now.groups.as_slice() else {
        panic!("one group: {:?}", now.groups)
    };
    assert_eq!(
        (support.group.as_str(), support.queued, support.active),
        ("support", 1, 1)
    );
    assert!(support.longest_wait_ms.is_some() && support.average_wait_ms <= support.longest_wait_ms);
    assert_eq!(
        (support.offline, support.on_hold, support.agents_accepting),
        (0, 0, 1)
    );
    let agents: Vec<_> = now
        .agents
        .iter()
        .map(|a| (a.agent.as_str(), a.online, a.connections, a.load, a.capacity))
        .collect();
    assert_eq!(agents, [("alice", true, 1, 1, 1), ("bob", false, 0, 0, 3)]);
    assert_eq!(now.visitors_online, 3);
    let visitors: Vec<_> = now
        .visitors
        .iter()
        .map(|v| (v.visitor.as_str(), v.connections, v.page.as_deref()))
        .collect();
    assert_eq!(
        visitors,
        [
            ("v1", 2, Some("https://shop.example/boots")),
            ("v2", 1, None),
            ("v3", 1, None)
        ]
    );
    // Another tenant sees nothing of it.
    let other = engine.monitor(&TenantId::new("other").expect("id"));
    assert!(other.groups.is_empty() && other.agents.is_empty() && other.visitors.is_empty());
}
