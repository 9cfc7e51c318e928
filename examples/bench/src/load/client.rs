//! One client connection of the load generator: connecting (from a spread of loopback source addresses, so
//! tens of thousands of reconnects do not run out of ports), the `hello`, and reading until an expected frame.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::proto::{self, Frame};

pub type Ws = WebSocketStream<TcpStream>;
pub type WsSink = SplitSink<Ws, Message>;
pub type WsSource = SplitStream<Ws>;

/// How many loopback source addresses (127.0.0.1 …) client sockets are spread over.
const SOURCES: usize = 8;

/// Opens a WebSocket to `addr` from source address `127.0.0.{1 + n % 8}`.
pub async fn connect(addr: SocketAddr, n: usize) -> Result<Ws> {
    let socket = TcpSocket::new_v4().context("cannot create a socket")?;
    let source = SocketAddr::from(([127, 0, 0, 1 + (n % SOURCES) as u8], 0));
    socket
        .bind(source)
        .with_context(|| format!("cannot bind {source}"))?;
    let stream = socket.connect(addr).await.context("TCP connect failed")?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (ws, _) = tokio_tungstenite::client_async_with_config(format!("ws://{addr}/"), stream, Some(config))
        .await
        .context("WebSocket handshake failed")?;
    Ok(ws)
}

/// Sends one text frame.
pub async fn send(ws: &mut Ws, text: String) -> Result<()> {
    ws.send(Message::text(text)).await.context("cannot send")
}

/// Reads frames (answering pings, dropping the rest) until one satisfies `wanted`; fails on an `error` frame
/// for which `fatal` holds, on close, or after `limit`.
pub async fn until(ws: &mut Ws, limit: Duration, mut wanted: impl FnMut(&Frame) -> bool) -> Result<Frame> {
    let read = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let frame = Frame::parse(text.as_str()).with_context(|| format!("bad frame {text}"))?;
                    if wanted(&frame) {
                        return Ok(frame);
                    }
                    match frame.kind.as_str() {
                        "error" => bail!("error frame: {text}"),
                        "ping" => send(ws, proto::PONG.to_owned()).await?,
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(close))) => bail!("closed by the server: {close:?}"),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error).context("read failed"),
                None => bail!("connection ended"),
            }
        }
    };
    timeout(limit, read)
        .await
        .with_context(|| format!("no expected frame within {limit:?}"))?
}

/// Sends `hello` and waits for `welcome`; returns the epoch.
pub async fn hello(ws: &mut Ws, token: &str, limit: Duration) -> Result<String> {
    send(ws, proto::hello(token)).await?;
    let welcome = until(ws, limit, |f| f.kind == "welcome").await?;
    Ok(welcome.epoch.unwrap_or_default())
}

/// Subscribes to a conversation after `cursor` and reads until the replay is applied (up to
/// `subscribed.last_seq`); returns the new cursor. Events of other conversations are dropped.
pub async fn subscribe(
    ws: &mut Ws,
    conversation: &str,
    cursor: u64,
    epoch: &str,
    limit: Duration,
) -> Result<u64> {
    subscribe_with(ws, conversation, cursor, epoch, limit, |_| {}).await
}

/// [`subscribe`], handing each replayed event to `seen`.
pub async fn subscribe_with(
    ws: &mut Ws,
    conversation: &str,
    cursor: u64,
    epoch: &str,
    limit: Duration,
    mut seen: impl FnMut(&Frame),
) -> Result<u64> {
    send(ws, proto::subscribe(conversation, cursor, epoch)).await?;
    let subscribed = until(ws, limit, |f| {
        f.kind == "subscribed" && f.conversation_id() == Some(conversation)
    })
    .await?;
    let last = subscribed.last_seq.unwrap_or(0);
    let mut cursor = subscribed.after.unwrap_or(cursor).min(cursor);
    while cursor < last {
        let event = until(ws, limit, |f| {
            f.kind == "event" && f.conversation_id() == Some(conversation)
        })
        .await?;
        if let Some(seq) = event.seq {
            proto::apply(&mut cursor, seq);
        }
        seen(&event);
    }
    Ok(cursor)
}
