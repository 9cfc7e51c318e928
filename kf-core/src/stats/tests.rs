//! The fold against the brute-force recomputation on random valid event sequences (with a checkpoint round
//! trip in the middle), and a hand-written timeline with every figure's exact value.

use std::collections::HashMap;

use proptest::prelude::{any, prop_assert_eq};
use proptest::test_runner::{Config, TestRunner};

use super::brute::recompute;
use super::*;
use crate::model::{
    Actor, ClientId, Conversation, ConversationId, Event, EventKind, MessageBody, MissedReason, Seq,
    Timestamp, VisitorId, WakeReason,
};

fn id<T: std::str::FromStr>(value: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    value.parse().expect("valid id")
}

/// Mon–Fri 09:00–17:00 UTC.
fn office() -> WorkingHours {
    ["mon", "tue", "wed", "thu", "fri"]
        .into_iter()
        .try_fold(WorkingHours::new("UTC").expect("zone"), |hours, day| {
            hours.with_day(day, &["09:00-17:00"])
        })
        .expect("hours")
}

fn hours_of(tenants: &[&str]) -> HashMap<(TenantId, GroupId), WorkingHours> {
    tenants
        .iter()
        .map(|tenant| ((id(tenant), id("support")), office()))
        .collect()
}

/// Writes valid logs: each conversation's events are checked against its state machine before they are kept.
#[derive(Default)]
struct Writer {
    log: Vec<(TenantId, Event)>,
    conversations: Vec<(TenantId, Conversation)>,
}

impl Writer {
    fn open(&mut self, tenant: &str, group: &str, entry: Option<&str>, at: Timestamp) -> usize {
        let conversation = ConversationId::generate();
        let (tenant, group): (TenantId, GroupId) = (id(tenant), id(group));
        let kind = EventKind::Created {
            group: group.clone(),
            entry: entry.map(id),
            fields: Default::default(),
        };
        let visitor: VisitorId = id("v");
        let event = Event::new(
            conversation,
            Seq(1),
            at,
            Actor::Visitor(visitor.clone()),
            None,
            kind,
        );
        self.log.push((tenant.clone(), event));
        let record = Conversation::new(conversation, tenant.clone(), visitor, group, at);
        self.conversations.push((tenant, record));
        self.conversations.len() - 1
    }

    /// Appends `kind` to conversation `n` if its state allows it; says whether it did.
    fn append(&mut self, n: usize, author: Actor, kind: EventKind, at: Timestamp) -> bool {
        let (tenant, conversation) = &mut self.conversations[n];
        let Ok(seq) = conversation.apply(&kind, at) else {
            return false;
        };
        let client = ClientId::new(format!("c{}", seq.0)).ok();
        let event = Event::new(conversation.id, seq, at, author, client, kind);
        self.log.push((tenant.clone(), event));
        true
    }
}

fn agent(name: &str) -> Actor {
    Actor::Agent(id(name))
}

fn fold(log: &[(TenantId, Event)], hours: &dyn HoursLookup) -> Aggregates {
    let mut aggregates = Aggregates::new();
    for (tenant, event) in log {
        aggregates.apply(tenant, event, hours);
    }
    aggregates
}

/// One random step: open a conversation, or try an event on one (refused ones are skipped).
fn step(writer: &mut Writer, choice: (u8, u8, u8, u8), at: Timestamp) {
    const AGENTS: [&str; 3] = ["alice", "bob", "carol"];
    const GROUPS: [&str; 2] = ["support", "sales"];
    let (what, a, b, pick) = choice;
    let agent_id = || -> AgentId { id(AGENTS[usize::from(a) % AGENTS.len()]) };
    if writer.conversations.is_empty() || what % 16 == 0 {
        let tenant = ["shop", "bank"][usize::from(a) % 2];
        let entry = [None, Some("home"), Some("checkout")][usize::from(b) % 3];
        writer.open(tenant, GROUPS[usize::from(b) % 2], entry, at);
        return;
    }
    let n = usize::from(pick) % writer.conversations.len();
    let owner = writer.conversations[n].1.state.agent().cloned();
    let visitor = Actor::Visitor(id("v"));
    let (author, kind) = match what % 16 {
        1 | 2 => (
            visitor,
            EventKind::Message {
                body: MessageBody::text("hi"),
            },
        ),
        3 | 4 => (
            // Mostly the owner, sometimes another agent (a supervisor writing in).
            owner
                .clone()
                .filter(|_| b % 4 != 0)
                .map_or_else(|| agent(AGENTS[usize::from(a) % 3]), Actor::Agent),
            EventKind::Message {
                body: MessageBody::text("hello"),
            },
        ),
        5 | 6 => (Actor::System, EventKind::Assigned { agent: agent_id() }),
        7 => (visitor, EventKind::Closed),
        8 => (visitor, EventKind::Reopened),
        9 => (
            Actor::System,
            EventKind::Transferred {
                from: owner,
                agent: (b % 2 == 0).then(agent_id),
                group: id(GROUPS[usize::from(b / 2) % 2]),
                note: None,
                handover: false,
            },
        ),
        10 => (Actor::System, EventKind::Offline),
        11 => (
            Actor::System,
            EventKind::Missed {
                reason: if b % 2 == 0 {
                    MissedReason::Waited
                } else {
                    MissedReason::Unanswered
                },
            },
        ),
        // Scores 0 and 6 are out of range: the fold must leave them out, as the recomputation does.
        12 => (
            visitor,
            EventKind::Rated {
                score: b % 7,
                comment: None,
            },
        ),
        13 => (Actor::System, EventKind::Snoozed { until: None }),
        14 => (
            Actor::System,
            EventKind::Woken {
                reason: WakeReason::Visitor,
            },
        ),
        _ => (Actor::System, EventKind::Labeled { label: "vip".into() }),
    };
    writer.append(n, author, kind, at);
}

