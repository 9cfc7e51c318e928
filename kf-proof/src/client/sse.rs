//! One SSE session of the resuming client: a `GET /sse/events` stream read by
//! [`kf_transport_sse::testkit::Stream`], and requests as POSTs on connections of their own.

use std::collections::HashMap;

use kf_core::cursor::Cursor;
use kf_transport_sse::testkit::{Item, Stream, try_post_over};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Command;
use super::core::{Core, End, sleep_until};
use crate::checker::Violation;

/// What a POST was for.
#[derive(Debug)]
pub(super) enum Posted {
    Open { client_id: String },
    Send { conversation: String, client_id: String },
}

/// A finished POST: its status and JSON body (`Null` when empty), or why it failed.
#[derive(Debug)]
pub(super) struct PostResult {
    what: Posted,
    result: Result<(u16, Value), String>,
}

/// Aborts the stream's reader task when the session ends.
struct Reader(JoinHandle<()>);

impl Drop for Reader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Core {
    /// Opens the stream from the cursor, applies what it delivers, POSTs the pending requests, and serves the
    /// stream until it ends or falls silent (§21, §14).
    pub(super) async fn sse_session(
        &mut self,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        replies: &mut mpsc::UnboundedReceiver<PostResult>,
    ) -> End {
        let deadline = Instant::now() + self.config.connect_timeout;
        let cursor_text = self.cursor.clone();
        let mut path = format!("/sse/events?token={}", self.config.token);
        if let Some(cursor) = &cursor_text {
            path.push_str("&cursor=");
            path.push_str(cursor);
        }
        let opened = tokio::time::timeout_at(deadline, async {
            let stream = TcpStream::connect(self.config.addr).await?;
            let _ = stream.set_nodelay(true);
            Stream::try_over(stream, &path, &[]).await
        })
        .await;
        let stream = match opened {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return End::Broken(format!("opening the stream: {error}")),
            Err(_) => return End::Broken("opening the stream timed out".into()),
        };
        match stream.status {
            200 => {}
            429 => return End::TooMany,
            400 => {
                // A cursor the server refuses: report it and start without one (§21.5).
                let body = String::from_utf8_lossy(&stream.body).into_owned();
                let party = self.config.party.clone();
                self.ledger.violation(
                    Violation::BadCursor,
                    &party,
                    format!("stream refused the cursor: {body}"),
                );
                self.cursor = None;
                return End::Broken(format!("400 {body}"));
            }
            status => {
                let body = String::from_utf8_lossy(&stream.body).into_owned();
                return End::Broken(format!("stream answered {status}: {body}"));
            }
        }
        // Where the stream must start each conversation: after its cursor position, or at 1.
        let from_cursor: HashMap<String, u64> = cursor_text
            .as_deref()
            .and_then(|text| Cursor::parse(text).ok())
            .map(|cursor| {
                cursor
                    .positions()
                    .map(|(id, seq)| (id.to_string(), seq.0))
                    .collect()
            })
            .unwrap_or_default();
        for (id, conv) in self.convs.iter_mut() {
            conv.wire_next = Some(from_cursor.get(id).copied().unwrap_or(0) + 1);
        }
        let (items_tx, mut items) = mpsc::unbounded_channel();
        let _reader = Reader(tokio::spawn(read_stream(stream, items_tx)));
        let mut silent_since = Instant::now();
        let mut patience = self.config.connect_timeout;
        loop {
            self.sse_write_pending();
            let dead_at = silent_since + patience;
            let retry = self.next_retry();
            tokio::select! {
                item = items.recv() => {
                    silent_since = Instant::now();
                    match item {
                        Some(Item::Frame { id, frame }) => {
                            if frame["type"] == "welcome" {
                                let interval = frame["limits"]["ping_interval_ms"].as_u64().unwrap_or(25_000);
                                patience = std::time::Duration::from_millis(interval) + self.config.liveness_grace;
                            }
                            if let Err(end) = self.sse_frame(id, &frame, &from_cursor) {
                                return end;
                            }
                        }
                        Some(Item::Comment(_) | Item::Retry(_)) => {}
                        Some(Item::End) | None => return End::Broken("the stream ended".into()),
                    }
                }
                reply = replies.recv() => {
                    if let Some(reply) = reply {
                        self.sse_reply(reply);
                    }
                }
                command = commands.recv() => match command {
                    Some(command) => self.accept(command),
                    None => std::future::pending::<()>().await,
                },
                () = tokio::time::sleep_until(dead_at) => return End::Dead,
                () = sleep_until(retry) => {}
            }
        }
    }

