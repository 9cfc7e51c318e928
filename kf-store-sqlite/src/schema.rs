//! The schema and its migrations, versioned with `PRAGMA user_version`.

use kf_core::model::Epoch;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::SqliteError;
use crate::error::Db;

/// Migration steps; step `n` (0-based) takes the schema from version `n` to `n + 1`. Append only: a released step
/// never changes.
///
/// The change feed needs no step and no column: an event's feed position is its `events.id`, the table's
/// `INTEGER PRIMARY KEY` (an alias of the rowid), which every version already has (see `rows::FEED_AFTER`).
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
    // 2: the `offline` conversation state (the table is rebuilt: SQLite cannot change a CHECK constraint), group
    // working hours, visitor-context summaries and quick replies.
    r#"
    CREATE TABLE conversations_v2 (
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
    INSERT INTO conversations_v2 (id, tenant, visitor, group_id, open_client_id, state, agent, last_agent,
        last_seq, created_at, updated_at)
        SELECT id, tenant, visitor, group_id, open_client_id, state, agent, last_agent, last_seq, created_at,
            updated_at FROM conversations;
    DROP TABLE conversations;
    ALTER TABLE conversations_v2 RENAME TO conversations;
    CREATE INDEX conversations_by_visitor ON conversations (tenant, visitor, created_at, id);
    CREATE INDEX conversations_by_agent ON conversations (tenant, agent, created_at, id) WHERE agent IS NOT NULL;
    CREATE INDEX conversations_open ON conversations (created_at, id) WHERE state <> 'closed';

    CREATE TABLE group_hours (
        tenant   TEXT NOT NULL,
        group_id TEXT NOT NULL,
        hours    TEXT NOT NULL,                   -- WorkingHours as JSON
        PRIMARY KEY (tenant, group_id)
    ) WITHOUT ROWID;

    CREATE TABLE conversation_contexts (
        conversation TEXT PRIMARY KEY NOT NULL REFERENCES conversations (id),
        data         TEXT NOT NULL                -- ConversationContext as JSON
    ) WITHOUT ROWID;

    CREATE TABLE quick_replies (
        tenant   TEXT NOT NULL,
        id       TEXT NOT NULL,
        scope    TEXT NOT NULL CHECK (scope IN ('agent', 'group')),
        owner    TEXT NOT NULL,                   -- the agent or group id
        shortcut TEXT NOT NULL,
        text     TEXT NOT NULL,
        PRIMARY KEY (tenant, id),
        UNIQUE (tenant, scope, owner, shortcut)
    ) WITHOUT ROWID;
    "#,
    // 3: routing settings: per-group capacity overrides of agents, groups' strategy, cap, welcome and timers
    // (JSON objects).
    r#"
    ALTER TABLE agents ADD COLUMN group_capacity TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE skill_groups ADD COLUMN routing TEXT NOT NULL DEFAULT '{}';
    "#,
    // 4: entry points (widgets, channels, page rules) leading to groups.
    r#"
    CREATE TABLE entry_points (
        tenant   TEXT NOT NULL,
        id       TEXT NOT NULL,
        group_id TEXT NOT NULL,
        welcome  TEXT,                            -- overrides the group's welcome; NULL: the group's
        pages    TEXT NOT NULL DEFAULT '[]',      -- JSON array of page rules, in order
        PRIMARY KEY (tenant, id)
    ) WITHOUT ROWID;
    "#,
    // 5: entry points' pre-chat forms.
    r#"
    ALTER TABLE entry_points ADD COLUMN prechat TEXT NOT NULL DEFAULT '[]'; -- JSON array of fields, in order
    "#,
    // 6: the visitor's rating of a conversation (its `rated` event is in the log; the record keeps the score so
    // that a second rating is refused in the commit that would store it).
    r#"
    ALTER TABLE conversations ADD COLUMN rating INTEGER CHECK (rating BETWEEN 1 AND 5);
    "#,
    // 7: labels and custom attributes. A conversation's labels and attributes (JSON, the projection of its
    // `labeled`, `unlabeled` and `attribute_set` events), a visitor's attributes (JSON), and the tenants' label
    // and attribute definitions.
    r#"
    ALTER TABLE conversations ADD COLUMN labels TEXT NOT NULL DEFAULT '[]';      -- JSON array of names
    ALTER TABLE conversations ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';  -- JSON object: key -> value
    ALTER TABLE visitors ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';       -- JSON object: key -> value

    CREATE TABLE labels (
        tenant TEXT NOT NULL,
        name   TEXT NOT NULL,
        color  TEXT NOT NULL,
        PRIMARY KEY (tenant, name)
    ) WITHOUT ROWID;

    CREATE TABLE attribute_definitions (
        tenant TEXT NOT NULL,
        object TEXT NOT NULL CHECK (object IN ('visitor', 'conversation')),
        key    TEXT NOT NULL,
        kind   TEXT NOT NULL CHECK (kind IN ('string', 'number', 'bool', 'date')),
        name   TEXT,
        PRIMARY KEY (tenant, object, key)
    ) WITHOUT ROWID;
    "#,
    // 8: the `on_hold` conversation state (snoozed: the table is rebuilt, SQLite cannot change a CHECK
    // constraint). `agent` holds the owner while assigned and the agent who parked it while on hold; `hold_until`
    // when it wakes by itself (NULL: at the visitor's next message).
    r#"
    CREATE TABLE conversations_v8 (
        id             TEXT PRIMARY KEY NOT NULL,
        tenant         TEXT NOT NULL,
        visitor        TEXT NOT NULL,
        group_id       TEXT NOT NULL,
        open_client_id TEXT NOT NULL,
        state          TEXT NOT NULL CHECK (state IN ('queued', 'assigned', 'closed', 'offline', 'on_hold')),
        agent          TEXT,
        last_agent     TEXT,
        last_seq       INTEGER NOT NULL,
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL,
        rating         INTEGER CHECK (rating BETWEEN 1 AND 5),
        labels         TEXT NOT NULL DEFAULT '[]',
        attributes     TEXT NOT NULL DEFAULT '{}',
        hold_until     INTEGER,
        CHECK ((state IN ('assigned', 'on_hold')) = (agent IS NOT NULL)),
        CHECK (state = 'on_hold' OR hold_until IS NULL),
        UNIQUE (tenant, visitor, open_client_id)
    );
    INSERT INTO conversations_v8 (id, tenant, visitor, group_id, open_client_id, state, agent, last_agent,
        last_seq, created_at, updated_at, rating, labels, attributes)
        SELECT id, tenant, visitor, group_id, open_client_id, state, agent, last_agent, last_seq, created_at,
            updated_at, rating, labels, attributes FROM conversations;
    DROP TABLE conversations;
    ALTER TABLE conversations_v8 RENAME TO conversations;
    CREATE INDEX conversations_by_visitor ON conversations (tenant, visitor, created_at, id);
    CREATE INDEX conversations_by_agent ON conversations (tenant, agent, created_at, id) WHERE agent IS NOT NULL;
    CREATE INDEX conversations_open ON conversations (created_at, id) WHERE state <> 'closed';
    "#,
    // 9: full-text search of history (`rows::history`). `events.body` holds the searchable text — a message's
    // (as before) and now a private note's too — and `events_fts` indexes it: FTS5 with the trigram tokenizer
    // (substrings of any script, Chinese included, for queries of three characters or more) and external content
    // (the text is stored once, in `events`). Nothing in the write path keeps it: the store's search indexer
    // (`indexer.rs`) follows the log from its position in `meta` (`search_indexed`, absent: 0), so this step
    // indexes nothing and a large file opens at once; the indexer catches up in the background and searches scan
    // what it has not reached. `detail = 'none'` keeps only which rows hold each trigram (no positions) and
    // `columnsize = 0` no per-row sizes: a search ANDs the query's trigrams and lets `LIKE` decide, so positions
    // would only cost writes (docs/benchmarks.md §5).
    r#"
    UPDATE events SET body = json_extract(data, '$.text') WHERE kind = 'note' AND body IS NULL;
    CREATE VIRTUAL TABLE events_fts USING fts5 (
        body, content = 'events', content_rowid = 'id', tokenize = 'trigram', detail = 'none', columnsize = 0
    );
    "#,
    // 10: seen marks — how far each participant (visitor or agent) has seen each conversation. One row per
    // (conversation, participant), only ever raised (`rows::RECORD_SEEN`); the engine coalesces `read` receipts
    // into batches, so this costs no fsync of its own. Self-contained: nothing else changes.
    r#"
    CREATE TABLE seen (
        conversation TEXT NOT NULL REFERENCES conversations (id),
        role         TEXT NOT NULL CHECK (role IN ('visitor', 'agent')),
        id           TEXT NOT NULL,
        seq          INTEGER NOT NULL CHECK (seq >= 1),
        PRIMARY KEY (conversation, role, id)
    ) WITHOUT ROWID;
    "#,
    // 11: the records of uploaded files (`rows::uploads`, kf_core::store::Uploads). An upload is recorded before
    // its first byte is stored and lives on its own: no foreign key to `conversations`, as the records may be kept
    // apart from the logs (the trait is a concern of its own). `size` is the attachment's, kept out of the JSON
    // so that a conversation's total is a sum over an index; `uploads_stale` serves the cleanup pass.
    r#"
    CREATE TABLE uploads (
        id           TEXT PRIMARY KEY NOT NULL,
        conversation TEXT NOT NULL,
        owner_role   TEXT NOT NULL CHECK (owner_role IN ('visitor', 'agent')),
        owner_id     TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('receiving', 'ready', 'committed')),
        size         INTEGER NOT NULL,
        attachment   TEXT NOT NULL                -- the kf_core::model::Attachment as JSON
    ) WITHOUT ROWID;
    CREATE INDEX uploads_by_conversation ON uploads (conversation, state, size);
    CREATE INDEX uploads_stale ON uploads (created_at, id) WHERE state <> 'committed';
    "#,
    // 12: the statistics checkpoint (`kf_core::stats::StatsKeeper`): one row, replaced whole by each save — the
    // serialized aggregates and the feed position (of the store epoch `epoch`) they include everything up to.
    r#"
    CREATE TABLE stats_checkpoint (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        epoch    TEXT NOT NULL,
        position INTEGER NOT NULL,
        state    BLOB NOT NULL
    );
    "#,
    // 13: the admin API: agents can be deactivated (kept, but taking nothing and refused at connect), every admin
    // change is kept in the audit log (`rows::audit`), listed per tenant newest first with filters, and the web
    // origins a tenant allows can be changed while running (over those given when the engine is built).
    r#"
    ALTER TABLE agents ADD COLUMN active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1));
    CREATE TABLE audit_log (
        id          INTEGER PRIMARY KEY,          -- increasing: the order of the changes
        tenant      TEXT NOT NULL,
        actor       TEXT NOT NULL,                -- the admin's agent id
        at          INTEGER NOT NULL,             -- milliseconds since the Unix epoch
        action      TEXT NOT NULL,                -- `<object kind>.<verb>`
        object_kind TEXT NOT NULL,
        object_id   TEXT NOT NULL,
        before      TEXT,                         -- the object as JSON; NULL: it did not exist
        after       TEXT                          -- NULL: it was deleted
    );
    CREATE INDEX audit_log_by_tenant ON audit_log (tenant, id);
    CREATE TABLE allowed_origins (
        tenant  TEXT PRIMARY KEY NOT NULL,
        origins TEXT NOT NULL                     -- JSON array of origin patterns, in order
    ) WITHOUT ROWID;
    "#,
];

