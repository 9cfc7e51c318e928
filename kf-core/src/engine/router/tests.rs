use super::*;
use crate::model::{Agent, Group};

fn id<T: std::str::FromStr>(text: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    text.parse().expect("id")
}

/// The conversation after `seq` events, in `state`.
fn at(base: &Conversation, seq: u64, state: ConversationState) -> Conversation {
    let mut snapshot = base.clone();
    snapshot.last_seq = Seq(seq);
    if let ConversationState::Assigned { agent } = &state {
        snapshot.last_agent = Some(agent.clone());
    }
    snapshot.state = state;
    snapshot
}

#[test]
fn a_snapshot_older_than_a_close_does_not_bring_the_conversation_back() {
    let router = Router::default();
    let (tenant, group, alice): (TenantId, GroupId, AgentId) = (id("t"), id("g"), id("alice"));
    router.put_group(Group::new(tenant.clone(), group.clone(), "G"));
    router.put_agent(Agent {
        tenant: tenant.clone(),
        id: alice.clone(),
        name: "Alice".into(),
        groups: vec![group.clone()],
        capacity: 1,
        group_capacity: Default::default(),
        active: true,
    });
    router.connect(&tenant, &alice);
    let created = Conversation::new(
        ConversationId::generate(),
        tenant.clone(),
        id("v"),
        group.clone(),
        Timestamp(1),
    );
    router.track(created.clone());
    let assigned = ConversationState::Assigned { agent: alice.clone() };
    // Seq 2 (assigned) and seq 3 (closed) race to `update`; the close gets there first.
    let mut closed = at(&created, 3, ConversationState::Closed);
    closed.last_agent = Some(alice.clone());
    router.update(&closed);
    router.update(&at(&created, 2, assigned.clone()));
    assert_eq!(router.load(&tenant, &alice), 0, "the late assignment is history");
    assert!(router.open_conversation(&created.id).is_none());
    // A late `queued` snapshot (say, a transfer back to the queue) is history too.
    router.update(&at(&created, 2, ConversationState::Queued));
    assert!(router.queue(&tenant, &group).is_empty());
    // A reopen is newer than the close: the conversation is routed again.
    router.update(&at(&created, 4, ConversationState::Queued));
    assert_eq!(router.queue(&tenant, &group), [created.id]);
    // And an assignment that overtook its `reopened` snapshot still counts against its agent.
    let other = Conversation::new(
        ConversationId::generate(),
        tenant.clone(),
        id("w"),
        group,
        Timestamp(1),
    );
    let mut other_closed = at(&other, 2, ConversationState::Closed);
    other_closed.last_agent = None;
    router.track(other.clone());
    router.update(&other_closed);
    router.update(&at(&other, 4, assigned));
    assert_eq!(router.load(&tenant, &alice), 1);
}
