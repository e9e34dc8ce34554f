import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { HomeostatError } from "../../src/errors.ts";
import {
  type FleetSpec,
  fleetOrThrow,
  formatSpecError,
  type LoadResult,
  loadFleetFile,
  parseFleet,
  type SpecError,
} from "../../src/spec/index.ts";

/** A minimal valid service, as YAML lines indented under `services:`. */
function serviceYaml(name: string, basePort: number, extra: string[] = []): string {
  return [
    `  ${name}:`,
    "    replicas: 1",
    `    basePort: ${basePort}`,
    "    release: v1",
    "    releases:",
    "      v1: { command: node }",
    ...extra.map((line) => `    ${line}`),
  ].join("\n");
}

function fleetYaml(...parts: string[]): string {
  return `${parts.join("\n")}\n`;
}

function ok(result: LoadResult): FleetSpec {
  assert.ok(result.ok, result.ok ? "" : result.errors.map(formatSpecError).join("\n"));
  return result.fleet;
}

function errors(result: LoadResult): SpecError[] {
  assert.equal(result.ok, false, "expected the fleet to be rejected");
  return result.ok ? [] : result.errors;
}

describe("error format", () => {
  it("names the file as given, then line:col, path and message", () => {
    const text = fleetYaml(
      "version: 1",
      "services:",
      "  api:",
      "    replicas: three",
      "    basePort: 18000",
      "    release: v1",
      "    releases: { v1: { command: node } }",
    );
    const found = errors(parseFleet(text, "fleet.yaml"));
    assert.equal(found.length, 1);
    const [first] = found;
    assert.ok(first);
    assert.equal(
      formatSpecError(first),
      'fleet.yaml:4:15: services.api.replicas: expected a positive integer, got "three"',
    );
  });

  it("omits the path for errors that have none", () => {
    const error: SpecError = {
      file: "f.yaml",
      line: 2,
      col: 3,
      path: "",
      message: "Map keys must be unique",
    };
    assert.equal(formatSpecError(error), "f.yaml:2:3: Map keys must be unique");
  });

  it("quotes keys that are not plain words in paths", () => {
    const text = fleetYaml(
      "version: 1",
      "services:",
      "  api:",
      "    replicas: 1",
      "    basePort: 18000",
      '    release: "1.0"',
      "    releases:",
      "      1.0: { command: '' }",
    );
    const [first] = errors(parseFleet(text, "fleet.yaml"));
    assert.equal(first?.path, 'services.api.releases["1.0"].command');
  });

  it("offers no suggestion when no known key is close", () => {
    const text = fleetYaml("version: 1", "frobnicate: yes", "services:", serviceYaml("api", 18000));
    const found = errors(parseFleet(text, "fleet.yaml"));
    assert.deepEqual(
      found.map((e) => [e.line, e.col, e.path, e.message]),
      [[2, 1, "frobnicate", 'unknown key "frobnicate"']],
    );
  });

  it("points at the document start for an empty file", () => {
    const found = errors(parseFleet("", "empty.yaml"));
    assert.deepEqual(
      found.map((e) => [e.line, e.col, e.message]),
      [[1, 1, "expected a fleet mapping (version, services, ...), got an empty value"]],
    );
  });
});

