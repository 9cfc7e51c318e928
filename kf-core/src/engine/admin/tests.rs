//! The admin operations on a live engine: changes route at once, are refused with clear errors, are kept per
//! tenant, survive a restart and are audited.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::{Identity, Role, SignedTokens};
use crate::clock::SystemClock;
use crate::engine::{Engine, Outbox, Outgoing, RequestError, Session};
use crate::hours::WorkingHours;
use crate::model::{Agent, ClientId, ConversationState, Group, GroupId, TenantId};
use crate::protocol::CloseReason;
use crate::store::{AuditQuery, MemoryStore};

fn shop() -> TenantId {
    TenantId::new("shop").expect("id")
}

fn id<T: std::str::FromStr>(text: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    text.parse().expect("id")
}

fn boss() -> Identity {
    Identity::agent(shop(), id("boss")).with_role(Role::Admin)
}

async fn engine_over(store: Arc<MemoryStore>) -> Engine {
    let tokens = SignedTokens::new(&[9; 32], Arc::new(SystemClock)).expect("key");
    Engine::builder(store.clone(), Arc::new(tokens))
        .audit(store)
        .presence_grace(Duration::ZERO)
        .build()
        .await
        .expect("engine")
}

/// An engine with the "support" group.
async fn engine() -> (Engine, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let engine = engine_over(store.clone()).await;
    let admin = engine.admin(&boss()).expect("admin");
    admin
        .put_group(Group::new(shop(), id("support"), "Support"))
        .await
        .expect("group");
    (engine, store)
}

fn agent(name: &str, groups: &[&str]) -> Agent {
    Agent::new(shop(), id(name), name, 2).with_groups(groups.iter().map(|g| id::<GroupId>(g)))
}

async fn connect(engine: &Engine, name: &str) -> (Session, Outbox) {
    engine
        .connect(Identity::agent(shop(), id(name)))
        .await
        .expect("connect")
}

async fn open(engine: &Engine, visitor: &str) -> crate::model::Conversation {
    let visitor = Identity::visitor(shop(), id(visitor));
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

fn state_of(engine: &Engine, conversation: crate::model::ConversationId) -> ConversationState {
    engine
        .inner
        .routing
        .ledger
        .open_conversation(&conversation)
        .expect("open")
        .state
}

async fn actions(engine: &Engine) -> Vec<String> {
    let page = engine
        .admin(&boss())
        .expect("admin")
        .audit(AuditQuery::new(shop()))
        .await
        .expect("audit");
    page.entries
        .into_iter()
        .map(|entry| format!("{} {}", entry.action, entry.object_id))
        .collect()
}

#[tokio::test]
async fn an_agent_joining_a_group_takes_its_queue_at_once() {
    let (engine, _) = engine().await;
    let admin = engine.admin(&boss()).expect("admin");
    admin.put_agent(agent("alice", &[])).await.expect("alice");
    let _alice = connect(&engine, "alice").await;
    let conversation = open(&engine, "v1").await;
    assert_eq!(state_of(&engine, conversation.id), ConversationState::Queued);
    admin
        .put_agent(agent("alice", &["support"]))
        .await
        .expect("joins");
    assert_eq!(
        state_of(&engine, conversation.id),
        ConversationState::Assigned { agent: id("alice") }
    );
    assert_eq!(
        actions(&engine).await,
        ["agent.update alice", "agent.create alice", "group.create support"]
    );
}

#[tokio::test]
async fn deactivating_an_agent_hands_its_conversations_on_and_shuts_it_out() {
    let (engine, store) = engine().await;
    let admin = engine.admin(&boss()).expect("admin");
    admin
        .put_agent(agent("alice", &["support"]))
        .await
        .expect("alice");
    admin.put_agent(agent("bob", &["support"])).await.expect("bob");
    let (_session, mut outbox) = connect(&engine, "alice").await;
    let conversation = open(&engine, "v1").await;
    assert_eq!(
        state_of(&engine, conversation.id),
        ConversationState::Assigned { agent: id("alice") }
    );
    let _bob = connect(&engine, "bob").await;
    let after = admin.deactivate_agent(&id("alice")).await.expect("deactivate");
    assert!(!after.active);
    assert_eq!(
        state_of(&engine, conversation.id),
        ConversationState::Assigned { agent: id("bob") }
    );
    // Alice's connection is told, and she cannot come back.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Outgoing::Close(reason) = outbox.next().await {
                return reason;
            }
        }
    })
    .await
    .expect("closed");
    assert_eq!(closed, CloseReason::Unauthenticated);
    let again = engine.connect(Identity::agent(shop(), id("alice"))).await;
    assert!(matches!(again, Err(RequestError::Forbidden(_))), "{again:?}");
    // The deactivation is stored and audited with the record before and after.
    let page = admin.audit(AuditQuery::new(shop())).await.expect("audit");
    let entry = &page.entries[0];
    assert_eq!(
        (entry.action.as_str(), entry.actor.as_str()),
        ("agent.deactivate", "boss")
    );
    assert_eq!(entry.before.as_ref().and_then(|b| b.get("active")), None);
    assert_eq!(
        entry.after.as_ref().and_then(|a| a.get("active")),
        Some(&serde_json::json!(false))
    );
    // A restart keeps it.
    drop(engine);
    let restarted = engine_over(store).await;
    assert_eq!(
        restarted.agent(&shop(), &id("alice")).map(|a| a.active),
        Some(false)
    );
    assert_eq!(actions(&restarted).await.len(), 4);
}

