/**
 * The proxy bench's fake controller: the snapshot it pushes is one the data plane accepts (the
 * feed protocol's schema), serving the bench service on its port with one endpoint, the upstream,
 * and the bench fleet's traffic settings; and the tally of reports per measured run.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { benchFleetYaml } from "../../bench/proxy/benchFleet.ts";
import { benchSnapshot, ReportTally } from "../../bench/proxy/benchSnapshot.ts";
import { snapshotSchema } from "../../src/dataplane/feedProtocol.ts";
import { fleetOrThrow, loadFleetFile } from "../../src/spec/index.ts";

test("the bench snapshot matches the feed protocol: one service, one endpoint, the bench fleet's traffic", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "homeostat-bench-snapshot-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "fleet.yaml");
  writeFileSync(file, benchFleetYaml(18080, 18081));
  const service = fleetOrThrow(await loadFleetFile(file)).services[0]!;

  const snapshot = benchSnapshot({
    service: service.name,
    port: 18080,
    upstreamPort: 18081,
    traffic: service.traffic,
    controller: { pid: 42, startedAt: 1_000 },
    issuedAt: 2_000,
  });
  assert.deepEqual(snapshotSchema.parse(snapshot), snapshot);
  assert.equal(snapshot.version, 1);
  assert.equal(snapshot.services.length, 1);
  const [served] = snapshot.services;
  assert.equal(served!.port, 18080);
  assert.deepEqual(
    served!.endpoints!.map((e) => [e.service, e.address, e.port]),
    [[service.name, "127.0.0.1", 18081]],
  );
  assert.deepEqual(served!.traffic, service.traffic);
  // The bench's one override: admission must not be what limits throughput.
  assert.equal(service.traffic.limits.maxConcurrentPerInstance, 1024);
  assert.deepEqual(snapshot.faults, []);
});

test("the report tally counts per window and keeps the longest gap, the wait since the last one included", () => {
  const tally = new ReportTally();
  assert.deepEqual(tally.take(100), { reports: 0, maxGapMs: 0 });
  tally.note(1_000);
  tally.note(1_250);
  tally.note(1_700);
  assert.deepEqual(tally.take(1_800), { reports: 3, maxGapMs: 450 });
  // A gap that spans two windows counts in the window where it ends.
  tally.note(2_000);
  assert.deepEqual(tally.take(2_100), { reports: 1, maxGapMs: 300 });
  // No report since: the silence itself is the gap.
  assert.deepEqual(tally.take(3_100), { reports: 0, maxGapMs: 1_100 });
  assert.equal(tally.total, 4);
});
