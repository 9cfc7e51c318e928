//! Routing end to end over WebSocket: two groups, three agents with capacities, twenty visitors arriving at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kf_core::Engine;
use kf_core::model::{Agent, AgentId, Group, GroupId, Strategy};
use kf_core::store::MemoryStore;
use kf_core::testkit::shop::*;
use kf_transport_ws::WsConfig;
use kf_transport_ws::testkit::*;
use serde_json::{Value, json};

const SALES: &str = "sales";
const SUPPORT: &str = "support";

async fn routing_engine() -> Engine {
    let engine = Engine::builder(Arc::new(MemoryStore::new()), Arc::new(tokens()))
        .presence_grace(Duration::ZERO)
        .build()
        .await
        .expect("engine");
    for (id, strategy) in [(SALES, Strategy::LeastBusy), (SUPPORT, Strategy::RoundRobin)] {
        engine
            .put_group(Group::new(tenant(), GroupId::new(id).expect("id"), id).with_strategy(strategy))
            .await
            .expect("group");
    }
    for (id, groups, capacity) in [
        ("alice", vec![SALES], 2),
        ("bob", vec![SALES, SUPPORT], 3),
        ("carol", vec![SUPPORT], 2),
    ] {
        engine
            .put_agent(
                Agent::new(tenant(), AgentId::new(id).expect("id"), id, capacity)
                    .with_groups(groups.into_iter().map(|g| GroupId::new(g).expect("id"))),
            )
            .await
            .expect("agent");
    }
    engine
}

/// A visitor that opened a conversation in `group`.
struct Waiter {
    client: WsClient,
    group: &'static str,
    conversation: String,
    /// The last position announced to it.
    position: Option<u64>,
}

impl Waiter {
    /// Reads every frame sent so far (up to a `pong`) and keeps the last announced position.
    async fn catch_up(&mut self) {
        for frame in self.client.until_pong().await {
            if frame["type"] == "position" {
                assert_eq!(frame["conversation"], self.conversation.as_str(), "{frame}");
                self.position = frame["position"].as_u64();
            }
        }
    }
}

async fn arrive(addr: std::net::SocketAddr, n: usize) -> Waiter {
    let group = if n.is_multiple_of(2) { SALES } else { SUPPORT };
    let mut client = WsClient::as_identity(addr, &visitor(&format!("v{n:02}"))).await;
    client
        .send(json!({"type": "open", "id": "o", "client_id": format!("open-{n}"), "group": group}))
        .await;
    let opened = client.next_of("opened").await;
    Waiter {
        client,
        group,
        conversation: opened["conversation"]["id"].as_str().expect("id").to_owned(),
        position: None,
    }
}

/// The ids of conversations announced to an agent so far (frames up to a `pong`), keeping the others.
async fn announced(agent: &mut WsClient) -> Vec<String> {
    agent
        .until_pong()
        .await
        .into_iter()
        .filter(|frame| frame["type"] == "conversation")
        .map(|frame| frame["conversation"]["id"].as_str().expect("id").to_owned())
        .collect()
}

fn load(engine: &Engine, agent: &str) -> usize {
    engine.agent_load(&tenant(), &AgentId::new(agent).expect("id"))
}

fn queue(engine: &Engine, group: &str) -> Vec<String> {
    engine
        .queue(&tenant(), &GroupId::new(group).expect("id"))
        .into_iter()
        .map(|id| id.to_string())
        .collect()
}

/// The queued waiters of a group, by conversation id, with the positions they were last told.
async fn positions(waiters: &mut [Waiter], engine: &Engine, group: &str) -> HashMap<String, u64> {
    let queued = queue(engine, group);
    let mut seen = HashMap::new();
    for waiter in waiters.iter_mut().filter(|w| queued.contains(&w.conversation)) {
        waiter.catch_up().await;
        seen.insert(
            waiter.conversation.clone(),
            waiter.position.expect("a queued visitor knows its position"),
        );
    }
    seen
}

async fn request(client: &mut WsClient, frame: Value, reply: &str) -> Value {
    client.send(frame).await;
    let answer = client.next_of_id("r").await;
    assert_eq!(answer["type"], reply, "{answer}");
    answer
}