    fn sse_frame(
        &mut self,
        id: Option<String>,
        frame: &Value,
        from_cursor: &HashMap<String, u64>,
    ) -> Result<(), End> {
        match frame["type"].as_str().unwrap_or_default() {
            "welcome" => {
                self.on_welcome(frame);
                self.epoch_for_cursors(frame);
            }
            "inbox" => {
                if let Some(conversations) = frame["conversations"].as_array() {
                    for conversation in conversations {
                        self.upsert(conversation);
                    }
                }
            }
            "following" if frame["reset"] == true => {
                let party = self.config.party.clone();
                self.ledger.violation(
                    Violation::Reset,
                    &party,
                    format!("stream opened with reset: {frame}"),
                );
            }
            "conversation" => self.upsert(&frame["conversation"]),
            "event" => {
                let Some(conversation) = frame["conversation"].as_str().map(str::to_owned) else {
                    return Ok(());
                };
                let seq = frame["seq"].as_u64().unwrap_or(0);
                let conv = self.convs.entry(conversation.clone()).or_default();
                if conv.wire_next.is_none() {
                    conv.wire_next = Some(from_cursor.get(&conversation).copied().unwrap_or(0) + 1);
                }
                self.check_wire(&conversation, seq, "sse");
                match self.on_event(frame) {
                    Some(true) => {
                        if id.is_some() {
                            self.cursor = id;
                        }
                    }
                    Some(false) => {}
                    // §17 step 6 on SSE: reopen the stream from what we applied.
                    None => return Err(End::Broken(format!("a gap in {conversation} at seq {seq}"))),
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// POSTs the pending open and the head send of each conversation, each on a connection of its own.
    fn sse_write_pending(&mut self) {
        if let Some(client_id) = self.next_open() {
            let body = json!({"client_id": client_id});
            self.post("/sse/open", body, Posted::Open { client_id });
        }
        let ids: Vec<String> = self.convs.keys().cloned().collect();
        for conversation in ids {
            if let Some((client_id, text)) = self.next_send(&conversation) {
                let body =
                    json!({"conversation": conversation, "client_id": client_id, "body": {"text": text}});
                self.post(
                    "/sse/send",
                    body,
                    Posted::Send {
                        conversation,
                        client_id,
                    },
                );
            }
        }
    }

    fn post(&self, path: &'static str, body: Value, what: Posted) {
        let addr = self.config.addr;
        let token = self.config.token.clone();
        let timeout = self.config.request_timeout;
        let replies = self.replies.clone();
        tokio::spawn(async move {
            let result = tokio::time::timeout(timeout, async {
                let stream = TcpStream::connect(addr)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                let _ = stream.set_nodelay(true);
                let reply = try_post_over(
                    stream,
                    path,
                    Some(&token),
                    Some("application/json"),
                    &body.to_string(),
                )
                .await
                .map_err(|e| format!("POST {path}: {e}"))?;
                let value = if reply.body.is_empty() {
                    Value::Null
                } else {
                    reply.try_json().unwrap_or(Value::Null)
                };
                Ok((reply.status, value))
            })
            .await
            .unwrap_or_else(|_| Err(format!("POST {path} timed out")));
            let _ = replies.send(PostResult { what, result });
        });
    }

    /// A POST's answer: the reply frame, or an error (retried or given up by its code; a lost POST is retried).
    pub(super) fn sse_reply(&mut self, reply: PostResult) {
        let (code, message) = match &reply.result {
            Ok((200, frame)) => {
                match (&reply.what, frame["type"].as_str()) {
                    (Posted::Open { .. }, Some("opened")) => self.opened(frame),
                    (Posted::Send { .. }, Some("ack")) => {
                        if let (Some(conversation), Some(client_id), Some(seq)) = (
                            frame["conversation"].as_str(),
                            frame["client_id"].as_str(),
                            frame["seq"].as_u64(),
                        ) {
                            self.acknowledge(conversation, client_id, seq, frame["duplicate"] == true);
                        }
                    }
                    _ => {
                        let party = self.config.party.clone();
                        self.ledger
                            .violation(Violation::Other, &party, format!("unexpected reply {frame}"));
                    }
                }
                return;
            }
            Ok((status, frame)) => (
                frame["code"].as_str().unwrap_or("lost").to_owned(),
                format!("{status}: {}", frame["message"].as_str().unwrap_or_default()),
            ),
            Err(error) => ("lost".to_owned(), error.clone()),
        };
        match reply.what {
            Posted::Open { client_id } => {
                if self.open.as_ref().is_some_and(|open| open.client_id == client_id) {
                    self.open_failed(&code, &message);
                }
            }
            Posted::Send {
                conversation,
                client_id,
            } => self.send_failed(&conversation, &client_id, &code, &message),
        }
    }
}

/// Reads the stream into `items` until it ends or fails (then an `End`).
async fn read_stream(mut stream: Stream, items: mpsc::UnboundedSender<Item>) {
    loop {
        match stream.try_next_item().await {
            Ok(Item::End) | Err(_) => {
                let _ = items.send(Item::End);
                return;
            }
            Ok(item) => {
                if items.send(item).is_err() {
                    return;
                }
            }
        }
    }
}
