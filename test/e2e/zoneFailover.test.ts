/**
 * Zone failover end to end, under load, with the real CLI, controller, data plane and instances:
 * a zone cut off from the data plane is evacuated automatically, capacity is added in the other
 * zones, the minimum is shed (sheddable first, never critical), failback waits out its window and
 * does not flap when the zone fails again inside it, and manual failovers obey the safety rules.
 * The cut is made twice: with the data plane's own fault hook (`POST /v1/faults`), and with a real
 * network partition (nftables rules dropping every packet to and from the zone's ports).
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  healOrphanedPartitions,
  type NetPartition,
  netPartitionUnavailable,
  partitionPorts,
} from "../../bench/common/netPartition.ts";
import {
  APP,
  type Controller,
  freePort,
  freePortRange,
  NODE,
  type Sandbox,
  sandbox,
  waitForServing,
} from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";

/** Declared capacity per instance; the load below is ~100 rps on three instances. */
const CAPACITY_RPS = 50;
const RATE_RPS = 100;

/** The fleet's retry settings, and the proxy defaults they leave (docs/data-plane.md, spec/schema.ts). */
const ATTEMPTS = 3;
const PER_TRY_TIMEOUT_MS = 300;
const RETRY_BACKOFF_MAX_MS = 250;
const QUEUE_TIMEOUT_MS = 1_000;
/**
 * The longest a request may take through the data plane: every attempt to its deadline, the
 * longest backoff between them, and the longest wait for admission; plus 2 s for a noisy 2-core
 * machine. A request not answered by then counts as failed.
 */
const REQUEST_BOUND_MS =
  ATTEMPTS * PER_TRY_TIMEOUT_MS + (ATTEMPTS - 1) * RETRY_BACKOFF_MAX_MS + QUEUE_TIMEOUT_MS + 2_000;

interface FleetOptions {
  /** capacity.maxReplicas (default: 2 × replicas, the spare bank). */
  maxReplicas?: number;
  /**
   * An exec readiness check that does not cross the network (a host-local agent's view): a
   * network partition is then seen by the zone probe and the data plane, not by the instance probes.
   */
  localReadiness?: boolean;
}

function fleetYaml(base: number, front: number, options: FleetOptions = {}): string {
  const release = (version: string) =>
    [
      `      ${version}:`,
      `        command: ${JSON.stringify(NODE)}`,
      `        args: [${JSON.stringify(APP)}, --port, "{port}", --name, "{instance}"]`,
    ].join("\n");
  return `version: 1
name: zone-failover-e2e
hosts:
  host-a: { zone: zone-a }
  host-b: { zone: zone-b }
  host-c: { zone: zone-c }
failover:
  automatic: true
  confirm: 1s
  stepPercent: 25
  stepInterval: 1s
  stabilization: 6s
  minInterval: 0s
defaults:
  probes:
    startup: { http: { path: /healthz }, interval: 100ms, timeout: 100ms, failureThreshold: 100 }
    readiness: { ${options.localReadiness === true ? "exec: { command: /bin/true }" : "http: { path: /ready }"}, interval: 200ms, timeout: 150ms, failureThreshold: 2 }
services:
  api:
    replicas: 3
    basePort: ${base}
    port: ${front}
    placement: { zones: [zone-a, zone-b, zone-c] }
    traffic:
      retries: { attempts: ${ATTEMPTS}, perTryTimeout: ${PER_TRY_TIMEOUT_MS}ms }
    capacity: { rps: ${CAPACITY_RPS}, targetUtilization: 80%${options.maxReplicas === undefined ? "" : `, maxReplicas: ${options.maxReplicas}`} }
    release: v1
    releases:
${release("v1")}
${release("v2")}
`;
}

type Criticality = "critical" | "default" | "sheddable";

interface Outcome {
  at: number;
  criticality: Criticality;
  status: number;
  shedReason: string | null;
}

