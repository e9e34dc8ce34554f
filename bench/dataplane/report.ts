/**
 * The markdown printed at the end of a data-plane run, for docs/benchmarks.md.
 */

import { describeCode } from "../proxy/report.ts";
import { HUNG_TARGETS, type RunFigures, type Spread, type TargetVerdict } from "./analysis.ts";
import { DATA_PLANE_FAULTS } from "./options.ts";
import type { DataPlaneFaultTrial, DataPlaneResult, HungTrial, KillTrial } from "./results.ts";
import { QUIET_PERCENT } from "./trial.ts";

const HUNG_LABEL: Record<string, string> = {
  homeostat: "**Homeostat**",
  nginx: "nginx",
  haproxy: "HAProxy",
};

function int(v: number): string {
  return Math.round(v).toLocaleString("en-US");
}

function ms(v: number | null | undefined): string {
  return v === null || v === undefined ? "–" : `${int(v)}`;
}

function pct(v: number): string {
  return v >= 99.995 && v < 100 ? "99.99" : v.toFixed(2);
}

function failures(f: RunFigures): string {
  const kinds = Object.entries(f.failures);
  return kinds.length === 0
    ? "0"
    : `${int(f.failed)} (${kinds.map(([k, n]) => `${k}: ${int(n)}`).join(", ")})`;
}

function spreadCells(s: Spread | null): string {
  return s === null ? "– | – | –" : `${ms(s.p50)} | ${ms(s.p99)} | ${ms(s.max)}`;
}

function met(v: boolean | null): string {
  return v === null ? "not run" : v ? "**met**" : "**missed**";
}

/** An error as one table cell. */
function firstLine(error: string | undefined): string {
  return (error ?? "?").split("\n", 1)[0]!.replaceAll("|", "\\|");
}

/** How busy the machine was (others' work) just before the trial; flagged when it never calmed down. */
function busy(t: HungTrial | KillTrial | DataPlaneFaultTrial): string {
  if (t.before === null) return "–";
  return `${t.before.busyPercent.toFixed(0)} %${t.before.quiet ? "" : " (busy)"}`;
}

function hungRow(t: HungTrial): string {
  const f = t.figures;
  if (!t.ok || f === null)
    return `| ${HUNG_LABEL[t.contender]} | ${t.repeat + 1} | ${t.victim} | failed: ${firstLine(t.error)} | | | | | | | | | |`;
  return `| ${HUNG_LABEL[t.contender]} | ${t.repeat + 1} | ${t.victim}${t.victimContinued === false ? " (replaced)" : ""} | ${int(f.requests)} | ${pct(f.servedPercent)} % | ${failures(f)} | ${spreadCells(f.latency)} | ${ms(f.latencyInWindow?.p99)} | ${ms(f.lateness?.p99)} / ${ms(f.lateness?.max)} | ${int(f.achievedRate)} | ${busy(t)} |`;
}

function killRow(t: KillTrial): string {
  const f = t.figures;
  const mode = `${t.mode}${t.flagPassed ? "" : " (no flag: `up`'s default)"}`;
  if (!t.ok || f === null)
    return `| ${mode} | ${t.repeat + 1} | failed: ${firstLine(t.error)} | | | | | | | | | |`;
  const survived = t.listenersAfter.length > 0 ? `yes (pid ${t.listenersAfter.join(", ")})` : "no";
  return `| ${mode} | ${t.repeat + 1} | ${t.controllerPid ?? "–"} / ${t.listenersBefore.join(", ") || "–"} | ${survived} | ${int(f.requests)} | ${pct(f.servedPercent)} % | ${failures(f)} | ${spreadCells(f.latency)} | ${ms(f.lateness?.p99)} / ${ms(f.lateness?.max)} | ${int(f.achievedRate)} | ${busy(t)} |`;
}

function faultRow(t: DataPlaneFaultTrial): string {
  const f = t.figures;
  if (!t.ok || f === null)
    return `| ${t.kind} | ${t.repeat + 1} | failed: ${firstLine(t.error)} | | | | | | | | |`;
  return `| ${t.kind} | ${t.repeat + 1} | ${t.pidBefore ?? "–"} → ${t.pidAfter ?? "–"} | ${t.servingAgainMs === null ? "–" : ms(t.servingAgainMs)} | ${int(f.requests)} | ${pct(f.servedPercent)} % | ${failures(f)} | ${spreadCells(f.latency)} | ${ms(f.lateness?.p99)} / ${ms(f.lateness?.max)} | ${int(f.achievedRate)} | ${busy(t)} |`;
}

