//! History search and export reads ([`kf_core::store::History`]) over `events`, `conversations` and the
//! full-text index `events_fts` (schema 9).
//!
//! The match rule is kf-core's (`find_hits`): the text contains the query, ASCII letters folded. SQL's `LIKE`
//! is exactly that (case-insensitive for ASCII only), so `body LIKE '%query%'` (with `%`, `_` and `\` escaped)
//! decides every match. For a query of three characters or more, the trigram index narrows the candidates first
//! (`events_fts MATCH '"abc" AND "bcd" …'`: every row containing each of the query's trigrams, with a case
//! folding that covers more than ASCII, so never fewer rows than `LIKE` keeps) — for the events up to the search
//! indexer's position, plus the tail after it, which the indexer has not reached yet (`indexed_or_tail`: one
//! statement, one snapshot, so a message is found as soon as it is acknowledged); a shorter query — "发货" — has
//! no trigram and is a scan of the tenant's messages, newest first, that stops when the page is full.
//!
//! Pages are keyset pages over `events.id`, the feed position: `id < cursor` newest first, `id > cursor` oldest
//! first. `events CROSS JOIN conversations` keeps `events` the outer loop (SQLite does not reorder a CROSS
//! JOIN), so a page walks the events' own b-tree from the cursor and stops when it is full: without it the
//! planner may start from the tenant's conversations and sort all their events for every page, which made a
//! 100,000-message export quadratic (docs/benchmarks.md §5).

use kf_core::model::{Actor, Seq, Timestamp};
use kf_core::store::{
    ConversationPage, HistoryOrder, HistoryQuery, MessageHit, SearchPage, StateFilter, StoreError,
};
use rusqlite::types::Value;
use rusqlite::{Connection, Row, params_from_iter};

use super::{SqlResult, conversation_from_row, conversion, parse, signed, unsigned};
use crate::error::backend;

/// The conditions and parameters of a query, built clause by clause (only the filters in use are in the SQL,
/// so the planner sees a plain query; statements are cached per shape).
struct Sql {
    text: String,
    values: Vec<Value>,
}

impl Sql {
    fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            values: Vec::new(),
        }
    }

    /// Appends `clause`, whose `?` placeholders (in order) take `values`.
    fn and(&mut self, clause: &str, values: impl IntoIterator<Item = Value>) {
        self.text.push_str(" AND ");
        let mut values = values.into_iter();
        for part in clause.split_inclusive('?') {
            match part.strip_suffix('?') {
                Some(before) => {
                    self.text.push_str(before);
                    match values.next() {
                        Some(value) => self.values.push(value),
                        None => self.values.push(Value::Null),
                    }
                    self.text.push_str(&format!("?{}", self.values.len()));
                }
                None => self.text.push_str(part),
            }
        }
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

/// `%query%` for `LIKE … ESCAPE '\'`.
fn like_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The query's trigrams, each an FTS5 string (in double quotes, inner quotes doubled, so no FTS5 syntax
/// applies), ANDed: the rows holding every trigram of the query — a superset of those containing it, which
/// `LIKE` narrows. (The index keeps no positions, `detail = 'none'`, so a phrase query is not available.)
fn fts_trigrams(needle: &str) -> String {
    let chars: Vec<char> = needle.chars().collect();
    let mut seen = std::collections::HashSet::new();
    let mut terms = Vec::new();
    for window in chars.windows(3) {
        let trigram: String = window.iter().collect();
        if seen.insert(trigram.clone()) {
            terms.push(format!("\"{}\"", trigram.replace('"', "\"\"")));
        }
    }
    terms.join(" AND ")
}

/// The kinds searched: messages, and notes when the query asks for them.
fn kinds(query: &HistoryQuery) -> &'static str {
    if query.notes {
        "('message', 'note')"
    } else {
        "('message')"
    }
}

