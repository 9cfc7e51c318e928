//! Shutdown under load, on the real binary: a `kf-demo` process gets SIGTERM while visitors write over
//! WebSocket as fast as their rate limit lets them. It must exit 0 within its grace period; every client must get
//! the documented close (1001, "going away"); and every message that was acknowledged must be in the SQLite file
//! afterwards, exactly once, at the seq its ack gave.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kf_core::auth::{Identity, SignedTokens};
use kf_core::clock::SystemClock;
use kf_core::model::{Actor, AgentId, ConversationId, Seq, TenantId, VisitorId};
use kf_core::store::ConversationLog;
use kf_store_sqlite::{SqliteConfig, SqliteStore};
use kf_transport_ws::testkit::{Ended, WsClient};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The grace period the process is started with.
const GRACE: Duration = Duration::from_secs(10);
/// Visitors writing at once.
const VISITORS: usize = 12;
/// Sends a visitor keeps unacknowledged at most.
const WINDOW: usize = 4;
/// Acknowledged messages (all visitors) before the signal.
const ACKED_BEFORE_SIGNAL: usize = 150;

/// What one visitor saw: its conversation, each acknowledged client id with its seq, and how its connection ended.
#[derive(Debug)]
struct Seen {
    visitor: VisitorId,
    conversation: ConversationId,
    acked: BTreeMap<String, u64>,
    ended: Ended,
}

/// Opens a conversation and writes into it until the connection ends, keeping up to [`WINDOW`] sends in flight at
/// a pace within the default rate limit (20 a second, burst 40).
async fn write_until_closed(
    addr: SocketAddr,
    token: String,
    visitor: VisitorId,
    acks: Arc<AtomicUsize>,
) -> Seen {
    let mut client = WsClient::hello(addr, &token).await;
    client
        .send(json!({"type": "open", "id": "o", "client_id": format!("open-{visitor}")}))
        .await;
    let opened = client.next_of_id("o").await;
    let conversation: ConversationId = opened["conversation"]["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no conversation in {opened}"));
    let mut acked = BTreeMap::new();
    let mut in_flight = 0;
    let mut next = 0u64;
    let mut pace = tokio::time::interval(Duration::from_millis(60));
    let ended = loop {
        tokio::select! {
            _ = pace.tick(), if in_flight < WINDOW => {
                let client_id = format!("{visitor}-m{next}");
                next += 1;
                let send = json!({"type": "send", "id": client_id, "conversation": conversation.to_string(),
                    "client_id": client_id, "body": {"text": format!("message {client_id}")}});
                if client.try_send(&send).await.is_err() {
                    // The server is closing: the close frame (if any) is still to be read.
                    break read_the_end(&mut client).await;
                }
                in_flight += 1;
            }
            received = client.receive_within(Duration::from_secs(5)) => match received {
                Ok(Some(frame)) => match frame["type"].as_str() {
                    Some("ack") => {
                        in_flight -= 1;
                        let seq = frame["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {frame}"));
                        let client_id = frame["client_id"].as_str().unwrap_or_default().to_owned();
                        assert_eq!(frame["duplicate"], false, "{frame}");
                        acked.insert(client_id, seq);
                        acks.fetch_add(1, Ordering::Relaxed);
                    }
                    // Refused sends are not acknowledged: nothing to check for them.
                    Some("error") if frame["id"].is_string() => in_flight -= 1,
                    _ => {}
                },
                Ok(None) => panic!("{visitor}: nothing from the server for 5 s"),
                Err(ended) => break ended,
            },
        }
    };
    Seen {
        visitor,
        conversation,
        acked,
        ended,
    }
}

/// How the connection ended, once a send failed.
async fn read_the_end(client: &mut WsClient) -> Ended {
    loop {
        match client.receive_within(Duration::from_secs(5)).await {
            Ok(Some(_)) => continue,
            Ok(None) => return Ended::Dropped("no close within 5 s".into()),
            Err(ended) => return ended,
        }
    }
}