#[tokio::test]
async fn working_hours_route_the_next_open() {
    let (engine, _) = engine().await;
    let admin = engine.admin(&boss()).expect("admin");
    admin
        .put_agent(agent("alice", &["support"]))
        .await
        .expect("alice");
    let _alice = connect(&engine, "alice").await;
    // Closed all week (no opening at all).
    let closed = WorkingHours::new("Europe/Berlin").expect("hours");
    admin
        .put_group_hours(&id("support"), Some(closed))
        .await
        .expect("hours");
    let offline = open(&engine, "v1").await;
    assert_eq!(offline.state, ConversationState::Offline);
    admin
        .put_group_hours(&id("support"), None)
        .await
        .expect("always open");
    let routed = open(&engine, "v2").await;
    assert_eq!(
        state_of(&engine, routed.id),
        ConversationState::Assigned { agent: id("alice") }
    );
    assert_eq!(
        &actions(&engine).await[..2],
        ["hours.delete support", "hours.put support"]
    );
}

#[tokio::test]
async fn only_admins_administer_and_supervisors_read_the_whole_tenant() {
    let (engine, _) = engine().await;
    let admin = engine.admin(&boss()).expect("admin");
    admin
        .put_agent(agent("alice", &["support"]))
        .await
        .expect("alice");
    admin.put_agent(agent("sam", &[])).await.expect("sam");
    let alice = Identity::agent(shop(), id("alice"));
    let sam = Identity::agent(shop(), id("sam")).with_role(Role::Supervisor);
    let visitor = Identity::visitor(shop(), id("v1"));
    for identity in [&alice, &sam, &visitor] {
        assert!(matches!(engine.admin(identity), Err(RequestError::Forbidden(_))));
    }
    let _connected = connect(&engine, "alice").await;
    let conversation = open(&engine, "v1").await;
    // Sam is in no group, yet as a supervisor reads it; as a plain agent he would not.
    assert!(engine.readable(&sam, conversation.id).await.is_ok());
    let plain_sam = Identity::agent(shop(), id("sam"));
    assert!(engine.readable(&plain_sam, conversation.id).await.is_err());
    // Reading is not taking part: he cannot write in it.
    assert!(matches!(
        engine.participant(&sam, conversation.id).await,
        Err(RequestError::Forbidden(_))
    ));
    // A supervisor of another tenant sees nothing.
    let elsewhere = Identity::agent(id("other"), id("sam")).with_role(Role::Supervisor);
    assert!(matches!(
        engine.readable(&elsewhere, conversation.id).await,
        Err(RequestError::NotFound(_))
    ));
}

