/**
 * Leader takeover (issue 15, docs/benchmarks.md#leader-takeover-issue-15): several controllers of one fleet
 * on the machine's PostgreSQL, steady open-loop load through the data plane (bench/common/loadgen,
 * failed requests counted, the generator's own lateness reported), and the leader faulted again
 * and again — SIGKILL, or SIGSTOP (continued once another leads: it must then leave, exit 75).
 * Per trial, from the signal: the lease claimed by the next leader (the store's clock: the same
 * machine's), its `leader.elected` event, and the data plane taking orders from its token (polled
 * through the data plane's own socket every 20 ms). After each trial the faulted controller is
 * replaced by a new follower, so every trial starts with the same number of controllers.
 *
 * Target (issue 15): takeover ≤ lease TTL + one pass (the controller's 250 ms tick).
 *
 * Knobs: HA_TTLS_MS (default "5000": the default lease; e.g. "2000,5000"), HA_CONTROLLERS ("2,3"),
 * HA_TRIALS (5 per fault kind and configuration), HA_RATE (100 req/s), HA_CONNECTIONS (16).
 * Run with `npm run bench:ha` (under flock /tmp/homeostat-bench.lock).
 */

import { execFileSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { REPO } from "../../test/helpers/e2e.ts";
import { type HaController, HaFleet } from "../../test/helpers/haFleet.ts";
import { haFleetYaml } from "../../test/helpers/haScenarios.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import { publishResult, runBench, runTimes } from "../common/benchRun.ts";
import { positiveInt } from "../common/envOptions.ts";
import { ScheduledLoad } from "../common/loadgen/scheduledLoad.ts";

/** One pass: the controller's reconcile tick (src/controller/controller.ts). */
const PASS_MS = 250;

type Fault = "SIGKILL" | "SIGSTOP";

interface Trial {
  fault: Fault;
  fromToken: number;
  token: number;
  /** ms from the signal. */
  claimMs: number;
  electedMs: number;
  attachedMs: number | null;
  /** A SIGSTOPped leader, continued after the takeover: how it ended (75 expected). */
  stoppedExit: number | string | null;
  /** Requests due in [signal, signal + 20 s) that failed. */
  failed: number;
}

interface Configuration {
  ttlMs: number;
  controllers: number;
  trials: Trial[];
  /** Leadership changes nobody caused (a leader deposed by its own clock under load). */
  unplanned: number;
  load: {
    rate: number;
    due: number;
    ok: number;
    failed: number;
    latenessP99Ms: number | null;
    latenessMaxMs: number | null;
    valid: boolean;
    invalidReason: string | null;
  };
}

const log = (message: string) => process.stderr.write(`[bench:ha] ${message}\n`);

function listOfInts(name: string, fallback: number[]): number[] {
  const text = process.env[name];
  if (text === undefined || text.trim() === "") return fallback;
  const values = text.split(",").map((v) => Number(v.trim()));
  if (!values.every((v) => Number.isInteger(v) && v > 0))
    throw new Error(`${name}: whole numbers, got ${text}`);
  return values;
}

async function runConfiguration(
  ttlMs: number,
  controllers: number,
  trials: number,
  rate: number,
  connections: number,
): Promise<Configuration> {
  const fleet = await HaFleet.create(
    { yaml: (b, p) => haFleetYaml("bench-ha", b, p), slots: 4, ttlMs },
    "homeostat-bench-ha-",
  );
  try {
    await Promise.all(Array.from({ length: controllers }, () => fleet.spawn()));
    const leader = await fleet.telling(() =>
      waitFor(() => fleet.leader(), { timeoutMs: 90_000, what: "a leader" }),
    );
    await fleet.leading(leader, 90_000);
    for (const follower of fleet.followersOf(leader)) await fleet.following(follower, 90_000);
    await fleet.steady(2, "two instances ready", () => true, 90_000);
    const load = new ScheduledLoad({
      port: fleet.port,
      path: "/",
      ratePerSecond: rate,
      connections,
      timeoutMs: 5_000,
      // The load is there to count failed requests through the takeovers, not to time latency:
      // on this shared 2-core box the generator's own lateness is judged against 50 ms (as in
      // bench:redis-failover), not the 5 ms of the latency benches, and reported either way.
      bounds: { maxLatenessP99Ms: 50 },
    });
    const t0 = load.start();
    const faults: { fault: Fault; at: number; result: Omit<Trial, "failed"> }[] = [];
    let unplanned = 0;
    for (let i = 0; i < 2 * trials; i++) {
      const fault: Fault = i % 2 === 0 ? "SIGKILL" : "SIGSTOP";
      await fleet.steady(2, `steady before trial ${i + 1}`, () => true, 90_000);
      const takeover = await fleet.faultLeader(fault, 90_000);
      if (takeover.token !== takeover.fromToken + 1) unplanned += takeover.token - takeover.fromToken - 1;
      let stoppedExit: number | string | null = null;
      if (fault === "SIGSTOP") {
        process.kill(takeover.from.pid, "SIGCONT");
        const exit = await waitFor(
          async () => (takeover.from.running() ? null : await takeover.from.exited),
          {
            timeoutMs: 30_000,
            what: "the continued leader to leave",
          },
        ).catch(() => null);
        stoppedExit = exit === null ? "still running" : (exit.code ?? exit.signal);
        if (takeover.from.running()) takeover.from.child.kill("SIGKILL");
      }
      const result = {
        fault,
        fromToken: takeover.fromToken,
        token: takeover.token,
        claimMs: takeover.newLease.acquiredAt - takeover.faultAt,
        electedMs: takeover.electedAt - takeover.faultAt,
        attachedMs: takeover.attachedAt === null ? null : takeover.attachedAt - takeover.faultAt,
        stoppedExit,
      };
      log(
        `ttl ${ttlMs} ms, ${controllers} controllers, trial ${i + 1}/${2 * trials}: ${JSON.stringify(result)}`,
      );
      faults.push({ fault, at: takeover.faultAt, result });
      // The fleet keeps its number of controllers: a new follower replaces the faulted one.
      const replacement: HaController = await fleet.spawn();
      await fleet.following(replacement, 90_000);
      // Any controller that left on its own (deposed by its clock) is replaced too.
      while (fleet.controllers.filter((c) => c.running()).length < controllers) {
        unplanned++;
        await fleet.following(await fleet.spawn(), 90_000);
      }
    }
    const summary = await load.stop();
    const records = summary.records;
    const failedBetween = (from: number, to: number): number => {
      if (records === null) return 0;
      let n = 0;
      for (let k = 0; k < records.dueMs.length; k++) {
        const due = t0 + (records.dueMs[k] as number);
        if (
          due >= from &&
          due < to &&
          !((records.status[k] as number) >= 200 && (records.status[k] as number) < 300)
        )
          n++;
      }
      return n;
    };
    return {
      ttlMs,
      controllers,
      trials: faults.map((f) => ({ ...f.result, failed: failedBetween(f.at, f.at + 20_000) })),
      unplanned,
      load: {
        rate,
        due: summary.due,
        ok: summary.ok,
        failed: summary.non2xx + summary.errors + summary.warmup.non2xx + summary.warmup.errors,
        latenessP99Ms: summary.lateness?.p99 ?? null,
        latenessMaxMs: summary.lateness?.max ?? null,
        valid: summary.valid,
        invalidReason: summary.invalidReason,
      },
    };
  } finally {
    await fleet.cleanup();
  }
}

function stats(values: number[]): { p50: number; max: number; min: number } | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return {
    min: sorted[0] as number,
    p50: sorted[Math.floor((sorted.length - 1) / 2)] as number,
    max: sorted.at(-1) as number,
  };
}

