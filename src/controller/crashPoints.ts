/**
 * Crash points: a test hook that SIGKILLs the controller at a named step boundary of a deploy, a
 * rollback, a zone failover, a failback or an apply, so the crash-safety tests can prove that the
 * next controller completes or compensates the plan (test/e2e/crashSafety*.test.ts,
 * docs/operations.md#crash-safety).
 *
 * Off in production: nothing happens unless `HOMEOSTAT_TEST_HOOKS=1` is set as well as
 * `HOMEOSTAT_CRASH_AT=NAME[#N]` (die at the Nth crossing of boundary NAME, the first by default;
 * several specs separated by commas: die at whichever comes first) or
 * `HOMEOSTAT_CRASH_AT_FILE=PATH` (the same specs read from PATH at every crossing, so a test can
 * arm a running controller for the next operation; counting starts again whenever the file's
 * text changes, and an empty or missing file disarms). Before dying the controller writes one line
 * to stderr, `HOMEOSTAT_CRASH_POINT NAME#N pid PID`, so the test knows where it died.
 *
 * Every boundary has a stable name listed in {@link CRASH_BOUNDARIES} (a call with any other name
 * does not compile), and each operation lists the boundaries it crosses, in order, in
 * {@link CRASH_CATALOGUE}: the crash tests iterate over it, and test/controller/crashPoints.test.ts
 * checks that every `crashPoint(…)` in the source is catalogued and every catalogued name is used.
 */

import { readFileSync, writeSync } from "node:fs";

/**
 * Every step boundary: what is durable (or done) when the controller dies there, and what the
 * next controller does about it. The words are the documentation (docs/operations.md).
 */
