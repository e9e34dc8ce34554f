/**
 * The invariant monitor wakes the controller only while there is something to watch: a fleet with
 * no invariants costs it no timer (issue 15: it polled five times a second for nothing), and
 * a spec applied later that declares invariants starts probing them at once.
 */

import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { InvariantMonitor } from "../../src/controller/invariantMonitor.ts";
import type { FleetSpec } from "../../src/spec/model.ts";
import { StateStore } from "../../src/store/index.ts";
import { running } from "../helpers/snapshotFixture.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { tempStateDir } from "../store/tempStateDir.ts";
import { apiFleet } from "./invariantFleet.ts";

function fleet(port: number, invariants: boolean): FleetSpec {
  return apiFleet(
    port,
    invariants ? ["protectedPaths: [{ path: /admin }]", "interval: 200ms", "timeout: 200ms"] : null,
  );
}

test("no invariants, no polling; a spec that brings some starts it, one that drops them stops it", async (t) => {
  let requests = 0;
  const server = createServer((_request, response) => {
    requests++;
    response.writeHead(401).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const store = StateStore.open(tempStateDir(t));
  t.after(() => store.close());
  const instance = running("api", 0);
  let looks = 0;
  const monitor = new InvariantMonitor({
    fleet: fleet(port, false),
    store,
    instances: () => {
      looks++;
      return [instance];
    },
    note: () => {},
    pollMs: 10,
  });
  t.after(() => monitor.stop());

  monitor.start();
  assert.equal(monitor.polling, false, "nothing declared: no timer after the first look");
  assert.equal(looks, 1);
  assert.equal(monitor.forService("api").ok, true, "a service with no invariants is ok");

  monitor.setFleet(fleet(port, true));
  assert.equal(monitor.polling, true, "invariants declared: polling again");
  const verdict = await waitFor(
    () => (monitor.forService("api").checked ? monitor.forService("api") : null),
    {
      what: "a complete round on the newly declared invariant",
    },
  );
  assert.equal(verdict.ok, true);
  assert.ok(requests >= 1, "the protected path was requested");
  await waitFor(() => looks >= 3, { what: "the monitor to keep polling" });

  monitor.setFleet(fleet(port, false));
  await waitFor(() => !monitor.polling, { what: "polling to stop once no service declares invariants" });
  const after = looks;
  monitor.setFleet(fleet(port, false));
  assert.equal(monitor.polling, false, "a spec without invariants does not restart it");
  assert.equal(looks, after);
});

test("a stopped monitor does not start polling on a new spec", async (t) => {
  const store = StateStore.open(tempStateDir(t));
  t.after(() => store.close());
  const monitor = new InvariantMonitor({
    fleet: fleet(40_000, false),
    store,
    instances: () => [],
    note: () => {},
    pollMs: 10,
  });
  monitor.start();
  await monitor.stop();
  monitor.setFleet(fleet(40_000, true));
  assert.equal(monitor.polling, false);
});

test("with nothing declared, time passing wakes nothing (mock timers)", async (t) => {
  const store = StateStore.open(tempStateDir(t));
  t.after(() => store.close());
  t.mock.timers.enable({ apis: ["setTimeout"] });
  let looks = 0;
  const monitor = new InvariantMonitor({
    fleet: fleet(40_000, false),
    store,
    instances: () => {
      looks++;
      return [];
    },
    note: () => {},
    pollMs: 10,
  });
  t.after(() => monitor.stop());
  monitor.start();
  t.mock.timers.tick(10_000);
  assert.equal(looks, 1, "polled once at start, then never in 10 s (was every 10 ms)");
});