/// The conversation filters (the conversation table is `conversations`).
fn conversation_filters(sql: &mut Sql, query: &HistoryQuery) {
    sql.and("conversations.tenant = ?", [text(query.tenant.as_str())]);
    if let Some(agent) = &query.agent {
        sql.and("conversations.last_agent = ?", [text(agent.as_str())]);
    }
    if let Some(group) = &query.group {
        sql.and("conversations.group_id = ?", [text(group.as_str())]);
    }
    if let Some(label) = &query.label {
        // `labels` is the JSON array of the conversation's label names (schema 7).
        sql.and(
            "EXISTS (SELECT 1 FROM json_each(conversations.labels) WHERE json_each.value = ?)",
            [text(label)],
        );
    }
    match query.state {
        None => {}
        Some(StateFilter::Open) => sql.and("conversations.state <> 'closed'", []),
        Some(state) => sql.and("conversations.state = ?", [text(state.name())]),
    }
    if let Some(min) = query.min_rating {
        sql.and("conversations.rating >= ?", [Value::Integer(i64::from(min))]);
    }
    if let Some(max) = query.max_rating {
        sql.and("conversations.rating <= ?", [Value::Integer(i64::from(max))]);
    }
}

/// The text condition on the events table aliased `alias`.
fn text_filter(sql: &mut Sql, alias: &str, needle: &str) {
    if needle.chars().count() >= 3 {
        let placeholder = sql.values.len() + 1;
        sql.push(&format!(" AND {}", indexed_or_tail(alias, placeholder)));
        sql.values.push(text(&fts_trigrams(needle)));
    }
    sql.and(
        &format!("{alias}.body LIKE ? ESCAPE '\\'"),
        [text(&like_pattern(needle))],
    );
}

/// The candidates of a text search on the events table aliased `alias`, with the FTS5 query in parameter
/// `?{placeholder}`: the rows of the index that hold every trigram, and the tail of the log the indexer has not
/// reached yet (`id >` its position). The index holds exactly the events up to the position (the indexer
/// commits both together) and this is one statement, one snapshot: a message is found the moment it is
/// acknowledged, however far the indexer lags. Each part is a lookup by rowid (no scan of `events`).
pub(crate) fn indexed_or_tail(alias: &str, placeholder: usize) -> String {
    format!(
        "{alias}.id IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?{placeholder} \
         UNION ALL SELECT id FROM events WHERE id > \
         (SELECT COALESCE(MAX(CAST(value AS INTEGER)), 0) FROM meta WHERE key = '{key}'))",
        key = crate::indexer::POSITION_KEY
    )
}

fn time_range(sql: &mut Sql, column: &str, query: &HistoryQuery) -> Result<(), StoreError> {
    if let Some(from) = query.from {
        sql.and(
            &format!("{column} >= ?"),
            [Value::Integer(signed(from.0, "time")?)],
        );
    }
    if let Some(until) = query.until {
        sql.and(
            &format!("{column} < ?"),
            [Value::Integer(signed(until.0, "time")?)],
        );
    }
    Ok(())
}

fn cursor_value(query: &HistoryQuery) -> Option<Value> {
    // A cursor past what SQLite holds is past every row.
    query
        .cursor
        .map(|cursor| Value::Integer(i64::try_from(cursor.0).unwrap_or(i64::MAX)))
}

fn limit_value(limit: usize) -> Value {
    Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX))
}

fn actor(row: &Row<'_>, role: usize, id: usize) -> SqlResult<Actor> {
    let name: String = row.get(role)?;
    Ok(match name.as_str() {
        "visitor" => Actor::Visitor(parse(row, id)?),
        "agent" => Actor::Agent(parse(row, id)?),
        "system" => Actor::System,
        other => {
            return Err(conversion(
                role,
                std::io::Error::other(format!("unknown author role {other:?}")),
            ));
        }
    })
}

