//! `serve-baseline`: the minimal server kf is compared with. Plain tokio-tungstenite connections and one
//! SQLite writer thread doing group commit (WAL, `synchronous=FULL`, up to 200 requests per transaction, no
//! batch window). It persists each message, acknowledges it after the commit, and relays it to the
//! conversation's other side. No routing (an opened conversation goes to agent `a{id % N}`), no auth beyond a
//! trivial `hello` (the token is `visitor:<id>` or `agent:<id>`), no idempotency check, no presence, no limits.
//!
//! It speaks the subset of kf's protocol the load generator uses (`proto`): `hello`/`welcome`,
//! `open`/`opened`, `subscribe`/`subscribed` (with replay after a cursor, so a client resumes gaplessly),
//! `send`/`ack`, `event`, `ping`/`pong`. Like kf it handles a connection's frames one at a time: a `send` is
//! acknowledged before the next frame is read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use futures::{SinkExt, StreamExt};
use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::{mpsc as tmpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::ServeLoadArgs;
use super::child::{listen, parent_gone};
use super::proto::{Frame, PONG};
use crate::load::agent_name;

/// Requests per transaction, at most (kf's `batch_max`).
const BATCH_MAX: usize = 200;

type Outbox = tmpsc::UnboundedSender<Message>;

enum Request {
    Open {
        visitor: String,
        client_id: String,
        reply: oneshot::Sender<rusqlite::Result<u64>>,
    },
    Append {
        conn: u64,
        conversation: u64,
        role: &'static str,
        author: Arc<str>,
        client_id: String,
        text: String,
        reply: oneshot::Sender<rusqlite::Result<u64>>,
    },
    Subscribe {
        conn: u64,
        conversation: u64,
        after: u64,
        request_id: Option<String>,
        outbox: Outbox,
        reply: oneshot::Sender<rusqlite::Result<()>>,
    },
}

#[derive(Default)]
struct Conversation {
    last_seq: u64,
    subscribers: Vec<(u64, Outbox)>,
}

#[derive(Serialize)]
struct EventFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    conversation: String,
    seq: u64,
    at: i64,
    author: Author<'a>,
    client_id: &'a str,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Author<'a> {
    role: &'a str,
    id: &'a str,
}

#[derive(Serialize)]
struct Data<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    body: Text<'a>,
}

#[derive(Serialize)]
struct Text<'a> {
    text: &'a str,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn event_json(
    conversation: u64,
    seq: u64,
    at: i64,
    role: &str,
    author: &str,
    client_id: &str,
    text: &str,
) -> String {
    serde_json::to_string(&EventFrame {
        kind: "event",
        conversation: conversation.to_string(),
        seq,
        at,
        author: Author { role, id: author },
        client_id,
        data: Data {
            kind: "message",
            body: Text { text },
        },
    })
    .unwrap_or_else(|_| unreachable!("an event serialises"))
}

fn open_db(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS conversations (
             id INTEGER PRIMARY KEY, visitor TEXT NOT NULL, client_id TEXT NOT NULL, created_at INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS events (
             conversation INTEGER NOT NULL, seq INTEGER NOT NULL, author_role TEXT NOT NULL,
             author_id TEXT NOT NULL, client_id TEXT NOT NULL, body TEXT NOT NULL, at INTEGER NOT NULL,
             PRIMARY KEY (conversation, seq)) WITHOUT ROWID;",
    )?;
    Ok(conn)
}

