//! Entry points over a real WebSocket, on a real SQLite file: a visitor on a pricing page opens a conversation
//! without naming a group and lands in the group of the entry point whose page rule matches, with that entry
//! point's welcome; a widget naming its entry point gets the same; an unknown one is `not_found`.

use std::sync::Arc;

use kf_core::entry::{EntryPoint, PageRule};
use kf_core::limits::Limits;
use kf_core::model::{Agent, AgentId, EntryPointId, Group, GroupId};
use kf_core::testkit::shop::*;
use kf_store_sqlite::SqliteStore;
use kf_transport_ws::WsConfig;
use kf_transport_ws::testkit::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_on_a_matching_page_lands_in_the_entry_points_group_with_its_welcome() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open_default(dir.path().join("kf.sqlite3")).expect("open store");
    // "support" (alice) is the default group; bob works for billing.
    let engine = engine_with(Arc::new(store), Limits::default(), &["alice"]).await;
    let billing = GroupId::new("billing").expect("id");
    engine
        .put_group(Group::new(tenant(), billing.clone(), "Billing").with_welcome("Billing here."))
        .await
        .expect("group");
    engine
        .put_agent(
            Agent::new(tenant(), AgentId::new("bob").expect("id"), "Bob", 5)
                .with_groups(vec![billing.clone()]),
        )
        .await
        .expect("agent");
    engine
        .put_entry_point(
            EntryPoint::new(tenant(), EntryPointId::new("pricing").expect("id"), billing)
                .with_welcome("Questions about our plans?")
                .with_page(PageRule::new("https://shop.example/pricing*").expect("rule")),
        )
        .await
        .expect("entry point");
    let addr = start(&engine, WsConfig::default()).await;
    let mut bob = WsClient::as_identity(addr, &agent("bob")).await;
    assert_eq!(bob.inbox["conversations"], json!([]));

    let mut on_page = WsClient::as_identity(addr, &visitor("v-pricing")).await;
    on_page
        .send(json!({"type": "page", "id": "p1", "url": "https://shop.example/pricing/teams", "title": "Plans"}))
        .await;
    assert_eq!(on_page.next_of_id("p1").await["type"], "noted");
    on_page
        .send(json!({"type": "open", "id": "o1", "client_id": "open-1"}))
        .await;
    let opened = on_page.next_of_id("o1").await;
    assert_eq!(opened["type"], "opened", "{opened}");
    assert_eq!(opened["conversation"]["group"], "billing", "{opened}");
    let conversation = opened["conversation"]["id"].as_str().expect("id").to_owned();
    let notice = bob.next_of("conversation").await;
    assert_eq!(notice["conversation"]["id"], conversation.as_str());

    subscribe(&mut on_page, &conversation, 0).await;
    let events = events_until(&mut on_page, 3).await;
    assert_eq!(
        events[0]["data"],
        json!({"type": "created", "group": "billing", "entry": "pricing"})
    );
    assert_eq!(events[1]["author"], json!({"role": "system"}));
    assert_eq!(
        events[1]["data"],
        json!({"type": "message", "body": {"text": "Questions about our plans?"}}),
        "the entry point's welcome, not the group's"
    );
    assert_eq!(events[2]["data"], json!({"type": "assigned", "agent": "bob"}));

    // A widget names its entry point; an unknown one is refused.
    let mut widget = WsClient::as_identity(addr, &visitor("v-widget")).await;
    widget
        .send(json!({"type": "open", "id": "o2", "client_id": "open-2", "entry": "pricing"}))
        .await;
    let opened = widget.next_of_id("o2").await;
    assert_eq!(opened["conversation"]["group"], "billing", "{opened}");
    widget
        .send(json!({"type": "open", "id": "o3", "client_id": "open-3", "entry": "nope"}))
        .await;
    let refused = widget.next_of_id("o3").await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "not_found", "{refused}");

    // The store kept what the engine was given.
    let stored = stored(&engine, &conversation).await;
    assert_eq!(
        serde_json::to_value(&stored[0].data).expect("json"),
        json!({"type": "created", "group": "billing", "entry": "pricing"})
    );
}
