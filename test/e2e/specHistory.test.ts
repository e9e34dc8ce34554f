/**
 * Spec history and drift end to end, through the real CLI and a real controller: `up` records
 * revision 1; `homeostat diff` lists an edited file's changes by class (exit 1), says nothing of an
 * unchanged one (exit 0) and reports a broken one exactly as `validate` does (exit 2); `history`
 * lists the revision; `status` and `check` say when the file on disk no longer matches it.
 */

import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import {
  DEMO_PROBES,
  demoRelease,
  freePortRange,
  readyStatus,
  type Sandbox,
  sandbox,
} from "../helpers/e2e.ts";

interface SpecChange {
  service: string | null;
  path: string;
  class: string;
  detail: string;
}
interface Revision {
  number: number;
  who: string;
  state: string;
  hash: string;
  summary: string;
  text?: string;
}
interface StatusSpec {
  spec?: { revision: number; hash: string; fileOnDisk: string; file: string };
}

function fleetYaml(basePort: number): string {
  return `version: 1
name: spec-history-e2e
defaults:
${DEMO_PROBES}
  restart: { stopGracePeriod: 2s }
services:
  api:
    replicas: 2
    basePort: ${basePort}
    release: v1
    releases:
${demoRelease("v1")}
  web:
    replicas: 1
    basePort: ${basePort + 10}
    dependsOn: [api]
    release: w1
    releases:
${demoRelease("w1")}
`;
}