export const CRASH_BOUNDARIES = {
  // ── Instances (every operation that starts or stops one) ──────────────────────────────────
  "instance.start-intent": {
    state: "the start is journaled (intent); nothing is spawned",
    recovery:
      "no process of the instance is found: the intent is closed as interrupted and reconcile starts the instance if it is still wanted — one successful start",
  },
  "instance.spawned": {
    state: "the process runs; the intent is open and the store does not know its pid",
    recovery:
      "found by the driver's own record (a live group leader writing to the instance's log), recorded as the start would have recorded it and the intent closed as done: adopted, not started again, no orphan",
  },
  "instance.recorded": {
    state: "the process runs and the store has its pid and start time; the intent is still open",
    recovery: "the intent is closed as done with the recorded pid; the process is adopted like any other",
  },
  "instance.stop-intent": {
    state: "the instance is out of the data plane and drained; the stop is journaled, no signal sent",
    recovery:
      "the process still runs: the intent is closed as interrupted, the process adopted and its stop carried on at once (the one stop with a result), never put back in the data plane",
  },
  "instance.stopped": {
    state: "the process group is gone; the intent is open and the store still has the old pid",
    recovery:
      "found gone at adoption: the stop is closed as done and the slot left empty, with no incident (the controller stopped it on purpose)",
  },
  "instance.stop-recorded": {
    state: "the stop's result and the instance's record are written",
    recovery: "nothing left to do; reconcile decides from the record",
  },
  // ── Deploy (homeostat deploy, a release switch of an apply) ───────────────────────────────
  "deploy.recorded": {
    state:
      "the rollout is saved (phase starting), in one transaction with the release's deploying record and its migrations; no split set",
    recovery: "the rollout resumes: its split (100/0) is pushed and the new bank started",
  },
  "deploy.started": {
    state: "the 100/0 split is handed to the data plane (not pushed) and deploy.started recorded",
    recovery: "as deploy.recorded",
  },
  "deploy.step-applied": {
    state: "a step's split is handed to the data plane (not pushed) and announced; the step is not saved",
    recovery:
      "the rollout resumes at the saved step with that step's split; the step is judged again (the data plane reports its figures again to a new controller) and taken again",
  },
  "deploy.step-saved": {
    state: "the step is saved; the data plane may not have its split yet",
    recovery: "the rollout resumes at that step and pushes its split",
  },
  "deploy.step-pushed": {
    state: "the data plane serves the step's split, and the step is saved",
    recovery: "the same split is pushed again (no change); the step goes on",
  },
  "deploy.promoted-applied": {
    state: "100 % to the new release is handed over and the soak announced; not saved",
    recovery: "the last step is judged again and promotes again",
  },
  "deploy.promoted-saved": {
    state: "the soak is saved; the previous bank leaves the desired set (keepStableWarm: false)",
    recovery: "the soak resumes; the previous bank is drained and stopped by the next controller",
  },
  "deploy.proven-applied": {
    state: "the new release is marked proven and the previous superseded; the rollout is not saved finished",
    recovery: "the soak is judged again and proves again (the marks are idempotent)",
  },
  "deploy.proven-saved": {
    state: "the rollout is saved proven and finished; the service's active release is not switched yet",
    recovery:
      "the next controller finishes the switch from the ledger (active release and bank = the proven rollout's) before it decides anything",
  },
  "deploy.rolling-back-applied": {
    state: "the automatic rollback's split (previous release 100 %) is handed over; not saved",
    recovery: "the failing step is judged again and rolls back again; the rollback keeps its one incident",
  },
  "deploy.rolling-back-saved": {
    state: "the rollback is saved; the new bank leaves the desired set",
    recovery: "the rollback resumes with the previous release at 100 %, its incident kept (or opened once)",
  },
  "deploy.rolled-back-saved": {
    state: "the rollout is saved rolled back and finished",
    recovery: "nothing to finish: the active release never changed; the new bank is stopped",
  },
  // ── Rollback (homeostat rollback) ─────────────────────────────────────────────────────────
  "rollback.recorded": {
    state: "the rollback is saved (phase starting); not announced, no incident yet",
    recovery:
      "the rollback resumes (its target bank is started) and its incident is opened by the next controller",
  },
  "rollback.started": {
    state: "rollback.started and its incident are recorded",
    recovery: "the rollback resumes with the incident it has",
  },
  "rollback.switched": {
    state:
      "the target takes 100 % (handed to the data plane), statuses and the active release are switched; the rollback is not saved done",
    recovery:
      "the next controller sees the target ready and switches again (idempotent; the incident is mitigated once), then saves it done",
  },
  "rollback.done-saved": {
    state: "the rollback is saved done; the previous bank leaves the desired set",
    recovery:
      "the previous bank is drained and stopped once the adopted instances are judged (planned stops wait for the membership hold)",
  },
  // ── Zone failover and failback (homeostat failover / failback, and automatic ones) ──────────
  "failover.saved": {
    state: "the evacuation is saved at its first step; the data plane does not have the new shares yet",
    recovery:
      "the next controller pushes the saved shares and goes on once its adopted instances are judged and the data plane has reported its traffic",
  },
  "failover.pushed": {
    state: "the data plane serves the first step's zone shares",
    recovery: "the same shares are pushed again; the evacuation goes on",
  },
  "failback.saved": {
    state: "the failback is saved (the zone starts coming back); shares not pushed yet",
    recovery: "the failback resumes from the saved state",
  },
  "zones.step-saved": {
    state:
      "a zone step (share, phase, capacity added or released) is saved; its shares handed over, not pushed",
    recovery: "the next controller resumes from the saved step and pushes its shares",
  },
  "zones.step-pushed": {
    state: "the data plane serves the step's shares, and the step is saved",
    recovery: "the same shares are pushed again",
  },
  // ── Apply (homeostat apply) ───────────────────────────────────────────────────────────────
  "apply.recorded": {
    state: "the revision is recorded (applying); no component has the new spec",
    recovery:
      "the next controller starts from the revision's text, diffs it against the last applied revision and converges to it",
  },
  "apply.begun": {
    state: "every component has the new spec and edited definitions are recorded; nothing is rolled yet",
    recovery: "as apply.recorded: the diff against the applied revision still shows what to roll",
  },
  "apply.rolled": {
    state: "an in-place roll of one instance was dispatched (its stop begins)",
    recovery:
      "the next controller rolls only the instances not launched as the revision says (launch facts, port, placement): none twice",
  },
  "apply.applied": {
    state: "the revision is marked applied; apply.done not announced",
    recovery: "nothing left to converge; GET /v1/apply says the revision is applied",
  },
} as const satisfies Record<string, { state: string; recovery: string }>;

/** The name of a step boundary. */
export type CrashBoundary = keyof typeof CRASH_BOUNDARIES;

/** The operations whose every boundary the crash tests kill the controller at. */
export type CrashOperation = "deploy" | "autoRollback" | "rollback" | "failover" | "failback" | "apply";

/** The instance boundaries, crossed by every operation that starts or stops instances. */
const STARTS: readonly CrashBoundary[] = ["instance.start-intent", "instance.spawned", "instance.recorded"];
const STOPS: readonly CrashBoundary[] = [
  "instance.stop-intent",
  "instance.stopped",
  "instance.stop-recorded",
];

