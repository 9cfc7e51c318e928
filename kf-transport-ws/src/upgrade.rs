//! The HTTP side: validating a WebSocket upgrade request, answering it, and starting the connection on the
//! upgraded socket. Shared by [`serve`](crate::serve), [`route`](crate::route) and hosts' own hyper servers.

use std::sync::Arc;

use http::header::{
    CONNECTION, HeaderMap, HeaderName, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{Method, Request, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use kf_core::Engine;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::config::{Settings, WsConfig};
use crate::connection;

/// Answers a WebSocket upgrade request for `engine`, in any hyper-based server.
///
/// A valid upgrade gets `101 Switching Protocols`, and the connection is served on a task spawned on the current
/// Tokio runtime once hyper hands over the socket (the server must support upgrades: hyper's
/// `serve_connection(..).with_upgrades()`, as axum does). Anything else gets a 4xx with a plain-text
/// explanation: `405` for a method other than GET, `426 Upgrade Required` for a request that is not a WebSocket
/// upgrade (or not one this server's connection can perform), `400` for a malformed one, `403` for a page of
/// another site whose origin no tenant allows ([`kf_core::origin`]; the token's tenant is checked at `hello`).
///
/// The body is a `String`; map it to your server's body type (`response.map(Into::into)`).
pub fn upgrade<B>(engine: &Engine, config: &WsConfig, request: Request<B>) -> Response<String> {
    let settings = Arc::new(config.resolve(engine));
    upgrade_with(engine, &settings, request)
}

/// [`upgrade`] with settings already resolved.
pub(crate) fn upgrade_with<B>(
    engine: &Engine,
    settings: &Arc<Settings>,
    mut request: Request<B>,
) -> Response<String> {
    if request.method() != Method::GET {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "a WebSocket upgrade must be a GET request",
        );
        response
            .headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    let headers = request.headers();
    if !header_has_token(headers, &UPGRADE, "websocket") || !header_has_token(headers, &CONNECTION, "upgrade")
    {
        return upgrade_required("this endpoint speaks WebSocket only: send a WebSocket upgrade request");
    }
    if headers
        .get(SEC_WEBSOCKET_VERSION)
        .is_none_or(|version| version.as_bytes() != b"13")
    {
        return upgrade_required("unsupported WebSocket version: this server speaks version 13");
    }
    let Some(key) = headers
        .get(SEC_WEBSOCKET_KEY)
        .filter(|key| is_valid_key(key.as_bytes()))
    else {
        return plain(
            StatusCode::BAD_REQUEST,
            "missing or malformed Sec-WebSocket-Key header",
        );
    };
    // A page of another site must come from an origin some tenant allows (no connection otherwise); which
    // tenant is known only from the token, checked again at `hello`.
    let origin = kf_core::origin::cross_origin(
        headers.get(http::header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(http::header::HOST).and_then(|v| v.to_str().ok()),
    );
    if let Some(origin) = origin
        && !engine.allowed_origins().allows_some_tenant(origin)
    {
        return plain(
            StatusCode::FORBIDDEN,
            "pages of this origin may not connect: the tenant has not allowed it",
        );
    }
    let origin: Option<Box<str>> = origin.map(Box::from);
    let accept = derive_accept_key(key.as_bytes());
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        return upgrade_required("this connection cannot be upgraded (WebSocket needs HTTP/1.1)");
    };
    if tokio::runtime::Handle::try_current().is_err() {
        tracing::error!("WebSocket upgrade outside a Tokio runtime");
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no runtime to serve the WebSocket connection",
        );
    }
    let Ok(accept) = HeaderValue::from_str(&accept) else {
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode Sec-WebSocket-Accept",
        );
    };

    let session_engine = engine.clone();
    let settings = Arc::clone(settings);
    // One of the engine's tracked tasks: the engine's shutdown closes the session (1001) and waits for it.
    engine.spawn(async move {
        let engine = session_engine;
        match on_upgrade.await {
            Ok(upgraded) => connection::run(engine, &settings, TokioIo::new(upgraded), origin).await,
            Err(error) => tracing::debug!(%error, "WebSocket upgrade did not complete"),
        }
    });

    let mut response = Response::new(String::new());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    response
}

/// A plain-text response.
pub(crate) fn plain(status: StatusCode, message: &'static str) -> Response<String> {
    let mut response = Response::new(format!("{message}\n"));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `426 Upgrade Required`, naming the protocol and version to upgrade to.
fn upgrade_required(message: &'static str) -> Response<String> {
    let mut response = plain(StatusCode::UPGRADE_REQUIRED, message);
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
    response
}

/// Whether any value of a comma-separated header holds `token` (case-insensitive).
fn header_has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// A `Sec-WebSocket-Key` is the base64 encoding of 16 bytes: 22 base64 characters and `==`.
fn is_valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'+' || *byte == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_keys() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(header_has_token(&headers, &CONNECTION, "upgrade"));
        assert!(!header_has_token(&headers, &UPGRADE, "websocket"));
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ"));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25j!Q=="));
    }
}