/// One page of message hits.
pub(crate) fn search(conn: &Connection, query: &HistoryQuery) -> Result<SearchPage, StoreError> {
    query.check()?;
    let limit = query.page_size();
    let mut sql = Sql::new(concat!(
        "SELECT ",
        conversation_columns!(),
        ", e.id, e.seq, e.at, e.author_role, e.author_id, e.kind, e.body \
         FROM events e CROSS JOIN conversations ON conversations.id = e.conversation \
         WHERE e.body IS NOT NULL"
    ));
    sql.and(&format!("e.kind IN {}", kinds(query)), []);
    conversation_filters(&mut sql, query);
    time_range(&mut sql, "e.at", query)?;
    let descending = query.order == HistoryOrder::NewestFirst;
    if let Some(cursor) = cursor_value(query) {
        sql.and(if descending { "e.id < ?" } else { "e.id > ?" }, [cursor]);
    }
    if let Some(needle) = query.needle() {
        text_filter(&mut sql, "e", needle);
    }
    sql.push(if descending {
        " ORDER BY e.id DESC"
    } else {
        " ORDER BY e.id"
    });
    sql.values.push(limit_value(limit));
    sql.push(&format!(" LIMIT ?{}", sql.values.len()));
    let mut statement = conn.prepare_cached(&sql.text).map_err(backend)?;
    let rows = statement
        .query_map(params_from_iter(sql.values.iter()), |row| {
            let conversation = conversation_from_row(row)?;
            let kind: String = row.get(19)?;
            Ok((
                unsigned(row, 14)?,
                conversation,
                Seq(unsigned(row, 15)?),
                Timestamp(unsigned(row, 16)?),
                actor(row, 17, 18)?,
                kind == "note",
                row.get::<_, String>(20)?,
            ))
        })
        .map_err(backend)?;
    let mut hits = Vec::with_capacity(limit.min(64));
    for row in rows {
        let (position, conversation, seq, at, author, note, body) = row.map_err(backend)?;
        hits.push(MessageHit::new(
            query,
            position,
            conversation,
            seq,
            at,
            author,
            note,
            body,
        ));
    }
    Ok(SearchPage::new(hits, limit))
}

/// One page of conversations, in the order of their `created` events.
pub(crate) fn search_conversations(
    conn: &Connection,
    query: &HistoryQuery,
) -> Result<ConversationPage, StoreError> {
    query.check()?;
    let limit = query.page_size();
    let mut sql = Sql::new(concat!(
        "SELECT ",
        conversation_columns!(),
        ", e.id FROM events e CROSS JOIN conversations ON conversations.id = e.conversation WHERE e.seq = 1"
    ));
    conversation_filters(&mut sql, query);
    time_range(&mut sql, "conversations.created_at", query)?;
    if let Some(cursor) = cursor_value(query) {
        sql.and("e.id > ?", [cursor]);
    }
    if let Some(needle) = query.needle() {
        sql.push(&format!(
            " AND EXISTS (SELECT 1 FROM events m WHERE m.conversation = conversations.id \
             AND m.body IS NOT NULL AND m.kind IN {}",
            kinds(query)
        ));
        text_filter(&mut sql, "m", needle);
        sql.push(")");
    }
    sql.push(" ORDER BY e.id");
    sql.values.push(limit_value(limit));
    sql.push(&format!(" LIMIT ?{}", sql.values.len()));
    let mut statement = conn.prepare_cached(&sql.text).map_err(backend)?;
    let rows = statement
        .query_map(params_from_iter(sql.values.iter()), |row| {
            Ok((unsigned(row, 14)?, conversation_from_row(row)?))
        })
        .map_err(backend)?;
    let found = rows.collect::<SqlResult<Vec<_>>>().map_err(backend)?;
    Ok(ConversationPage::new(found, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_phrases_are_literal() {
        assert_eq!(like_pattern(r"100%_a\b"), r"%100\%\_a\\b%");
        assert_eq!(fts_trigrams(r#"a "b"#), r#""a """ AND " ""b""#);
        assert_eq!(fts_trigrams("发货单号"), r#""发货单" AND "货单号""#);
        assert_eq!(fts_trigrams("aaaa"), r#""aaa""#);
        let mut sql = Sql::new("x WHERE 1");
        sql.and("a = ? AND b = ?", [text("1"), text("2")]);
        sql.and("c = ?", [text("3")]);
        assert_eq!(sql.text, "x WHERE 1 AND a = ?1 AND b = ?2 AND c = ?3");
    }
}