#[test]
fn the_fold_equals_a_recomputation_from_the_raw_log() {
    // Steps: (choice, time step in ms — often 0, sometimes days), and where a checkpoint round trip happens.
    let steps = proptest::collection::vec(
        (
            any::<(u8, u8, u8, u8)>(),
            proptest::prop_oneof![
                proptest::strategy::Just(0u64),
                0u64..120_000,
                0u64..3 * 86_400_000,
            ],
        ),
        0..160,
    );
    let mut runner = TestRunner::new(Config {
        cases: 256,
        ..Config::default()
    });
    let hours = hours_of(&["shop", "bank"]);
    runner
        .run(&(steps, any::<proptest::sample::Index>()), |(steps, split)| {
            let mut writer = Writer::default();
            // Monday 2026-11-23 07:00 UTC.
            let mut now = 1_795_417_200_000;
            for (choice, dt) in steps {
                now += dt;
                step(&mut writer, choice, Timestamp(now));
            }
            let log = &writer.log;
            let expected = recompute(log, &hours);
            // Folded in two halves with a checkpoint (serialized and read back) between them, as a restart does.
            let split = if log.is_empty() {
                0
            } else {
                split.index(log.len() + 1)
            };
            let first = fold(&log[..split], &hours);
            let saved = serde_json::to_vec(&first).expect("serialize");
            let mut resumed: Aggregates = serde_json::from_slice(&saved).expect("deserialize");
            prop_assert_eq!(&resumed, &first);
            for (tenant, event) in &log[split..] {
                resumed.apply(tenant, event, &hours);
            }
            prop_assert_eq!(&resumed.buckets, &expected.buckets);
            prop_assert_eq!(&resumed, &fold(log, &hours));
            Ok(())
        })
        .expect("the fold agrees with the recomputation");
}

fn utc(text: &str) -> Timestamp {
    let ts: jiff::Timestamp = text.parse().expect("timestamp");
    Timestamp(u64::try_from(ts.as_millisecond()).expect("after 1970"))
}