describe("loadFleetFile", () => {
  const dirs: string[] = [];
  after(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it("reports an unreadable file as one error at 1:1, naming the file as given", async () => {
    const missing = path.join(tmpdir(), "homeostat-no-such-dir", "fleet.yaml");
    const found = errors(await loadFleetFile(missing));
    assert.equal(found.length, 1);
    assert.equal(found[0]?.file, missing);
    assert.deepEqual([found[0]?.line, found[0]?.col], [1, 1]);
    assert.match(found[0]?.message ?? "", /cannot read the file: ENOENT/);
  });

  it("defaults the fleet name to the directory and resolves cwd against it", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "homeostat-spec-"));
    dirs.push(dir);
    const fleetDir = path.join(dir, "my-fleet");
    await mkdir(fleetDir);
    const file = path.join(fleetDir, "fleet.yaml");
    await writeFile(
      file,
      fleetYaml(
        "version: 1",
        "services:",
        "  api:",
        "    replicas: 1",
        "    basePort: 18000",
        "    release: v1",
        "    releases:",
        "      v1: { command: node, cwd: ../app }",
        "      v2: { command: node }",
      ),
    );
    const fleet = ok(await loadFleetFile(file));
    assert.equal(fleet.name, "my-fleet");
    assert.equal(fleet.file, file);
    assert.equal(fleet.services[0]?.releases.v1?.cwd, path.join(dir, "app"));
    assert.equal(fleet.services[0]?.releases.v2?.cwd, fleetDir);
  });
});

describe("fleetOrThrow", () => {
  it("returns the fleet when it loaded", () => {
    const fleet = fleetOrThrow(
      parseFleet(fleetYaml("version: 1", "services:", serviceYaml("api", 18000)), "f.yaml"),
    );
    assert.equal(fleet.services[0]?.name, "api");
  });

  it("throws HS_SPEC_INVALID with every error", () => {
    const text = fleetYaml("version: 3", "services:", serviceYaml("api", 80));
    assert.throws(
      () => fleetOrThrow(parseFleet(text, "f.yaml")),
      (error: unknown) =>
        error instanceof HomeostatError &&
        error.code === "HS_SPEC_INVALID" &&
        error.message.split("\n").length === 2 &&
        error.message.includes("f.yaml:5:15: services.api.basePort"),
    );
  });
});

describe("durations", () => {
  function probeWith(...lines: string[]): string {
    return fleetYaml(
      "version: 1",
      "services:",
      serviceYaml("api", 18000, ["probes:", "  readiness:", "    tcp: {}", ...lines.map((l) => `    ${l}`)]),
    );
  }

  it("accepts ms, s, fractional s, m and bare integers of milliseconds", () => {
    const fleet = ok(parseFleet(probeWith("interval: 1.5s", "timeout: 250", "initialDelay: 1m"), "f.yaml"));
    const probe = fleet.services[0]?.probes.readiness;
    assert.deepEqual([probe?.intervalMs, probe?.timeoutMs, probe?.initialDelayMs], [1_500, 250, 60_000]);
    const hourly = ok(parseFleet(probeWith("interval: 1h", "timeout: 2s", "initialDelay: 0"), "f.yaml"));
    assert.equal(hourly.services[0]?.probes.readiness?.intervalMs, 3_600_000);
    assert.equal(hourly.services[0]?.probes.readiness?.initialDelayMs, 0);
  });

  it("caps the default timeout at a shorter interval", () => {
    const fleet = ok(parseFleet(probeWith("interval: 300ms"), "f.yaml"));
    assert.equal(fleet.services[0]?.probes.readiness?.timeoutMs, 300);
  });

  it("rejects zero where a zero makes no sense, and fractions of a millisecond count", () => {
    const found = errors(parseFleet(probeWith("interval: 0ms", "timeout: 1.5"), "f.yaml"));
    assert.deepEqual(
      found.map((e) => [e.path, e.message]),
      [
        [
          "services.api.probes.readiness.interval",
          'expected a positive duration like "500ms" or "2s", got "0ms"',
        ],
        [
          "services.api.probes.readiness.timeout",
          'expected a positive duration like "500ms" or "2s", got 1.5',
        ],
      ],
    );
  });

  it("complains about the default interval when only a long timeout is given", () => {
    const [first] = errors(parseFleet(probeWith("timeout: 3s"), "f.yaml"));
    assert.equal(
      first?.message,
      "timeout 3000ms is longer than the default interval 1000ms: a probe cannot overlap itself",
    );
  });
});

