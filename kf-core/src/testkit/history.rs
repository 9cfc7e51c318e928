//! The [`History`] conformance suite: text search in Chinese and English, every filter, pages that stay stable
//! while messages arrive, tenant isolation, notes, highlighting and exports. Each function takes a fresh, empty
//! backend that is both a [`ConversationLog`] (to write the history) and a [`History`] (to read it).

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;

use super::fixtures::{id, ok, tenant};
use crate::model::{
    Actor, AgentId, ConversationId, EventKind, GroupId, MessageBody, Seq, TenantId, Timestamp,
};
use crate::store::{
    ConversationLog, EventDraft, ExportFormat, ExportKind, Highlight, History, HistoryCursor, HistoryOrder,
    HistoryQuery, NewConversation, SearchPage, StateFilter, StoreError, export,
};

/// A backend the history suite runs on: a log to write and the history to search. Implemented for every type
/// that is both.
pub trait Searchable: ConversationLog + History {}

impl<T: ConversationLog + History + ?Sized> Searchable for T {}

async fn open_in(
    store: &dyn Searchable,
    tenant: &TenantId,
    visitor: &str,
    group: &str,
    at: u64,
) -> ConversationId {
    let new = NewConversation {
        id: ConversationId::generate(),
        tenant: tenant.clone(),
        visitor: id(visitor),
        group: id(group),
        client_id: id(&format!("open-{}", ConversationId::generate())),
        entry: None,
        fields: Default::default(),
        at: Timestamp(at),
    };
    ok(store.create_conversation(new).await, "create").conversation.id
}

async fn say(
    store: &dyn Searchable,
    conversation: ConversationId,
    author: Actor,
    text: &str,
    at: u64,
) -> Seq {
    let draft = EventDraft::message(conversation, author, None, MessageBody::text(text), Timestamp(at));
    ok(store.append(draft).await, "append message").event.seq
}

async fn event(
    store: &dyn Searchable,
    conversation: ConversationId,
    author: Actor,
    data: EventKind,
    at: u64,
) {
    ok(
        store
            .append(EventDraft::new(conversation, author, data, Timestamp(at)))
            .await,
        "append event",
    );
}

fn visitor(name: &str) -> Actor {
    Actor::Visitor(id(name))
}

fn agent(name: &str) -> Actor {
    Actor::Agent(id(name))
}

async fn search(store: &dyn Searchable, query: &HistoryQuery) -> SearchPage {
    ok(store.search(query).await, "search")
}

/// The texts of a page's hits, sorted.
fn texts(page: &SearchPage) -> Vec<String> {
    let mut texts: Vec<String> = page.hits.iter().map(|hit| hit.text.clone()).collect();
    texts.sort();
    texts
}

fn query(text: &str) -> HistoryQuery {
    HistoryQuery::new(tenant()).text(text)
}

/// Chinese is found by queries of one, two and more characters (no word segmentation needed), English
/// case-insensitively, and nothing of another tenant is ever returned.
pub async fn finds_chinese_and_english_text(store: Arc<dyn Searchable>) {
    let store = &*store;
    let c = open_in(store, &tenant(), "v1", "sales", 100).await;
    say(store, c, visitor("v1"), "请问我的订单什么时候发货？", 110).await;
    say(store, c, agent("a1"), "您的订单已发货，发货单号是 SF123。", 120).await;
    say(store, c, visitor("v1"), "I'd like a REFUND please", 130).await;
    say(store, c, agent("a1"), "Refunds take 3 days.", 140).await;
    say(store, c, visitor("v1"), "thanks", 150).await;
    let other: TenantId = id("tenant-2");
    let elsewhere = open_in(store, &other, "v1", "sales", 100).await;
    say(store, elsewhere, visitor("v1"), "refund and 发货 elsewhere", 160).await;

    let expect = |q: &str, found: &[&str]| {
        let mut found: Vec<String> = found.iter().map(|s| (*s).to_owned()).collect();
        found.sort();
        (q.to_owned(), found)
    };
    let cases = [
        expect(
            "发货",
            &["请问我的订单什么时候发货？", "您的订单已发货，发货单号是 SF123。"],
        ),
        expect("发货单", &["您的订单已发货，发货单号是 SF123。"]),
        expect("货单号是", &["您的订单已发货，发货单号是 SF123。"]),
        expect(
            "订",
            &["请问我的订单什么时候发货？", "您的订单已发货，发货单号是 SF123。"],
        ),
        expect("refund", &["I'd like a REFUND please", "Refunds take 3 days."]),
        expect("REFUND PLEASE", &["I'd like a REFUND please"]),
        expect("  refunds ", &["Refunds take 3 days."]),
        expect("sf", &["您的订单已发货，发货单号是 SF123。"]),
        expect("3 d", &["Refunds take 3 days."]),
        expect("退款", &[]),
        expect("xyz", &[]),
        expect("发货了", &[]),
    ];
    for (text, expected) in cases {
        let page = search(store, &query(&text)).await;
        assert_eq!(texts(&page), expected, "query {text:?}");
        assert!(
            page.hits.iter().all(|hit| hit.conversation.tenant == tenant()),
            "query {text:?}"
        );
        assert_eq!(page.next, None);
    }
    let page = search(store, &HistoryQuery::new(other).text("发货")).await;
    assert_eq!(texts(&page), vec!["refund and 发货 elsewhere".to_owned()]);
    // No text: every message of the tenant, newest first.
    let all = search(store, &HistoryQuery::new(tenant())).await;
    let times: Vec<u64> = all.hits.iter().map(|hit| hit.at.0).collect();
    assert_eq!(times, vec![150, 140, 130, 120, 110]);
    let hit = &all.hits[1];
    assert_eq!(
        (hit.conversation.id, hit.seq, &hit.author),
        (c, Seq(5), &agent("a1"))
    );
    assert!(!hit.note);
}

