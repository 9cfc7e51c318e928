//! The browser files compiled into the crate (see `build.rs`): looked up by path, answered with caching
//! validators and gzip when the client takes it.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One compiled-in file.
#[derive(Debug)]
pub(crate) struct Asset {
    /// Its path under the router (`widget.js`, `client/index.js`).
    pub path: &'static str,
    pub content_type: &'static str,
    /// A strong validator: a hash of the body, quoted.
    pub etag: &'static str,
    pub body: &'static [u8],
    /// The body gzipped, when that is smaller.
    pub gzip: Option<&'static [u8]>,
}

/// Every file of `clients/widget/src` and `clients/js/src`, by path.
pub(crate) static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Browsers may use a file for this long before they revalidate it (its URL carries no version, so not long);
/// revalidation is a cheap `304` thanks to the ETag.
const CACHE_CONTROL: &str = "public, max-age=300, stale-while-revalidate=86400";

pub(crate) fn find(assets: &'static [Asset], path: &str) -> Option<&'static Asset> {
    assets.iter().find(|asset| asset.path == path)
}

/// The answer for `asset` to a request with `headers`: `304` when the client's copy is current, else the body,
/// gzipped when the client accepts it.
pub(crate) fn respond(asset: &'static Asset, headers: &HeaderMap) -> Response {
    let mut response = if matches_etag(headers, asset.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match asset.gzip.filter(|_| accepts_gzip(headers)) {
            Some(zipped) => {
                let mut response = Body::from(zipped).into_response();
                response
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                response
            }
            None => Body::from(asset.body).into_response(),
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Any page may load the widget and import the client module (a cross-origin module import needs CORS);
    // they are public files and carry no credentials.
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("cross-origin"),
    );
    response
}

/// `If-None-Match` lists `etag` (or is `*`). Weak comparison, as RFC 9110 asks for `If-None-Match`.
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

/// `Accept-Encoding` names gzip (or `*`) with a q-value that is not zero.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|param| {
                let param = param.trim().to_ascii_lowercase();
                param == "q=0" || param.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    static TABLE: &[Asset] = &[
        Asset {
            path: "widget.js",
            content_type: "text/javascript; charset=utf-8",
            etag: "\"abc\"",
            body: b"console.log(1)",
            gzip: Some(b"zipped"),
        },
        Asset {
            path: "client/index.js",
            content_type: "text/javascript; charset=utf-8",
            etag: "\"def\"",
            body: b"export {}",
            gzip: None,
        },
    ];

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn files_are_found_by_path() {
        assert_eq!(find(TABLE, "client/index.js").map(|a| a.etag), Some("\"def\""));
        assert!(find(TABLE, "index.js").is_none());
        assert!(find(TABLE, "../widget.js").is_none());
    }

    #[test]
    fn gzip_only_when_accepted() {
        assert!(accepts_gzip(&headers(&[("accept-encoding", "br, gzip;q=0.8")])));
        assert!(accepts_gzip(&headers(&[("accept-encoding", "*")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0, br")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "identity")])));
        assert!(!accepts_gzip(&HeaderMap::new()));
        let zipped = respond(&TABLE[0], &headers(&[("accept-encoding", "gzip")]));
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        let plain = respond(&TABLE[0], &HeaderMap::new());
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let never = respond(&TABLE[1], &headers(&[("accept-encoding", "gzip")]));
        assert!(never.headers().get(header::CONTENT_ENCODING).is_none());
    }

    #[test]
    fn a_current_copy_gets_304() {
        let response = respond(&TABLE[0], &headers(&[("if-none-match", "\"zzz\", W/\"abc\"")]));
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(response.headers()[header::ETAG], "\"abc\"");
        let stale = respond(&TABLE[0], &headers(&[("if-none-match", "\"zzz\"")]));
        assert_eq!(stale.status(), StatusCode::OK);
        assert_eq!(stale.headers()[header::CACHE_CONTROL], CACHE_CONTROL);
        assert_eq!(stale.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }

    #[test]
    fn the_compiled_table_is_consistent() {
        for asset in ASSETS {
            assert!(!asset.path.contains(".."), "{}", asset.path);
            assert!(asset.etag.starts_with('"') && asset.etag.ends_with('"'));
            assert_eq!(find(ASSETS, asset.path).map(|a| a.etag), Some(asset.etag));
            if let Some(zipped) = asset.gzip {
                assert!(zipped.len() < asset.body.len());
                assert_eq!(&zipped[..2], &[0x1f, 0x8b], "gzip magic of {}", asset.path);
            }
        }
    }
}
