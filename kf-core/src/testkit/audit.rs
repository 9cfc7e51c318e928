//! The [`AuditLog`] conformance suite. Each function takes a fresh, empty audit log and panics on a violation.

use std::sync::Arc;

use super::fixtures::{id, ok, tenant};
use crate::model::Timestamp;
use crate::store::{AuditEntry, AuditLog, AuditQuery, StoreError};

fn entry(tenant: &str, actor: &str, at: u64, action: &str, object: &str) -> AuditEntry {
    let (kind, _) = action.split_once('.').unwrap_or((action, ""));
    AuditEntry::new(
        id(tenant),
        id(actor),
        Timestamp(at),
        action,
        kind,
        object,
        Some(serde_json::json!({"name": "before ✓", "n": 1})),
        (!action.ends_with(".delete")).then(|| serde_json::json!({"name": "after", "list": [1, 2]})),
    )
}

/// Entries get increasing ids, read back whole, newest first, per tenant.
pub async fn audit_entries_round_trip(store: Arc<dyn AuditLog>) {
    let first = entry("tenant-1", "root", 10, "agent.put", "alice");
    let second = entry("tenant-1", "root", 20, "group.delete", "sales");
    let elsewhere = entry("tenant-0", "root", 15, "agent.put", "alice");
    let a = ok(store.append_audit(first.clone()).await, "append");
    let b = ok(store.append_audit(elsewhere).await, "append");
    let c = ok(store.append_audit(second.clone()).await, "append");
    assert!(a < b && b < c, "ids increase: {a} {b} {c}");
    let page = ok(store.audit_entries(&AuditQuery::new(tenant())).await, "list");
    let expected = vec![AuditEntry { id: c, ..second }, AuditEntry { id: a, ..first }];
    assert_eq!(page.entries, expected);
    assert_eq!(page.next, None);
}

/// Every filter narrows the list, and pages continue with `before` without a gap or a repeat.
pub async fn audit_filters_and_pages(store: Arc<dyn AuditLog>) {
    for (n, (actor, action, object)) in [
        ("root", "agent.put", "alice"),
        ("boss", "agent.deactivate", "alice"),
        ("root", "group.put", "sales"),
        ("boss", "agent.put", "bob"),
        ("root", "agent.delete", "alice"),
    ]
    .into_iter()
    .enumerate()
    {
        ok(
            store
                .append_audit(entry("tenant-1", actor, 100 * (n as u64 + 1), action, object))
                .await,
            "append",
        );
    }
    let list = |query: AuditQuery| {
        let store = Arc::clone(&store);
        async move {
            let page = ok(store.audit_entries(&query).await, "list");
            page.entries
                .iter()
                .map(|e| format!("{} {} {}", e.actor, e.action, e.object_id))
                .collect::<Vec<_>>()
        }
    };
    let base = AuditQuery::new(tenant());
    let by_actor = AuditQuery {
        actor: Some(id("boss")),
        ..base.clone()
    };
    assert_eq!(
        list(by_actor).await,
        ["boss agent.put bob", "boss agent.deactivate alice"]
    );
    let by_object = AuditQuery {
        object_kind: Some("agent".into()),
        object_id: Some("alice".into()),
        ..base.clone()
    };
    assert_eq!(
        list(by_object).await,
        [
            "root agent.delete alice",
            "boss agent.deactivate alice",
            "root agent.put alice"
        ]
    );
    let by_action = AuditQuery {
        action: Some("agent.put".into()),
        ..base.clone()
    };
    assert_eq!(
        list(by_action).await,
        ["boss agent.put bob", "root agent.put alice"]
    );
    let by_time = AuditQuery {
        since: Some(Timestamp(200)),
        until: Some(Timestamp(400)),
        ..base.clone()
    };
    assert_eq!(
        list(by_time).await,
        ["root group.put sales", "boss agent.deactivate alice"]
    );

    let mut seen = Vec::new();
    let mut query = AuditQuery {
        limit: Some(2),
        ..base.clone()
    };
    loop {
        let page = ok(store.audit_entries(&query).await, "page");
        assert!(page.entries.len() <= 2);
        seen.extend(page.entries.iter().map(|e| e.at.0));
        match page.next {
            Some(next) => query.before = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, [500, 400, 300, 200, 100]);
}

/// A query without a tenant or with a page size out of range is refused.
pub async fn bad_audit_queries_are_refused(store: Arc<dyn AuditLog>) {
    for query in [
        AuditQuery::default(),
        AuditQuery {
            limit: Some(0),
            ..AuditQuery::new(tenant())
        },
        AuditQuery {
            limit: Some(100_000),
            ..AuditQuery::new(tenant())
        },
    ] {
        match store.audit_entries(&query).await {
            Err(StoreError::Invalid(_)) => {}
            other => panic!("{query:?} should be refused as invalid, got {other:?}"),
        }
    }
}

/// Stamps the [`AuditLog`] conformance suite into the calling crate as `#[test]` functions. The argument is an
/// expression evaluating to a future that yields a fresh, empty backend as an `Arc` of a type that coerces to
/// `Arc<dyn AuditLog>`.
#[macro_export]
macro_rules! audit_conformance_tests {
    ($make:expr) => {
        $crate::audit_conformance_tests!(@tests $make;
            audit_entries_round_trip,
            audit_filters_and_pages,
            bad_audit_queries_are_refused,
        );
    };
    (@tests $make:expr; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $crate::testkit::block_on(async {
                    let backend: ::std::sync::Arc<dyn $crate::store::AuditLog> = $make.await;
                    $crate::testkit::audit::$name(backend).await;
                });
            }
        )*
    };
}