/// Only ASCII letters fold: other characters — accented Latin, Greek, full-width — match exactly, whatever
/// the length of the query (a trigram index folds more: the backend must not).
pub async fn only_ascii_letters_fold(store: Arc<dyn Searchable>) {
    let store = &*store;
    let c = open_in(store, &tenant(), "v1", "sales", 100).await;
    say(store, c, visitor("v1"), "École ouverte", 110).await;
    say(store, c, visitor("v1"), "ΑΒΓ and ＡＢＣ", 120).await;
    for (text, hits) in [
        ("école", 0),
        ("École", 1),
        ("ÉCOLE OUV", 1),
        ("éCOLE OUV", 0),
        ("École OUV", 1),
        ("é", 0),
        ("αβγ", 0),
        ("ΑΒΓ", 1),
        ("ａｂｃ", 0),
        ("ＡＢＣ", 1),
        ("and ＡＢ", 1),
        ("AND ＡＢ", 1),
    ] {
        let page = search(store, &query(text)).await;
        assert_eq!(page.hits.len(), hits, "query {text:?}");
    }
    // LIKE's and FTS5's special characters are plain text.
    say(store, c, visitor("v1"), r#"100% off_now "quoted" a\b*"#, 130).await;
    for (text, hits) in [
        ("100%", 1),
        ("%", 1),
        ("0% o", 1),
        ("f_n", 1),
        ("_", 1),
        ("x%", 0),
        ("\"quoted\"", 1),
        ("\"", 1),
        ("a\\b", 1),
        ("b*", 1),
        ("OR", 0),
        ("NEAR(", 0),
        ("o*", 0),
    ] {
        let page = search(store, &query(text)).await;
        assert_eq!(page.hits.len(), hits, "query {text:?}");
    }
}

/// Every filter — agent, group, state, rating, date range, label — alone and together, for messages and for
/// conversations.
pub async fn filters_narrow_the_results(store: Arc<dyn Searchable>) {
    let store = &*store;
    let sales = open_in(store, &tenant(), "v1", "sales", 100).await;
    event(
        store,
        sales,
        Actor::System,
        EventKind::Assigned { agent: id("a1") },
        101,
    )
    .await;
    say(store, sales, visitor("v1"), "order one", 110).await;
    event(store, sales, agent("a1"), EventKind::Closed, 111).await;
    event(
        store,
        sales,
        visitor("v1"),
        EventKind::Rated {
            score: 5,
            comment: Some("order fine".into()),
        },
        112,
    )
    .await;
    let billing = open_in(store, &tenant(), "v2", "billing", 200).await;
    event(
        store,
        billing,
        Actor::System,
        EventKind::Assigned { agent: id("a2") },
        201,
    )
    .await;
    say(store, billing, visitor("v2"), "order two", 210).await;
    let queued = open_in(store, &tenant(), "v3", "sales", 300).await;
    say(store, queued, visitor("v3"), "order three", 310).await;
    let low = open_in(store, &tenant(), "v4", "sales", 400).await;
    event(
        store,
        low,
        Actor::System,
        EventKind::Assigned { agent: id("a1") },
        401,
    )
    .await;
    say(store, low, visitor("v4"), "order four", 410).await;
    // Labels: `vip` stays on `low`; `billing` was `vip` once and no longer is; `sales` has another label.
    for (conversation, label, at) in [(low, "vip", 402), (billing, "vip", 202), (sales, "refund", 102)] {
        event(
            store,
            conversation,
            agent("a1"),
            EventKind::Labeled { label: label.into() },
            at,
        )
        .await;
    }
    event(
        store,
        billing,
        agent("a2"),
        EventKind::Unlabeled { label: "vip".into() },
        203,
    )
    .await;
    event(store, low, agent("a1"), EventKind::Closed, 411).await;
    event(
        store,
        low,
        visitor("v4"),
        EventKind::Rated {
            score: 2,
            comment: None,
        },
        412,
    )
    .await;

    let base = || query("order");
    let cases: Vec<(&str, HistoryQuery, Vec<&str>)> = vec![
        (
            "none",
            base(),
            vec!["order four", "order one", "order three", "order two"],
        ),
        (
            "agent a1",
            HistoryQuery {
                agent: Some(id("a1")),
                ..base()
            },
            vec!["order four", "order one"],
        ),
        (
            "group billing",
            HistoryQuery {
                group: Some(id("billing")),
                ..base()
            },
            vec!["order two"],
        ),
        (
            "closed",
            HistoryQuery {
                state: Some(StateFilter::Closed),
                ..base()
            },
            vec!["order four", "order one"],
        ),
        (
            "open",
            HistoryQuery {
                state: Some(StateFilter::Open),
                ..base()
            },
            vec!["order three", "order two"],
        ),
        (
            "queued",
            HistoryQuery {
                state: Some(StateFilter::Queued),
                ..base()
            },
            vec!["order three"],
        ),
        (
            "rated 4+",
            HistoryQuery {
                min_rating: Some(4),
                ..base()
            },
            vec!["order one"],
        ),
        (
            "rated up to 3",
            HistoryQuery {
                max_rating: Some(3),
                ..base()
            },
            vec!["order four"],
        ),
        (
            "rated 1-5",
            HistoryQuery {
                min_rating: Some(1),
                max_rating: Some(5),
                ..base()
            },
            vec!["order four", "order one"],
        ),
        (
            "from 210",
            HistoryQuery {
                from: Some(Timestamp(210)),
                ..base()
            },
            vec!["order four", "order three", "order two"],
        ),
        (
            "until 310",
            HistoryQuery {
                until: Some(Timestamp(310)),
                ..base()
            },
            vec!["order one", "order two"],
        ),
        (
            "sales, a1, closed, 210..",
            HistoryQuery {
                group: Some(id("sales")),
                agent: Some(id("a1")),
                state: Some(StateFilter::Closed),
                from: Some(Timestamp(210)),
                ..base()
            },
            vec!["order four"],
        ),
        (
            "label vip",
            HistoryQuery {
                label: Some("vip".into()),
                ..base()
            },
            vec!["order four"],
        ),
        (
            "label refund",
            HistoryQuery {
                label: Some("refund".into()),
                ..base()
            },
            vec!["order one"],
        ),
        (
            "label names compare exactly",
            HistoryQuery {
                label: Some("VIP".into()),
                ..base()
            },
            vec![],
        ),
        (
            "label nobody has",
            HistoryQuery {
                label: Some("none".into()),
                ..base()
            },
            vec![],
        ),
        (
            "label vip, closed, a1",
            HistoryQuery {
                label: Some("vip".into()),
                state: Some(StateFilter::Closed),
                agent: Some(id("a1")),
                ..base()
            },
            vec!["order four"],
        ),
        (
            "label, no text",
            HistoryQuery {
                label: Some("refund".into()),
                ..HistoryQuery::new(tenant())
            },
            vec!["order one"],
        ),
        (
            "no text, group billing",
            HistoryQuery {
                group: Some(id("billing")),
                ..HistoryQuery::new(tenant())
            },
            vec!["order two"],
        ),
    ];
    for (name, query, expected) in cases {
        let page = search(store, &query).await;
        assert_eq!(texts(&page), expected, "{name}");
        // The same filters select conversations.
        let conversations = ok(store.conversations(&query).await, "conversations");
        let mut found: Vec<ConversationId> = conversations.conversations.iter().map(|(_, c)| c.id).collect();
        found.sort();
        let mut wanted: Vec<ConversationId> = page.hits.iter().map(|hit| hit.conversation.id).collect();
        wanted.sort();
        wanted.dedup();
        if !name.starts_with("from") && !name.starts_with("until") && !name.contains("210") {
            assert_eq!(found, wanted, "conversations, {name}");
        }
    }
    // Conversations' dates are their creation times; their order is creation order.
    let created = HistoryQuery {
        from: Some(Timestamp(200)),
        until: Some(Timestamp(400)),
        ..HistoryQuery::new(tenant())
    };
    let page = ok(store.conversations(&created).await, "conversations");
    let ids: Vec<ConversationId> = page.conversations.iter().map(|(_, c)| c.id).collect();
    assert_eq!(ids, vec![billing, queued]);
    let all = ok(store.conversations(&HistoryQuery::new(tenant())).await, "all");
    let ids: Vec<ConversationId> = all.conversations.iter().map(|(_, c)| c.id).collect();
    assert_eq!(ids, vec![sales, billing, queued, low]);
    let record = &all.conversations[0].1;
    assert_eq!(
        (record.rating, record.last_agent.as_ref()),
        (Some(5), Some(&id::<AgentId>("a1")))
    );
    let group: GroupId = id("billing");
    assert_eq!(all.conversations[1].1.group, group);
    // A text selects the conversations with a matching message.
    let page = ok(store.conversations(&query("four")).await, "by text");
    assert_eq!(page.conversations.len(), 1);
    assert_eq!(page.conversations[0].1.id, low);
}

/// Pages of either order neither repeat nor skip a message while new ones arrive between the pages, and end with
/// `next: None`.
pub async fn pages_are_stable_while_messages_arrive(store: Arc<dyn Searchable>) {
    let store = &*store;
    let c = open_in(store, &tenant(), "v1", "sales", 100).await;
    let d = open_in(store, &tenant(), "v2", "sales", 100).await;
    let mut before = HashSet::new();
    for n in 0..25u64 {
        let conversation = if n % 2 == 0 { c } else { d };
        say(
            store,
            conversation,
            visitor(if n % 2 == 0 { "v1" } else { "v2" }),
            &format!("item {n} 订单"),
            200 + n,
        )
        .await;
        before.insert(format!("item {n} 订单"));
    }
    for order in [HistoryOrder::NewestFirst, HistoryOrder::OldestFirst] {
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        let mut added = 0u64;
        loop {
            let query = HistoryQuery {
                limit: 10,
                cursor,
                order,
                ..query("订单")
            };
            let page = search(store, &query).await;
            pages += 1;
            assert!(page.hits.len() <= 10);
            let positions: Vec<u64> = page.hits.iter().map(|hit| hit.position).collect();
            let mut sorted = positions.clone();
            sorted.sort_unstable();
            if order == HistoryOrder::NewestFirst {
                sorted.reverse();
            }
            assert_eq!(positions, sorted, "{order:?}: in order");
            seen.extend(page.hits.iter().map(|hit| hit.text.clone()));
            // A new message between the pages.
            added += 1;
            say(
                store,
                c,
                visitor("v1"),
                &format!("late {order:?} {added} 订单"),
                900 + added,
            )
            .await;
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
            assert!(pages < 20, "paging does not end");
        }
        let unique: HashSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "{order:?}: no message twice");
        for text in &before {
            assert!(unique.contains(text), "{order:?}: {text} skipped");
        }
        if order == HistoryOrder::NewestFirst {
            assert!(
                seen.iter().all(|text| !text.contains("late NewestFirst")),
                "newer messages come before page 1"
            );
        } else {
            // Oldest first reads on to the end: what arrived meanwhile is at the end.
            assert!(seen.iter().any(|text| text.contains("late OldestFirst")));
        }
        before = unique;
    }
    // A cursor from a page is accepted in its text form.
    let first = search(
        store,
        &HistoryQuery {
            limit: 3,
            ..query("订单")
        },
    )
    .await;
    let Some(next) = first.next else {
        panic!("a full page has a next");
    };
    let next: HistoryCursor = ok(next.to_string().parse(), "cursor text");
    let second = search(
        store,
        &HistoryQuery {
            limit: 3,
            cursor: Some(next),
            ..query("订单")
        },
    )
    .await;
    assert!(
        second
            .hits
            .iter()
            .all(|hit| hit.position < first.hits[2].position)
    );
}