/** Open-loop load with a fixed mix: 20 % critical, 50 % default, 30 % sheddable. */
function startLoad(front: number): { outcomes: Outcome[]; stop(): Promise<void> } {
  const outcomes: Outcome[] = [];
  const pending = new Set<Promise<void>>();
  let n = 0;
  const timer = setInterval(() => {
    for (let i = 0; i < RATE_RPS / 20; i++) {
      const k = n++ % 10;
      const criticality: Criticality = k < 2 ? "critical" : k < 7 ? "default" : "sheddable";
      const at = Date.now();
      const request = fetch(`http://127.0.0.1:${front}/`, {
        headers: { "x-homeostat-criticality": criticality },
        signal: AbortSignal.timeout(REQUEST_BOUND_MS),
      })
        .then(async (r) => {
          const body = await r.text();
          let shedReason: string | null = null;
          if (r.status === 503) {
            try {
              shedReason = (JSON.parse(body) as { reason?: string }).reason ?? null;
            } catch {
              shedReason = null;
            }
          }
          outcomes.push({ at, criticality, status: r.status, shedReason });
        })
        .catch(() => {
          outcomes.push({ at, criticality, status: 0, shedReason: null });
        });
      pending.add(request);
      void request.finally(() => pending.delete(request));
    }
  }, 50);
  return {
    outcomes,
    async stop() {
      clearInterval(timer);
      await Promise.all([...pending]);
    },
  };
}

/**
 * Evidence that shedding took the minimum in the right order: sheddable requests were refused by
 * the failover gate (the settings guarantee it, see the callers), none of default before the first
 * of sheddable, and every announced shedding that touched default had already shed all sheddable.
 */
function assertShedSheddableFirst(outcomes: readonly Outcome[], shedding: readonly EventDoc[]): void {
  const shed = outcomes.filter((o) => o.shedReason === "failover-shed");
  const sheddable = shed.filter((o) => o.criticality === "sheddable");
  const byDefault = shed.filter((o) => o.criticality === "default");
  assert.ok(sheddable.length > 0, `no sheddable request was shed (${byDefault.length} default were)`);
  const firstSheddable = Math.min(...sheddable.map((o) => o.at));
  const firstDefault = Math.min(...byDefault.map((o) => o.at));
  assert.ok(
    firstSheddable <= firstDefault,
    `a default request was shed at ${firstDefault}, before any sheddable one (${firstSheddable})`,
  );
  assert.ok(
    shedding.some((e) => (e.data.shed?.sheddable ?? 0) > 0),
    `no failover.shedding event shed sheddable traffic: ${JSON.stringify(shedding.map((e) => e.data.shed))}`,
  );
  for (const e of shedding) {
    const s = e.data.shed!;
    assert.ok(s.default === 0 || s.sheddable === 1, `default shed before all sheddable: ${e.message}`);
  }
}

/** No critical request failed, for any reason (shed, refused, 5xx, no answer within REQUEST_BOUND_MS). */
function assertNoCriticalFailure(outcomes: readonly Outcome[]): void {
  const critical = outcomes.filter((o) => o.criticality === "critical");
  assert.ok(critical.length > 0, "critical requests were sent");
  const failed = critical.filter((o) => o.status !== 200);
  assert.deepEqual(
    failed.slice(0, 5),
    [],
    `${failed.length} of ${critical.length} critical requests failed (status 0: no answer within ${REQUEST_BOUND_MS}ms)`,
  );
}

interface ZoneStatus {
  zone: string;
  state: string;
  reason: string;
  share: number;
  shift: { phase: string; trigger: string } | null;
}
interface FailoverDoc {
  zones: ZoneStatus[];
  services: {
    service: string;
    servingCapacityRps: number;
    addedInstances: string[];
    shed: { sheddable: number; default: number };
  }[];
}
interface EventDoc {
  seq: number;
  at: number;
  type: string;
  reason: string;
  message: string;
  data: {
    zone?: string;
    share?: number;
    shed?: { sheddable: number; default: number };
    instances?: string[];
  };
}

/** Zone `name` as the failover API shows it. */
async function zoneOf(box: Sandbox, name: string) {
  return (await box.get<FailoverDoc>("/v1/failover")).zones.find((z) => z.zone === name)!;
}

