/**
 * What a controller that starts does about the actions the last one left half-done (journal
 * intents without a result), before it adopts anything: a start whose process was spawned is
 * adopted — not started a second time, not left running unknown to the store — and a process of
 * the fleet nobody records is stopped. Stop intents are settled by the adoption that follows (see
 * Controller.adoptPrevious): a process gone is the stop's doing, one still running is decided
 * again. Everything else is closed as interrupted. See docs/operations.md#crash-safety.
 */

import { launchFor } from "../act/launchFor.ts";
import type { Reason } from "../decide/reasons.ts";
import type { Driver } from "../drivers/driver.ts";
import type { FleetSpec } from "../spec/model.ts";
import type { JournalRecord, StateStore } from "../store/index.ts";
import { launchFactsOf } from "../verify/convergence.ts";

/** The journal data of a start intent (Controller.startInstance writes it). */
interface StartData {
  release?: string;
  port?: number;
  service?: string;
  slot?: number;
}

export interface InterruptedWork {
  /** Pending stop intents by instance: settled once adoption tells whether the process is gone. */
  stops: Map<string, JournalRecord>;
}

/**
 * Settle the journal intents the last controller left open, adopting the processes of starts
 * that did spawn (recorded in the store as if the start had finished) and stopping processes of
 * the fleet the store does not know. Returns the stop intents, for adoption to settle.
 */
export async function recoverInterrupted(o: {
  store: StateStore;
  driver: Driver;
  fleet: FleetSpec;
  now: () => number;
  note: (type: string, why: Reason, data: Record<string, unknown>) => void;
}): Promise<InterruptedWork> {
  const { store, driver } = o;
  const pending = store.pendingIntents();
  const settled = new Set<number>();
  const records = new Map(store.listInstances().map((r) => [r.name, r]));
  for (const stray of driver.strays?.() ?? []) {
    const record = records.get(stray.instance);
    if (record?.pid === stray.handle.pid && record.startTime === stray.handle.startTime) continue;
    const intent = pending.findLast(
      (p) => p.action === "start" && p.target === stray.instance && !settled.has(p.id),
    );
    const data = (intent?.data ?? {}) as StartData;
    const service = o.fleet.services.find((s) => s.name === data.service);
    const launch =
      intent !== undefined &&
      service !== undefined &&
      typeof data.slot === "number" &&
      typeof data.release === "string" &&
      service.releases[data.release] !== undefined &&
      (record === undefined || record.pid === null)
        ? launchFor(service, data.slot, data.release)
        : null;
    if (intent !== undefined && launch !== null && launch.instance === stray.instance) {
      // The start did happen: the process is the instance, started as the intent says. Recorded
      // now exactly as the start would have recorded it, so adoption takes it like any other.
      const facts = launchFactsOf(launch.release);
      store.putInstance({
        name: launch.instance,
        service: launch.service,
        slot: launch.slot,
        port: launch.port,
        release: data.release!,
        zone: launch.placement.zone,
        host: launch.placement.host,
        pid: stray.handle.pid,
        startTime: stray.handle.startTime,
        logPath: stray.handle.logPath,
        startedAt: intent.at,
        generation: (record?.generation ?? 0) + 1,
        desired: "running",
        lastExit: null,
        configHash: facts.configHash,
        secretVersions: facts.secretVersions,
      });
      store.journalResult(intent.id, {
        at: o.now(),
        ok: true,
        detail: `pid ${stray.handle.pid} (spawned before the controller stopped; adopted by the next one)`,
      });
      settled.add(intent.id);
      o.note(
        "instance.recovered",
        {
          code: "adopted",
          message: `${launch.instance} (pid ${stray.handle.pid}) was started by a controller that died before recording it: adopted, not started again`,
        },
        { instance: launch.instance, service: launch.service, pid: stray.handle.pid },
      );
      continue;
    }
    // A process of the fleet nobody records and no start accounts for: nothing would ever stop
    // it, and it may hold the instance's port. It goes.
    if ((await driver.adopt(stray.instance, stray.handle)) === "adopted")
      await driver.stop(stray.instance, 0);
    o.note(
      "instance.stray-stopped",
      {
        code: "reaped",
        message: `pid ${stray.handle.pid} ran as ${stray.instance} without the store knowing it: stopped`,
      },
      { instance: stray.instance, pid: stray.handle.pid },
    );
  }
  const stops = new Map<string, JournalRecord>();
  const recorded = new Map(store.listInstances().map((r) => [r.name, r]));
  for (const intent of pending) {
    if (settled.has(intent.id)) continue;
    const record = recorded.get(intent.target);
    if (
      intent.action === "start" &&
      record?.pid != null &&
      record.startedAt !== null &&
      record.startedAt >= intent.at
    ) {
      // Spawned and recorded; only the journal's result was missing. Adoption takes it.
      store.journalResult(intent.id, {
        at: o.now(),
        ok: true,
        detail: `pid ${record.pid} (recorded before the controller stopped)`,
      });
      continue;
    }
    if (intent.action === "stop") {
      // The latest stop of an instance is settled by adoption; an older one was superseded.
      const earlier = stops.get(intent.target);
      if (earlier !== undefined) interrupted(store, earlier, o.now());
      stops.set(intent.target, intent);
      continue;
    }
    interrupted(
      store,
      intent,
      o.now(),
      intent.action === "start" ? "no process of it was found: it had not started" : undefined,
    );
  }
  return { stops };
}

function interrupted(store: StateStore, intent: JournalRecord, at: number, why?: string): void {
  store.journalResult(intent.id, {
    at,
    ok: false,
    detail: `interrupted: the controller stopped before this action finished${why === undefined ? "" : ` (${why})`}`,
  });
}