describe("defaults", () => {
  const defaults = [
    "defaults:",
    "  probes:",
    "    liveness: { tcp: {}, interval: 2s }",
    "    readiness: { http: { path: /ready, expectStatus: 204 } }",
    "  restart:",
    "    policy: on-failure",
    "    backoff: { initial: 1s, jitter: 0 }",
    "    stopGracePeriod: 0",
  ];

  it("replaces a default probe whole, per kind, and `off` disables it", () => {
    const text = fleetYaml(
      "version: 1",
      ...defaults,
      "services:",
      serviceYaml("own", 18000, ["probes:", "  liveness: { exec: { command: check } }"]),
      serviceYaml("quiet", 18100, ["probes: { readiness: off }"]),
    );
    const [own, quiet] = ok(parseFleet(text, "f.yaml")).services;
    assert.deepEqual(own?.probes.liveness, {
      check: { kind: "exec", command: "check", args: [] },
      intervalMs: 1_000,
      timeoutMs: 1_000,
      failureThreshold: 3,
      successThreshold: 1,
      initialDelayMs: 0,
    });
    assert.deepEqual(own?.probes.readiness?.check, {
      kind: "http",
      path: "/ready",
      expectStatus: [204, 204],
    });
    assert.equal(quiet?.probes.readiness, undefined);
    assert.equal(quiet?.probes.liveness?.intervalMs, 2_000);
  });

  it("merges restart settings field by field, nested ones too", () => {
    const text = fleetYaml(
      "version: 1",
      ...defaults,
      "services:",
      serviceYaml("api", 18000, ["restart: { backoff: { max: 5s }, crashLoop: { failures: 2 } }"]),
    );
    assert.deepEqual(ok(parseFleet(text, "f.yaml")).services[0]?.restart, {
      policy: "on-failure",
      backoff: { initialMs: 1_000, maxMs: 5_000, multiplier: 2, jitter: 0 },
      crashLoop: { failures: 2, windowMs: 60_000 },
      stopGracePeriodMs: 0,
      resetAfterMs: 10_000,
    });
  });
});

describe("dependency order", () => {
  it("puts dependencies first and otherwise keeps declaration order", () => {
    const text = fleetYaml(
      "version: 1",
      "services:",
      serviceYaml("web", 18000, ["dependsOn: [api]"]),
      serviceYaml("db", 18100),
      serviceYaml("api", 18200, ["dependsOn: [db]"]),
      serviceYaml("cache", 18300),
    );
    assert.deepEqual(
      ok(parseFleet(text, "f.yaml")).services.map((s) => s.name),
      ["db", "api", "web", "cache"],
    );
  });

  it("reports a three-service cycle once, at the entry that closes it", () => {
    const text = fleetYaml(
      "version: 1",
      "services:",
      serviceYaml("a", 18000, ["dependsOn: [b]"]),
      serviceYaml("b", 18100, ["dependsOn: [c]"]),
      serviceYaml("c", 18200, ["dependsOn: [a]"]),
    );
    assert.deepEqual(
      errors(parseFleet(text, "f.yaml")).map((e) => [e.path, e.message]),
      [["services.c.dependsOn[0]", "dependency cycle: a -> b -> c -> a"]],
    );
  });
});

