//! Entry points: how a visitor reaches a group.
//!
//! An [`EntryPoint`] is a tenant's named way in — a widget, a channel, a set of pages — that leads to one group
//! and may bring its own welcome message. A widget or channel names its entry point in `open`; a visitor that
//! names none is routed by the page it is on, matched against the entry points' [`PageRule`]s.
//!
//! Page rule syntax (kept small on purpose):
//!
//! - `https://shop.example/pricing*` — a **URL pattern**: scheme (`http` or `https`), host, then path and query.
//!   `*` matches any run of characters (also none); everything else matches itself. Without a `*` the URL must
//!   be exactly that. A `*` in the host stays inside the host (`https://*.shop.example/*` matches every
//!   subdomain, not `https://evil.example/x.shop.example/`).
//! - `shop.example/pricing` — a **host and path prefix**: both schemes, that host, and any path (with any query)
//!   that starts with `/pricing`; `shop.example` alone is the whole site, `*/pricing` any host. `*` works as
//!   above.
//!
//! Host and scheme are compared case-insensitively, the path and query case-sensitively. A port is part of the
//! host (`shop.example` does not match `shop.example:8080`), but a scheme's default port is no port:
//! `https://shop.example:443/x` is `https://shop.example/x`, on both sides (a host and path prefix drops `:80`
//! and `:443`). Paths are compared percent-decoded, on both sides: `/caf%C3%A9` is `/café`, `/%70ricing` is
//! `/pricing` (the query is compared as written). The page URL's `#fragment` and userinfo are ignored; rules may
//! not contain `#`, whitespace or control characters.
//!
//! **Why no `url`/`globset`/`wildmatch` here.** A page rule is not a URL (`*` in the host, no scheme), so `url`
//! could parse only the page's side, and it would bring IDNA with its Unicode tables into kf-core for the three
//! things needed here — scheme, host with the default port dropped, a percent-decoded path — which this module
//! does in a few lines with the rust-url project's own `percent-encoding`. `globset` matches file paths (`/` is
//! special, `**`, classes) and `wildmatch` treats `?` as a wildcard, which every URL query contains; the `*`-only
//! matcher below is linear, bounded by the rule's and the URL's lengths, and tested.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::limits::{MAX_ENTRY_WELCOME_BYTES, MAX_PAGE_RULE_BYTES, MAX_PAGE_RULES};
use crate::model::{EntryPointId, GroupId, TenantId};
use crate::prechat::PrechatField;

/// An entry point or one of its page rules was refused.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
#[non_exhaustive]
pub enum EntryPointError {
    /// A page rule breaks the syntax.
    #[error("invalid page rule {rule:?}: {reason}")]
    InvalidRule {
        /// The rule as given.
        rule: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// More than [`MAX_PAGE_RULES`] page rules.
    #[error("an entry point has at most {MAX_PAGE_RULES} page rules")]
    TooManyRules,
    /// The welcome message is empty, too long or has control characters other than newline and tab.
    #[error(
        "welcome must be 1 to {MAX_ENTRY_WELCOME_BYTES} bytes, without control characters other than newline and tab"
    )]
    InvalidWelcome,
    /// The pre-chat form is invalid.
    #[error(transparent)]
    Prechat(crate::prechat::PrechatError),
}

/// A page rule: which pages lead to an entry point (syntax in the [module docs](self)).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PageRule {
    source: String,
    /// `None`: both `http` and `https`.
    scheme: Option<String>,
    /// Lowercase host glob.
    host: String,
    /// Path-and-query glob (starts with `/`).
    path: String,
}

