/**
 * "No action done twice", checked two ways after a takeover (issue 15, Must show): from the
 * journal every leader wrote (with its fencing token), and from the driver's own record — the
 * lines the local driver writes to each instance's log when it starts, adopts or sees a process
 * end — and the processes alive in /proc. Pure: the tests read the inputs (test/helpers/haFleet.ts).
 *
 * The rules, per instance, in journal order:
 * - every start and stop intent has a result (none left open once the fleet settled);
 * - a successful start finds the instance down: never started, stopped, or seen ending (an
 *   `instance.exited` / `instance.reaped` event) since its last start — a second start of a live
 *   instance is an action done twice, whoever (whichever token) ordered it;
 * - a successful stop finds it up, unless nothing was left to stop ("already gone");
 * - every process the driver started is the pid of exactly one successful journal start, and
 *   every successful start is a process the driver started: nothing started outside the journal
 *   (a fenced order that got through), nothing journaled that did not happen;
 * - alive now: at most one process group per instance, the one the store records, and every
 *   recorded pid alive (nothing orphaned, nothing duplicated).
 */

import type { DriverLine, EventRow, JournalRow } from "./haFleet.ts";

/** Event types that say an instance's process ended without a stop (so a new start is due). */
export const ENDED_EVENTS = ["instance.exited", "instance.reaped"];

/** The pid a successful start's result names (`pid 123`, `pid 123 (recorded before…)`). */
export function startedPid(entry: JournalRow): number | null {
  const m = /^pid (\d+)/.exec(entry.result?.detail ?? "");
  return m === null ? null : Number(m[1]);
}

/** Violations of the journal rules above (empty: none). `ended` are the ENDED_EVENTS events. */
export function journalViolations(journal: readonly JournalRow[], ended: readonly EventRow[]): string[] {
  const problems: string[] = [];
  const processActions = journal.filter((e) => e.action === "start" || e.action === "stop");
  for (const e of processActions) {
    if (e.result === null) problems.push(`#${e.id} ${e.action} ${e.target} (token ${e.token}) left open`);
  }
  const lastStart = new Map<string, JournalRow>();
  const up = new Set<string>();
  const pidsSeen = new Map<number, JournalRow>();
  for (const e of processActions) {
    if (e.result?.ok !== true) continue;
    const instance = e.target;
    if (e.action === "start") {
      const previous = lastStart.get(instance);
      if (up.has(instance) && previous !== undefined) {
        const endedBetween = ended.some(
          (x) => x.instance === instance && x.at >= previous.at && x.at <= e.at,
        );
        if (!endedBetween) {
          problems.push(
            `${instance} started twice: #${previous.id} (token ${previous.token}, ${previous.result?.detail}) then #${e.id} (token ${e.token}, ${e.result.detail}) with no stop or exit between`,
          );
        }
      }
      const pid = startedPid(e);
      if (pid !== null) {
        const same = pidsSeen.get(pid);
        if (same !== undefined) problems.push(`pid ${pid} journaled as started by #${same.id} and #${e.id}`);
        pidsSeen.set(pid, e);
      }
      up.add(instance);
      lastStart.set(instance, e);
    } else {
      if (!up.has(instance) && e.result.detail !== "already gone") {
        problems.push(
          `${instance} stopped while the journal has it down: #${e.id} (token ${e.token}, ${e.result.detail})`,
        );
      }
      up.delete(instance);
    }
  }
  return problems;
}

/**
 * Violations of "the driver's record and the journal agree": by instance, the pids the driver
 * started and the pids of successful journal starts are the same, each once.
 */
export function driverViolations(
  journal: readonly JournalRow[],
  driver: ReadonlyMap<string, readonly DriverLine[]>,
): string[] {
  const problems: string[] = [];
  const journaled = new Map<string, number[]>();
  for (const e of journal) {
    if (e.action !== "start" || e.result?.ok !== true) continue;
    const pid = startedPid(e);
    if (pid === null) {
      problems.push(`#${e.id} start ${e.target} succeeded without naming a pid: ${e.result.detail}`);
      continue;
    }
    journaled.set(e.target, [...(journaled.get(e.target) ?? []), pid]);
  }
  const instances = new Set([...journaled.keys(), ...driver.keys()]);
  for (const instance of [...instances].sort()) {
    const started = (driver.get(instance) ?? []).filter((l) => l.kind === "start").map((l) => l.pid);
    const inJournal = journaled.get(instance) ?? [];
    const twice = started.filter((pid, i) => started.indexOf(pid) !== i);
    if (twice.length > 0) problems.push(`${instance}: the driver started pid ${twice.join(", ")} twice`);
    const unjournaled = started.filter((pid) => !inJournal.includes(pid));
    if (unjournaled.length > 0)
      problems.push(
        `${instance}: the driver started pid ${unjournaled.join(", ")}, which no journal start names`,
      );
    const phantom = inJournal.filter((pid) => !started.includes(pid));
    if (phantom.length > 0)
      problems.push(`${instance}: journal starts of pid ${phantom.join(", ")} the driver never started`);
  }
  return problems;
}

/**
 * Violations of "the live processes are exactly what the store records": one process group per
 * instance, led by the recorded pid; no live instance process unrecorded; no recorded one dead.
 */
export function processViolations(
  live: ReadonlyMap<string, ReadonlySet<number>>,
  recorded: ReadonlyMap<string, number>,
): string[] {
  const problems: string[] = [];
  for (const [instance, groups] of live) {
    const pid = recorded.get(instance);
    if (pid === undefined)
      problems.push(`${instance} runs (process groups ${[...groups]}) unknown to the store`);
    else if (groups.size !== 1 || !groups.has(pid))
      problems.push(`${instance}: the store records pid ${pid}, running process groups ${[...groups]}`);
  }
  for (const [instance, pid] of recorded) {
    if (!live.has(instance)) problems.push(`${instance}: the store records pid ${pid}, which does not run`);
  }
  return problems;
}

/** Journal entries a leader wrote with `token` at or after `since` (epoch ms): a fenced leader's. */
export function entriesOfToken(journal: readonly JournalRow[], token: number, since: number): JournalRow[] {
  return journal.filter((e) => e.token === token && e.at >= since);
}