/** Per contender or mode: the trials' figures side by side, totals pooled. */
function summaryRow(label: string, trials: readonly (HungTrial | KillTrial | DataPlaneFaultTrial)[]): string {
  const done = trials.filter((t) => t.ok && t.figures !== null).map((t) => t.figures!);
  const requests = done.reduce((sum, f) => sum + f.requests, 0);
  const served = done.reduce((sum, f) => sum + f.served, 0);
  const failed = requests - served;
  const each = (pick: (f: RunFigures) => number | null | undefined): string =>
    done.map((f) => ms(pick(f))).join(" / ");
  return `| ${label} | ${done.length}/${trials.length} | ${int(requests)} | ${requests === 0 ? "–" : `${pct((served / requests) * 100)} %`} | ${int(failed)} | ${each((f) => f.latency?.p99)} | ${each((f) => f.latency?.max)} | ${each((f) => f.lateness?.p99)} |`;
}

const SUMMARY_HEAD = [
  "| Contender | Trials ok | Requests | Served 2xx | Failed | p99 ms, per trial | max ms, per trial | Lag p99 ms, per trial |",
  "| --- | --- | --- | --- | --- | --- | --- | --- |",
];

function byContender<T extends { repeat: number }>(
  trials: readonly T[],
  key: (t: T) => string,
  order: readonly string[],
): T[] {
  return [...trials].sort((a, b) => order.indexOf(key(a)) - order.indexOf(key(b)) || a.repeat - b.repeat);
}

function verdictLine(v: TargetVerdict | null): string {
  if (v === null) return "not run";
  return `≥ ${HUNG_TARGETS.servedPercent} % served 2xx ${met(v.servedPercent)}, p99 ≤ ${HUNG_TARGETS.p99Ms} ms ${met(v.p99)}, 0 failed idempotent requests ${met(v.zeroFailed)} (every trial that ran must meet each)`;
}

function fenced(lang: string, text: string | null): string[] {
  return text === null ? [] : [`\`\`\`${lang}`, text.trimEnd(), "```", ""];
}

