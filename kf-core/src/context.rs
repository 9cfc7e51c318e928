//! Visitor context: where a visitor came from, what it browses with, and the pages it has seen.
//!
//! The page reports what it knows (a `context` frame: referrer, landing page, UTM parameters, user agent…) and
//! each page view (`page` frames). The engine keeps this per visitor **in memory** ([`Trails`], bounded), so a
//! page view costs no database write; when the visitor opens a conversation a [`ConversationContext`] summary is
//! stored once, so the assigned agent still sees it after a restart.
//!
//! The user agent is parsed with `woothee`: a small pure-Rust parser of the cross-language woothee project,
//! shipping its rules as code (no data file to load or keep current at run time) and classifying devices into
//! the categories an agent needs (pc, smartphone, crawler…).
//!
//! **Why `woothee` (0.13, whose rules date from 2021) is kept.** Browsers froze their user agents since then
//! (Chrome's "reduced" UA: a fixed `Windows NT 10.0`, `Android 10; K` and a `.0.0.0` minor version; Safari's
//! fixed `Mac OS X 10_15_7`), so what a 2021 rule set reads from a 2024 browser is what any newer one reads: the
//! tests below parse current Chrome, Edge (`Edg/`), Firefox, Safari on macOS and iOS, Chrome on iOS (`CriOS`),
//! Chrome and Samsung Internet on Android and WeChat's in-app browser, and get browser, version, OS and device
//! type right. What no user-agent parser can tell any more (Windows 11 from 10, the Android version and model
//! behind `Android 10; K`, an iPad in desktop mode from a Mac) needs client hints, which a page can put in its
//! `context` report. The alternative, `ua-parser` (the uap-core regexes), is maintained but loads a ≈ 200 KB
//! YAML of regexes at start-up that kf would have to ship and refresh, pulls in a regex engine, and has no
//! device type (desktop, mobile, tablet) — the one thing agents use most here. One gap of woothee's is filled
//! here: WeChat's in-app browser (woothee says `Webview`) is named `WeChat` with its version, the browser most
//! Chinese visitors arrive with.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::limits::{Limits, MAX_CONTEXT_TEXT_BYTES, MAX_URL_BYTES, MAX_USER_AGENT_BYTES};
use crate::model::{Conversation, ConversationId, TenantId, Timestamp, VisitorId};

/// A `context` or `page` report was refused.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
#[non_exhaustive]
pub enum ContextError {
    /// A URL is not an absolute `http`/`https` URL, is too long or contains control characters or spaces.
    #[error("`{field}` must be an absolute http(s) URL of at most {MAX_URL_BYTES} bytes")]
    InvalidUrl {
        /// The field.
        field: &'static str,
    },
    /// A text field is too long or contains control characters.
    #[error("`{field}` must be at most {max} bytes without control characters")]
    InvalidText {
        /// The field.
        field: &'static str,
        /// Its limit.
        max: usize,
    },
}

/// Campaign parameters of the landing page (`utm_source`, …).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Utm {
    /// `utm_source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `utm_medium`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    /// `utm_campaign`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// `utm_term`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    /// `utm_content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

impl Utm {
    fn is_empty(&self) -> bool {
        self == &Utm::default()
    }
}

/// What a visitor's page reports about it (the `context` frame). Every field is optional.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ContextReport {
    /// `document.referrer` of the landing page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// The first page of the visit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing_page: Option<String>,
    /// Campaign parameters.
    #[serde(
        default,
        skip_serializing_if = "Utm::is_empty",
        deserialize_with = "crate::protocol::object_only"
    )]
    pub utm: Utm,
    /// `navigator.userAgent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Screen size, e.g. `"1920x1080"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
    /// `navigator.language`, e.g. `"de-DE"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

fn check_url(field: &'static str, url: &str) -> Result<(), ContextError> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let absolute = lower.starts_with("http://") || lower.starts_with("https://");
    let clean = !url.chars().any(|c| c.is_control() || c.is_whitespace());
    if absolute && clean && url.len() <= MAX_URL_BYTES && url.len() > "http://".len() {
        Ok(())
    } else {
        Err(ContextError::InvalidUrl { field })
    }
}

fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), ContextError> {
    if text.len() <= max && !text.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(ContextError::InvalidText { field, max })
    }
}

