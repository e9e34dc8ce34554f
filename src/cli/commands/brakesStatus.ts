import { duration as spell } from "../../decide/failover/words.ts";
import type { BrakesStatusAnswer } from "../../server/routes/brakeSchemas.ts";
import { ago, clock } from "../format.ts";

/**
 * The automation brakes in `homeostat status`: paused or not (by whom, why, since when), every
 * limit with how much of it is used, and each action held now with its reason.
 */
export function renderBrakes(brakes: BrakesStatusAnswer | undefined, now: number): string[] {
  if (brakes === undefined) return [];
  const { paused, usage, held } = brakes;
  const fleet = usage.fleet;
  const lines = [
    paused === null
      ? "automation: running"
      : `automation: PAUSED by ${paused.by} since ${clock(paused.since)} (${ago(paused.since, now)}): ${paused.reason} — nothing automated starts; manual actions need --override --reason (\`homeostat resume\` ends it)`,
    `  brakes: fleet acting on ${fleet.actedOn.count}/${fleet.actedOn.limit} at once (${pct(fleet.actedOn.share)} of ${fleet.actedOn.size}); automated rollbacks ${count(fleet.rollbacks)}; automated failovers ${count(fleet.failovers)}`,
  ];
  for (const s of usage.services) {
    const acting = s.actedOn.instances.length > 0 ? ` (${s.actedOn.instances.join(", ")})` : "";
    lines.push(
      `  ${s.service}: automated restarts ${count(s.restarts)}; acting on ${s.actedOn.instances.length}/${s.actedOn.limit} at once${acting} (${pct(s.actedOn.share)} of ${s.actedOn.size})`,
    );
  }
  for (const h of held) {
    const lifts = h.until === null ? "" : `, lifts at ${clock(h.until)}`;
    lines.push(
      `  HELD ${h.kind} of ${h.target} (${h.rule}) since ${clock(h.since)}${lifts}: ${h.reason.message}`,
    );
  }
  return lines;
}

function count(w: { used: number; max: number; windowMs: number; freeAt: number | null }): string {
  const full = w.used >= w.max ? ` FULL until ${clock(w.freeAt)}` : "";
  return `${w.used}/${w.max} per ${windowLength(w.windowMs)}${full}`;
}

/** A window's length as people say it: 10 min, 1 h, 90 s. */
function windowLength(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return spell(ms);
}

function pct(share: number): string {
  return `${Number((share * 100).toFixed(1))} %`;
}