export function renderDataPlaneMarkdown(r: DataPlaneResult): string {
  const o = r.options;
  const hungLoadS = (o.beforeFaultMs + o.hangMs + o.afterHangMs) / 1000;
  const killLoadS = (o.beforeFaultMs + o.afterKillMs) / 1000;
  const all = [...r.hung, ...r.controllerKill, ...r.dataPlaneFaults];
  const unquiet = all.filter((t) => t.before !== null && !t.before.quiet).length;
  const busiest = Math.max(0, ...all.map((t) => t.before?.busyPercent ?? 0));
  const lines = [
    `### Data-plane run of ${r.startedAt}`,
    "",
    `Date: ${r.dateUtc}. Machine: ${r.machine.cpus} CPU (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB RAM, Linux ${r.machine.kernel}, Node ${r.machine.node}; ${r.tools.haproxy}; nginx ${r.tools.nginx}. The run took ${(r.durationMs / 1000).toFixed(0)} s. Code: ${describeCode(r.code)}. \`homeostat up --data-plane\`: ${r.dataPlaneFlag ? "present" : "**absent** in this code"}.`,
    "",
    `Load (both scenarios): the native open-loop generator (\`bench/common/loadgen/openloop.c\`), **${int(o.rate)} req/s** of \`GET ${o.path}\` over a fixed ${o.connections} connections, client timeout ${o.clientTimeoutMs / 1000} s counted from each request's due time; a request due while all connections are busy waits in the generator's queue and is charged from its due time. A ${o.warmupMs / 1000} s warm-up is not counted. Latency is from the due time to the end of the answer, failed requests included at the time they ended. *Lag* is the generator's own send − due (p99 / max); *rate* is requests sent per second from the first due time to the last send. Failed = not answered 2xx (another status, or no answer: \`timeout\` is the client timeout, \`connect-error\`/\`closed\` a refused or reset connection).`,
    "",
    "#### (b) One of three instances hung (SIGSTOP)",
    "",
    `Three instances of the demo app; ${o.beforeFaultMs / 1000} s into the measured load one of them (api-0, api-1, api-2 in turn) is SIGSTOPped for ${o.hangMs / 1000} s, then SIGCONTed (if it still exists), and the load goes on ${o.afterHangMs / 1000} s more: ${hungLoadS} s measured per trial. Contenders back to back in one run, their order rotated each round. *In the hang* is the p99 of the requests due while the instance was stopped. Homeostat's controller may replace the hung instance (its liveness probe fails): "(replaced)" says the SIGCONT found it gone.`,
    "",
    ...SUMMARY_HEAD,
    ...o.hungContenders.map((c) =>
      summaryRow(
        HUNG_LABEL[c] ?? c,
        r.hung.filter((t) => t.contender === c),
      ),
    ),
    "",
    `Targets for Homeostat: ${verdictLine(r.targets.hung)}.`,
    "",
    "Every trial, in the order of the table above:",
    "",
    "| Contender | Trial | Hung | Requests | Served 2xx | Failed (by kind) | p50 ms | p99 ms | max ms | p99 in the hang, ms | Lag p99 / max, ms | Rate, req/s | Machine busy before |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...byContender(r.hung, (t) => t.contender, o.hungContenders).map(hungRow),
    "",
    "Configurations:",
    "",
    `- **Homeostat:** \`homeostat up\` of the fleet below (the e2e demo fleet: service \`api\`, 3 replicas, front \`port:\`, **default traffic settings**: per-try timeout 2 s, 3 attempts, retry budget 20 %, outlier ejection after 5 consecutive failures; readiness \`/ready\` every 200 ms, timeout 150 ms, 2 failures; liveness \`/healthz\` every 200 ms, 3 failures)${r.dataPlaneFlag ? ", with `up`'s default data plane (no `--data-plane` given)" : ""}.`,
    `- **nginx** (open source: no active checks): \`proxy_next_upstream error timeout\` (3 tries within 1 s), \`proxy_connect_timeout 100ms\`, \`proxy_read_timeout\`/\`proxy_send_timeout ${o.proxyTimeoutMs}ms\`, \`max_fails=1 fail_timeout=5s\` in a shared zone, upstream keep-alive 64.`,
    `- **HAProxy:** active checks \`GET /ready\` every 200 ms (timeout 150 ms, fall 2, rise 1), \`observe layer7 error-limit 3 on-error mark-down\`, \`retry-on all-retryable-errors\`, \`retries 3\`, \`option redispatch 1\`, \`timeout connect 100ms\`, \`timeout server ${o.proxyTimeoutMs}ms\`.`,
    "",
    "<details><summary>The files as written</summary>",
    "",
    ...fenced("yaml", r.configs.homeostatFleet),
    ...fenced("nginx", r.configs.nginx),
    ...fenced("", r.configs.haproxy),
    "</details>",
    "",
    "#### (a) Controller SIGKILL under load",
    "",
    `A Homeostat fleet (the same fleet file, fresh per trial) under the same load; ${o.beforeFaultMs / 1000} s into the measured load \`kill -9\` of the controller process only (its pid from \`/v1/status\` \`controller.pid\`; not the instances, not a data-plane process), then ${o.afterKillMs / 1000} s more load: ${killLoadS} s measured. *Listening* is the pid(s) that had the service port open before the kill (\`ss -ltnp\`); *still serving* is who had it open after the load.`,
    "",
    ...SUMMARY_HEAD.map((line, i) => (i === 0 ? line.replace("Contender", "Data plane") : line)),
    ...o.modes.map((m) =>
      summaryRow(
        m,
        r.controllerKill.filter((t) => t.mode === m),
      ),
    ),
    "",
    `Target: 0 failed requests with the data plane in its own process, in every trial that ran: ${met(r.targets.controllerKillZeroFailed)}.`,
    "",
    "Every trial (latency here includes the refused connections, which fail at once):",
    "",
    "| Data plane | Trial | Controller pid / listening pid | Port still open after | Requests | Served 2xx | Failed (by kind) | p50 ms | p99 ms | max ms | Lag p99 / max, ms | Rate, req/s | Machine busy before |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...byContender(r.controllerKill, (t) => t.mode, o.modes).map(killRow),
    "",
    ...(r.dataPlaneFaults.length === 0
      ? []
      : [
          "#### (c) The data-plane process itself: planned restart and SIGKILL under load",
          "",
          `A fresh Homeostat fleet per trial, under the same load; ${o.beforeFaultMs / 1000} s in, either \`POST /v1/dataplane/restart\` (*planned-restart*: the data plane hands its listening sockets to a successor, then drains) or \`kill -9\` of the data-plane process (*sigkill*: the controller starts a new one, which serves its persisted snapshot), then ${o.afterKillMs / 1000} s more load. *Serving again* is the time from the kill until a fresh connection got a 200 (polled every 5 ms).`,
          "",
          ...SUMMARY_HEAD.map((line, i) => (i === 0 ? line.replace("Contender", "Fault") : line)),
          ...DATA_PLANE_FAULTS.map((k) =>
            summaryRow(
              k,
              r.dataPlaneFaults.filter((t) => t.kind === k),
            ),
          ),
          "",
          `Target: 0 failed requests across a planned restart, in every trial that ran: ${met(r.targets.plannedRestartZeroFailed)}. A SIGKILL loses what the killed process had in flight and its open connections: reported, no target.`,
          "",
          "| Fault | Trial | Data-plane pid before → after | Serving again, ms | Requests | Served 2xx | Failed (by kind) | p50 ms | p99 ms | max ms | Lag p99 / max, ms | Rate, req/s | Machine busy before |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
          ...byContender(r.dataPlaneFaults, (t) => t.kind, DATA_PLANE_FAULTS).map(faultRow),
          "",
        ]),
    ...(r.skipped.length === 0 ? [] : ["Not run:", "", ...r.skipped.map((s) => `- ${s}`), ""]),
    `Other work on the machine: before each trial the bench waited until all CPUs together were at most ${QUIET_PERCENT} % busy (1 s reading, bench idle); the busiest reading that let a trial start was ${busiest.toFixed(0)} %${unquiet > 0 ? `; ${unquiet} trial(s) went ahead after 3 minutes without the machine calming down, marked "(busy)"` : ""}. Leftover processes after teardown: ${r.leftoverPids.length}.`,
    "",
  ];
  return `${lines.join("\n")}\n`;
}
