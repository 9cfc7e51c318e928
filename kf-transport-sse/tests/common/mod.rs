//! Test helpers: the SSE test client and server of `kf_transport_sse::testkit`, and a reader of event positions.
//! Tenant, agents, tokens and engines come from `kf_core::testkit::shop`.
#![allow(dead_code)]

use std::net::SocketAddr;

use kf_core::testkit::shop::WAIT;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub use kf_transport_sse::testkit::*;

/// `(conversation, seq)` of event frames.
pub fn positions(events: &[Value]) -> Vec<(String, u64)> {
    events
        .iter()
        .map(|e| {
            (
                e["conversation"].as_str().expect("conversation").to_string(),
                e["seq"].as_u64().expect("seq"),
            )
        })
        .collect()
}

/// One HTTP/1.1 connection kept alive for many requests, each written with raw bytes (any header value, any
/// body), each response read whole (`Content-Length` bodies: every answer but a stream's).
pub struct KeepAlive {
    reader: BufReader<TcpStream>,
}

impl KeepAlive {
    pub async fn connect(addr: SocketAddr) -> KeepAlive {
        let stream = TcpStream::connect(addr).await.expect("connect");
        KeepAlive {
            reader: BufReader::new(stream),
        }
    }

    /// `{method} {path}` with these headers and body; the response.
    pub async fn send(&mut self, method: &str, path: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Reply {
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n").into_bytes();
        for (name, value) in headers {
            request.extend_from_slice(name.as_bytes());
            request.extend_from_slice(b": ");
            request.extend_from_slice(value);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        request.extend_from_slice(body);
        self.reader.get_mut().write_all(&request).await.expect("write");
        let (status, headers) = read_head(&mut self.reader).await.expect("a response head");
        let length = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        tokio::time::timeout(WAIT, self.reader.read_exact(&mut body))
            .await
            .expect("a body in time")
            .expect("body");
        Reply {
            status,
            headers,
            body,
        }
    }
}
