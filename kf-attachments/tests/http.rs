//! Attachments over real sockets: the attachment router and the WebSocket endpoint of one engine on
//! `127.0.0.1:0`, files in a real directory. An image and a PDF go each way; refused types and oversize uploads
//! get clear errors and store nothing; a broken upload leaves nothing after the cleanup pass; nobody outside the
//! conversation gets a link, and a forged link downloads nothing.

use std::io::Cursor;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use kf_attachments::{AttachmentsConfig, router};
use kf_core::Engine;
use kf_core::blob::{BlobStore, FsBlobStore};
use kf_core::limits::{AttachmentLimits, Limits};
use kf_core::testkit::shop::{self, agent, token, visitor};
use kf_transport_ws::WsConfig;
use kf_transport_ws::testkit::WsClient;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_FILE: u64 = 300_000;
const MAX_CONVERSATION: u64 = 1_200_000;

/// An HTTP response read whole.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// One request on a connection of its own. `length`: the `Content-Length` to declare (`None`: chunked, the body
/// as one chunk). The body is written by a task of its own, so a server that answers before reading it all (a
/// refused upload) is read rather than blocking the test.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
    length: Option<usize>,
) -> Reply {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let auth = token.map_or(String::new(), |token| {
        format!("Authorization: Bearer {token}\r\n")
    });
    let framing = match length {
        Some(length) => format!("Content-Length: {length}\r\n"),
        None => "Transfer-Encoding: chunked\r\n".to_owned(),
    };
    let head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n{auth}{framing}Connection: close\r\n\r\n");
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        if length.is_some() {
            write.write_all(&body).await?;
        } else {
            if !body.is_empty() {
                write
                    .write_all(format!("{:x}\r\n", body.len()).as_bytes())
                    .await?;
                write.write_all(&body).await?;
                write.write_all(b"\r\n").await?;
            }
            write.write_all(b"0\r\n\r\n").await?;
        }
        write.flush().await?;
        // Kept open until the reply is read: a client's half-close ends the request for the server.
        Ok::<_, std::io::Error>(write)
    });
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(shop::WAIT, read.read_to_end(&mut raw))
        .await
        .expect("a reply in time");
    // A refused upload is answered before its body is read; the rest of the write may fail, which is fine.
    let _ = writer.await;
    parse(&raw)
}

fn parse(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut decoded = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").expect("chunk size");
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).expect("hex"), 16).expect("hex");
            if size == 0 {
                break;
            }
            decoded.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 4 + size..];
        }
        body = decoded;
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 120])
    });
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("encode a PNG");
    bytes
}

fn pdf(padding: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
    bytes.extend(std::iter::repeat_n(b'%', padding));
    bytes.extend_from_slice(b"\ntrailer << /Root 1 0 R >>\n%%EOF\n");
    bytes
}

struct Served {
    addr: SocketAddr,
    engine: Engine,
    blobs: Arc<dyn BlobStore>,
    dir: tempfile::TempDir,
}

async fn serve() -> Served {
    let limits = Limits::default().with_attachments(
        AttachmentLimits::default()
            .with_max_file_bytes(MAX_FILE)
            .with_max_conversation_bytes(MAX_CONVERSATION)
            .with_pending_ttl_ms(0),
    );
    let engine = shop::engine(limits).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let blobs: Arc<dyn BlobStore> = Arc::new(FsBlobStore::open(dir.path()).await.expect("blob store"));
    let files = router(engine.clone(), blobs.clone(), AttachmentsConfig::new([3; 32]));
    let app = Router::new()
        .route("/ws", kf_transport_ws::route(engine.clone(), WsConfig::default()))
        .nest("/files", files);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    Served {
        addr,
        engine,
        blobs,
        dir,
    }
}

/// The blob files in the store's directory (temporary files of puts in progress excluded).
fn blob_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn partial_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join(".partial")).expect("read dir").count()
}

