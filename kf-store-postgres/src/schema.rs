//! The schema and its migrations, versioned in `kf_schema` and applied under an advisory lock, so that several
//! nodes starting at once upgrade a database once.

use kf_core::model::Epoch;
use tokio_postgres::Client;

use crate::PostgresError;

/// Migration steps; step `n` (0-based) takes the schema from version `n` to `n + 1`. Append only: a released step
/// never changes.
///
/// Records are stored as JSON text (`data`), with the columns that queries filter, order or constrain on beside
/// it: the engine reads records whole, and JSON text keeps every value exactly (`jsonb` refuses a `\u0000`).
/// Key columns use the "C" collation, so that listings sort bytewise as the SQLite store's do, whatever the
/// database's default collation.
const MIGRATIONS: &[&str] = &[
    // 1: everything the store traits keep, and the change feed's head.
    r#"
    CREATE TABLE kf_meta (
        key   TEXT COLLATE "C" PRIMARY KEY,
        value TEXT NOT NULL
    );

    -- The change feed's head: the position of the last committed event. A transaction that stores events bumps
    -- it as its last statement, so it holds the row's lock from assigning positions until its commit: commit
    -- order is position order, and no reader can see a position before every smaller one (docs/architecture.md).
    CREATE TABLE kf_feed_head (
        singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
        position  BIGINT NOT NULL
    );
    INSERT INTO kf_feed_head (position) VALUES (0);

    CREATE TABLE conversations (
        id             UUID PRIMARY KEY,
        tenant         TEXT COLLATE "C" NOT NULL,
        visitor        TEXT COLLATE "C" NOT NULL,
        open_client_id TEXT COLLATE "C" NOT NULL,            -- the visitor's idempotency key of the open
        state          TEXT COLLATE "C" NOT NULL,
        agent          TEXT COLLATE "C",                     -- the owner while assigned, the agent who parked it while on hold
        group_id       TEXT COLLATE "C" NOT NULL,
        last_agent     TEXT COLLATE "C",
        rating         SMALLINT,
        labels         TEXT[] COLLATE "C" NOT NULL DEFAULT '{}',
        last_seq       BIGINT NOT NULL,          -- bumped in the transaction that stores each event
        created_at     BIGINT NOT NULL,          -- milliseconds since the Unix epoch
        data           TEXT NOT NULL,            -- the Conversation as JSON
        UNIQUE (tenant, visitor, open_client_id)
    );
    CREATE INDEX conversations_by_visitor ON conversations (tenant, visitor, created_at, id);
    CREATE INDEX conversations_by_agent ON conversations (tenant, agent, created_at, id) WHERE agent IS NOT NULL;
    CREATE INDEX conversations_open ON conversations (created_at, id) WHERE state <> 'closed';

    CREATE TABLE events (
        position     BIGINT PRIMARY KEY,         -- the change feed position
        conversation UUID NOT NULL REFERENCES conversations (id),
        seq          BIGINT NOT NULL,
        at           BIGINT NOT NULL,
        author_role  TEXT COLLATE "C" NOT NULL,              -- visitor, agent or system
        author_id    TEXT COLLATE "C" NOT NULL,              -- empty for the system
        client_id    TEXT COLLATE "C",
        kind         TEXT COLLATE "C" NOT NULL,              -- the EventKind's name
        tenant       TEXT COLLATE "C" NOT NULL,              -- the conversation's, for the feed and searches
        search_text  TEXT,                       -- a message's or a note's text, ASCII letters lowercased
        data         TEXT NOT NULL,              -- the EventKind as JSON
        UNIQUE (conversation, seq)
    );
    -- Idempotency: one event per (conversation, author, client id), whichever node stores it.
    CREATE UNIQUE INDEX events_by_client_id ON events (conversation, author_role, author_id, client_id)
        WHERE client_id IS NOT NULL;
    -- History search (`history.rs`): a tenant's messages in feed order, and a trigram index that narrows a
    -- `LIKE '%text%'` to the rows holding the query's trigrams (three characters or more).
    CREATE INDEX events_searchable ON events (tenant, position) WHERE search_text IS NOT NULL;
    -- Conversation pages of history, in the order of their `created` events.
    CREATE INDEX events_created ON events (tenant, position) WHERE seq = 1;
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX events_search_text ON events USING gin (search_text gin_trgm_ops);

    CREATE TABLE conversation_contexts (
        conversation UUID PRIMARY KEY REFERENCES conversations (id),
        data         TEXT NOT NULL
    );

    CREATE TABLE visitors (tenant TEXT COLLATE "C" NOT NULL, id TEXT COLLATE "C" NOT NULL, data TEXT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE TABLE agents (tenant TEXT COLLATE "C" NOT NULL, id TEXT COLLATE "C" NOT NULL, data TEXT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE TABLE skill_groups (tenant TEXT COLLATE "C" NOT NULL, id TEXT COLLATE "C" NOT NULL, data TEXT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE TABLE entry_points (tenant TEXT COLLATE "C" NOT NULL, id TEXT COLLATE "C" NOT NULL, data TEXT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE TABLE group_hours (
        tenant   TEXT COLLATE "C" NOT NULL,
        group_id TEXT COLLATE "C" NOT NULL,
        data     TEXT NOT NULL,
        PRIMARY KEY (tenant, group_id)
    );
    CREATE TABLE quick_replies (
        tenant   TEXT COLLATE "C" NOT NULL,
        id       TEXT COLLATE "C" NOT NULL,
        scope    TEXT COLLATE "C" NOT NULL,                  -- agent or group
        owner    TEXT COLLATE "C" NOT NULL,                  -- the agent or group id
        shortcut TEXT COLLATE "C" NOT NULL,
        data     TEXT NOT NULL,
        PRIMARY KEY (tenant, id),
        CONSTRAINT quick_replies_shortcut UNIQUE (tenant, scope, owner, shortcut)
    );
    CREATE TABLE labels (tenant TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, data TEXT NOT NULL, PRIMARY KEY (tenant, name));
    CREATE TABLE attribute_definitions (
        tenant TEXT COLLATE "C" NOT NULL,
        object TEXT COLLATE "C" NOT NULL,       -- visitor or conversation
        key    TEXT COLLATE "C" NOT NULL,
        data   TEXT NOT NULL,
        PRIMARY KEY (tenant, object, key)
    );

    -- Seen marks: how far each participant (visitor or agent) has seen each conversation, one row per
    -- (conversation, participant), only ever raised (`seen.rs`). The engine coalesces `read` receipts into
    -- batches, so a batch is one statement.
    CREATE TABLE seen (
        conversation UUID NOT NULL REFERENCES conversations (id),
        role         TEXT COLLATE "C" NOT NULL CHECK (role IN ('visitor', 'agent')),
        id           TEXT COLLATE "C" NOT NULL,
        seq          BIGINT NOT NULL CHECK (seq >= 1),
        PRIMARY KEY (conversation, role, id)
    );
    "#,
    // 2: the admin API: the web origins each tenant allows, changed while running (agents' `active` flag and
    // everything else rides in the records' JSON `data`). The audit log came with step 3.
    r#"
    CREATE TABLE allowed_origins (tenant TEXT COLLATE "C" PRIMARY KEY, data TEXT NOT NULL);
    "#,
    // 3: the stores of their own that the SQLite store has since its steps 11-13. The audit log of admin changes
    // (`audit.rs`): ids from an identity column, increasing whichever node appends, listed per tenant newest
    // first; the statistics checkpoint (`stats.rs`); the records of uploads (`uploads.rs`).
    r#"
    CREATE TABLE audit_log (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,   -- increasing: the order of the changes
        tenant      TEXT COLLATE "C" NOT NULL,
        actor       TEXT COLLATE "C" NOT NULL,  -- the admin's agent id
        at          BIGINT NOT NULL,            -- milliseconds since the Unix epoch
        action      TEXT COLLATE "C" NOT NULL,  -- `<object kind>.<verb>`
        object_kind TEXT COLLATE "C" NOT NULL,
        object_id   TEXT COLLATE "C" NOT NULL,
        before      TEXT,                       -- the object as JSON; NULL: it did not exist
        after       TEXT                        -- NULL: it was deleted
    );
    CREATE INDEX audit_log_by_tenant ON audit_log (tenant, id);

    -- The statistics checkpoint (`stats.rs`, kf_core::stats::StatsKeeper): one row, replaced whole by each save —
    -- the serialized aggregates and the feed position (of the store epoch `epoch`) they include everything up to.
    CREATE TABLE stats_checkpoint (
        singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
        epoch     TEXT NOT NULL,
        position  BIGINT NOT NULL,
        state     BYTEA NOT NULL
    );

    -- The records of uploaded files (`uploads.rs`, kf_core::store::Uploads), recorded before their first byte is
    -- stored. No foreign key to `conversations`: the records may be kept apart from the logs. `size` is the
    -- attachment's, kept out of the JSON so that a conversation's total is a sum over an index; `uploads_stale`
    -- serves the cleanup pass.
    CREATE TABLE uploads (
        id           TEXT COLLATE "C" PRIMARY KEY,
        conversation UUID NOT NULL,
        owner_role   TEXT COLLATE "C" NOT NULL CHECK (owner_role IN ('visitor', 'agent')),
        owner_id     TEXT COLLATE "C" NOT NULL,
        created_at   BIGINT NOT NULL,           -- milliseconds since the Unix epoch
        state        TEXT COLLATE "C" NOT NULL CHECK (state IN ('receiving', 'ready', 'committed')),
        size         BIGINT NOT NULL,
        attachment   TEXT NOT NULL              -- the kf_core::model::Attachment as JSON
    );
    CREATE INDEX uploads_by_conversation ON uploads (conversation, state, size);
    CREATE INDEX uploads_stale ON uploads (created_at, id) WHERE state <> 'committed';
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies the missing migration steps and makes sure an epoch exists, in one transaction holding an advisory
/// lock (other nodes opening the same database wait for it); returns the epoch.
pub(crate) async fn migrate(client: &mut Client) -> Result<Epoch, PostgresError> {
    let tx = client.transaction().await?;
    // The key is arbitrary but fixed: "kf" in ASCII, then the schema's name.
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(27494, 1);
         CREATE TABLE IF NOT EXISTS kf_schema (singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
             version BIGINT NOT NULL);
         INSERT INTO kf_schema (version) VALUES (0) ON CONFLICT DO NOTHING;",
    )
    .await?;
    let version: i64 = tx.query_one("SELECT version FROM kf_schema", &[]).await?.get(0);
    if version > SCHEMA_VERSION {
        return Err(PostgresError::FutureSchema {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let done = usize::try_from(version).map_err(|_| PostgresError::UnknownSchema(version))?;
    for (index, step) in MIGRATIONS.iter().enumerate().skip(done) {
        tx.batch_execute(step).await?;
        tracing::debug!(version = index + 1, "applied postgres schema migration");
    }
    if done < MIGRATIONS.len() {
        tx.execute("UPDATE kf_schema SET version = $1", &[&SCHEMA_VERSION])
            .await?;
    }
    let epoch = uuid::Uuid::new_v4().to_string();
    tx.execute(
        "INSERT INTO kf_meta (key, value) VALUES ('epoch', $1) ON CONFLICT (key) DO NOTHING",
        &[&epoch],
    )
    .await?;
    let epoch: String = tx
        .query_one("SELECT value FROM kf_meta WHERE key = 'epoch'", &[])
        .await?
        .get(0);
    tx.commit().await?;
    Ok(Epoch(epoch))
}