impl ContextReport {
    /// Checks lengths and URLs.
    pub fn validate(&self) -> Result<(), ContextError> {
        if let Some(referrer) = &self.referrer {
            check_url("referrer", referrer)?;
        }
        if let Some(landing) = &self.landing_page {
            check_url("landing_page", landing)?;
        }
        let utm = &self.utm;
        for (field, value) in [
            ("utm.source", &utm.source),
            ("utm.medium", &utm.medium),
            ("utm.campaign", &utm.campaign),
            ("utm.term", &utm.term),
            ("utm.content", &utm.content),
            ("screen", &self.screen),
            ("language", &self.language),
        ] {
            if let Some(value) = value {
                check_text(field, value, MAX_CONTEXT_TEXT_BYTES)?;
            }
        }
        if let Some(agent) = &self.user_agent {
            check_text("user_agent", agent, MAX_USER_AGENT_BYTES)?;
        }
        Ok(())
    }
}

/// One page view (the `page` frame), stamped with the server's time.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PageView {
    /// The page's URL.
    pub url: String,
    /// Its title, when the page sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// When the server received it.
    pub at: Timestamp,
}

impl PageView {
    /// A view of `url` received at `at`, without a title. Not validated: see [`PageView::validate`].
    pub fn new(url: impl Into<String>, at: Timestamp) -> Self {
        Self {
            url: url.into(),
            title: None,
            at,
        }
    }

    /// Sets the page title.
    #[must_use]
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Checks the URL and the title's length.
    pub fn validate(&self) -> Result<(), ContextError> {
        check_url("url", &self.url)?;
        if let Some(title) = &self.title {
            check_text("title", title, MAX_CONTEXT_TEXT_BYTES)?;
        }
        Ok(())
    }
}

/// The kind of device, from the user agent.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeviceType {
    /// A desktop or laptop computer.
    Desktop,
    /// A phone.
    Mobile,
    /// A tablet.
    Tablet,
    /// A crawler or other robot.
    Bot,
    /// A console, TV or other appliance.
    Other,
    /// The user agent was missing or not recognised.
    #[default]
    Unknown,
}

/// Device, browser and operating system parsed from a user agent.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Device {
    /// Desktop, mobile, tablet…
    #[serde(rename = "type")]
    pub kind: DeviceType,
    /// Browser name (`Chrome`, `Firefox`, `Safari`…), when recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    /// Browser version, when recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_version: Option<String>,
    /// Operating system (`Windows 10`, `Mac OSX`, `iPhone`, `Android`…), when recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// Operating system version, when recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
}

impl Device {
    /// Parses a user agent string. Never fails: what is not recognised is left out.
    pub fn parse(user_agent: &str) -> Device {
        let Some(result) = woothee::parser::Parser::new().parse(user_agent) else {
            return Device::default();
        };
        let known = |value: &str| (!value.is_empty() && value != "UNKNOWN").then(|| value.to_owned());
        let kind = match result.category {
            "pc" => DeviceType::Desktop,
            // woothee files tablets under "smartphone": iPads by OS, Android tablets by a missing "Mobile".
            "smartphone" if result.os == "iPad" => DeviceType::Tablet,
            "smartphone" if result.os == "Android" && !user_agent.contains("Mobile") => DeviceType::Tablet,
            "smartphone" | "mobilephone" => DeviceType::Mobile,
            "crawler" => DeviceType::Bot,
            "appliance" | "misc" => DeviceType::Other,
            _ => DeviceType::Unknown,
        };
        let (browser, browser_version) = match wechat_version(user_agent) {
            Some(version) => (Some("WeChat".to_owned()), Some(version.to_owned())),
            None => (known(result.name), known(result.version)),
        };
        Device {
            kind,
            browser,
            browser_version,
            os: known(result.os),
            os_version: known(&result.os_version),
        }
    }
}

/// The version of WeChat's in-app browser (`MicroMessenger/8.0.47.2560(0x28002F30)` → `8.0.47.2560`), which
/// woothee reports as a generic `Webview`.
fn wechat_version(user_agent: &str) -> Option<&str> {
    let (_, rest) = user_agent.split_once("MicroMessenger/")?;
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let version = &rest[..end];
    (!version.is_empty()).then_some(version)
}

/// Where the visitor came from.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Source {
    /// The referrer of the landing page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// The landing page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing_page: Option<String>,
    /// Campaign parameters.
    #[serde(default, skip_serializing_if = "Utm::is_empty")]
    pub utm: Utm,
}