/// Agents' private notes are found only when the query asks for notes, and are flagged; system events (a
/// transfer's note, a rating's comment) are never hits.
pub async fn notes_are_searched_for_agents_and_flagged(store: Arc<dyn Searchable>) {
    let store = &*store;
    let c = open_in(store, &tenant(), "v1", "sales", 100).await;
    event(
        store,
        c,
        Actor::System,
        EventKind::Assigned { agent: id("a1") },
        101,
    )
    .await;
    say(store, c, visitor("v1"), "I want a refund", 110).await;
    event(
        store,
        c,
        agent("a1"),
        EventKind::Note {
            text: "Refund approved by finance".into(),
            mentions: vec![id("a2")],
        },
        120,
    )
    .await;
    event(
        store,
        c,
        agent("a1"),
        EventKind::Transferred {
            from: Some(id("a1")),
            agent: Some(id("a2")),
            group: id("sales"),
            note: Some("refund case".into()),
            handover: false,
        },
        130,
    )
    .await;
    let visitors = search(store, &query("refund")).await;
    assert_eq!(texts(&visitors), vec!["I want a refund".to_owned()]);
    assert!(visitors.hits.iter().all(|hit| !hit.note));
    let agents = search(
        store,
        &HistoryQuery {
            notes: true,
            ..query("refund")
        },
    )
    .await;
    assert_eq!(agents.hits.len(), 2);
    assert_eq!(agents.hits[0].text, "Refund approved by finance");
    assert!(agents.hits[0].note, "the note is flagged");
    assert_eq!(agents.hits[0].author, agent("a1"));
    assert!(!agents.hits[1].note);
    let finance = search(store, &query("finance")).await;
    assert!(
        finance.hits.is_empty(),
        "notes stay hidden from a query without notes"
    );
    let case = search(
        store,
        &HistoryQuery {
            notes: true,
            ..query("case")
        },
    )
    .await;
    assert!(case.hits.is_empty(), "a transfer's note is not a message");
}