#[tokio::test]
async fn twenty_visitors_two_groups_three_agents() {
    let engine = routing_engine().await;
    let addr = start(&engine, WsConfig::default()).await;
    let mut alice = WsClient::as_identity(addr, &agent("alice")).await;
    let mut bob = WsClient::as_identity(addr, &agent("bob")).await;
    let mut carol = WsClient::as_identity(addr, &agent("carol")).await;

    // Twenty visitors at once, half per group.
    let mut waiters: Vec<Waiter> = futures::future::join_all((0..20).map(|n| arrive(addr, n))).await;

    // Capacity is respected: 2 + 3 + 2 assigned, the rest queued.
    let mut owned: HashMap<&str, Vec<String>> = HashMap::new();
    for (name, client, capacity) in [
        ("alice", &mut alice, 2),
        ("bob", &mut bob, 3),
        ("carol", &mut carol, 2),
    ] {
        let ids = announced(client).await;
        assert_eq!(ids.len(), capacity, "{name} was given exactly its capacity");
        assert_eq!(load(&engine, name), capacity);
        owned.insert(name, ids);
    }
    let (sales, support) = (queue(&engine, SALES), queue(&engine, SUPPORT));
    assert_eq!(sales.len() + support.len(), 13);
    for waiter in &waiters {
        let queued = queue(&engine, waiter.group).contains(&waiter.conversation);
        let assigned = owned.values().flatten().any(|id| id == &waiter.conversation);
        assert!(
            queued != assigned,
            "{} is either queued or assigned",
            waiter.conversation
        );
    }

    // Every queued visitor was told its place: 1, 2, 3… in each group's queue order.
    for group in [SALES, SUPPORT] {
        let told = positions(&mut waiters, &engine, group).await;
        for (index, id) in queue(&engine, group).iter().enumerate() {
            assert_eq!(
                told.get(id),
                Some(&(index as u64 + 1)),
                "{group} position of {id}"
            );
        }
    }

    // A close pulls the next queued visitor at once, and the queue's positions shrink.
    let before = positions(&mut waiters, &engine, SUPPORT).await;
    let head = queue(&engine, SUPPORT)[0].clone();
    let closing = owned["carol"][0].clone();
    request(
        &mut carol,
        json!({"type": "close", "id": "r", "conversation": closing}),
        "closed",
    )
    .await;
    assert_eq!(
        announced(&mut carol).await,
        std::slice::from_ref(&head),
        "carol gets the head of the support queue"
    );
    let after = positions(&mut waiters, &engine, SUPPORT).await;
    assert_eq!(after.len(), before.len() - 1);
    for (id, position) in &after {
        assert_eq!(*position, before[id] - 1, "{id} moved up one place");
    }

    // A transfer frees the agent's capacity: the head of the sales queue goes to alice at once.
    let sales_head = queue(&engine, SALES)[0].clone();
    let moving = owned["alice"][0].clone();
    let transferred = request(
        &mut alice,
        json!({"type": "transfer", "id": "r", "conversation": moving, "group": SUPPORT, "note": "billing question"}),
        "transferred",
    )
    .await;
    assert!(transferred["seq"].as_u64().is_some());
    assert_eq!(announced(&mut alice).await, [sales_head]);
    assert_eq!(load(&engine, "alice"), 2);
    assert_eq!(
        queue(&engine, SUPPORT).last(),
        Some(&moving),
        "the transferred one waits in support now"
    );
    let log = stored(&engine, &moving).await;
    assert_eq!(log.last().map(|e| e.data.name()), Some("transferred"));

    // A transfer to a full agent is refused with a reason, and changes nothing.
    let refused = request(
        &mut bob,
        json!({"type": "transfer", "id": "r", "conversation": owned["bob"][0], "agent": "alice"}),
        "error",
    )
    .await;
    assert_eq!(refused["code"], "at_capacity", "{refused}");

    // Alice closes her last connection: she keeps her conversations but gets no new ones.
    alice.close().await;
    eventually("alice is offline", || {
        !engine.is_online(&tenant(), &AgentId::new("alice").expect("id"))
    })
    .await;
    let sales_head = queue(&engine, SALES)[0].clone();
    let bobs_sales = owned["bob"]
        .iter()
        .find(|id| !queue(&engine, SALES).contains(id))
        .expect("bob has a conversation")
        .clone();
    request(
        &mut bob,
        json!({"type": "close", "id": "r", "conversation": bobs_sales}),
        "closed",
    )
    .await;
    let next = announced(&mut bob).await;
    assert_eq!(next.len(), 1, "the freed place is taken again at once");
    assert_eq!(load(&engine, "alice"), 2, "alice keeps hers");
    if next[0] != sales_head {
        // Bob is in both groups; whichever queue got him, the sales head did not go to alice.
        assert_eq!(queue(&engine, SALES)[0], sales_head);
    }

    // The agent's queue view lists the waiting conversations of its groups.
    let view = request(&mut carol, json!({"type": "queue", "id": "r"}), "queue").await;
    let listed: Vec<&str> = view["conversations"]
        .as_array()
        .expect("list")
        .iter()
        .map(|entry| entry["conversation"]["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        listed,
        queue(&engine, SUPPORT)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn manual_claims_and_status_over_websocket() {
    let engine = routing_engine().await;
    engine
        .put_group(
            Group::new(tenant(), GroupId::new(SALES).expect("id"), SALES).with_strategy(Strategy::Manual),
        )
        .await
        .expect("group");
    let addr = start(&engine, WsConfig::default()).await;
    let mut alice = WsClient::as_identity(addr, &agent("alice")).await;
    let mut bob = WsClient::as_identity(addr, &agent("bob")).await;
    let waiter = arrive(addr, 0).await;
    // Pushed to the group's agents: the queue changed.
    let pushed = alice.next_of("queue").await;
    assert_eq!(
        pushed["conversations"][0]["conversation"]["id"],
        waiter.conversation.as_str()
    );
    assert_eq!(pushed["conversations"][0]["position"], 1);
    // Both claim; exactly one wins.
    alice
        .send(json!({"type": "claim", "id": "a", "conversation": waiter.conversation}))
        .await;
    bob.send(json!({"type": "claim", "id": "b", "conversation": waiter.conversation}))
        .await;
    let (a, b) = (alice.next_of_id("a").await, bob.next_of_id("b").await);
    let outcomes = [a["type"].as_str(), b["type"].as_str()];
    assert!(
        outcomes == [Some("claimed"), Some("error")] || outcomes == [Some("error"), Some("claimed")],
        "{a} {b}"
    );
    let loser = if a["type"] == "error" { &a } else { &b };
    assert_eq!(loser["code"], "invalid_state");

    // Away: no new conversations (support is round robin, bob is its only online agent… and away).
    let status = request(
        &mut bob,
        json!({"type": "status", "id": "r", "status": "away"}),
        "status",
    )
    .await;
    assert_eq!(status["status"], "away");
    let support = arrive(addr, 1).await;
    assert_eq!(
        queue(&engine, SUPPORT),
        std::slice::from_ref(&support.conversation)
    );
    request(
        &mut bob,
        json!({"type": "status", "id": "r", "status": "online"}),
        "status",
    )
    .await;
    assert_eq!(
        announced(&mut bob).await.last(),
        Some(&support.conversation),
        "back online drains the queue"
    );
}

/// A status set in one tab reaches the agent's other connections as a `status` frame without `id`; the tab that
/// set it gets only its reply, and other agents get nothing.
#[tokio::test]
async fn a_status_set_in_one_tab_is_pushed_to_the_others() {
    let engine = routing_engine().await;
    let addr = start(&engine, WsConfig::default()).await;
    let mut tab_1 = WsClient::as_identity(addr, &agent("alice")).await;
    let mut tab_2 = WsClient::as_identity(addr, &agent("alice")).await;
    let mut bob = WsClient::as_identity(addr, &agent("bob")).await;

    let reply = request(
        &mut tab_1,
        json!({"type": "status", "id": "r", "status": "custom", "label": "Lunch until 13:30"}),
        "status",
    )
    .await;
    assert_eq!(reply["id"], "r");
    let pushed = tab_2.next_of("status").await;
    assert_eq!(
        pushed,
        json!({"type": "status", "status": "custom", "label": "Lunch until 13:30"})
    );
    let echoed = tab_1.until_pong().await;
    assert!(
        echoed.iter().all(|frame| frame["type"] != "status"),
        "the tab that set it gets no push: {echoed:?}"
    );
    let others = bob.until_pong().await;
    assert!(
        others.iter().all(|frame| frame["type"] != "status"),
        "another agent learns nothing: {others:?}"
    );

    request(
        &mut tab_2,
        json!({"type": "status", "id": "r", "status": "online"}),
        "status",
    )
    .await;
    assert_eq!(
        tab_1.next_of("status").await,
        json!({"type": "status", "status": "online"})
    );
}
