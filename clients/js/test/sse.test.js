// The SSE transport (protocol §21): one stream following every conversation, its cursor, events held until a
// conversation is claimed, heartbeats, refused streams.
import assert from "node:assert/strict";
import { test } from "node:test";

import { memoryArea } from "../src/index.js";
import { WELCOME, fakeFetch, flush, message, setup } from "./fakes.js";

async function following(t, { epoch = "e1", reset = false } = {}) {
  t.client.start();
  await flush();
  const es = t.EventSource.instances.at(-1);
  es.open();
  es.receive(WELCOME(epoch, { ping_interval_ms: 1000 }));
  es.receive({ type: "inbox", conversations: [] });
  es.receive({ type: "following", reset });
  return es;
}

test("events of conversations not claimed yet are held, then delivered once on subscribe", async () => {
  const t = setup({ transport: "sse" });
  const es = await following(t);
  es.receive(message("c1", 1, "early"), "k1");
  es.receive(message("c1", 1, "early"), "k1");
  assert.deepEqual(t.log.events, []);
  t.client.subscribe("c1");
  es.receive(message("c1", 2, "live"), "k2");
  assert.deepEqual(t.log.events.map((e) => e.seq), [1, 2]);
  assert.equal(t.client.sseCursor, "k2");
});

test("a reload resumes the stream with ?cursor= from storage; following.reset drops everything", async () => {
  const area = memoryArea();
  const t = setup({ transport: "sse", area });
  t.client.subscribe("c1");
  const es = await following(t);
  es.receive(message("c1", 1, "a"), "k1");
  await flush();
  t.client.stop();
  const again = setup({ transport: "sse", area });
  again.client.subscribe("c1");
  const es2 = await following(again, { epoch: "e2", reset: true });
  assert.equal(es2.params.get("cursor"), "k1");
  assert.deepEqual(again.log.resets, ["c1"]);
  es2.receive(message("c1", 1, "a again"), "x1");
  assert.deepEqual(again.log.events.map((e) => e.data.body.text), ["a again"]);
});

test("a stream silent for a ping interval + 10 s is reopened; heartbeats keep it alive", async () => {
  const t = setup({ transport: "sse" });
  const es = await following(t);
  t.timers.advance(10999);
  es.heartbeat();
  t.timers.advance(10999);
  assert.equal(es.closed, false);
  t.timers.advance(1);
  assert.equal(es.closed, true);
  t.timers.advance(5000);
  await flush();
  assert.equal(t.EventSource.instances.length, 2);
});

test("a refused stream (401) asks why, gets a fresh token once and reopens from the cursor", async () => {
  const fetch = fakeFetch((call) => (call.path === "/sse/ping" ? { status: 401, body: { type: "error", code: "token_expired", message: "expired" } } : { status: 204 }));
  let refreshed = 0;
  const t = setup({ transport: "sse", fetch, onAuthError: async (code) => (assert.equal(code, "token_expired"), refreshed++, true), state: { sseCursor: "k7" } });
  const es = await following(t);
  es.fail(true);
  await flush();
  assert.equal(refreshed, 1);
  assert.equal(t.EventSource.instances.length, 2);
  assert.equal(t.EventSource.instances[1].params.get("cursor"), "k7");
  t.EventSource.instances[1].fail(true);
  await flush();
  assert.equal(refreshed, 1, "refused again: final");
  assert.equal(t.log.statuses.at(-1).status, "stopped");
});

test("a cut stream is left to the browser to reconnect; sends wait for the next following", async () => {
  const fetch = fakeFetch((call) => (call.path === "/sse/send" ? { status: 200, body: { type: "ack", id: call.body.id, conversation: "c1", client_id: call.body.client_id, seq: 1, duplicate: false } } : { status: 204 }));
  const t = setup({ transport: "sse", fetch });
  const es = await following(t);
  es.fail(false);
  assert.equal(t.log.statuses.at(-1).status, "offline");
  const id = t.client.send("c1", "while cut");
  await flush();
  assert.equal(fetch.calls.length, 0);
  es.open();
  es.receive(WELCOME());
  es.receive({ type: "following", reset: false });
  await flush();
  assert.deepEqual(fetch.calls.map((c) => c.body.client_id), [id]);
  assert.equal(t.EventSource.instances.length, 1, "the same EventSource");
});
