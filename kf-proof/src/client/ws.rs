//! One WebSocket session of the resuming client, over [`kf_transport_ws::testkit::WsClient`].

use std::time::Duration;

use kf_transport_ws::testkit::{Ended, WsClient};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Command;
use super::core::{Core, End, sleep_until};
use crate::checker::Violation;

/// How long one write may take before the connection counts as broken (a blackholed peer stops reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// The WebSocket close code a client uses when it gives up on a dead connection (§14).
const CLOSE_DEAD: u16 = 4000;

impl Core {
    /// Connects, says hello, resubscribes, resends, and serves the connection until it ends (§17).
    pub(super) async fn ws_session(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>) -> End {
        let deadline = Instant::now() + self.config.connect_timeout;
        let mut conn = match tokio::time::timeout_at(deadline, self.ws_connect()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(end)) => return end,
            Err(_) => return End::Broken("connecting timed out".into()),
        };
        let welcome = match conn
            .receive_within(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            Ok(Some(frame)) if frame["type"] == "welcome" => frame,
            Ok(Some(frame)) if frame["code"] == "too_many_connections" => return End::TooMany,
            Ok(Some(frame)) => return End::Broken(format!("hello refused: {frame}")),
            Ok(None) => return End::Broken("no welcome in time".into()),
            Err(ended) => return End::Broken(format!("ended before welcome: {ended:?}")),
        };
        self.on_welcome(&welcome);
        let epoch = self.epoch_for_cursors(&welcome);
        let ping_interval =
            Duration::from_millis(welcome["limits"]["ping_interval_ms"].as_u64().unwrap_or(25_000));
        // A new connection: nothing is subscribed or in flight on it.
        for conv in self.convs.values_mut() {
            conv.subscribe_sent = false;
            conv.wire_next = None;
            conv.in_flight = false;
        }
        if let Some(open) = self.open.as_mut() {
            open.in_flight = false;
        }
        let mut inbox_seen = false;
        let mut silent_since = Instant::now();
        let mut pinged = false;
        loop {
            if inbox_seen && let Err(ended) = self.ws_write_pending(&mut conn, &epoch).await {
                return End::Broken(format!("write failed: {ended:?}"));
            }
            let wait = if pinged {
                silent_since + ping_interval + self.config.liveness_grace
            } else {
                silent_since + ping_interval
            };
            let retry = self.next_retry();
            tokio::select! {
                received = conn.receive_within(wait.saturating_duration_since(Instant::now())) => match received {
                    Ok(Some(frame)) => {
                        silent_since = Instant::now();
                        pinged = false;
                        if let Err(end) = self.ws_frame(&mut conn, frame, &mut inbox_seen).await {
                            return end;
                        }
                    }
                    Ok(None) if pinged => {
                        // §14: nothing for ping_interval + grace: dead. Close it ourselves and reconnect.
                        let _ = tokio::time::timeout(
                            Duration::from_millis(100),
                            conn.try_close(CLOSE_DEAD, "dead connection"),
                        )
                        .await;
                        return End::Dead;
                    }
                    Ok(None) => {
                        pinged = true;
                        if let Err(ended) = write(&mut conn, &json!({"type": "ping"})).await {
                            return End::Broken(format!("ping failed: {ended:?}"));
                        }
                    }
                    Err(Ended::Close(4029, _)) => return End::TooMany,
                    Err(ended) => return End::Broken(format!("{ended:?}")),
                },
                command = commands.recv() => match command {
                    Some(command) => self.accept(command),
                    None => std::future::pending::<()>().await,
                },
                () = sleep_until(retry) => {}
            }
        }
    }

    async fn ws_connect(&mut self) -> Result<WsClient, End> {
        let stream = TcpStream::connect(self.config.addr)
            .await
            .map_err(|error| End::Broken(format!("connect: {error}")))?;
        let _ = stream.set_nodelay(true);
        let mut conn = WsClient::try_over(stream, self.config.addr, "/ws")
            .await
            .map_err(|ended| End::Broken(format!("{ended:?}")))?;
        let hello = json!({"type": "hello", "v": 1, "token": self.config.token});
        write(&mut conn, &hello)
            .await
            .map_err(|ended| End::Broken(format!("hello: {ended:?}")))?;
        Ok(conn)
    }

    /// Writes what may go now: subscriptions of followed conversations not yet subscribed on this connection
    /// (§17 step 4), the pending open, and the head send of each conversation (§17 step 7).
    async fn ws_write_pending(&mut self, conn: &mut WsClient, epoch: &Value) -> Result<(), Ended> {
        let mut frames = Vec::new();
        for (id, conv) in self.convs.iter_mut() {
            if !conv.subscribe_sent {
                conv.subscribe_sent = true;
                conv.wire_next = None;
                frames.push(
                    json!({"type": "subscribe", "id": format!("sub:{id}"), "conversation": id,
                                   "after": conv.last_applied, "epoch": epoch}),
                );
            }
        }
        if let Some(client_id) = self.next_open() {
            frames.push(json!({"type": "open", "id": "open", "client_id": client_id}));
        }
        let ids: Vec<String> = self.convs.keys().cloned().collect();
        for conversation in ids {
            if let Some((client_id, text)) = self.next_send(&conversation) {
                frames.push(json!({"type": "send", "id": format!("send:{conversation}:{client_id}"),
                                   "conversation": conversation, "client_id": client_id, "body": {"text": text}}));
            }
        }
        for frame in frames {
            write(conn, &frame).await?;
        }
        Ok(())
    }

    /// One frame from the server.
    async fn ws_frame(
        &mut self,
        conn: &mut WsClient,
        frame: Value,
        inbox_seen: &mut bool,
    ) -> Result<(), End> {
        match frame["type"].as_str().unwrap_or_default() {
            "ping" => {
                write(conn, &json!({"type": "pong"}))
                    .await
                    .map_err(|ended| End::Broken(format!("pong: {ended:?}")))?;
            }
            "inbox" => {
                *inbox_seen = true;
                if let Some(conversations) = frame["conversations"].as_array() {
                    for conversation in conversations {
                        self.upsert(conversation);
                    }
                }
            }
            "conversation" => self.upsert(&frame["conversation"]),
            "subscribed" => {
                let (Some(id), Some(after)) = (frame["conversation"].as_str(), frame["after"].as_u64())
                else {
                    return Ok(());
                };
                let party = self.config.party.clone();
                if frame["reset"] == true {
                    self.ledger.violation(
                        Violation::Reset,
                        &party,
                        format!("subscribed with reset: {frame}"),
                    );
                }
                if let Some(conv) = self.convs.get_mut(id) {
                    if after != conv.last_applied {
                        let detail = format!("asked after {}, subscribed after {after}", conv.last_applied);
                        self.ledger.violation(Violation::Other, &party, detail);
                        conv.last_applied = after;
                    }
                    conv.wire_next = Some(after + 1);
                }
            }
            "event" => {
                let Some(conversation) = frame["conversation"].as_str().map(str::to_owned) else {
                    return Ok(());
                };
                let seq = frame["seq"].as_u64().unwrap_or(0);
                if self
                    .convs
                    .get(&conversation)
                    .is_none_or(|conv| conv.wire_next.is_none())
                {
                    let detail = format!("ws {conversation}: seq {seq} before `subscribed`");
                    self.ledger
                        .violation(Violation::Other, &self.config.party.clone(), detail);
                }
                self.check_wire(&conversation, seq, "ws");
                if self.on_event(&frame).is_none() {
                    // §17 step 6: a gap within a subscription; resubscribe from what we applied.
                    if let Some(conv) = self.convs.get_mut(&conversation) {
                        conv.subscribe_sent = false;
                    }
                }
            }
            "ack" => {
                if let (Some(conversation), Some(client_id), Some(seq)) = (
                    frame["conversation"].as_str(),
                    frame["client_id"].as_str(),
                    frame["seq"].as_u64(),
                ) {
                    self.acknowledge(conversation, client_id, seq, frame["duplicate"] == true);
                }
            }
            "opened" => self.opened(&frame),
            "error" => self.ws_error(&frame),
            _ => {}
        }
        Ok(())
    }

    fn ws_error(&mut self, frame: &Value) {
        let code = frame["code"].as_str().unwrap_or_default();
        let message = frame["message"].as_str().unwrap_or_default();
        let id = frame["id"].as_str().unwrap_or_default();
        if id == "open" {
            self.open_failed(code, message);
        } else if let Some(rest) = id.strip_prefix("send:") {
            if let Some((conversation, client_id)) = rest.split_once(':') {
                let (conversation, client_id) = (conversation.to_owned(), client_id.to_owned());
                self.send_failed(&conversation, &client_id, code, message);
            }
        } else if let Some(conversation) = id.strip_prefix("sub:") {
            let party = self.config.party.clone();
            let kind = if code == "bad_cursor" {
                Violation::BadCursor
            } else {
                Violation::Other
            };
            self.ledger
                .violation(kind, &party, format!("subscribe {conversation} refused: {frame}"));
            if code == "bad_cursor"
                && let Some(conv) = self.convs.get_mut(conversation)
            {
                // §7.3: drop what we hold and subscribe after 0.
                conv.last_applied = 0;
                conv.subscribe_sent = false;
            }
        } else {
            tracing::debug!(party = %self.config.party, %frame, "an error without a request");
        }
    }
}

async fn write(conn: &mut WsClient, frame: &Value) -> Result<(), Ended> {
    match tokio::time::timeout(WRITE_TIMEOUT, conn.try_send(frame)).await {
        Ok(result) => result,
        Err(_) => Err(Ended::Dropped("write timed out".into())),
    }
}
