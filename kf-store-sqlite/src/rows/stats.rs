//! The statistics checkpoint: one row (`stats_checkpoint`, id 1) replaced whole by each save.

use kf_core::model::Epoch;
use kf_core::store::{FeedPosition, StatsCheckpoint, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::backend;

/// Replaces the checkpoint.
pub(crate) fn save_stats_checkpoint(
    conn: &Connection,
    checkpoint: &StatsCheckpoint,
) -> Result<(), StoreError> {
    let position = i64::try_from(checkpoint.position.0)
        .map_err(|_| StoreError::Invalid(format!("feed position {} out of range", checkpoint.position)))?;
    conn.prepare_cached(
        "INSERT INTO stats_checkpoint (id, epoch, position, state) VALUES (1, ?1, ?2, ?3) \
         ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch, position = excluded.position, \
         state = excluded.state",
    )
    .and_then(|mut statement| statement.execute(params![checkpoint.epoch.0, position, checkpoint.state]))
    .map_err(backend)?;
    Ok(())
}

/// The checkpoint, if one was saved.
pub(crate) fn stats_checkpoint(conn: &Connection) -> Result<Option<StatsCheckpoint>, StoreError> {
    let row = conn
        .prepare_cached("SELECT epoch, position, state FROM stats_checkpoint WHERE id = 1")
        .and_then(|mut statement| {
            statement
                .query_row([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, Vec<u8>>(2)?,
                    ))
                })
                .optional()
        })
        .map_err(backend)?;
    row.map(|(epoch, position, state)| {
        let position = u64::try_from(position)
            .map_err(|_| StoreError::Invalid(format!("stored feed position {position} out of range")))?;
        Ok(StatsCheckpoint::new(Epoch(epoch), FeedPosition(position), state))
    })
    .transpose()
}
