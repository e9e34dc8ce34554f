/** The CLI's contract: help everywhere, exit codes, `validate` and `schema` output. */

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import type { Command } from "../../src/cli/command.ts";
import { main } from "../../src/cli/main.ts";
import { cli, freePort, REPO } from "../helpers/e2e.ts";

const BROKEN = join(REPO, "test/fixtures/specs/broken");
const COMMAND_DIR = join(REPO, "src/cli/commands");

/** Every command the CLI has, in the order its help lists them. */
const EXPECTED_COMMANDS = [
  "up",
  "down",
  "status",
  "events",
  "incidents",
  "traffic",
  "dataplane",
  "weights",
  "deploy",
  "apply",
  "rollback",
  "plan",
  "releases",
  "diff",
  "history",
  "check",
  "zones",
  "failover",
  "failback",
  "stores",
  "switchover",
  "pause",
  "resume",
  "restart",
  "fault",
  "init",
  "validate",
  "schema",
  "token",
  "audit",
];

/** The "Commands:" section of the top-level help: name and summary per line. */
function helpCommands(help: string): { name: string; summary: string }[] {
  const lines = help.split("\n");
  const from = lines.indexOf("Commands:");
  assert.ok(from >= 0, `no "Commands:" section in:\n${help}`);
  const section = lines.slice(from + 1, lines.indexOf("", from));
  return section.map((line) => {
    const match = /^ {2}(\S+) +(\S.*)$/.exec(line);
    assert.ok(match, `not a command line: ${JSON.stringify(line)}`);
    return { name: match[1]!, summary: match[2]! };
  });
}

function isCommand(value: unknown): value is Command {
  const c = value as Partial<Command> | null;
  return (
    typeof c === "object" &&
    c !== null &&
    typeof c.name === "string" &&
    typeof c.summary === "string" &&
    typeof c.usage === "string" &&
    typeof c.run === "function"
  );
}

/** Every Command object exported by a module of src/cli/commands. */
async function definedCommands(): Promise<Command[]> {
  const found: Command[] = [];
  for (const file of readdirSync(COMMAND_DIR)
    .filter((f) => f.endsWith(".ts"))
    .sort()) {
    const module = (await import(pathToFileURL(join(COMMAND_DIR, file)).href)) as Record<string, unknown>;
    found.push(...Object.values(module).filter(isCommand));
  }
  return found;
}

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
  test("--help lists every command the CLI has, and each command's --help works", async () => {
    const top = await cli(["--help"]);
    assert.equal(top.code, 0);
    // The help's command list is rendered from the CLI's own command table (src/cli/main.ts).
    const listed = helpCommands(top.stdout);
    // Pinned: a command dropped from the table (so from help) fails here, as does an addition
    // nobody wrote down.
    assert.deepEqual(
      listed.map((c) => c.name),
      EXPECTED_COMMANDS,
    );
    // Every Command the command modules export is in the table, with the same summary: one
    // written but never registered fails here.
    const defined = await definedCommands();
    assert.deepEqual(
      defined.map((c) => c.name).toSorted(),
      EXPECTED_COMMANDS.toSorted(),
      "commands defined in src/cli/commands",
    );
    for (const command of defined) {
      assert.equal(listed.find((c) => c.name === command.name)?.summary, command.summary, command.name);
    }

    for (const command of defined) {
      const help = await cli([command.name, "--help"]);
      assert.equal(help.code, 0, `${command.name} --help: ${help.stderr}`);
      assert.match(help.stdout, new RegExp(`^homeostat ${command.name}\\b`), command.name);
      assert.equal(help.stdout.trimEnd(), command.usage.trimEnd(), `${command.name} --help prints its usage`);
      const lines: string[] = [];
      const io = { out: (line: string) => lines.push(line), err: (line: string) => lines.push(line) };
      assert.equal(await main(["help", command.name], io), 0);
      assert.equal(lines.join("\n"), command.usage, `help ${command.name}`);
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

  test("up refuses combinations it cannot run, before starting anything (exit 1)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "homeostat-cli-"));
    try {
      const fleet = join(dir, "fleet.yaml");
      writeFileSync(
        fleet,
        [
          "version: 1",
          "services:",
          "  api:",
          "    replicas: 1",
          `    basePort: ${await freePort()}`,
          `    port: ${await freePort()}`,
          "    traffic: { engine: haproxy }",
          "    release: v1",
          "    releases: { v1: { command: node } }",
          "",
        ].join("\n"),
      );
      const inProcess = await cli([
        "up",
        fleet,
        "--data-plane",
        "in-process",
        "--api-port",
        String(await freePort()),
      ]);
      assert.equal(inProcess.code, 1);
      assert.match(inProcess.stderr, /api use the haproxy engine, which needs --data-plane process/);
      const workers = await cli(["up", fleet, "--data-plane", "in-process", "--data-plane-workers", "2"]);
      assert.equal(workers.code, 1);
      assert.match(workers.stderr, /several data-plane workers need --data-plane process/);
      assert.ok(!existsSync(join(dir, ".homeostat")), "no state was written");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