/// The summary of a visitor's context stored with a conversation when it is opened.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConversationContext {
    /// The conversation.
    pub conversation: ConversationId,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its visitor.
    pub visitor: VisitorId,
    /// Referrer, landing page, UTM parameters.
    pub source: Source,
    /// Device, browser and OS.
    pub device: Device,
    /// The raw user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Screen size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
    /// Preferred language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The first page seen in this visit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_page: Option<PageView>,
    /// The page the visitor was on when the summary was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_page: Option<PageView>,
    /// Pages viewed in this visit until then.
    pub page_count: u32,
    /// When the summary was taken.
    pub captured_at: Timestamp,
}

/// One visitor's context as kept in memory.
#[derive(Debug, Default)]
struct Trail {
    report: ContextReport,
    device: Device,
    first_page: Option<PageView>,
    pages: VecDeque<PageView>,
    page_count: u32,
    touched: Timestamp,
}

/// Visitors' contexts and page trails, in memory and bounded (see [`Limits::tracked_visitors`],
/// [`Limits::trail_pages`]). Lost on restart by design: what matters is stored with each conversation.
#[derive(Debug)]
pub struct Trails {
    visitors: Mutex<HashMap<(TenantId, VisitorId), Trail>>,
    max_visitors: usize,
    max_pages: usize,
}

impl Default for Trails {
    fn default() -> Self {
        Self::new(&Limits::default())
    }
}

