//! The [`Directory`] conformance suite: visitor, agent, group and entry point records. Each function takes a
//! fresh, empty directory and panics on a violation.

use std::sync::Arc;

use super::fixtures::{id, ok, tenant};
use crate::entry::{EntryPoint, PageRule};
use crate::model::{Agent, Group, GroupId, GroupTimers, Strategy, Timestamp, Visitor};
use crate::prechat::{FieldKind, PrechatField};
use crate::store::Directory;

/// Visitor, agent and group records are stored, replaced and listed.
pub async fn records_round_trip(store: Arc<dyn Directory>) {
    let visitor = Visitor {
        tenant: tenant(),
        id: id("v1"),
        name: Some("Ada".into()),
        created_at: Timestamp(7),
        attributes: Default::default(),
    };
    ok(store.put_visitor(visitor.clone()).await, "put_visitor");
    assert_eq!(
        ok(store.visitor(&tenant(), &id("v1")).await, "visitor"),
        Some(visitor)
    );
    assert_eq!(ok(store.visitor(&tenant(), &id("nobody")).await, "visitor"), None);

    let mut agent = Agent {
        tenant: tenant(),
        id: id("a1"),
        name: "Alice".into(),
        groups: vec![id("sales"), id("support")],
        capacity: 3,
        group_capacity: Default::default(),
        active: true,
    };
    ok(store.put_agent(agent.clone()).await, "put_agent");
    agent.capacity = 5;
    ok(store.put_agent(agent.clone()).await, "put_agent");
    let other = Agent {
        tenant: id("tenant-0"),
        id: id("a9"),
        name: "Zed".into(),
        groups: vec![],
        capacity: 1,
        group_capacity: Default::default(),
        active: true,
    };
    ok(store.put_agent(other.clone()).await, "put_agent");
    assert_eq!(
        ok(store.agent(&tenant(), &id("a1")).await, "agent"),
        Some(agent.clone())
    );
    assert_eq!(ok(store.agents().await, "agents"), vec![other, agent]);

    let sales = Group {
        tenant: tenant(),
        id: id("sales"),
        name: "Sales".into(),
        strategy: Default::default(),
        max_active: None,
        welcome: None,
        timers: Default::default(),
        handover: None,
    };
    let support = Group {
        tenant: tenant(),
        id: id("support"),
        name: "Support".into(),
        strategy: Default::default(),
        max_active: None,
        welcome: None,
        timers: Default::default(),
        handover: None,
    };
    ok(store.put_group(support.clone()).await, "put_group");
    ok(store.put_group(sales.clone()).await, "put_group");
    let renamed = Group {
        name: "Sales team".into(),
        ..sales
    };
    ok(store.put_group(renamed.clone()).await, "put_group");
    let groups: Vec<GroupId> = ok(store.groups().await, "groups")
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(groups, vec![id("sales"), id("support")]);
    assert_eq!(ok(store.groups().await, "groups")[0], renamed);
}

/// Routing settings survive a round trip: per-group capacity overrides of agents, groups' strategy, cap, welcome,
/// timers and hand-over group.
pub async fn routing_settings_round_trip(store: Arc<dyn Directory>) {
    let mut agent = Agent {
        tenant: tenant(),
        id: id("a1"),
        name: "Alice".into(),
        groups: vec![id("sales"), id("support")],
        capacity: 3,
        group_capacity: [(id("sales"), 1)].into_iter().collect(),
        active: true,
    };
    ok(store.put_agent(agent.clone()).await, "put_agent");
    assert_eq!(
        ok(store.agent(&tenant(), &id("a1")).await, "agent"),
        Some(agent.clone())
    );
    agent.group_capacity.insert(id("support"), 6);
    ok(store.put_agent(agent.clone()).await, "put_agent");
    assert_eq!(ok(store.agents().await, "agents"), vec![agent]);

    let mut groups = Vec::new();
    for (name, strategy, max_active) in [
        ("a-default", Strategy::Default, None),
        ("b-least", Strategy::LeastBusy, Some(4)),
        ("c-round", Strategy::RoundRobin, None),
        ("d-manual", Strategy::Manual, Some(1)),
        ("e-sticky", Strategy::Sticky, None),
        ("f-external", Strategy::External("crm".into()), Some(9)),
    ] {
        let group = Group {
            strategy,
            max_active,
            ..Group::new(tenant(), id(name), name)
        };
        ok(store.put_group(group.clone()).await, "put_group");
        groups.push(group);
    }
    assert_eq!(ok(store.groups().await, "groups"), groups);
    let changed = Group {
        strategy: Strategy::Manual,
        max_active: None,
        welcome: Some("Hello! How can we help?".into()),
        timers: GroupTimers {
            max_wait_ms: Some(60_000),
            fallback: Some(id("support")),
            missed_after_ms: Some(120_000),
            answer_timeout_ms: Some(30_000),
            inactivity_close_ms: Some(600_000),
        },
        handover: Some(id("support")),
        ..groups[1].clone()
    };
    ok(store.put_group(changed.clone()).await, "put_group");
    assert_eq!(ok(store.groups().await, "groups")[1], changed);
}

