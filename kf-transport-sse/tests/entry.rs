//! `open` by POST carries the entry point like any other field: the engine resolves it.

mod common;

use common::*;
use kf_core::entry::{EntryPoint, PageRule};
use kf_core::limits::Limits;
use kf_core::model::{EntryPointId, GroupId};
use kf_core::testkit::shop::*;
use kf_transport_sse::SseConfig;
use serde_json::json;

#[tokio::test]
async fn open_by_post_goes_through_the_named_entry_point_or_the_page_rule() {
    // Groups "support" (the default) and "billing".
    let engine = engine(Limits::default()).await;
    let billing = GroupId::new("billing").expect("id");
    engine
        .put_entry_point(
            EntryPoint::new(tenant(), EntryPointId::new("pricing").expect("id"), billing)
                .with_page(PageRule::new("shop.example/pricing").expect("rule")),
        )
        .await
        .expect("entry point");
    let addr = start(&engine, SseConfig::default()).await;

    let v1 = token(&visitor("v1"));
    let (status, opened) = request(addr, &v1, "open", json!({"client_id": "o1", "entry": "pricing"})).await;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(opened["conversation"]["group"], "billing", "{opened}");
    let (status, refused) = request(addr, &v1, "open", json!({"client_id": "o2", "entry": "nope"})).await;
    assert_eq!(
        (status, &refused["code"]),
        (404, &json!("not_found")),
        "{refused}"
    );

    let v2 = token(&visitor("v2"));
    let (status, noted) = request(addr, &v2, "page", json!({"url": "https://shop.example/pricing"})).await;
    assert_eq!((status, &noted["type"]), (200, &json!("noted")), "{noted}");
    let (_, opened) = request(addr, &v2, "open", json!({"client_id": "o1"})).await;
    assert_eq!(opened["conversation"]["group"], "billing", "{opened}");
}
