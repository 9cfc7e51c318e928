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
    // 3: the `offline` conversation state (a message left when nobody took it in time). SQLite cannot change a
    // CHECK constraint, so the table is rebuilt (`migrate` runs steps with foreign keys off and checks them
    // before committing).
    r#"
    CREATE TABLE conversations_v3 (
        id             TEXT PRIMARY KEY NOT NULL,
        tenant         TEXT NOT NULL,
        visitor        TEXT NOT NULL,
        group_id       TEXT NOT NULL,
        open_client_id TEXT NOT NULL,
        state          TEXT NOT NULL CHECK (state IN ('queued', 'assigned', 'closed', 'offline')),
        agent          TEXT,
        last_agent     TEXT,
        last_seq       INTEGER NOT NULL,
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL,
        CHECK ((state = 'assigned') = (agent IS NOT NULL)),
        UNIQUE (tenant, visitor, open_client_id)
    );
    INSERT INTO conversations_v3 (id, tenant, visitor, group_id, open_client_id, state, agent, last_agent, last_seq,
        created_at, updated_at)
        SELECT id, tenant, visitor, group_id, open_client_id, state, agent, last_agent, last_seq, created_at,
        updated_at FROM conversations;
    DROP TABLE conversations;
    ALTER TABLE conversations_v3 RENAME TO conversations;
    CREATE INDEX conversations_by_visitor ON conversations (tenant, visitor, created_at, id);
    CREATE INDEX conversations_by_agent ON conversations (tenant, agent, created_at, id) WHERE agent IS NOT NULL;
    CREATE INDEX conversations_open ON conversations (created_at, id) WHERE state <> 'closed';
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
///
/// Foreign keys are off while the steps run (a step may rebuild a table others refer to; SQLite can only switch
/// them outside a transaction) and checked before the commit; their setting is restored afterwards.
pub(crate) fn migrate(conn: &mut Connection) -> Result<Epoch, SqliteError> {
    let foreign_keys: i64 = conn.query_row("PRAGMA foreign_keys", [], |row| row.get(0))?;
    conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    let migrated = migrate_steps(conn);
    let restored = conn.execute_batch(if foreign_keys != 0 {
        "PRAGMA foreign_keys = ON"
    } else {
        "PRAGMA foreign_keys = OFF"
    });
    let epoch = migrated?;
    restored?;
    Ok(epoch)
}

fn migrate_steps(conn: &mut Connection) -> Result<Epoch, SqliteError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version = check_version(user_version(&tx)?)?;
    for (index, step) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(step)?;
        tracing::debug!(version = index + 1, "applied sqlite schema migration");
    }
    if version < MIGRATIONS.len() {
        let broken = {
            let mut check = tx.prepare("PRAGMA foreign_key_check")?;
            let mut rows = check.query([])?;
            let mut broken = 0;
            while rows.next()?.is_some() {
                broken += 1;
            }
            broken
        };
        if broken > 0 {
            return Err(SqliteError::MigrationForeignKeys(broken));
        }
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
    fn version_1_databases_upgrade_with_their_records() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(MIGRATIONS[0]).expect("version 1");
        conn.execute_batch(
            "PRAGMA foreign_keys = ON;
             INSERT INTO agents (tenant, id, name, groups, capacity) VALUES ('t', 'a1', 'Alice', '[\"g\"]', 2);
             INSERT INTO skill_groups (tenant, id, name) VALUES ('t', 'g', 'Group');
             INSERT INTO conversations (id, tenant, visitor, group_id, open_client_id, state, agent, last_agent,
                 last_seq, created_at, updated_at)
                 VALUES ('01900a3c-5f2e-7b41-9c2d-6e8f0a1b2c3d', 't', 'v', 'g', 'o', 'queued', NULL, NULL, 1, 5, 5);
             INSERT INTO events (conversation, seq, at, author_role, author_id, client_id, kind, body, data)
                 VALUES ('01900a3c-5f2e-7b41-9c2d-6e8f0a1b2c3d', 1, 5, 'visitor', 'v', 'o', 'created', NULL,
                 '{\"type\":\"created\",\"group\":\"g\"}');
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
        // The conversations table was rebuilt (version 3) with its rows, indexes and the events' foreign key.
        let open = rows::open_conversations(&conn).expect("open");
        assert_eq!(open.len(), 1);
        let id = open[0].id;
        let mut offline = open[0].clone();
        offline.state = kf_core::model::ConversationState::Offline;
        rows::update_conversation(&conn, &offline).expect("the offline state is allowed");
        assert_eq!(rows::conversation(&conn, id).expect("read"), Some(offline));
        assert_eq!(
            rows::events_after(&conn, id, kf_core::model::Seq::ZERO, 10)
                .expect("events")
                .len(),
            1
        );
        let orphan = conn.execute(
            "INSERT INTO events (conversation, seq, at, author_role, author_id, kind, data) \
             VALUES ('00000000-0000-0000-0000-000000000000', 1, 1, 'system', '', 'closed', '{}')",
            [],
        );
        assert!(orphan.is_err(), "the foreign key still holds");
        let indexes: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'conversations' \
                 AND name LIKE 'conversations_%'",
                [],
                |row| row.get(0),
            )
            .expect("indexes");
        assert_eq!(indexes, 3);
    }
}
