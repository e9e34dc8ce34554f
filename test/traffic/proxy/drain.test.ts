import assert from "node:assert/strict";
import { connect } from "node:net";
import { test } from "node:test";
import { waitFor } from "../../helpers/waitFor.ts";
import { endpointOf, gate, send, sendMany, startProxy, startUpstream, traffic } from "./kit.ts";

interface Row {
  instance: string;
  draining: boolean;
  inFlight: number;
}

test("a removed instance finishes its in-flight request while new requests go elsewhere", async (t) => {
  const release = gate();
  t.after(release.open);
  const slow = await startUpstream(t, "api-slow", async (_req, res) => {
    await release.wait;
    res.end("slow but done");
  });
  const fast = await startUpstream(t, "api-fast");
  const { client, proxy } = await startProxy(t, {
    // No hedge: the slow request must be answered by the removed instance itself.
    traffic: traffic({ hedging: { enabled: false } }),
    endpoints: [endpointOf(slow)],
  });
  const rows = () => proxy.state().endpoints as Row[];

  const inFlight = send(client, { path: "/slow" });
  await waitFor(() => slow.hits === 1, { what: "request at the slow instance" });
  proxy.setEndpoints([endpointOf(fast)]);

  assert.deepEqual(
    rows().map((r) => [r.instance, r.draining, r.inFlight]),
    [
      ["api-fast", false, 0],
      ["api-slow", true, 1],
    ],
  );
  assert.equal(proxy.inFlight("api-slow"), 1, "what a stop waits for");
  const others = await sendMany(client, 20, 4);
  assert.ok(others.every((r) => r.status === 200 && r.headers["x-homeostat-instance"] === "api-fast"));
  assert.equal(slow.hits, 1, "no new request to the removed instance");

  release.open();
  const finished = await inFlight;
  assert.equal(finished.status, 200);
  assert.equal(finished.body, "slow but done");
  assert.equal(finished.headers["x-homeostat-instance"], "api-slow");
  await waitFor(() => rows().every((r) => !r.draining), { what: "the drained pool closed" });
  assert.equal(proxy.inFlight("api-slow"), 0);
});

test("at the drain timeout what is left is cut (and an idempotent request is retried elsewhere)", async (t) => {
  const never = gate();
  t.after(never.open);
  const stuck = await startUpstream(t, "api-stuck", async (_req, res) => {
    await never.wait;
    res.end();
  });
  const fast = await startUpstream(t, "api-fast");
  const drainTimeoutMs = 300;
  const { client, proxy } = await startProxy(t, {
    // No hedge: the request must still be at the stuck instance when the drain deadline cuts it.
    traffic: traffic({ drainTimeoutMs, retries: { perTryTimeoutMs: 30_000 }, hedging: { enabled: false } }),
    endpoints: [endpointOf(stuck)],
  });
  const pending = send(client);
  await waitFor(() => stuck.hits === 1, { what: "request at the stuck instance" });
  const removedAt = performance.now();
  proxy.setEndpoints([endpointOf(fast)]);
  const reply = await pending;
  assert.ok(performance.now() - removedAt >= drainTimeoutMs - 20);
  assert.equal(reply.status, 200);
  assert.equal(reply.headers["x-homeostat-instance"], "api-fast");
  assert.equal(reply.headers["x-homeostat-attempts"], "2");
});

test("close() stops accepting, lets in-flight requests finish, then resolves", async (t) => {
  const release = gate();
  t.after(release.open);
  const slow = await startUpstream(t, "api-0", async (_req, res) => {
    await release.wait;
    res.end("done");
  });
  const { client, proxy, port } = await startProxy(t, { endpoints: [endpointOf(slow)] });
  const inFlight = send(client);
  await waitFor(() => slow.hits === 1, { what: "request in flight" });

  let closed = false;
  const closing = proxy.close().then(() => {
    closed = true;
  });
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = connect(port, "127.0.0.1");
        socket.once("connect", () => {
          socket.destroy();
          resolve(false);
        });
        socket.once("error", () => resolve(true));
      }),
    { what: "new connections refused" },
  );
  assert.equal(closed, false, "close waits for the request in flight");
  release.open();
  const reply = await inFlight;
  assert.equal(reply.status, 200);
  assert.equal(reply.body, "done");
  await closing;
  assert.equal(closed, true);
});
