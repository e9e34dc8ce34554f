/**
 * A partial recovery is named, never shown as healthy: one instance left on an old config.
 *
 * How it happens for real: a release's config is changed in place (`homeostat apply
 * --allow-in-place`: same version name, another env) and rolled one instance at a time behind
 * readiness, and the first instance rolled does not come back ready on the new config. The roll
 * stops there, as it should: one instance runs the new config (not ready), the other still runs
 * the old one. Both are "v1"; only the recorded launch facts (config hash) tell them apart.
 * The roll waits that way up to the service's deploy.stepDeadline (the demo fleet's default, 2m)
 * before the revision fails and api-0 goes back; this test looks long before that.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  demoFleetYaml,
  freePortRange,
  type RecoveryDoc,
  readyStatus,
  sandboxesCleanedAfter,
} from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";

const newSandbox = sandboxesCleanedAfter();

interface Doc {
  services: {
    name: string;
    state: string;
    recovery: RecoveryDoc;
    instances: { name: string; state: string; pid: number | null; recovery: RecoveryDoc }[];
  }[];
  recovery: RecoveryDoc;
  partial: { kind: string; service?: string; instances?: string[]; detail: string }[];
}

test("one instance left on an old config is named in partial and the service is not healthy", async () => {
  const box = await newSandbox();
  const basePort = await freePortRange(4);
  const fleet = (env: Record<string, string>) =>
    demoFleetYaml({ services: [{ name: "api", replicas: 2, basePort, env }] });
  const file = box.file("fleet.yaml", fleet({ APP_MODE_NOTE: "before" }));
  box.up(file);
  const before = (await readyStatus(box, 2)) as unknown as Doc;
  assert.deepEqual(before.partial, [], "a fresh fleet has nothing partial");
  assert.equal(before.services[0]?.recovery.state, "healthy");
  const pids = new Map(before.services.flatMap((s) => s.instances).map((i) => [i.name, i.pid!]));

  // The new config under the same version name never gets ready: the roll stops after one.
  box.file("fleet.yaml", fleet({ APP_MODE_NOTE: "after", FAULT_READY_FAIL: "1" }));
  const apply = await box.cli([
    "apply",
    file,
    "--allow-in-place",
    "--no-wait",
    "--reason",
    "e2e: a config that never gets ready",
    "--api-port",
    String(box.apiPort),
  ]);
  assert.equal(apply.code, 0, apply.stderr + apply.stdout);

  const status = await waitFor(
    async () => {
      const doc = await box.get<Doc>("/v1/status");
      const api = doc.services[0];
      const rolled = api?.instances.find((i) => i.name === "api-0");
      const rolledAgain = rolled !== undefined && rolled.pid !== null && rolled.pid !== pids.get("api-0");
      return rolledAgain && doc.partial.some((p) => p.kind === "old-config") ? doc : null;
    },
    { timeoutMs: 30_000, what: "api-0 rolled to the new config and api-1 named on the old one" },
  );
  const api = status.services[0]!;
  const byName = new Map(api.instances.map((i) => [i.name, i]));
  assert.equal(byName.get("api-1")?.pid, pids.get("api-1"), "api-1 was not rolled: still the old process");
  assert.notEqual(byName.get("api-0")?.state, "ready", "the new config does not get ready");

  const oldConfig = status.partial.filter((p) => p.kind === "old-config");
  assert.deepEqual(
    oldConfig.map((p) => [p.service, p.instances]),
    [["api", ["api-1"]]],
  );
  assert.match(oldConfig[0]!.detail, /api-1 on an old config of v1/);
  assert.equal(byName.get("api-1")?.recovery.state, "degraded");
  assert.notEqual(api.recovery.state, "healthy");
  assert.notEqual(api.recovery.state, "verified");
  assert.notEqual(api.state, "healthy", "the older summary field does not say healthy either");
  assert.ok(
    api.recovery.reasons.some((r) => /api-1 on an old config of v1/.test(r)),
    api.recovery.reasons.join("\n"),
  );
  assert.notEqual(status.recovery.state, "healthy");

  // The apply says what it waits for, and is not called done.
  const progress = await box.get<{ state?: string; waiting?: string[] }>("/v1/apply");
  assert.equal(progress.state, "applying", JSON.stringify(progress));

  // The CLI says it plainly.
  const text = await box.cli(["status", "--api-port", String(box.apiPort)]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /PARTIAL old-config \(api\): api-1 on an old config of v1/);
  assert.doesNotMatch(text.stdout, /^api: healthy/m);
  const json = JSON.parse(
    (await box.cli(["status", "--json", "--api-port", String(box.apiPort)])).stdout,
  ) as Doc;
  assert.ok(json.partial.some((p) => p.kind === "old-config" && p.instances?.includes("api-1")));
});
