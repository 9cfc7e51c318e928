// The browser's signals (protocol §18): offline drops the connection at once, online and a visible page retry at
// once with the backoff reset.
import assert from "node:assert/strict";
import { test } from "node:test";

import { WELCOME, connectWs, flush, setup } from "./fakes.js";

test("offline drops the connection at once; online reconnects at once", async () => {
  const t = setup();
  const ws = await connectWs(t);
  t.window.dispatchEvent(new Event("offline"));
  assert.deepEqual(ws.closedWith, { code: 4000, reason: "the browser is offline" });
  assert.equal(t.client.online, false);
  assert.equal(t.log.statuses.at(-1).status, "offline");
  assert.match(t.log.statuses.at(-1).why, /the browser is offline/);
  t.window.dispatchEvent(new Event("online"));
  await flush();
  assert.equal(t.WebSocket.instances.length, 2, "a new attempt without waiting for the backoff");
});

test("a page that becomes visible retries at once; stop() removes the listeners", async () => {
  const t = setup({ random: () => 0.999999 });
  t.client.start();
  await flush();
  t.WebSocket.instances[0].serverClose(1006);
  await flush();
  assert.equal(t.WebSocket.instances.length, 1);
  t.document.visibilityState = "hidden";
  t.document.dispatchEvent(new Event("visibilitychange"));
  await flush();
  assert.equal(t.WebSocket.instances.length, 1, "hidden: nothing");
  t.document.visibilityState = "visible";
  t.document.dispatchEvent(new Event("visibilitychange"));
  await flush();
  assert.equal(t.WebSocket.instances.length, 2);
  t.client.stop();
  t.window.dispatchEvent(new Event("online"));
  t.document.dispatchEvent(new Event("visibilitychange"));
  t.timers.advance(60000);
  await flush();
  assert.equal(t.WebSocket.instances.length, 2);
  assert.equal(t.log.statuses.at(-1).status, "stopped");
});

test("failures while the browser is offline do not count towards the switch to SSE", async () => {
  const t = setup({ transport: "auto" });
  t.client.start();
  await flush();
  t.window.dispatchEvent(new Event("offline"));
  for (let i = 0; i < 3; i++) {
    t.timers.advance(5000);
    await flush();
    t.WebSocket.instances.at(-1).serverClose(1006);
    await flush();
  }
  assert.equal(t.client.transport, "ws");
  assert.equal(t.EventSource.instances.length, 0);
});

test("SSE: when the network comes back, a stream still waiting for the browser's own retry is replaced at once", async () => {
  const t = setup({ transport: "sse", state: { sseCursor: "k5" } });
  t.client.start();
  await flush();
  const es = t.EventSource.instances[0];
  es.open();
  es.receive(WELCOME());
  es.receive({ type: "following", reset: false });
  es.fail(false); // cut: the browser would reconnect by itself, some time later
  t.window.dispatchEvent(new Event("online"));
  await flush();
  assert.equal(es.closed, true);
  assert.equal(t.EventSource.instances.length, 2);
  assert.equal(t.EventSource.instances[1].params.get("cursor"), "k5");
  // An open stream is left alone.
  t.EventSource.instances[1].open();
  t.EventSource.instances[1].receive(WELCOME());
  t.window.dispatchEvent(new Event("online"));
  await flush();
  assert.equal(t.EventSource.instances.length, 2);
});
