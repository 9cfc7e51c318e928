//! The README's embedding example is this crate's `main.rs`, and it runs as written: from an empty directory it
//! makes its data directory and signing key, serves kf, and a visitor's message is acknowledged end to end.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use kf_transport_ws::testkit::WsClient;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const WAIT: Duration = Duration::from_secs(30);

/// The first ```rust block of the README.
fn readme_example() -> String {
    let readme = include_str!("../../../README.md");
    let start = readme.find("```rust").expect("a rust block in the README");
    let body = &readme[start..];
    let body = &body[body.find('\n').expect("block header") + 1..];
    body[..body.find("```").expect("block end")].to_owned()
}

#[test]
fn the_readme_shows_this_example_verbatim() {
    assert_eq!(
        readme_example(),
        include_str!("../src/main.rs"),
        "README.md's embedding example and examples/embed/src/main.rs must be the same code"
    );
}

/// Reads the server's stdout until a line starting with `prefix`; returns the rest of it.
async fn line_after(lines: &mut Lines<BufReader<ChildStdout>>, prefix: &str) -> String {
    loop {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("the example printed in time")
            .expect("stdout")
            .expect("the example is still running");
        if let Some(rest) = line.strip_prefix(prefix) {
            return rest.trim().to_owned();
        }
    }
}

/// Reads frames until the one of `kind`, asserting that no `error` comes on the way.
async fn until(socket: &mut WsClient, kind: &str) -> Value {
    loop {
        let frame = socket.next().await;
        if frame["type"] == kind {
            return frame;
        }
        assert_ne!(frame["type"], "error", "unexpected error: {frame}");
    }
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

#[tokio::test]
async fn the_readme_example_serves_a_visitor_message_from_an_empty_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kf-embed"))
        .arg("127.0.0.1:0")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the example");
    let stdout = child.stdout.take().expect("stdout");
    let _running = Running(child);
    let mut lines = BufReader::new(stdout).lines();
    let addr = line_after(&mut lines, "listening on").await;
    let token = line_after(&mut lines, "visitor token:").await;
    assert!(dir.path().join("data/signing.key").exists(), "the key was made");

    let addr: SocketAddr = addr.parse().expect("the example printed a socket address");

    let mut socket = WsClient::connect_path(addr, "/ws").await;
    socket
        .send(json!({"type": "hello", "v": 1, "token": token}))
        .await;
    until(&mut socket, "welcome").await;
    let open = json!({"type": "open", "id": "o", "client_id": "open-1"});
    socket.send(open).await;
    let opened = until(&mut socket, "opened").await;
    let conversation = opened["conversation"]["id"].clone();
    let send = json!({"type": "send", "id": "s", "conversation": conversation, "client_id": "m-1",
        "body": {"text": "Hello, is my order on its way?"}});
    socket.send(send).await;
    let ack = until(&mut socket, "ack").await;
    assert_eq!(ack["id"], "s");
    assert_eq!(ack["duplicate"], false);
    assert!(ack["seq"].as_u64().is_some_and(|seq| seq >= 2), "{ack}");
}
