//! The model's unit tests: ids, the conversation state machine, records.

use uuid::Uuid;

use super::*;

fn conversation() -> Conversation {
    Conversation::new(
        ConversationId::generate(),
        TenantId::new("t").expect("id"),
        VisitorId::new("v").expect("id"),
        GroupId::new("g").expect("id"),
        Timestamp(1),
    )
}

#[test]
fn ids_are_validated() {
    assert!(AgentId::new("").is_err());
    assert!(AgentId::new("a\u{0}b").is_err());
    assert!(AgentId::new("x".repeat(129)).is_err());
    assert!(AgentId::new("x".repeat(128)).is_ok());
    let parsed: Result<AgentId, _> = serde_json::from_str("\"\"");
    assert!(parsed.is_err());
}

#[test]
fn lifecycle_follows_the_state_machine() {
    let mut c = conversation();
    let agent = AgentId::new("a").expect("id");
    assert_eq!(
        c.apply(
            &EventKind::Message {
                body: MessageBody::text("hi")
            },
            Timestamp(2)
        ),
        Ok(Seq(2))
    );
    assert_eq!(
        c.apply(&EventKind::Assigned { agent: agent.clone() }, Timestamp(3)),
        Ok(Seq(3))
    );
    assert_eq!(c.state.agent(), Some(&agent));
    let again = c.apply(&EventKind::Assigned { agent: agent.clone() }, Timestamp(4));
    assert_eq!(
        again,
        Err(TransitionError {
            state: "assigned",
            event: "assigned"
        })
    );
    assert_eq!(c.last_seq, Seq(3), "a refused event changes nothing");
    assert_eq!(c.apply(&EventKind::Closed, Timestamp(5)), Ok(Seq(4)));
    assert!(
        c.apply(
            &EventKind::Message {
                body: MessageBody::text("late")
            },
            Timestamp(6)
        )
        .is_err()
    );
    assert!(c.apply(&EventKind::Closed, Timestamp(6)).is_err());
    assert_eq!(c.apply(&EventKind::Reopened, Timestamp(7)), Ok(Seq(5)));
    assert_eq!(c.state, ConversationState::Queued);
    assert_eq!(c.last_agent, Some(agent));
    assert!(
        c.apply(
            &EventKind::Created {
                group: c.group.clone(),
                entry: None,
                fields: Default::default(),
            },
            Timestamp(8)
        )
        .is_err()
    );
}

#[test]
fn transfers_move_the_owner_or_requeue() {
    let mut c = conversation();
    let (a, b) = (AgentId::new("a").expect("id"), AgentId::new("b").expect("id"));
    let other = GroupId::new("billing").expect("id");
    c.apply(&EventKind::Assigned { agent: a.clone() }, Timestamp(2))
        .expect("assign");
    let to_b = EventKind::Transferred {
        from: Some(a.clone()),
        agent: Some(b.clone()),
        group: c.group.clone(),
        note: Some("knows the order".into()),
        handover: false,
    };
    assert_eq!(c.apply(&to_b, Timestamp(3)), Ok(Seq(3)));
    assert_eq!(c.state.agent(), Some(&b));
    assert_eq!(c.last_agent, Some(b.clone()));
    let to_queue = EventKind::Transferred {
        from: Some(b.clone()),
        agent: None,
        group: other.clone(),
        note: None,
        handover: false,
    };
    assert_eq!(c.apply(&to_queue, Timestamp(4)), Ok(Seq(4)));
    assert_eq!(c.state, ConversationState::Queued);
    assert_eq!(c.group, other);
    assert_eq!(c.last_agent, Some(b), "the last owner is kept for sticky routing");
    c.apply(&EventKind::Closed, Timestamp(5)).expect("close");
    assert_eq!(
        c.apply(&to_b, Timestamp(6)),
        Err(TransitionError {
            state: "closed",
            event: "transferred"
        })
    );
    let json = serde_json::to_value(&to_queue).expect("json");
    assert_eq!(
        json,
        serde_json::json!({"type": "transferred", "from": "b", "group": "billing"})
    );
}

