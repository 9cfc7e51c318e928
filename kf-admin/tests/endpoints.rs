//! Every endpoint over HTTP on 127.0.0.1 with SQLite on disk: success, a validation error, the wrong role (403)
//! and another tenant's admin (404, or an empty list: it never sees this tenant's objects).

mod common;

use common::Server;
use kf_core::auth::Role;
use serde_json::{Value, json};

/// How another tenant's admin fares with the same request.
#[derive(Clone, Copy, Debug)]
enum Rival {
    /// 404: the object is not in its tenant.
    NotFound,
    /// 200 with an empty list (or page): it sees none of this tenant's objects.
    Empty,
    /// The request would create an object of its own tenant (or is refused for its own reasons): not asked.
    Skip,
}

struct Step {
    method: &'static str,
    path: String,
    body: Option<Value>,
    ok: u16,
    /// A request of the same endpoint that fails validation (400), when the endpoint takes input.
    invalid: Option<(String, Option<Value>)>,
    rival: Rival,
}

fn step(method: &'static str, path: &str, body: Option<Value>, ok: u16) -> Step {
    Step {
        method,
        path: path.to_owned(),
        body,
        ok,
        invalid: None,
        rival: Rival::NotFound,
    }
}

impl Step {
    fn invalid(mut self, path: &str, body: Option<Value>) -> Self {
        self.invalid = Some((path.to_owned(), body));
        self
    }

    fn rival(mut self, rival: Rival) -> Self {
        self.rival = rival;
        self
    }
}

