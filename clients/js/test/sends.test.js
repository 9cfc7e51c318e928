// Sends (protocol §15, §16, §17 step 7): pending until acknowledged, resent with the same client id after a
// reconnect and after a reload, one at a time per conversation, final and retryable errors.
import assert from "node:assert/strict";
import { test } from "node:test";

import { KfClient, memoryArea } from "../src/index.js";
import { WELCOME, connectWs, flush, message, setup } from "./fakes.js";

async function subscribedWs(t, conversation = "c1", lastSeq = 0) {
  t.client.subscribe(conversation);
  const ws = await connectWs(t);
  ws.receive({ type: "subscribed", id: `sub:${conversation}`, conversation, after: lastSeq, reset: false, last_seq: lastSeq });
  return ws;
}

test("a send goes out once subscribed, and its ack settles it", async () => {
  const t = setup();
  const id = t.client.send("c1", "hello");
  assert.equal(t.client.pending.size, 1, "kept while offline");
  const ws = await subscribedWs(t);
  assert.deepEqual(ws.sentOf("send"), [{ type: "send", id: `send:${id}`, conversation: "c1", client_id: id, body: { text: "hello" } }]);
  ws.receive({ type: "ack", id: `send:${id}`, conversation: "c1", client_id: id, seq: 1, duplicate: false });
  assert.equal(t.client.pending.size, 0);
  assert.deepEqual(t.log.acks, [{ clientId: id, seq: 1 }]);
});

test("sends go one at a time per conversation, in order; the own event settles a send before its ack", async () => {
  const t = setup({ isMine: (author) => !!author && author.role === "visitor" });
  const ws = await subscribedWs(t);
  const a = t.client.send("c1", "a");
  const b = t.client.send("c1", "b");
  assert.deepEqual(ws.sentOf("send").map((f) => f.client_id), [a], "b waits for a");
  ws.receive(message("c1", 1, "a", { client_id: a }));
  assert.deepEqual(ws.sentOf("send").map((f) => f.client_id), [a, b], "a's own event let b go");
  ws.receive({ type: "ack", id: `send:${a}`, conversation: "c1", client_id: a, seq: 1, duplicate: false });
  ws.receive({ type: "ack", id: `send:${b}`, conversation: "c1", client_id: b, seq: 2, duplicate: false });
  assert.equal(t.client.pending.size, 0);
});

test("a send not acknowledged before a reconnect is resent with the same client id", async () => {
  const t = setup();
  let ws = await subscribedWs(t);
  const id = t.client.send("c1", "lost ack");
  assert.equal(ws.sentOf("send").length, 1);
  ws.serverClose(1006);
  t.timers.advance(5000);
  await flush();
  ws = t.WebSocket.instances[1];
  ws.open();
  ws.receive(WELCOME("e1"));
  assert.equal(ws.sentOf("send").length, 0, "not before the conversation is subscribed again");
  ws.receive({ type: "subscribed", id: "sub:c1", conversation: "c1", after: 0, reset: false, last_seq: 1 });
  assert.deepEqual(ws.sentOf("send").map((f) => f.client_id), [id]);
  ws.receive({ type: "ack", id: `send:${id}`, conversation: "c1", client_id: id, seq: 1, duplicate: true });
  assert.equal(t.client.pending.size, 0);
});

test("pending sends survive a reload: a new client on the same storage resends them with their client ids", async () => {
  const area = memoryArea();
  const first = setup({ area });
  first.client.subscribe("c1");
  const id = first.client.send("c1", "written offline");
  await flush(); // the state is written within the task
  assert.match(area.getItem("kf.test"), /written offline/);
  first.client.stop();

  const second = setup({ area });
  assert.deepEqual([...second.client.pending.keys()], [id]);
  const ws = await subscribedWs(second);
  assert.deepEqual(ws.sentOf("send").map((f) => f.client_id), [id]);
  ws.receive({ type: "ack", id: `send:${id}`, conversation: "c1", client_id: id, seq: 1, duplicate: false });
  await flush();
  assert.deepEqual(JSON.parse(area.getItem("kf.test")).pending, [], "the ack is persisted too");
});

test("retryable errors keep the send and retry it (same client id) before those behind it", async () => {
  const t = setup();
  const ws = await subscribedWs(t);
  const a = t.client.send("c1", "a");
  const b = t.client.send("c1", "b");
  ws.receive({ type: "error", id: `send:${a}`, code: "rate_limited", message: "slow down" });
  assert.equal(t.client.pending.size, 2);
  assert.equal(t.client.sendStats.retried, 1);
  assert.deepEqual(ws.sentOf("send").map((f) => f.client_id), [a], "b does not overtake the refused a");
  t.timers.advance(1000); // 1 s × (0.5 + 0.5/2) = 750 ms with random 0.5
  assert.deepEqual(ws.sentOf("send").map((f) => f.client_id), [a, a]);
  ws.receive({ type: "error", id: `send:${a}`, code: "some_new_code", message: "unknown codes are retried too" });
  t.timers.advance(2000);
  assert.deepEqual(ws.sentOf("send").map((f) => f.client_id), [a, a, a]);
  ws.receive({ type: "ack", id: `send:${a}`, conversation: "c1", client_id: a, seq: 1, duplicate: false });
  assert.deepEqual(ws.sentOf("send").map((f) => f.client_id), [a, a, a, b]);
  assert.deepEqual(t.log.failed, []);
});

test("final errors drop the send and report it; the next one goes", async () => {
  const t = setup();
  const ws = await subscribedWs(t);
  const a = t.client.send("c1", "a");
  const b = t.client.send("c1", "b");
  ws.receive({ type: "error", id: `send:${a}`, code: "invalid_state", message: "closed" });
  assert.deepEqual(t.log.failed, [{ clientId: a, code: "invalid_state" }]);
  assert.deepEqual([...t.client.pending.keys()], [b]);
  assert.deepEqual(ws.sentOf("send").map((f) => f.client_id), [a, b]);
  const big = t.client.send("c1", "x".repeat(101)); // welcome said max_text_bytes 100
  assert.deepEqual(t.log.failed.at(-1), { clientId: big, code: "too_large" });
  assert.ok(!t.client.pending.has(big));
});

test("forget drops a conversation's cursor, pending sends and retry timer", async () => {
  const t = setup();
  const ws = await subscribedWs(t);
  const a = t.client.send("c1", "a");
  ws.receive({ type: "error", id: `send:${a}`, code: "unavailable", message: "later" });
  t.client.forget("c1");
  assert.equal(t.client.pending.size, 0);
  assert.equal(t.client.lastSeq("c1"), 0);
  t.timers.advance(60000);
  assert.equal(ws.sentOf("send").length, 1);
});

test("the getToken option is required", () => {
  assert.throws(() => new KfClient(/** @type {any} */ ({ url: "ws://x/ws" })), /getToken/);
});