/// Snippets escape the text for HTML and mark every hit with the caller's markers; without escaping the text is
/// as written; without highlighting there is no snippet.
pub async fn snippets_highlight_and_escape(store: Arc<dyn Searchable>) {
    let store = &*store;
    let c = open_in(store, &tenant(), "v1", "sales", 100).await;
    say(
        store,
        c,
        visitor("v1"),
        r#"<script>alert("refund")</script> & REFUND 发货"#,
        110,
    )
    .await;
    let page = search(store, &query("refund")).await;
    assert_eq!(
        page.hits[0].snippet.as_deref(),
        Some(
            "&lt;script&gt;alert(&quot;<mark>refund</mark>&quot;)&lt;/script&gt; &amp; <mark>REFUND</mark> 发货"
        )
    );
    let custom = HistoryQuery {
        highlight: Some(Highlight {
            escape_html: false,
            context: 60,
            ..Highlight::new("[[", "]]")
        }),
        ..query("发货")
    };
    let page = search(store, &custom).await;
    assert_eq!(
        page.hits[0].snippet.as_deref(),
        Some(r#"<script>alert("refund")</script> & REFUND [[发货]]"#)
    );
    let plain = HistoryQuery {
        highlight: None,
        ..query("refund")
    };
    assert_eq!(search(store, &plain).await.hits[0].snippet, None);
    let long = format!("{} refund {}", "a".repeat(200), "b".repeat(200));
    say(store, c, visitor("v1"), &long, 120).await;
    let page = search(store, &query("refund")).await;
    assert_eq!(
        page.hits[0].snippet.clone().unwrap_or_default(),
        format!("…{} <mark>refund</mark> {}…", "a".repeat(39), "b".repeat(39))
    );
}

/// Bad queries are refused: a rating out of 1–5, a text of more than `MAX_QUERY_CHARS` characters.
pub async fn bad_queries_are_refused(store: Arc<dyn Searchable>) {
    let bad = [
        HistoryQuery {
            min_rating: Some(0),
            ..HistoryQuery::new(tenant())
        },
        HistoryQuery {
            max_rating: Some(6),
            ..HistoryQuery::new(tenant())
        },
        query(&"长".repeat(crate::store::MAX_QUERY_CHARS + 1)),
    ];
    for query in bad {
        assert!(matches!(store.search(&query).await, Err(StoreError::Invalid(_))));
        assert!(matches!(
            store.conversations(&query).await,
            Err(StoreError::Invalid(_))
        ));
    }
    let page = ok(
        store
            .search(&query(&"长".repeat(crate::store::MAX_QUERY_CHARS)))
            .await,
        "longest",
    );
    assert!(page.hits.is_empty());
}

/// Exports stream every matching row in CSV (RFC 4180, header first) and JSON Lines, across pages, with the
/// filters applied.
pub async fn exports_stream_every_row(store: Arc<dyn Searchable>) {
    let c = open_in(&*store, &tenant(), "v1", "sales", 100).await;
    let n = crate::store::EXPORT_PAGE + 7;
    for i in 0..n {
        say(&*store, c, visitor("v1"), &format!("line {i}"), 1_000 + i as u64).await;
    }
    say(&*store, c, agent("a1"), "quote \"this\", please\n发货", 5_000).await;
    let other = open_in(&*store, &id("tenant-2"), "v1", "sales", 100).await;
    say(&*store, other, visitor("v1"), "not exported", 6_000).await;
    let history: Arc<dyn History> = store.clone();
    let collect = |kind, format, query: HistoryQuery| {
        let history = Arc::clone(&history);
        async move {
            let mut out = Vec::new();
            let mut stream = export(history, query, kind, format);
            while let Some(chunk) = stream.next().await {
                out.extend_from_slice(&ok(chunk, "export chunk"));
            }
            match String::from_utf8(out) {
                Ok(text) => text,
                Err(error) => panic!("export is not UTF-8: {error}"),
            }
        }
    };
    let csv = collect(
        ExportKind::Messages,
        ExportFormat::Csv,
        HistoryQuery::new(tenant()),
    )
    .await;
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = ok(reader.headers().map_err(StoreError::backend), "header").clone();
    assert_eq!(&header[0], "conversation");
    assert_eq!(&header[11], "text");
    let rows: Vec<csv::StringRecord> = reader
        .records()
        .map(|row| ok(row.map_err(StoreError::backend), "row"))
        .collect();
    assert_eq!(rows.len(), n + 1);
    assert_eq!(&rows[0][11], "line 0", "oldest first");
    assert_eq!(&rows[n][11], "quote \"this\", please\n发货");
    assert_eq!(&rows[n][3], "agent");
    assert_eq!(&rows[n][2], "1970-01-01T00:00:05.000Z");
    assert!(
        csv.contains("\"quote \"\"this\"\", please\n发货\"\r\n"),
        "RFC 4180 quoting"
    );
    let jsonl = collect(ExportKind::Messages, ExportFormat::Jsonl, query("发货")).await;
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|line| {
            ok(
                serde_json::from_str(line).map_err(StoreError::backend),
                "json line",
            )
        })
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["text"], "quote \"this\", please\n发货");
    assert_eq!(lines[0]["conversation"], c.to_string());
    let conversations = collect(
        ExportKind::Conversations,
        ExportFormat::Csv,
        HistoryQuery::new(tenant()),
    )
    .await;
    let rows: Vec<&str> = conversations
        .split("\r\n")
        .filter(|line| !line.is_empty())
        .collect();
    assert_eq!(rows.len(), 2, "header and one conversation: {conversations}");
    assert!(rows[1].starts_with(&c.to_string()));
    let empty = collect(
        ExportKind::Messages,
        ExportFormat::Csv,
        HistoryQuery {
            label: Some("none".into()),
            ..HistoryQuery::new(tenant())
        },
    )
    .await;
    assert_eq!(empty.lines().count(), 1, "an empty CSV export is its header");
    let empty = collect(
        ExportKind::Conversations,
        ExportFormat::Jsonl,
        query("nothing like it"),
    )
    .await;
    assert!(empty.is_empty());
}

/// Stamps the [`History`] conformance suite into the calling crate as `#[test]` functions, each on a fresh
/// backend. The argument is an expression evaluating to a future that yields a fresh, empty backend as an `Arc`
/// of a type implementing [`ConversationLog`] and [`History`] (evaluated once per test, inside a Tokio
/// runtime).
#[macro_export]
macro_rules! history_conformance_tests {
    ($make:expr) => {
        $crate::history_conformance_tests!(@tests $make;
            finds_chinese_and_english_text,
            only_ascii_letters_fold,
            filters_narrow_the_results,
            pages_are_stable_while_messages_arrive,
            notes_are_searched_for_agents_and_flagged,
            snippets_highlight_and_escape,
            bad_queries_are_refused,
            exports_stream_every_row,
        );
    };
    (@tests $make:expr; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $crate::testkit::block_on(async {
                    let backend: ::std::sync::Arc<dyn $crate::testkit::history::Searchable> = $make.await;
                    $crate::testkit::history::$name(backend).await;
                });
            }
        )*
    };
}