/// The schema version this build writes (the database's `PRAGMA user_version` once opened).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Reads `PRAGMA user_version`.
pub(crate) fn user_version(conn: &Connection) -> Result<i64, SqliteError> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0)).db()
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
    // Rebuilding a table (step 2) drops a table other tables refer to: SQLite's documented procedure turns
    // foreign keys off around the transaction (they cannot change inside one) and checks them before commit.
    let foreign_keys: i64 = conn.query_row("PRAGMA foreign_keys", [], |row| row.get(0)).db()?;
    conn.execute_batch("PRAGMA foreign_keys = OFF").db()?;
    let result = migrate_in_transaction(conn);
    if foreign_keys != 0 {
        conn.execute_batch("PRAGMA foreign_keys = ON").db()?;
    }
    result
}

fn migrate_in_transaction(conn: &mut Connection) -> Result<Epoch, SqliteError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let version = check_version(user_version(&tx)?)?;
    for (index, step) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(step).db()?;
        tracing::debug!(version = index + 1, "applied sqlite schema migration");
    }
    if version < MIGRATIONS.len() {
        let broken: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |row| row.get(0))
            .optional()
            .db()?;
        if let Some(table) = broken {
            return Err(crate::error::database(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
                Some(format!("migration left a broken foreign key in table {table}")),
            )));
        }
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
            .db()?;
    }
    let existing: Option<String> = tx
        .query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |row| row.get(0))
        .optional()
        .db()?;
    let epoch = match existing {
        Some(epoch) => epoch,
        None => {
            let epoch = uuid::Uuid::new_v4().to_string();
            tx.execute("INSERT INTO meta (key, value) VALUES ('epoch', ?1)", [&epoch])
                .db()?;
            epoch
        }
    };
    tx.commit().db()?;
    Ok(Epoch(epoch))
}

