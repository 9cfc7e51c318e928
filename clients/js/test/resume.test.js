// The handshake and the resume algorithm (protocol §4, §17): hello/welcome, subscribe "after" the cursor, dedupe
// by seq, end of replay, gaps, epoch changes.
import assert from "node:assert/strict";
import { test } from "node:test";

import { WELCOME, connectWs, flush, message, setup } from "./fakes.js";

test("hello carries the token and the protocol version; welcome brings the client online", async () => {
  const t = setup();
  t.client.start();
  await flush();
  assert.equal(t.WebSocket.instances.length, 1);
  const ws = t.WebSocket.instances[0];
  assert.equal(ws.url, "ws://kf.test/ws");
  assert.deepEqual(ws.sent, [], "nothing before the socket opens");
  ws.open();
  assert.deepEqual(ws.sent, [{ type: "hello", v: 1, token: "tok" }]);
  assert.equal(t.client.online, false);
  ws.receive(WELCOME("e1"));
  assert.equal(t.client.online, true);
  assert.equal(t.client.serverEpoch, "e1");
  assert.deepEqual(t.log.statuses.map((s) => s.status), ["connecting", "online"]);
  assert.equal(t.log.frames[0].type, "welcome");
  ws.receive({ type: "inbox", conversations: [] });
  assert.equal(t.log.frames[1].type, "inbox", "frames the client does not consume reach onFrame");
});

test("a subscription resumes after the last applied seq and drops what it already applied", async () => {
  const t = setup({ state: { cursors: { c1: { seq: 5, epoch: "e1" } } } });
  t.client.subscribe("c1");
  const ws = await connectWs(t);
  assert.deepEqual(ws.sentOf("subscribe"), [{ type: "subscribe", id: "sub:c1", conversation: "c1", after: 5, epoch: "e1" }]);
  ws.receive({ type: "subscribed", id: "sub:c1", conversation: "c1", after: 5, reset: false, last_seq: 7 });
  for (const seq of [4, 5, 6, 6, 7, 7]) ws.receive(message("c1", seq, `m${seq}`));
  assert.deepEqual(t.log.events.map((e) => e.seq), [6, 7], "each event once, in order; old and repeated ones dropped");
  assert.deepEqual(t.log.caughtUp, ["c1"], "caught up once last_seq is applied");
  assert.equal(t.client.lastSeq("c1"), 7);
  assert.deepEqual(t.log.resets, []);
});

test("a subscription already at last_seq is caught up at once; a gap resubscribes from the cursor", async () => {
  const t = setup({ state: { cursors: { c1: { seq: 3, epoch: "e1" } } } });
  t.client.subscribe("c1");
  const ws = await connectWs(t);
  ws.receive({ type: "subscribed", id: "sub:c1", conversation: "c1", after: 3, reset: false, last_seq: 3 });
  assert.deepEqual(t.log.caughtUp, ["c1"]);
  ws.receive(message("c1", 5, "after a gap"));
  assert.deepEqual(t.log.events, [], "an event beyond the next seq is not applied");
  assert.deepEqual(ws.sentOf("subscribe").at(-1), { type: "subscribe", id: "sub:c1", conversation: "c1", after: 3, epoch: "e1" });
  assert.equal(ws.sentOf("subscribe").length, 2);
  assert.match(t.warnings.join("\n"), /seq gap/);
});