describe("placement", () => {
  const hosts = [
    "hosts:",
    "  h1: { zone: a }",
    "  h2: { zone: a }",
    "  h3: { zone: b }",
    "  h4: { zone: b }",
    "  h5: { zone: c }",
  ];

  it("defaults to every declared host, alternating zones between consecutive slots", () => {
    const text = fleetYaml("version: 1", ...hosts, "services:", serviceYaml("api", 18000));
    const placement = ok(parseFleet(text, "f.yaml")).services[0]?.placement;
    assert.deepEqual(
      placement?.map((p) => p.host),
      ["h1", "h3", "h5", "h2", "h4"],
    );
  });

  it("selects the hosts of the listed zones, in the zones' order", () => {
    const text = fleetYaml(
      "version: 1",
      ...hosts,
      "services:",
      serviceYaml("api", 18000, ["placement: { zones: [b, a] }"]),
    );
    assert.deepEqual(ok(parseFleet(text, "f.yaml")).services[0]?.placement, [
      { zone: "b", host: "h3" },
      { zone: "a", host: "h1" },
      { zone: "b", host: "h4" },
      { zone: "a", host: "h2" },
    ]);
  });

  it("runs everything on one local host when nothing is said", () => {
    const text = fleetYaml("version: 1", "services:", serviceYaml("api", 18000));
    assert.deepEqual(ok(parseFleet(text, "f.yaml")).services[0]?.placement, [
      { zone: "local", host: "local" },
    ]);
  });

  it("rejects unknown zones, hosts outside the listed zones, and hosts when none are declared", () => {
    const withHosts = fleetYaml(
      "version: 1",
      ...hosts,
      "services:",
      serviceYaml("api", 18000, ["placement: { zones: [a, d], hosts: [h1, h3] }"]),
    );
    assert.deepEqual(
      errors(parseFleet(withHosts, "f.yaml")).map((e) => [e.path, e.message]),
      [
        ["services.api.placement.zones[1]", 'unknown zone "d": no declared host is in it (zones: a, b, c)'],
        ["services.api.placement.hosts[1]", 'host "h3" is in zone "b", which placement.zones does not list'],
      ],
    );
    const withoutHosts = fleetYaml(
      "version: 1",
      "services:",
      serviceYaml("api", 18000, ["placement: { hosts: [h1] }"]),
    );
    assert.deepEqual(
      errors(parseFleet(withoutHosts, "f.yaml")).map((e) => e.message),
      ['unknown host "h1" (the fleet declares no hosts)'],
    );
  });
});

describe("ports", () => {
  it("rejects a front port inside the service's own instance range", () => {
    const own = fleetYaml(
      "version: 1",
      "services:",
      "  api:",
      "    replicas: 3",
      "    basePort: 18000",
      "    port: 18002",
      "    release: v1",
      "    releases: { v1: { command: node } }",
    );
    assert.deepEqual(
      errors(parseFleet(own, "f.yaml")).map((e) => [e.line, e.col, e.path, e.message]),
      [
        [
          6,
          11,
          "services.api.port",
          "port 18002 overlaps the instance ports 18000-18005 of this service: a service reserves 2 × replicas ports from basePort (two banks, so a new release can start beside the running one)",
        ],
      ],
    );
  });

  it("reserves a second bank of replicas ports: a range inside it clashes", () => {
    const text = fleetYaml(
      "version: 1",
      "services:",
      serviceYaml("a", 18000, ["port: 18003"]),
      serviceYaml("b", 18001),
    );
    assert.deepEqual(
      errors(parseFleet(text, "f.yaml")).map((e) => [e.line, e.col, e.path, e.message.split(":")[0]]),
      [
        [
          12,
          15,
          "services.b.basePort",
          'instance ports 18001-18002 overlap the instance ports 18000-18001 of service "a"',
        ],
      ],
    );
  });

  it("accepts adjacent ranges, both banks counted", () => {
    const text = fleetYaml(
      "version: 1",
      "services:",
      serviceYaml("a", 18000, ["port: 18002"]),
      serviceYaml("b", 18003),
    );
    assert.equal(ok(parseFleet(text, "f.yaml")).services.length, 2);
  });

  it("keeps both banks below 65536", () => {
    const text = fleetYaml("version: 1", "services:", serviceYaml("a", 65535));
    assert.deepEqual(
      errors(parseFleet(text, "f.yaml")).map((e) => [e.path, e.message.split(":")[0]]),
      [["services.a.basePort", "instance ports 65535-65536 (1 replicas × 2 banks) go past 65535"]],
    );
  });
});
