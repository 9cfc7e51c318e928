//! History search and export reads ([`kf_core::store::History`]) over `events` and `conversations`.
//!
//! The match rule is kf-core's (`find_hits`): the text contains the query, ASCII letters folded. Each searchable
//! event (a message, a note) keeps its text with ASCII letters lowercased in `events.search_text`, written in
//! the transaction that stores the event (so a message is found as soon as it is acknowledged); a search
//! lowercases the query's ASCII letters the same way and `search_text LIKE '%query%'` (with `%`, `_` and `\`
//! escaped, under the byte-wise "C" rules of a `LIKE`) is then exactly the rule. The `pg_trgm` GIN index on
//! `search_text` narrows a query of three characters or more to the rows holding its trigrams; a shorter one —
//! "发货" — walks the tenant's messages in feed order (`events_searchable`) and stops when the page is full.
//!
//! Pages are keyset pages over the feed position: `position < cursor` newest first, `position > cursor` oldest
//! first.

use deadpool_postgres::ClientWrapper;
use kf_core::model::EventKind;
use kf_core::store::{
    ConversationPage, HistoryOrder, HistoryQuery, MessageHit, SearchPage, StateFilter, StoreError,
};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::backend;
use crate::rows::{Cached, EVENT_COLUMNS, conversation_from_row, event_from_row, signed};

/// The `search_text` of an event: a message's or a note's text with ASCII letters lowercased (and NUL, which a
/// PostgreSQL text cannot hold, as U+FFFD); `None` for every other event.
pub(crate) fn search_text(kind: &EventKind) -> Option<String> {
    let text = match kind {
        EventKind::Message { body } => body.text.as_str(),
        EventKind::Note { text, .. } => text.as_str(),
        _ => return None,
    };
    Some(text.to_ascii_lowercase().replace('\0', "\u{fffd}"))
}

/// A query's SQL and parameters, built clause by clause (only the filters in use are in the SQL).
struct Sql {
    text: String,
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Sql {
    fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            values: Vec::new(),
        }
    }

    /// Appends ` AND ` and `clause`, whose one `?` takes `value`.
    fn and(&mut self, clause: &str, value: impl ToSql + Sync + Send + 'static) {
        self.values.push(Box::new(value));
        let placeholder = format!("${}", self.values.len());
        self.text.push_str(" AND ");
        self.text.push_str(&clause.replacen('?', &placeholder, 1));
    }

    /// Appends ` AND ` and a clause without parameters.
    fn and_plain(&mut self, clause: &str) {
        self.text.push_str(" AND ");
        self.text.push_str(clause);
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    async fn query(&self, client: &ClientWrapper) -> Result<Vec<Row>, StoreError> {
        let params: Vec<&(dyn ToSql + Sync)> = self
            .values
            .iter()
            .map(|value| value.as_ref() as &(dyn ToSql + Sync))
            .collect();
        client.cached_query(&self.text, &params).await.map_err(backend)
    }
}

/// `%query%` for `LIKE … ESCAPE '\'`, ASCII letters lowercased as in `search_text`.
fn like_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.to_ascii_lowercase().replace('\0', "\u{fffd}").chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The kinds searched: messages, and notes when the query asks for them.
fn kinds(query: &HistoryQuery) -> &'static str {
    if query.notes {
        "('message', 'note')"
    } else {
        "('message')"
    }
}

/// The conversation filters (the conversation table is `c`).
fn conversation_filters(sql: &mut Sql, query: &HistoryQuery) {
    sql.and("c.tenant = ?", query.tenant.as_str().to_owned());
    if let Some(agent) = &query.agent {
        sql.and("c.last_agent = ?", agent.as_str().to_owned());
    }
    if let Some(group) = &query.group {
        sql.and("c.group_id = ?", group.as_str().to_owned());
    }
    if let Some(label) = &query.label {
        sql.and("? = ANY (c.labels)", label.clone());
    }
    match query.state {
        None => {}
        Some(StateFilter::Open) => sql.and_plain("c.state <> 'closed'"),
        Some(state) => sql.and("c.state = ?", state.name().to_owned()),
    }
    if let Some(min) = query.min_rating {
        sql.and("c.rating >= ?", i16::from(min));
    }
    if let Some(max) = query.max_rating {
        sql.and("c.rating <= ?", i16::from(max));
    }
}

fn time_range(sql: &mut Sql, column: &str, query: &HistoryQuery) -> Result<(), StoreError> {
    if let Some(from) = query.from {
        sql.and(&format!("{column} >= ?"), signed(from.0, "time")?);
    }
    if let Some(until) = query.until {
        sql.and(&format!("{column} < ?"), signed(until.0, "time")?);
    }
    Ok(())
}

