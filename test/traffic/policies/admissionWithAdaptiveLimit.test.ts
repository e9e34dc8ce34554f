import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import type { Criticality, Permit } from "../../../src/traffic/contracts.ts";
import { AdaptiveLimit } from "../../../src/traffic/policies/adaptiveLimit.ts";
import { AdmissionController } from "../../../src/traffic/policies/admissionController.ts";
import { type FakeClock, fakeClock, flush } from "./kit.ts";

/**
 * A simulated overloaded backend behind one AdmissionController, on a fake clock stepped 1 ms at a
 * time. The backend has 8 workers and shares them between the requests it holds (processor
 * sharing): a request that starts with n in flight takes 10 ms × max(1, n / 8). Clients give up
 * after 50 ms (a timeout: `dropped`). Offered load is twice what the backend can serve.
 */
const WORKERS = 8;
const BASE_MS = 10;
const TIMEOUT_MS = 50;
const ARRIVALS_PER_MS = 1.6;
const DURATION_MS = 4_000;
const REASONS = ["over-limit", "queue-full", "queue-timeout", "aborted"] as const;

interface Outcome {
  ok: number;
  timedOut: number;
  shed: number;
  peakInFlight: number;
}

async function simulate(admission: AdmissionController, clock: FakeClock): Promise<Outcome> {
  const measureFromMs = DURATION_MS / 2;
  const completions: Array<{ at: number; permit: Permit; latencyMs: number; dropped: boolean }> = [];
  const outcome: Outcome = { ok: 0, timedOut: 0, shed: 0, peakInFlight: 0 };
  const measuring = () => clock.now() >= measureFromMs;
  const start = (permit: Permit): void => {
    const inFlight = admission.inFlight;
    outcome.peakInFlight = Math.max(outcome.peakInFlight, inFlight);
    const latencyMs = BASE_MS * Math.max(1, inFlight / WORKERS);
    const dropped = latencyMs > TIMEOUT_MS;
    const at = clock.now() + (dropped ? TIMEOUT_MS : latencyMs);
    let i = completions.length;
    while (i > 0 && completions[i - 1]!.at > at) i--;
    completions.splice(i, 0, { at, permit, latencyMs: dropped ? TIMEOUT_MS : latencyMs, dropped });
  };
  let arrivalCredit = 0;
  let serial = 0;
  for (; clock.now() < DURATION_MS; clock.advance(1)) {
    while (completions.length > 0 && completions[0]!.at <= clock.now()) {
      const done = completions.shift()!;
      done.permit.release({ latencyMs: done.latencyMs, dropped: done.dropped });
      if (measuring()) {
        if (done.dropped) outcome.timedOut++;
        else outcome.ok++;
      }
    }
    await flush();
    for (arrivalCredit += ARRIVALS_PER_MS; arrivalCredit >= 1; arrivalCredit--) {
      const criticality: Criticality =
        serial % 10 === 0 ? "critical" : serial % 4 === 0 ? "sheddable" : "default";
      serial++;
      admission.acquire(criticality).then((result) => {
        if (result.admitted) start(result);
        else if (measuring()) outcome.shed++;
      });
    }
    await flush();
  }
  return outcome;
}

/** An admission controller on `clock`; whatever is still queued when the test ends is timed out. */
function admissionWith(
  t: TestContext,
  limit: () => number,
  clock: FakeClock,
  adaptive?: AdaptiveLimit,
): AdmissionController {
  const admission = new AdmissionController({
    limit,
    queueSize: 20,
    queueTimeoutMs: 30,
    now: clock.now,
    // Real timers run on the machine's time, not the simulation's: under CPU load they would
    // expire waiters early in simulated time. Expiry here comes from the simulated clock alone.
    timers: { set: () => undefined, clear: () => {} },
    onRelease: adaptive ? (o, inFlight) => adaptive.onSample(o.latencyMs, inFlight, o.dropped) : undefined,
  });
  t.after(() => {
    clock.advance(1e12);
    admission.limitChanged();
  });
  return admission;
}

describe("AdmissionController with an AdaptiveLimit", () => {
  it("finds the backend's capacity under overload: sheds the excess instead of timing out", async (t) => {
    const adaptiveClock = fakeClock(0);
    const adaptive = new AdaptiveLimit();
    const withAdaptive = admissionWith(t, () => adaptive.limit, adaptiveClock, adaptive);
    const adaptiveRun = await simulate(withAdaptive, adaptiveClock);
    // Control: the same load with a limit that never binds.
    const fixedClock = fakeClock(0);
    const fixedRun = await simulate(
      admissionWith(t, () => 1_000, fixedClock),
      fixedClock,
    );

    const capacity = (WORKERS / BASE_MS) * (DURATION_MS / 2); // requests the backend can serve in the measured half
    // Without a limit, in-flight piles up until every request times out: goodput collapses.
    assert.ok(fixedRun.ok < capacity * 0.2, `unlimited goodput ${fixedRun.ok} of ${capacity}`);
    assert.ok(fixedRun.timedOut > fixedRun.ok);
    // With the adaptive limit, most of the capacity is served, few requests time out, and the
    // overload is shed at the door (fast, with Retry-After) instead.
    assert.ok(adaptiveRun.ok > capacity * 0.7, `adaptive goodput ${adaptiveRun.ok} of ${capacity}`);
    // A baseline that followed the queueing up (Gradient2's drift) ran at the timeout's edge here.
    assert.ok(adaptiveRun.timedOut < adaptiveRun.ok * 0.02, `${adaptiveRun.timedOut} timeouts`);
    assert.ok(adaptiveRun.shed > 0);
    assert.ok(adaptive.limit >= 4 && adaptive.limit <= 3 * WORKERS, `limit settled at ${adaptive.limit}`);
    const stats = withAdaptive.stats();
    assert.ok(stats.rejected["over-limit"].sheddable > 0, "sheddable traffic goes first");
    assert.ok(stats.admitted.critical > 0);
    const criticalRejected = REASONS.reduce((sum, reason) => sum + stats.rejected[reason].critical, 0);
    assert.equal(criticalRejected, 0, "critical traffic is never shed: defaults make room for it");
  });

  it("admits no more than the adaptive limit at once, and shrinks it when requests time out", async (t) => {
    const clock = fakeClock(0);
    const adaptive = new AdaptiveLimit({ initial: 10 });
    const admission = admissionWith(t, () => adaptive.limit, clock, adaptive);
    const permits: Permit[] = [];
    for (let i = 0; i < 25; i++) {
      admission.acquire("default").then((result) => {
        if (result.admitted) permits.push(result);
      });
    }
    await flush();
    assert.equal(permits.length, 10);
    assert.equal(admission.queued, 15);
    // The first ten time out. Each release admits one queued request while the limit is still 10;
    // the tenth closes the adaptive window of drops, the limit falls to 9, and that release frees
    // no slot: in flight stays at the new limit.
    for (const permit of permits.slice(0, 10)) {
      permit.release({ latencyMs: 1_000, dropped: true });
      await flush();
    }
    assert.equal(adaptive.limit, 9);
    assert.equal(admission.inFlight, 9);
    assert.equal(admission.queued, 6);
    assert.equal(permits.length, 19);
  });
});