/// The timeline of `docs/statistics.md`'s worked example: three conversations over two days.
fn timeline() -> Writer {
    let mut w = Writer::default();
    let v = || Actor::Visitor(id("v"));
    let message = || EventKind::Message {
        body: MessageBody::text("…"),
    };
    // A: through the entry point `home`; alice, then bob in sales; rated; reopened and closed unanswered.
    let a = w.open("shop", "support", Some("home"), utc("2026-11-23T08:50:00Z"));
    assert!(w.append(a, v(), message(), utc("2026-11-23T08:50:10Z")));
    assert!(w.append(
        a,
        Actor::System,
        EventKind::Assigned { agent: id("alice") },
        utc("2026-11-23T09:05:00Z")
    ));
    assert!(w.append(a, agent("alice"), message(), utc("2026-11-23T09:06:00Z")));
    let transfer = EventKind::Transferred {
        from: Some(id("alice")),
        agent: Some(id("bob")),
        group: id("sales"),
        note: None,
        handover: false,
    };
    assert!(w.append(a, agent("alice"), transfer, utc("2026-11-23T09:20:00Z")));
    assert!(w.append(a, agent("bob"), EventKind::Closed, utc("2026-11-23T09:30:00Z")));
    let rated = EventKind::Rated {
        score: 5,
        comment: None,
    };
    assert!(w.append(a, v(), rated, utc("2026-11-23T09:31:00Z")));
    assert!(w.append(a, v(), EventKind::Reopened, utc("2026-11-23T10:15:00Z")));
    assert!(w.append(a, v(), EventKind::Closed, utc("2026-11-23T10:20:00Z")));
    // B: opened after hours, missed, left as an offline message; alice takes it the next morning, snoozes it,
    // gets it back, closes it without a word.
    let b = w.open("shop", "support", None, utc("2026-11-23T17:50:00Z"));
    let missed = |reason| EventKind::Missed { reason };
    assert!(w.append(
        b,
        Actor::System,
        missed(MissedReason::Waited),
        utc("2026-11-23T18:00:00Z")
    ));
    assert!(w.append(b, Actor::System, EventKind::Offline, utc("2026-11-23T18:05:00Z")));
    assert!(w.append(
        b,
        agent("alice"),
        EventKind::Assigned { agent: id("alice") },
        utc("2026-11-24T09:10:00Z")
    ));
    assert!(w.append(
        b,
        agent("alice"),
        EventKind::Snoozed { until: None },
        utc("2026-11-24T09:40:00Z")
    ));
    let woken = EventKind::Woken {
        reason: WakeReason::Visitor,
    };
    assert!(w.append(b, v(), woken, utc("2026-11-24T09:50:00Z")));
    assert!(w.append(
        b,
        Actor::System,
        EventKind::Assigned { agent: id("alice") },
        utc("2026-11-24T09:51:00Z")
    ));
    assert!(w.append(b, agent("alice"), EventKind::Closed, utc("2026-11-24T10:00:00Z")));
    // C: the visitor gives up in the queue after two minutes.
    let c = w.open("shop", "support", None, utc("2026-11-24T11:00:00Z"));
    assert!(w.append(
        c,
        Actor::System,
        missed(MissedReason::Unanswered),
        utc("2026-11-24T11:02:00Z")
    ));
    assert!(w.append(c, v(), EventKind::Closed, utc("2026-11-24T11:02:00Z")));
    w
}

fn durations(report: &DurationReport) -> (u64, u64) {
    (report.count, report.total_ms)
}

const MINUTE: u64 = 60_000;