async fn upload(addr: SocketAddr, token: &str, conversation: &str, name: &str, bytes: Vec<u8>) -> Reply {
    let length = bytes.len();
    let path = format!("/files/upload?conversation={conversation}&name={name}");
    http(addr, "POST", &path, Some(token), bytes, Some(length)).await
}

async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Reply {
    http(addr, "GET", path, token, Vec::new(), Some(0)).await
}

/// Uploads a file and sends it in a message; returns the attachment as the server recorded it.
async fn send_file(
    served: &Served,
    client: &mut WsClient,
    token: &str,
    conversation: &str,
    name: &str,
    bytes: Vec<u8>,
) -> Value {
    let reply = upload(served.addr, token, conversation, name, bytes).await;
    assert_eq!(reply.status, 201, "{:?}", String::from_utf8_lossy(&reply.body));
    let attachment = reply.json()["attachment"].clone();
    let client_id = format!("send-{name}");
    client
        .send(
            json!({"type": "send", "id": client_id, "conversation": conversation, "client_id": client_id,
                     "body": {"text": format!("here is {name}")}, "attachments": [attachment["id"]]}),
        )
        .await;
    let ack = client.next_of_id(&client_id).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    attachment
}

/// The receiving side: the message event carries the attachment; a link from `/link` downloads the same bytes.
async fn receive_file(served: &Served, client: &mut WsClient, token: &str, attachment: &Value, bytes: &[u8]) {
    let event = client
        .next_where(|frame| {
            frame["type"] == "event" && frame["data"]["body"]["attachments"][0]["id"] == attachment["id"]
        })
        .await;
    assert_eq!(
        event["data"]["body"]["attachments"],
        json!([attachment]),
        "{event}"
    );
    let link = get(
        served.addr,
        &format!("/files/link/{}", attachment["id"].as_str().expect("id")),
        Some(token),
    )
    .await;
    assert_eq!(link.status, 200, "{:?}", String::from_utf8_lossy(&link.body));
    let link = link.json();
    let download = get(served.addr, link["url"].as_str().expect("url"), None).await;
    assert_eq!(download.status, 200);
    assert_eq!(download.body, bytes, "the same bytes come back");
    assert_eq!(
        download.header("content-type"),
        attachment["content_type"].as_str()
    );
    assert_eq!(download.header("x-content-type-options"), Some("nosniff"));
    if attachment["thumbnail"] == true {
        let thumbnail = get(
            served.addr,
            link["thumbnail_url"].as_str().expect("thumbnail url"),
            None,
        )
        .await;
        assert_eq!(thumbnail.header("content-type"), Some("image/png"));
        let small = image::load_from_memory(&thumbnail.body).expect("a PNG thumbnail");
        assert!(
            small.width() <= 320 && small.height() <= 320,
            "{}x{}",
            small.width(),
            small.height()
        );
    } else {
        assert!(link.get("thumbnail_url").is_none(), "{link}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_and_a_pdf_go_each_way_and_only_participants_download_them() {
    let served = serve().await;
    let addr = served.addr;
    let (visitor_token, alice_token) = (token(&visitor("v-1")), token(&agent("alice")));
    let mut alice = WsClient::as_identity(addr, &agent("alice")).await;
    let mut customer = WsClient::as_identity(addr, &visitor("v-1")).await;
    customer
        .send(json!({"type": "open", "id": "o", "client_id": "open-1"}))
        .await;
    let opened = customer.next_of_id("o").await;
    let conversation = opened["conversation"]["id"].as_str().expect("id").to_owned();
    alice.next_of("conversation").await;
    for client in [&mut customer, &mut alice] {
        client
            .send(json!({"type": "subscribe", "id": "s", "conversation": conversation}))
            .await;
        client.next_of_id("s").await;
    }

    let (photo, manual) = (png(800, 600), pdf(40_000));
    let sent = send_file(
        &served,
        &mut customer,
        &visitor_token,
        &conversation,
        "dent.png",
        photo.clone(),
    )
    .await;
    assert_eq!(
        (
            &sent["content_type"],
            &sent["width"],
            &sent["height"],
            &sent["thumbnail"],
            &sent["size"]
        ),
        (
            &json!("image/png"),
            &json!(800),
            &json!(600),
            &json!(true),
            &json!(photo.len())
        )
    );
    receive_file(&served, &mut alice, &alice_token, &sent, &photo).await;
    let sent = send_file(
        &served,
        &mut customer,
        &visitor_token,
        &conversation,
        "receipt.pdf",
        manual.clone(),
    )
    .await;
    assert_eq!(sent["content_type"], "application/pdf");
    assert!(sent.get("width").is_none(), "{sent}");
    receive_file(&served, &mut alice, &alice_token, &sent, &manual).await;

    let (chart, guide) = (png(200, 100), pdf(1_000));
    let sent = send_file(
        &served,
        &mut alice,
        &alice_token,
        &conversation,
        "steps.png",
        chart.clone(),
    )
    .await;
    receive_file(&served, &mut customer, &visitor_token, &sent, &chart).await;
    let guide_sent = send_file(
        &served,
        &mut alice,
        &alice_token,
        &conversation,
        "guide.pdf",
        guide.clone(),
    )
    .await;
    receive_file(&served, &mut customer, &visitor_token, &guide_sent, &guide).await;

    // Another visitor, an agent of another group: no link, as if the file did not exist; no upload either.
    let guide_link = format!("/files/link/{}", guide_sent["id"].as_str().expect("id"));
    let stranger = token(&visitor("v-2"));
    let refused = get(addr, &guide_link, Some(&stranger)).await;
    assert_eq!((refused.status, refused.code()), (404, "not_found".to_owned()));
    let carol = get(addr, &guide_link, Some(&token(&agent("carol")))).await;
    assert_eq!((carol.status, carol.code()), (404, "not_found".to_owned()));
    let intruding = upload(addr, &stranger, &conversation, "x.pdf", pdf(10)).await;
    assert_eq!(
        (intruding.status, intruding.code()),
        (404, "not_found".to_owned())
    );
    let anonymous = get(addr, &guide_link, None).await;
    assert_eq!(
        (anonymous.status, anonymous.code()),
        (401, "invalid_token".to_owned())
    );
    // A link of the participant's, changed to name another file or with its signature altered, downloads nothing.
    let link = get(addr, &guide_link, Some(&visitor_token)).await.json();
    let url = link["url"].as_str().expect("url");
    let forged = url.replace(
        guide_sent["id"].as_str().expect("id"),
        sent["id"].as_str().expect("id"),
    );
    let refused = get(addr, &forged, None).await;
    assert_eq!((refused.status, refused.code()), (403, "bad_link".to_owned()));
    let tampered = format!("{}A", url);
    assert_eq!(get(addr, &tampered, None).await.code(), "bad_link");
    let stale = url.replace("expires=", "expires=1");
    assert_eq!(get(addr, &stale, None).await.code(), "bad_link");

    // Four files and three thumbnails, nothing half-written.
    assert_eq!(blob_files(served.dir.path()).len(), 6);
    assert_eq!(partial_files(served.dir.path()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_broken_uploads_store_nothing() {
    let served = serve().await;
    let addr = served.addr;
    let visitor_token = token(&visitor("v-1"));
    let mut customer = WsClient::as_identity(addr, &visitor("v-1")).await;
    customer
        .send(json!({"type": "open", "id": "o", "client_id": "open-1"}))
        .await;
    let opened = customer.next_of_id("o").await;
    let conversation = opened["conversation"]["id"].as_str().expect("id").to_owned();
    let uploads = served.engine.uploads().expect("upload records").clone();
    let nothing_stored = |what: &str| {
        assert!(
            blob_files(served.dir.path()).is_empty(),
            "{what}: {:?}",
            blob_files(served.dir.path())
        );
        assert_eq!(partial_files(served.dir.path()), 0, "{what}");
    };

    // Types are sniffed from the bytes: text, an executable, an HTML page named .png are refused.
    for (name, bytes) in [
        ("notes.txt", b"just some text, no magic".to_vec()),
        ("setup.exe", [b"MZ\x90\x00".as_slice(), &[0u8; 300]].concat()),
        ("cute.png", b"<!DOCTYPE html><script>alert(1)</script>".to_vec()),
    ] {
        let reply = upload(addr, &visitor_token, &conversation, name, bytes).await;
        assert_eq!(
            (reply.status, reply.code()),
            (415, "unsupported_type".to_owned()),
            "{name}"
        );
        assert!(
            reply.json()["message"]
                .as_str()
                .expect("message")
                .contains("accepted: image/png")
        );
    }
    let empty = upload(addr, &visitor_token, &conversation, "empty.png", Vec::new()).await;
    assert_eq!((empty.status, empty.code()), (400, "invalid_request".to_owned()));
    nothing_stored("refused types");

    // Too large: declared up front, or found while streaming (chunked, no length).
    let mut big = png(64, 64);
    big.resize(usize::try_from(MAX_FILE).expect("size") + 1, 0);
    let declared = upload(addr, &visitor_token, &conversation, "big.png", big.clone()).await;
    assert_eq!((declared.status, declared.code()), (413, "too_large".to_owned()));
    let path = format!("/files/upload?conversation={conversation}&name=big.png");
    let streamed = http(addr, "POST", &path, Some(&visitor_token), big, None).await;
    assert_eq!((streamed.status, streamed.code()), (413, "too_large".to_owned()));
    assert!(
        streamed.json()["message"]
            .as_str()
            .expect("message")
            .contains("300000 bytes")
    );
    nothing_stored("oversize uploads");

    // A PNG that breaks off half-way: the server stores nothing of it.
    let photo = png(300, 300);
    let half = photo[..photo.len() / 2].to_vec();
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {visitor_token}\r\nContent-Length: {}\r\n\r\n",
        photo.len()
    );
    write.write_all(head.as_bytes()).await.expect("write");
    write.write_all(&half).await.expect("write");
    drop(write);
    let mut raw = Vec::new();
    let _ = read.read_to_end(&mut raw).await;

    // The conversation's limit: PDFs until the next would not fit.
    let mut stored = 0;
    let reply = loop {
        let reply = upload(addr, &visitor_token, &conversation, "part.pdf", pdf(250_000)).await;
        if reply.status != 201 {
            break reply;
        }
        stored += 1;
        assert!(stored <= 4, "the conversation limit never refused");
    };
    assert_eq!(
        (reply.status, reply.code()),
        (413, "conversation_full".to_owned())
    );
    assert_eq!(stored, 4);
    let ready = uploads
        .conversation_upload_bytes(conversation.parse().expect("id"))
        .await
        .expect("bytes");
    assert!(ready <= MAX_CONVERSATION, "{ready}");

    // The cleanup pass (TTL 0 here) removes the files no message carries, and the broken upload left nothing.
    let last = uploads
        .stale_uploads(kf_core::model::Timestamp(u64::MAX), 100)
        .await
        .expect("stale")
        .iter()
        .map(|upload| upload.created_at)
        .max()
        .expect("the PDFs are pending");
    while served.engine.now() <= last {
        tokio::task::yield_now().await;
    }
    let report = served
        .engine
        .clean_up_uploads(&*served.blobs)
        .await
        .expect("cleanup");
    assert_eq!(report.removed, 4);
    nothing_stored("after the cleanup pass");
    let log = shop::stored(&served.engine, &conversation).await;
    assert_eq!(log.len(), 1, "no message was stored: {log:?}");
}
