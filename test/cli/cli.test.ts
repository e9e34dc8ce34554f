/** The CLI's contract: help everywhere, exit codes, `validate` and `schema` output. */

import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { cli, freePort, REPO } from "../helpers/e2e.ts";

const BROKEN = join(REPO, "test/fixtures/specs/broken");

describe("homeostat validate", () => {
  test("the example fleets are valid", async () => {
    for (const file of ["examples/shop/fleet.yaml", "examples/any-command/fleet.yaml"]) {
      const result = await cli(["validate", file]);
      assert.equal(result.code, 0, `${file}: ${result.stdout}${result.stderr}`);
      assert.equal(result.stdout.trim(), "ok");
    }
  });

  const broken = readdirSync(BROKEN).filter((f) => f.endsWith(".yaml"));
  test("there are at least 10 kinds of broken fleet file", () => {
    assert.ok(broken.length >= 10, `${broken.length} fixtures`);
  });
  for (const name of broken) {
    test(`broken: ${name} → file:line:col errors, exit 1`, async () => {
      const file = join("test/fixtures/specs/broken", name);
      const result = await cli(["validate", file]);
      assert.equal(result.code, 1, result.stdout + result.stderr);
      const lines = result.stdout.trim().split("\n");
      assert.ok(lines.length >= 1);
      for (const line of lines) {
        // "FILE:LINE:COL: PATH: MESSAGE", or "FILE:LINE:COL: MESSAGE" for YAML syntax errors (no path yet).
        assert.match(line, new RegExp(`^${file.replaceAll(".", "\\.")}:\\d+:\\d+: .+`), line);
      }
    });
  }

  test("--json lists the errors with positions", async () => {
    const result = await cli(["validate", join("test/fixtures/specs/broken", broken[0]!), "--json"]);
    assert.equal(result.code, 1);
    const doc = JSON.parse(result.stdout) as {
      ok: boolean;
      errors: { line: number; col: number; path: string }[];
    };
    assert.equal(doc.ok, false);
    assert.ok(doc.errors.length > 0 && doc.errors.every((e) => e.line >= 1 && e.col >= 1));
  });

  test("a missing file is a user error naming the file", async () => {
    const result = await cli(["validate", "no/such/fleet.yaml"]);
    assert.equal(result.code, 1);
    assert.match(result.stdout + result.stderr, /no\/such\/fleet\.yaml/);
  });
});

describe("homeostat CLI", () => {
  test("--help works for the program and every command", async () => {
    const top = await cli(["--help"]);
    assert.equal(top.code, 0);
    const commands = [
      "up",
      "down",
      "status",
      "events",
      "incidents",
      "traffic",
      "weights",
      "fault",
      "deploy",
      "rollback",
      "plan",
      "releases",
      "check",
      "validate",
      "schema",
    ];
    for (const command of commands) {
      assert.match(top.stdout, new RegExp(`^  ${command} `, "m"));
      const help = await cli([command, "--help"]);
      assert.equal(help.code, 0, command);
      assert.match(help.stdout, new RegExp(`^homeostat ${command}`), command);
    }
  });

  test("an unknown command or option is a usage error (exit 1)", async () => {
    const unknown = await cli(["frobnicate"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    const badOption = await cli(["status", "--colour"]);
    assert.equal(badOption.code, 1);
    assert.match(badOption.stderr, /HS_USAGE/);
    const badPort = await cli(["status", "--api-port", "http"]);
    assert.equal(badPort.code, 1);
    assert.match(badPort.stderr, /--api-port: expected a port number/);
  });

  test("status without a controller explains what to do (exit 1)", async () => {
    const port = await freePort();
    const result = await cli(["status", "--api-port", String(port)]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /no Homeostat controller answers on http:\/\/127\.0\.0\.1:\d+/);
    assert.match(result.stderr, /homeostat up/);
  });

  test("schema prints a JSON Schema that knows the service keys", async () => {
    const result = await cli(["schema"]);
    assert.equal(result.code, 0);
    const schema = JSON.parse(result.stdout) as Record<string, unknown>;
    assert.match(String(schema.$schema), /json-schema\.org/);
    const text = result.stdout;
    for (const key of ["replicas", "basePort", "releases", "probes", "dependsOn", "restart", "placement"]) {
      assert.ok(text.includes(`"${key}"`), `schema mentions ${key}`);
    }
  });
});
