//! Entry points: each step of `open`'s resolution order, welcome overrides, the admin API and reloading.

use super::*;
use crate::entry::{EntryPoint, PageRule};
use crate::model::VisitorId;

fn gid(id: &str) -> GroupId {
    GroupId::new(id).expect("id")
}

fn eid(id: &str) -> EntryPointId {
    EntryPointId::new(id).expect("id")
}

fn entry_point(id: &str, group: &str, welcome: Option<&str>, pages: &[&str]) -> EntryPoint {
    let mut entry = EntryPoint::new(tenant(), eid(id), gid(group));
    entry.welcome = welcome.map(Into::into);
    entry.pages = pages
        .iter()
        .map(|rule| PageRule::new(*rule).expect("rule"))
        .collect();
    entry
}

/// "support" (no welcome), "billing" (welcome "Billing here."; the default: the first group by id) and entry
/// points:
/// `pricing` → billing with its own welcome and a page rule, `invoices` → billing without welcome, `help` →
/// support on help pages.
async fn engine_with_entries(store: Arc<dyn Store>) -> Engine {
    let engine = engine_from(builder(store)).await;
    let mut billing = Group::new(tenant(), gid("billing"), "Billing");
    billing.welcome = Some("Billing here.".into());
    engine.put_group(billing).await.expect("group");
    for entry in [
        entry_point(
            "pricing",
            "billing",
            Some("Questions about our plans?"),
            &["https://shop.example/pricing*"],
        ),
        entry_point("invoices", "billing", None, &[]),
        entry_point("help", "support", None, &["shop.example/help"]),
    ] {
        engine.put_entry_point(entry).await.expect("entry point");
    }
    engine
}

async fn open_with(client: &mut Client, frame: serde_json::Value) -> Conversation {
    match client.request(frame).await {
        ServerFrame::Opened { conversation, .. } => conversation,
        other => panic!("expected opened, got {other:?}"),
    }
}

/// The conversation's log from seq 1: (created's group and entry, the first message's text if any).
async fn how_it_came(
    engine: &Engine,
    client: &mut Client,
    conversation: &Conversation,
) -> (GroupId, Option<EntryPointId>, Option<String>) {
    // `opened` may predate the welcome message: the log tells.
    let stored = engine
        .log()
        .conversation(conversation.id)
        .await
        .expect("read")
        .expect("stored");
    client.subscribe(conversation.id, 0).await;
    let (group, entry) = match client.event().await.data {
        EventKind::Created { group, entry, .. } => (group, entry),
        other => panic!("expected created, got {other:?}"),
    };
    let welcome = if stored.last_seq >= Seq(2) {
        match client.event().await.data {
            EventKind::Message { body } => Some(body.text),
            _ => None,
        }
    } else {
        None
    };
    (group, entry, welcome)
}

async fn noted(client: &mut Client, frame: serde_json::Value) {
    let reply = client.request(frame).await;
    assert!(matches!(reply, ServerFrame::Noted { .. }), "{reply:?}");
}

#[tokio::test]
async fn a_named_entry_point_leads_to_its_group_with_its_own_welcome() {
    let engine = engine_with_entries(Arc::new(MemoryStore::new())).await;
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let opened = open_with(
        &mut v1,
        serde_json::json!({"type": "open", "client_id": "o1", "entry": "pricing"}),
    )
    .await;
    assert_eq!(opened.group, gid("billing"));
    let (group, entry, welcome) = how_it_came(&engine, &mut v1, &opened).await;
    assert_eq!(group, gid("billing"));
    assert_eq!(entry, Some(eid("pricing")));
    assert_eq!(
        welcome.as_deref(),
        Some("Questions about our plans?"),
        "the entry point's welcome replaces the group's"
    );

    // Without a welcome of its own, the group's is posted.
    let mut v2 = Client::connect(&engine, visitor("v2")).await;
    let opened = open_with(
        &mut v2,
        serde_json::json!({"type": "open", "client_id": "o1", "entry": "invoices"}),
    )
    .await;
    let (group, entry, welcome) = how_it_came(&engine, &mut v2, &opened).await;
    assert_eq!(
        (group, entry, welcome.as_deref()),
        (gid("billing"), Some(eid("invoices")), Some("Billing here."))
    );
}

