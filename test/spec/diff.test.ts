import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { diffFleets, type SpecChange, summarizeDiff } from "../../src/spec/diff.ts";
import { type FleetSpec, formatSpecError, loadFleetFile } from "../../src/spec/index.ts";

/** The base fleet: two services (web depends on api), one with a front port and traffic settings. */
const BASE = `version: 1
name: diffed
hosts:
  host-a: { zone: zone-a }
  host-b: { zone: zone-b }
security:
  deniedReleases: []
services:
  api:
    replicas: 3
    basePort: 18100
    port: 18090
    placement: { zones: [zone-a, zone-b] }
    release: v1
    releases:
      v1:
        command: node
        args: [server.js, "{port}"]
        env: { MODE: fast, LEVEL: "1" }
        config: { db: { host: localhost, pool: 4 } }
      v2:
        command: node
        args: [server2.js, "{port}"]
    traffic:
      retries: { attempts: 2 }
    probes:
      readiness:
        http: { path: /ready }
        interval: 500ms
  web:
    replicas: 2
    basePort: 18200
    dependsOn: [api]
    release: w1
    releases:
      w1: { command: node, args: [web.js] }
`;

let directory = "";
let counter = 0;

/** Writes `text` as a fleet file in the temp dir and loads it as `homeostat` does. */
async function load(text: string): Promise<FleetSpec> {
  counter += 1;
  const file = path.join(directory, `fleet-${counter}.yaml`);
  await writeFile(file, text);
  const result = await loadFleetFile(file);
  assert.ok(result.ok, result.ok ? "" : result.errors.map(formatSpecError).join("\n"));
  return result.fleet;
}

/** The base fleet with `replace` pairs applied to its text (each must match exactly once). */
function edit(...pairs: [string, string][]): string {
  let text = BASE;
  for (const [from, to] of pairs) {
    assert.equal(text.split(from).length, 2, `"${from}" must occur once in the base fleet`);
    text = text.replace(from, to);
  }
  return text;
}

async function diffOf(...pairs: [string, string][]): Promise<SpecChange[]> {
  const result = diffFleets(await load(BASE), await load(edit(...pairs)));
  assert.equal(result.empty, result.changes.length === 0);
  return result.changes;
}

function brief(changes: SpecChange[]): string[] {
  return changes.map((change) => `${change.class} ${change.path}`);
}

