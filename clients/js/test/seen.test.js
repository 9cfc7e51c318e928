// Seen marks (protocol §6.6): kept from `inbox`, `subscribed` and live `read` frames, highest per participant.
import assert from "node:assert/strict";
import { test } from "node:test";

import { connectWs, setup } from "./fakes.js";

const visitor = { role: "visitor", id: "v1" };
const alice = { role: "agent", id: "alice" };

test("seen marks come with the inbox and subscribed after a reconnect, and from live read frames", async () => {
  const t = setup();
  /** @type {[string, object, number][]} */
  const moved = [];
  t.client.on("seen", (conversation, from, seq) => moved.push([conversation, from, seq]));
  t.client.subscribe("c1");
  const ws = await connectWs(t);
  ws.receive({ type: "inbox", conversations: [], seen: [{ conversation: "c1", from: visitor, seq: 4 }] });
  ws.receive({
    type: "subscribed", id: "sub:c1", conversation: "c1", after: 0, reset: false, last_seq: 0,
    seen: [{ conversation: "c1", from: visitor, seq: 3 }, { conversation: "c1", from: alice, seq: 2 }],
  });
  assert.deepEqual(t.client.seen("c1"), [{ from: visitor, seq: 4 }, { from: alice, seq: 2 }], "never lowered");
  ws.receive({ type: "read", conversation: "c1", from: alice, seq: 5 });
  ws.receive({ type: "read", conversation: "c1", from: alice, seq: 1 });
  assert.deepEqual(t.client.seen("c1"), [{ from: visitor, seq: 4 }, { from: alice, seq: 5 }]);
  assert.deepEqual(moved, [["c1", visitor, 4], ["c1", alice, 2], ["c1", alice, 5]], "one `seen` per mark that moved");
  assert.deepEqual(t.client.seen("c2"), []);
  assert.ok(t.log.frames.some((f) => f.type === "read"), "read frames still reach onFrame");
});
