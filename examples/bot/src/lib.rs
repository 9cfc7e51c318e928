//! A bot that answers visitors first and hands over to people, run **inside the host's process** through the
//! engine's API (`docs/bots.md`).
//!
//! The bot is an agent of a bot-first group (a [`Group`](kf_core::model::Group) with
//! [`handover`](kf_core::model::Group::handover) set). [`run`] opens a session for it with
//! [`Engine::connect`] — the same [`Session`](kf_core::engine::Session) and [`Outbox`](kf_core::engine::Outbox)
//! a WebSocket connection has, so the bot is online, gets its conversations (`inbox`, `conversation` frames) and
//! reads their events as protocol frames — and writes with [`Engine::send`] and [`Engine::transfer`]. A message
//! the [`FaqBot`] cannot answer with an answer — "human", "人工", "agent" — is handed over: a last message, then a
//! transfer with [`Transfer::handover`], which sends the conversation to the group's people with its whole log.
//!
//! ```no_run
//! # async fn demo(engine: kf_core::Engine) -> Result<(), kf_bot::BotError> {
//! use kf_core::auth::Identity;
//! use kf_core::model::{AgentId, TenantId};
//!
//! let me = Identity::agent(TenantId::new("shop").unwrap(), AgentId::new("faq-bot").unwrap());
//! tokio::spawn(kf_bot::run(engine, me, kf_bot::FaqBot::shop()));
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;

use kf_core::Engine;
use kf_core::auth::{Identity, Principal};
use kf_core::engine::{Outgoing, RequestError, Transfer};
use kf_core::model::{Actor, ClientId, ConversationId, Event, EventKind, InvalidId, MessageBody};
use kf_core::protocol::CloseReason;
use serde_json::{Value, json};

/// What the bot does with a visitor's message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Reply {
    /// Answer with this text.
    Answer(String),
    /// Say this, then hand the conversation over to people.
    HandOver(String),
}

/// A keyword bot: the first entry whose keyword the message contains (case-insensitively) answers it; words that
/// ask for a person hand over; anything else gets the fallback answer.
#[derive(Clone, Debug)]
pub struct FaqBot {
    answers: Vec<(Vec<String>, String)>,
    handover_words: Vec<String>,
    handover_text: String,
    fallback: String,
}

impl FaqBot {
    /// A bot with no answers: it hands over on "human", "person", "agent" and "人工", and answers anything else
    /// with `fallback`.
    pub fn new(fallback: impl Into<String>) -> Self {
        Self {
            answers: Vec::new(),
            handover_words: ["human", "person", "agent", "人工"].map(String::from).to_vec(),
            handover_text: "Let me connect you with a colleague — one moment.".into(),
            fallback: fallback.into(),
        }
    }

    /// The shop's bot of the example: shipping, returns and opening hours, in English and Chinese.
    pub fn shop() -> Self {
        Self::new(
            "I can help with shipping, returns and opening hours. Type \"human\" (or 人工) for a person.",
        )
        .with_answer(
            ["ship", "deliver", "order", "发货", "快递"],
            "Orders ship within one working day; you can follow yours under Account → Orders.",
        )
        .with_answer(
            ["return", "refund", "退货", "退款"],
            "You can return anything within 30 days: Account → Returns.",
        )
        .with_answer(
            ["hour", "open", "营业"],
            "We answer chats Monday to Friday, 9:00–18:00.",
        )
    }

    /// Adds an answer for messages containing any of `keywords`.
    #[must_use]
    pub fn with_answer<K: Into<String>>(
        mut self,
        keywords: impl IntoIterator<Item = K>,
        text: impl Into<String>,
    ) -> Self {
        let keywords = keywords.into_iter().map(|k| k.into().to_lowercase()).collect();
        self.answers.push((keywords, text.into()));
        self
    }

    /// What the bot does with `text`.
    pub fn reply(&self, text: &str) -> Reply {
        let text = text.to_lowercase();
        let has = |word: &String| text.contains(word.as_str());
        if self.handover_words.iter().any(has) {
            return Reply::HandOver(self.handover_text.clone());
        }
        let answer = self.answers.iter().find(|(keywords, _)| keywords.iter().any(has));
        Reply::Answer(answer.map_or_else(|| self.fallback.clone(), |(_, text)| text.clone()))
    }
}