#[tokio::test]
async fn an_explicit_group_wins_over_the_entry_point_which_is_still_recorded() {
    let engine = engine_with_entries(Arc::new(MemoryStore::new())).await;
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    // On a pricing page too: the group still decides.
    noted(
        &mut v1,
        serde_json::json!({"type": "page", "url": "https://shop.example/pricing"}),
    )
    .await;
    let opened = open_with(
        &mut v1,
        serde_json::json!({"type": "open", "client_id": "o1", "group": "support", "entry": "pricing"}),
    )
    .await;
    let (group, entry, welcome) = how_it_came(&engine, &mut v1, &opened).await;
    assert_eq!(group, gid("support"));
    assert_eq!(
        entry,
        Some(eid("pricing")),
        "recorded: it is how the visitor came"
    );
    assert_eq!(welcome, None, "its welcome is for billing, and support has none");

    // With its own group, the entry point's welcome applies.
    let mut v2 = Client::connect(&engine, visitor("v2")).await;
    let opened = open_with(
        &mut v2,
        serde_json::json!({"type": "open", "client_id": "o1", "group": "billing", "entry": "pricing"}),
    )
    .await;
    let (_, _, welcome) = how_it_came(&engine, &mut v2, &opened).await;
    assert_eq!(welcome.as_deref(), Some("Questions about our plans?"));

    // A group alone records no entry point, even on a matching page.
    let mut v3 = Client::connect(&engine, visitor("v3")).await;
    noted(
        &mut v3,
        serde_json::json!({"type": "page", "url": "https://shop.example/help"}),
    )
    .await;
    let opened = open_with(
        &mut v3,
        serde_json::json!({"type": "open", "client_id": "o1", "group": "billing"}),
    )
    .await;
    let (group, entry, welcome) = how_it_came(&engine, &mut v3, &opened).await;
    assert_eq!(
        (group, entry, welcome.as_deref()),
        (gid("billing"), None, Some("Billing here."))
    );
}

#[tokio::test]
async fn an_unknown_entry_point_is_not_found_and_opens_nothing() {
    let engine = engine_with_entries(Arc::new(MemoryStore::new())).await;
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    for frame in [
        serde_json::json!({"type": "open", "client_id": "o1", "entry": "nope"}),
        serde_json::json!({"type": "open", "client_id": "o1", "group": "support", "entry": "nope"}),
    ] {
        let reply = v1.request(frame).await;
        assert_eq!(error_code(&reply), Some(ErrorCode::NotFound), "{reply:?}");
    }
    let bad = v1
        .request(serde_json::json!({"type": "open", "client_id": "o1", "entry": ""}))
        .await;
    assert_eq!(error_code(&bad), Some(ErrorCode::InvalidFrame), "{bad:?}");
    let stored = engine
        .log()
        .conversations_of_visitor(&tenant(), &VisitorId::new("v1").expect("id"))
        .await
        .expect("list");
    assert!(stored.is_empty());
}

#[tokio::test]
async fn a_visitor_naming_nothing_is_routed_by_the_page_it_is_on() {
    let engine = engine_with_entries(Arc::new(MemoryStore::new())).await;

    // The last page view decides.
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    noted(
        &mut v1,
        serde_json::json!({"type": "page", "url": "https://shop.example/boots"}),
    )
    .await;
    noted(
        &mut v1,
        serde_json::json!({"type": "page", "url": "https://shop.example/pricing/teams?seats=5"}),
    )
    .await;
    let opened = v1.open("o1").await;
    let (group, entry, welcome) = how_it_came(&engine, &mut v1, &opened).await;
    assert_eq!(
        (group, entry, welcome.as_deref()),
        (
            gid("billing"),
            Some(eid("pricing")),
            Some("Questions about our plans?")
        )
    );

    // Without page views, the landing page of the context report.
    let mut v2 = Client::connect(&engine, visitor("v2")).await;
    noted(
        &mut v2,
        serde_json::json!({"type": "context", "landing_page": "http://shop.example/help/returns"}),
    )
    .await;
    let opened = v2.open("o1").await;
    let (group, entry, _) = how_it_came(&engine, &mut v2, &opened).await;
    assert_eq!((group, entry), (gid("support"), Some(eid("help"))));

    // A later page view that matches nothing beats the landing page: the default group, no entry point.
    let mut v3 = Client::connect(&engine, visitor("v3")).await;
    noted(
        &mut v3,
        serde_json::json!({"type": "context", "landing_page": "https://shop.example/pricing"}),
    )
    .await;
    noted(
        &mut v3,
        serde_json::json!({"type": "page", "url": "https://shop.example/boots"}),
    )
    .await;
    let opened = v3.open("o1").await;
    let (group, entry, welcome) = how_it_came(&engine, &mut v3, &opened).await;
    assert_eq!(
        (group, entry, welcome.as_deref()),
        (gid("billing"), None, Some("Billing here."))
    );

    // Nothing known about the visitor: the default group.
    let mut v4 = Client::connect(&engine, visitor("v4")).await;
    let opened = v4.open("o1").await;
    let (group, entry, _) = how_it_came(&engine, &mut v4, &opened).await;
    assert_eq!((group, entry), (gid("billing"), None));
}

#[tokio::test]
async fn page_rules_are_tried_in_entry_point_id_order() {
    let engine = engine_with_entries(Arc::new(MemoryStore::new())).await;
    // Matches the pricing pages too, and sorts before "pricing".
    engine
        .put_entry_point(entry_point("all-pages", "support", Some("Hello!"), &["*"]))
        .await
        .expect("entry point");
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    noted(
        &mut v1,
        serde_json::json!({"type": "page", "url": "https://shop.example/pricing"}),
    )
    .await;
    let opened = v1.open("o1").await;
    let (group, entry, welcome) = how_it_came(&engine, &mut v1, &opened).await;
    assert_eq!(
        (group, entry, welcome.as_deref()),
        (gid("support"), Some(eid("all-pages")), Some("Hello!"))
    );
}

