/** The fleet file's `stores` section (kind: redis): defaults, placement over zones, and errors with positions. */

import assert from "node:assert/strict";
import { test } from "node:test";
import { formatSpecError, parseFleet } from "../../src/spec/index.ts";

const HOSTS = "hosts: { h-a: { zone: a }, h-b: { zone: b }, h-c: { zone: c } }\n";
const API =
  "services:\n  api:\n    replicas: 1\n    basePort: 18000\n    port: 18100\n    release: v1\n    releases: { v1: { command: node } }\n";

const errorsOf = (text: string) => {
  const result = parseFleet(text, "fleet.yaml");
  assert.equal(result.ok, false, "expected the file to be refused");
  return result.ok ? "" : result.errors.map(formatSpecError).join("\n");
};

test("a redis store: defaults filled in, members spread over zones, services may be empty", () => {
  const text = `version: 1\n${HOSTS}services: {}\nstores:\n  cache:\n    kind: redis\n    replicas: 2\n    basePort: 17000\n    port: 6390\n    sentinel: { port: 26390 }\n`;
  const result = parseFleet(text, "fleet.yaml");
  assert.ok(result.ok, result.ok ? "" : result.errors.map(formatSpecError).join("\n"));
  const [store] = result.fleet.stores ?? [];
  assert.ok(store);
  assert.deepEqual(
    store.placement.map((p) => p.zone),
    ["a", "b", "c"],
  );
  assert.equal(store.command, "redis-server");
  assert.deepEqual(store.detection, { intervalMs: 250, timeoutMs: 250, failures: 3 });
  assert.deepEqual(store.sentinel, { port: 26390, announce: "endpoint" });
  assert.equal(store.minReplicasToWrite, 1);
  assert.equal(store.minReplicasMaxLagS, 1);
  assert.equal(store.maxLagOnFailoverBytes, 1024 * 1024);
  assert.equal(store.onLag, "refuse");
  assert.deepEqual(store.priorities, [100, 100, 100]);
});

test("store settings as written: sizes, whole seconds, priorities, extra config", () => {
  const text = `version: 1\n${API}stores:\n  s:\n    kind: redis\n    replicas: 1\n    basePort: 17000\n    port: 6390\n    maxLagOnFailover: 64kb\n    minReplicasMaxLag: 2s\n    onLag: warn\n    priorities: [100, 0]\n    persistence: none\n    config: { maxmemory: 100mb }\n`;
  const result = parseFleet(text, "fleet.yaml");
  assert.ok(result.ok, result.ok ? "" : result.errors.map(formatSpecError).join("\n"));
  const store = result.fleet.stores![0]!;
  assert.equal(store.maxLagOnFailoverBytes, 65536);
  assert.equal(store.minReplicasMaxLagS, 2);
  assert.equal(store.onLag, "warn");
  assert.equal(store.persistence, "none");
  assert.deepEqual(store.config, { maxmemory: "100mb" });
});

test("store errors point at the value: port clashes, unknown zone, managed directives, bad sizes", () => {
  const base = (store: string) =>
    `version: 1\n${HOSTS}${API}stores:\n  cache:\n    kind: redis\n    replicas: 2\n${store}`;
  assert.match(
    errorsOf(base("    basePort: 17000\n    port: 18100\n")),
    /fleet\.yaml:15:11: stores\.cache\.port: endpoint port 18100 overlaps ports 18100 of service "api"/,
  );
  assert.match(
    errorsOf(base("    basePort: 17999\n    port: 6390\n")),
    /fleet\.yaml:14:15: stores\.cache\.basePort: member ports 17999-18001 overlap ports 18000-18001 of service "api"/,
  );
  assert.match(
    errorsOf(base("    basePort: 17000\n    port: 6390\n    placement: { zones: [a, d] }\n")),
    /stores\.cache\.placement\.zones\[1\]: unknown zone "d"/,
  );
  assert.match(
    errorsOf(base("    basePort: 17000\n    port: 6390\n    config: { replicaof: x }\n")),
    /fleet\.yaml:16:15: stores\.cache\.config\.replicaof: "replicaof" is set by Homeostat/,
  );
  assert.match(
    errorsOf(base("    basePort: 17000\n    port: 6390\n    maxLagOnFailover: lots\n")),
    /fleet\.yaml:16:23: stores\.cache\.maxLagOnFailover: expected a size in bytes/,
  );
  assert.match(
    errorsOf(base("    basePort: 17000\n    port: 6390\n    minReplicasMaxLag: 1500ms\n")),
    /stores\.cache\.minReplicasMaxLag: expected a whole number of seconds/,
  );
  assert.match(
    errorsOf(base("    basePort: 17000\n    port: 6390\n    minReplicasToWrite: 3\n")),
    /stores\.cache\.minReplicasToWrite: 3 is more than the 2 replicas/,
  );
  assert.match(errorsOf(base("    basePort: 17000\n    port: 6390\n    kind2: x\n")), /unknown key "kind2"/);
  assert.match(
    errorsOf("version: 1\nservices: {}\n"),
    /fleet\.yaml:2:11: services: declare at least one service/,
  );
});