test("reconnecting resubscribes every conversation from its cursor", async () => {
  const t = setup();
  t.client.subscribe("c1");
  let ws = await connectWs(t);
  ws.receive({ type: "subscribed", id: "sub:c1", conversation: "c1", after: 0, reset: false, last_seq: 2 });
  ws.receive(message("c1", 1, "a"));
  ws.receive(message("c1", 2, "b"));
  ws.serverClose(1001, "server shutdown");
  t.timers.advance(5000);
  await flush();
  ws = t.WebSocket.instances[1];
  ws.open();
  ws.receive(WELCOME("e1"));
  assert.deepEqual(ws.sentOf("subscribe"), [{ type: "subscribe", id: "sub:c1", conversation: "c1", after: 2, epoch: "e1" }]);
  ws.receive({ type: "subscribed", id: "sub:c1", conversation: "c1", after: 2, reset: false, last_seq: 3 });
  ws.receive(message("c1", 2, "b"));
  ws.receive(message("c1", 3, "c"));
  assert.deepEqual(t.log.events.map((e) => e.data.body.text), ["a", "b", "c"]);
});

test("a new store epoch resets the conversation: drop what is held, apply from seq 1", async () => {
  const t = setup({ state: { cursors: { c1: { seq: 9, epoch: "old" } } } });
  t.client.subscribe("c1");
  const ws = await connectWs(t, { epoch: "new" });
  assert.deepEqual(ws.sentOf("subscribe")[0], { type: "subscribe", id: "sub:c1", conversation: "c1", after: 9, epoch: "old" }, "the old epoch goes with it (§17 step 4)");
  ws.receive({ type: "subscribed", id: "sub:c1", conversation: "c1", after: 0, reset: true, last_seq: 2 });
  assert.deepEqual(t.log.resets, ["c1"]);
  ws.receive(message("c1", 1, "again"));
  ws.receive(message("c1", 2, "again 2"));
  assert.deepEqual(t.log.events.map((e) => e.seq), [1, 2]);
  assert.deepEqual(t.client.cursors.get("c1"), { seq: 2, epoch: "new" });
});

test("bad_cursor on subscribe replays the conversation from 0", async () => {
  const t = setup({ state: { cursors: { c1: { seq: 50, epoch: "e1" } } } });
  t.client.subscribe("c1");
  const ws = await connectWs(t);
  ws.receive({ type: "error", id: "sub:c1", code: "bad_cursor", message: "beyond the log" });
  assert.deepEqual(t.log.resets, ["c1"]);
  assert.equal(ws.sentOf("subscribe").at(-1).after, 0);
});

test("an inbox whose last_seq is below the cursor resets that conversation", async () => {
  const t = setup({ state: { cursors: { c1: { seq: 8, epoch: "e1" } } } });
  const ws = await connectWs(t);
  ws.receive({ type: "inbox", conversations: [{ id: "c1", last_seq: 4 }] });
  assert.deepEqual(t.log.resets, ["c1"]);
  assert.equal(t.client.lastSeq("c1"), 0);
});

test("final hello errors stop the client; a refused token is retried once with a fresh one", async () => {
  let asked = 0;
  const t = setup({ onAuthError: async () => (asked++, true) });
  let ws = await connectWs(t);
  ws.serverClose(1006);
  t.timers.advance(1000);
  await flush();
  ws = t.WebSocket.instances[1];
  ws.open();
  ws.receive({ type: "error", code: "token_expired", message: "expired" });
  ws.serverClose(4001, "unauthenticated");
  await flush();
  assert.equal(asked, 1);
  t.timers.advance(1000);
  await flush();
  ws = t.WebSocket.instances[2];
  assert.ok(ws, "reconnected after the fresh token");
  ws.open();
  ws.receive({ type: "error", code: "invalid_token", message: "forged" });
  ws.serverClose(4001, "unauthenticated");
  await flush();
  assert.equal(asked, 1, "a fresh token refused again is final: not asked again");
  assert.equal(t.log.statuses.at(-1).status, "stopped");

  const u = setup();
  const socket = await connectWs(u);
  socket.receive({ type: "error", code: "unsupported_version", message: "v1 only" });
  socket.serverClose(1002, "protocol error");
  await flush();
  assert.equal(u.log.statuses.at(-1).status, "stopped");
  u.timers.advance(60000);
  await flush();
  assert.equal(u.WebSocket.instances.length, 1, "no reconnect after a final error");
});
