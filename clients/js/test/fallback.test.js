// Transport "auto": WebSocket first, SSE when WebSockets do not work here — with nothing lost or repeated across
// the switch, and the choice remembered for the next page.
import assert from "node:assert/strict";
import { test } from "node:test";

import { DEFAULT_WS_RETRY_AFTER_MS, memoryArea } from "../src/index.js";
import { WELCOME, connectWs, fakeFetch, flush, message, setup } from "./fakes.js";

// An SSE server for the fakes: POST /sse/send acks with the next seq of the conversation.
function sseServer() {
  let seq = 3;
  return fakeFetch((call) => {
    if (call.path === "/sse/send") return { status: 200, body: { type: "ack", id: call.body.id, conversation: call.body.conversation, client_id: call.body.client_id, seq: ++seq, duplicate: false } };
    if (call.path === "/sse/ping") return { status: 200, body: { type: "pong" } };
    return { status: 204 };
  });
}

async function failTwice(t) {
  t.client.start();
  await flush();
  t.WebSocket.instances[0].serverClose(1006); // a refused handshake looks like this in a browser
  await flush();
  assert.equal(t.client.transport, "ws", "one failure is not enough");
  t.timers.advance(5000);
  await flush();
  t.WebSocket.instances[1].open();
  t.WebSocket.instances[1].serverClose(1006); // opened, then closed before any welcome
  await flush();
}

test("two WebSocket failures before any welcome switch to SSE; pending sends and cursors carry over", async () => {
  const area = memoryArea();
  const fetch = sseServer();
  const t = setup({ transport: "auto", area, fetch, state: { cursors: { c1: { seq: 2, epoch: "e1" } } } });
  t.client.subscribe("c1");
  const id = t.client.send("c1", "written before the switch");
  await failTwice(t);
  assert.equal(t.client.transport, "sse");
  assert.equal(t.log.transports.length, 1);
  const switched = t.log.statuses.find((s) => s.fallback);
  assert.ok(switched && switched.status === "connecting" && switched.transport === "sse", JSON.stringify(t.log.statuses));
  await flush();
  assert.equal(t.EventSource.instances.length, 1);
  const es = t.EventSource.instances[0];
  assert.equal(es.params.get("token"), "tok");
  assert.ok(es.url.startsWith("http://kf.test/sse/events?"));
  es.open();
  es.receive(WELCOME("e1"));
  es.receive({ type: "inbox", conversations: [{ id: "c1", last_seq: 3 }] });
  es.receive({ type: "following", reset: false });
  await flush();
  // The stream (no cursor yet) replays c1 from seq 1; the client applied up to 2 on the WebSocket before.
  es.receive(message("c1", 1, "old"), "k1");
  es.receive(message("c1", 2, "old"), "k2");
  es.receive(message("c1", 3, "new"), "k3");
  assert.deepEqual(t.log.events.map((e) => e.seq), [3], "nothing applied twice");
  const sends = fetch.calls.filter((c) => c.path === "/sse/send");
  assert.deepEqual(sends.map((c) => c.body.client_id), [id], "the pending send went once, same client id");
  assert.equal(sends[0].headers.Authorization, "Bearer tok");
  assert.equal(sends[0].init.credentials, undefined, "no credentials: the token is the only authority");
  await flush();
  assert.equal(t.client.pending.size, 0, "acknowledged over POST");
  assert.equal(t.client.sseCursor, "k3");
  await flush();
  const saved = JSON.parse(area.getItem("kf.test"));
  assert.ok(saved.fallbackAt > 0 && saved.fallbackAt <= t.timers.now(), "the choice is saved");

  // A new page within the retry period starts on SSE, resuming from the saved cursor.
  const reloaded = setup({ transport: "auto", area, fetch, now: () => t.timers.time + 60_000 });
  assert.equal(reloaded.client.transport, "sse");
  reloaded.client.start();
  await flush();
  assert.equal(reloaded.WebSocket.instances.length, 0);
  assert.equal(reloaded.EventSource.instances[0].params.get("cursor"), "k3");

  // After it, WebSockets again.
  const later = setup({ transport: "auto", area, fetch, now: () => t.timers.time + DEFAULT_WS_RETRY_AFTER_MS + 1 });
  assert.equal(later.client.transport, "ws");
  const skewed = setup({ transport: "auto", area, fetch, now: () => t.timers.time - 3_600_000 });
  assert.equal(skewed.client.transport, "ws", "a fallback time in the future (clock set back) does not pin SSE");
});

test("a WebSocket constructor that throws switches to SSE at once", async () => {
  const t = setup({ transport: "auto", wsThrows: true, fetch: sseServer() });
  t.client.start();
  await flush();
  assert.equal(t.client.transport, "sse");
  assert.equal(t.EventSource.instances.length, 1);
});

test("no switch when the server answered (an error frame), nor once a WebSocket session has opened", async () => {
  const t = setup({ transport: "auto" });
  t.client.start();
  for (let i = 0; i < 3; i++) {
    await flush();
    const ws = t.WebSocket.instances.at(-1);
    ws.open();
    ws.receive({ type: "error", code: "unavailable", message: "store down" });
    ws.serverClose(1013, "try again later");
    await flush();
    t.timers.advance(5000);
  }
  assert.equal(t.client.transport, "ws", "the server is reachable over WebSocket: an outage, not a blocked transport");

  const u = setup({ transport: "auto" });
  await connectWs(u);
  for (let i = 0; i < 4; i++) {
    u.WebSocket.instances.at(-1).serverClose(1006);
    await flush();
    u.timers.advance(5000);
    await flush();
  }
  assert.equal(u.client.transport, "ws", "WebSockets worked here: a server restart does not switch");
});

test("forced transports never switch", async () => {
  const t = setup({ transport: "ws" });
  t.client.start();
  for (let i = 0; i < 4; i++) {
    await flush();
    t.WebSocket.instances.at(-1).serverClose(1006);
    await flush();
    t.timers.advance(5000);
  }
  assert.equal(t.client.transport, "ws");
  assert.equal(t.EventSource.instances.length, 0);
  const s = setup({ transport: "sse", state: { fallbackAt: 0 } });
  assert.equal(s.client.transport, "sse");
});

test("handshakes that never complete count as failures: dropped after a ping interval + 10 s, then SSE", async () => {
  const t = setup({ transport: "auto", fetch: sseServer() });
  t.client.start();
  await flush();
  t.timers.advance(34999);
  assert.equal(t.WebSocket.instances[0].closedWith, null);
  t.timers.advance(1);
  assert.deepEqual(t.WebSocket.instances[0].closedWith, { code: 4000, reason: "client reconnects" });
  t.timers.advance(5000);
  await flush();
  assert.equal(t.WebSocket.instances.length, 2);
  t.timers.advance(35000);
  await flush();
  assert.equal(t.client.transport, "sse");
  assert.equal(t.EventSource.instances.length, 1);
  // A stream that never opens is reopened the same way.
  t.timers.advance(35000);
  assert.equal(t.EventSource.instances[0].closed, true);
  t.timers.advance(5000);
  await flush();
  assert.equal(t.EventSource.instances.length, 2);
});
