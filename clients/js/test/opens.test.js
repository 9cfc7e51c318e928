// client.open(): an `open` kept until answered, resent with its client id after reconnects and reloads (§15, §17).
import assert from "node:assert/strict";
import { test } from "node:test";

import { memoryArea } from "../src/index.js";
import { WELCOME, connectWs, fakeFetch, flush, setup } from "./fakes.js";

test("an open made offline goes out after welcome, and its opened resolves it", async () => {
  const t = setup();
  const answer = t.client.open({ entry: "web", fields: { name: "Ada" } });
  const ws = await connectWs(t);
  const [frame] = ws.sentOf("open");
  assert.equal(frame.id, `open:${frame.client_id}`);
  assert.deepEqual({ entry: frame.entry, fields: frame.fields }, { entry: "web", fields: { name: "Ada" } });
  ws.receive({ type: "opened", id: frame.id, created: true, conversation: { id: "c1" } });
  assert.equal((await answer).conversation.id, "c1");
  assert.equal(t.client.opens.size, 0);
  assert.equal(t.log.frames.at(-1).type, "opened", "onFrame sees it too");
});

test("an open unanswered before a reconnect, or a reload, goes again with the same client id", async () => {
  const area = memoryArea();
  const t = setup({ area });
  let ws = await connectWs(t);
  const answer = t.client.open({ client_id: "o-1" });
  assert.equal(ws.sentOf("open").length, 1);
  ws.serverClose(1006);
  t.timers.advance(5000);
  await flush();
  ws = t.WebSocket.instances[1];
  ws.open();
  ws.receive(WELCOME());
  assert.deepEqual(ws.sentOf("open").map((f) => f.client_id), ["o-1"]);
  await flush();
  t.client.stop();
  await assert.rejects(answer, { code: "stopped" });

  const reloaded = setup({ area });
  assert.deepEqual([...reloaded.client.opens.keys()], ["o-1"]);
  const again = await connectWs(reloaded);
  assert.deepEqual(again.sentOf("open").map((f) => f.client_id), ["o-1"]);
  again.receive({ type: "opened", id: "open:o-1", created: false, conversation: { id: "c1" } });
  await flush();
  assert.equal(JSON.parse(area.getItem("kf.test")).opens, undefined, "answered: no longer saved");
});

test("a refused open is retried unless the refusal is final", async () => {
  const t = setup();
  const ws = await connectWs(t);
  const answer = t.client.open({ client_id: "o-1" });
  ws.receive({ type: "error", id: "open:o-1", code: "rate_limited", message: "slow down" });
  assert.equal(ws.sentOf("open").length, 1);
  t.timers.advance(1000);
  assert.equal(ws.sentOf("open").length, 2);
  ws.receive({ type: "error", id: "open:o-1", code: "not_found", message: "no such entry point" });
  await assert.rejects(answer, { code: "not_found" });
  assert.equal(t.client.opens.size, 0);
  assert.equal(t.log.frames.at(-1).code, "not_found");
});

test("over SSE an open is a POST once the stream is up", async () => {
  const fetch = fakeFetch((call) => (call.path === "/sse/open" ? { status: 200, body: { type: "opened", id: call.body.id, created: true, conversation: { id: "c1" } } } : { status: 204 }));
  const t = setup({ transport: "sse", fetch });
  const answer = t.client.open({ client_id: "o-2", entry: "web" });
  t.client.start();
  await flush();
  assert.equal(fetch.calls.length, 0);
  const es = t.EventSource.instances[0];
  es.open();
  es.receive(WELCOME());
  assert.equal((await answer).conversation.id, "c1");
  assert.deepEqual(fetch.calls.map((c) => c.body), [{ client_id: "o-2", entry: "web", id: "open:o-2" }]);
});