/// The writer thread: takes what is queued (up to [`BATCH_MAX`]), runs it in one transaction, commits, then
/// answers and relays in request order. Subscriptions are served here too, after the commit, so a replay and
/// the live events that follow it can neither miss nor repeat an event.
fn writer(conn: Connection, requests: mpsc::Receiver<Request>) {
    let mut conversations: HashMap<u64, Conversation> = HashMap::new();
    let mut next_id: u64 = conn
        .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM conversations", [], |row| {
            row.get::<_, i64>(0)
        })
        .map_or(1, |id| id as u64);
    let mut batch = Vec::with_capacity(BATCH_MAX);
    while let Ok(first) = requests.recv() {
        batch.push(first);
        while batch.len() < BATCH_MAX {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let at = now_ms();
        // Ids and seqs this batch would take; kept only if the commit succeeds.
        let mut outcomes: Vec<u64> = Vec::with_capacity(batch.len());
        let mut pending_seq: HashMap<u64, u64> = HashMap::new();
        let mut id = next_id;
        let result = (|| -> rusqlite::Result<()> {
            let tx = conn.unchecked_transaction()?;
            {
                let mut insert_conv = tx.prepare_cached(
                    "INSERT INTO conversations (id, visitor, client_id, created_at) VALUES (?1, ?2, ?3, ?4)",
                )?;
                let mut insert_event = tx.prepare_cached(
                    "INSERT INTO events (conversation, seq, author_role, author_id, client_id, body, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for request in &batch {
                    match request {
                        Request::Open {
                            visitor, client_id, ..
                        } => {
                            insert_conv.execute(params![id as i64, visitor, client_id, at])?;
                            outcomes.push(id);
                            id += 1;
                        }
                        Request::Append {
                            conversation,
                            role,
                            author,
                            client_id,
                            text,
                            ..
                        } => {
                            let base = conversations.get(conversation).map_or(0, |c| c.last_seq);
                            let seq = pending_seq.entry(*conversation).or_insert(base);
                            *seq += 1;
                            insert_event.execute(params![
                                *conversation as i64,
                                *seq as i64,
                                role,
                                author.as_ref(),
                                client_id,
                                text,
                                at
                            ])?;
                            outcomes.push(*seq);
                        }
                        Request::Subscribe { .. } => outcomes.push(0),
                    }
                }
            }
            tx.commit()
        })();
        match result {
            Ok(()) => {
                next_id = id;
                for (request, outcome) in batch.drain(..).zip(outcomes) {
                    settle(&conn, &mut conversations, request, outcome, at);
                }
            }
            Err(error) => {
                eprintln!("serve-baseline: batch failed: {error}");
                for request in batch.drain(..) {
                    let message = || rusqlite::Error::InvalidQuery;
                    match request {
                        Request::Open { reply, .. } | Request::Append { reply, .. } => {
                            let _ = reply.send(Err(message()));
                        }
                        Request::Subscribe { reply, .. } => {
                            let _ = reply.send(Err(message()));
                        }
                    }
                }
            }
        }
    }
}

/// After the commit: answers one request and relays a message to the conversation's other subscribers.
fn settle(
    conn: &Connection,
    conversations: &mut HashMap<u64, Conversation>,
    request: Request,
    outcome: u64,
    at: i64,
) {
    match request {
        Request::Open { reply, .. } => {
            let _ = reply.send(Ok(outcome));
        }
        Request::Append {
            conn: sender,
            conversation,
            role,
            author,
            client_id,
            text,
            reply,
        } => {
            let state = conversations.entry(conversation).or_default();
            state.last_seq = outcome;
            let frame = Utf8Bytes::from(event_json(
                conversation,
                outcome,
                at,
                role,
                &author,
                &client_id,
                &text,
            ));
            state
                .subscribers
                .retain(|(id, outbox)| *id == sender || outbox.send(Message::Text(frame.clone())).is_ok());
            let _ = reply.send(Ok(outcome));
        }
        Request::Subscribe {
            conn: subscriber,
            conversation,
            after,
            request_id,
            outbox,
            reply,
        } => {
            let state = conversations.entry(conversation).or_default();
            let last = state.last_seq;
            let after = after.min(last);
            let subscribed = json!({"type": "subscribed", "id": request_id, "conversation": conversation.to_string(),
                "after": after, "reset": false, "last_seq": last});
            let _ = outbox.send(Message::text(subscribed.to_string()));
            let replay = (|| -> rusqlite::Result<()> {
                let mut select = conn.prepare_cached(
                    "SELECT seq, author_role, author_id, client_id, body, at FROM events
                     WHERE conversation = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq",
                )?;
                let mut rows = select.query(params![conversation as i64, after as i64, last as i64])?;
                while let Some(row) = rows.next()? {
                    let role: String = row.get(1)?;
                    let author: String = row.get(2)?;
                    let client_id: String = row.get(3)?;
                    let text: String = row.get(4)?;
                    let frame = event_json(
                        conversation,
                        row.get::<_, i64>(0)? as u64,
                        row.get(5)?,
                        &role,
                        &author,
                        &client_id,
                        &text,
                    );
                    let _ = outbox.send(Message::text(frame));
                }
                Ok(())
            })();
            if replay.is_ok() {
                state.subscribers.retain(|(id, _)| *id != subscriber);
                state.subscribers.push((subscriber, outbox));
            }
            let _ = reply.send(replay);
        }
    }
}

