//! The transport scenario of messages with attachments (the upload itself is HTTP, `kf-attachments`; here the
//! uploads are recorded straight in the engine's upload records, as the endpoint would).

use std::sync::Arc;

use serde_json::{Value, json};

use super::{
    Transport, answered, conversation, engine, events_until, limits, must, nothing_more, refused, seq_of,
    stored,
};
use crate::Engine;
use crate::model::{
    Actor, AgentId, Attachment, AttachmentId, ConversationId, EventKind, Timestamp, VisitorId,
};
use crate::store::{Upload, UploadState};
use crate::testkit::fixtures::Must;

/// Records a finished upload of `owner` to `conversation`, as the upload endpoint does.
async fn uploaded(engine: &Engine, conversation: &str, owner: Actor, attachment: &Attachment) {
    let uploads = engine.uploads().must("the shop's engine keeps upload records");
    let conversation: ConversationId = must(conversation.parse(), "conversation id");
    let upload = Upload::receiving(
        conversation,
        owner,
        Timestamp(1),
        attachment.id.clone(),
        &attachment.name,
    );
    must(uploads.begin_upload(upload).await, "begin upload");
    let finished = must(
        uploads.finish_upload(attachment.clone(), u64::MAX).await,
        "finish upload",
    );
    assert!(finished);
}

fn send(conversation: &str, client_id: &str, text: &str, attachments: &[&AttachmentId]) -> Value {
    json!({"type": "send", "id": client_id, "conversation": conversation, "client_id": client_id,
           "body": {"text": text}, "attachments": attachments})
}

/// A visitor sends an image with text, the agent a PDF without text: each `ack`ed, each `event` carrying the
/// attachment as it was recorded at upload (sniffed type, size, an image's width, height and thumbnail) to both
/// sides, and the uploads marked committed. Someone else's upload, an unknown one, one named twice, and
/// attachments written into `body` are refused, and nothing is stored for them.
pub async fn attachments_travel_both_ways(transport: Arc<dyn Transport>) {
    let engine = engine(limits()).await;
    let served = transport.serve(engine.clone()).await;
    let (mut visitor, mut alice, conversation) = conversation(&*served).await;
    let visitor_actor = Actor::Visitor(must(VisitorId::new("v-1"), "visitor id"));
    let alice_actor = Actor::Agent(must(AgentId::new("alice"), "agent id"));
    let photo = Attachment::new(AttachmentId::generate(), "parcel.png", "image/png", 20_481)
        .with_image(1024, 768, true);
    let invoice = Attachment::new(
        AttachmentId::generate(),
        "invoice 42.pdf",
        "application/pdf",
        5_120,
    );
    uploaded(&engine, &conversation, visitor_actor, &photo).await;
    uploaded(&engine, &conversation, alice_actor, &invoice).await;

    let ack = answered(
        &mut *visitor,
        send(&conversation, "v-photo", "the box is dented", &[&photo.id]),
        "ack",
    )
    .await;
    assert_eq!(seq_of(&ack), 3, "{ack}");
    let photo_json = json!({"id": photo.id, "name": "parcel.png", "content_type": "image/png", "size": 20_481,
                            "width": 1024, "height": 768, "thumbnail": true});
    for client in [&mut visitor, &mut alice] {
        let event = events_until(&mut **client, &conversation, 3).await.remove(0);
        assert_eq!(
            event["data"],
            json!({"type": "message", "body": {"text": "the box is dented", "attachments": [photo_json]}}),
            "{event}"
        );
    }
    let ack = answered(
        &mut *alice,
        send(&conversation, "a-invoice", "", &[&invoice.id]),
        "ack",
    )
    .await;
    assert_eq!(seq_of(&ack), 4, "{ack}");
    let invoice_json =
        json!({"id": invoice.id, "name": "invoice 42.pdf", "content_type": "application/pdf", "size": 5_120});
    for client in [&mut visitor, &mut alice] {
        let event = events_until(&mut **client, &conversation, 4).await.remove(0);
        assert_eq!(
            event["data"]["body"],
            json!({"text": "", "attachments": [invoice_json]}),
            "{event}"
        );
    }
    let uploads = engine.uploads().must("upload records");
    for id in [&photo.id, &invoice.id] {
        let upload = must(uploads.upload(id).await, "read upload").must("recorded");
        assert_eq!(upload.state, UploadState::Committed);
    }

    // The agent's file is not the visitor's to send; unknown ids and repeats are refused.
    let code = refused(
        &mut *visitor,
        send(&conversation, "v-steal", "mine now", &[&invoice.id]),
    )
    .await;
    assert_eq!(code, "not_found");
    let unknown = AttachmentId::generate();
    assert_eq!(
        refused(&mut *visitor, send(&conversation, "v-unknown", "", &[&unknown])).await,
        "not_found"
    );
    let twice = send(&conversation, "v-twice", "", &[&photo.id, &photo.id]);
    assert_eq!(refused(&mut *visitor, twice).await, "invalid_frame");
    let forged = json!({"type": "send", "id": "v-forged", "conversation": conversation, "client_id": "v-forged",
                        "body": {"text": "", "attachments": [{"id": unknown, "name": "x.exe",
                                 "content_type": "image/png", "size": 1}]}});
    assert_eq!(refused(&mut *visitor, forged).await, "invalid_frame");
    nothing_more(&mut *visitor, "refused sends stored nothing", |f| {
        f["type"] == "event"
    })
    .await;
    let log = stored(&engine, &conversation).await;
    assert_eq!(log.len(), 4, "{log:?}");
    assert!(matches!(&log[3].data, EventKind::Message { body } if body.attachments == [invoice.clone()]));
}