#[test]
fn a_hand_written_timeline_gives_each_figures_exact_value() {
    let writer = timeline();
    let hours = hours_of(&["shop"]);
    let aggregates = fold(&writer.log, &hours);
    assert_eq!(aggregates.buckets, recompute(&writer.log, &hours).buckets);
    let shop: TenantId = id("shop");
    let range = StatsQuery::new(
        shop.clone(),
        utc("2026-11-23T00:00:00Z"),
        utc("2026-11-25T00:00:00Z"),
    );
    let one = |query: &StatsQuery| -> Report {
        let rows = aggregates.query(query).expect("query");
        assert_eq!(rows.len(), 1, "{rows:?}");
        rows[0].figures.clone()
    };

    let all = one(&range);
    assert_eq!(all.conversations, 3);
    assert_eq!(all.offline, 1);
    assert_eq!(all.assignments, 4, "alice and bob on A, alice twice on B");
    assert_eq!(all.transfers, 1);
    assert_eq!(all.closed, 4);
    assert_eq!(all.reopened, 1);
    assert_eq!(all.reopen_rate, Some(0.25));
    assert_eq!((all.missed_waited, all.missed_unanswered), (1, 1));
    assert_eq!(all.unanswered_unassigned, 2, "A's second episode and C");
    assert_eq!(all.unanswered_assigned, 1, "B: alice never wrote");
    assert_eq!(all.ratings, [0, 0, 0, 0, 1]);
    assert_eq!(
        (all.rated, all.rating_average, all.satisfaction),
        (1, Some(5.0), Some(1.0))
    );
    // First assignment: A 15 min (5 of them in hours), B 15 h 20 min (10 min in hours: Tuesday 09:00–09:10).
    assert_eq!(durations(&all.first_assignment), (2, 15 * MINUTE + 920 * MINUTE));
    assert_eq!(
        durations(&all.first_assignment_working),
        (2, 5 * MINUTE + 10 * MINUTE)
    );
    assert_eq!(
        all.first_assignment.median_ms,
        Some(15 * MINUTE),
        "the 15-minute bin"
    );
    assert_eq!(
        all.first_assignment.p90_ms,
        Some(920 * MINUTE),
        "capped at the maximum"
    );
    assert_eq!(all.first_assignment.max_ms, Some(920 * MINUTE));
    assert_eq!(all.first_assignment.average_ms, Some(935 * MINUTE / 2));
    // First response: A only, 16 min (6 in hours).
    assert_eq!(durations(&all.first_response), (1, 16 * MINUTE));
    assert_eq!(durations(&all.first_response_working), (1, 6 * MINUTE));
    // Handling: alice 15 (A) + bob 10 (A) + alice 30 and 9 (B), all in hours (sales has none: always open).
    assert_eq!(durations(&all.handle), (4, 64 * MINUTE));
    assert_eq!(durations(&all.handle_working), (4, 64 * MINUTE));
    // Resolution: A 40 and 5 (in sales: all counts), B 16 h 10 min (60 min in hours), C 2.
    assert_eq!(
        durations(&all.resolution),
        (4, 40 * MINUTE + 5 * MINUTE + 970 * MINUTE + 2 * MINUTE)
    );
    assert_eq!(
        durations(&all.resolution_working),
        (4, 40 * MINUTE + 5 * MINUTE + 60 * MINUTE + 2 * MINUTE)
    );

    let alice = one(&range.clone().by(StatsBy::Agent).key("alice"));
    assert_eq!(
        (alice.assignments, alice.transfers, alice.closed, alice.reopened),
        (3, 1, 1, 0)
    );
    assert_eq!(durations(&alice.first_assignment), (2, 935 * MINUTE));
    assert_eq!(durations(&alice.first_response), (1, 16 * MINUTE));
    assert_eq!(durations(&alice.handle), (3, 54 * MINUTE));
    assert_eq!(durations(&alice.resolution), (1, 970 * MINUTE));
    assert_eq!(
        (alice.unanswered_assigned, alice.rated, alice.conversations),
        (1, 0, 0)
    );
    let bob = one(&range.clone().by(StatsBy::Agent).key("bob"));
    assert_eq!(
        (bob.assignments, bob.closed, bob.reopened, bob.ratings),
        (1, 1, 1, [0, 0, 0, 0, 1])
    );
    assert_eq!(
        durations(&bob.first_assignment),
        (0, 0),
        "A's first assignment was alice's"
    );
    assert_eq!(durations(&bob.handle), (1, 10 * MINUTE));
    assert_eq!(durations(&bob.resolution), (1, 40 * MINUTE));

    let groups = aggregates
        .query(&range.clone().by(StatsBy::Group))
        .expect("query");
    let ids: Vec<_> = groups.iter().map(|row| row.dimension.id()).collect();
    assert_eq!(ids, [Some("sales"), Some("support")]);
    let (sales, support) = (&groups[0].figures, &groups[1].figures);
    assert_eq!(
        (
            sales.conversations,
            sales.assignments,
            sales.closed,
            sales.reopened
        ),
        (0, 1, 2, 1)
    );
    assert_eq!(durations(&sales.resolution), (2, 45 * MINUTE));
    assert_eq!(sales.unanswered_unassigned, 1);
    assert_eq!(
        (support.conversations, support.transfers, support.closed),
        (3, 1, 2)
    );
    assert_eq!(durations(&support.handle), (3, 54 * MINUTE));
    assert_eq!((support.missed_waited, support.missed_unanswered), (1, 1));

    let home = one(&range.clone().by(StatsBy::Entry).key("home"));
    assert_eq!(
        (home.conversations, home.closed, home.reopened, home.rated),
        (1, 2, 1, 1)
    );

    let days = aggregates
        .query(&range.clone().step(StatsStep::Day))
        .expect("query");
    let starts: Vec<_> = days.iter().map(|row| row.start).collect();
    assert_eq!(
        starts,
        [
            Some(utc("2026-11-23T00:00:00Z")),
            Some(utc("2026-11-24T00:00:00Z"))
        ]
    );
    assert_eq!((days[0].figures.conversations, days[0].figures.closed), (2, 2));
    assert_eq!((days[1].figures.conversations, days[1].figures.closed), (1, 2));
    let hourly = aggregates
        .query(&range.clone().step(StatsStep::Hour))
        .expect("query");
    let nine = hourly
        .iter()
        .find(|row| row.start == Some(utc("2026-11-23T09:00:00Z")))
        .expect("09:00");
    assert_eq!(
        (
            nine.figures.assignments,
            nine.figures.transfers,
            nine.figures.closed
        ),
        (2, 1, 1)
    );

    // Another tenant sees nothing; a bad query is refused.
    assert!(
        aggregates
            .query(&StatsQuery::new(id("bank"), range.from, range.to))
            .expect("query")
            .is_empty()
    );
    assert!(matches!(
        aggregates.query(&StatsQuery::new(shop.clone(), range.to, range.from)),
        Err(StatsError::Invalid(_))
    ));
    assert!(matches!(
        aggregates.query(&range.clone().key("alice")),
        Err(StatsError::Invalid(_))
    ));
}
