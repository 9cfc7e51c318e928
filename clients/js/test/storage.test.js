// Persistence owned by the client: loaded at construction, saved after changes; corrupt data and quota errors
// never stop it.
import assert from "node:assert/strict";
import { test } from "node:test";

import { memoryArea } from "../src/index.js";
import { flush, setup } from "./fakes.js";

test("corrupt JSON starts clean, warns and removes the item", () => {
  const area = memoryArea();
  area.setItem("kf.test", "{not json");
  const t = setup({ area });
  assert.equal(t.client.pending.size, 0);
  assert.equal(t.client.cursors.size, 0);
  assert.match(t.warnings.join("\n"), /not JSON/);
  assert.equal(area.getItem("kf.test"), null);
});

test("damaged parts are dropped, the rest is kept", () => {
  const area = memoryArea();
  area.setItem(
    "kf.test",
    JSON.stringify({
      v: 1,
      cursors: { good: { seq: 4, epoch: "e1" }, bad: { seq: -1 }, worse: "x" },
      pending: [{ conversation: "good", client_id: "m1", body: { text: "kept" } }, { conversation: 3 }],
      sseCursor: 42,
      opens: [{ client_id: "o1", entry: "web" }, { client_id: "o2", fields: { age: 3 } }],
    }),
  );
  const t = setup({ area });
  assert.deepEqual(Object.fromEntries(t.client.cursors), { good: { seq: 4, epoch: "e1" } });
  assert.deepEqual([...t.client.pending.keys()], ["m1"]);
  assert.equal(t.client.sseCursor, null);
  assert.deepEqual([...t.client.opens.keys()], ["o1"]);
  assert.match(t.warnings.join("\n"), /damaged parts/);
});

test("another format version, or not an object, starts clean", () => {
  for (const text of ['{"v":99,"pending":[]}', "[1,2]", "null"]) {
    const area = memoryArea();
    area.setItem("kf.test", text);
    const t = setup({ area });
    assert.equal(t.client.pending.size, 0, text);
  }
});

test("a full quota is warned about once; the client keeps running from memory", async () => {
  const area = memoryArea();
  let writes = 0;
  area.setItem = () => {
    writes++;
    throw new Error("QuotaExceededError");
  };
  const t = setup({ area });
  t.client.send("c1", "a");
  await flush();
  t.client.send("c1", "b");
  await flush();
  assert.equal(writes, 2);
  assert.equal(t.warnings.filter((w) => w.includes("cannot save")).length, 1);
  assert.equal(t.client.pending.size, 2);
});

test("a storage that throws on read starts clean", () => {
  const area = memoryArea();
  area.getItem = () => {
    throw new Error("SecurityError");
  };
  const t = setup({ area });
  assert.equal(t.client.pending.size, 0);
  assert.match(t.warnings.join("\n"), /cannot read/);
});

test("changes are written once per task, with the snapshot; the state option wins over storage", async () => {
  const area = memoryArea();
  let writes = 0;
  const setItem = area.setItem;
  area.setItem = (key, value) => {
    writes++;
    setItem(key, value);
  };
  const t = setup({ area });
  for (let i = 0; i < 10; i++) t.client.send("c1", `m${i}`);
  await flush();
  assert.equal(writes, 1);
  const saved = JSON.parse(area.getItem("kf.test"));
  assert.equal(saved.v, 1);
  assert.deepEqual(saved.pending, t.client.snapshot().pending);

  const explicit = setup({ area, state: { pending: [] } });
  assert.equal(explicit.client.pending.size, 0);
});
