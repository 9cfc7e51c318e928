//! Seen marks: how far each participant has seen each conversation, one row per (conversation,
//! participant), only ever raised.

use std::collections::BTreeMap;

use deadpool_postgres::ClientWrapper;
use kf_core::model::{Actor, ConversationId, SeenMark, Seq};
use kf_core::store::{StoreError, check_seen_marks};

use crate::error::backend;
use crate::rows::{Cached, corrupt, signed};

/// Raises the marks in one statement: a mark lower than the stored one changes nothing; marks of unknown
/// conversations are skipped.
pub(crate) async fn record_seen(client: &ClientWrapper, marks: &[SeenMark]) -> Result<(), StoreError> {
    check_seen_marks(marks)?;
    // One row per participant (`ON CONFLICT DO UPDATE` may not touch a row twice in one statement).
    let mut highest: BTreeMap<(ConversationId, &str, &str), u64> = BTreeMap::new();
    for mark in marks {
        let key = (mark.conversation, mark.from.role(), mark.from.id_str());
        let seq = highest.entry(key).or_default();
        *seq = (*seq).max(mark.seq.0);
    }
    let (mut conversations, mut roles, mut ids, mut seqs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((conversation, role, id), seq) in highest {
        conversations.push(conversation.as_uuid());
        roles.push(role);
        ids.push(id);
        seqs.push(signed(seq, "seq")?);
    }
    client
        .cached_execute(
            "INSERT INTO seen (conversation, role, id, seq) \
             SELECT m.conversation, m.role, m.id, m.seq \
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[]) AS m (conversation, role, id, seq) \
             WHERE EXISTS (SELECT 1 FROM conversations c WHERE c.id = m.conversation) \
             ON CONFLICT (conversation, role, id) DO UPDATE SET seq = GREATEST(seen.seq, excluded.seq)",
            &[&conversations, &roles, &ids, &seqs],
        )
        .await
        .map_err(backend)?;
    Ok(())
}

/// The stored marks of these conversations.
pub(crate) async fn seen(
    client: &ClientWrapper,
    conversations: &[ConversationId],
) -> Result<Vec<SeenMark>, StoreError> {
    let ids: Vec<uuid::Uuid> = conversations.iter().map(|id| id.as_uuid()).collect();
    let rows = client
        .cached_query(
            "SELECT conversation, role, id, seq FROM seen WHERE conversation = ANY ($1) \
             ORDER BY conversation, role, id",
            &[&ids],
        )
        .await
        .map_err(backend)?;
    rows.iter()
        .map(|row| {
            let conversation: uuid::Uuid = row.try_get(0).map_err(backend)?;
            let role: &str = row.try_get(1).map_err(backend)?;
            let id: &str = row.try_get(2).map_err(backend)?;
            let seq: i64 = row.try_get(3).map_err(backend)?;
            let invalid = |error: kf_core::model::InvalidId| corrupt("seen", error.to_string());
            let from = match role {
                "visitor" => Actor::Visitor(id.parse().map_err(invalid)?),
                "agent" => Actor::Agent(id.parse().map_err(invalid)?),
                other => return Err(corrupt("seen", format!("unknown seen role {other:?}"))),
            };
            let seq = u64::try_from(seq).map_err(|_| corrupt("seen", format!("negative seq {seq}")))?;
            Ok(SeenMark::new(
                ConversationId::from_uuid(conversation),
                from,
                Seq(seq),
            ))
        })
        .collect()
}
