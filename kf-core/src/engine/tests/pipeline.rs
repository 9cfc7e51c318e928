//! The one write path: every kind of event a conversation can log is committed by the pipeline, which puts it in
//! the log and the change feed and hands it to the conversation's subscribers — once each, in order.

use std::collections::BTreeSet;

use super::*;
use crate::model::GroupTimers;
use crate::store::{ConversationLog, FeedPosition};

/// What reached a follower by now without the clock moving on: the events the pipeline published (a missing
/// publish would only be noticed by the next event's gap fill, or never for the last one).
async fn delivered_now(follower: &mut Follower) -> Vec<(ConversationId, u64)> {
    // Let the commit tasks and the dispatcher run; with paused time, the clock moves only once all are idle.
    tokio::time::sleep(Duration::from_millis(1)).await;
    while let Some(outgoing) = follower.outbox.try_next() {
        if let Outgoing::Event {
            conversation, seq, ..
        } = outgoing
        {
            follower.events.push((conversation, seq.0));
        }
    }
    follower.events.clone()
}

async fn all_of(memory: &MemoryStore, id: ConversationId) -> Vec<(ConversationId, u64)> {
    let log = memory.events_after(id, Seq::ZERO, usize::MAX).await.expect("log");
    log.iter().map(|event| (id, event.seq.0)).collect()
}

fn kinds(log: &[Event]) -> BTreeSet<&'static str> {
    log.iter().map(|event| event.data.name()).collect()
}

#[tokio::test(start_paused = true)]
async fn every_kind_of_event_reaches_the_log_the_subscribers_and_the_change_feed() {
    let memory = Arc::new(MemoryStore::new());
    let engine = engine_from(builder(memory.clone())).await;
    let support = Group::new(tenant(), group(), "Support").with_welcome("Hello! How can we help?");
    engine.put_group(support).await.expect("group");
    let slow = GroupId::new("slow").expect("id");
    let timers = GroupTimers::default()
        .with_missed_after_ms(1_000)
        .with_max_wait_ms(2_000);
    let slow_group = Group::new(tenant(), slow.clone(), "Nobody home").with_timers(timers);
    engine.put_group(slow_group).await.expect("group");
    engine.put_agent(agent("alice", 2)).await.expect("agent");
    engine.put_agent(agent("bob", 2)).await.expect("agent");
    let _alice = Client::connect(&engine, agent_identity("alice")).await;
    let fresh = Cursor::new(engine.epoch());
    let (mut v1, _) = Follower::start(&engine, visitor("v1"), fresh.clone()).await;
    let (mut v2, _) = Follower::start(&engine, visitor("v2"), fresh).await;

    // created, the welcome, assigned to alice; messages both ways.
    let first = engine
        .open(
            &visitor("v1"),
            client_id("o1"),
            Some(group()),
            None,
            Default::default(),
        )
        .await
        .expect("open")
        .conversation
        .id;
    assert_eq!(delivered_now(&mut v1).await, all_of(&memory, first).await);
    let text = |t: &str| MessageBody::text(t);
    engine
        .send(
            &visitor("v1"),
            first,
            client_id("m1"),
            text("Where is my parcel?"),
        )
        .await
        .expect("send");
    engine
        .send(
            &agent_identity("alice"),
            first,
            client_id("a1"),
            text("Let me look."),
        )
        .await
        .expect("send");
    // transferred back to the queue, assigned to bob (alice is avoided), closed by bob.
    let _bob = Client::connect(&engine, agent_identity("bob")).await;
    engine
        .transfer(&agent_identity("alice"), first, Transfer::default())
        .await
        .expect("transfer");
    assert_eq!(delivered_now(&mut v1).await, all_of(&memory, first).await);
    engine.close(&agent_identity("bob"), first).await.expect("close");
    assert_eq!(delivered_now(&mut v1).await, all_of(&memory, first).await);
    // The visitor writes again: reopened, back to bob, and the message.
    engine
        .send(&visitor("v1"), first, client_id("m2"), text("One more thing"))
        .await
        .expect("send after the close");
    assert_eq!(delivered_now(&mut v1).await, all_of(&memory, first).await);
    // Nobody serves "slow": missed after 1 s, a message left after 2 s.
    let second = engine
        .open(
            &visitor("v2"),
            client_id("o2"),
            Some(slow),
            None,
            Default::default(),
        )
        .await
        .expect("open")
        .conversation
        .id;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let missed = delivered_now(&mut v2).await;
    assert_eq!(missed, all_of(&memory, second).await);
    assert_eq!(missed.len(), 2, "created, missed");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(delivered_now(&mut v2).await, all_of(&memory, second).await);

    let log_of = |id| {
        let memory = Arc::clone(&memory);
        async move { memory.events_after(id, Seq::ZERO, usize::MAX).await.expect("log") }
    };
    let (first_log, second_log) = (log_of(first).await, log_of(second).await);
    let mut logged = kinds(&first_log);
    logged.extend(kinds(&second_log));
    let every_kind: BTreeSet<&str> = [
        "created",
        "message",
        "assigned",
        "transferred",
        "closed",
        "reopened",
        "missed",
        "offline",
    ]
    .into();
    assert_eq!(logged, every_kind, "{first_log:#?} {second_log:#?}");

    // Each subscriber got each event of its conversation once, in order.
    for (follower, id, log) in [(&mut v1, first, &first_log), (&mut v2, second, &second_log)] {
        follower.until_events(log.len()).await;
        let expected: Vec<(ConversationId, u64)> = log.iter().map(|e| (id, e.seq.0)).collect();
        assert_eq!(follower.events, expected);
    }

    // The change feed holds every committed event once, positions rising, each log in seq order.
    let feed = memory
        .feed_after(FeedPosition::ZERO, usize::MAX)
        .await
        .expect("feed");
    assert!(feed.windows(2).all(|pair| pair[0].position < pair[1].position));
    for (id, log) in [(first, &first_log), (second, &second_log)] {
        let fed: Vec<&Event> = feed
            .iter()
            .map(|entry| &entry.event)
            .filter(|event| event.conversation == id)
            .collect();
        assert_eq!(fed, log.iter().collect::<Vec<_>>());
    }
    assert_eq!(feed.len(), first_log.len() + second_log.len());
}
