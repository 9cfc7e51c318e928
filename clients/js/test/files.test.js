// Attachments: upload and links over fetch (protocol §23), messages that carry them, kept across reloads.
import assert from "node:assert/strict";
import { test } from "node:test";

import { KfClient, KfRequestError, defaultFilesBase, memoryArea } from "../src/index.js";
import { WELCOME, connectWs, fakeFetch, flush, setup } from "./fakes.js";

const PHOTO = { id: "a1", name: "dent.png", content_type: "image/png", size: 4, width: 2, height: 1, thumbnail: true };

test("the files base follows the WebSocket URL, else the page's server", () => {
  assert.equal(defaultFilesBase("wss://kf.example/ws"), "https://kf.example/files");
  assert.equal(defaultFilesBase("ws://127.0.0.1:8080/ws"), "http://127.0.0.1:8080/files");
  assert.equal(defaultFilesBase(undefined), "/files");
});

test("upload posts the bytes with the token and resolves with the recorded attachment", async () => {
  // The body is bytes, not JSON: a fetch of its own records the call.
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init, headers: init.headers });
    const text = JSON.stringify({ attachment: PHOTO });
    return { status: 201, ok: true, text: async () => text };
  };
  fetch.calls = calls;
  const t = setup({ fetch, filesBase: "http://kf.test/files" });
  const bytes = new Uint8Array([137, 80, 78, 71]);
  const attachment = await t.client.upload("c1", bytes, "dent.png");
  assert.deepEqual(attachment, PHOTO);
  const call = fetch.calls[0];
  assert.equal(call.url, "http://kf.test/files/upload?conversation=c1&name=dent.png");
  assert.equal(call.init.method, "POST");
  assert.equal(call.headers.Authorization, "Bearer tok");
  assert.equal(call.init.body, bytes, "the bytes themselves, not JSON");
});

test("a refused upload rejects with the server's code and message", async () => {
  const refusals = [
    [413, "too_large", "the file is larger than 10485760 bytes"],
    [415, "unsupported_type", "files of type application/x-msdownload are not accepted"],
    [413, "conversation_full", "the conversation's files would exceed 52428800 bytes"],
  ];
  for (const [status, code, message] of refusals) {
    const fetch = fakeFetch(() => ({ status, body: { type: "error", code, message } }));
    const t = setup({ fetch, filesBase: "http://kf.test/files" });
    await assert.rejects(t.client.upload("c1", new Uint8Array([1]), "x.exe"), (error) => {
      return error instanceof KfRequestError && error.code === code && error.message.includes(message);
    });
  }
  const down = setup({ fetch: fakeFetch(() => ({ throws: true })), filesBase: "http://kf.test/files" });
  await assert.rejects(down.client.upload("c1", new Uint8Array([1]), "a.png"), { code: "unavailable" });
});

test("fileLink makes the server's paths absolute", async () => {
  const fetch = fakeFetch(() => ({
    status: 200,
    body: { attachment: PHOTO, url: "/files/blob/a1?expires=9&sig=s", thumbnail_url: "/files/blob/a1.thumb?expires=9&sig=t", expires_at: 9 },
  }));
  const t = setup({ fetch, filesBase: "http://kf.test/files" });
  const link = await t.client.fileLink("a1");
  assert.equal(fetch.calls[0].url, "http://kf.test/files/link/a1");
  assert.equal(link.url, "http://kf.test/files/blob/a1?expires=9&sig=s");
  assert.equal(link.thumbnail_url, "http://kf.test/files/blob/a1.thumb?expires=9&sig=t");
  const missing = setup({ fetch: fakeFetch(() => ({ status: 404, body: { type: "error", code: "not_found", message: "attachment a1 not found" } })) });
  await assert.rejects(missing.client.fileLink("a1"), { code: "not_found" });
});

test("a message with attachments carries their ids, and keeps them across a reload until acked", async () => {
  const area = memoryArea();
  const t = setup({ area });
  const ws = await connectWs(t);
  t.client.subscribe("c1");
  ws.receive({ type: "subscribed", id: ws.sentOf("subscribe")[0].id, conversation: "c1", last_seq: 0 });
  await flush();
  const clientId = t.client.sendMessage("c1", "", ["a1", "a2"]);
  const sent = ws.sentOf("send")[0];
  assert.deepEqual(sent.attachments, ["a1", "a2"]);
  assert.deepEqual(sent.body, { text: "" });
  assert.equal(sent.client_id, clientId);
  t.client.sendMessage("c1", "hi");
  await flush();
  // A new page (same storage): the pending send goes out again, attachments and all.
  t.client.stop("reload");
  const again = setup({ area });
  assert.deepEqual(again.client.pendingFor("c1")[0].attachments, ["a1", "a2"]);
  assert.equal(again.client.pendingFor("c1")[1].attachments, undefined, "a text message has none");
  void KfClient;
  void WELCOME;
});