/** The controller's events after `afterSeq`, of one type when given. */
async function eventsOf(box: Sandbox, type?: string, afterSeq = 0): Promise<EventDoc[]> {
  const { events: all } = await box.get<{ events: EventDoc[] }>(`/v1/events?limit=10000&after=${afterSeq}`);
  return type === undefined ? all : all.filter((e) => e.type === type);
}

/** Wait until zone-a is evacuated automatically because it is down; returns the zone. */
async function expectZoneAEvacuated(box: Sandbox) {
  const evacuated = await waitFor(
    async () => {
      const z = await zoneOf(box, "zone-a");
      return z.share === 0 && z.shift?.phase === "evacuated" ? z : null;
    },
    { timeoutMs: 20_000, what: "zone-a evacuated" },
  );
  assert.equal(evacuated.shift?.trigger, "automatic");
  const [started] = await eventsOf(box, "failover.started");
  assert.equal(started?.reason, "domain-down");
  assert.match(started!.message, /zone-a is down/);
  return evacuated;
}

/** The first scale-up events of a failover. */
function scaleUpsOf(box: Sandbox): Promise<EventDoc[]> {
  return waitFor(async () => {
    const found = await eventsOf(box, "failover.scale-up");
    return found.length > 0 ? found : null;
  });
}