/// The cursor as a position; one past what a BIGINT holds is past every row.
fn cursor(query: &HistoryQuery) -> Option<i64> {
    query
        .cursor
        .map(|cursor| i64::try_from(cursor.0).unwrap_or(i64::MAX))
}

fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn position(row: &Row, index: usize) -> Result<u64, StoreError> {
    let position: i64 = row.try_get(index).map_err(backend)?;
    u64::try_from(position)
        .map_err(|_| crate::rows::corrupt("events", format!("negative position {position}")))
}

/// One page of message hits.
pub(crate) async fn search(client: &ClientWrapper, query: &HistoryQuery) -> Result<SearchPage, StoreError> {
    query.check()?;
    let page = query.page_size();
    let columns = EVENT_COLUMNS
        .split(", ")
        .map(|column| format!("e.{column}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = Sql::new(&format!(
        "SELECT {columns}, c.data, e.position FROM events e JOIN conversations c ON c.id = e.conversation \
         WHERE e.search_text IS NOT NULL AND e.kind IN {}",
        kinds(query)
    ));
    sql.and("e.tenant = ?", query.tenant.as_str().to_owned());
    conversation_filters(&mut sql, query);
    time_range(&mut sql, "e.at", query)?;
    let descending = query.order == HistoryOrder::NewestFirst;
    if let Some(cursor) = cursor(query) {
        sql.and(
            if descending {
                "e.position < ?"
            } else {
                "e.position > ?"
            },
            cursor,
        );
    }
    if let Some(needle) = query.needle() {
        sql.and("e.search_text LIKE ? ESCAPE '\\'", like_pattern(needle));
    }
    sql.push(if descending {
        " ORDER BY e.position DESC"
    } else {
        " ORDER BY e.position"
    });
    sql.values.push(Box::new(limit(page)));
    sql.push(&format!(" LIMIT ${}", sql.values.len()));
    let rows = sql.query(client).await?;
    let mut hits = Vec::with_capacity(rows.len());
    for row in &rows {
        let event = event_from_row(row)?;
        let conversation = conversation_from_row_at(row, 7)?;
        let Some((text, note)) = query.searchable(&event.data) else {
            continue;
        };
        let text = text.to_owned();
        hits.push(MessageHit::new(
            query,
            position(row, 8)?,
            conversation,
            event.seq,
            event.at,
            event.author,
            note,
            text,
        ));
    }
    Ok(SearchPage::new(hits, page))
}

/// The conversation decoded from the JSON in column `index`.
fn conversation_from_row_at(row: &Row, index: usize) -> Result<kf_core::model::Conversation, StoreError> {
    let data: &str = row.try_get(index).map_err(backend)?;
    crate::rows::decode(data, "conversations")
}

/// One page of conversations, in the order of their `created` events.
pub(crate) async fn conversations(
    client: &ClientWrapper,
    query: &HistoryQuery,
) -> Result<ConversationPage, StoreError> {
    query.check()?;
    let page = query.page_size();
    let mut sql = Sql::new(
        "SELECT c.data, e.position FROM events e JOIN conversations c ON c.id = e.conversation WHERE e.seq = 1",
    );
    sql.and("e.tenant = ?", query.tenant.as_str().to_owned());
    conversation_filters(&mut sql, query);
    time_range(&mut sql, "c.created_at", query)?;
    if let Some(cursor) = cursor(query) {
        sql.and("e.position > ?", cursor);
    }
    if let Some(needle) = query.needle() {
        sql.and(
            &format!(
                "EXISTS (SELECT 1 FROM events m WHERE m.conversation = c.id AND m.search_text IS NOT NULL \
                 AND m.kind IN {} AND m.search_text LIKE ? ESCAPE '\\')",
                kinds(query)
            ),
            like_pattern(needle),
        );
    }
    sql.push(" ORDER BY e.position");
    sql.values.push(Box::new(limit(page)));
    sql.push(&format!(" LIMIT ${}", sql.values.len()));
    let rows = sql.query(client).await?;
    let found = rows
        .iter()
        .map(|row| Ok((position(row, 1)?, conversation_from_row(row)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(ConversationPage::new(found, page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_literal_and_fold_ascii_only() {
        assert_eq!(like_pattern(r"100%_a\B"), r"%100\%\_a\\b%");
        assert_eq!(like_pattern("École 发货"), "%École 发货%");
        assert_eq!(
            search_text(&EventKind::Message {
                body: kf_core::model::MessageBody::text("Refund\0É")
            }),
            Some("refund\u{fffd}É".to_owned())
        );
        assert_eq!(search_text(&EventKind::Closed), None);
    }
}