describe("diffFleets", () => {
  before(async () => {
    directory = await mkdtemp(path.join(tmpdir(), "homeostat-diff-"));
  });
  after(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it("finds nothing between two loads of the same text, whatever the file's path", async () => {
    const result = diffFleets(await load(BASE), await load(BASE));
    assert.deepEqual(result, { changes: [], empty: true });
    assert.equal(summarizeDiff(result), "no changes");
  });

  it("finds nothing when only comments, key order and spelling of the same values change", async () => {
    const respelled = edit(
      ['env: { MODE: fast, LEVEL: "1" }', 'env: { LEVEL: "1", MODE: fast } # reordered'],
      ["interval: 500ms", "interval: 0.5s"],
    );
    const result = diffFleets(await load(BASE), await load(respelled));
    assert.deepEqual(result.changes, []);
  });

  it("classifies traffic, probe and SLO settings as live, with a dotted path and a readable detail", async () => {
    const changes = await diffOf(
      ["retries: { attempts: 2 }", "retries: { attempts: 3 }"],
      ["interval: 500ms", "interval: 1s"],
      ["    traffic:\n", "    slo: { errorRate: 2% }\n    traffic:\n"],
    );
    // A readiness timeout defaults from its interval: it changes with it, and says so.
    assert.deepEqual(brief(changes), [
      "live services.api.traffic.retries.maxAttempts",
      "live services.api.probes.readiness.intervalMs",
      "live services.api.probes.readiness.timeoutMs",
      "live services.api.slo.errorRate",
    ]);
    const retries = changes.find((change) => change.path === "services.api.traffic.retries.maxAttempts");
    assert.ok(retries);
    assert.equal(retries.service, "api");
    assert.equal(retries.before, 2);
    assert.equal(retries.after, 3);
    assert.equal(retries.detail, "traffic.retries.maxAttempts: 2 → 3 (applies live)");
    const probe = changes.find((change) => change.path === "services.api.probes.readiness.intervalMs");
    assert.deepEqual([probe?.before, probe?.after], [500, 1000]);
  });

  it("classifies replicas as scale, in both directions", async () => {
    const up = await diffOf(["replicas: 3", "replicas: 5"]);
    const scale = up.filter((change) => change.class === "scale");
    assert.deepEqual(brief(scale), ["scale services.api.replicas"]);
    assert.equal(scale[0]?.detail, "replicas 3 → 5 (scale up by 2)");
    const down = await diffOf(["replicas: 3", "replicas: 1"]);
    const shrink = down.find((change) => change.class === "scale");
    assert.equal(shrink?.detail, "replicas 3 → 1 (scale down by 2, draining first)");
    // The capacity bound defaults from replicas: it is a resolved difference of its own, live.
    assert.ok(
      up.some((change) => change.class === "live" && change.path === "services.api.capacity.maxReplicas"),
    );
  });

  it("classifies placement and basePort as replace", async () => {
    const changes = await diffOf(
      ["placement: { zones: [zone-a, zone-b] }", "placement: { zones: [zone-b] }"],
      ["basePort: 18200", "basePort: 18300"],
    );
    const replaced = changes.filter((change) => change.class === "replace");
    assert.deepEqual(brief(replaced), ["replace services.api.placement", "replace services.web.basePort"]);
    assert.match(replaced[0]?.detail ?? "", /zone or host changes are replaced/);
    assert.deepEqual(replaced[1]?.before, 18200);
    // The traffic priorities derive from placement: the zone list that changes with it is live.
    assert.ok(changes.every((change) => ["replace", "live"].includes(change.class)));
  });

  it("classifies a changed release: as release-switch and a new version as release-added", async () => {
    const changes = await diffOf(
      ["    release: v1\n", "    release: v3\n"],
      ["      v2:\n", "      v3: { command: node, args: [server3.js] }\n      v2:\n"],
    );
    assert.deepEqual(brief(changes), [
      "release-switch services.api.release",
      "release-added services.api.releases.v3",
    ]);
    assert.equal(changes[0]?.detail, "release v1 → v3 (progressive deploy with analysis)");
    assert.equal(changes[1]?.detail, "release v3 added (node server3.js)");
    assert.equal((changes[1]?.after as { command: string } | undefined)?.command, "node");
  });

  it("classifies a removed version as release-removed", async () => {
    const changes = await diffOf([
      '      v2:\n        command: node\n        args: [server2.js, "{port}"]\n',
      "",
    ]);
    assert.deepEqual(brief(changes), ["release-removed services.api.releases.v2"]);
    assert.equal(changes[0]?.after, undefined);
  });

  it("classifies every edited field of a version kept under its name as release-edited, saying whether it runs", async () => {
    const changes = await diffOf(
      ['env: { MODE: fast, LEVEL: "1" }', 'env: { MODE: slow, LEVEL: "1", EXTRA: x }'],
      ["pool: 4", "pool: 8"],
      ['args: [server2.js, "{port}"]', 'args: [server2b.js, "{port}"]'],
    );
    assert.deepEqual(brief(changes), [
      "release-edited services.api.releases.v1.env.MODE",
      "release-edited services.api.releases.v1.env.EXTRA",
      "release-edited services.api.releases.v1.config.db.pool",
      "release-edited services.api.releases.v2.args",
    ]);
    assert.equal(changes[1]?.before, undefined);
    assert.equal(changes[1]?.after, "x");
    assert.match(
      changes[0]?.detail ?? "",
      /^release v1 env\.MODE: "fast" → "slow" \(edited in place while running/,
    );
    assert.match(changes[3]?.detail ?? "", /^release v2 args: .* \(edited in place: a release is immutable/);
    assert.doesNotMatch(changes[3]?.detail ?? "", /while running/);
  });

  it("classifies a new service as add-service and a removed one as remove-service, after the others", async () => {
    const added = await diffOf([
      "      w1: { command: node, args: [web.js] }\n",
      "      w1: { command: node, args: [web.js] }\n  jobs:\n    replicas: 1\n    basePort: 18300\n    release: j1\n    releases: { j1: { command: node } }\n",
    ]);
    assert.deepEqual(brief(added), ["add-service services.jobs"]);
    assert.equal(added[0]?.service, "jobs");
    assert.equal(added[0]?.detail, "new service jobs: 1 × release j1");
    assert.equal((added[0]?.after as { replicas: number } | undefined)?.replicas, 1);

    const result = diffFleets(await load(BASE), await load(BASE.slice(0, BASE.indexOf("  web:\n"))));
    assert.deepEqual(brief(result.changes), ["remove-service services.web"]);
    assert.match(result.changes[0]?.detail ?? "", /drained, then stopped/);
  });

  it("classifies fleet-wide sections as live with no service", async () => {
    const changes = await diffOf(
      ["  deniedReleases: []", "  deniedReleases: [{ service: api, version: v0, reason: leaks }]"],
      ["name: diffed", "name: diffed\nfailover: { automatic: true }\ndataPlane: { workers: 2 }"],
    );
    assert.deepEqual(brief(changes), [
      "live security.deniedReleases",
      "live failover.automatic",
      "live dataPlane.workers",
    ]);
    assert.ok(changes.every((change) => change.service === null));
    assert.deepEqual(changes[0]?.after, [{ service: "api", version: "v0", reason: "leaks" }]);
  });

  it("walks lists of named entries by name: datastores.NAME.field, a new datastore by its name", async () => {
    const changes = await diffOf([
      "name: diffed",
      "name: diffed\ndatastores:\n  orders-db: { initialVersion: 6 }\n  users-db: { initialVersion: 1 }",
    ]);
    assert.deepEqual(brief(changes), ["live datastores.orders-db", "live datastores.users-db"]);
    assert.equal(changes[0]?.before, undefined);
    assert.equal((changes[0]?.after as { initialVersion?: number } | undefined)?.initialVersion, 6);
    const base = edit(["name: diffed", "name: diffed\ndatastores:\n  orders-db: { initialVersion: 6 }"]);
    const next = base.replace("initialVersion: 6", "initialVersion: 7");
    const result = diffFleets(await load(base), await load(next));
    assert.deepEqual(brief(result.changes), ["live datastores.orders-db.initialVersion"]);
    assert.deepEqual([result.changes[0]?.before, result.changes[0]?.after], [6, 7]);
  });

  it("reports a defaults change on every service it reaches, fleet-wide changes first, services in dependency order", async () => {
    const changes = await diffOf(
      ["name: diffed", "name: diffed\ndefaults:\n  slo: { p99: 900ms }\nfailover: { automatic: true }"],
      ["replicas: 2", "replicas: 4"],
    );
    assert.deepEqual(brief(changes), [
      "live failover.automatic",
      "live services.api.slo.p99Ms",
      "scale services.web.replicas",
      "live services.web.slo.p99Ms",
      "live services.web.capacity.maxReplicas",
    ]);
    assert.equal(changes[0]?.path, "failover.automatic");
    assert.deepEqual([...new Set(changes.map((change) => change.service))], [null, "api", "web"]);
    assert.equal(summarizeDiff({ changes, empty: false }), "1 scale, 4 live");
  });

  it("is deterministic: the same inputs give the same list", async () => {
    const a = await load(BASE);
    const b = await load(edit(["replicas: 3", "replicas: 4"], ["    release: v1\n", "    release: v2\n"]));
    assert.deepEqual(diffFleets(a, b), diffFleets(a, b));
    assert.deepEqual(brief(diffFleets(a, b).changes).slice(0, 2), [
      "release-switch services.api.release",
      "scale services.api.replicas",
    ]);
  });
});