impl PageRule {
    /// Parses and validates a rule.
    pub fn new(rule: impl Into<String>) -> Result<Self, EntryPointError> {
        let source = rule.into();
        let invalid = |reason| EntryPointError::InvalidRule {
            rule: source.clone(),
            reason,
        };
        if source.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if source.len() > MAX_PAGE_RULE_BYTES {
            return Err(invalid("longer than 512 bytes"));
        }
        if source.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(invalid("contains whitespace or control characters"));
        }
        if source.contains('#') {
            return Err(invalid("contains '#' (fragments are not matched)"));
        }
        let (scheme, rest) = match source.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = scheme.to_ascii_lowercase();
                if scheme != "http" && scheme != "https" {
                    return Err(invalid("the scheme must be http or https"));
                }
                (Some(scheme), rest)
            }
            None => (None, source.as_str()),
        };
        let (host, path) = split_authority(rest);
        if host.is_empty() {
            return Err(invalid("names no host (use '*' for any host)"));
        }
        let host = without_default_port(host, scheme.as_deref());
        let path = decoded_path(path);
        let path = path.as_str();
        if host.contains('@') {
            return Err(invalid("the host must not contain '@'"));
        }
        if scheme.is_none() && path.starts_with('?') {
            return Err(invalid(
                "a host and path prefix must not have a query (use a URL pattern)",
            ));
        }
        let mut path = if path.is_empty() || path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        if scheme.is_none() {
            // A host and path prefix: any continuation.
            path.push('*');
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            scheme,
            path,
            source,
        })
    }

    /// The rule as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the page at `url` (an absolute `http(s)` URL) matches. Anything else matches no rule.
    pub fn matches(&self, url: &str) -> bool {
        let url = url.split_once('#').map_or(url, |(before, _)| before);
        let Some((scheme, rest)) = url.split_once("://") else {
            return false;
        };
        let scheme = scheme.to_ascii_lowercase();
        let scheme_ok = match &self.scheme {
            Some(wanted) => *wanted == scheme,
            None => scheme == "http" || scheme == "https",
        };
        if !scheme_ok {
            return false;
        }
        let (authority, path) = split_authority(rest);
        // Userinfo is not part of the host.
        let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        let host = without_default_port(host, Some(&scheme)).to_ascii_lowercase();
        let path = decoded_path(path);
        let path = if path.is_empty() || path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        glob(self.host.as_bytes(), host.as_bytes()) && glob(self.path.as_bytes(), path.as_bytes())
    }
}

/// `host` without its port when that is `scheme`'s default (`None`: either scheme's).
fn without_default_port<'a>(host: &'a str, scheme: Option<&str>) -> &'a str {
    let defaults: &[&str] = match scheme {
        Some("http") => &[":80"],
        Some("https") => &[":443"],
        Some(_) => &[],
        None => &[":80", ":443"],
    };
    defaults
        .iter()
        .find_map(|port| host.strip_suffix(port))
        .unwrap_or(host)
}

/// `path[?query]` with the path percent-decoded (invalid UTF-8 replaced), the query as written.
fn decoded_path(path: &str) -> String {
    let (path, query) = match path.find('?') {
        Some(at) => path.split_at(at),
        None => (path, ""),
    };
    let mut decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned();
    decoded.push_str(query);
    decoded
}

/// Splits `host[/path][?query]` after the scheme into the host and the rest.
fn split_authority(rest: &str) -> (&str, &str) {
    match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    }
}

/// Wildcard match: `*` matches any run of bytes. Linear backtracking to the last `*`, so O(pattern × text) at
/// worst; both are bounded in length.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

impl fmt::Debug for PageRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PageRule({:?})", self.source)
    }
}

impl fmt::Display for PageRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl TryFrom<String> for PageRule {
    type Error = EntryPointError;
    fn try_from(value: String) -> Result<Self, EntryPointError> {
        Self::new(value)
    }
}

impl From<PageRule> for String {
    fn from(rule: PageRule) -> String {
        rule.source
    }
}

impl Serialize for PageRule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for PageRule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        PageRule::new(source).map_err(serde::de::Error::custom)
    }
}