pub async fn serve(args: ServeLoadArgs) -> Result<()> {
    let conn = open_db(&args.db).context("cannot open the baseline database")?;
    let (requests, queue) = mpsc::channel::<Request>();
    let writer_thread = std::thread::Builder::new()
        .name("baseline-writer".into())
        .spawn(move || writer(conn, queue))
        .context("cannot start the writer thread")?;
    let listener = listen(args.addr)?;
    println!("ready port={}", listener.local_addr()?.port());
    let agents = args.agents.max(1) as u64;
    let ids = Arc::new(AtomicU64::new(1));
    let accept = async {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let requests = requests.clone();
                    let conn = ids.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(async move {
                        let _ = connection(stream, requests, conn, agents).await;
                    });
                }
                Err(error) => {
                    eprintln!("serve-baseline: accept failed: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    };
    tokio::select! {
        () = accept => {}
        () = parent_gone() => {}
    }
    // Connections still hold senders: the writer ends when the process does; wait for what is queued.
    drop(requests);
    let _ = writer_thread;
    std::process::exit(0)
}

async fn connection(
    stream: TcpStream,
    requests: mpsc::Sender<Request>,
    conn: u64,
    agents: u64,
) -> Result<()> {
    // tungstenite's default read buffer is 128 KiB and is zeroed on every read (callgrind: 78% of this server's
    // instructions); kf's transport reads through 512 bytes, and so does the baseline.
    let config = WebSocketConfig::default().read_buffer_size(512);
    let ws = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await?;
    let (mut sink, mut source) = ws.split();
    let (outbox, mut queue) = tmpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        while let Some(message) = queue.recv().await {
            if sink.feed(message).await.is_err() {
                return;
            }
            while let Ok(message) = queue.try_recv() {
                if sink.feed(message).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    let result = session(&mut source, &outbox, &requests, conn, agents).await;
    drop(outbox);
    let _ = writer.await;
    result
}

async fn session(
    source: &mut futures::stream::SplitStream<tokio_tungstenite::WebSocketStream<TcpStream>>,
    outbox: &Outbox,
    requests: &mpsc::Sender<Request>,
    conn: u64,
    agents: u64,
) -> Result<()> {
    let mut me: Option<(&'static str, Arc<str>)> = None;
    while let Some(message) = source.next().await {
        let text = match message? {
            Message::Text(text) => text,
            Message::Close(_) => break,
            _ => continue,
        };
        let Ok(frame) = Frame::parse(text.as_str()) else {
            let _ = outbox.send(Message::text(r#"{"type":"error","code":"bad_json"}"#));
            continue;
        };
        let Some((role, author)) = me.clone() else {
            let token = frame.token.unwrap_or_default();
            let (role, id) = match token.split_once(':') {
                Some(("visitor", id)) => ("visitor", id),
                Some(("agent", id)) => ("agent", id),
                _ => {
                    let _ = outbox.send(Message::text(r#"{"type":"error","code":"invalid_token"}"#));
                    break;
                }
            };
            let welcome = json!({"type": "welcome", "v": 1, "tenant": "bench", "epoch": "baseline",
                "principal": {"role": role, "id": id}});
            let _ = outbox.send(Message::text(welcome.to_string()));
            me = Some((role, Arc::from(id)));
            continue;
        };
        let conversation = || frame.conversation_id().and_then(|id| id.parse::<u64>().ok());
        match frame.kind.as_str() {
            "open" => {
                let (reply, answer) = oneshot::channel();
                let client_id = frame.client_id.clone().unwrap_or_default();
                requests.send(Request::Open {
                    visitor: author.to_string(),
                    client_id,
                    reply,
                })?;
                let id = answer.await??;
                let opened = json!({"type": "opened", "id": frame.id, "created": true, "conversation": {
                    "id": id.to_string(), "tenant": "bench", "visitor": author.as_ref(), "group": "support",
                    "status": "assigned", "agent": agent_name((id % agents) as usize), "last_seq": 0}});
                let _ = outbox.send(Message::text(opened.to_string()));
            }
            "subscribe" => {
                let Some(conversation) = conversation() else {
                    continue;
                };
                let (reply, answer) = oneshot::channel();
                requests.send(Request::Subscribe {
                    conn,
                    conversation,
                    after: frame.after.unwrap_or(0),
                    request_id: frame.id.clone(),
                    outbox: outbox.clone(),
                    reply,
                })?;
                answer.await??;
            }
            "send" => {
                let Some(conversation) = conversation() else {
                    continue;
                };
                let client_id = frame.client_id.clone().unwrap_or_default();
                let text = frame.body.map(|b| b.text).unwrap_or_default();
                let (reply, answer) = oneshot::channel();
                requests.send(Request::Append {
                    conn,
                    conversation,
                    role,
                    author,
                    client_id: client_id.clone(),
                    text,
                    reply,
                })?;
                let seq = answer.await??;
                let ack = json!({"type": "ack", "id": frame.id, "conversation": conversation.to_string(),
                    "client_id": client_id, "seq": seq, "duplicate": false});
                let _ = outbox.send(Message::text(ack.to_string()));
            }
            "ping" => {
                let _ = outbox.send(Message::text(PONG));
            }
            _ => {}
        }
    }
    Ok(())
}
