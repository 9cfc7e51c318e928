//! Changes made through the API route at once, without a restart, appear in the audit log, and survive a
//! restart (SQLite on disk).

mod common;

use std::time::Duration;

use common::Server;
use kf_core::Engine;
use kf_core::auth::Identity;
use kf_core::model::{ClientId, Conversation, ConversationState};
use kf_core::store::AuditLog;
use serde_json::json;

async fn open(engine: &Engine, visitor: &str) -> Conversation {
    let visitor = Identity::visitor("shop".parse().expect("tenant"), visitor.parse().expect("visitor"));
    engine
        .open(
            &visitor,
            ClientId::new("open").expect("id"),
            None,
            None,
            Default::default(),
        )
        .await
        .expect("open")
        .conversation
}

async fn state(engine: &Engine, conversation: &Conversation) -> ConversationState {
    let agent = Identity::agent("shop".parse().expect("tenant"), "boss".parse().expect("agent"))
        .with_role(kf_core::auth::Role::Admin);
    engine
        .conversation(&agent, conversation.id)
        .await
        .expect("an admin reads every conversation")
        .state
}

fn assigned(agent: &str) -> ConversationState {
    ConversationState::Assigned {
        agent: agent.parse().expect("agent"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_changes_route_at_once_are_audited_and_survive_a_restart() {
    let server = Server::start().await;
    let engine = server.engine.clone();
    let ok = |reply: common::Reply, status: u16| assert_eq!(reply.status, status, "{reply:?}");
    ok(
        server
            .admin("PUT", "/groups/support", Some(json!({"name": "Support"})))
            .await,
        200,
    );
    ok(
        server
            .admin(
                "PUT",
                "/agents/alice",
                Some(json!({"name": "Alice", "capacity": 2})),
            )
            .await,
        200,
    );
    let shop = || "shop".parse().expect("tenant");
    let _alice = engine
        .connect(Identity::agent(shop(), "alice".parse().expect("id")))
        .await
        .expect("alice connects");

    // An agent joins a group: the waiting conversation is hers at once.
    let first = open(&engine, "v1").await;
    assert_eq!(state(&engine, &first).await, ConversationState::Queued);
    let joins = json!({"name": "Alice", "groups": ["support"], "capacity": 2});
    ok(server.admin("PUT", "/agents/alice", Some(joins)).await, 200);
    assert_eq!(state(&engine, &first).await, assigned("alice"));

    // Working hours: closed all week, the next visitor leaves a message; removed, the next one is routed.
    let closed = json!({"time_zone": "UTC", "weekly": {}});
    ok(
        server.admin("PUT", "/groups/support/hours", Some(closed)).await,
        200,
    );
    assert_eq!(open(&engine, "v2").await.state, ConversationState::Offline);
    ok(server.admin("DELETE", "/groups/support/hours", None).await, 204);
    let third = open(&engine, "v3").await;
    assert_eq!(state(&engine, &third).await, assigned("alice"));

    // Deactivated, Alice's conversations go to Bob.
    let bob = json!({"name": "Bob", "groups": ["support"], "capacity": 5});
    ok(server.admin("PUT", "/agents/bob", Some(bob)).await, 200);
    let _bob = engine
        .connect(Identity::agent(shop(), "bob".parse().expect("id")))
        .await
        .expect("bob connects");
    ok(server.admin("POST", "/agents/alice/deactivate", None).await, 200);
    assert_eq!(state(&engine, &first).await, assigned("bob"));
    assert_eq!(state(&engine, &third).await, assigned("bob"));
    assert!(
        engine
            .connect(Identity::agent(shop(), "alice".parse().expect("id")))
            .await
            .is_err()
    );

    let audit = server.admin("GET", "/audit?limit=200", None).await.json();
    let actions: Vec<String> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| {
            format!(
                "{} {}",
                entry["action"].as_str().unwrap_or(""),
                entry["object_id"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            "agent.deactivate alice",
            "agent.create bob",
            "hours.delete support",
            "hours.put support",
            "agent.update alice",
            "agent.create alice",
            "group.create support",
        ]
    );
    let update = &audit["entries"][4];
    assert_eq!(
        (
            update["before"]["groups"].clone(),
            update["after"]["groups"].clone()
        ),
        (json!([]), json!(["support"]))
    );

    // A restart on the same file keeps the agents as they were and the log.
    let Server {
        engine, dir, store, ..
    } = server;
    let _ = tokio::time::timeout(Duration::from_secs(5), engine.shutdown()).await;
    store.close().expect("close");
    drop((engine, store));
    let again = Server::start_in(dir).await;
    let alice = again.admin("GET", "/agents/alice", None).await.json();
    assert_eq!(
        (alice["active"].clone(), alice["groups"].clone()),
        (json!(false), json!(["support"]))
    );
    let page = again
        .store
        .audit_entries(&kf_core::store::AuditQuery::new(shop()))
        .await
        .expect("audit");
    assert_eq!(page.entries.len(), 7);
}
