/**
 * Automation brakes end to end (issue 15, docs/brakes.md): the real CLI, a real controller, real
 * instances of the demo app, real signals. Paused, a killed instance is not restarted — the hold is
 * an event with its reason, the incident escalates, status shows it — and resuming restarts it; a
 * person's restart needs --override while paused; the pause outlives the controller; the
 * automated-restart rate limit holds the one past the limit; the blast radius holds the second of
 * two hung instances until the first one's replacement is ready; a failing canary's automatic
 * rollback is held while paused (the deploy stays where it is) and carried out on resume.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BAD_ERROR_RATE, canaryFleetUnderLoad, type VersionLoad } from "../helpers/canaryFleet.ts";
import {
  allInstances,
  demoFleetYaml,
  demoRelease,
  type EventDoc,
  freePortRange,
  killController,
  readyStatus,
  type Sandbox,
  type StatusDoc,
  sandboxesCleanedAfter,
} from "../helpers/e2e.ts";
import { apiCli, telling } from "../helpers/fleetControl.ts";
import { waitFor } from "../helpers/waitFor.ts";

const newSandbox = sandboxesCleanedAfter();

interface Held {
  kind: string;
  target: string;
  rule: string;
  reason: { code: string; message: string };
  since: number;
}

interface BrakesDoc {
  paused: { by: string; reason: string; since: number } | null;
  usage: {
    services: { service: string; restarts: { used: number; max: number } }[];
    fleet: { rollbacks: { used: number; max: number } };
  };
  held: Held[];
}

type Status = StatusDoc & { brakes: BrakesDoc; controller: { now: number; pid: number } };

interface Incident {
  id: number;
  instance: string;
  status: string;
  timeline: { phase: string; detail: string }[];
}

async function status(box: Sandbox): Promise<Status> {
  return await box.get<Status>("/v1/status");
}

async function events(
  box: Sandbox,
  type: string,
): Promise<(EventDoc & { data?: Record<string, unknown> })[]> {
  const { events } = await box.get<{ events: (EventDoc & { data?: Record<string, unknown> })[] }>(
    "/v1/events?limit=5000",
  );
  return events.filter((e) => e.type === type);
}

function instance(s: StatusDoc, name: string) {
  const found = allInstances(s).find((i) => i.name === name);
  assert.ok(found, `${name} in status`);
  return found;
}

/** The open incident of `name`, with its timeline. */
async function openIncident(box: Sandbox, name: string): Promise<Incident | null> {
  const { incidents } = await box.get<{ incidents: Incident[] }>("/v1/incidents?status=open&limit=100");
  const open = incidents.find((i) => i.instance === name);
  if (open === undefined) return null;
  return (await box.get<{ incident: Incident }>(`/v1/incidents/${open.id}`)).incident;
}

/** SIGKILL the process of `name` and wait until the controller has seen it exit. */
async function kill(box: Sandbox, name: string): Promise<void> {
  const pid = instance(await status(box), name).pid;
  assert.ok(pid, `${name} has a pid`);
  process.kill(pid, "SIGKILL");
  await waitFor(async () => instance(await status(box), name).pid !== pid, {
    timeoutMs: 10_000,
    what: `${name} seen dead`,
  });
}

/** Wait until `name` is ready again with a process other than `than`. */
async function readyAgain(box: Sandbox, name: string, what: string): Promise<Status> {
  return await waitFor(
    async () => {
      const s = await status(box);
      const i = instance(s, name);
      return i.state === "ready" && i.pid !== null ? s : null;
    },
    { timeoutMs: 30_000, what },
  );
}

/** The hold of `target` in the status, once it has lasted at least `forMs` by the controller's clock. */
async function heldFor(box: Sandbox, target: string, rule: string, forMs: number): Promise<Held> {
  return await waitFor(
    async () => {
      const s = await status(box);
      const held = s.brakes.held.find((h) => h.target === target && h.rule === rule);
      return held !== undefined && s.controller.now - held.since >= forMs ? held : null;
    },
    { timeoutMs: 20_000, what: `${target} held (${rule}) for ${forMs} ms` },
  );
}