describe("zone failover under load", () => {
  let box: Sandbox;
  let front: number;
  let fleetFile: string;
  let controller: Controller;
  let load: ReturnType<typeof startLoad>;
  const cli = (...args: string[]) => box.cli([...args, "--api-port", String(box.apiPort)]);
  const zone = (name: string) => zoneOf(box, name);
  const events = (type?: string, afterSeq = 0) => eventsOf(box, type, afterSeq);
  const lastSeq = async () => (await events()).reduce((max, e) => Math.max(max, e.seq), 0);

  before(async () => {
    box = await sandbox();
    front = await freePort();
    fleetFile = box.file("fleet.yaml", fleetYaml(await freePortRange(6), front));
    controller = box.up(fleetFile);
    await waitForServing(front, "api serving");
    load = startLoad(front);
    // Every zone judged healthy with load flowing (demand measured) before anything fails.
    await waitFor(
      async () => {
        const doc = await box.get<FailoverDoc>("/v1/failover");
        return doc.zones.every((z) => z.state === "healthy") && load.outcomes.length > 300;
      },
      { timeoutMs: 20_000, what: "steady load on a healthy fleet" },
    );
  });
  after(async () => {
    await load?.stop();
    await box.cleanup();
  });

  test("a zone cut off from the data plane is evacuated: capacity added elsewhere, sheddable shed first, critical never shed", async () => {
    const cutAt = Date.now();
    const added = await cli("fault", "add", "blackhole", "--zone", "zone-a");
    assert.equal(added.code, 0, added.stderr);

    await expectZoneAEvacuated(box);

    // 100 rps on the two survivors (100 rps of capacity) is 100 % > 80 %: one more instance.
    const scaleUps = await scaleUpsOf(box);
    const addedNames = scaleUps.flatMap((e) => e.data.instances ?? []);
    assert.ok(addedNames.length >= 1 && addedNames.length <= 2, JSON.stringify(addedNames));
    const ready = await waitFor(
      async () => {
        const found = await events("failover.capacity-ready");
        return found.length >= addedNames.length ? found : null;
      },
      { timeoutMs: 20_000, what: "added capacity ready" },
    );
    assert.ok(ready.every((e) => e.at >= cutAt));

    // A deploy needs the spare bank the failover is using: refused, not half-started.
    const deploy = await cli("deploy", "api", "v2");
    assert.equal(deploy.code, 1);
    assert.match(deploy.stderr, /spare bank.*failback/);

    // Once zone-a stops serving, 100 rps of demand meets 2 × 50 = 100 rps of serving capacity:
    // 100 % > the 80 % ceiling, so until the added instance is ready the gate must shed — and
    // sheddable (30 % of the demand, 30 rps) covers the 28 rps down to 72 %, so default need not.
    assertShedSheddableFirst(load.outcomes, await events("failover.shedding"));
    assertNoCriticalFailure(load.outcomes);

    // Once evacuated and the capacity is ready, traffic flows again: the last second is all 200s.
    await waitFor(
      () => {
        const recent = load.outcomes.filter((o) => o.at > Date.now() - 2_000 && o.at < Date.now() - 1_000);
        return recent.length > 50 && recent.every((o) => o.status === 200);
      },
      { timeoutMs: 15_000, what: "a clean second of traffic after the evacuation" },
    );
  });

  test("a controller killed mid-failover comes back with the zone still evacuated", async () => {
    const added = (await box.get<FailoverDoc>("/v1/failover")).services[0]!.addedInstances;
    assert.ok(added.length > 0);
    controller.child.kill("SIGKILL");
    await controller.exited;
    controller = box.up(fleetFile);
    const resumed = await waitFor(
      async () => {
        const found = await events("failover.resumed").catch(() => []);
        return found.length > 0 ? found : null;
      },
      { timeoutMs: 20_000, what: "the new controller resumed the failover" },
    );
    assert.match(resumed[0]!.message, /zone-a at 0 %/);
    // Faults live in the controller's memory: the drill's blackhole died with it. Put it back
    // before the 6 s window could give zone-a any traffic (a restart now also re-attaches the data plane, and CI machines are slow).
    const again = await cli("fault", "add", "blackhole", "--zone", "zone-a");
    assert.equal(again.code, 0, again.stderr);
    const z = await zone("zone-a");
    assert.equal(z.share, 0, "not a single request's worth of traffic back because of the restart");
    assert.deepEqual((await box.get<FailoverDoc>("/v1/failover")).services[0]!.addedInstances, added);
    await waitFor(async () => (await zone("zone-a")).state === "down", { what: "zone-a judged down again" });
  });

  test("failback waits out the window, does not flap when the zone fails again inside it, then ramps up", async () => {
    const mark = await lastSeq();
    const faults = await box.get<{ faults: { id: string }[] }>("/v1/faults");
    const clear = await cli("fault", "clear");
    assert.equal(clear.code, 0, clear.stderr);
    assert.ok(faults.faults.length > 0);
    await waitFor(async () => (await events("failback.waiting", mark)).length > 0, {
      what: "failback waiting",
    });

    // Fails again inside the 6 s window: back to nothing, and no traffic in between.
    const again = await cli("fault", "add", "blackhole", "--zone", "zone-a");
    assert.equal(again.code, 0, again.stderr);
    await waitFor(async () => (await events("failback.relapsed", mark)).length > 0, {
      what: "relapse noticed",
    });
    assert.equal((await events("failback.step", mark)).length, 0, "no traffic returned inside the window");
    assert.equal((await zone("zone-a")).share, 0);

    const clearAgain = await cli("fault", "clear");
    assert.equal(clearAgain.code, 0);
    const completed = await waitFor(
      async () => {
        const found = await events("failback.completed", mark);
        return found.length > 0 ? found : null;
      },
      { timeoutMs: 30_000, what: "failback completed" },
    );
    const steps = (await events("failback.step", mark)).filter((e) => e.seq <= completed[0]!.seq);
    assert.deepEqual(
      steps.map((e) => e.data.share),
      [0.25, 0.5, 0.75, 1],
      "traffic returns in steps of 25 %",
    );
    for (let i = 1; i < steps.length; i++) {
      assert.ok(steps[i]!.at - steps[i - 1]!.at >= 900, "one step per step interval (1 s)");
    }
    const waiting = await events("failback.waiting", mark);
    assert.ok(steps[0]!.at - waiting.at(-1)!.at >= 5_900, "the first step only after the 6 s window");
    assert.equal((await zone("zone-a")).share, 1);
    await waitFor(async () => (await events("failover.scale-down", mark)).length > 0, {
      what: "added instances stopped after failback",
    });
  });

  test("manual failover: stepwise, one at a time unless overridden with a reason, never every zone", async () => {
    const first = await cli("failover", "zone-b", "--reason", "drill", "--json");
    assert.equal(first.code, 0, first.stderr);
    const shift = (JSON.parse(first.stdout) as { shift: { phase: string; share: number; trigger: string } })
      .shift;
    assert.deepEqual([shift.phase, shift.share, shift.trigger], ["evacuating", 0.75, "manual"]);

    const second = await cli("failover", "zone-c");
    assert.equal(second.code, 1);
    assert.match(second.stderr, /one evacuation at a time.*HS_FAILOVER_REFUSED/s);

    const noReason = await cli("failover", "zone-c", "--override");
    assert.equal(noReason.code, 1);
    assert.match(noReason.stderr, /--override needs --reason/);

    const overridden = await cli("failover", "zone-c", "--override", "--reason", "zone-c switch maintenance");
    assert.equal(overridden.code, 0, overridden.stderr);

    const all = await cli("failover", "zone-a", "--override", "--reason", "everything");
    assert.equal(all.code, 1);
    assert.match(all.stderr, /no zone with traffic/);

    const again = await cli("failover", "zone-b");
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already/);

    const zones = await cli("zones");
    assert.equal(zones.code, 0, zones.stderr);
    assert.match(zones.stdout, /zone-b .*manual/);

    await waitFor(async () => (await zone("zone-b")).share === 0, {
      timeoutMs: 15_000,
      what: "zone-b evacuated step by step",
    });
    const bSteps = (await events("failover.step")).filter((e) => e.data.zone === "zone-b");
    assert.deepEqual(
      bSteps.map((e) => e.data.share),
      [0.75, 0.5, 0.25],
    );
    const journal = await box.get<{ journal: { action: string; target: string; reason: string }[] }>(
      "/v1/journal?limit=1000",
    );
    assert.ok(
      journal.journal.some(
        (j) => j.action === "failover" && j.target === "zone-c" && j.reason.includes("override"),
      ),
      "the override is audited",
    );

    for (const name of ["zone-b", "zone-c"]) {
      const back = await cli("failback", name, "--reason", "drill over");
      assert.equal(back.code, 0, back.stderr);
    }
    await waitFor(
      async () => (await box.get<FailoverDoc>("/v1/failover")).zones.every((z) => z.share === 1),
      { timeoutMs: 30_000, what: "every zone back" },
    );
    // 100 rps on 3 × 50 rps: losing any zone would leave 100 rps on 100 rps of capacity (100 %),
    // above the 80 % ceiling; the continuous N−1 check says so once the 30 s load average shows it.
    const lost = await waitFor(
      async () => {
        const found = await events("capacity.n-minus-1-lost");
        return found.length > 0 ? found : null;
      },
      { timeoutMs: 40_000, what: "the N−1 warning" },
    );
    assert.match(lost[0]!.message, /cannot lose zone-[abc] at current load/);
    const notShifted = await cli("failback", "zone-a");
    assert.equal(notShifted.code, 1);
    assert.match(notShifted.stderr, /not evacuated/);
  });
});