/// A tenant's way in to a group: a widget, a channel, or the pages its rules match.
///
/// ```
/// use kf_core::entry::{EntryPoint, PageRule};
/// use kf_core::model::{EntryPointId, GroupId, TenantId};
///
/// let entry = EntryPoint::new(
///     TenantId::new("shop").unwrap(),
///     EntryPointId::new("pricing-widget").unwrap(),
///     GroupId::new("sales").unwrap(),
/// )
/// .with_welcome("Questions about our plans? Ask away.")
/// .with_page(PageRule::new("shop.example/pricing").unwrap());
/// assert!(entry.validate().is_ok());
/// assert!(entry.matches_page("https://shop.example/pricing?plan=pro"));
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EntryPoint {
    /// The tenant.
    pub tenant: TenantId,
    /// Its id, named by a widget or channel in `open`.
    pub id: EntryPointId,
    /// The group its visitors talk to.
    pub group: GroupId,
    /// Posted (as the system) in each new conversation opened through it, instead of the group's welcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub welcome: Option<String>,
    /// Pages whose visitors come through it when they name no entry point and no group; tried in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pages: Vec<PageRule>,
    /// The questions a widget asks before a conversation starts through it (none: no pre-chat form).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prechat: Vec<PrechatField>,
}

impl EntryPoint {
    /// An entry point to `group`, without welcome or page rules.
    pub fn new(tenant: TenantId, id: EntryPointId, group: GroupId) -> Self {
        Self {
            tenant,
            id,
            group,
            welcome: None,
            pages: Vec::new(),
            prechat: Vec::new(),
        }
    }

    /// Sets the welcome message posted in each new conversation opened through it.
    #[must_use]
    pub fn with_welcome(mut self, welcome: impl Into<String>) -> Self {
        self.welcome = Some(welcome.into());
        self
    }

    /// Adds a page rule (tried after the ones added before).
    #[must_use]
    pub fn with_page(mut self, rule: PageRule) -> Self {
        self.pages.push(rule);
        self
    }

    /// Replaces the page rules.
    #[must_use]
    pub fn with_pages(mut self, rules: impl IntoIterator<Item = PageRule>) -> Self {
        self.pages = rules.into_iter().collect();
        self
    }

    /// Sets the pre-chat form.
    #[must_use]
    pub fn with_prechat(mut self, form: impl IntoIterator<Item = PrechatField>) -> Self {
        self.prechat = form.into_iter().collect();
        self
    }

    /// Checks the welcome message, the number of page rules (each rule is checked when it is made) and the
    /// pre-chat form.
    pub fn validate(&self) -> Result<(), EntryPointError> {
        crate::prechat::check_form(&self.prechat).map_err(EntryPointError::Prechat)?;
        if self.pages.len() > MAX_PAGE_RULES {
            return Err(EntryPointError::TooManyRules);
        }
        if let Some(welcome) = &self.welcome {
            let ok = !welcome.trim().is_empty()
                && welcome.len() <= MAX_ENTRY_WELCOME_BYTES
                && !welcome.chars().any(|c| c.is_control() && c != '\n' && c != '\t');
            if !ok {
                return Err(EntryPointError::InvalidWelcome);
            }
        }
        Ok(())
    }

