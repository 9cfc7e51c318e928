//! Step 11 (uploads) on a file of version 10: its conversations and events stay readable, uploads can be
//! recorded, and a message with attachments round-trips beside the old text-only ones.

use kf_core::model::{
    Actor, Attachment, AttachmentId, ConversationId, Event, EventKind, MessageBody, Seq, Timestamp,
};
use kf_core::store::{Upload, UploadState};
use rusqlite::Connection;

use super::{MIGRATIONS, SCHEMA_VERSION, migrate, user_version};
use crate::rows;

/// The schema version just before uploads: the only line to change when steps are renumbered.
const BEFORE_UPLOADS: usize = 10;

const CONVERSATION: &str = "01900a3c-5f2e-7b41-9c2d-6e8f0a1b2c3d";

/// A file as the version 10 build left it (the version before uploads): a conversation with its `created` event and a text message.
fn before_uploads(dir: &tempfile::TempDir) -> Connection {
    let conn = Connection::open(dir.path().join("v9.sqlite3")).expect("open");
    for step in &MIGRATIONS[..BEFORE_UPLOADS] {
        conn.execute_batch(step).expect("the steps before uploads");
    }
    let created = serde_json::to_string(&EventKind::Created {
        group: "g".parse().expect("group"),
        entry: None,
        fields: Default::default(),
    })
    .expect("json");
    conn.execute_batch(&format!(
        "PRAGMA user_version = {BEFORE_UPLOADS}; \
         INSERT INTO meta (key, value) VALUES ('epoch', 'e9'); \
         INSERT INTO conversations (id, tenant, visitor, group_id, open_client_id, state, agent, last_agent, \
             last_seq, created_at, updated_at) \
             VALUES ('{CONVERSATION}', 't', 'v', 'g', 'o', 'queued', NULL, NULL, 2, 1, 2); \
         INSERT INTO events (conversation, seq, at, author_role, author_id, client_id, kind, body, data) \
             VALUES ('{CONVERSATION}', 1, 1, 'visitor', 'v', 'o', 'created', NULL, '{created}'), \
                    ('{CONVERSATION}', 2, 2, 'visitor', 'v', 'm1', 'message', 'where is my parcel?', '');"
    ))
    .expect("v9 data");
    conn
}

#[test]
fn before_uploads_gains_uploads_keeping_its_logs() {
    let dir = tempfile::tempdir().expect("dir");
    let mut conn = before_uploads(&dir);
    assert_eq!(migrate(&mut conn).expect("migrate").0, "e9");
    assert_eq!(user_version(&conn).expect("version"), SCHEMA_VERSION);
    let id: ConversationId = CONVERSATION.parse().expect("id");
    let conversation = rows::conversation(&conn, id).expect("read").expect("kept");
    assert_eq!(conversation.last_seq, Seq(2));
    let events = rows::events_after(&conn, id, Seq(0), 10).expect("events");
    assert_eq!(events.len(), 2);
    assert!(matches!(&events[1].data, EventKind::Message { body } if body.text == "where is my parcel?"));

    let visitor = Actor::Visitor("v".parse().expect("visitor"));
    let attachment_id = AttachmentId::generate();
    let upload = Upload::receiving(
        id,
        visitor.clone(),
        Timestamp(3),
        attachment_id.clone(),
        "dent.png",
    );
    rows::begin_upload(&conn, &upload).expect("begin");
    let attachment =
        Attachment::new(attachment_id.clone(), "dent.png", "image/png", 2048).with_image(8, 6, true);
    assert!(rows::finish_upload(&conn, &attachment, 1 << 20).expect("finish"));
    let message = Event::new(
        id,
        Seq(3),
        Timestamp(3),
        visitor,
        None,
        EventKind::Message {
            body: MessageBody::text("").with_attachments(vec![attachment.clone()]),
        },
    );
    rows::insert_event(&conn, &message).expect("insert");
    rows::commit_uploads(&conn, std::slice::from_ref(&attachment_id)).expect("commit");
    let events = rows::events_after(&conn, id, Seq(2), 10).expect("events");
    assert_eq!(events, [message]);
    let stored = rows::upload_by_id(&conn, &attachment_id)
        .expect("read")
        .expect("recorded");
    assert_eq!(
        (stored.state, stored.attachment),
        (UploadState::Committed, attachment)
    );
    assert_eq!(rows::conversation_upload_bytes(&conn, id).expect("bytes"), 2048);
    // Migrating again changes nothing.
    assert_eq!(migrate(&mut conn).expect("again").0, "e9");
    assert!(rows::upload_by_id(&conn, &attachment_id).expect("read").is_some());
}