#[test]
fn offline_messages_take_messages_and_can_be_taken_or_closed() {
    let mut c = conversation();
    let text = EventKind::Message {
        body: MessageBody::text("please call back"),
    };
    assert_eq!(c.apply(&EventKind::Offline, Timestamp(2)), Ok(Seq(2)));
    assert_eq!(c.state, ConversationState::Offline);
    assert!(c.state.is_open());
    assert_eq!(c.apply(&text, Timestamp(3)), Ok(Seq(3)));
    assert!(
        c.apply(&EventKind::Offline, Timestamp(4)).is_err(),
        "only from queued"
    );
    assert!(c.apply(&EventKind::Reopened, Timestamp(4)).is_err());
    let agent = AgentId::new("a").expect("id");
    let mut taken = c.clone();
    assert_eq!(
        taken.apply(&EventKind::Assigned { agent: agent.clone() }, Timestamp(4)),
        Ok(Seq(4))
    );
    assert_eq!(taken.state, ConversationState::Assigned { agent });
    assert_eq!(c.apply(&EventKind::Closed, Timestamp(4)), Ok(Seq(4)));
    assert!(
        c.apply(&EventKind::Offline, Timestamp(5)).is_err(),
        "not from closed"
    );
    let json = serde_json::to_value(ConversationState::Offline).expect("json");
    assert_eq!(json, serde_json::json!({"status": "offline"}));
}

#[test]
fn records_without_routing_settings_load_with_defaults() {
    let agent: Agent = serde_json::from_value(serde_json::json!({
        "tenant": "t", "id": "a", "name": "A", "groups": ["g", "h"], "capacity": 3
    }))
    .expect("agent");
    assert!(agent.group_capacity.is_empty());
    let mut agent = agent;
    agent.group_capacity.insert(GroupId::new("h").expect("id"), 1);
    assert_eq!(agent.capacity_in(&GroupId::new("g").expect("id")), 3);
    assert_eq!(agent.capacity_in(&GroupId::new("h").expect("id")), 1);
    let group: Group =
        serde_json::from_value(serde_json::json!({"tenant": "t", "id": "g", "name": "G"})).expect("group");
    assert_eq!(group.strategy, Strategy::Default);
    assert_eq!(group.max_active, None);
    let external = serde_json::to_value(Strategy::External("crm".into())).expect("json");
    assert_eq!(external, serde_json::json!({"external": "crm"}));
    let manual = serde_json::to_value(Strategy::Manual).expect("json");
    assert_eq!(manual, serde_json::json!("manual"));
}

#[test]
fn created_events_carry_their_entry_point_only_when_there_is_one() {
    let old: EventKind = serde_json::from_value(serde_json::json!({"type": "created", "group": "g"}))
        .expect("a log written before entry points");
    let plain = EventKind::Created {
        group: GroupId::new("g").expect("id"),
        entry: None,
        fields: Default::default(),
    };
    assert_eq!(old, plain);
    assert_eq!(
        serde_json::to_value(&plain).expect("json"),
        serde_json::json!({"type": "created", "group": "g"})
    );
    let through = EventKind::Created {
        group: GroupId::new("g").expect("id"),
        entry: Some(EntryPointId::new("pricing").expect("id")),
        fields: Default::default(),
    };
    assert_eq!(
        serde_json::to_value(&through).expect("json"),
        serde_json::json!({"type": "created", "group": "g", "entry": "pricing"})
    );
}

#[test]
fn event_json_shape_is_stable() {
    let event = Event {
        conversation: ConversationId::from_uuid(Uuid::nil()),
        seq: Seq(2),
        at: Timestamp(1700000000000),
        author: Actor::Visitor(VisitorId::new("v1").expect("id")),
        client_id: Some(ClientId::new("c1").expect("id")),
        data: EventKind::Message {
            body: MessageBody::text("hello"),
        },
    };
    let json = serde_json::to_value(&event).expect("json");
    assert_eq!(
        json,
        serde_json::json!({
            "conversation": "00000000-0000-0000-0000-000000000000",
            "seq": 2,
            "at": 1700000000000u64,
            "author": {"role": "visitor", "id": "v1"},
            "client_id": "c1",
            "data": {"type": "message", "body": {"text": "hello"}}
        })
    );
    let back: Event = serde_json::from_value(json).expect("parse");
    assert_eq!(back, event);
    let system = serde_json::to_value(Actor::System).expect("json");
    assert_eq!(system, serde_json::json!({"role": "system"}));
}
