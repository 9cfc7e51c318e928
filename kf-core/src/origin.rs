//! Web origins: which sites' pages may talk to a tenant.
//!
//! A page on one site that embeds kf from another (the widget) makes cross-origin requests. Browsers say where
//! a request comes from in its `Origin` header, and an origin the tenant did not allow gets no connection: the
//! transports refuse a WebSocket handshake or an SSE request from it, the widget's HTTP endpoints answer it
//! without CORS permission. A request without `Origin` (a server, an app, curl) or from the kf server's own origin
//! is not a cross-origin browser request and is not restricted here; its token still has to be valid.
//!
//! Patterns are origins as browsers write them — `scheme://host[:port]`, no path — where the host may start with
//! `*.` for every subdomain (`https://*.shop.example` matches `https://eu.shop.example`, not
//! `https://shop.example`). Scheme and host are compared case-insensitively; a port must match exactly (no port:
//! the scheme's default, so `https://shop.example:443` is `https://shop.example`).
//!
//! An `Origin` is `scheme://host[:port]` and nothing else: no path to decode, no userinfo, no query. Parsing it
//! with `url` would accept more (paths, userinfo) only to refuse it again, and bring IDNA and its Unicode tables
//! into kf-core; browsers send the host already in its ASCII (punycode) form. So it is parsed here, in a few
//! tested lines.
//!
//! ```
//! use kf_core::model::TenantId;
//! use kf_core::origin::AllowedOrigins;
//!
//! let shop = TenantId::new("shop").unwrap();
//! let origins = AllowedOrigins::new()
//!     .allow(&shop, "https://shop.example")?
//!     .allow(&shop, "https://*.shop.example")?;
//! assert!(origins.allows(&shop, "https://shop.example"));
//! assert!(origins.allows(&shop, "https://EU.shop.example"));
//! assert!(!origins.allows(&shop, "http://shop.example"));
//! assert!(!origins.allows(&shop, "https://evil.example"));
//! # Ok::<(), kf_core::origin::OriginError>(())
//! ```

use std::collections::HashMap;
use std::fmt;

use thiserror::Error;

use crate::model::TenantId;

/// An origin pattern was refused.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
#[error("invalid origin pattern {pattern:?}: {reason}")]
pub struct OriginError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// An origin split in its parts, lowercase, the port made explicit.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Parts {
    scheme: String,
    host: String,
    port: u16,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Parses `scheme://host[:port]` (what an `Origin` header holds). `None` for anything else, `null` included.
