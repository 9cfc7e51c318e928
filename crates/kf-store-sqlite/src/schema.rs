//! The schema and its migrations, versioned with `PRAGMA user_version`.

use kf_core::store::Epoch;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::SqliteError;

/// Migration steps; step `n` (0-based) takes the schema from version `n` to `n + 1`. Append only: a released step
/// never changes.
const MIGRATIONS: &[&str] = &[
    // 1: conversations, their event logs, visitor/agent/group records and the store's metadata.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE conversations (
        id             TEXT PRIMARY KEY NOT NULL,  -- UUID, lowercase hyphenated (sorts like the UUID)
        tenant         TEXT NOT NULL,
        visitor        TEXT NOT NULL,
        group_id       TEXT NOT NULL,
        open_client_id TEXT NOT NULL,              -- the visitor's idempotency key of the open
        state          TEXT NOT NULL CHECK (state IN ('queued', 'assigned', 'closed')),
        agent          TEXT,                       -- the owner while assigned, else NULL
        last_agent     TEXT,
        last_seq       INTEGER NOT NULL,
        created_at     INTEGER NOT NULL,           -- milliseconds since the Unix epoch
        updated_at     INTEGER NOT NULL,
        CHECK ((state = 'assigned') = (agent IS NOT NULL)),
        UNIQUE (tenant, visitor, open_client_id)
    );
    CREATE INDEX conversations_by_visitor ON conversations (tenant, visitor, created_at, id);
    CREATE INDEX conversations_by_agent ON conversations (tenant, agent, created_at, id) WHERE agent IS NOT NULL;
    CREATE INDEX conversations_open ON conversations (created_at, id) WHERE state <> 'closed';

    -- One row per log entry. The integer id (the rowid) lets a full-text index use this table as its content.
    CREATE TABLE events (
        id           INTEGER PRIMARY KEY,
        conversation TEXT NOT NULL REFERENCES conversations (id),
        seq          INTEGER NOT NULL,
        at           INTEGER NOT NULL,
        author_role  TEXT NOT NULL,               -- visitor, agent or system
        author_id    TEXT NOT NULL,               -- empty for the system
        client_id    TEXT,
        kind         TEXT NOT NULL,               -- the EventKind's name
        body         TEXT,                        -- a message's text, NULL for other kinds
        data         TEXT NOT NULL,               -- the EventKind as JSON
        UNIQUE (conversation, seq)
    );
    CREATE UNIQUE INDEX events_by_client_id ON events (conversation, author_role, author_id, client_id)
        WHERE client_id IS NOT NULL;

    CREATE TABLE visitors (
        tenant     TEXT NOT NULL,
        id         TEXT NOT NULL,
        name       TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (tenant, id)
    ) WITHOUT ROWID;

    CREATE TABLE agents (
        tenant   TEXT NOT NULL,
        id       TEXT NOT NULL,
        name     TEXT NOT NULL,
        groups   TEXT NOT NULL,                   -- JSON array of group ids
        capacity INTEGER NOT NULL,
        PRIMARY KEY (tenant, id)
    ) WITHOUT ROWID;

    CREATE TABLE skill_groups (
        tenant TEXT NOT NULL,
        id     TEXT NOT NULL,
        name   TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    ) WITHOUT ROWID;
    "#,
    // 2: routing settings: per-group capacity overrides of agents, groups' strategy and cap (JSON objects).
    r#"
    ALTER TABLE agents ADD COLUMN group_capacity TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE skill_groups ADD COLUMN routing TEXT NOT NULL DEFAULT '{}';
    "#,
];

/// The schema version this build writes (the database's `PRAGMA user_version` once opened).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Reads `PRAGMA user_version`.
pub(crate) fn user_version(conn: &Connection) -> Result<i64, SqliteError> {
    Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

/// Refuses versions this build does not know.
pub(crate) fn check_version(version: i64) -> Result<usize, SqliteError> {
    if version > SCHEMA_VERSION {
        return Err(SqliteError::FutureSchema {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    usize::try_from(version).map_err(|_| SqliteError::UnknownSchema(version))
}

/// Applies the missing migration steps and makes sure an epoch exists, in one transaction; returns the epoch.
pub(crate) fn migrate(conn: &mut Connection) -> Result<Epoch, SqliteError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version = check_version(user_version(&tx)?)?;
    for (index, step) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(step)?;
        tracing::debug!(version = index + 1, "applied sqlite schema migration");
    }
    if version < MIGRATIONS.len() {
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    }
    let existing: Option<String> = tx
        .query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |row| row.get(0))
        .optional()?;
    let epoch = match existing {
        Some(epoch) => epoch,
        None => {
            let epoch = uuid::Uuid::new_v4().to_string();
            tx.execute("INSERT INTO meta (key, value) VALUES ('epoch', ?1)", [&epoch])?;
            epoch
        }
    };
    tx.commit()?;
    Ok(Epoch(epoch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows;

    #[test]
    fn version_1_records_load_with_default_routing_settings() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(MIGRATIONS[0]).expect("version 1");
        conn.execute_batch(
            "INSERT INTO agents (tenant, id, name, groups, capacity) VALUES ('t', 'a1', 'Alice', '[\"g\"]', 2);
             INSERT INTO skill_groups (tenant, id, name) VALUES ('t', 'g', 'Group');
             PRAGMA user_version = 1;",
        )
        .expect("version 1 rows");
        migrate(&mut conn).expect("migrate");
        assert_eq!(user_version(&conn).expect("version"), SCHEMA_VERSION);
        let agents = rows::agents(&conn).expect("agents");
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[0].capacity, 2);
        assert!(agents[0].group_capacity.is_empty());
        let groups = rows::groups(&conn).expect("groups");
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].strategy, kf_core::model::Strategy::Default);
        assert_eq!(groups[0].max_active, None);
    }
}
