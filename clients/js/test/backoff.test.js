// Reconnect backoff (protocol §18) and liveness (§14), on a fake clock with an injected random.
import assert from "node:assert/strict";
import { test } from "node:test";

import { crowdedDelay, reconnectDelay, sendRetryDelay } from "../src/index.js";
import { WELCOME, connectWs, flush, setup } from "./fakes.js";

test("reconnect delays: full jitter under a ceiling doubling from 0.5 s to 5 s, never below 50 ms", () => {
  const top = () => 0.999999;
  assert.deepEqual([0, 1, 2, 3, 4, 5, 16].map((a) => reconnectDelay(a, top)), [500, 1000, 2000, 4000, 5000, 5000, 5000]);
  assert.deepEqual([0, 3, 9].map((a) => reconnectDelay(a, () => 0)), [50, 50, 50]);
  assert.equal(reconnectDelay(2, () => 0.25), 500);
  for (let i = 0; i < 200; i++) {
    const r = Math.random();
    const d = reconnectDelay(3, () => r);
    assert.ok(d >= 50 && d <= 4000, `${d}`);
  }
  assert.equal(crowdedDelay(() => 0), 10000);
  assert.equal(crowdedDelay(() => 0.999999), 30000);
  assert.deepEqual([1, 2, 3, 6, 7, 20].map((n) => sendRetryDelay(n, () => 0.999999)), [1000, 2000, 4000, 30000, 30000, 30000]);
  assert.equal(sendRetryDelay(1, () => 0), 500);
});

test("failed attempts grow the wait; a welcome resets it", async () => {
  const t = setup({ random: () => 0.999999 });
  t.client.start();
  const waits = [];
  for (let i = 0; i < 6; i++) {
    await flush();
    t.WebSocket.instances.at(-1).serverClose(1006);
    await flush();
    waits.push(t.log.statuses.at(-1).retryInMs);
    t.timers.advance(t.log.statuses.at(-1).retryInMs);
  }
  assert.deepEqual(waits, [500, 1000, 2000, 4000, 5000, 5000]);
  await flush();
  const ws = t.WebSocket.instances.at(-1);
  ws.open();
  ws.receive(WELCOME());
  ws.serverClose(1001, "server shutdown");
  await flush();
  assert.equal(t.log.statuses.at(-1).retryInMs, 500, "after a session opened, at most 0.5 s");
});

test("too_many_connections waits 10–30 s", async () => {
  const t = setup({ random: () => 0 });
  t.client.start();
  await flush();
  const ws = t.WebSocket.instances[0];
  ws.open();
  ws.receive({ type: "error", code: "too_many_connections", message: "16 already" });
  ws.serverClose(4029, "too many connections");
  await flush();
  assert.equal(t.log.statuses.at(-1).retryInMs, 10000);
  t.timers.advance(9999);
  await flush();
  assert.equal(t.WebSocket.instances.length, 1);
  t.timers.advance(1);
  await flush();
  assert.equal(t.WebSocket.instances.length, 2);
});

test("a server ping is answered with pong; silence makes the client ping, then drop a dead connection", async () => {
  const t = setup();
  const ws = await connectWs(t, { limits: { ping_interval_ms: 1000 } });
  ws.receive({ type: "ping" });
  assert.deepEqual(ws.sentOf("pong"), [{ type: "pong" }]);
  t.timers.advance(999);
  assert.equal(ws.sentOf("ping").length, 0);
  t.timers.advance(1);
  assert.equal(ws.sentOf("ping").length, 1, "a ping after a ping interval of silence");
  t.timers.advance(9999);
  assert.equal(ws.closedWith, null, "alive until 10 s after the ping");
  ws.receive({ type: "pong" }); // any frame proves it alive and restarts the clock
  t.timers.advance(10999);
  assert.equal(ws.sentOf("ping").length, 2);
  assert.equal(ws.closedWith, null);
  t.timers.advance(1);
  assert.deepEqual(ws.closedWith, { code: 4000, reason: "client reconnects" }, "dead: closed with 4000");
  assert.equal(t.client.online, false);
  assert.equal(t.log.statuses.at(-1).status, "offline");
  t.timers.advance(500);
  await flush();
  assert.equal(t.WebSocket.instances.length, 2, "and reconnected");
  assert.match(t.warnings.join("\n"), /nothing heard/);
});