/// Entry points are stored per tenant, listed in (tenant, id) order with their rules in order, replaced by
/// id and deleted.
pub async fn entry_points_round_trip(store: Arc<dyn Directory>) {
    let rules = |rules: &[&str]| -> Vec<PageRule> {
        rules
            .iter()
            .map(|rule| match PageRule::new(*rule) {
                Ok(rule) => rule,
                Err(error) => panic!("bad test rule: {error}"),
            })
            .collect()
    };
    let mut widget = EntryPoint::new(tenant(), id("widget"), id("sales"));
    widget.welcome = Some("Hi from the widget!".into());
    widget.prechat = vec![
        PrechatField::new("name", "Your name", FieldKind::Text).required(),
        PrechatField::new("topic", "Topic ✓", FieldKind::Select).with_options(["Orders", "Returns"]),
    ];
    let mut pricing = EntryPoint::new(tenant(), id("pricing"), id("billing"));
    pricing.pages = rules(&["https://shop.example/pricing*", "shop.example/plans"]);
    let other = EntryPoint::new(id("tenant-0"), id("widget"), id("sales"));
    for entry in [widget.clone(), pricing.clone(), other.clone()] {
        ok(store.put_entry_point(entry).await, "put");
    }
    let listed = ok(store.entry_points().await, "list");
    assert_eq!(listed, vec![other.clone(), pricing.clone(), widget.clone()]);
    // Replacing by id changes everything else.
    let mut replaced = widget.clone();
    replaced.group = id("support");
    replaced.welcome = None;
    replaced.pages = rules(&["*/help"]);
    replaced.prechat = vec![PrechatField::new("email", "Email", FieldKind::Email)];
    ok(store.put_entry_point(replaced.clone()).await, "replace");
    let listed = ok(store.entry_points().await, "list");
    assert_eq!(listed, vec![other.clone(), pricing.clone(), replaced]);
    assert!(ok(
        store.delete_entry_point(&tenant(), &id("widget")).await,
        "delete"
    ));
    assert!(!ok(
        store.delete_entry_point(&tenant(), &id("widget")).await,
        "delete again"
    ));
    assert_eq!(ok(store.entry_points().await, "list"), vec![other, pricing]);
}