async fn run(server: &Server, step: Step) -> Value {
    let what = format!("{} {}", step.method, step.path);
    let agent = server.token("shop", "alice", Role::Agent);
    let supervisor = server.token("shop", "sam", Role::Supervisor);
    for token in [&agent, &supervisor] {
        let reply = server
            .call(Some(token), step.method, &step.path, step.body.clone())
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (403, "forbidden".into()),
            "{what}: {reply:?}"
        );
    }
    let reply = server
        .call(None, step.method, &step.path, step.body.clone())
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (401, "unauthorized".into()),
        "{what}: {reply:?}"
    );
    let rival = server.token("rival", "boss", Role::Admin);
    match step.rival {
        Rival::NotFound => {
            let reply = server
                .call(Some(&rival), step.method, &step.path, step.body.clone())
                .await;
            assert_eq!(
                (reply.status, reply.code()),
                (404, "not_found".into()),
                "{what}: {reply:?}"
            );
        }
        Rival::Empty => {
            let reply = server.call(Some(&rival), step.method, &step.path, None).await;
            assert_eq!(reply.status, 200, "{what}: {reply:?}");
            let listed = reply.json();
            let list = listed.get("entries").unwrap_or(&listed);
            assert_eq!(list, &json!([]), "{what}: the rival sees nothing");
        }
        Rival::Skip => {}
    }
    if let Some((path, body)) = &step.invalid {
        let reply = server.admin(step.method, path, body.clone()).await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, "invalid_request".into()),
            "{what} invalid: {reply:?}"
        );
        assert!(!reply.json()["message"].as_str().unwrap_or_default().is_empty());
    }
    let reply = server.admin(step.method, &step.path, step.body.clone()).await;
    assert_eq!(reply.status, step.ok, "{what}: {reply:?}");
    if reply.body.is_empty() {
        Value::Null
    } else {
        reply.json()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_succeeds_validates_checks_the_role_and_keeps_tenants_apart() {
    let server = Server::start().await;
    let long = "x".repeat(129);
    let bad_id = |path: &str| path.replace("{bad}", &long);
    // A group to start from.
    let support = server
        .admin("PUT", "/groups/support", Some(json!({"name": "Support"})))
        .await;
    assert_eq!(support.status, 200, "{support:?}");

    let sales = json!({"name": "Sales", "strategy": "round_robin",
        "timers": {"max_wait_ms": 60000, "fallback": "support"}});
    let group = run(
        &server,
        step("PUT", "/groups/sales", Some(sales), 200)
            .invalid("/groups/sales", Some(json!({"name": ""})))
            .rival(Rival::Skip),
    )
    .await;
    assert_eq!(
        (group["tenant"].as_str(), group["timers"]["fallback"].as_str()),
        (Some("shop"), Some("support"))
    );
    let groups = run(&server, step("GET", "/groups", None, 200).rival(Rival::Empty)).await;
    assert_eq!(groups.as_array().map(Vec::len), Some(2));
    run(
        &server,
        step("GET", "/groups/sales", None, 200).invalid(&bad_id("/groups/{bad}"), None),
    )
    .await;

    let alice = json!({"name": "Alice", "groups": ["support", "sales"], "capacity": 3});
    let agent = run(
        &server,
        step("PUT", "/agents/alice", Some(alice), 200)
            .invalid(
                "/agents/alice",
                Some(json!({"name": "Alice", "groups": ["nowhere"], "capacity": 1})),
            )
            .rival(Rival::Skip),
    )
    .await;
    assert_eq!(agent["active"], json!(true));
    let agents = run(&server, step("GET", "/agents", None, 200).rival(Rival::Empty)).await;
    assert_eq!(agents[0]["id"], json!("alice"));
    run(
        &server,
        step("GET", "/agents/alice", None, 200).invalid(&bad_id("/agents/{bad}"), None),
    )
    .await;
    let off = run(
        &server,
        step("POST", "/agents/alice/deactivate", None, 200)
            .invalid(&bad_id("/agents/{bad}/deactivate"), None),
    )
    .await;
    assert_eq!(off["active"], json!(false));
    // Replacing a deactivated agent without `active` keeps it deactivated.
    let renamed = json!({"name": "Alice A.", "groups": ["support", "sales"], "capacity": 3});
    let kept = server.admin("PUT", "/agents/alice", Some(renamed)).await.json();
    assert_eq!(
        (kept["name"].clone(), kept["active"].clone()),
        (json!("Alice A."), json!(false))
    );
    let on = run(
        &server,
        step("POST", "/agents/alice/activate", None, 200).invalid(&bad_id("/agents/{bad}/activate"), None),
    )
    .await;
    assert_eq!(on["active"], json!(true));

    let hours = json!({"time_zone": "Europe/Berlin", "weekly": {"mon": ["09:00-17:00"]},
        "holidays": [{"date": "2026-12-25"}, {"date": "2026-12-24", "hours": ["09:00-12:00"]}]});
    let stored = run(
        &server,
        step("PUT", "/groups/support/hours", Some(hours.clone()), 200)
            .invalid("/groups/support/hours", Some(json!({"time_zone": "Mars/Base"}))),
    )
    .await;
    // Holidays come back in date order.
    assert_eq!(stored["holidays"][0]["hours"], json!(["09:00-12:00"]));
    assert_eq!(stored["holidays"][1]["date"], json!("2026-12-25"));
    let read = run(
        &server,
        step("GET", "/groups/support/hours", None, 200).invalid(&bad_id("/groups/{bad}/hours"), None),
    )
    .await;
    assert_eq!(read["weekly"]["mon"], json!(["09:00-17:00"]));
    run(
        &server,
        step("DELETE", "/groups/support/hours", None, 204).invalid(&bad_id("/groups/{bad}/hours"), None),
    )
    .await;
    assert_eq!(
        server.admin("GET", "/groups/support/hours", None).await.json(),
        Value::Null
    );

    let added = run(
        &server,
        step(
            "POST",
            "/groups/support/quick-replies",
            Some(json!({"shortcut": "hi", "text": "Hello!"})),
            201,
        )
        .invalid(
            "/groups/support/quick-replies",
            Some(json!({"shortcut": "Not A Shortcut", "text": "x"})),
        ),
    )
    .await;
    assert_eq!(
        (added["scope"].as_str(), added["group"].as_str()),
        (Some("group"), Some("support"))
    );
    let listed = run(
        &server,
        step("GET", "/groups/support/quick-replies", None, 200)
            .invalid(&bad_id("/groups/{bad}/quick-replies"), None),
    )
    .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    run(
        &server,
        step(
            "PUT",
            "/groups/support/quick-replies/qr-1",
            Some(json!({"shortcut": "bye", "text": "Bye!"})),
            200,
        )
        .invalid(
            "/groups/support/quick-replies/qr-1",
            Some(json!({"shortcut": "", "text": "Bye!"})),
        ),
    )
    .await;
    run(
        &server,
        step("DELETE", "/quick-replies/qr-1", None, 204).invalid("/quick-replies/not%20an%20id", None),
    )
    .await;

    let pricing = json!({"group": "sales", "pages": ["https://shop.example/pricing*"], "welcome": "Questions on prices?"});
    run(
        &server,
        step("PUT", "/entry-points/pricing", Some(pricing), 200)
            .invalid("/entry-points/pricing", Some(json!({"group": "nowhere"})))
            .rival(Rival::Skip),
    )
    .await;
    let entries = run(
        &server,
        step("GET", "/entry-points", None, 200).rival(Rival::Empty),
    )
    .await;
    assert_eq!(entries[0]["pages"], json!(["https://shop.example/pricing*"]));
    run(
        &server,
        step("GET", "/entry-points/pricing", None, 200).invalid(&bad_id("/entry-points/{bad}"), None),
    )
    .await;
    run(
        &server,
        step("DELETE", "/entry-points/pricing", None, 204).invalid(&bad_id("/entry-points/{bad}"), None),
    )
    .await;

    run(
        &server,
        step("PUT", "/labels/VIP", Some(json!({"color": "#d97706"})), 200)
            .invalid("/labels/VIP", Some(json!({"color": "red"})))
            .rival(Rival::Skip),
    )
    .await;
    let labels = run(&server, step("GET", "/labels", None, 200).rival(Rival::Empty)).await;
    assert_eq!(labels[0]["name"], json!("VIP"));
    run(&server, step("DELETE", "/labels/VIP", None, 204)).await;

    let origins = json!({"origins": ["https://shop.example", "https://*.shop.example"]});
    run(
        &server,
        step("PUT", "/origins", Some(origins.clone()), 200)
            .invalid("/origins", Some(json!({"origins": ["ftp://nope"]})))
            .rival(Rival::Skip),
    )
    .await;
    let read = run(&server, step("GET", "/origins", None, 200).rival(Rival::Skip)).await;
    assert_eq!(read, origins);
    let rival = server.token("rival", "boss", Role::Admin);
    let theirs = server.call(Some(&rival), "GET", "/origins", None).await.json();
    assert_eq!(theirs, json!({"origins": []}), "another tenant's list is its own");
    assert!(
        server
            .engine
            .check_origin(&"shop".parse().expect("tenant"), Some("https://eu.shop.example"))
            .is_ok()
    );

    // Alice is in "sales": it cannot go before she does.
    let refused = server.admin("DELETE", "/groups/sales", None).await;
    assert_eq!(
        (refused.status, refused.code()),
        (409, "conflict".into()),
        "{refused:?}"
    );
    run(
        &server,
        step("DELETE", "/agents/alice", None, 204).invalid(&bad_id("/agents/{bad}"), None),
    )
    .await;
    run(
        &server,
        step("DELETE", "/groups/sales", None, 204).invalid(&bad_id("/groups/{bad}"), None),
    )
    .await;

    let page = run(
        &server,
        step("GET", "/audit?object_kind=agent&limit=3", None, 200)
            .invalid("/audit?limit=0", None)
            .rival(Rival::Empty),
    )
    .await;
    let actions: Vec<&str> = page["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| entry["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(actions, ["agent.delete", "agent.activate", "agent.update"]);
    let next = page["next"].as_u64().expect("a next page");
    let rest = server
        .admin("GET", &format!("/audit?object_kind=agent&before={next}"), None)
        .await
        .json();
    assert_eq!(rest["entries"][0]["action"], json!("agent.deactivate"));
    assert_eq!(rest["entries"][1]["action"], json!("agent.create"));
    assert_eq!(rest["entries"][1]["actor"], json!("boss"));
    assert_eq!(rest["entries"][1]["before"], Value::Null);
    assert_eq!(rest["next"], Value::Null);
    let unknown = server.admin("GET", "/audit?colour=red", None).await;
    assert_eq!(unknown.status, 400, "{unknown:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_tells_every_role_who_it_is_and_bad_requests_are_clear() {
    let server = Server::start().await;
    for (role, name) in [
        (Role::Agent, "agent"),
        (Role::Supervisor, "supervisor"),
        (Role::Admin, "admin"),
    ] {
        let token = server.token("shop", "alice", role);
        let me = server.call(Some(&token), "GET", "/me", None).await;
        assert_eq!(me.status, 200);
        assert_eq!(
            me.json(),
            json!({"tenant": "shop", "agent": "alice", "role": name})
        );
    }
    let bad = server.call(Some("kf1.forged.token"), "GET", "/me", None).await;
    assert_eq!((bad.status, bad.code()), (401, "unauthorized".into()));
    let unknown = server.admin("GET", "/nothing-here", None).await;
    assert_eq!((unknown.status, unknown.code()), (404, "not_found".into()));
    let broken = server
        .call(
            Some(&server.boss()),
            "PUT",
            "/groups/g",
            Some(json!({"name": "G", "colour": "red"})),
        )
        .await;
    assert_eq!(
        (broken.status, broken.code()),
        (400, "invalid_request".into()),
        "{broken:?}"
    );
    assert!(
        broken.json()["message"]
            .as_str()
            .unwrap_or_default()
            .contains("colour")
    );
}
