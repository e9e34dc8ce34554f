/**
 * Snapshot application: a field a snapshot leaves out (a controller that has not decided it yet)
 * keeps what is served, null clears it, and the persisted form says what is really served.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import type { ServiceSnapshot, Snapshot } from "../../src/dataplane/feedProtocol.ts";
import { ServingSet } from "../../src/dataplane/servingSet.ts";
import { freePort } from "../helpers/e2e.ts";
import { traffic } from "../traffic/proxy/kit.ts";

function snapshot(version: number, port: number, fields: Partial<ServiceSnapshot>): Snapshot {
  return {
    version,
    issuedAt: Date.now(),
    fleet: "t",
    controller: { pid: 1, startedAt: 0 },
    services: [
      {
        name: "api",
        port,
        traffic: traffic() as unknown as Record<string, unknown>,
        endpoints: [],
        ...fields,
      },
    ],
    faults: [],
  };
}

test("left out keeps what is served, null clears it, and the effective snapshot says what is served", async (t) => {
  const serving = new ServingSet({ onEvent: () => {} });
  t.after(() => serving.close());
  const port = await freePort();
  await serving.apply(
    snapshot(1, port, {
      weights: { v1: 90, v2: 10 },
      shedding: { sheddable: 0.5, default: 0 },
      zoneShares: { "zone-a": 0 },
    }),
  );
  const adopted = snapshot(2, port, { endpoints: null });
  await serving.apply(adopted);
  const kept = serving.state().api!;
  assert.deepEqual(kept.weights, { v1: 90, v2: 10 }, "weights kept");
  assert.deepEqual(kept.shedding, { sheddable: 0.5, default: 0 }, "shedding kept");
  const effective = serving.effective(adopted).services[0]!;
  assert.deepEqual(effective.zoneShares, { "zone-a": 0 }, "the persisted snapshot keeps the zone shift");
  assert.deepEqual(effective.weights, { v1: 90, v2: 10 });

  await serving.apply(snapshot(3, port, { weights: null, shedding: null, zoneShares: null }));
  const cleared = serving.state().api!;
  assert.equal(cleared.weights, null);
  assert.equal(cleared.shedding, null);
});