/// A visitor's typed attributes (every type) are stored with its record, replaced with it, and kept apart per
/// tenant; a record without attributes reads back without them.
pub async fn visitor_attributes_round_trip(store: Arc<dyn Directory>) {
    use crate::labels::AttributeValue;
    let mut visitor = Visitor::new(tenant(), id("v1"), Timestamp(1));
    visitor.attributes.insert(
        "plan".into(),
        AttributeValue::String("Pro \"annual\"\nplan".into()),
    );
    visitor
        .attributes
        .insert("seats".into(), AttributeValue::Number(12.into()));
    let ratio = AttributeValue::number(0.25);
    visitor.attributes.insert(
        "ratio".into(),
        ratio.clone().unwrap_or(AttributeValue::Bool(false)),
    );
    visitor
        .attributes
        .insert("vip".into(), AttributeValue::Bool(true));
    let renewal = match AttributeValue::date("2027-01-31") {
        Ok(date) => date,
        Err(error) => panic!("date: {error}"),
    };
    visitor.attributes.insert("renewal".into(), renewal);
    ok(store.put_visitor(visitor.clone()).await, "put_visitor");
    assert_eq!(
        ok(store.visitor(&tenant(), &id("v1")).await, "visitor"),
        Some(visitor.clone())
    );
    visitor.attributes.remove("vip");
    visitor.name = Some("Ada".into());
    ok(store.put_visitor(visitor.clone()).await, "replace");
    assert_eq!(
        ok(store.visitor(&tenant(), &id("v1")).await, "visitor"),
        Some(visitor)
    );
    let plain = Visitor::new(id("tenant-0"), id("v1"), Timestamp(2));
    ok(store.put_visitor(plain.clone()).await, "other tenant");
    let read = ok(store.visitor(&id("tenant-0"), &id("v1")).await, "visitor");
    assert_eq!(read, Some(plain));
}

/// An agent's `active` flag is stored and replaced; agents and groups are deleted per tenant (a second delete
/// finds nothing, another tenant's record of the same id stays).
pub async fn deactivation_and_deletion(store: Arc<dyn Directory>) {
    let agent = Agent::new(tenant(), id("a1"), "Alice", 2).with_groups([id("sales")]);
    let twin = Agent::new(id("tenant-0"), id("a1"), "Alice elsewhere", 1);
    ok(store.put_agent(agent.clone()).await, "put_agent");
    ok(store.put_agent(twin.clone()).await, "put_agent");
    let inactive = agent.clone().with_active(false);
    ok(store.put_agent(inactive.clone()).await, "deactivate");
    assert_eq!(
        ok(store.agent(&tenant(), &id("a1")).await, "agent"),
        Some(inactive.clone())
    );
    ok(store.put_agent(agent.clone()).await, "reactivate");
    assert_eq!(ok(store.agent(&tenant(), &id("a1")).await, "agent"), Some(agent));
    assert!(ok(store.delete_agent(&tenant(), &id("a1")).await, "delete_agent"));
    assert!(!ok(
        store.delete_agent(&tenant(), &id("a1")).await,
        "delete again"
    ));
    assert_eq!(ok(store.agent(&tenant(), &id("a1")).await, "agent"), None);
    assert_eq!(ok(store.agents().await, "agents"), vec![twin]);

    let sales = Group::new(tenant(), id("sales"), "Sales");
    let other = Group::new(id("tenant-0"), id("sales"), "Sales elsewhere");
    ok(store.put_group(sales).await, "put_group");
    ok(store.put_group(other.clone()).await, "put_group");
    assert!(ok(
        store.delete_group(&tenant(), &id("sales")).await,
        "delete_group"
    ));
    assert!(!ok(
        store.delete_group(&tenant(), &id("sales")).await,
        "delete again"
    ));
    assert_eq!(ok(store.groups().await, "groups"), vec![other]);
}

/// Stamps the [`Directory`] conformance suite into the calling crate as `#[test]` functions.
///
/// The argument is an expression evaluating to a future that yields a fresh, empty backend as an `Arc` of a
/// type that coerces to `Arc<dyn Directory>` (an `Arc<MyStore>`, an `Arc<dyn Store>`…). It is evaluated once
/// per test, inside a Tokio runtime.
#[macro_export]
macro_rules! directory_conformance_tests {
    ($make:expr) => {
        $crate::directory_conformance_tests!(@tests $make;
            records_round_trip,
            routing_settings_round_trip,
            entry_points_round_trip,
            visitor_attributes_round_trip,
            deactivation_and_deletion,
        );
    };
    (@tests $make:expr; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $crate::testkit::block_on(async {
                    let backend: ::std::sync::Arc<dyn $crate::store::Directory> = $make.await;
                    $crate::testkit::directory::$name(backend).await;
                });
            }
        )*
    };
}
