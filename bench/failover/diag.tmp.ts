import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLoadgen } from "../proxy/loadgenProcess.ts";
import { Teardown } from "../proxy/teardown.ts";
import { epochNow } from "./haproxyFleet.ts";
import { killInstance, readyVictim, startHomeostatFleet } from "./homeostatFleet.ts";

const t = new Teardown();
try {
  const dir = mkdtempSync(join(tmpdir(), "diag-"));
  const fleet = await startHomeostatFleet(dir, t.ledger);
  const snap0 = async () => {
    const s = (await (await fetch(`http://127.0.0.1:${fleet.homeostat.apiPort}/v1/traffic`)).json()) as any;
    const svc = s.services.api;
    console.log(
      "after wrk",
      JSON.stringify({
        adm: svc.admission,
        cap: svc.limits.capacity,
        eps: svc.endpoints.map((e: any) => [e.instance, e.inFlight, e.limit, e.adaptiveLimit, e.draining]),
      }),
    );
  };
  t.add("down", () => fleet.homeostat.stop());
  const api = `http://127.0.0.1:${fleet.homeostat.apiPort}`;
  const rate = Number(process.env.RATE ?? 3500);
  if (process.env.WRK) {
    const { runWrk } = await import("../proxy/wrk.ts");
    const r = await runWrk(
      { threads: 1, connections: 50, durationS: 5 },
      `http://127.0.0.1:${fleet.port}/work?ms=5`,
      t.ledger,
    );
    console.log("wrk", r.requestsPerSecond, r.non2xx);
    await snap0();
  }
  const run = startLoadgen(
    {
      origin: `http://127.0.0.1:${fleet.port}`,
      path: "/work?ms=5",
      ratePerSecond: rate,
      warmupMs: 0,
      durationMs: 6000,
      connections: 512,
      timeoutMs: 15000,
      records: true,
      keepHeaders: ["x-instance", "x-homeostat-attempts", "x-homeostat-shed"],
    },
    dir,
    t.ledger,
  );
  const t0 = await run.started;
  const victim = await readyVictim(fleet.homeostat, "api-0");
  const snap = async (label: string) => {
    const s = (await (await fetch(`${api}/v1/traffic`)).json()) as any;
    const svc = s.services.api;
    console.log(
      label,
      (epochNow() - t0).toFixed(0),
      JSON.stringify({
        adm: svc.admission,
        cap: svc.limits.capacity,
        eps: svc.endpoints.map((e: any) => [e.instance, e.inFlight, e.limit, e.adaptiveLimit, e.draining]),
      }),
    );
  };
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 250));
    await snap("pre");
  }
  const kill = killInstance(victim);
  const killedAt = kill();
  for (let i = 0; i < 12; i++) {
    await new Promise((r) => setTimeout(r, 50));
    await snap("post");
  }
  const res = await run.result;
  const rec = res.records!;
  const k = killedAt - res.t0EpochMs;
  const buckets = new Map<number, Record<string, number>>();
  for (let i = 0; i < rec.dueMs.length; i++) {
    const b = Math.floor((rec.dueMs[i]! - k) / 50) * 50;
    const key =
      rec.status[i] === 200
        ? Number(rec.headers["x-homeostat-attempts"]![i]) > 1
          ? "retried"
          : "ok"
        : `${rec.status[i]} ${rec.headers["x-homeostat-shed"]![i]}`;
    const m = buckets.get(b) ?? {};
    m[key] = (m[key] ?? 0) + 1;
    buckets.set(b, m);
  }
  for (const [b, m] of [...buckets].sort((a, b) => a[0] - b[0]))
    if (b > -3100 && b < 1200 && (b < -2700 || b > -300 || Object.keys(m).length > 1))
      console.log(b, JSON.stringify(m));
} finally {
  await t.run();
}
process.exit(0);