describe("spec history, diff and drift", () => {
  let box: Sandbox;
  let file = "";
  let original = "";
  const api = () => ["--api-port", String(box.apiPort)];

  before(async () => {
    box = await sandbox("homeostat-spec-");
    original = fleetYaml(await freePortRange(30));
    file = box.file("fleet.yaml", original);
    box.up(file, ["--state-dir", box.stateDir]);
    await readyStatus(box, 3, () => true, 60_000);
  });
  after(async () => {
    await box?.cleanup();
  });

  test("up records revision 1, by homeostat up, with the file's text", async () => {
    const { revisions } = await box.get<{ revisions: Revision[] }>("/v1/revisions");
    assert.equal(revisions.length, 1);
    assert.deepEqual(
      {
        number: revisions[0]?.number,
        who: revisions[0]?.who,
        state: revisions[0]?.state,
        summary: revisions[0]?.summary,
      },
      { number: 1, who: "homeostat up", state: "applied", summary: "first revision" },
    );
    const first = await box.get<Revision>("/v1/revisions/1");
    assert.equal(first.text, original);
    const spec = await box.get<{ revision: number; file: string; text: string }>("/v1/spec");
    assert.deepEqual([spec.revision, spec.file, spec.text], [1, file, original]);

    const history = await box.cli(["history", ...api()]);
    assert.equal(history.code, 0, history.stderr);
    assert.match(history.stdout, /^REV\s+WHEN\s+WHO\s+STATE\s+HASH\s+REASON\s+CHANGES/m);
    assert.match(
      history.stdout,
      new RegExp(
        `^1\\s+\\S+\\s+homeostat up\\s+applied\\s+${first.hash.slice(0, 12)}\\s+-\\s+first revision`,
        "m",
      ),
    );
    const json = await box.cli(["history", "--json", ...api()]);
    assert.equal((JSON.parse(json.stdout) as { revisions: Revision[] }).revisions[0]?.number, 1);
  });

  test("diff of the unchanged file finds no difference and exits 0; status and check see no drift", async () => {
    const result = await box.cli(["diff", file, ...api()]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /no differences from the applied revision 1/);
    const status = await box.get<StatusSpec>("/v1/status");
    assert.equal(status.spec?.fileOnDisk, "same");
    assert.equal(status.spec?.revision, 1);
    const shown = await box.cli(["status", ...api()]);
    assert.doesNotMatch(shown.stdout, /fleet file changed/);
    const check = await box.cli(["check", "--strict", ...api()]);
    assert.match(check.stdout, /spec: revision 1, fleet file unchanged/);
  });

  test("diff of a broken file prints validate's errors (file:line:col) and exits 2", async () => {
    const broken = box.file("broken.yaml", original.replace("replicas: 2", "replicas: three"));
    const result = await box.cli(["diff", broken, ...api()]);
    assert.equal(result.code, 2, result.stdout + result.stderr);
    const validate = await box.cli(["validate", broken]);
    assert.equal(validate.code, 1);
    assert.match(result.stdout, /broken\.yaml:\d+:\d+: services\.api\.replicas: /);
    assert.equal(result.stdout, validate.stdout);
  });

  test("after an edit: diff lists each change by class and exits 1; status and check report the drift", async () => {
    const edited = original
      .replace("replicas: 2", "replicas: 3")
      .replace("restart: { stopGracePeriod: 2s }", "restart: { stopGracePeriod: 3s }")
      .replace("release: v1\n", "release: v2\n")
      .replace("          APP_VERSION: w1", "          APP_VERSION: w1\n          MODE: edited")
      .replace("    releases:\n", `    releases:\n${demoRelease("v2")}\n`);
    assert.notEqual(edited, original);
    box.file("fleet.yaml", edited);

    const result = await box.cli(["diff", file, "--json", ...api()]);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    const answer = JSON.parse(result.stdout) as {
      ok: boolean;
      revision: number;
      diff: { changes: SpecChange[] };
    };
    assert.equal(answer.revision, 1);
    const classes = answer.diff.changes.map((c) => `${c.class} ${c.path}`);
    for (const expected of [
      "release-switch services.api.release",
      "release-added services.api.releases.v2",
      "scale services.api.replicas",
      "live services.api.restart.stopGracePeriodMs",
      "release-edited services.web.releases.w1.env.MODE",
      "live services.web.restart.stopGracePeriodMs",
    ]) {
      assert.ok(classes.includes(expected), `missing "${expected}" in:\n${classes.join("\n")}`);
    }

    const human = await box.cli(["diff", file, ...api()]);
    assert.equal(human.code, 1);
    const lines = human.stdout.split("\n");
    const apiAt = lines.indexOf("api:");
    const webAt = lines.indexOf("web:");
    assert.ok(apiAt > 0 && webAt > apiAt, human.stdout);
    assert.match(lines.slice(apiAt, webAt).join("\n"), /scale\s+replicas 2 → 3 \(scale up by 1\)/);
    assert.match(
      lines.slice(apiAt, webAt).join("\n"),
      /release-switch\s+release v1 → v2 \(progressive deploy/,
    );
    assert.match(lines.slice(webAt).join("\n"), /release-edited\s+release w1 env\.MODE: \(none\) → "edited"/);
    assert.match(
      human.stdout,
      /change\(s\): 1 release-switch, 1 release-added, 1 release-edited, 1 scale, \d+ live$/m,
    );

    const status = await box.get<StatusSpec>("/v1/status");
    assert.equal(status.spec?.fileOnDisk, "differs");
    const shown = await box.cli(["status", ...api()]);
    assert.match(
      shown.stdout,
      new RegExp(`fleet file changed since revision 1: run \`homeostat diff ${file}\``),
    );
    const check = await box.cli(["check", "--strict", ...api()]);
    assert.match(check.stdout, /fleet file changed since revision 1/);
    assert.equal(check.code, 1, "check --strict fails on drift");

    // Back to the applied text: no drift, no difference.
    box.file("fleet.yaml", original);
    assert.equal((await box.get<StatusSpec>("/v1/status")).spec?.fileOnDisk, "same");
    assert.equal((await box.cli(["diff", file, ...api()])).code, 0);
  });

  test("a missing fleet file is drift too, and diff of it is an error (exit 2)", async () => {
    rmSync(file);
    try {
      assert.equal((await box.get<StatusSpec>("/v1/status")).spec?.fileOnDisk, "missing");
      const shown = await box.cli(["status", ...api()]);
      assert.match(shown.stdout, /fleet file .*fleet\.yaml of revision 1 is missing/);
      const result = await box.cli(["diff", file, ...api()]);
      assert.equal(result.code, 2);
      assert.match(result.stdout, /fleet\.yaml:1:1: cannot read the file/);
    } finally {
      box.file("fleet.yaml", original);
    }
  });
});
