import assert from "node:assert/strict";
import { test } from "node:test";
import type { EndpointPool } from "../../../src/traffic/proxy/endpointPool.ts";
import { EndpointTable } from "../../../src/traffic/proxy/endpointTable.ts";
import { endpointOf, traffic } from "./kit.ts";

/** Feed saturated, steady-latency windows until the pool's adaptive limit reaches `atLeast`. */
function growLimit(pool: EndpointPool, atLeast: number): void {
  const adaptive = pool.adaptive!;
  for (let i = 0; i < 100_000 && adaptive.limit < atLeast; i++) adaptive.onSample(10, adaptive.limit, false);
  assert.ok(adaptive.limit >= atLeast, `limit ${adaptive.limit}`);
}

test("a joining endpoint's adaptive limit starts at its peers' mean, not at 20", async (t) => {
  const spec = traffic({ limits: { adaptive: true, maxConcurrentPerInstance: 100 } });
  const table = new EndpointTable(() => {});
  t.after(() => table.cutAll());
  const a = endpointOf({ name: "api-0", port: 1 });
  const b = endpointOf({ name: "api-1", port: 2 });
  table.update([a], spec);
  assert.equal(table.get("api-0")!.adaptive!.limit, 20, "nothing to learn from: the default");
  table.update([a, b], spec);
  assert.equal(table.get("api-1")!.adaptive!.limit, 20);

  growLimit(table.get("api-0")!, 40);
  growLimit(table.get("api-1")!, 50);
  const both = [table.get("api-0")!, table.get("api-1")!].map((pool) => pool.adaptive!.limit);
  table.update([a, b, endpointOf({ name: "api-3", port: 5 })], spec);
  assert.equal(table.get("api-3")!.adaptive!.limit, Math.round((both[0]! + both[1]!) / 2), "the mean of two");

  // api-0 dies and comes back on a new port (a replacement), and api-2 joins.
  const replacement = endpointOf({ name: "api-0", port: 3 });
  const c = endpointOf({ name: "api-2", port: 4 });
  table.update([b], spec);
  table.update([replacement, b, c], spec);
  assert.equal(table.get("api-3"), undefined);
  const peers = table.get("api-1")!.adaptive!.limit;
  assert.equal(table.get("api-0")!.adaptive!.limit, peers, "the replacement starts at the survivor's limit");
  assert.equal(table.get("api-2")!.adaptive!.limit, peers, "so does a new instance");
  assert.equal(table.capacity(), 3 * peers);
});

test("a joining endpoint's start never exceeds the hard per-instance limit", async (t) => {
  const table = new EndpointTable(() => {});
  t.after(() => table.cutAll());
  const a = endpointOf({ name: "api-0", port: 1 });
  table.update([a], traffic({ limits: { adaptive: true, maxConcurrentPerInstance: 100 } }));
  growLimit(table.get("api-0")!, 60);
  // Lowering the hard limit gives every endpoint a fresh pool; the new start is capped at 30.
  table.update([a], traffic({ limits: { adaptive: true, maxConcurrentPerInstance: 30 } }));
  assert.equal(table.get("api-0")!.adaptive!.limit, 30);
});