describe("pause, resume, manual actions and the restart rate limit", () => {
  test("a paused controller holds restarts, a person overrides, resume restarts, the limit holds the third", async () => {
    const box = await newSandbox();
    const basePort = await freePortRange(6);
    // At most 2 automated restarts of api per 10 minutes.
    const yaml = demoFleetYaml({ services: [{ name: "api", replicas: 3, basePort }] }).replace(
      "    placement:",
      "    brakes: { restarts: { max: 2, window: 10m } }\n    placement:",
    );
    assert.match(yaml, /brakes: \{ restarts/);
    const controller = box.up(box.file("fleet.yaml", yaml));
    await telling(controller, async () => {
      await readyStatus(box, 3);

      // ── API refusals, with reasons ──
      const noReason = await box.api("POST", "/v1/pause", {});
      assert.equal(noReason.status, 400);
      assert.match(
        ((await noReason.json()) as { error: { message: string } }).error.message,
        /pause needs a reason/,
      );
      const blank = await box.api("POST", "/v1/pause", { reason: "  " });
      assert.equal(blank.status, 400);
      const notPaused = await box.api("POST", "/v1/resume", {});
      assert.equal(notPaused.status, 409);
      const body = (await notPaused.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, "HS_CONFLICT");
      assert.match(body.error.message, /automation is not paused: there is nothing to resume/);
      const cliNoReason = await apiCli(box, "pause");
      assert.equal(cliNoReason.code, 1);
      assert.match(cliNoReason.stderr, /--reason TEXT is required/);

      // ── Pause ──
      const paused = await apiCli(box, "pause", "--reason", "e2e drill: db migration");
      assert.equal(paused.code, 0, paused.stderr);
      assert.match(paused.stdout, /automation paused by admin .*: e2e drill: db migration/);
      const again = await box.api("POST", "/v1/pause", { reason: "second" });
      assert.equal(again.status, 409);
      assert.match(
        ((await again.json()) as { error: { message: string } }).error.message,
        /already paused by admin .*\(e2e drill: db migration\)/,
      );
      const pausedStatus = await status(box);
      assert.equal(pausedStatus.brakes.paused?.by, "admin");
      assert.equal(pausedStatus.brakes.paused?.reason, "e2e drill: db migration");

      // ── Killed while paused: not restarted, held with its reason, the incident escalated ──
      await kill(box, "api-0");
      await kill(box, "api-1");
      const held = await heldFor(box, "api-0", "paused", 1_500);
      assert.equal(held.reason.code, "automation-paused");
      assert.match(held.reason.message, /automated restart of api-0 held: automation is paused by admin/);
      await heldFor(box, "api-1", "paused", 0);
      const stillDead = await status(box);
      assert.equal(instance(stillDead, "api-0").pid, null, "api-0 was not restarted while paused");
      assert.notEqual(instance(stillDead, "api-0").state, "ready");
      const heldEvents = await events(box, "automation.held");
      assert.ok(
        heldEvents.some((e) => e.instance === "api-0" && e.reason === "automation-paused"),
        "an automation.held event with its reason",
      );
      const incident = await waitFor(
        async () => {
          const i = await openIncident(box, "api-0");
          return i?.timeline.some((t) => t.phase === "escalated") ? i : null;
        },
        { what: "api-0's incident escalated" },
      );
      assert.match(incident.timeline.find((t) => t.phase === "escalated")!.detail, /automation is paused/);
      assert.ok(
        (await events(box, "incident.escalated")).some((e) => e.instance === "api-0"),
        "incident.escalated event",
      );
      const text = await apiCli(box, "status");
      assert.match(text.stdout, /automation: PAUSED by admin since .*e2e drill: db migration/);
      assert.match(text.stdout, /HELD restart of api-0 \(paused\)/);

      // ── A person's restart: refused without --override, accepted with it (and audited) ──
      const refused = await apiCli(box, "restart", "api-0");
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /restart of api-0 refused: automation is paused by admin.*\[HS_PAUSED\]/);
      const noWhy = await apiCli(box, "restart", "api-0", "--override");
      assert.equal(noWhy.code, 1);
      assert.match(noWhy.stderr, /--override needs --reason/);
      const apiNoWhy = await box.api("POST", "/v1/instances/api-0/restart", { override: true });
      assert.equal(apiNoWhy.status, 400);
      const overridden = await apiCli(box, "restart", "api-0", "--override", "--reason", "hand fix");
      assert.equal(overridden.code, 0, overridden.stderr);
      await readyAgain(box, "api-0", "api-0 restarted by hand");
      assert.equal(instance(await status(box), "api-1").pid, null, "api-1 is still held");
      const override = (await events(box, "automation.overridden")).at(-1);
      assert.match(override?.message ?? "", /admin overrode the pause .* for the restart of api-0: hand fix/);
      const { audit } = await box.get<{ audit: { url: string; status: number; reason: string | null }[] }>(
        "/v1/audit?limit=20",
      );
      assert.ok(
        audit.some(
          (a) => a.url === "/v1/instances/api-0/restart" && a.status === 202 && a.reason === "hand fix",
        ),
        "the override is in the audit trail with its reason",
      );
      // A manual action of another kind is refused the same way.
      const deploy = await box.api("POST", "/v1/apply", { revision: 1 });
      assert.equal(deploy.status, 409);
      assert.equal(((await deploy.json()) as { error: { code: string } }).error.code, "HS_PAUSED");

      // ── The pause outlives the controller ──
      const since = (await status(box)).brakes.paused?.since;
      await killController(box, "the controller gone");
      const second = box.up(box.file("fleet.yaml", yaml));
      await telling(second, async () => {
        const after = await waitFor(() => status(box).catch(() => null), {
          timeoutMs: 30_000,
          what: "API back",
        });
        assert.deepEqual(after.brakes.paused, { by: "admin", reason: "e2e drill: db migration", since });
        await heldFor(box, "api-1", "paused", 500);
        assert.equal(
          instance(await status(box), "api-1").pid,
          null,
          "still not restarted by the new controller",
        );

        // ── Resume: the held restart goes ahead ──
        const resumed = await apiCli(box, "resume", "--reason", "migration done");
        assert.equal(resumed.code, 0, resumed.stderr);
        assert.match(resumed.stdout, /automation resumed \(it was paused by admin/);
        await readyAgain(box, "api-1", "api-1 restarted after resume");
        assert.ok((await events(box, "automation.resumed")).length >= 1);
        assert.ok(
          (await events(box, "automation.released")).some((e) => e.instance === "api-1"),
          "the hold was released",
        );
        const afterResume = await status(box);
        assert.equal(afterResume.brakes.paused, null);
        assert.equal(afterResume.brakes.usage.services[0]?.restarts.used, 1, "api-1's restart counted");
        const twice = await box.api("POST", "/v1/resume", {});
        assert.equal(twice.status, 409);

        // ── Rate limit: 2 automated restarts per 10 min; the third is held ──
        await readyStatus(box, 3);
        await kill(box, "api-2");
        await readyAgain(box, "api-2", "api-2's automated restart (the 2nd)");
        await kill(box, "api-2");
        const limited = await heldFor(box, "api-2", "restart-rate", 1_000);
        assert.equal(limited.reason.code, "brake-rate-limit");
        assert.match(limited.reason.message, /api had 2 automated restarts in the last 10 min \(limit 2\)/);
        assert.equal(instance(await status(box), "api-2").pid, null, "the 3rd automated restart was held");
        assert.ok(
          (await events(box, "automation.held")).some(
            (e) => e.instance === "api-2" && e.reason === "brake-rate-limit",
          ),
        );
        // Not paused: a person's restart needs no override, and is not counted.
        const byHand = await apiCli(box, "restart", "api-2", "--reason", "past the limit");
        assert.equal(byHand.code, 0, byHand.stderr);
        await readyAgain(box, "api-2", "api-2 restarted by hand");
        assert.equal((await status(box)).brakes.usage.services[0]?.restarts.used, 2);
      });
    });
  });
});

describe("blast radius", () => {
  test("two instances hung at once: the second is replaced only once the first one's replacement is ready", async () => {
    const box = await newSandbox();
    const basePort = await freePortRange(6);
    // 50 % of 3 instances: one at a time. Liveness: 3 × 200 ms.
    const yaml = demoFleetYaml({ services: [{ name: "api", replicas: 3, basePort }] }).replace(
      "    placement:",
      "    brakes: { blastRadius: 50% }\n    placement:",
    );
    const controller = box.up(box.file("fleet.yaml", yaml));
    await telling(controller, async () => {
      const ready = await readyStatus(box, 3);
      const pids = ["api-0", "api-1"].map((name) => instance(ready, name).pid!);
      const since = Date.now();
      for (const pid of pids) process.kill(pid, "SIGSTOP");
      try {
        // One of the two is stopped and replaced; the other is held by the blast radius.
        const held = await waitFor(
          async () => (await events(box, "automation.held")).find((e) => e.reason === "brake-blast-radius"),
          { timeoutMs: 20_000, what: "a stop held by the blast radius" },
        );
        assert.ok(held.instance === "api-0" || held.instance === "api-1");
        assert.equal(held.data?.rule, "blast-radius-service");
        assert.match(
          held.message,
          /automated restart of api-[01] held: it would act on 2 of api's 3 instances at once .* over its blast radius of 50 % = 1; 1 still being replaced/,
        );
        const first = held.instance === "api-0" ? "api-1" : "api-0";
        // The hold lifts once the first one's replacement is ready; then the second is replaced.
        const released = await waitFor(
          async () => (await events(box, "automation.released")).find((e) => e.instance === held.instance),
          { timeoutMs: 30_000, what: `${held.instance} released` },
        );
        const firstReady = (await events(box, "instance.health")).find(
          (e) => e.instance === first && e.at >= since && /→ ready/.test(e.message),
        );
        assert.ok(firstReady, `${first}'s replacement became ready`);
        assert.ok(released.at >= firstReady.at, "released only after the first replacement was ready");
        await readyStatus(box, 3);
        const stops = (await events(box, "instance.stopped")).filter((e) => e.at >= since);
        assert.deepEqual(
          stops.map((e) => e.instance),
          [first, held.instance],
          "never both stopped at once: one, then the other",
        );
        const escalated = (await events(box, "incident.escalated")).find((e) => e.instance === held.instance);
        assert.ok(escalated, "the held instance's incident escalated");
      } finally {
        for (const pid of pids) {
          try {
            process.kill(pid, "SIGCONT");
          } catch {
            // replaced: gone
          }
        }
      }
    });
  });
});

describe("automatic rollback", () => {
  let load: VersionLoad | undefined;

  test("a failing canary's rollback is held while paused, the deploy stays where it is, and resume rolls it back", async (t) => {
    t.after(async () => {
      await load?.stop();
    });
    const box = await newSandbox();
    ({ load } = await canaryFleetUnderLoad(box, {
      name: "brakes-rollback",
      releases: [demoRelease("v1"), demoRelease("v2-bad", { FAULT_ERROR_RATE: String(BAD_ERROR_RATE) })],
      serving: "the proxy serving v1",
    }));
    type Rollout = {
      finished: boolean;
      state: { to: string; phase: string; held?: { brake?: string; cause: string } };
    };
    const rollout = async () =>
      (await box.get<{ active: string; rollouts: Rollout[] }>("/v1/services/api/releases")).rollouts.find(
        (r) => r.state.to === "v2-bad",
      );

    assert.equal((await apiCli(box, "pause", "--reason", "change freeze")).code, 0);
    const refused = await apiCli(box, "deploy", "api", "v2-bad");
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /deploy of api v2-bad refused: automation is paused .*\[HS_PAUSED\]/);
    assert.equal(await rollout(), undefined, "nothing started");
    const deploy = await apiCli(box, "deploy", "api", "v2-bad", "--override", "--reason", "hotfix test");
    assert.equal(deploy.code, 0, deploy.stderr);

    // The canary fails its analysis; the machine wants to roll back; the pause holds it.
    const held = await waitFor(
      async () => (await events(box, "automation.held")).find((e) => e.data?.kind === "rollback"),
      { timeoutMs: 60_000, what: "the automatic rollback held" },
    );
    assert.equal(held.reason, "automation-paused");
    assert.match(held.message, /automated rollback of api held: automation is paused/);
    const frozen = await rollout();
    assert.equal(frozen?.finished, false);
    assert.equal(frozen?.state.held?.brake, "paused");
    assert.notEqual(frozen?.state.phase, "rolling-back", "the deploy stays where it is");
    const s = await status(box);
    assert.ok(s.brakes.held.some((h) => h.kind === "rollback" && h.target === "api"));

    // Resume: the rollback the machine decided goes ahead, and the deploy ends rolled back.
    assert.equal((await apiCli(box, "resume")).code, 0);
    const done = await waitFor(
      async () => {
        const r = await rollout();
        return r?.finished ? r : null;
      },
      { timeoutMs: 45_000, what: "the held rollback carried out" },
    );
    assert.equal(done.state.phase, "rolled-back");
    assert.equal((await box.get<{ active: string }>("/v1/services/api/releases")).active, "v1");
    assert.ok(
      (await events(box, "automation.released")).some((e) => e.data?.kind === "rollback"),
      "the hold was released",
    );
    assert.equal(
      (await status(box)).brakes.usage.fleet.rollbacks.used,
      1,
      "counted as an automated rollback",
    );
  });
});