/** Per operation, the boundaries it crosses, in the order it crosses them. */
export const CRASH_CATALOGUE: Readonly<Record<CrashOperation, readonly CrashBoundary[]>> = {
  deploy: [
    "deploy.recorded",
    "deploy.started",
    ...STARTS,
    "deploy.step-applied",
    "deploy.step-saved",
    "deploy.step-pushed",
    "deploy.promoted-applied",
    "deploy.promoted-saved",
    ...STOPS,
    "deploy.proven-applied",
    "deploy.proven-saved",
  ],
  autoRollback: ["deploy.rolling-back-applied", "deploy.rolling-back-saved", "deploy.rolled-back-saved"],
  rollback: [
    "rollback.recorded",
    "rollback.started",
    ...STARTS,
    "rollback.switched",
    "rollback.done-saved",
    ...STOPS,
  ],
  failover: ["failover.saved", "failover.pushed", "zones.step-saved", "zones.step-pushed", ...STARTS],
  failback: ["failback.saved", "zones.step-saved", "zones.step-pushed", ...STOPS],
  apply: ["apply.recorded", "apply.begun", "apply.rolled", ...STOPS, ...STARTS, "apply.applied"],
};

/** The line written to stderr just before the controller kills itself. */
export const CRASH_MARKER = "HOMEOSTAT_CRASH_POINT";

const NONE: ReadonlyMap<string, number> = new Map();
const crossings = new Map<string, number>();
let armedText: string | null = null;
let armedSpecs = new Map<string, number>();

/**
 * The boundaries armed now, each with the crossing it kills at; empty when the hook is off
 * (unless HOMEOSTAT_TEST_HOOKS=1) or disarmed. A spec is `NAME[#N]`, several separated by commas
 * or white space: the controller dies at whichever comes first.
 */
function armed(): ReadonlyMap<string, number> {
  if (process.env.HOMEOSTAT_TEST_HOOKS !== "1") return NONE;
  let text = process.env.HOMEOSTAT_CRASH_AT?.trim() ?? "";
  const file = process.env.HOMEOSTAT_CRASH_AT_FILE;
  if (file !== undefined && file !== "") {
    try {
      text = readFileSync(file, "utf8").trim();
    } catch {
      text = "";
    }
  }
  if (text !== armedText) {
    // A new spec: crossings are counted from now on.
    armedText = text;
    crossings.clear();
    armedSpecs = new Map();
    for (const spec of text.split(/[\s,]+/).filter((part) => part !== "")) {
      const [name = "", count] = spec.split("#");
      const occurrence = count === undefined ? 1 : Number(count);
      armedSpecs.set(name, Number.isInteger(occurrence) && occurrence > 0 ? occurrence : 1);
    }
  }
  return armedSpecs;
}

/** Counts this crossing; the occurrence when it is the one an armed spec names, else null. */
function due(name: CrashBoundary): { occurrence: number } | null {
  const wanted = armed().get(name);
  if (wanted === undefined) return null;
  const occurrence = (crossings.get(name) ?? 0) + 1;
  crossings.set(name, occurrence);
  return occurrence === wanted ? { occurrence } : null;
}

function die(name: CrashBoundary, occurrence: number): never {
  writeSync(2, `${CRASH_MARKER} ${name}#${occurrence} pid ${process.pid}\n`);
  process.kill(process.pid, "SIGKILL");
  // SIGKILL to oneself is delivered before kill() returns to user space; block just in case, so
  // nothing after the boundary can run.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10_000);
  throw new Error("unreachable: the controller survived its own SIGKILL");
}

/**
 * Step boundary `name`: when the test hook is armed for this crossing, the controller dies here
 * (SIGKILL, nothing after this line runs). A no-op in production.
 */
export function crashPoint(name: CrashBoundary): void {
  const hit = due(name);
  if (hit !== null) die(name, hit.occurrence);
}

/**
 * Step boundary `name` that lies after a side effect completing elsewhere (the data plane
 * applying a snapshot): when armed for this crossing, the controller dies once `settled()` has
 * resolved (the controller keeps running meanwhile, as it would). A no-op in production:
 * `settled` is not even called.
 */
export function crashPointAfter(name: CrashBoundary, settled: () => Promise<unknown>): void {
  const hit = due(name);
  if (hit === null) return;
  void settled()
    .catch(() => undefined)
    .then(() => die(name, hit.occurrence));
}
