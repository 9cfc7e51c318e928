//! The in-process bot over real sockets: a visitor and a person on WebSocket, the bot inside the process.

use kf_bot::{FaqBot, Reply};
use kf_core::model::AgentId;
use kf_core::testkit::shop::{agent, engine_with_bot, eventually, limits, seqs, stored, tenant, visitor};
use kf_transport_ws::testkit::{WsClient, events_until, say, start, subscribe};
use serde_json::{Value, json};

fn texts(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let who = e["author"]["id"].as_str().unwrap_or("system");
            match e["data"]["type"].as_str() {
                Some("message") => format!(
                    "{who}: {}",
                    e["data"]["body"]["text"].as_str().unwrap_or_default()
                ),
                other => format!("{who} {}", other.unwrap_or_default()),
            }
        })
        .collect()
}

/// A visitor of the bot-first group is answered by the bot, asks for a person (人工), and is handed over to
/// `alice`, who gets the whole history; the visitor's log is gapless and has each seq once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_answers_first_and_hands_over_to_a_person() {
    let engine = engine_with_bot(limits()).await;
    let addr = start(&engine, Default::default()).await;
    let bot = tokio::spawn(kf_bot::run(engine.clone(), agent("faq-bot"), FaqBot::shop()));
    let faq_bot = AgentId::new("faq-bot").expect("id");
    eventually("the bot is online", || engine.is_online(&tenant(), &faq_bot)).await;
    let mut alice = WsClient::as_identity(addr, &agent("alice"))
        .await
        .answering_pings();
    let mut customer = WsClient::as_identity(addr, &visitor("v-1"))
        .await
        .answering_pings();

    customer
        .send(json!({"type": "open", "id": "open", "client_id": "open-1", "group": "bot"}))
        .await;
    let opened = customer.next_of("opened").await;
    assert_eq!(opened["conversation"]["agent"], "faq-bot", "{opened}");
    let conversation = opened["conversation"]["id"].as_str().expect("id").to_owned();
    subscribe(&mut customer, &conversation, 0).await;
    let mut seen = events_until(&mut customer, 2).await;

    say(&mut customer, &conversation, "m-1", "When will my order ship?").await;
    seen.extend(events_until(&mut customer, 4).await);
    assert_eq!(
        texts(&seen[2..]),
        [
            "v-1: When will my order ship?",
            "faq-bot: Orders ship within one working day; you can follow yours under Account → Orders."
        ]
    );

    say(&mut customer, &conversation, "m-2", "我要人工").await;
    let assigned = alice.next_of("conversation").await;
    assert_eq!(assigned["conversation"]["id"], conversation.as_str());
    subscribe(&mut alice, &conversation, 0).await;
    let history = events_until(&mut alice, 8).await;
    assert_eq!(
        seqs(&history),
        (1..=8).collect::<Vec<_>>(),
        "the whole history, in order"
    );
    assert_eq!(
        texts(&history),
        [
            "v-1 created",
            "system assigned",
            "v-1: When will my order ship?",
            "faq-bot: Orders ship within one working day; you can follow yours under Account → Orders.",
            "v-1: 我要人工",
            "faq-bot: Let me connect you with a colleague — one moment.",
            "faq-bot transferred",
            "system assigned",
        ]
    );
    assert_eq!(
        history[6]["data"],
        json!({"type": "transferred", "from": "faq-bot", "group": "support", "handover": true,
               "note": "asked for a person: 我要人工"})
    );
    assert_eq!(history[7]["data"], json!({"type": "assigned", "agent": "alice"}));
    say(
        &mut alice,
        &conversation,
        "a-1",
        "Hello, this is Alice. Which order is it?",
    )
    .await;

    seen.extend(events_until(&mut customer, 9).await);
    assert_eq!(seqs(&seen), (1..=9).collect::<Vec<_>>(), "gapless, each seq once");
    assert_eq!(
        seen[6]["data"],
        json!({"type": "transferred", "from": "faq-bot", "group": "support", "handover": true}),
        "the visitor sees the hand-over, not the note"
    );
    let rest = customer.until_pong().await;
    assert!(
        rest.iter().all(|f| f["type"] != "event"),
        "nothing more: {rest:?}"
    );
    assert_eq!(stored(&engine, &conversation).await.len(), 9);
    assert!(!bot.is_finished(), "the bot keeps running");
    bot.abort();
}

#[test]
fn the_faq_bot_answers_by_keyword_and_hands_over_on_request() {
    let bot = FaqBot::shop();
    assert!(matches!(bot.reply("Can I RETURN these shoes?"), Reply::Answer(a) if a.contains("30 days")));
    assert!(matches!(bot.reply("怎么退货"), Reply::Answer(a) if a.contains("30 days")));
    assert!(matches!(bot.reply("hello"), Reply::Answer(a) if a.contains("human")));
    assert!(matches!(bot.reply("I'd like a Human"), Reply::HandOver(_)));
    assert!(matches!(bot.reply("转人工"), Reply::HandOver(_)));
}
