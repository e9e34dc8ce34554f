/**
 * A partial recovery is named, never shown as healthy: one instance left on an old config.
 *
 * How it happens for real: the controller dies (SIGKILL), the fleet file is edited under the same
 * release key (a changed env), one instance dies too while no controller runs. The next `up`
 * adopts the live instance as it is (same pid: adoption never restarts a running process) and
 * starts the dead one from the edited file. Both run "v1"; only the recorded launch facts (config
 * hash) tell that the adopted one runs the old config.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { isProcessAlive } from "../../src/lib/procStat.ts";
import { demoFleetYaml, freePortRange, readyStatus, sandboxesCleanedAfter } from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";

const newSandbox = sandboxesCleanedAfter();

interface Recovery {
  state: string;
  reasons: string[];
}
interface Doc {
  services: {
    name: string;
    state: string;
    recovery: Recovery;
    instances: { name: string; state: string; pid: number | null; recovery: Recovery }[];
  }[];
  recovery: Recovery;
  partial: { kind: string; service?: string; instances?: string[]; detail: string }[];
}
interface Incident {
  id: number;
  instance: string;
  status: string;
  verifiedAt?: number | null;
  timeline?: { phase: string; detail: string }[];
}

test("one instance left on an old config is named in partial and the service is not healthy", async () => {
  const box = await newSandbox();
  const basePort = await freePortRange(4);
  const fleet = (mode: string) =>
    demoFleetYaml({ services: [{ name: "api", replicas: 2, basePort, env: { APP_MODE_NOTE: mode } }] });
  const file = box.file("fleet.yaml", fleet("before"));
  const first = box.up(file);
  const before = (await readyStatus(box, 2)) as unknown as Doc;
  assert.deepEqual(before.partial, [], "a fresh fleet has nothing partial");
  assert.equal(before.services[0]?.recovery.state, "healthy");
  const pids = new Map(before.services.flatMap((s) => s.instances).map((i) => [i.name, i.pid!]));

  first.child.kill("SIGKILL");
  await first.exited;
  process.kill(pids.get("api-0")!, "SIGKILL");
  await waitFor(() => !isProcessAlive(pids.get("api-0")!, null), { what: "api-0 gone" });
  box.file("fleet.yaml", fleet("after")); // same version key v1, another env: another config

  box.up(file);
  const status = await waitFor(
    async () => {
      const doc = await box.get<Doc>("/v1/status");
      const api = doc.services[0];
      const ready = api?.instances.every((i) => i.state === "ready") ?? false;
      return ready && doc.partial.some((p) => p.kind === "old-config") ? doc : null;
    },
    { timeoutMs: 30_000, what: "both instances ready and the old config named" },
  );
  const api = status.services[0]!;
  const byName = new Map(api.instances.map((i) => [i.name, i]));
  assert.equal(byName.get("api-1")?.pid, pids.get("api-1"), "api-1 was adopted, still the old process");
  assert.notEqual(
    byName.get("api-0")?.pid,
    pids.get("api-0"),
    "api-0 was started again, from the edited file",
  );

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

  // api-0's incident (lost while the controller was down) recovered, but cannot be verified
  // while api-1 runs the old config: it stabilizes and says why it waits.
  const incident = await waitFor(
    async () => {
      const list = (await box.get<{ incidents: Incident[] }>("/v1/incidents")).incidents;
      const open = list.find((i) => i.instance === "api-0" && i.status === "open");
      if (open === undefined) return null;
      const full = (await box.get<{ incident: Incident }>(`/v1/incidents/${open.id}`)).incident;
      return full.timeline?.some((t) => t.phase === "stabilized") ? full : null;
    },
    { timeoutMs: 20_000, what: "api-0's incident stabilized and waiting for the gate" },
  );
  const stabilized = incident.timeline!.find((t) => t.phase === "stabilized")!;
  assert.match(stabilized.detail, /not verified: not converged: api-1 on an old config of v1/);
  assert.equal(incident.verifiedAt ?? null, null);
  assert.ok(!incident.timeline!.some((t) => t.phase === "verified"));

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