#[cfg(test)]
mod upload_migration;

#[cfg(test)]
mod tests {
    use super::*;

    /// (position, conversation, seq) of the whole feed, read the way the store reads it.
    fn feed(conn: &Connection) -> Vec<(u64, String, u64)> {
        crate::rows::feed_after(conn, kf_core::store::FeedPosition::ZERO, 100)
            .expect("feed")
            .into_iter()
            .map(|entry| {
                (
                    entry.position.0,
                    entry.event.conversation.to_string(),
                    entry.event.seq.0,
                )
            })
            .collect()
    }

    #[test]
    fn the_feed_is_read_by_the_primary_key() {
        let dir = tempfile::tempdir().expect("dir");
        let mut conn = version_one(&dir);
        migrate(&mut conn).expect("migrate");
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", crate::rows::FEED_AFTER))
            .expect("prepare")
            .query_map(rusqlite::params![0, 10], |r| r.get::<_, String>(3))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        // A range of the events table's own b-tree (the rowid), in its order: no index, no sort.
        assert!(
            plan.first()
                .is_some_and(|step| step.starts_with("SEARCH events USING INTEGER PRIMARY KEY (rowid>?)")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|step| step.contains("TEMP B-TREE")), "{plan:?}");
        let indexes: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' ORDER BY name",
            )
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(
            indexes,
            vec!["events_by_client_id", "sqlite_autoindex_events_1"],
            "the feed adds no index"
        );
    }

    #[test]
    fn events_stored_before_the_feed_are_in_it_in_commit_order() {
        use kf_core::model::{EventKind, MessageBody};
        let dir = tempfile::tempdir().expect("dir");
        let mut conn = Connection::open(dir.path().join("v4.sqlite3")).expect("open");
        for step in &MIGRATIONS[..4] {
            conn.execute_batch(step).expect("steps 1 to 4");
        }
        let json = |kind: &EventKind| serde_json::to_string(kind).expect("json");
        let created = json(&EventKind::Created {
            group: "g".parse().expect("group"),
            entry: None,
            fields: Default::default(),
        });
        let message = json(&EventKind::Message {
            body: MessageBody::text("hi"),
        });
        let closed = json(&EventKind::Closed);
        let (c1, c2) = (
            "01900a3c-5f2e-7b41-9c2d-6e8f0a1b2c3d",
            "01900a3c-5f2e-7b41-9c2d-6e8f0a1b2c3e",
        );
        // A file as a build without the feed left it: events of two conversations, interleaved in commit (rowid)
        // order.
        conn.execute_batch(&format!(
            "PRAGMA user_version = 4; \
             INSERT INTO meta (key, value) VALUES ('epoch', 'e4'); \
             INSERT INTO conversations (id, tenant, visitor, group_id, open_client_id, state, agent, last_agent, \
                 last_seq, created_at, updated_at) \
                 VALUES ('{c1}', 't', 'v', 'g', 'o', 'queued', NULL, NULL, 3, 1, 4), \
                        ('{c2}', 't', 'w', 'g', 'o', 'closed', NULL, NULL, 2, 2, 5); \
             INSERT INTO events (conversation, seq, at, author_role, author_id, client_id, kind, body, data) \
                 VALUES ('{c1}', 1, 1, 'visitor', 'v', 'o', 'created', NULL, '{created}'), \
                        ('{c1}', 2, 2, 'visitor', 'v', NULL, 'message', 'hi', '{message}'), \
                        ('{c2}', 1, 2, 'visitor', 'w', 'o', 'created', NULL, '{created}'), \
                        ('{c1}', 3, 4, 'visitor', 'v', NULL, 'message', 'hi', '{message}'), \
                        ('{c2}', 2, 5, 'system', '', NULL, 'closed', NULL, '{closed}');"
        ))
        .expect("version 4 data");
        migrate(&mut conn).expect("migrate");
        assert_eq!(user_version(&conn).expect("version"), SCHEMA_VERSION);
        let expected: Vec<(u64, String, u64)> = vec![
            (1, c1.into(), 1),
            (2, c1.into(), 2),
            (3, c2.into(), 1),
            (4, c1.into(), 3),
            (5, c2.into(), 2),
        ];
        assert_eq!(feed(&conn), expected);
        assert_eq!(crate::rows::feed_head(&conn).expect("head"), 5);
        let after: Vec<u64> = crate::rows::feed_after(&conn, kf_core::store::FeedPosition(3), 10)
            .expect("feed")
            .iter()
            .map(|entry| entry.position.0)
            .collect();
        assert_eq!(after, vec![4, 5]);
        // Migrating again changes nothing.
        migrate(&mut conn).expect("again");
        assert_eq!(feed(&conn), expected);
    }

    /// A file at version 1 with a conversation and its events.
    fn version_one(dir: &tempfile::TempDir) -> Connection {
        let conn = Connection::open(dir.path().join("v1.sqlite3")).expect("open");
        conn.execute_batch("PRAGMA foreign_keys = ON;").expect("fk");
        conn.execute_batch(MIGRATIONS[0]).expect("v1 schema");
        conn.execute_batch(
            "PRAGMA user_version = 1; \
             INSERT INTO meta (key, value) VALUES ('epoch', 'e1'); \
             INSERT INTO conversations (id, tenant, visitor, group_id, open_client_id, state, agent, last_agent, \
                 last_seq, created_at, updated_at) \
                 VALUES ('c1', 't', 'v', 'g', 'o', 'assigned', 'a', 'a', 2, 1, 2); \
             INSERT INTO events (conversation, seq, at, author_role, author_id, client_id, kind, body, data) \
                 VALUES ('c1', 1, 1, 'visitor', 'v', 'o', 'created', NULL, '{}'), \
                        ('c1', 2, 2, 'system', '', NULL, 'assigned', NULL, '{}');",
        )
        .expect("v1 data");
        conn
    }

    #[test]
    fn version_one_is_upgraded_keeping_rows_and_foreign_keys() {
        let dir = tempfile::tempdir().expect("dir");
        let mut conn = version_one(&dir);
        let epoch = migrate(&mut conn).expect("migrate");
        assert_eq!(epoch, Epoch("e1".into()));
        assert_eq!(user_version(&conn).expect("version"), SCHEMA_VERSION);
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .expect("fk");
        assert_eq!(fk, 1, "foreign keys are on again");
        let (state, last_seq): (String, i64) = conn
            .query_row(
                "SELECT state, last_seq FROM conversations WHERE id = 'c1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("row kept");
        assert_eq!((state.as_str(), last_seq), ("assigned", 2));
        let events: i64 = conn
            .query_row("SELECT count(*) FROM events WHERE conversation = 'c1'", [], |r| {
                r.get(0)
            })
            .expect("events");
        assert_eq!(events, 2);
        // The new state is accepted; the events still refer to an existing conversation.
        conn.execute(
            "UPDATE conversations SET state = 'offline', agent = NULL WHERE id = 'c1'",
            [],
        )
        .expect("offline state");
        let orphan = conn.execute(
            "INSERT INTO events (conversation, seq, at, author_role, author_id, kind, data) \
             VALUES ('missing', 1, 1, 'system', '', 'created', '{}')",
            [],
        );
        assert!(orphan.is_err(), "the foreign key still holds");
        let indexes: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'conversations' \
                 AND name LIKE 'conversations_%'",
                [],
                |r| r.get(0),
            )
            .expect("indexes");
        assert_eq!(indexes, 3);
        // Migrating again changes nothing.
        assert_eq!(migrate(&mut conn).expect("again"), Epoch("e1".into()));
    }

    #[test]
    fn version_three_gains_entry_points_and_keeps_old_created_events_readable() {
        let dir = tempfile::tempdir().expect("dir");
        let mut conn = version_one(&dir);
        // Step 2 rebuilds a referenced table: as `migrate` does, without foreign keys.
        conn.execute_batch("PRAGMA foreign_keys = OFF").expect("fk off");
        for step in &MIGRATIONS[1..3] {
            conn.execute_batch(step).expect("steps 2 and 3");
        }
        conn.execute_batch("PRAGMA foreign_keys = ON").expect("fk on");
        conn.execute_batch(
            "PRAGMA user_version = 3; \
             UPDATE events SET data = '{\"type\":\"created\",\"group\":\"g\"}' WHERE seq = 1;",
        )
        .expect("version 3");
        migrate(&mut conn).expect("migrate");
        assert_eq!(user_version(&conn).expect("version"), SCHEMA_VERSION);
        assert!(crate::rows::entry_points(&conn).expect("entry points").is_empty());
        let data: String = conn
            .query_row("SELECT data FROM events WHERE seq = 1", [], |r| r.get(0))
            .expect("created");
        let created: kf_core::model::EventKind = serde_json::from_str(&data).expect("old created event");
        assert!(matches!(
            created,
            kf_core::model::EventKind::Created { entry: None, .. }
        ));
    }

    #[test]
    fn version_five_gains_ratings_keeping_conversations_unrated_and_readable() {
        use kf_core::model::{Actor, ConversationState, EventKind, Seq, Timestamp};
        let dir = tempfile::tempdir().expect("dir");
        let mut conn = Connection::open(dir.path().join("v5.sqlite3")).expect("open");
        conn.execute_batch("PRAGMA foreign_keys = OFF").expect("fk off");
        for step in &MIGRATIONS[..5] {
            conn.execute_batch(step).expect("steps 1 to 5");
        }
        conn.execute_batch("PRAGMA foreign_keys = ON").expect("fk on");
        let c1 = "01900a3c-5f2e-7b41-9c2d-6e8f0a1b2c3d";
        let created = r#"{"type":"created","group":"g"}"#;
        let closed = r#"{"type":"closed"}"#;
        // A closed conversation as the previous version stored it.
        conn.execute_batch(&format!(
            "PRAGMA user_version = 5; \
             INSERT INTO meta (key, value) VALUES ('epoch', 'e5'); \
             INSERT INTO conversations (id, tenant, visitor, group_id, open_client_id, state, agent, last_agent, \
                 last_seq, created_at, updated_at) \
                 VALUES ('{c1}', 't', 'v', 'g', 'o', 'closed', NULL, 'a', 2, 1, 2); \
             INSERT INTO events (conversation, seq, at, author_role, author_id, client_id, kind, body, data) \
                 VALUES ('{c1}', 1, 1, 'visitor', 'v', 'o', 'created', NULL, '{created}'), \
                        ('{c1}', 2, 2, 'agent', 'a', NULL, 'closed', NULL, '{closed}');"
        ))
        .expect("version 5 data");
        assert_eq!(migrate(&mut conn).expect("migrate"), Epoch("e5".into()));
        assert_eq!(user_version(&conn).expect("version"), SCHEMA_VERSION);
        let id = c1.parse().expect("id");
        let mut record = crate::rows::conversation(&conn, id).expect("read").expect("kept");
        assert_eq!(record.state, ConversationState::Closed);
        assert_eq!((record.rating, record.last_seq), (None, Seq(2)));
        // It can be rated now: the record keeps the score, the column refuses one out of range.
        let rated = EventKind::Rated {
            score: 4,
            comment: Some("Quick".into()),
        };
        let seq = record.apply(&rated, Timestamp(3)).expect("rated once");
        crate::rows::update_conversation(&conn, &record).expect("update");
        let event = kf_core::model::Event::new(id, seq, Timestamp(3), Actor::System, None, rated);
        crate::rows::insert_event(&conn, &event).expect("rated event");
        let reread = crate::rows::conversation(&conn, id).expect("read").expect("row");
        assert_eq!((reread.rating, reread.last_seq), (Some(4), Seq(3)));
        let stored = crate::rows::events_after(&conn, id, Seq(2), 10).expect("events");
        assert_eq!(stored, vec![event]);
        assert!(
            conn.execute("UPDATE conversations SET rating = 6", []).is_err(),
            "1 to 5 only"
        );
    }

    /// The schema version just before the full-text index: the only line to change when steps are renumbered.
    const BEFORE_SEARCH: usize = 8;

    /// A file at the version before the full-text index, with a conversation of messages (Chinese and English)
    /// and a private note as that version stored them (the note's text in `data` only).
    fn before_search(dir: &tempfile::TempDir) -> (Connection, &'static str) {
        let mut conn = Connection::open(dir.path().join("before-search.sqlite3")).expect("open");
        conn.execute_batch("PRAGMA foreign_keys = OFF").expect("fk off");
        for step in &MIGRATIONS[..BEFORE_SEARCH] {
            conn.execute_batch(step).expect("earlier steps");
        }
        conn.execute_batch("PRAGMA foreign_keys = ON").expect("fk on");
        let c1 = "01900a3c-5f2e-7b41-9c2d-6e8f0a1b2c3d";
        let created = r#"{"type":"created","group":"g"}"#;
        let note = r#"{"type":"note","text":"Refund approved"}"#;
        let tx = conn.transaction().expect("tx");
        tx.execute_batch(&format!(
            "PRAGMA user_version = {BEFORE_SEARCH}; \
             INSERT INTO meta (key, value) VALUES ('epoch', 'e-before'); \
             INSERT INTO conversations (id, tenant, visitor, group_id, open_client_id, state, agent, last_agent, \
                 last_seq, created_at, updated_at) \
                 VALUES ('{c1}', 't', 'v', 'g', 'o', 'assigned', 'a', 'a', 5, 1, 5); \
             INSERT INTO events (conversation, seq, at, author_role, author_id, client_id, kind, body, data) \
                 VALUES ('{c1}', 1, 1, 'visitor', 'v', 'o', 'created', NULL, '{created}'), \
                        ('{c1}', 2, 2, 'visitor', 'v', NULL, 'message', '请问什么时候发货？', ''), \
                        ('{c1}', 3, 3, 'visitor', 'v', NULL, 'message', 'I want a REFUND', ''), \
                        ('{c1}', 4, 4, 'agent', 'a', NULL, 'note', NULL, '{note}'), \
                        ('{c1}', 5, 5, 'agent', 'a', NULL, 'message', '已经发货了', '');"
        ))
        .expect("data before the index");
        tx.commit().expect("commit");
        (conn, c1)
    }

    fn found(conn: &Connection, text: &str, notes: bool) -> Vec<(u64, bool, String)> {
        let mut query = kf_core::store::HistoryQuery::new("t".parse().expect("tenant")).text(text);
        query.notes = notes;
        crate::rows::search(conn, &query)
            .expect("search")
            .hits
            .into_iter()
            .map(|hit| (hit.seq.0, hit.note, hit.text))
            .collect()
    }

    fn fts_rows(conn: &Connection) -> i64 {
        conn.query_row(
            "SELECT count(*) FROM events_fts WHERE events_fts MATCH '\"ref\" AND \"efu\"'",
            [],
            |r| r.get(0),
        )
        .expect("count")
    }

    /// The searches of the file made by `before_search`, which give the same answers whatever the index holds.
    fn searches_find_the_old_messages_and_the_note(conn: &Connection) {
        assert_eq!(
            found(conn, "发货", false),
            vec![
                (5, false, "已经发货了".into()),
                (2, false, "请问什么时候发货？".into())
            ]
        );
        assert_eq!(
            found(conn, "发货了", false),
            vec![(5, false, "已经发货了".into())]
        );
        assert_eq!(
            found(conn, "refund", false),
            vec![(3, false, "I want a REFUND".into())]
        );
        assert_eq!(
            found(conn, "refund", true),
            vec![
                (4, true, "Refund approved".into()),
                (3, false, "I want a REFUND".into())
            ]
        );
    }

    #[test]
    fn the_migration_indexes_nothing_and_searches_are_right_before_and_after_the_indexer_catches_up() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut conn, _) = before_search(&dir);
        assert_eq!(migrate(&mut conn).expect("migrate"), Epoch("e-before".into()));
        assert_eq!(user_version(&conn).expect("version"), SCHEMA_VERSION);
        // Opening does not wait for the index: the migration leaves it empty, at position 0 …
        assert_eq!(fts_rows(&conn), 0, "nothing indexed by the migration");
        assert_eq!(crate::indexer::position(&conn).expect("position"), 0);
        // … and searches scan what is not indexed: the same answers.
        searches_find_the_old_messages_and_the_note(&conn);
        // The note reads back as before: its data is unchanged.
        let id = "01900a3c-5f2e-7b41-9c2d-6e8f0a1b2c3d".parse().expect("id");
        let events = crate::rows::events_after(&conn, id, kf_core::model::Seq(3), 1).expect("events");
        assert!(
            matches!(&events[0].data, kf_core::model::EventKind::Note { text, .. } if text == "Refund approved")
        );
        // The indexer catches up, in batches: two events, then the rest.
        let batch = |position, read| crate::indexer::Batch {
            position,
            read,
            head: 5,
        };
        assert_eq!(
            crate::indexer::index_batch(&mut conn, 2).expect("index"),
            batch(2, 2)
        );
        searches_find_the_old_messages_and_the_note(&conn);
        assert_eq!(
            crate::indexer::index_batch(&mut conn, 100).expect("index"),
            batch(5, 3)
        );
        assert_eq!(fts_rows(&conn), 2, "the message and the note are in the index");
        assert_eq!(
            crate::indexer::index_batch(&mut conn, 100).expect("index"),
            batch(5, 0)
        );
        conn.execute_batch("INSERT INTO events_fts (events_fts) VALUES ('integrity-check')")
            .expect("the index matches the texts");
        searches_find_the_old_messages_and_the_note(&conn);
        // An event stored after the migration is found before it is indexed (the tail), and after.
        let event = kf_core::model::Event::new(
            id,
            kf_core::model::Seq(6),
            kf_core::model::Timestamp(6),
            kf_core::model::Actor::Visitor("v".parse().expect("visitor")),
            None,
            kf_core::model::EventKind::Message {
                body: kf_core::model::MessageBody::text("退款什么时候到账"),
            },
        );
        crate::rows::insert_event(&conn, &event).expect("insert");
        for _ in 0..2 {
            assert_eq!(found(&conn, "什么时候", false).len(), 2);
            assert_eq!(
                found(&conn, "到账", false),
                vec![(6, false, "退款什么时候到账".into())]
            );
            crate::indexer::index_batch(&mut conn, 100).expect("index");
        }
        assert_eq!(crate::indexer::position(&conn).expect("position"), 6);
        // Migrating again changes nothing.
        migrate(&mut conn).expect("again");
        assert_eq!(found(&conn, "发货", false).len(), 2);
        assert_eq!(crate::indexer::position(&conn).expect("position"), 6);
    }

    #[test]
    fn longer_queries_use_the_trigram_index() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut conn, _) = before_search(&dir);
        migrate(&mut conn).expect("migrate");
        let version: String = conn
            .query_row("SELECT sqlite_version()", [], |r| r.get(0))
            .expect("version");
        let parts: Vec<u32> = version.split('.').map(|p| p.parse().expect("number")).collect();
        assert!(
            parts[..2] >= [3, 34][..],
            "the trigram tokenizer needs SQLite 3.34, have {version}"
        );
        let plan = |sql: &str, args: &[&str]| -> Vec<String> {
            conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("prepare")
                .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows")
        };
        let steps = plan(
            &format!(
                "SELECT e.id FROM events e WHERE {} AND e.body LIKE ?2 ESCAPE '\\' ORDER BY e.id DESC LIMIT 20",
                crate::rows::indexed_or_tail("e", 1)
            ),
            &["\"发货了\"", "%发货了%"],
        );
        // The candidates are the index's rows and the tail's, each a lookup by rowid: no scan of `events`.
        assert!(
            steps.iter().any(|step| step.contains("VIRTUAL TABLE INDEX")),
            "{steps:?}"
        );
        assert!(
            steps
                .iter()
                .any(|step| step.contains("SEARCH e USING INTEGER PRIMARY KEY (rowid=?)")),
            "{steps:?}"
        );
        assert!(
            steps
                .iter()
                .any(|step| step.contains("SEARCH events USING INTEGER PRIMARY KEY (rowid>?)")),
            "{steps:?}"
        );
        assert!(
            !steps
                .iter()
                .any(|step| step == "SCAN e" || step.starts_with("SCAN e ")),
            "{steps:?}"
        );
    }

    #[test]
    fn version_six_gains_labels_and_attributes_keeping_conversations_and_visitors() {
        use kf_core::labels::{AttributeObject, AttributeValue, Label};
        use kf_core::model::{Actor, AgentId, ConversationState, EventKind, Seq, Timestamp};
        let dir = tempfile::tempdir().expect("dir");
        let mut conn = Connection::open(dir.path().join("v6.sqlite3")).expect("open");
        conn.execute_batch("PRAGMA foreign_keys = OFF").expect("fk off");
        for step in &MIGRATIONS[..6] {
            conn.execute_batch(step).expect("steps 1 to 6");
        }
        conn.execute_batch("PRAGMA foreign_keys = ON").expect("fk on");
        let c1 = "01900a3c-5f2e-7b41-9c2d-6e8f0a1b2c3d";
        let created = r#"{"type":"created","group":"g"}"#;
        let assigned = r#"{"type":"assigned","agent":"a"}"#;
        // An assigned, rated-later conversation and its visitor as version 6 stored them.
        conn.execute_batch(&format!(
            "PRAGMA user_version = 6; \
             INSERT INTO meta (key, value) VALUES ('epoch', 'e6'); \
             INSERT INTO visitors (tenant, id, name, created_at) VALUES ('t', 'v', 'Ada', 1); \
             INSERT INTO conversations (id, tenant, visitor, group_id, open_client_id, state, agent, last_agent, \
                 last_seq, created_at, updated_at, rating) \
                 VALUES ('{c1}', 't', 'v', 'g', 'o', 'assigned', 'a', 'a', 2, 1, 2, NULL); \
             INSERT INTO events (conversation, seq, at, author_role, author_id, client_id, kind, body, data) \
                 VALUES ('{c1}', 1, 1, 'visitor', 'v', 'o', 'created', NULL, '{created}'), \
                        ('{c1}', 2, 2, 'system', '', NULL, 'assigned', NULL, '{assigned}');"
        ))
        .expect("version 6 data");
        assert_eq!(migrate(&mut conn).expect("migrate"), Epoch("e6".into()));
        assert_eq!(user_version(&conn).expect("version"), SCHEMA_VERSION);
        let id = c1.parse().expect("id");
        let mut record = crate::rows::conversation(&conn, id).expect("read").expect("kept");
        let agent: AgentId = "a".parse().expect("agent");
        assert_eq!(record.state, ConversationState::Assigned { agent: agent.clone() });
        assert!(record.labels.is_empty() && record.attributes.is_empty());
        assert_eq!(record.last_seq, Seq(2));
        let tenant = "t".parse().expect("tenant");
        let visitor_id = "v".parse().expect("visitor");
        let mut visitor = crate::rows::visitor(&conn, &tenant, &visitor_id)
            .expect("read")
            .expect("kept");
        assert_eq!(
            (visitor.name.as_deref(), visitor.attributes.len()),
            (Some("Ada"), 0)
        );
        // Labels and attributes now: on the record, in the log, on the visitor, and the definitions' tables.
        for (seq, data) in [
            (3, EventKind::Labeled { label: "VIP".into() }),
            (
                4,
                EventKind::AttributeSet {
                    object: AttributeObject::Conversation,
                    key: "order".into(),
                    value: Some(AttributeValue::Number(1042.into())),
                },
            ),
        ] {
            assert_eq!(record.apply(&data, Timestamp(seq)).expect("applies"), Seq(seq));
            crate::rows::update_conversation(&conn, &record).expect("update");
            let event = kf_core::model::Event::new(
                id,
                Seq(seq),
                Timestamp(seq),
                Actor::Agent(agent.clone()),
                None,
                data,
            );
            crate::rows::insert_event(&conn, &event).expect("event");
        }
        let reread = crate::rows::conversation(&conn, id).expect("read").expect("row");
        assert_eq!(reread, record);
        assert_eq!(
            crate::rows::events_after(&conn, id, Seq(2), 10)
                .expect("events")
                .len(),
            2
        );
        visitor
            .attributes
            .insert("vip".into(), AttributeValue::Bool(true));
        crate::rows::put_visitor(&conn, &visitor).expect("put visitor");
        let visitor_again = crate::rows::visitor(&conn, &tenant, &visitor_id)
            .expect("read")
            .expect("row");
        assert_eq!(visitor_again, visitor);
        crate::rows::put_label(&conn, &Label::new(tenant.clone(), "VIP", "#d97706")).expect("label");
        // Schema 8: it can be put on hold (its agent and wake time kept), and the state is checked.
        let snoozed = EventKind::Snoozed {
            until: Some(Timestamp(90_000)),
        };
        record.apply(&snoozed, Timestamp(5)).expect("snoozed");
        crate::rows::update_conversation(&conn, &record).expect("update");
        let parked = crate::rows::conversation(&conn, id).expect("read").expect("row");
        assert_eq!(
            parked.state,
            ConversationState::OnHold {
                agent: agent.clone(),
                until: Some(Timestamp(90_000))
            }
        );
        assert!(
            conn.execute("UPDATE conversations SET agent = NULL", []).is_err(),
            "on hold keeps its agent"
        );
        assert_eq!(crate::rows::labels(&conn, &tenant).expect("labels").len(), 1);
        assert!(
            conn.execute(
                "INSERT INTO attribute_definitions (tenant, object, key, kind) VALUES ('t', 'agent', 'k', 'string')",
                []
            )
            .is_err(),
            "visitor or conversation only"
        );
    }

    /// The schema version just before seen marks: the only line to change when steps are renumbered.
    const BEFORE_SEEN: usize = 9;

    #[test]
    fn the_version_before_seen_marks_keeps_its_conversations_and_gains_the_marks() {
        use kf_core::model::{Actor, SeenMark, Seq};
        let dir = tempfile::tempdir().expect("dir");
        let mut conn = Connection::open(dir.path().join("v9.sqlite3")).expect("open");
        conn.execute_batch("PRAGMA foreign_keys = OFF").expect("fk off");
        for step in &MIGRATIONS[..BEFORE_SEEN] {
            conn.execute_batch(step).expect("the steps before seen marks");
        }
        conn.execute_batch("PRAGMA foreign_keys = ON").expect("fk on");
        let c1 = "01900a3c-5f2e-7b41-9c2d-6e8f0a1b2c3d";
        let created = r#"{"type":"created","group":"g"}"#;
        let assigned = r#"{"type":"assigned","agent":"a"}"#;
        conn.execute_batch(&format!(
            "PRAGMA user_version = {BEFORE_SEEN}; \
             INSERT INTO meta (key, value) VALUES ('epoch', 'e9'); \
             INSERT INTO conversations (id, tenant, visitor, group_id, open_client_id, state, agent, last_agent, \
                 last_seq, created_at, updated_at) \
                 VALUES ('{c1}', 't', 'v', 'g', 'o', 'assigned', 'a', 'a', 3, 1, 3); \
             INSERT INTO events (conversation, seq, at, author_role, author_id, client_id, kind, body, data) \
                 VALUES ('{c1}', 1, 1, 'visitor', 'v', 'o', 'created', NULL, '{created}'), \
                        ('{c1}', 2, 2, 'system', '', NULL, 'assigned', NULL, '{assigned}'), \
                        ('{c1}', 3, 3, 'visitor', 'v', 'm1', 'message', 'hello', '');"
        ))
        .expect("version 9 data");
        assert_eq!(migrate(&mut conn).expect("migrate"), Epoch("e9".into()));
        assert_eq!(user_version(&conn).expect("version"), SCHEMA_VERSION);
        let id = c1.parse().expect("id");
        let record = crate::rows::conversation(&conn, id).expect("read").expect("kept");
        assert_eq!(record.last_seq, Seq(3));
        assert_eq!(
            crate::rows::events_after(&conn, id, Seq(0), 10)
                .expect("events")
                .len(),
            3
        );
        assert!(
            crate::rows::seen(&conn, id).expect("seen").is_empty(),
            "no marks yet"
        );
        let visitor = Actor::Visitor("v".parse().expect("visitor"));
        let agent = Actor::Agent("a".parse().expect("agent"));
        let marks = [
            SeenMark::new(id, visitor.clone(), Seq(3)),
            SeenMark::new(id, agent.clone(), Seq(2)),
        ];
        crate::rows::record_seen(&conn, &marks).expect("record");
        crate::rows::record_seen(&conn, &[SeenMark::new(id, visitor.clone(), Seq(1))]).expect("lower");
        assert_eq!(
            crate::rows::seen(&conn, id).expect("seen"),
            vec![
                SeenMark::new(id, agent, Seq(2)),
                SeenMark::new(id, visitor, Seq(3))
            ],
            "ordered by role, never lowered"
        );
    }

    /// The schema version just before the admin step: the only line to change when steps are renumbered.
    const BEFORE_ADMIN: usize = 12;

    #[test]
    fn the_admin_step_gains_active_agents_and_the_audit_log_keeping_agents() {
        let dir = tempfile::tempdir().expect("dir");
        let mut conn = version_one(&dir);
        conn.execute_batch("PRAGMA foreign_keys = OFF").expect("fk off");
        for step in &MIGRATIONS[1..BEFORE_ADMIN] {
            conn.execute_batch(step).expect("the steps before the admin step");
        }
        conn.execute_batch(&format!(
            "PRAGMA user_version = {BEFORE_ADMIN}; PRAGMA foreign_keys = ON; \
             INSERT INTO agents (tenant, id, name, groups, capacity, group_capacity) \
                 VALUES ('t', 'a1', 'Alice', '[\"g\"]', 2, '{{\"g\":1}}');"
        ))
        .expect("an agent of the version before");
        migrate(&mut conn).expect("migrate");
        let agents = crate::rows::agents(&conn).expect("agents");
        assert_eq!(agents.len(), 1);
        assert!(agents[0].active, "agents of before are active");
        assert_eq!((agents[0].capacity, agents[0].group_capacity.len()), (2, 1));
        let inactive = agents[0].clone().with_active(false);
        crate::rows::put_agent(&conn, &inactive).expect("deactivate");
        assert_eq!(crate::rows::agents(&conn).expect("agents"), vec![inactive]);
        let entries: i64 = conn
            .query_row("SELECT count(*) FROM audit_log", [], |row| row.get(0))
            .expect("audit table");
        assert_eq!(entries, 0);
        assert!(
            crate::rows::allowed_origins(&conn)
                .expect("origins table")
                .is_empty()
        );
    }

    #[test]
    fn older_records_load_with_default_routing_settings() {
        let dir = tempfile::tempdir().expect("dir");
        let mut conn = version_one(&dir);
        conn.execute_batch(
            "INSERT INTO agents (tenant, id, name, groups, capacity) VALUES ('t', 'a1', 'Alice', '[\"g\"]', 2);
             INSERT INTO skill_groups (tenant, id, name) VALUES ('t', 'g', 'Group');",
        )
        .expect("version 1 records");
        migrate(&mut conn).expect("migrate");
        let agents = crate::rows::agents(&conn).expect("agents");
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[0].capacity, 2);
        assert!(agents[0].group_capacity.is_empty());
        let groups = crate::rows::groups(&conn).expect("groups");
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].strategy, kf_core::model::Strategy::Default);
        assert_eq!(groups[0].max_active, None);
        assert!(groups[0].timers.is_off());
    }

    /// The schema version just before the statistics checkpoint: the only line to change when steps are
    /// renumbered.
    const BEFORE_STATS: usize = 11;

    #[test]
    fn the_statistics_step_keeps_the_data_and_starts_without_a_checkpoint() {
        let dir = tempfile::tempdir().expect("dir");
        // The search file, brought to the version just before this step: its data must come through.
        let (mut conn, c1) = before_search(&dir);
        for step in &MIGRATIONS[BEFORE_SEARCH..BEFORE_STATS] {
            conn.execute_batch(step)
                .expect("steps up to the one before statistics");
        }
        conn.execute_batch(&format!("PRAGMA user_version = {BEFORE_STATS}"))
            .expect("version");
        assert_eq!(migrate(&mut conn).expect("migrate"), Epoch("e-before".into()));
        assert_eq!(user_version(&conn).expect("version"), SCHEMA_VERSION);
        let id = c1.parse().expect("id");
        let record = crate::rows::conversation(&conn, id).expect("read").expect("kept");
        assert_eq!(record.last_seq, kf_core::model::Seq(5));
        assert_eq!(
            crate::rows::events_after(&conn, id, kf_core::model::Seq::ZERO, 10)
                .expect("events")
                .len(),
            5
        );
        searches_find_the_old_messages_and_the_note(&conn);
        assert_eq!(crate::rows::stats_checkpoint(&conn).expect("read"), None);
        let saved = kf_core::store::StatsCheckpoint::new(
            Epoch("e-before".into()),
            kf_core::store::FeedPosition(5),
            b"{}".to_vec(),
        );
        crate::rows::save_stats_checkpoint(&conn, &saved).expect("save");
        assert_eq!(crate::rows::stats_checkpoint(&conn).expect("read"), Some(saved));
        assert!(
            conn.execute(
                "INSERT INTO stats_checkpoint (id, epoch, position, state) VALUES (2, 'e', 0, x'')",
                []
            )
            .is_err(),
            "one row only"
        );
    }
}