#[tokio::test]
async fn the_admin_api_validates_lists_deletes_and_survives_a_restart() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = engine_with_entries(store.clone()).await;
    let unknown_group = engine.put_entry_point(entry_point("x", "nope", None, &[])).await;
    assert!(
        matches!(unknown_group, Err(RequestError::NotFound(_))),
        "{unknown_group:?}"
    );
    let empty_welcome = engine
        .put_entry_point(entry_point("x", "support", Some(" "), &[]))
        .await;
    assert!(
        matches!(empty_welcome, Err(RequestError::Invalid(_))),
        "{empty_welcome:?}"
    );
    let ids = |engine: &Engine| -> Vec<String> {
        engine
            .entry_points(&tenant())
            .into_iter()
            .map(|e| e.id.to_string())
            .collect()
    };
    assert_eq!(ids(&engine), ["help", "invoices", "pricing"]);
    assert!(engine.entry_point(&tenant(), &eid("x")).is_none());
    assert!(
        engine
            .delete_entry_point(&tenant(), &eid("invoices"))
            .await
            .expect("delete")
    );
    assert!(
        !engine
            .delete_entry_point(&tenant(), &eid("invoices"))
            .await
            .expect("delete again")
    );
    assert!(
        engine
            .entry_points(&TenantId::new("other").expect("id"))
            .is_empty()
    );

    // A new engine on the same store loads them.
    let restarted = builder(store).build().await.expect("engine");
    assert_eq!(ids(&restarted), ["help", "pricing"]);
    assert_eq!(
        restarted.entry_point(&tenant(), &eid("pricing")),
        engine.entry_point(&tenant(), &eid("pricing"))
    );
    let mut v1 = Client::connect(&restarted, visitor("v1")).await;
    let reply = v1
        .request(serde_json::json!({"type": "open", "client_id": "o1", "entry": "invoices"}))
        .await;
    assert_eq!(
        error_code(&reply),
        Some(ErrorCode::NotFound),
        "deleted: {reply:?}"
    );
    let opened = open_with(
        &mut v1,
        serde_json::json!({"type": "open", "client_id": "o2", "entry": "pricing"}),
    )
    .await;
    assert_eq!(opened.group, gid("billing"));
}

/// A pre-chat form: the answers of a visitor who names the entry point are checked against its form and
/// recorded on the `created` event; bad or missing answers, or answers without an entry point, open nothing.
#[tokio::test]
async fn pre_chat_answers_are_checked_and_recorded_on_created() {
    use crate::prechat::{FieldKind, PrechatField};

    let engine = engine_with_entries(Arc::new(MemoryStore::new())).await;
    let form = entry_point("form", "billing", None, &["https://shop.example/form*"]).with_prechat([
        PrechatField::new("name", "Your name", FieldKind::Text).required(),
        PrechatField::new("email", "Email", FieldKind::Email),
    ]);
    engine.put_entry_point(form).await.expect("entry point");
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    for (fields, code) in [
        (serde_json::json!({}), "the name is required"),
        (
            serde_json::json!({"name": "Ada", "email": "nope"}),
            "not an email",
        ),
        (serde_json::json!({"name": "Ada", "age": "36"}), "no such field"),
    ] {
        let reply = v1
            .request(
                serde_json::json!({"type": "open", "client_id": "o1", "entry": "form", "fields": fields}),
            )
            .await;
        assert!(
            matches!(
                &reply,
                ServerFrame::Error {
                    code: ErrorCode::InvalidFrame,
                    ..
                }
            ),
            "{code}: {reply:?}"
        );
    }
    // Answers belong to the form of the entry point the widget names; a page rule does not ask them.
    noted(
        &mut v1,
        serde_json::json!({"type": "page", "url": "https://shop.example/form"}),
    )
    .await;
    let reply = v1
        .request(serde_json::json!({"type": "open", "client_id": "o1", "fields": {"name": "Ada"}}))
        .await;
    assert!(
        matches!(
            &reply,
            ServerFrame::Error {
                code: ErrorCode::InvalidFrame,
                ..
            }
        ),
        "{reply:?}"
    );
    assert!(
        engine
            .log()
            .conversations_of_visitor(&tenant(), &VisitorId::new("v1").expect("id"))
            .await
            .expect("read")
            .is_empty()
    );

    let opened = open_with(
        &mut v1,
        serde_json::json!({"type": "open", "client_id": "o1", "entry": "form", "fields": {"name": " Ada ", "email": ""}}),
    )
    .await;
    v1.subscribe(opened.id, 0).await;
    match v1.event().await.data {
        EventKind::Created { entry, fields, .. } => {
            assert_eq!(entry, Some(eid("form")));
            assert_eq!(
                fields,
                [("name".to_owned(), "Ada".to_owned())].into_iter().collect()
            );
        }
        other => panic!("expected created, got {other:?}"),
    }
}
