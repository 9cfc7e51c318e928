//! Labels and custom attributes (engine/tagging.rs): definitions, the agents' frames, the host's setters, the
//! pre-chat answers, and what a visitor never sees.

use std::collections::BTreeMap;

use super::*;
use crate::labels::{AttributeDefinition, AttributeKind, AttributeObject, AttributeValue, Label};

fn label(kind: &str, conversation: ConversationId, client_id: &str, name: &str) -> serde_json::Value {
    serde_json::json!({"type": kind, "conversation": conversation, "client_id": client_id, "label": name})
}

fn set(
    conversation: ConversationId,
    client_id: &str,
    object: &str,
    key: &str,
    value: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({"type": "set_attribute", "conversation": conversation, "client_id": client_id,
        "object": object, "key": key, "value": value})
}

fn ack_seq(frame: &ServerFrame) -> Option<(Seq, bool)> {
    match frame {
        ServerFrame::Ack { seq, duplicate, .. } => Some((*seq, *duplicate)),
        _ => None,
    }
}

async fn define(engine: &Engine) {
    for (name, color) in [("VIP", "#d97706"), ("Billing", "#2563eb")] {
        engine
            .put_label(Label::new(tenant(), name, color))
            .await
            .expect("label");
    }
    let definitions = [
        AttributeDefinition::new(tenant(), AttributeObject::Visitor, "plan", AttributeKind::String),
        AttributeDefinition::new(tenant(), AttributeObject::Visitor, "seats", AttributeKind::Number),
        AttributeDefinition::new(
            tenant(),
            AttributeObject::Conversation,
            "order",
            AttributeKind::Number,
        ),
        AttributeDefinition::new(
            tenant(),
            AttributeObject::Conversation,
            "due",
            AttributeKind::Date,
        )
        .with_name("Due date"),
    ];
    for definition in definitions {
        engine
            .put_attribute_definition(definition)
            .await
            .expect("definition");
    }
}

#[tokio::test]
async fn agents_label_a_conversation_with_the_tenants_labels_and_visitors_never_see_it() {
    let engine = engine().await;
    define(&engine).await;
    let (mut alice, mut v1, conversation) = assigned_chat(&engine).await;

    let listed = alice
        .request(serde_json::json!({"type": "definitions", "id": "d"}))
        .await;
    match listed {
        ServerFrame::Definitions {
            labels, attributes, ..
        } => {
            let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
            assert_eq!(names, ["Billing", "VIP"]);
            assert_eq!(attributes.len(), 4);
            assert_eq!(attributes[0].object, AttributeObject::Visitor);
        }
        other => panic!("expected definitions, got {other:?}"),
    }
    let by_visitor = v1.request(serde_json::json!({"type": "definitions"})).await;
    assert_eq!(error_code(&by_visitor), Some(ErrorCode::Forbidden));

    let vip = alice.request(label("label", conversation, "l-1", "VIP")).await;
    assert_eq!(ack_seq(&vip), Some((Seq(3), false)), "{vip:?}");
    assert_eq!(
        alice.event().await.data,
        EventKind::Labeled { label: "VIP".into() }
    );
    let hidden = v1.event().await;
    assert_eq!((hidden.seq, hidden.data), (Seq(3), EventKind::Hidden));
    let repeat = alice.request(label("label", conversation, "l-1", "VIP")).await;
    assert_eq!(ack_seq(&repeat), Some((Seq(3), true)), "{repeat:?}");
    let twice = alice.request(label("label", conversation, "l-2", "VIP")).await;
    assert_eq!(error_code(&twice), Some(ErrorCode::Conflict), "{twice:?}");
    let unknown = alice.request(label("label", conversation, "l-3", "Nope")).await;
    assert_eq!(error_code(&unknown), Some(ErrorCode::NotFound), "{unknown:?}");
    let by_visitor = v1.request(label("label", conversation, "l-4", "Billing")).await;
    assert_eq!(error_code(&by_visitor), Some(ErrorCode::Forbidden));
    let missing = alice
        .request(label("unlabel", conversation, "u-0", "Billing"))
        .await;
    assert_eq!(error_code(&missing), Some(ErrorCode::NotFound), "{missing:?}");
    alice
        .request(label("label", conversation, "l-5", "Billing"))
        .await;
    let off = alice.request(label("unlabel", conversation, "u-1", "VIP")).await;
    assert_eq!(ack_seq(&off), Some((Seq(5), false)), "{off:?}");

    let record = engine
        .inner
        .log
        .conversation(conversation)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(record.labels.iter().collect::<Vec<_>>(), ["Billing"]);
    // A new connection's inbox: the agent's record has the labels, the visitor's none.
    let visitor_inbox = engine.inbox(&visitor("v1")).await.expect("inbox");
    assert!(
        visitor_inbox
            .iter()
            .all(|c| c.labels.is_empty() && c.attributes.is_empty())
    );
    let agent_inbox = engine.inbox(&agent_identity("alice")).await.expect("inbox");
    assert_eq!(agent_inbox[0].labels, record.labels);
    // The visitor's replay is gapless and says nothing of labels.
    let mut replay = Client::connect(&engine, visitor("v1")).await;
    replay.subscribe(conversation, 0).await;
    for expected in 1..=5 {
        let event = replay.event().await;
        let json = serde_json::to_string(&event).expect("json");
        assert!(!json.contains("VIP") && !json.contains("label"), "{json}");
        assert_eq!(event.seq, Seq(expected));
    }
    let mut console = Client::connect(&engine, agent_identity("alice")).await;
    console.subscribe(conversation, 2).await;
    assert_eq!(
        console.event().await.data,
        EventKind::Labeled { label: "VIP".into() }
    );
}