function render(result: {
  configurations: Configuration[];
  commit: string;
  machine: string;
  startedAt: string;
}): string {
  const lines = [
    `## Leader takeover (bench:ha) — ${result.startedAt}, commit ${result.commit}`,
    "",
    `Machine: ${result.machine}.`,
    "",
    "| TTL | controllers | fault | trials | lease claimed (min / p50 / max) | leader.elected (p50 / max) | data plane on the new token (p50 / max) | target TTL + 250 ms | failed requests | stopped leader's exit |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const c of result.configurations) {
    for (const fault of ["SIGKILL", "SIGSTOP"] as const) {
      const trials = c.trials.filter((t) => t.fault === fault);
      const claim = stats(trials.map((t) => t.claimMs));
      const elected = stats(trials.map((t) => t.electedMs));
      const attached = stats(trials.flatMap((t) => (t.attachedMs === null ? [] : [t.attachedMs])));
      const target = c.ttlMs + PASS_MS;
      const met = attached !== null && attached.max <= target ? "met" : "**missed**";
      lines.push(
        `| ${c.ttlMs / 1000} s | ${c.controllers} | ${fault === "SIGKILL" ? "kill -9" : "SIGSTOP"} | ${trials.length} | ${claim?.min} / ${claim?.p50} / ${claim?.max} ms | ${elected?.p50} / ${elected?.max} ms | ${attached?.p50} / ${attached?.max} ms | ${target} ms: ${met} | ${trials.reduce((n, t) => n + t.failed, 0)} | ${fault === "SIGSTOP" ? [...new Set(trials.map((t) => String(t.stoppedExit)))].join(", ") : "—"} |`,
      );
    }
  }
  lines.push(
    "",
    "| TTL | controllers | load | due | failed | generator lateness p99 / max | valid | unplanned leader changes |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const c of result.configurations) {
    lines.push(
      `| ${c.ttlMs / 1000} s | ${c.controllers} | ${c.load.rate} req/s | ${c.load.due} | ${c.load.failed} | ${c.load.latenessP99Ms?.toFixed(1)} / ${c.load.latenessMaxMs?.toFixed(1)} ms | ${c.load.valid ? "yes" : `no: ${c.load.invalidReason}`} | ${c.unplanned} |`,
    );
  }
  return `${lines.join("\n")}\n`;
}

await runBench(async () => {
  const startedAt = new Date();
  const ttls = listOfInts("HA_TTLS_MS", [5_000]);
  const counts = listOfInts("HA_CONTROLLERS", [2, 3]);
  const trials = positiveInt(process.env, "HA_TRIALS", 5);
  const rate = positiveInt(process.env, "HA_RATE", 100);
  const connections = positiveInt(process.env, "HA_CONNECTIONS", 16);
  const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
    cwd: REPO,
    encoding: "utf8",
  }).trim();
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "?"}, load average ${loadavg()[0]?.toFixed(1)} at start, PostgreSQL on 127.0.0.1`;
  const configurations: Configuration[] = [];
  for (const ttlMs of ttls) {
    for (const controllers of counts) {
      log(
        `TTL ${ttlMs} ms, ${controllers} controllers: ${trials} kill -9 and ${trials} SIGSTOP trials under ${rate} req/s`,
      );
      configurations.push(await runConfiguration(ttlMs, controllers, trials, rate, connections));
    }
  }
  const result = { ...runTimes(startedAt, new Date()), commit, machine, configurations };
  const ok = configurations.every(
    (c) =>
      c.load.failed === 0 &&
      c.trials.every((t) => t.attachedMs !== null && t.attachedMs <= c.ttlMs + PASS_MS),
  );
  publishResult("ha", startedAt, result, (r) => render({ ...r, startedAt: r.startedAt }), log, ok);
}, log);