fn parse(origin: &str) -> Option<Parts> {
    let (scheme, authority) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default = default_port(&scheme)?;
    if authority.is_empty()
        || authority
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '@' | '\\'))
    {
        return None;
    }
    // An IPv6 literal keeps its colons inside brackets.
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let port = match port {
        Some(port) => port.parse().ok()?,
        None => default,
    };
    if host.is_empty() {
        return None;
    }
    Some(Parts {
        scheme,
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// One allowed origin, possibly with a `*.` subdomain wildcard.
#[derive(Clone, PartialEq, Eq)]
pub struct OriginPattern {
    source: String,
    parts: Parts,
    /// `*.host`: any subdomain of `parts.host`, not the host itself.
    subdomains: bool,
}

impl OriginPattern {
    /// Parses and validates a pattern.
    pub fn new(pattern: &str) -> Result<Self, OriginError> {
        let invalid = |reason| OriginError {
            pattern: pattern.to_owned(),
            reason,
        };
        let (subdomains, plain) = match pattern.split_once("://*.") {
            Some((scheme, rest)) => (true, format!("{scheme}://{rest}")),
            None => (false, pattern.to_owned()),
        };
        if plain.contains('*') {
            return Err(invalid("`*` is allowed only as `*.` at the start of the host"));
        }
        let parts = parse(&plain)
            .ok_or_else(|| invalid("must be scheme://host[:port] with scheme http or https, and no path"))?;
        Ok(Self {
            source: pattern.to_owned(),
            parts,
            subdomains,
        })
    }

    fn matches(&self, origin: &Parts) -> bool {
        if origin.scheme != self.parts.scheme || origin.port != self.parts.port {
            return false;
        }
        if self.subdomains {
            origin
                .host
                .strip_suffix(&self.parts.host)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
        } else {
            origin.host == self.parts.host
        }
    }
}

impl fmt::Debug for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.source, f)
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The origins each tenant allows. A tenant without any allows no cross-origin browser request.
#[derive(Clone, Default, Debug)]
pub struct AllowedOrigins {
    by_tenant: HashMap<TenantId, Vec<OriginPattern>>,
}

impl AllowedOrigins {
    /// No tenant allows any other origin.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows `pattern` for `tenant`.
    pub fn allow(mut self, tenant: &TenantId, pattern: &str) -> Result<Self, OriginError> {
        let pattern = OriginPattern::new(pattern)?;
        self.by_tenant.entry(tenant.clone()).or_default().push(pattern);
        Ok(self)
    }

    /// Replaces every pattern of `tenant` with `patterns` (none: no other site's pages).
    #[must_use]
    pub fn with_patterns(mut self, tenant: &TenantId, patterns: Vec<OriginPattern>) -> Self {
        self.by_tenant.insert(tenant.clone(), patterns);
        self
    }

    /// The patterns `tenant` allows.
    pub fn of(&self, tenant: &TenantId) -> &[OriginPattern] {
        self.by_tenant.get(tenant).map_or(&[], Vec::as_slice)
    }

    /// Whether a page of `origin` (an `Origin` header's value) may talk to `tenant`.
    pub fn allows(&self, tenant: &TenantId, origin: &str) -> bool {
        parse(origin).is_some_and(|origin| self.of(tenant).iter().any(|p| p.matches(&origin)))
    }

    /// Whether some tenant allows `origin`: the check before the tenant is known (a WebSocket handshake, a CORS
    /// preflight, which carry no token).
    pub fn allows_some_tenant(&self, origin: &str) -> bool {
        parse(origin).is_some_and(|origin| self.by_tenant.values().flatten().any(|p| p.matches(&origin)))
    }
}

/// The `Origin` of a request when it is a cross-origin one: present, and its host and port differ from the
/// request's `Host` (the server's own pages are same-origin, whatever the tenants allow). The scheme is not
/// compared: behind a TLS-terminating proxy the server cannot see it.
pub fn cross_origin<'a>(origin: Option<&'a str>, host: Option<&str>) -> Option<&'a str> {
    let origin = origin?;
    let same = host.is_some_and(|host| {
        origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
    });
    (!same).then_some(origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> TenantId {
        TenantId::new("shop").expect("id")
    }

    #[test]
    fn exact_origins_match_scheme_host_and_port() {
        let origins = AllowedOrigins::new()
            .allow(&shop(), "https://shop.example")
            .and_then(|o| o.allow(&shop(), "http://127.0.0.1:5555"))
            .expect("valid");
        assert!(origins.allows(&shop(), "https://shop.example"));
        assert!(origins.allows(&shop(), "https://shop.example:443"));
        assert!(origins.allows(&shop(), "HTTPS://Shop.Example"));
        assert!(origins.allows(&shop(), "http://127.0.0.1:5555"));
        assert!(!origins.allows(&shop(), "http://127.0.0.1:5556"));
        assert!(!origins.allows(&shop(), "http://shop.example"));
        assert!(!origins.allows(&shop(), "https://shop.example:8443"));
        assert!(!origins.allows(&shop(), "https://shop.example.evil.example"));
        assert!(!origins.allows(&shop(), "null"));
        assert!(!origins.allows(&shop(), ""));
        assert!(!origins.allows(&TenantId::new("other").expect("id"), "https://shop.example"));
        assert!(origins.allows_some_tenant("https://shop.example"));
        assert!(!origins.allows_some_tenant("https://evil.example"));
    }

    #[test]
    fn wildcards_cover_subdomains_only() {
        let origins = AllowedOrigins::new()
            .allow(&shop(), "https://*.shop.example")
            .expect("valid");
        assert!(origins.allows(&shop(), "https://eu.shop.example"));
        assert!(origins.allows(&shop(), "https://a.b.shop.example"));
        assert!(!origins.allows(&shop(), "https://shop.example"));
        assert!(!origins.allows(&shop(), "https://evilshop.example"));
        assert!(!origins.allows(&shop(), "http://eu.shop.example"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for pattern in [
            "shop.example",
            "https://shop.example/",
            "https://shop.example/path",
            "ftp://shop.example",
            "https://*shop.example",
            "https://shop.*.example",
            "https://",
            "https://shop.example:99999",
            "https://user@shop.example",
            "*",
        ] {
            assert!(OriginPattern::new(pattern).is_err(), "{pattern}");
        }
        assert!(OriginPattern::new("http://[::1]:8080").is_ok());
    }

    #[test]
    fn same_origin_requests_are_not_cross_origin() {
        assert_eq!(cross_origin(None, Some("kf.example")), None);
        assert_eq!(cross_origin(Some("https://kf.example"), Some("kf.example")), None);
        assert_eq!(
            cross_origin(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")),
            None
        );
        assert_eq!(
            cross_origin(Some("http://127.0.0.1:5555"), Some("127.0.0.1:8080")),
            Some("http://127.0.0.1:5555")
        );
        assert_eq!(
            cross_origin(Some("https://kf.example"), None),
            Some("https://kf.example")
        );
    }
}