#[tokio::test]
async fn attributes_are_typed_bounded_and_for_agents_only() {
    let engine = engine().await;
    define(&engine).await;
    let (mut alice, mut v1, conversation) = assigned_chat(&engine).await;

    let order = alice
        .request(set(
            conversation,
            "a-1",
            "conversation",
            "order",
            serde_json::json!({"number": 1042}),
        ))
        .await;
    assert_eq!(ack_seq(&order), Some((Seq(3), false)), "{order:?}");
    assert_eq!(v1.event().await.data, EventKind::Hidden);
    let plan = alice
        .request(set(
            conversation,
            "a-2",
            "visitor",
            "plan",
            serde_json::json!({"string": "Pro"}),
        ))
        .await;
    assert_eq!(ack_seq(&plan), Some((Seq(4), false)), "{plan:?}");
    for (client_id, object, key, value, code) in [
        (
            "a-3",
            "conversation",
            "order",
            serde_json::json!({"string": "1042"}),
            ErrorCode::InvalidFrame,
        ),
        (
            "a-4",
            "conversation",
            "due",
            serde_json::json!({"date": "2026-02-30"}),
            ErrorCode::InvalidFrame,
        ),
        (
            "a-5",
            "conversation",
            "undeclared",
            serde_json::json!({"bool": true}),
            ErrorCode::NotFound,
        ),
        (
            "a-6",
            "visitor",
            "plan",
            serde_json::json!({"string": "x".repeat(1_001)}),
            ErrorCode::TooLarge,
        ),
        (
            "a-7",
            "visitor",
            "Bad Key",
            serde_json::json!({"bool": true}),
            ErrorCode::InvalidFrame,
        ),
    ] {
        let refused = alice
            .request(set(conversation, client_id, object, key, value))
            .await;
        assert_eq!(error_code(&refused), Some(code), "{key}: {refused:?}");
    }
    let by_visitor = v1
        .request(set(
            conversation,
            "a-8",
            "visitor",
            "plan",
            serde_json::json!({"string": "Free"}),
        ))
        .await;
    assert_eq!(error_code(&by_visitor), Some(ErrorCode::Forbidden));

    // The host sets any key; the visitor's record keeps them, the agent reads them in the visitor context.
    engine
        .set_visitor_attribute(
            &tenant(),
            &"v1".parse().expect("id"),
            "crm.id",
            Some(AttributeValue::String("C-9".into())),
        )
        .await
        .expect("host");
    let wrong = engine
        .set_visitor_attribute(
            &tenant(),
            &"v1".parse().expect("id"),
            "seats",
            Some(AttributeValue::Bool(true)),
        )
        .await;
    assert!(matches!(wrong, Err(RequestError::Invalid(_))), "{wrong:?}");
    let host = engine
        .set_conversation_attribute(conversation, "source", Some(AttributeValue::String("ads".into())))
        .await
        .expect("host");
    assert_eq!(host.seq, Seq(5));
    let context = alice
        .request(serde_json::json!({"type": "visitor_context", "conversation": conversation}))
        .await;
    match context {
        ServerFrame::VisitorContext { attributes, .. } => {
            assert_eq!(
                attributes.get("plan"),
                Some(&AttributeValue::String("Pro".into()))
            );
            assert_eq!(
                attributes.get("crm.id"),
                Some(&AttributeValue::String("C-9".into()))
            );
        }
        other => panic!("expected visitor_context, got {other:?}"),
    }
    let removed = alice
        .request(set(
            conversation,
            "a-9",
            "conversation",
            "order",
            serde_json::Value::Null,
        ))
        .await;
    assert_eq!(ack_seq(&removed), Some((Seq(6), false)), "{removed:?}");
    let record = engine
        .inner
        .log
        .conversation(conversation)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(
        record.attributes,
        BTreeMap::from([("source".to_owned(), AttributeValue::String("ads".into()))])
    );
    // At most MAX_ATTRIBUTES_PER_OBJECT on a visitor.
    for n in 0..crate::limits::MAX_ATTRIBUTES_PER_OBJECT {
        let _ = engine
            .set_visitor_attribute(
                &tenant(),
                &"v2".parse().expect("id"),
                &format!("k{n}"),
                Some(AttributeValue::Bool(true)),
            )
            .await
            .expect("room");
    }
    let full = engine
        .set_visitor_attribute(
            &tenant(),
            &"v2".parse().expect("id"),
            "one-more",
            Some(AttributeValue::Bool(true)),
        )
        .await;
    assert!(matches!(full, Err(RequestError::Invalid(_))), "{full:?}");
}

#[tokio::test]
async fn pre_chat_answers_become_typed_visitor_attributes() {
    use crate::prechat::{FieldKind, PrechatField};
    let engine = engine().await;
    define(&engine).await;
    let form = crate::entry::EntryPoint::new(tenant(), "form".parse().expect("id"), group()).with_prechat([
        PrechatField::new("name", "Your name", FieldKind::Text).required(),
        PrechatField::new("seats", "Seats", FieldKind::Text),
    ]);
    engine.put_entry_point(form).await.expect("entry point");
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let opened = v1
        .request(
            serde_json::json!({"type": "open", "client_id": "o1", "entry": "form",
            "fields": {"name": "Ada", "seats": " 12 "}}),
        )
        .await;
    assert!(matches!(opened, ServerFrame::Opened { .. }), "{opened:?}");
    let record = engine
        .inner
        .directory
        .visitor(&tenant(), &"v1".parse().expect("id"))
        .await
        .expect("read")
        .expect("visitor");
    assert_eq!(
        record.attributes.get("name"),
        Some(&AttributeValue::String("Ada".into()))
    );
    assert_eq!(
        record.attributes.get("seats"),
        AttributeValue::number(12.0).as_ref()
    );
}
