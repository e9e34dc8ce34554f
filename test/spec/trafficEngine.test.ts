/**
 * `traffic.engine`: which data plane moves a service's bytes. Resolved like the other traffic
 * settings (the service's own over `defaults.traffic`), and checked against the machine when the
 * caller asks: a missing haproxy binary is an error at the line that asks for it.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatSpecError, type LoadResult, parseFleet } from "../../src/spec/index.ts";

function fleet(defaults: string[], apiTraffic: string | null, webTraffic: string | null = null): string {
  return [
    "version: 1",
    ...(defaults.length > 0 ? ["defaults:", ...defaults.map((l) => `  ${l}`)] : []),
    "services:",
    "  api:",
    "    replicas: 2",
    "    basePort: 18100",
    "    port: 8100",
    "    release: v1",
    "    releases: { v1: { command: node } }",
    ...(apiTraffic === null ? [] : [`    traffic: ${apiTraffic}`]),
    "  web:",
    "    replicas: 2",
    "    basePort: 18200",
    "    port: 8200",
    "    release: v1",
    "    releases: { v1: { command: node } }",
    ...(webTraffic === null ? [] : [`    traffic: ${webTraffic}`]),
    "",
  ].join("\n");
}

function errors(result: LoadResult): string[] {
  assert.equal(result.ok, false, "expected the fleet to be rejected");
  return result.ok ? [] : result.errors.map(formatSpecError);
}

const missing = { haproxyBinary: () => null };
const present = { haproxyBinary: () => "/usr/sbin/haproxy" };

describe("traffic.engine", () => {
  it("is embedded unless set; a service's own wins over defaults.traffic", () => {
    const plain = parseFleet(fleet([], null), "fleet.yaml");
    assert.ok(plain.ok);
    assert.deepEqual(
      plain.fleet.services.map((s) => s.traffic.engine),
      ["embedded", "embedded"],
    );
    const mixed = parseFleet(fleet(["traffic: { engine: haproxy }"], "{ engine: embedded }"), "fleet.yaml");
    assert.ok(mixed.ok);
    assert.deepEqual(
      mixed.fleet.services.map((s) => [s.name, s.traffic.engine]),
      [
        ["api", "embedded"],
        ["web", "haproxy"],
      ],
    );
  });

  it("an unknown engine is an error at its value, naming the choices", () => {
    const [error] = errors(parseFleet(fleet([], "{ engine: envoy }"), "fleet.yaml"));
    assert.match(error!, /^fleet\.yaml:9:24: services\.api\.traffic\.engine: /);
    assert.match(error!, /embedded, haproxy/);
    assert.match(error!, /"envoy"/);
  });

  it("a missing haproxy binary is an error at each engine: haproxy in force, with how to fix it", () => {
    const own = errors(parseFleet(fleet([], "{ engine: haproxy }"), "fleet.yaml", missing));
    assert.equal(own.length, 1);
    assert.match(own[0]!, /^fleet\.yaml:9:24: services\.api\.traffic\.engine: /);
    assert.match(own[0]!, /apt-get install haproxy/);
    assert.match(own[0]!, /HOMEOSTAT_HAPROXY/);

    const inherited = errors(
      parseFleet(fleet(["traffic: { engine: haproxy }"], null), "fleet.yaml", missing),
    );
    assert.equal(inherited.length, 1, inherited.join("\n"));
    assert.match(inherited[0]!, /^fleet\.yaml:3:\d+: defaults\.traffic\.engine: /);
  });

  it("the same file passes when the binary is there, and when no machine check is asked for", () => {
    assert.ok(parseFleet(fleet([], "{ engine: haproxy }"), "fleet.yaml", present).ok);
    assert.ok(parseFleet(fleet([], "{ engine: haproxy }"), "fleet.yaml").ok);
    // Nobody uses haproxy: the binary is not even looked for.
    let asked = false;
    const result = parseFleet(fleet([], null), "fleet.yaml", {
      haproxyBinary: () => {
        asked = true;
        return null;
      },
    });
    assert.ok(result.ok);
    assert.equal(asked, false);
  });
});