/** Ports zone-a's slots can use: slot s of both banks (2 × replicas slots) sits in zone s mod 3 (src/spec/ports.ts, placementOf). */
function zoneAPorts(base: number, replicas = 3): number[] {
  const ports: number[] = [];
  for (let slot = 0; slot < 2 * replicas; slot++) if (slot % 3 === 0) ports.push(base + slot);
  return ports;
}

const partitionUnavailable = await netPartitionUnavailable();

describe("zone failover under a real network partition", { skip: partitionUnavailable ?? false }, () => {
  let box: Sandbox;
  let front: number;
  let base: number;
  let load: ReturnType<typeof startLoad>;
  let partition: NetPartition | null = null;
  const zone = (name: string) => zoneOf(box, name);
  const events = (type: string, afterSeq = 0) => eventsOf(box, type, afterSeq);
  const cut = async () => {
    assert.equal(partition, null, "one partition at a time");
    partition = await partitionPorts(zoneAPorts(base), "blackhole");
  };
  const heal = async () => {
    await partition?.heal();
    partition = null;
  };

  before(async () => {
    await healOrphanedPartitions();
    box = await sandbox();
    front = await freePort();
    base = await freePortRange(6);
    // maxReplicas 3: no instance can be added, so the survivors carry zone-a's load themselves and
    // shedding lasts for the whole evacuation (not only until added capacity is ready).
    box.up(box.file("fleet.yaml", fleetYaml(base, front, { maxReplicas: 3, localReadiness: true })));
    await waitForServing(front, "api serving");
    load = startLoad(front);
    await waitFor(
      async () => {
        const doc = await box.get<FailoverDoc>("/v1/failover");
        return doc.zones.every((z) => z.state === "healthy") && load.outcomes.length > 300;
      },
      { timeoutMs: 20_000, what: "steady load on a healthy fleet" },
    );
  });
  after(async () => {
    try {
      await heal();
    } finally {
      await load?.stop();
      await box?.cleanup();
    }
  });

  test("zone-a's ports partitioned under load: evacuated, sheddable shed and never default, no critical request fails", async () => {
    const cutAt = Date.now();
    await cut();
    await expectZoneAEvacuated(box);
    // maxReplicas counts the instances outside the lost zone: 3 − 2 survivors = 1 may be added.
    const scaleUps = await scaleUpsOf(box);
    assert.deepEqual(
      scaleUps.flatMap((e) => e.data.instances ?? []),
      ["api-4"],
    );

    // Until api-4 is ready the serving capacity is api-1 and api-2: 2 × 50 = 100 rps for ~100 rps
    // of demand, 100 % > 80 %. The gate must shed sheddable down to 72 % (28 of its 30 rps), and
    // default not at all: default is shed only for demand over 80 % that sheddable cannot cover,
    // which needs more than 114 rps (the load sends at most 100).
    await waitFor(async () => (await events("failover.capacity-ready")).length > 0, {
      timeoutMs: 20_000,
      what: "api-4 ready",
    });
    await waitFor(() => load.outcomes.some((o) => o.shedReason === "failover-shed" && o.at > cutAt), {
      what: "the shed requests' answers",
    });
    const shedding = await events("failover.shedding");
    assertShedSheddableFirst(load.outcomes, shedding);
    assert.equal(
      load.outcomes.filter((o) => o.shedReason === "failover-shed" && o.criticality === "default").length,
      0,
      "no default request shed",
    );
    assert.ok(
      shedding.every((e) => e.data.shed!.default === 0),
      JSON.stringify(shedding.map((e) => e.data.shed)),
    );
    assertNoCriticalFailure(load.outcomes);
  });

  test("healed, then cut again inside the failback window: only the zone probe can see it, and it does", async () => {
    const mark = (await events("failover.started")).at(-1)!.seq;
    await heal();
    await waitFor(async () => (await events("failback.waiting", mark)).length > 0, {
      timeoutMs: 30_000,
      what: "failback waiting once the partition is healed",
    });
    // zone-a keeps 0 % of the traffic and its readiness check is local: nothing but the zone
    // probe (a real connection through the partition) can notice this second cut.
    await cut();
    await waitFor(async () => (await events("failback.relapsed", mark)).length > 0, {
      timeoutMs: 10_000,
      what: "relapse noticed",
    });
    const z = await waitFor(
      async () => {
        const found = await zone("zone-a");
        return found.state === "down" ? found : null;
      },
      { what: "zone-a down again" },
    );
    assert.match(z.reason, /api-0: zone probe failed \d+×/);
    assert.equal(z.share, 0);
    assert.equal((await events("failback.step", mark)).length, 0, "no traffic returned inside the window");

    await heal();
    await waitFor(async () => (await events("failback.completed", mark)).length > 0, {
      timeoutMs: 40_000,
      what: "failback completed",
    });
    assert.equal((await zone("zone-a")).share, 1);
    assertNoCriticalFailure(load.outcomes);
  });
});