#[tokio::test]
async fn bad_changes_are_refused_and_store_nothing() {
    let (engine, _) = engine().await;
    let admin = engine.admin(&boss()).expect("admin");
    let before = actions(&engine).await;
    for bad in [
        agent("alice", &["nowhere"]),
        agent("alice", &["support", "support"]),
        Agent::new(shop(), id("alice"), " ", 1),
        Agent::new(shop(), id("alice"), "Alice", 1_000_000),
        Agent::new(id("other"), id("alice"), "Alice", 1),
    ] {
        let refused = admin.put_agent(bad.clone()).await;
        assert!(
            matches!(refused, Err(RequestError::Invalid(_))),
            "{bad:?}: {refused:?}"
        );
    }
    let mut looping = Group::new(shop(), id("sales"), "Sales");
    looping.handover = Some(id("sales"));
    assert!(matches!(
        admin.put_group(looping).await,
        Err(RequestError::Invalid(_))
    ));
    assert!(matches!(
        admin.agent(&id("alice")),
        Err(RequestError::NotFound(_))
    ));
    assert_eq!(actions(&engine).await, before);
    // Another tenant's admin finds none of this tenant's objects.
    let rival = Identity::agent(id("other"), id("boss")).with_role(Role::Admin);
    let rival = engine.admin(&rival).expect("admin");
    assert!(matches!(
        rival.group(&id("support")),
        Err(RequestError::NotFound(_))
    ));
    assert!(matches!(
        rival.delete_group(&id("support")).await,
        Err(RequestError::NotFound(_))
    ));
    assert!(
        rival
            .audit(AuditQuery::new(shop()))
            .await
            .expect("own log")
            .entries
            .is_empty()
    );
}

#[tokio::test]
async fn groups_in_use_are_not_deleted_and_agents_are() {
    let (engine, store) = engine().await;
    let admin = engine.admin(&boss()).expect("admin");
    admin
        .put_agent(agent("alice", &["support"]))
        .await
        .expect("alice");
    let _alice = connect(&engine, "alice").await;
    let conversation = open(&engine, "v1").await;
    let refused = admin.delete_group(&id("support")).await;
    assert!(matches!(refused, Err(RequestError::Conflict(_))), "{refused:?}");
    admin.delete_agent(&id("alice")).await.expect("delete alice");
    assert!(engine.agent(&shop(), &id("alice")).is_none());
    assert_eq!(state_of(&engine, conversation.id), ConversationState::Queued);
    let still = admin.delete_group(&id("support")).await;
    assert!(
        matches!(still, Err(RequestError::Conflict(_))),
        "an open conversation: {still:?}"
    );
    engine
        .close(&Identity::visitor(shop(), id("v1")), conversation.id)
        .await
        .expect("close");
    admin.delete_group(&id("support")).await.expect("delete group");
    assert!(admin.groups().is_empty());
    let restarted = engine_over(store).await;
    assert!(restarted.groups(&shop()).is_empty());
    assert!(restarted.agent(&shop(), &id("alice")).is_none());
    assert_eq!(
        &actions(&restarted).await[..3],
        ["group.delete support", "agent.delete alice", "agent.create alice"]
    );
}

#[tokio::test]
async fn allowed_origins_change_live_and_survive_a_restart() {
    let (engine, store) = engine().await;
    let admin = engine.admin(&boss()).expect("admin");
    assert!(
        engine
            .check_origin(&shop(), Some("https://shop.example"))
            .is_err()
    );
    let bad = admin.put_allowed_origins(vec!["not an origin".into()]).await;
    assert!(matches!(bad, Err(RequestError::Invalid(_))), "{bad:?}");
    let set = vec![
        "https://shop.example".to_owned(),
        "https://*.shop.example".to_owned(),
    ];
    admin.put_allowed_origins(set.clone()).await.expect("set");
    assert!(engine.check_origin(&shop(), Some("https://shop.example")).is_ok());
    assert!(
        engine
            .check_origin(&shop(), Some("https://eu.shop.example"))
            .is_ok()
    );
    assert!(
        engine
            .check_origin(&id("other"), Some("https://shop.example"))
            .is_err()
    );
    assert_eq!(admin.allowed_origins(), set);
    let restarted = engine_over(store).await;
    assert!(
        restarted
            .check_origin(&shop(), Some("https://eu.shop.example"))
            .is_ok()
    );
    assert_eq!(&actions(&restarted).await[..1], ["origins.put shop"]);
}
