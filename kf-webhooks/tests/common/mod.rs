//! A webhook receiver on 127.0.0.1 for the delivery tests: it checks every request's signature, records what it
//! accepted, and behaves as told — answers at once, is down (503), or at random (seeded): fails (500), answers
//! too late for the sender's timeout (after having taken the delivery: a duplicate follows), answers slowly.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use kf_webhooks::signature::{REPLAY_WINDOW, verify};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// The secret every test subscription uses.
pub const SECRET: &str = "test-secret-0123456789";

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// 200 at once.
    Up,
    /// 503 to everything.
    Down,
    /// At random: 20% 500, 10% a 200 after `late` (past the sender's timeout, but the delivery was taken), 15%
    /// a 200 after 30 ms, else 200 at once.
    Chaos { late: Duration },
    /// Every answer after this long.
    Slow(Duration),
}

/// One delivery the receiver took (answered, or was about to answer, with 200).
#[derive(Clone, Debug)]
pub struct Taken {
    pub id: String,
    pub kind: String,
    pub conversation: String,
    pub seq: u64,
    pub position: u64,
    pub subscription: String,
}

#[derive(Debug, Default)]
pub struct Record {
    /// Every delivery taken, in arrival order (duplicates included).
    pub taken: Vec<Taken>,
    /// Requests of any outcome.
    pub requests: usize,
    /// Answered with an error status.
    pub failed: usize,
    /// Taken but answered too late.
    pub late: usize,
    /// Requests whose signature or headers did not check out.
    pub bad_signatures: usize,
}

impl Record {
    /// The delivery ids taken, once each.
    pub fn unique(&self) -> HashSet<String> {
        self.taken.iter().map(|taken| taken.id.clone()).collect()
    }

    /// The first arrival of each delivery id, in arrival order (what a receiver deduplicating by id keeps).
    pub fn deduplicated(&self) -> Vec<Taken> {
        let mut seen = HashSet::new();
        self.taken
            .iter()
            .filter(|taken| seen.insert(taken.id.clone()))
            .cloned()
            .collect()
    }

    /// Asserts that, per conversation, first arrivals come in seq order (per subscription).
    pub fn assert_per_conversation_order(&self) {
        let mut last: HashMap<(String, String), u64> = HashMap::new();
        for taken in self.deduplicated() {
            let key = (taken.subscription.clone(), taken.conversation.clone());
            let before = last.insert(key, taken.seq).unwrap_or(0);
            assert!(
                taken.seq > before,
                "seq {} of {} arrived after seq {before}",
                taken.seq,
                taken.conversation
            );
        }
    }
}

/// A running receiver.
#[derive(Clone, Debug)]
pub struct Receiver {
    pub url: String,
    pub record: Arc<Mutex<Record>>,
    mode: Arc<Mutex<Mode>>,
}

impl Receiver {
    /// Starts a receiver on a free port of 127.0.0.1, its randomness seeded with `seed`.
    pub async fn start(mode: Mode, seed: u64) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let receiver = Receiver {
            url,
            record: Arc::default(),
            mode: Arc::new(Mutex::new(mode)),
        };
        let rng = Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed)));
        let served = receiver.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (receiver, rng) = (served.clone(), rng.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let (receiver, rng) = (receiver.clone(), rng.clone());
                        async move { Ok::<_, Infallible>(receiver.answer(request, &rng).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        receiver
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }

    pub fn snapshot<T>(&self, read: impl FnOnce(&Record) -> T) -> T {
        read(&self.record.lock().expect("record"))
    }

    async fn answer(&self, request: Request<Incoming>, rng: &Mutex<ChaCha8Rng>) -> Response<Full<Bytes>> {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let (signature, delivery) = (header("x-kf-signature"), header("x-kf-delivery"));
        let body = request.into_body().collect().await.expect("body").to_bytes();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let valid = signature
            .as_deref()
            .is_some_and(|signature| verify(SECRET.as_bytes(), signature, &body, now, REPLAY_WINDOW).is_ok());
        let payload: Value = serde_json::from_slice(&body).expect("JSON payload");
        let taken = Taken {
            id: payload["id"].as_str().expect("id").to_owned(),
            kind: payload["type"].as_str().expect("type").to_owned(),
            conversation: payload["conversation"].as_str().expect("conversation").to_owned(),
            seq: payload["seq"].as_u64().expect("seq"),
            position: payload["position"].as_u64().expect("position"),
            subscription: payload["subscription"].as_str().expect("subscription").to_owned(),
        };
        let consistent = delivery.as_deref() == Some(taken.id.as_str())
            && payload["event"]["seq"].as_u64() == Some(taken.seq)
            && payload["event"]["conversation"].as_str() == Some(taken.conversation.as_str());
        let mode = *self.mode.lock().expect("mode");
        let (status, delay, late) = match mode {
            Mode::Up => (StatusCode::OK, None, false),
            Mode::Down => (StatusCode::SERVICE_UNAVAILABLE, None, false),
            Mode::Slow(delay) => (StatusCode::OK, Some(delay), false),
            Mode::Chaos { late } => {
                let roll: f64 = rng.lock().expect("rng").random();
                if roll < 0.2 {
                    (StatusCode::INTERNAL_SERVER_ERROR, None, false)
                } else if roll < 0.3 {
                    (StatusCode::OK, Some(late), true)
                } else if roll < 0.45 {
                    (StatusCode::OK, Some(Duration::from_millis(30)), false)
                } else {
                    (StatusCode::OK, None, false)
                }
            }
        };
        {
            let mut record = self.record.lock().expect("record");
            record.requests += 1;
            if !(valid && consistent) {
                record.bad_signatures += 1;
            }
            if status.is_success() {
                // Taken before the (possibly late) answer: the sender may give up waiting and send it again.
                record.taken.push(taken);
                record.late += usize::from(late);
            } else {
                record.failed += 1;
            }
        }
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
        *response.status_mut() = status;
        response
    }
}

/// Polls `condition` every 10 ms until it holds; panics after `limit`.
pub async fn until(what: &str, limit: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
