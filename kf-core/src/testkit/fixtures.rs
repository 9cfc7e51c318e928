//! Fixtures shared by the conformance suites: ids, drafts, records.

use crate::context::{ConversationContext, Device, DeviceType, PageView, Source, Utm};
use crate::model::{Actor, ConversationId, EventKind, MessageBody, TenantId, Timestamp};
use crate::quick_replies::{QuickReply, QuickReplyScope};
use crate::store::{ConversationLog, EventDraft, NewConversation, StoreError};

pub(crate) fn id<T: std::str::FromStr>(value: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    match value.parse() {
        Ok(id) => id,
        Err(error) => panic!("bad test id {value:?}: {error:?}"),
    }
}

pub(crate) fn tenant() -> TenantId {
    id("tenant-1")
}

pub(crate) fn visitor(name: &str) -> Actor {
    Actor::Visitor(id(name))
}

pub(crate) fn text(
    author: Actor,
    conversation: ConversationId,
    client_id: Option<&str>,
    text: &str,
) -> EventDraft {
    EventDraft::message(
        conversation,
        author,
        client_id.map(id),
        MessageBody::text(text),
        Timestamp(1_000),
    )
}

pub(crate) fn system(conversation: ConversationId, data: EventKind) -> EventDraft {
    EventDraft::system(conversation, data, Timestamp(2_000))
}

pub(crate) async fn open(store: &dyn ConversationLog, visitor: &str, client_id: &str) -> ConversationId {
    let new = NewConversation {
        id: ConversationId::generate(),
        tenant: tenant(),
        visitor: id(visitor),
        group: id("sales"),
        client_id: id(client_id),
        entry: None,
        fields: Default::default(),
        at: Timestamp(500),
    };
    match store.create_conversation(new).await {
        Ok(created) => created.conversation.id,
        Err(error) => panic!("create_conversation failed: {error}"),
    }
}

pub(crate) fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what} failed: {error}"),
    }
}

pub(crate) fn context_of(conversation: ConversationId, pages: u32) -> ConversationContext {
    ConversationContext {
        conversation,
        tenant: tenant(),
        visitor: id("v1"),
        source: Source {
            referrer: Some("https://search.example/?q=shoes".into()),
            landing_page: Some("https://shop.example/".into()),
            utm: Utm {
                source: Some("newsletter".into()),
                ..Utm::default()
            },
        },
        device: Device {
            kind: DeviceType::Mobile,
            browser: Some("Safari".into()),
            browser_version: Some("17.1".into()),
            os: Some("iPhone".into()),
            os_version: Some("17.1".into()),
        },
        user_agent: Some("Mozilla/5.0 (iPhone)".into()),
        screen: None,
        language: Some("de-DE".into()),
        first_page: Some(PageView {
            url: "https://shop.example/".into(),
            title: None,
            at: Timestamp(10),
        }),
        last_page: Some(PageView {
            url: "https://shop.example/cart".into(),
            title: Some("Cart".into()),
            at: Timestamp(20),
        }),
        page_count: pages,
        captured_at: Timestamp(30),
    }
}

pub(crate) fn quick(reply_id: &str, scope: QuickReplyScope, shortcut: &str, text: &str) -> QuickReply {
    QuickReply {
        id: reply_id.into(),
        tenant: tenant(),
        scope,
        shortcut: shortcut.into(),
        text: text.into(),
    }
}

/// `expect` for the suites (which keep clippy's `expect_used` on): the value, or a panic naming what failed.
pub(crate) trait Must<T> {
    /// The value, or a panic saying `what` failed.
    fn must(self, what: &str) -> T;
}

impl<T, E: std::fmt::Debug> Must<T> for Result<T, E> {
    fn must(self, what: &str) -> T {
        match self {
            Ok(value) => value,
            Err(error) => panic!("{what} failed: {error:?}"),
        }
    }
}

impl<T> Must<T> for Option<T> {
    fn must(self, what: &str) -> T {
        match self {
            Some(value) => value,
            None => panic!("{what}: nothing there"),
        }
    }
}
