/**
 * An invariant verdict is evidence only while it is fresh. Once probing stops (the monitor was
 * stopped, or its loop died), an "ok" must not stay ok for ever: past a few probe intervals
 * without a complete round the verdict is unchecked again, and the verification gate waits.
 */

import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { InvariantMonitor } from "../../src/controller/invariantMonitor.ts";
import type { ObservedInstance } from "../../src/decide/snapshot.ts";
import { StateStore } from "../../src/store/index.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { tempStateDir } from "../store/tempStateDir.ts";
import { apiFleet } from "./invariantFleet.ts";

test("an ok verdict goes stale (unchecked, not ok) when no round completes for a few intervals", async (t) => {
  // A well-behaved instance: /admin refuses anonymous requests, /policy reports its hash.
  const server = createServer((request, response) => {
    if (request.url === "/policy") {
      response.writeHead(200, { "content-type": "application/json" }).end('{"hash":"p1"}');
    } else response.writeHead(401).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const fleet = apiFleet(port, [
    "protectedPaths: [{ path: /admin }]",
    "policyHash: { path: /policy }",
    "interval: 200ms",
    "timeout: 200ms",
  ]);
  const store = StateStore.open(tempStateDir(t));
  t.after(() => store.close());
  let clock = Date.now();
  const instance: ObservedInstance = {
    name: "api-0",
    service: "api",
    slot: 0,
    release: "v1",
    runtime: "running",
    health: { state: "ready", since: 1 } as ObservedInstance["health"],
    startedAt: 1,
    lastExit: null,
  };
  const monitor = new InvariantMonitor({
    fleet,
    store,
    instances: () => [instance],
    note: () => {},
    now: () => clock,
    pollMs: 20,
  });
  t.after(() => monitor.stop());
  monitor.start();
  const fresh = await waitFor(() => (monitor.forService("api").ok ? monitor.forService("api") : null), {
    what: "the first complete round",
  });
  assert.equal(fresh.checked, true);
  // Probing stops; time goes on.
  await monitor.stop();
  clock += 1_000;
  assert.equal(monitor.forService("api").ok, true, "within a few intervals the verdict holds");
  clock += 10_000;
  const stale = monitor.forService("api");
  assert.equal(stale.ok, false, "a verdict nobody renewed is no evidence");
  assert.equal(stale.checked, false);
  assert.equal(stale.lastCheckedAt, fresh.lastCheckedAt, "when it was last checked stays known");
});
