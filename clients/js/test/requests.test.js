// client.request(): replies matched by id, errors as rejections, local failures (offline, disconnected, timeout).
import assert from "node:assert/strict";
import { test } from "node:test";

import { KfRequestError } from "../src/index.js";
import { WELCOME, connectWs, fakeFetch, flush, setup } from "./fakes.js";

test("a reply resolves the request with the same id; an error rejects it with its code", async () => {
  const t = setup();
  const ws = await connectWs(t);
  const opened = t.client.request({ type: "open", client_id: "o1" });
  const sent = ws.sentOf("open")[0];
  assert.match(sent.id, /^req:/, "an id is made up");
  const closing = t.client.request({ type: "close", id: "x", conversation: "c1" });
  const again = t.client.request({ type: "close", id: "x", conversation: "c2" });
  ws.receive({ type: "opened", id: sent.id, created: true, conversation: { id: "c9" } });
  ws.receive({ type: "closed", id: "x", conversation: "c1", seq: 4 });
  ws.receive({ type: "error", id: "x", code: "not_found", message: "no such conversation" });
  const reply = await opened;
  assert.equal(reply.type, "opened");
  assert.equal((await closing).seq, 4, "the same id: first come, first served");
  await assert.rejects(again, (error) => error instanceof KfRequestError && error.code === "not_found" && error.frame.type === "error");
  assert.deepEqual(t.log.frames.map((f) => f.type).slice(-3), ["opened", "closed", "error"], "replies reach onFrame as well");
});

test("offline, a dropped connection and a timeout reject", async () => {
  const t = setup();
  await assert.rejects(t.client.request({ type: "queue" }), { code: "offline" });
  let ws = await connectWs(t);
  const lost = t.client.request({ type: "queue" });
  ws.serverClose(1006);
  await assert.rejects(lost, { code: "disconnected" });
  t.timers.advance(5000);
  await flush();
  ws = t.WebSocket.instances[1];
  ws.open();
  ws.receive(WELCOME());
  const slow = t.client.request({ type: "queue" }, { timeoutMs: 100 });
  t.timers.advance(100);
  await assert.rejects(slow, { code: "timeout" });
  assert.equal(await t.client.request({ type: "typing", conversation: "c1", active: true }), null, "no reply expected");
  assert.equal(t.client.sendFrame({ type: "read", conversation: "c1", seq: 1 }), true);
  t.client.stop();
  assert.equal(t.client.sendFrame({ type: "read", conversation: "c1", seq: 1 }), false);
});

test("over SSE a request is a POST; its reply or error settles it", async () => {
  const fetch = fakeFetch((call) => {
    if (call.path === "/sse/open") return { status: 200, body: { type: "opened", id: call.body.id, created: true, conversation: { id: "c1" } } };
    if (call.path === "/sse/claim") return { status: 409, body: { type: "error", code: "invalid_state", message: "someone was quicker" } };
    if (call.path === "/sse/queue") return { throws: true };
    return { status: 204 };
  });
  const t = setup({ transport: "sse", fetch });
  t.client.start();
  await flush();
  const es = t.EventSource.instances[0];
  es.open();
  es.receive(WELCOME());
  const opened = await t.client.request({ type: "open", client_id: "o1" });
  assert.equal(opened.type, "opened");
  const call = fetch.calls[0];
  assert.equal(call.url, "http://kf.test/sse/open");
  assert.deepEqual(Object.keys(call.body).sort(), ["client_id", "id"], "the type is the path, not the body");
  await assert.rejects(t.client.request({ type: "claim", conversation: "c2" }), { code: "invalid_state" });
  await assert.rejects(t.client.request({ type: "queue" }), { code: "unavailable" });
  assert.equal(await t.client.request({ type: "read", conversation: "c1", seq: 1 }), null);
});
