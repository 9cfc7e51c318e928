//! The OpenAPI document is served, parses as OpenAPI 3.1, resolves its references and lists every route the
//! router answers.

mod common;

use common::Server;

/// Every route of `kf_admin::router` (method, path as the document writes it).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/me"),
    ("get", "/agents"),
    ("get", "/agents/{id}"),
    ("put", "/agents/{id}"),
    ("delete", "/agents/{id}"),
    ("post", "/agents/{id}/deactivate"),
    ("post", "/agents/{id}/activate"),
    ("get", "/groups"),
    ("get", "/groups/{id}"),
    ("put", "/groups/{id}"),
    ("delete", "/groups/{id}"),
    ("get", "/groups/{id}/hours"),
    ("put", "/groups/{id}/hours"),
    ("delete", "/groups/{id}/hours"),
    ("get", "/groups/{id}/quick-replies"),
    ("post", "/groups/{id}/quick-replies"),
    ("put", "/groups/{id}/quick-replies/{reply}"),
    ("delete", "/quick-replies/{reply}"),
    ("get", "/entry-points"),
    ("get", "/entry-points/{id}"),
    ("put", "/entry-points/{id}"),
    ("delete", "/entry-points/{id}"),
    ("get", "/labels"),
    ("put", "/labels/{name}"),
    ("delete", "/labels/{name}"),
    ("get", "/origins"),
    ("put", "/origins"),
    ("get", "/audit"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_served_valid_and_complete() {
    let server = Server::start().await;
    let reply = server.call(None, "GET", "/openapi.json", None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let spec = oas3::from_json(&reply.body).expect("an OpenAPI 3.1 document");
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    assert_eq!(spec.info.title, "kf admin API");
    let paths = spec.paths.as_ref().expect("paths");
    for (method, path) in ROUTES {
        let item = paths.get(*path).unwrap_or_else(|| panic!("{path} is documented"));
        let operation = match *method {
            "get" => item.get.as_ref(),
            "put" => item.put.as_ref(),
            "post" => item.post.as_ref(),
            "delete" => item.delete.as_ref(),
            other => panic!("method {other}"),
        };
        let operation = operation.unwrap_or_else(|| panic!("{method} {path} is documented"));
        assert!(
            !operation.responses(&spec).is_empty(),
            "{method} {path} has responses"
        );
        // Every body and response schema it names resolves.
        if let Some(body) = &operation.request_body {
            body.resolve(&spec)
                .unwrap_or_else(|e| panic!("{method} {path} body: {e}"));
        }
    }
    let documented: usize = paths
        .values()
        .map(|item| {
            [&item.get, &item.put, &item.post, &item.delete]
                .iter()
                .filter(|o| o.is_some())
                .count()
        })
        .sum();
    assert_eq!(documented, ROUTES.len(), "no route more, none less");
    // Each named schema resolves, and the bearer scheme is declared.
    let components = spec.components.as_ref().expect("components");
    for name in [
        "AgentBody",
        "AgentView",
        "GroupBody",
        "HoursBody",
        "AuditPageView",
        "ErrorBody",
    ] {
        assert!(components.schemas.contains_key(name), "schema {name}");
    }
    assert!(components.security_schemes.contains_key("bearer"));
    // Every route of the document answers (not the router's 404 fallback) — so the two cannot drift apart.
    for (method, path) in ROUTES {
        let concrete = path
            .replace("{id}", "x")
            .replace("{reply}", "x")
            .replace("{name}", "x");
        let reply = server.call(None, &method.to_uppercase(), &concrete, None).await;
        assert_eq!(reply.status, 401, "{method} {concrete} is routed: {reply:?}");
    }
}