impl Trails {
    /// Empty trails, bounded by `limits` ([`Limits::tracked_visitors`], [`Limits::trail_pages`]).
    pub fn new(limits: &Limits) -> Self {
        Self {
            visitors: Mutex::default(),
            max_visitors: limits.tracked_visitors,
            max_pages: limits.trail_pages,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(TenantId, VisitorId), Trail>> {
        self.visitors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `change` on a visitor's trail, making room for it if needed.
    fn with<R>(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
        now: Timestamp,
        change: impl FnOnce(&mut Trail) -> R,
    ) -> R {
        let mut visitors = self.lock();
        let key = (tenant.clone(), visitor.clone());
        if !visitors.contains_key(&key) && visitors.len() >= self.max_visitors {
            // Full: forget the visitor heard from least recently (a linear scan, only when full).
            if let Some(oldest) = visitors
                .iter()
                .min_by_key(|(_, t)| t.touched)
                .map(|(k, _)| k.clone())
            {
                visitors.remove(&oldest);
            }
        }
        let trail = visitors.entry(key).or_default();
        trail.touched = now;
        change(trail)
    }

    /// Records a `context` report (validated first). A later report replaces an earlier one.
    pub fn report(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
        report: ContextReport,
        now: Timestamp,
    ) -> Result<Device, ContextError> {
        report.validate()?;
        let device = report
            .user_agent
            .as_deref()
            .map(Device::parse)
            .unwrap_or_default();
        self.with(tenant, visitor, now, |trail| {
            trail.report = report;
            trail.device = device.clone();
        });
        Ok(device)
    }

    /// Records a page view (validated first); keeps the last [`Limits::trail_pages`].
    pub fn page(&self, tenant: &TenantId, visitor: &VisitorId, page: PageView) -> Result<(), ContextError> {
        page.validate()?;
        self.with(tenant, visitor, page.at, |trail| {
            if trail.first_page.is_none() {
                trail.first_page = Some(page.clone());
            }
            while !trail.pages.is_empty() && trail.pages.len() >= self.max_pages {
                trail.pages.pop_front();
            }
            if self.max_pages > 0 {
                trail.pages.push_back(page);
            }
            trail.page_count = trail.page_count.saturating_add(1);
        });
        Ok(())
    }

    /// The visitor's recent pages, oldest first (empty when nothing is known).
    pub fn pages(&self, tenant: &TenantId, visitor: &VisitorId) -> Vec<PageView> {
        self.lock()
            .get(&(tenant.clone(), visitor.clone()))
            .map(|trail| trail.pages.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The page the visitor is on: its last page view, else the landing page of its context report.
    pub fn current_page(&self, tenant: &TenantId, visitor: &VisitorId) -> Option<String> {
        let visitors = self.lock();
        let trail = visitors.get(&(tenant.clone(), visitor.clone()))?;
        trail
            .pages
            .back()
            .map(|page| page.url.clone())
            .or_else(|| trail.report.landing_page.clone())
    }

    /// The summary to store with `conversation`; `None` when the visitor reported nothing.
    pub fn summary(&self, conversation: &Conversation, now: Timestamp) -> Option<ConversationContext> {
        let visitors = self.lock();
        let trail = visitors.get(&(conversation.tenant.clone(), conversation.visitor.clone()))?;
        let report = trail.report.clone();
        Some(ConversationContext {
            conversation: conversation.id,
            tenant: conversation.tenant.clone(),
            visitor: conversation.visitor.clone(),
            source: Source {
                referrer: report.referrer,
                landing_page: report.landing_page,
                utm: report.utm,
            },
            device: trail.device.clone(),
            user_agent: report.user_agent,
            screen: report.screen,
            language: report.language,
            first_page: trail.first_page.clone(),
            last_page: trail.pages.back().cloned(),
            page_count: trail.page_count,
            captured_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
    const SAFARI_IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1";
    const ANDROID_TABLET: &str = "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36";
    const FIREFOX_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
    const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

    fn tenant() -> TenantId {
        TenantId::new("shop").expect("id")
    }

    fn visitor() -> VisitorId {
        VisitorId::new("v1").expect("id")
    }

    fn page(url: &str, at: u64) -> PageView {
        PageView {
            url: url.into(),
            title: Some("Title".into()),
            at: Timestamp(at),
        }
    }

    #[test]
    fn user_agents_become_device_browser_and_os() {
        let chrome = Device::parse(CHROME_WINDOWS);
        assert_eq!(chrome.kind, DeviceType::Desktop);
        assert_eq!(chrome.browser.as_deref(), Some("Chrome"));
        assert_eq!(chrome.browser_version.as_deref(), Some("120.0.0.0"));
        assert_eq!(chrome.os.as_deref(), Some("Windows 10"));
        let iphone = Device::parse(SAFARI_IPHONE);
        assert_eq!(iphone.kind, DeviceType::Mobile);
        assert_eq!(iphone.browser.as_deref(), Some("Safari"));
        assert_eq!(iphone.os.as_deref(), Some("iPhone"));
        assert_eq!(Device::parse(SAFARI_IPAD).kind, DeviceType::Tablet);
        assert_eq!(Device::parse(ANDROID_TABLET).kind, DeviceType::Tablet);
        let firefox = Device::parse(FIREFOX_LINUX);
        assert_eq!(
            (firefox.kind, firefox.browser.as_deref()),
            (DeviceType::Desktop, Some("Firefox"))
        );
        assert_eq!(firefox.os.as_deref(), Some("Linux"));
        assert_eq!(Device::parse(GOOGLEBOT).kind, DeviceType::Bot);
        assert_eq!(Device::parse("curl-ish nonsense"), Device::default());
        assert_eq!(Device::parse(""), Device::default());
    }

    /// Current browsers (user agents as they send them in late 2024), parsed by the 2021 rules.
    #[test]
    fn current_browsers_are_recognised() {
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                (DeviceType::Desktop, "Chrome", "131.0.0.0", "Windows 10"),
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
                (DeviceType::Desktop, "Edge", "131.0.2903.86", "Windows 10"),
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
                (DeviceType::Desktop, "Firefox", "133.0", "Windows 10"),
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
                (DeviceType::Desktop, "Safari", "18.1", "Mac OSX"),
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1.1 Mobile/15E148 Safari/604.1",
                (DeviceType::Mobile, "Safari", "18.1.1", "iPhone"),
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
                (DeviceType::Mobile, "Chrome", "131.0.6778.73", "iPhone"),
            ),
            (
                "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
                (DeviceType::Mobile, "Chrome", "131.0.0.0", "Android"),
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
                (DeviceType::Mobile, "SamsungBrowser", "26.0", "Android"),
            ),
            (
                "Mozilla/5.0 (Linux; Android 13; V2055A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 MMWEBID/2247 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64",
                (DeviceType::Mobile, "WeChat", "8.0.47.2560", "Android"),
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.44(0x18002c2d) NetType/WIFI Language/zh_CN",
                (DeviceType::Mobile, "WeChat", "8.0.44", "iPhone"),
            ),
        ];
        for (user_agent, (kind, browser, version, os)) in cases {
            let device = Device::parse(user_agent);
            assert_eq!(
                (
                    device.kind,
                    device.browser.as_deref(),
                    device.browser_version.as_deref(),
                    device.os.as_deref()
                ),
                (kind, Some(browser), Some(version), Some(os)),
                "{user_agent}"
            );
        }
        assert_eq!(wechat_version("MicroMessenger/"), None);
        assert_eq!(wechat_version("x MicroMessenger/8.0"), Some("8.0"));
    }

    #[test]
    fn reports_and_pages_are_validated() {
        let good = ContextReport {
            referrer: Some("https://search.example/?q=shoes".into()),
            landing_page: Some("https://shop.example/shoes?utm_source=news".into()),
            ..ContextReport::default()
        };
        assert_eq!(good.validate(), Ok(()));
        for bad in [
            "javascript:alert(1)",
            "/relative",
            "https://a b",
            "http://",
            "ftp://x.example",
        ] {
            let report = ContextReport {
                landing_page: Some(bad.into()),
                ..ContextReport::default()
            };
            assert_eq!(
                report.validate(),
                Err(ContextError::InvalidUrl {
                    field: "landing_page"
                }),
                "{bad}"
            );
        }
        let long = format!("https://x.example/{}", "a".repeat(MAX_URL_BYTES));
        assert!(page(&long, 1).validate().is_err());
        let mut titled = page("https://x.example/", 1);
        titled.title = Some("t".repeat(MAX_CONTEXT_TEXT_BYTES + 1));
        assert!(matches!(
            titled.validate(),
            Err(ContextError::InvalidText { field: "title", .. })
        ));
        let report = ContextReport {
            utm: Utm {
                campaign: Some("a\u{0}b".into()),
                ..Utm::default()
            },
            ..ContextReport::default()
        };
        assert!(matches!(
            report.validate(),
            Err(ContextError::InvalidText {
                field: "utm.campaign",
                ..
            })
        ));
    }

    #[test]
    fn the_trail_is_bounded_and_summarised() {
        let trails = Trails::default();
        let report = ContextReport {
            referrer: Some("https://search.example/".into()),
            user_agent: Some(SAFARI_IPHONE.into()),
            language: Some("de-DE".into()),
            ..ContextReport::default()
        };
        let device = trails
            .report(&tenant(), &visitor(), report, Timestamp(1))
            .expect("report");
        assert_eq!(device.kind, DeviceType::Mobile);
        for n in 0..(Limits::default().trail_pages as u64 + 10) {
            trails
                .page(
                    &tenant(),
                    &visitor(),
                    page(&format!("https://shop.example/p{n}"), n + 10),
                )
                .expect("page");
        }
        assert!(trails.page(&tenant(), &visitor(), page("nope", 1)).is_err());
        let pages = trails.pages(&tenant(), &visitor());
        assert_eq!(pages.len(), Limits::default().trail_pages);
        assert_eq!(pages[0].url, "https://shop.example/p10");
        let conversation = Conversation::new(
            ConversationId::generate(),
            tenant(),
            visitor(),
            "support".parse().expect("id"),
            Timestamp(100),
        );
        let summary = trails.summary(&conversation, Timestamp(100)).expect("summary");
        assert_eq!(summary.page_count, 60);
        assert_eq!(
            summary.first_page.map(|p| p.url).as_deref(),
            Some("https://shop.example/p0")
        );
        assert_eq!(
            summary.last_page.map(|p| p.url).as_deref(),
            Some("https://shop.example/p59")
        );
        assert_eq!(summary.device.os.as_deref(), Some("iPhone"));
        assert_eq!(
            summary.source.referrer.as_deref(),
            Some("https://search.example/")
        );
        let stranger = Conversation {
            visitor: "v2".parse().expect("id"),
            ..conversation
        };
        assert_eq!(trails.summary(&stranger, Timestamp(100)), None);
    }

    #[test]
    fn the_least_recently_active_visitor_is_forgotten_first() {
        let most = 100;
        let trails = Trails::new(&Limits::default().with_tracked_visitors(most));
        for n in 0..most as u64 {
            let visitor = VisitorId::new(format!("v{n}")).expect("id");
            trails
                .page(&tenant(), &visitor, page("https://x.example/", n + 1))
                .expect("page");
        }
        // v0 is the oldest; touch v1 so it is not.
        trails
            .page(
                &tenant(),
                &"v1".parse().expect("id"),
                page("https://x.example/", 1_000_000),
            )
            .expect("page");
        trails
            .page(
                &tenant(),
                &"new".parse().expect("id"),
                page("https://x.example/", 1_000_001),
            )
            .expect("page");
        assert!(trails.pages(&tenant(), &"v0".parse().expect("id")).is_empty());
        assert_eq!(trails.pages(&tenant(), &"v1".parse().expect("id")).len(), 2);
        assert_eq!(trails.lock().len(), most);
    }
}
