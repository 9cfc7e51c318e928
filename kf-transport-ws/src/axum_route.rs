//! Mounting the endpoint in a host's axum router.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::routing::{MethodRouter, get};
use kf_core::Engine;

use crate::config::WsConfig;
use crate::upgrade::upgrade_with;

/// The WebSocket endpoint as an axum route, for a host's router:
///
/// ```no_run
/// # fn app(engine: kf_core::Engine) -> axum::Router {
/// use kf_transport_ws::{WsConfig, route};
///
/// axum::Router::new().route("/kf/ws", route(engine, WsConfig::default()))
/// # }
/// ```
///
/// GET requests are upgraded as [`upgrade`](crate::upgrade) describes (the host must serve with upgrades
/// enabled, as `axum::serve` does); other methods get `405`, a GET that is not a WebSocket upgrade `426`.
/// [`WsConfig::path`] is ignored: the router decides the path.
pub fn route<S>(engine: Engine, config: WsConfig) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let settings = Arc::new(config.resolve(&engine));
    get(move |request: Request| {
        let response = upgrade_with(&engine, &settings, request).map(Body::new);
        std::future::ready(response)
    })
}