/// Reads lines of the child's stdout until one contains `marker`; returns the rest of that line after it.
async fn line_with(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    marker: &str,
) -> String {
    let read = async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some(at) = line.find(marker) {
                return line[at + marker.len()..].trim().to_owned();
            }
        }
        panic!("the demo ended before printing {marker:?}");
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the demo started")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_stores_every_acknowledged_message_and_closes_clients_with_1001() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kf-demo"))
        .args(["--addr", "127.0.0.1:0", "--grace", &GRACE.as_secs().to_string()])
        .arg("--data")
        .arg(&data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start kf-demo");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let page = line_with(&mut lines, "visitor page:").await;
    let addr: SocketAddr = page
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|_| panic!("an address in {page:?}"));
    // Keep reading stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    // Tokens signed with the key the demo made in its data directory.
    let tokens =
        SignedTokens::from_key_file(data.join(kf_demo::KEY_FILE), Arc::new(SystemClock)).expect("key");
    let tenant = TenantId::new(kf_demo::TENANT).expect("tenant");
    let token = |identity: &Identity| tokens.issue(identity, Duration::from_secs(600));
    let alice = Identity::agent(tenant.clone(), AgentId::new("alice").expect("id"));
    let mut agent = WsClient::hello(addr, &token(&alice)).await.answering_pings();
    // The agent reads all along, as a browser does (and so answers the server's close at once).
    let agent = tokio::spawn(async move { agent.until_end().await.1 });
    let acks = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for n in 0..VISITORS {
        let visitor = VisitorId::new(format!("sigterm-v{n}")).expect("id");
        let token = token(&Identity::visitor(tenant.clone(), visitor.clone()));
        writers.push(tokio::spawn(write_until_closed(
            addr,
            token,
            visitor,
            Arc::clone(&acks),
        )));
    }
    // Readiness before the signal.
    assert_eq!(http_status(addr, "/readyz").await, Some(200));

    let flowing = async {
        while acks.load(Ordering::Relaxed) < ACKED_BEFORE_SIGNAL {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), flowing)
        .await
        .expect("messages flow");
    let pid = child.id().expect("the demo runs");
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .expect("run kill");
    assert!(killed.success());
    let signalled = tokio::time::Instant::now();

    // The process exits 0 within its grace period (and a little for the store's last commit).
    let status = tokio::time::timeout(GRACE + Duration::from_secs(5), child.wait())
        .await
        .expect("the demo exits within its grace period")
        .expect("wait for the demo");
    assert!(status.success(), "the demo exited with {status}");
    let took = signalled.elapsed();
    assert!(took < GRACE, "the shutdown took {took:?}");

    // Every client was told "going away".
    let agent_end = agent.await.expect("agent");
    assert!(matches!(agent_end, Ended::Close(1001, _)), "agent: {agent_end:?}");
    let mut seen = Vec::new();
    for writer in writers {
        let visitor = writer.await.expect("writer");
        assert!(
            matches!(visitor.ended, Ended::Close(1001, _)),
            "{}: {:?}",
            visitor.visitor,
            visitor.ended
        );
        seen.push(visitor);
    }

    // Every acknowledged message is in the file, exactly once, at its acknowledged seq.
    let store = SqliteStore::open(data.join(kf_demo::DB_FILE), SqliteConfig::default()).expect("reopen");
    let mut checked = 0;
    for visitor in &seen {
        let log = store
            .events_after(visitor.conversation, Seq::ZERO, usize::MAX)
            .await
            .expect("read the log");
        let author = Actor::Visitor(visitor.visitor.clone());
        let mut stored: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for event in log.iter().filter(|event| event.author == author) {
            if let Some(client_id) = &event.client_id {
                stored.entry(client_id.to_string()).or_default().push(event.seq.0);
            }
        }
        for (client_id, seq) in &visitor.acked {
            assert_eq!(
                stored.get(client_id),
                Some(&vec![*seq]),
                "{client_id} acknowledged at seq {seq}"
            );
            checked += 1;
        }
        // Seqs are gapless whatever the shutdown cut.
        let seqs: Vec<u64> = log.iter().map(|event| event.seq.0).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    }
    assert!(
        checked >= ACKED_BEFORE_SIGNAL,
        "{checked} acknowledged messages checked"
    );
    store.close().expect("close");
    eprintln!("{checked} acknowledged messages stored; exit {took:?} after SIGTERM");
}

/// The status of `GET path` (HTTP/1.1, connection closed after it), `None` when nothing answers.
async fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.ok()?;
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace().nth(1)?.parse().ok()
}
