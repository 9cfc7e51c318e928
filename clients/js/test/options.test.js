// Options: cross-origin URLs, listeners with on(), defaults that need no DOM.
import assert from "node:assert/strict";
import { test } from "node:test";

import { KfClient, memoryArea } from "../src/index.js";
import { connectWs, flush, setup } from "./fakes.js";

test("an absolute WebSocket URL gives the SSE base of the same origin unless one is given", () => {
  const make = (options) => new KfClient({ getToken: () => "t", storage: { key: "k", area: memoryArea() }, ...options });
  assert.equal(make({ url: "wss://chat.example.com/kf/ws" }).sseBase, "https://chat.example.com/sse");
  assert.equal(make({ url: "ws://127.0.0.1:8080/ws" }).sseBase, "http://127.0.0.1:8080/sse");
  assert.equal(make({ url: "wss://a.example/ws", sseBase: "https://b.example/kf/sse/" }).sseBase, "https://b.example/kf/sse");
  assert.throws(() => make({}), /absolute `url`/, "no page location in Node: the URL must be given");
  assert.equal(make({ transport: "sse", sseBase: "https://b.example/sse" }).transport, "sse", "SSE alone needs no WebSocket URL");
});

test("the SSE stream goes to the absolute sseBase, with the token in the query", async () => {
  const t = setup({ transport: "sse", sseBase: "https://other.example/kf/sse" });
  t.client.start();
  await flush();
  const es = t.EventSource.instances[0];
  assert.equal(new URL(es.url).origin + new URL(es.url).pathname, "https://other.example/kf/sse/events");
  assert.equal(es.params.get("token"), "tok");
  assert.equal(es.params.get("cursor"), null);
});

test("on() listeners get the same events as the callbacks and can be removed", async () => {
  const t = setup();
  const seen = [];
  const off = t.client.on("status", (status) => seen.push(status));
  t.client.on("frame", (frame) => seen.push(frame.type));
  await connectWs(t);
  assert.deepEqual(seen, ["connecting", "online", "welcome"]);
  off();
  t.client.stop();
  assert.deepEqual(seen, ["connecting", "online", "welcome"]);
  assert.equal(t.log.statuses.at(-1).status, "stopped");
});
