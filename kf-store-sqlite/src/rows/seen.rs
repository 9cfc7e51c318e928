//! Seen marks (schema 10): how far each participant has seen each conversation, one row per (conversation,
//! participant), only ever raised.

use kf_core::model::{Actor, AgentId, ConversationId, SeenMark, Seq, VisitorId};
use kf_core::store::{StoreError, check_seen_marks};
use rusqlite::{Connection, Row, params};

use super::{Corrupt, IdText, SqlResult, conversion, parse, signed, unsigned};

/// Raises the marks: a mark lower than the stored one changes nothing; marks of unknown conversations are
/// skipped (the `SELECT … WHERE EXISTS` inserts nothing for them).
pub(crate) fn record_seen(conn: &Connection, marks: &[SeenMark]) -> Result<(), StoreError> {
    check_seen_marks(marks)?;
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO seen (conversation, role, id, seq) \
             SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM conversations WHERE id = ?1) \
             ON CONFLICT (conversation, role, id) DO UPDATE SET seq = max(seq, excluded.seq)",
        )
        .map_err(crate::error::backend)?;
    for mark in marks {
        let seq = signed(mark.seq.0, "seq")?;
        statement
            .execute(params![
                IdText::new(mark.conversation),
                mark.from.role(),
                mark.from.id_str(),
                seq
            ])
            .map_err(crate::error::backend)?;
    }
    Ok(())
}

/// The stored marks of one conversation.
pub(crate) fn seen(conn: &Connection, conversation: ConversationId) -> SqlResult<Vec<SeenMark>> {
    let mut statement =
        conn.prepare_cached("SELECT role, id, seq FROM seen WHERE conversation = ?1 ORDER BY role, id")?;
    statement
        .query_map([IdText::new(conversation)], |row| {
            mark_from_row(conversation, row)
        })?
        .collect()
}

fn mark_from_row(conversation: ConversationId, row: &Row<'_>) -> SqlResult<SeenMark> {
    let role: String = row.get(0)?;
    let from = match role.as_str() {
        "visitor" => Actor::Visitor(parse::<VisitorId>(row, 1)?),
        "agent" => Actor::Agent(parse::<AgentId>(row, 1)?),
        other => return Err(conversion(0, Corrupt(format!("unknown seen role {other:?}")))),
    };
    Ok(SeenMark::new(conversation, from, Seq(unsigned(row, 2)?)))
}
