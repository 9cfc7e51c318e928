//! The [`Settings`] conformance suite: working hours and quick replies. Each function takes a fresh, empty
//! settings backend and panics on a violation.

use std::sync::Arc;

use super::fixtures::{id, ok, quick, tenant};
use crate::hours::WorkingHours;
use crate::model::{GroupId, TenantId};
use crate::quick_replies::QuickReplyScope;
use crate::store::{Settings, StoreError};

/// Working hours per group: set, listed by (tenant, group), replaced, removed.
pub async fn group_hours_round_trip(store: Arc<dyn Settings>) {
    assert!(ok(store.group_hours().await, "group_hours").is_empty());
    let berlin = match WorkingHours::new("Europe/Berlin").and_then(|h| h.with_day("mon", &["09:00-17:00"])) {
        Ok(hours) => hours,
        Err(error) => panic!("hours: {error}"),
    };
    let utc = match WorkingHours::new("UTC").and_then(|h| h.with_holiday("2026-12-25", &[])) {
        Ok(hours) => hours,
        Err(error) => panic!("hours: {error}"),
    };
    let (sales, support): (GroupId, GroupId) = (id("sales"), id("support"));
    ok(
        store
            .put_group_hours(&tenant(), &support, Some(utc.clone()))
            .await,
        "put",
    );
    ok(
        store.put_group_hours(&tenant(), &sales, Some(utc.clone())).await,
        "put",
    );
    ok(
        store
            .put_group_hours(&tenant(), &sales, Some(berlin.clone()))
            .await,
        "replace",
    );
    let listed = ok(store.group_hours().await, "group_hours");
    let listed: Vec<(GroupId, WorkingHours)> = listed.into_iter().map(|g| (g.group, g.hours)).collect();
    assert_eq!(listed, vec![(sales.clone(), berlin), (support.clone(), utc)]);
    ok(store.put_group_hours(&tenant(), &sales, None).await, "remove");
    ok(
        store.put_group_hours(&tenant(), &sales, None).await,
        "remove again",
    );
    let listed = ok(store.group_hours().await, "group_hours");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].group, support);
}

/// Quick replies: listed per scope by shortcut, a shortcut unique per scope (`Conflict`, nothing stored),
/// replaced by id, deleted.
pub async fn quick_replies_are_scoped_and_unique(store: Arc<dyn Settings>) {
    let alice = QuickReplyScope::Agent { agent: id("alice") };
    let bob = QuickReplyScope::Agent { agent: id("bob") };
    let support = QuickReplyScope::Group { group: id("support") };
    ok(
        store
            .put_quick_reply(quick("q1", alice.clone(), "thanks", "Thank you!"))
            .await,
        "put",
    );
    ok(
        store
            .put_quick_reply(quick("q2", alice.clone(), "hello", "Hello!"))
            .await,
        "put",
    );
    ok(
        store
            .put_quick_reply(quick("q3", bob.clone(), "hello", "Hi there"))
            .await,
        "put",
    );
    ok(
        store
            .put_quick_reply(quick("q4", support.clone(), "hello", "Welcome"))
            .await,
        "put",
    );
    let clash = store
        .put_quick_reply(quick("q5", alice.clone(), "hello", "Again"))
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
    assert_eq!(ok(store.quick_reply(&tenant(), "q5").await, "get"), None);
    let listed = ok(store.quick_replies(&tenant(), &alice).await, "list");
    let shortcuts: Vec<&str> = listed.iter().map(|r| r.shortcut.as_str()).collect();
    assert_eq!(shortcuts, ["hello", "thanks"]);
    // Replacing by id may keep or change the shortcut.
    ok(
        store
            .put_quick_reply(quick("q2", alice.clone(), "hello", "Hello again!"))
            .await,
        "replace",
    );
    ok(
        store
            .put_quick_reply(quick("q1", alice.clone(), "ty", "Thank you!"))
            .await,
        "rename",
    );
    let q2 = ok(store.quick_reply(&tenant(), "q2").await, "get");
    assert_eq!(q2.map(|r| r.text), Some("Hello again!".into()));
    let listed = ok(store.quick_replies(&tenant(), &alice).await, "list");
    let shortcuts: Vec<&str> = listed.iter().map(|r| r.shortcut.as_str()).collect();
    assert_eq!(shortcuts, ["hello", "ty"]);
    let group = ok(store.quick_replies(&tenant(), &support).await, "list");
    assert_eq!(group, vec![quick("q4", support.clone(), "hello", "Welcome")]);
    assert!(ok(store.delete_quick_reply(&tenant(), "q2").await, "delete"));
    assert!(!ok(
        store.delete_quick_reply(&tenant(), "q2").await,
        "delete again"
    ));
    assert_eq!(ok(store.quick_replies(&tenant(), &alice).await, "list").len(), 1);
    // Another tenant sees none of them.
    let other: TenantId = id("tenant-2");
    assert!(ok(store.quick_replies(&other, &alice).await, "list").is_empty());
    assert_eq!(ok(store.quick_reply(&other, "q1").await, "get"), None);
}

