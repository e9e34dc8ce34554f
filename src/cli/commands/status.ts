import { percent, rps } from "../../decide/failover/words.ts";
import type { BrakesStatusAnswer } from "../../server/routes/brakeSchemas.ts";
import type { InvariantVerdictAnswer, StatusAnswer } from "../../server/routes/schemas.ts";
import type { StoreStatus } from "../../stateful/redis/storeManager.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse } from "../args.ts";
import type { Command } from "../command.ts";
import { ago, table } from "../format.ts";
import { renderBrakes } from "./brakesStatus.ts";
import { renderDataPlane } from "./dataplane.ts";
import { renderSpecDrift } from "./history.ts";
import { storeStatusLines } from "./stores.ts";

export const statusCommand: Command = {
  name: "status",
  summary: "services and instances: health, release, zone, failures",
  usage: `homeostat status [--json] [--api-port N]

Asks the running controller for the fleet's state: per service its desired release, ready
count and warnings (mixed releases, crash loops, missing capacity); per instance its state
(ready, starting, unready, unhealthy, exited, stopping), release, zone, host, port, pid
and the reason for its state. Each instance, service and zone, and the fleet, has a recovery
state — healthy, degraded, failing, recovering, recovered-unverified, verified — with its
reasons, and partial recoveries are listed by name (mixed releases, an instance on an old
config or old secret versions, a half-shifted zone, fewer ready instances than replicas): a
partial recovery is never shown as healthy. Then, per zone, what losing it now would do (from the declared
capacity and the measured load, with no scale-up and no shedding): the survivors' peak
utilization and the headroom left under the ceiling, with a WARNING when the fleet cannot lose
some zone without pushing its survivors past the ceiling (N−1). The automation brakes: whether
automation is paused (by whom, why, since when), each limit and how much of it is used, and every
automated action held now with its reason (docs/brakes.md).

Options:
  --json         print the status document as JSON
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values } = parse("status", argv, { json: { type: "boolean" }, ...apiPortOption }, 0);
    const status = await apiClient(apiPort(values)).get<StatusAnswer>("/v1/status");
    if (values.json === true) {
      io.out(JSON.stringify(status, null, 2));
      return 0;
    }
    io.out(renderStatus(status));
    return 0;
  },
};

/** One line on a PostgreSQL store (several controllers): who leads, with which fencing token. */
function renderLeadership(leadership: StatusAnswer["leadership"], now: number): string[] {
  if (leadership === undefined || leadership.store !== "postgres") return [];
  const left =
    leadership.expiresAt === null ? "" : `, lease ${Math.max(0, leadership.expiresAt - now)} ms left`;
  return [`leader: this controller, fencing token ${leadership.token}${left}; store ${leadership.location}`];
}

export function renderStatus(status: StatusAnswer): string {
  const now = status.controller.now;
  const lines: string[] = [
    `fleet ${status.fleet.name} (${status.fleet.file}) — controller pid ${status.controller.pid}, up ${ago(status.controller.startedAt, now).replace(" ago", "")}, ${status.openIncidents} open incident(s)`,
    ...renderLeadership(status.leadership, now),
    ...(status.dataPlane ? [renderDataPlane(status.dataPlane, now)] : []),
    ...renderSpecDrift(status.spec),
    ...renderRecovery(status),
    ...storeStatusLines((status as { stores?: StoreStatus[] }).stores),
    ...renderBrakes((status as { brakes?: BrakesStatusAnswer }).brakes, now),
    "",
  ];
  for (const service of status.services) {
    const recovery = service.recovery?.state ?? service.state;
    lines.push(
      `${service.name}: ${recovery}, ${service.ready}/${service.replicas} ready, release ${service.release}${recovery === service.state || service.state === "healthy" ? "" : ` (instances ${service.state})`}`,
    );
    for (const warning of service.warnings) lines.push(`  ! ${warning}`);
    const verdict = status.invariants?.[service.name];
    if (verdict !== undefined) lines.push(...renderInvariants(verdict, now));
    const codes = service.recovery?.codes ?? [];
    (service.recovery?.reasons ?? []).forEach((reason, n) => {
      // The invariants' own lines above say it, naming the invariant and its instances.
      if (verdict !== undefined && INVARIANT_CODES.has(codes[n] ?? "")) return;
      if (!service.warnings.some((w) => reason.endsWith(w))) lines.push(`  - ${reason}`);
    });
    if (service.gate !== undefined && !service.gate.passed && service.recovery?.state !== "healthy") {
      lines.push(`  gate: ${[service.gate.converged, service.gate.slo, service.gate.invariants].join("; ")}`);
    }
    if (service.probes !== undefined) lines.push(renderProbes(service.probes));
    const rows = service.instances.map((i) => [
      i.name,
      i.state,
      i.recovery?.state ?? "-",
      i.release ?? "-",
      i.zone,
      i.host,
      String(i.port),
      i.pid === null ? "-" : String(i.pid),
      i.consecutiveFailures > 0 ? String(i.consecutiveFailures) : "0",
      i.since === null ? "-" : ago(i.since, now),
      i.reason,
    ]);
    lines.push(
      table(
        [
          "  INSTANCE",
          "STATE",
          "RECOVERY",
          "RELEASE",
          "ZONE",
          "HOST",
          "PORT",
          "PID",
          "FAILS",
          "SINCE",
          "REASON",
        ],
        rows.map((r) => [`  ${r[0]}`, ...r.slice(1)]),
      ),
      "",
    );
  }
  lines.push(...renderZones(status));
  return lines.join("\n").trimEnd();
}

/**
 * The probes in force, one line: marked as defaults when the fleet file declares none (a TCP
 * connect on the instance port, or the process alone).
 */
export function renderProbes(probes: NonNullable<StatusAnswer["services"][number]["probes"]>): string {
  if (probes.defaults === "process")
    return "  probes: none declared; default: judged by its process alone (running = ready)";
  const kinds = (["startup", "readiness", "liveness"] as const)
    .filter((kind) => probes[kind] !== null)
    .map((kind) => `${kind} ${probes[kind]}`);
  const head = probes.defaults === "tcp" ? "probes (defaults, none declared)" : "probes";
  return `  ${head}: ${kinds.length === 0 ? "none (ready once running)" : kinds.join("; ")}`;
}

const INVARIANT_CODES: ReadonlySet<string> = new Set(["invariant-broken", "invariant-unchecked"]);

/**
 * A service's security-invariant verdict: each broken invariant with the instances that break it,
 * "not checked yet" (not ok, not broken: the gate waits), or that they hold.
 */
export function renderInvariants(verdict: InvariantVerdictAnswer, now: number): string[] {
  const checked = verdict.lastCheckedAt === null ? "" : `, last round ${ago(verdict.lastCheckedAt, now)}`;
  if (verdict.broken.length > 0) {
    const byInvariant = new Map<string, InvariantVerdictAnswer["broken"]>();
    for (const b of verdict.broken)
      byInvariant.set(b.invariant, [...(byInvariant.get(b.invariant) ?? []), b]);
    return [...byInvariant].map(([name, list]) => {
      const instances = list.flatMap((b) => b.instance ?? []);
      const on = instances.length > 0 ? ` on ${instances.join(", ")}` : "";
      return `  ! INVARIANT BROKEN ${name}${on} (since ${ago(Math.min(...list.map((b) => b.since)), now)}): ${list.map((b) => b.detail).join("; ")}`;
    });
  }
  if (!verdict.checked)
    return [`  invariants: not checked yet on every ready instance (not verified)${checked}`];
  return [`  invariants: hold${checked}`];
}

/**
 * The fleet's recovery line and every partial recovery, by name: a half-done recovery must be
 * read, not inferred from a table.
 */
export function renderRecovery(status: Pick<StatusAnswer, "recovery" | "partial" | "zones">): string[] {
  if (status.recovery === undefined) return [];
  const lines = [`recovery: ${status.recovery.state}`];
  for (const p of status.partial ?? []) {
    const where = [p.service, p.zone].filter(Boolean).join("/");
    lines.push(`  PARTIAL ${p.kind}${where ? ` (${where})` : ""}: ${p.detail}`);
  }
  for (const z of status.zones ?? []) {
    if (z.recovery.state === "healthy") continue;
    lines.push(`  zone ${z.zone}: ${z.recovery.state}`);
  }
  return lines;
}

/** The "Zones" block: headroom if each zone were lost now, and the N−1 warning. */
export function renderZones(status: Pick<StatusAnswer, "domains" | "staticStability">): string[] {
  const { domains, staticStability } = status;
  const leftOut = staticStability.skipped.map((s) => `  (${s.service} left out: ${s.reason})`);
  if (domains.length === 0) {
    return leftOut.length === 0
      ? []
      : ["Zones: no service declares its capacity, nothing to check", ...leftOut];
  }
  const lines = [
    "Zones (if one were lost now, at current load, before any scale-up or shedding):",
    table(
      ["  ZONE LOST", "SURVIVORS' PEAK", "HEADROOM", "VERDICT"],
      domains.map((d) => [
        `  ${d.zone}`,
        d.survivorPeakUtilization === null ? "no survivor" : percent(d.survivorPeakUtilization),
        rps(d.headroomRps),
        d.survivesLoss ? "survives" : "OVERLOADS the others",
      ]),
    ),
    ...leftOut,
  ];
  if (staticStability.warning !== undefined) lines.push(`WARNING: ${staticStability.warning}`);
  return lines;
}