    /// Whether one of its page rules matches the page at `url`.
    pub fn matches_page(&self, url: &str) -> bool {
        self.pages.iter().any(|rule| rule.matches(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> PageRule {
        PageRule::new(text).expect("valid rule")
    }

    #[test]
    fn url_patterns_match_with_wildcards() {
        let pricing = rule("https://shop.example/pricing*");
        assert!(pricing.matches("https://shop.example/pricing"));
        assert!(pricing.matches("https://shop.example/pricing/enterprise?plan=2"));
        assert!(pricing.matches("HTTPS://Shop.Example/pricing#faq"));
        assert!(
            !pricing.matches("http://shop.example/pricing"),
            "the scheme is part of it"
        );
        assert!(
            !pricing.matches("https://shop.example/Pricing"),
            "paths are case-sensitive"
        );
        assert!(!pricing.matches("https://shop.example.evil/pricing"));
        assert!(!pricing.matches("https://shop.example/"));
        let exact = rule("https://shop.example/");
        assert!(exact.matches("https://shop.example"));
        assert!(exact.matches("https://shop.example/#top"));
        assert!(!exact.matches("https://shop.example/?q=1"));
        let middle = rule("https://shop.example/*/checkout");
        assert!(middle.matches("https://shop.example/de/checkout"));
        assert!(middle.matches("https://shop.example/de/eu/checkout"));
        assert!(!middle.matches("https://shop.example/de/checkout/done"));
        let query = rule("https://shop.example/?ref=*");
        assert!(query.matches("https://shop.example?ref=ad"));
    }

    #[test]
    fn host_wildcards_stay_in_the_host() {
        let subdomains = rule("https://*.shop.example/*");
        assert!(subdomains.matches("https://de.shop.example/boots"));
        assert!(subdomains.matches("https://de.shop.example"));
        assert!(!subdomains.matches("https://shop.example/boots"));
        assert!(!subdomains.matches("https://evil.example/x.shop.example/"));
        assert!(!subdomains.matches("https://evil.example?.shop.example/"));
        assert!(rule("https://shop.example/*").matches("https://user@shop.example/a"));
        assert!(!rule("https://shop.example/*").matches("https://shop.example@evil.example/a"));
    }

    #[test]
    fn host_and_path_prefixes_match_both_schemes() {
        let help = rule("shop.example/help");
        assert!(help.matches("https://shop.example/help"));
        assert!(help.matches("http://shop.example/help/returns?x=1"));
        assert!(help.matches("https://shop.example/helpdesk"), "a plain prefix");
        assert!(!help.matches("https://shop.example/"));
        assert!(!help.matches("https://blog.shop.example/help"));
        assert!(!help.matches("ftp://shop.example/help"));
        let site = rule("Shop.Example");
        assert!(site.matches("https://shop.example"));
        assert!(site.matches("https://shop.example/anything?at=all"));
        assert!(!site.matches("https://shop.example.evil/"));
        assert!(
            !site.matches("https://shop.example:8080/"),
            "a port is part of the host"
        );
        let anywhere = rule("*/support");
        assert!(anywhere.matches("https://a.example/support/1"));
        assert!(!anywhere.matches("https://a.example/help/support"));
        assert!(!rule("shop.example").matches("not a url"));
    }

    #[test]
    fn default_ports_are_no_port() {
        let https = rule("https://shop.example/pricing*");
        assert!(https.matches("https://shop.example:443/pricing"));
        assert!(https.matches("HTTPS://Shop.Example:443/pricing?x=1"));
        assert!(!https.matches("https://shop.example:8443/pricing"));
        assert!(
            !https.matches("https://shop.example:80/pricing"),
            "80 is not https' default"
        );
        let written_with_port = rule("https://shop.example:443/pricing");
        assert!(written_with_port.matches("https://shop.example/pricing"));
        let http = rule("http://shop.example:80/*");
        assert!(http.matches("http://shop.example/a"));
        assert!(http.matches("http://shop.example:80/a"));
        let prefix = rule("shop.example/help");
        assert!(prefix.matches("http://shop.example:80/help/1"));
        assert!(prefix.matches("https://shop.example:443/help"));
        assert!(!prefix.matches("https://shop.example:8080/help"));
        let other_port = rule("shop.example:8080/help");
        assert!(other_port.matches("http://shop.example:8080/help"));
        assert!(!other_port.matches("http://shop.example/help"));
        // Userinfo is no host, and its port-like text is no port.
        assert!(prefix.matches("https://user:443@shop.example/help"));
    }

    #[test]
    fn paths_are_compared_percent_decoded() {
        let cafe = rule("https://shop.example/café/*");
        assert!(cafe.matches("https://shop.example/caf%C3%A9/menu"));
        assert!(cafe.matches("https://shop.example/caf%c3%a9/menu"));
        assert!(cafe.matches("https://shop.example/café/menu"));
        let encoded = rule("shop.example/%E6%94%AF%E6%8C%81");
        assert!(encoded.matches("https://shop.example/支持/faq"));
        assert!(encoded.matches("https://shop.example/%E6%94%AF%E6%8C%81"));
        let pricing = rule("shop.example/pricing");
        assert!(pricing.matches("https://shop.example/%70ricing"));
        assert!(
            !pricing.matches("https://shop.example/%2Fpricing"),
            "an encoded slash is a character"
        );
        // The query is compared as written.
        let query = rule("https://shop.example/p?q=a%20b");
        assert!(query.matches("https://shop.example/p?q=a%20b"));
        assert!(!query.matches("https://shop.example/p?q=a b"));
        // Invalid UTF-8 after decoding matches nothing it should not.
        assert!(!pricing.matches("https://shop.example/%FFpricing"));
    }

    #[test]
    fn bad_rules_are_refused_with_a_reason() {
        for (text, reason) in [
            ("", "must not be empty"),
            ("shop.example/a b", "contains whitespace or control characters"),
            ("shop.example/\u{7}", "contains whitespace or control characters"),
            (
                "https://shop.example/#faq",
                "contains '#' (fragments are not matched)",
            ),
            ("ftp://shop.example/", "the scheme must be http or https"),
            ("https:///pricing", "names no host (use '*' for any host)"),
            ("/pricing", "names no host (use '*' for any host)"),
            ("user@shop.example/", "the host must not contain '@'"),
            (
                "shop.example?x=1",
                "a host and path prefix must not have a query (use a URL pattern)",
            ),
        ] {
            assert_eq!(
                PageRule::new(text),
                Err(EntryPointError::InvalidRule {
                    rule: text.into(),
                    reason
                }),
                "{text:?}"
            );
        }
        let long = format!("shop.example/{}", "a".repeat(MAX_PAGE_RULE_BYTES));
        assert!(PageRule::new(long).is_err());
        let error = PageRule::new("ftp://x").expect_err("refused");
        assert_eq!(
            error.to_string(),
            "invalid page rule \"ftp://x\": the scheme must be http or https"
        );
    }

    #[test]
    fn entry_points_validate_and_round_trip() {
        let id = |s: &str| EntryPointId::new(s).expect("id");
        let mut entry = EntryPoint::new(
            TenantId::new("shop").expect("id"),
            id("pricing-widget"),
            GroupId::new("sales").expect("id"),
        );
        assert_eq!(entry.validate(), Ok(()));
        entry.welcome = Some("  ".into());
        assert_eq!(entry.validate(), Err(EntryPointError::InvalidWelcome));
        entry.welcome = Some("Questions about our plans?\nAsk away.".into());
        assert_eq!(entry.validate(), Ok(()));
        entry.pages = vec![rule("shop.example/pricing"); MAX_PAGE_RULES + 1];
        assert_eq!(entry.validate(), Err(EntryPointError::TooManyRules));
        entry.pages = vec![rule("https://shop.example/pricing*"), rule("shop.example/plans")];
        assert!(entry.matches_page("http://shop.example/plans/pro"));
        assert!(!entry.matches_page("https://shop.example/boots"));
        let json = serde_json::to_value(&entry).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "tenant": "shop", "id": "pricing-widget", "group": "sales",
                "welcome": "Questions about our plans?\nAsk away.",
                "pages": ["https://shop.example/pricing*", "shop.example/plans"]
            })
        );
        let back: EntryPoint = serde_json::from_value(json).expect("parse");
        assert_eq!(back, entry);
        let bad = serde_json::from_value::<EntryPoint>(serde_json::json!({
            "tenant": "shop", "id": "e", "group": "sales", "pages": ["ftp://x"]
        }));
        assert!(bad.is_err());
        let bare: EntryPoint =
            serde_json::from_value(serde_json::json!({"tenant": "shop", "id": "e", "group": "sales"}))
                .expect("defaults");
        assert!(bare.pages.is_empty() && bare.welcome.is_none());
    }

    #[test]
    fn glob_backtracks() {
        assert!(glob(b"a*b*c", b"aXbYbZc"));
        assert!(!glob(b"a*b*c", b"aXbYbZ"));
        assert!(glob(b"*", b""));
        assert!(glob(b"**", b"abc"));
        assert!(!glob(b"", b"a"));
    }
}
