/**
 * `homeostat status`: the Zones block (headroom if each zone were lost now) and its WARNING line,
 * rendered from a status document, and the real command against a stand-in API.
 */

import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import { renderStatus, renderZones } from "../../src/cli/commands/status.ts";
import { type StatusAnswer, statusSchema } from "../../src/server/routes/schemas.ts";
import { buildStatus } from "../../src/server/statusView.ts";
import { ABC, everywhere, service } from "../decide/failover/fixtures.ts";
import { cli } from "../helpers/e2e.ts";
import { makeFleet } from "../helpers/fleetFixture.ts";
import { allReady, NOW } from "../helpers/snapshotFixture.ts";

/**
 * A status document for one service over three zones, each instance at `load` of 100 rps, as a
 * client reads it: checked against the answer's schema (the CLI's type comes from it too).
 */
function statusAt(load: number): StatusAnswer {
  const fleet = makeFleet({
    services: [
      {
        name: "api",
        replicas: 3,
        placement: ABC.map((zone) => ({ zone, host: `host-${zone}` })),
        capacity: { rps: 100 },
      },
    ],
  });
  const document = buildStatus({
    fleet,
    instances: allReady(fleet),
    pids: new Map(),
    slots: [],
    busy: [],
    openIncidents: [],
    controller: { pid: 4242, startedAt: NOW - 60_000, apiPort: 7070, stateDir: "/tmp/state", now: NOW },
    capacity: {
      services: [service("api", everywhere(ABC, { default: load }))],
      zones: ABC,
      skipped: [{ service: "batch", reason: "no `capacity.rps` declared" }],
    },
  });
  return statusSchema.parse(document);
}

describe("status: the Zones block", () => {
  test("at 60 % per zone: every zone overloads the others, and a WARNING says so", () => {
    const text = renderStatus(statusAt(60));
    const zones = text.slice(text.indexOf("Zones"));
    assert.match(
      zones,
      /^Zones \(if one were lost now, at current load, before any scale-up or shedding\):$/m,
    );
    assert.match(zones, /^ {2}ZONE LOST +SURVIVORS' PEAK +HEADROOM +VERDICT$/m);
    for (const zone of ABC)
      assert.match(zones, new RegExp(`^  ${zone} +90 % +-20 rps +OVERLOADS the others$`, "m"));
    assert.match(zones, /^ {2}\(batch left out: no `capacity.rps` declared\)$/m);
    assert.match(zones, /^WARNING: the fleet cannot lose any one zone at current load \(N−1\)/m);
    // The block comes after the services.
    assert.ok(text.indexOf("Zones") > text.indexOf("api: healthy"), text);
  });

  test("at 40 % every zone can be lost: headroom shown, no WARNING", () => {
    const text = renderStatus(statusAt(40));
    for (const zone of ABC) assert.match(text, new RegExp(`^  ${zone} +60 % +40 rps +survives$`, "m"));
    assert.doesNotMatch(text, /WARNING/);
  });

  test("no capacity data: no block; only services left out: says there is nothing to check", () => {
    assert.deepEqual(renderZones({ domains: [], staticStability: { ok: true, skipped: [] } }), []);
    assert.deepEqual(
      renderZones({
        domains: [],
        staticStability: { ok: true, skipped: [{ service: "api", reason: "no `capacity.rps` declared" }] },
      }),
      [
        "Zones: no service declares its capacity, nothing to check",
        "  (api left out: no `capacity.rps` declared)",
      ],
    );
  });

  test("a zone whose loss leaves no survivor reads 'no survivor'", () => {
    const lines = renderZones({
      domains: [{ zone: "zone-a", survivorPeakUtilization: null, survivesLoss: false, headroomRps: -5 }],
      staticStability: { ok: false, warning: "the fleet cannot lose zone-a", skipped: [] },
    });
    assert.match(lines.join("\n"), /^ {2}zone-a +no survivor +-5 rps +OVERLOADS the others$/m);
    assert.equal(lines.at(-1), "WARNING: the fleet cannot lose zone-a");
  });

  test("the real command prints the block, and --json carries domains and staticStability", async (t) => {
    const document = statusAt(60);
    const server = createServer((req, res) => {
      const found = req.url === "/v1/status";
      res.writeHead(found ? 200 : 404, { "content-type": "application/json" });
      res.end(JSON.stringify(found ? document : { error: "not found" }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = String((server.address() as AddressInfo).port);

    const text = await cli(["status", "--api-port", port], { timeoutMs: 30_000 });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^ {2}zone-b +90 % +-20 rps +OVERLOADS the others$/m);
    assert.match(text.stdout, /^WARNING: the fleet cannot lose any one zone/m);

    const json = await cli(["status", "--json", "--api-port", port], { timeoutMs: 30_000 });
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as StatusAnswer;
    assert.deepEqual(parsed.domains, document.domains);
    assert.deepEqual(parsed.staticStability, document.staticStability);
    assert.equal(parsed.staticStability.ok, false);
  });
});

describe("status: security invariants", () => {
  const broken = (instance: string) => ({
    invariant: "protected-path:GET /admin",
    kind: "protected-path" as const,
    instance,
    detail: `GET /admin answered 200 without credentials on ${instance} (expected 401 or 403)`,
    since: NOW - 5_000,
  });

  test("a broken invariant is named with the instances that break it; the reasons do not repeat it", () => {
    const status = statusAt(40);
    status.invariants = {
      api: {
        ok: false,
        checked: true,
        broken: [broken("api-0"), broken("api-1")],
        lastCheckedAt: NOW - 1_000,
      },
    };
    const api = status.services[0]!;
    api.recovery = {
      state: "failing",
      reasons: ["api: invariant broken: GET /admin answered 200 without credentials on api-0"],
      codes: ["invariant-broken"],
    };
    const text = renderStatus(status);
    assert.match(
      text,
      /^ {2}! INVARIANT BROKEN protected-path:GET \/admin on api-0, api-1 \(since 5\.00s ago\): GET \/admin answered 200 without credentials on api-0/m,
    );
    assert.doesNotMatch(text, /^ {2}- api: invariant broken/m);
  });

  test("not checked yet, and holding", () => {
    const status = statusAt(40);
    status.invariants = { api: { ok: false, checked: false, broken: [], lastCheckedAt: null } };
    assert.match(
      renderStatus(status),
      /^ {2}invariants: not checked yet on every ready instance \(not verified\)$/m,
    );
    status.invariants = { api: { ok: true, checked: true, broken: [], lastCheckedAt: NOW - 1_000 } };
    assert.match(renderStatus(status), /^ {2}invariants: hold, last round 1\.00s ago$/m);
  });
});