/// Label definitions per tenant: listed by name, replaced by name (a new colour), deleted (false the second
/// time), kept apart per tenant.
pub async fn labels_round_trip(store: Arc<dyn Settings>) {
    use crate::labels::Label;
    let other: TenantId = id("tenant-0");
    assert!(ok(store.labels(&tenant()).await, "labels").is_empty());
    let vip = Label::new(tenant(), "VIP", "#d97706");
    let billing = Label::new(tenant(), "Billing", "#2563eb");
    ok(store.put_label(vip.clone()).await, "put");
    ok(store.put_label(billing.clone()).await, "put");
    ok(
        store.put_label(Label::new(other.clone(), "VIP", "#000000")).await,
        "put",
    );
    assert_eq!(
        ok(store.labels(&tenant()).await, "labels"),
        vec![billing.clone(), vip]
    );
    let recoloured = Label::new(tenant(), "VIP", "#dc2626");
    ok(store.put_label(recoloured.clone()).await, "replace");
    assert_eq!(
        ok(store.labels(&tenant()).await, "labels"),
        vec![billing, recoloured.clone()]
    );
    assert!(ok(store.delete_label(&tenant(), "Billing").await, "delete"));
    assert!(!ok(
        store.delete_label(&tenant(), "Billing").await,
        "delete again"
    ));
    assert_eq!(ok(store.labels(&tenant()).await, "labels"), vec![recoloured]);
    assert_eq!(ok(store.labels(&other).await, "labels").len(), 1);
}

/// Attribute definitions per tenant: listed visitor's first then by key, replaced by (object, key) (a new type
/// and name), deleted, kept apart per object and tenant.
pub async fn attribute_definitions_round_trip(store: Arc<dyn Settings>) {
    use crate::labels::{AttributeDefinition, AttributeKind, AttributeObject};
    let define = |object, key: &str, kind| AttributeDefinition::new(tenant(), object, key, kind);
    let plan = define(AttributeObject::Visitor, "plan", AttributeKind::String).with_name("Plan");
    let order = define(AttributeObject::Conversation, "order", AttributeKind::Number);
    let same_key = define(AttributeObject::Conversation, "plan", AttributeKind::Bool);
    let renewal = define(AttributeObject::Visitor, "renewal", AttributeKind::Date);
    for definition in [&order, &same_key, &renewal, &plan] {
        ok(store.put_attribute_definition(definition.clone()).await, "put");
    }
    let other = AttributeDefinition::new(
        id("tenant-0"),
        AttributeObject::Visitor,
        "plan",
        AttributeKind::Number,
    );
    ok(store.put_attribute_definition(other).await, "other tenant");
    assert_eq!(
        ok(store.attribute_definitions(&tenant()).await, "list"),
        vec![plan.clone(), renewal.clone(), order.clone(), same_key.clone()]
    );
    let order_text = define(AttributeObject::Conversation, "order", AttributeKind::String).with_name("Order");
    ok(
        store.put_attribute_definition(order_text.clone()).await,
        "replace",
    );
    assert!(ok(
        store
            .delete_attribute_definition(&tenant(), AttributeObject::Conversation, "plan")
            .await,
        "delete"
    ));
    assert!(!ok(
        store
            .delete_attribute_definition(&tenant(), AttributeObject::Conversation, "plan")
            .await,
        "delete again"
    ));
    assert_eq!(
        ok(store.attribute_definitions(&tenant()).await, "list"),
        vec![plan, renewal, order_text]
    );
    assert_eq!(
        ok(store.attribute_definitions(&id("tenant-0")).await, "list").len(),
        1
    );
}

/// Allowed origins are stored per tenant in their order, replaced whole, and an empty list is kept.
pub async fn allowed_origins_round_trip(store: Arc<dyn Settings>) {
    use crate::store::TenantOrigins;
    assert!(ok(store.allowed_origins().await, "none yet").is_empty());
    let shop = vec![
        "https://shop.example".to_owned(),
        "https://*.shop.example:8443".to_owned(),
    ];
    ok(store.put_allowed_origins(&tenant(), shop.clone()).await, "put");
    ok(
        store
            .put_allowed_origins(&id("tenant-0"), vec!["http://localhost:3000".into()])
            .await,
        "put",
    );
    let listed = ok(store.allowed_origins().await, "list");
    assert_eq!(
        listed,
        vec![
            TenantOrigins {
                tenant: id("tenant-0"),
                origins: vec!["http://localhost:3000".into()]
            },
            TenantOrigins {
                tenant: tenant(),
                origins: shop
            },
        ]
    );
    ok(
        store.put_allowed_origins(&id("tenant-0"), Vec::new()).await,
        "empty",
    );
    let listed = ok(store.allowed_origins().await, "list");
    assert_eq!(
        listed[0],
        TenantOrigins {
            tenant: id("tenant-0"),
            origins: Vec::new()
        }
    );
    assert_eq!(listed.len(), 2);
}

/// Stamps the [`Settings`] conformance suite into the calling crate as `#[test]` functions.
///
/// The argument is an expression evaluating to a future that yields a fresh, empty backend as an `Arc` of a
/// type that coerces to `Arc<dyn Settings>` (an `Arc<MyStore>`, an `Arc<dyn Store>`…). It is evaluated once
/// per test, inside a Tokio runtime.
#[macro_export]
macro_rules! settings_conformance_tests {
    ($make:expr) => {
        $crate::settings_conformance_tests!(@tests $make;
            group_hours_round_trip,
            quick_replies_are_scoped_and_unique,
            labels_round_trip,
            attribute_definitions_round_trip,
            allowed_origins_round_trip,
        );
    };
    (@tests $make:expr; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $crate::testkit::block_on(async {
                    let backend: ::std::sync::Arc<dyn $crate::store::Settings> = $make.await;
                    $crate::testkit::settings::$name(backend).await;
                });
            }
        )*
    };
}