/// Why [`run`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BotError {
    /// The identity is not an agent.
    #[error("a bot is an agent; {0:?} is not one")]
    NotAnAgent(Principal),
    /// The engine refused the session (an unknown agent, too many connections, the store unavailable).
    #[error("the engine refused the bot's session: {0}")]
    Connect(#[source] RequestError),
    /// The engine closed the session (a slow consumer, the store unavailable); run the bot again.
    #[error("the engine closed the bot's session: {0:?}")]
    Closed(CloseReason),
    /// A frame the bot could not read (a bug: the engine writes the protocol's frames).
    #[error("unreadable frame from the engine: {0}")]
    Frame(#[source] serde_json::Error),
    /// A client id the bot made was refused.
    #[error("client id: {0}")]
    ClientId(#[from] InvalidId),
}

/// What the bot knows of one conversation it has.
#[derive(Default, Debug)]
struct Talk {
    /// The last seq of the replay (`subscribed.last_seq`): older events are history, answered only if the last
    /// visitor message in it has no answer yet (the bot restarted meanwhile).
    replay_end: u64,
    /// The visitor's newest message that nobody has answered yet.
    pending: Option<(u64, String)>,
}

/// Runs `bot` as the agent `me` until the engine shuts down (`Ok`) or closes the session (`Err`; run it again —
/// it resumes every conversation it still has and answers a question left unanswered).
///
/// `me` must be an agent of a bot-first group; it is online while this runs (its status as for any agent), and
/// takes conversations up to its capacity. Answers carry the client id `faq-<seq>` of the message they answer, so
/// a restarted bot never answers a message twice.
pub async fn run(engine: Engine, me: Identity, bot: FaqBot) -> Result<(), BotError> {
    if !matches!(me.principal, Principal::Agent(_)) {
        return Err(BotError::NotAnAgent(me.principal));
    }
    let (mut session, mut outbox) = engine.connect(me.clone()).await.map_err(BotError::Connect)?;
    let mut talks: HashMap<ConversationId, Talk> = HashMap::new();
    loop {
        let frame = match outbox.next().await {
            Outgoing::Close(CloseReason::Shutdown) => return Ok(()),
            Outgoing::Close(reason) => return Err(BotError::Closed(reason)),
            Outgoing::Frame(frame) | Outgoing::Event { frame, .. } => frame,
        };
        let frame: Value = serde_json::from_slice(&frame).map_err(BotError::Frame)?;
        match frame["type"].as_str() {
            // Its conversations when it connects, and each one assigned to it later: follow them from the start.
            Some("inbox") => {
                for conversation in frame["conversations"].as_array().into_iter().flatten() {
                    subscribe(&mut session, &conversation["id"]).await;
                }
            }
            Some("conversation") => subscribe(&mut session, &frame["conversation"]["id"]).await,
            Some("subscribed") => {
                let (Some(id), Some(last)) = (frame["conversation"].as_str(), frame["last_seq"].as_u64())
                else {
                    continue;
                };
                if let Ok(id) = id.parse() {
                    talks.entry(id).or_default().replay_end = last;
                }
            }
            Some("event") => {
                let event: Event = serde_json::from_value(frame).map_err(BotError::Frame)?;
                let conversation = event.conversation;
                let talk = talks.entry(conversation).or_default();
                match (&event.author, &event.data) {
                    (Actor::Visitor(_), EventKind::Message { body }) => {
                        talk.pending = Some((event.seq.0, body.text.clone()));
                    }
                    (Actor::Agent(_), EventKind::Message { .. }) => talk.pending = None,
                    // Not the bot's any more: handed over, closed, or moved by a timer.
                    (_, EventKind::Transferred { .. } | EventKind::Closed) => {
                        talks.remove(&conversation);
                        let frame = json!({"type": "unsubscribe", "conversation": conversation});
                        session.receive(&frame.to_string()).await;
                        continue;
                    }
                    _ => {}
                }
                if event.seq.0 < talk.replay_end {
                    continue;
                }
                if let Some((seq, text)) = talk.pending.take() {
                    answer(&engine, &me, &bot, conversation, seq, &text).await?;
                }
            }
            _ => {}
        }
    }
}

async fn subscribe(session: &mut kf_core::engine::Session, conversation: &Value) {
    let frame = json!({"type": "subscribe", "conversation": conversation, "after": 0});
    session.receive(&frame.to_string()).await;
}

/// Answers the visitor's message `seq`, or hands over. A refusal (the conversation moved meanwhile) is logged:
/// the bot goes on with its other conversations.
async fn answer(
    engine: &Engine,
    me: &Identity,
    bot: &FaqBot,
    conversation: ConversationId,
    seq: u64,
    text: &str,
) -> Result<(), BotError> {
    let client_id = ClientId::new(format!("faq-{seq}"))?;
    let outcome = match bot.reply(text) {
        Reply::Answer(answer) => engine
            .send(me, conversation, client_id, MessageBody::text(answer))
            .await
            .map(drop),
        Reply::HandOver(last_words) => {
            match engine
                .send(me, conversation, client_id, MessageBody::text(last_words))
                .await
            {
                Ok(_) => {
                    let transfer = Transfer::default()
                        .handover()
                        .with_note(format!("asked for a person: {text}"));
                    engine.transfer(me, conversation, transfer).await.map(drop)
                }
                Err(error) => Err(error),
            }
        }
    };
    if let Err(error) = outcome {
        tracing::warn!(%conversation, %error, "the bot's answer was refused");
    }
    Ok(())
}
