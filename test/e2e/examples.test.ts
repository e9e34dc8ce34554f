/**
 * The shipped examples run as documented: the shop fleet (what `npm start` runs) and a fleet of a
 * program nobody here wrote (python3 -m http.server).
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, test } from "node:test";
import { allInstances, REPO, type Sandbox, type StatusDoc, sandbox } from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";

const boxes: Sandbox[] = [];
after(async () => {
  await Promise.all(boxes.map((b) => b.cleanup()));
});

async function runExample(file: string, count: number): Promise<{ box: Sandbox; status: StatusDoc }> {
  const box = await sandbox();
  boxes.push(box);
  box.up(`${REPO}/${file}`, ["--state-dir", box.stateDir]);
  const status = await waitFor(
    async () => {
      const s = await box.get<StatusDoc>("/v1/status");
      const instances = allInstances(s);
      return instances.length === count && instances.every((i) => i.state === "ready") ? s : null;
    },
    { timeoutMs: 40_000, what: `${file}: ${count} ready instances` },
  );
  return { box, status };
}

test("the shop example: every instance ready, three zones per service", async () => {
  const { box } = await runExample("examples/shop/fleet.yaml", 6);
  // The shop declares security invariants: a service whose instances have just become ready is
  // not healthy until they have been probed too (unchecked is never ok), a moment later.
  const status = await waitFor(
    async () => {
      const s = await box.get<StatusDoc>("/v1/status");
      return s.services.every((service) => service.state === "healthy") ? s : null;
    },
    { timeoutMs: 10_000, what: "both services healthy, invariants probed" },
  );
  assert.deepEqual(
    status.services.map((s) => [s.name, s.state, s.ready]),
    [
      ["catalog", "healthy", 3],
      ["checkout", "healthy", 3],
    ],
  );
  for (const service of status.services) {
    assert.deepEqual(service.instances.map((i) => i.zone).sort(), ["zone-a", "zone-b", "zone-c"]);
  }
  // The CLI prints the same document with --json.
  const cli = await box.cli(["status", "--json", "--api-port", String(box.apiPort)]);
  assert.equal(cli.code, 0, cli.stderr);
  const doc = JSON.parse(cli.stdout) as StatusDoc;
  assert.equal(allInstances(doc).filter((i) => i.state === "ready").length, 6, cli.stdout.slice(0, 2000));
  const down = await box.cli(["down", "--api-port", String(box.apiPort)]);
  assert.equal(down.code, 0, down.stderr);
});

const hasPython = spawnSync("python3", ["--version"]).status === 0;

test("any command can be a service: python3 -m http.server", {
  skip: hasPython ? false : "python3 missing",
}, async () => {
  const { box, status } = await runExample("examples/any-command/fleet.yaml", 3);
  assert.equal(status.services[0]?.state, "healthy");
  const port = status.services[0]!.instances[0]!.port;
  const response = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(response.status, 200);
  await response.body?.cancel();
  const down = await box.cli(["down", "--api-port", String(box.apiPort)]);
  assert.equal(down.code, 0, down.stderr);
});
