import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { InstanceHealth } from "../../src/observe/health.ts";
import {
  type FailureObservation,
  type IncidentChange,
  type IncidentView,
  onActionStarted,
  onFailure,
  onHealth,
  onRollbackDone,
  onRollbackFailed,
  onRollbackStarted,
  onStable,
} from "../../src/verify/incidentRules.ts";
import type { GateVerdict } from "../../src/verify/verificationGate.ts";

const T0 = 1_700_000_000_000;
const STABILIZE_MS = 30_000;

/** A gate that passes, and one that blocks on an instance still on an old config. */
const PASS: GateVerdict = {
  passed: true,
  converged: { ok: true, detail: "all 3 instance(s) ready on the desired release, config and secrets" },
  slo: { ok: true, detail: "no front port: SLO not measured, verified on readiness alone" },
  invariants: { ok: true, detail: "security invariants hold" },
  blocking: [],
};
const BLOCKED: GateVerdict = {
  ...PASS,
  passed: false,
  converged: { ok: false, detail: "not converged: api-2 on an old config of v1" },
  blocking: ["not converged: api-2 on an old config of v1"],
};

function failure(overrides: Partial<FailureObservation> = {}): FailureObservation {
  return {
    instance: "api-0",
    service: "api",
    kind: "exited",
    reason: "exited",
    detail: "exited with code 1",
    at: T0,
    lastGoodAt: T0 - 1_500,
    ...overrides,
  };
}

function incident(overrides: Partial<IncidentView> = {}): IncidentView {
  return {
    id: 7,
    status: "open",
    reason: "exited",
    detectedAt: T0,
    lastGoodAt: T0 - 1_500,
    actionStartedAt: null,
    mitigatedAt: null,
    closedAt: null,
    stabilizedAt: null,
    verifiedAt: null,
    ...overrides,
  };
}

function ready(since: number): InstanceHealth {
  return { state: "ready", lastGoodAt: since, since, reason: "readiness: passing" };
}

/** Applies an update's patch to the view, the way the store would. */
function apply(view: IncidentView, change: IncidentChange | null): IncidentView {
  assert.ok(change !== null && change.type === "update", `expected an update, got ${JSON.stringify(change)}`);
  assert.equal(change.id, view.id);
  const { ttdMs: _ttd, ttrMs: _ttr, detail: _detail, ...fields } = change.patch;
  return { ...view, ...fields };
}

describe("onFailure", () => {
  it("opens an incident with ttdMs = at − lastGoodAt", () => {
    const change = onFailure(null, failure({ at: T0, lastGoodAt: T0 - 1_500 }));
    assert.deepEqual(change, {
      type: "open",
      incident: {
        service: "api",
        instance: "api-0",
        kind: "exited",
        reason: "exited",
        detectedAt: T0,
        lastGoodAt: T0 - 1_500,
        ttdMs: 1_500,
        detail: "exited with code 1",
      },
      timeline: { at: T0, phase: "detected", detail: "exited with code 1" },
    });
  });

  it("opens with ttdMs null when the instance was never seen good", () => {
    const change = onFailure(null, failure({ lastGoodAt: null }));
    assert.equal(change.type, "open");
    if (change.type !== "open") return;
    assert.equal(change.incident.ttdMs, null);
    assert.equal(change.incident.lastGoodAt, null);
  });

  it("keeps the failure's kind and reason on the new incident", () => {
    const change = onFailure(
      null,
      failure({
        kind: "liveness-failed",
        reason: "liveness-failed",
        detail: "liveness: 3 consecutive failures",
      }),
    );
    assert.ok(change.type === "open");
    assert.equal(change.incident.kind, "liveness-failed");
    assert.equal(change.incident.reason, "liveness-failed");
    assert.equal(change.timeline.detail, "liveness: 3 consecutive failures");
  });

  it("never reports a negative time to detect", () => {
    const change = onFailure(null, failure({ at: T0, lastGoodAt: T0 + 50 }));
    assert.ok(change.type === "open");
    assert.equal(change.incident.ttdMs, 0);
  });

  it("appends failed-again for a second failure of an open incident", () => {
    const change = onFailure(incident(), failure({ at: T0 + 400, detail: "exited with code 2" }));
    assert.deepEqual(change, {
      type: "update",
      id: 7,
      patch: { detail: "exited with code 2" },
      timeline: { at: T0 + 400, phase: "failed-again", detail: "exited with code 2" },
    });
  });

  it("marks a failure after mitigation as regressed and clears mitigatedAt and ttrMs", () => {
    const change = onFailure(incident({ mitigatedAt: T0 + 700 }), failure({ at: T0 + 5_000 }));
    assert.ok(change.type === "update");
    assert.equal(change.timeline.phase, "regressed");
    assert.equal(change.patch.mitigatedAt, null);
    assert.equal(change.patch.ttrMs, null);
    assert.ok("mitigatedAt" in change.patch && "ttrMs" in change.patch);
  });

  it("does not touch mitigation fields when the incident was not mitigated", () => {
    const change = onFailure(incident(), failure({ at: T0 + 400 }));
    assert.ok(change.type === "update");
    assert.equal("mitigatedAt" in change.patch, false);
    assert.equal("ttrMs" in change.patch, false);
  });

  it("upgrades the reason to crash-loop once the slot is crash-looping", () => {
    const change = onFailure(
      incident(),
      failure({ at: T0 + 9_000, reason: "crash-loop", detail: "5 failures in 60s" }),
    );
    assert.ok(change.type === "update");
    assert.equal(change.patch.reason, "crash-loop");
    assert.equal(change.timeline.phase, "crash-loop");
    assert.equal(change.timeline.detail, "5 failures in 60s");
  });

  it("upgrades to crash-loop and still clears a mitigation that did not hold", () => {
    const change = onFailure(
      incident({ mitigatedAt: T0 + 700 }),
      failure({ at: T0 + 9_000, reason: "crash-loop" }),
    );
    assert.ok(change.type === "update");
    assert.equal(change.patch.reason, "crash-loop");
    assert.equal(change.patch.mitigatedAt, null);
    assert.equal(change.patch.ttrMs, null);
  });

  it("does not upgrade twice: later crash-loop failures are failed-again", () => {
    const change = onFailure(
      incident({ reason: "crash-loop" }),
      failure({ at: T0 + 40_000, reason: "crash-loop" }),
    );
    assert.ok(change.type === "update");
    assert.equal(change.timeline.phase, "failed-again");
    assert.equal("reason" in change.patch, false);
  });

  it("keeps an incident crash-looping when a later failure reports a plain reason", () => {
    const change = onFailure(
      incident({ reason: "crash-loop" }),
      failure({ at: T0 + 40_000, reason: "exited" }),
    );
    assert.ok(change.type === "update");
    assert.equal("reason" in change.patch, false);
  });
});

describe("onActionStarted", () => {
  it("records the first action on the incident", () => {
    assert.deepEqual(onActionStarted(incident(), T0 + 5, "starting api-0 (v1)"), {
      type: "update",
      id: 7,
      patch: { actionStartedAt: T0 + 5 },
      timeline: { at: T0 + 5, phase: "action-started", detail: "starting api-0 (v1)" },
    });
  });

  it("ignores later actions", () => {
    assert.equal(onActionStarted(incident({ actionStartedAt: T0 + 5 }), T0 + 900, "starting again"), null);
  });
});

describe("onHealth", () => {
  it("ignores health that is not ready", () => {
    for (const state of ["starting", "unready", "unhealthy"] as const) {
      const health: InstanceHealth = { state, lastGoodAt: null, since: T0 + 100, reason: state };
      assert.equal(onHealth(incident(), health, T0 + 100, STABILIZE_MS, PASS), null);
      assert.equal(
        onHealth(incident({ mitigatedAt: T0 + 50 }), health, T0 + 100_000, STABILIZE_MS, PASS),
        null,
      );
    }
  });

  it("mitigates once ready, with ttrMs = ready since − detected", () => {
    assert.deepEqual(onHealth(incident(), ready(T0 + 1_250), T0 + 1_400, STABILIZE_MS, PASS), {
      type: "update",
      id: 7,
      patch: { mitigatedAt: T0 + 1_250, ttrMs: 1_250 },
      timeline: { at: T0 + 1_250, phase: "mitigated", detail: "a replacement instance is ready" },
    });
  });

  it("never mitigates before detection (a readiness edge older than the incident counts from detection)", () => {
    const change = onHealth(incident(), ready(T0 - 10_000), T0 + 200, STABILIZE_MS, PASS);
    assert.ok(change?.type === "update");
    assert.equal(change.patch.mitigatedAt, T0);
    assert.equal(change.patch.ttrMs, 0);
  });

  it("does not close in the same step that mitigates, even if ready for long", () => {
    const change = onHealth(incident(), ready(T0 + 100), T0 + 10 * STABILIZE_MS, STABILIZE_MS, PASS);
    assert.ok(change?.type === "update");
    assert.equal(change.patch.status, undefined);
    assert.equal(change.timeline.phase, "mitigated");
  });

  it("verifies and closes only once ready for stabilizeMs since mitigation and the gate passes", () => {
    const mitigated = incident({ mitigatedAt: T0 + 1_000 });
    const health = ready(T0 + 1_000);
    assert.equal(onHealth(mitigated, health, T0 + 1_000 + STABILIZE_MS - 1, STABILIZE_MS, PASS), null);
    const closing = onHealth(mitigated, health, T0 + 1_000 + STABILIZE_MS, STABILIZE_MS, PASS);
    const at = T0 + 1_000 + STABILIZE_MS;
    assert.deepEqual(closing, {
      type: "update",
      id: 7,
      patch: { status: "closed", closedAt: at, verifiedAt: at, stabilizedAt: at },
      timeline: {
        at,
        phase: "verified",
        detail:
          "ready without interruption for 30s; all 3 instance(s) ready on the desired release, config and secrets; no front port: SLO not measured, verified on readiness alone; security invariants hold",
      },
    });
  });

  it("a blocked gate leaves it open, stabilized once with the reason, until the gate passes", () => {
    const mitigated = incident({ mitigatedAt: T0 + 1_000 });
    const health = ready(T0 + 1_000);
    const at = T0 + 1_000 + STABILIZE_MS;
    const stabilized = onHealth(mitigated, health, at, STABILIZE_MS, BLOCKED);
    assert.deepEqual(stabilized, {
      type: "update",
      id: 7,
      patch: { stabilizedAt: at },
      timeline: {
        at,
        phase: "stabilized",
        detail:
          "ready without interruption for 30s; not verified: not converged: api-2 on an old config of v1",
      },
    });
    const waiting = apply(mitigated, stabilized);
    assert.equal(waiting.status, "open");
    // Said once: later ticks with the gate still blocked change nothing.
    assert.equal(onHealth(waiting, health, at + 5_000, STABILIZE_MS, BLOCKED), null);
    const verified = onHealth(waiting, health, at + 9_000, STABILIZE_MS, PASS);
    assert.ok(verified?.type === "update");
    assert.deepEqual(verified.patch, { status: "closed", closedAt: at + 9_000, verifiedAt: at + 9_000 });
    assert.equal(verified.timeline.phase, "verified");
  });

  it("a failure after stabilization (gate still blocked) regresses and clears the stabilization", () => {
    const waiting = incident({ mitigatedAt: T0 + 1_000, stabilizedAt: T0 + 31_000 });
    const change = onFailure(waiting, failure({ at: T0 + 40_000 }));
    assert.ok(change.type === "update");
    assert.equal(change.timeline.phase, "regressed");
    assert.equal(change.patch.stabilizedAt, null);
    assert.equal(change.patch.mitigatedAt, null);
  });

  it("counts stability from the latest ready edge when readiness blinked after mitigation", () => {
    const mitigated = incident({ mitigatedAt: T0 + 1_000 });
    // Ready again since T0+20s after a blink: 30s from mitigation is not enough.
    const reReady = ready(T0 + 20_000);
    assert.equal(onHealth(mitigated, reReady, T0 + 31_000, STABILIZE_MS, PASS), null);
    assert.equal(onHealth(mitigated, reReady, T0 + 49_999, STABILIZE_MS, PASS), null);
    const closing = onHealth(mitigated, reReady, T0 + 50_000, STABILIZE_MS, PASS);
    assert.ok(closing?.type === "update");
    assert.equal(closing.patch.status, "closed");
    assert.equal(closing.patch.closedAt, T0 + 50_000);
  });

  it("re-mitigates after a regression, timing recovery from detection again", () => {
    const regressed = apply(
      incident({ mitigatedAt: T0 + 1_000 }),
      onFailure(incident({ mitigatedAt: T0 + 1_000 }), failure({ at: T0 + 5_000 })),
    );
    assert.equal(regressed.mitigatedAt, null);
    const change = onHealth(regressed, ready(T0 + 6_000), T0 + 6_100, STABILIZE_MS, PASS);
    assert.ok(change?.type === "update");
    assert.equal(change.patch.mitigatedAt, T0 + 6_000);
    assert.equal(change.patch.ttrMs, 6_000);
  });
});

describe("incident lifecycle", () => {
  it("detects, acts, mitigates, regresses, re-mitigates and closes after a quiet window", () => {
    const opened = onFailure(null, failure({ at: T0, lastGoodAt: T0 - 2_000 }));
    assert.ok(opened.type === "open");
    assert.equal(opened.incident.ttdMs, 2_000);
    let view = incident({ detectedAt: opened.incident.detectedAt, lastGoodAt: opened.incident.lastGoodAt });
    const phases: string[] = [opened.timeline.phase];

    const steps: Array<() => IncidentChange | null> = [
      () => onActionStarted(view, T0 + 10, "starting api-0"),
      () => onActionStarted(view, T0 + 20, "starting api-0 again"),
      () => onHealth(view, ready(T0 + 800), T0 + 900, STABILIZE_MS, PASS),
      () => onFailure(view, failure({ at: T0 + 5_000 })),
      () =>
        onHealth(
          view,
          { state: "starting", lastGoodAt: null, since: T0 + 5_100, reason: "" },
          T0 + 5_200,
          STABILIZE_MS,
          PASS,
        ),
      () => onHealth(view, ready(T0 + 6_000), T0 + 6_000, STABILIZE_MS, PASS),
      () => onHealth(view, ready(T0 + 6_000), T0 + 20_000, STABILIZE_MS, PASS),
      () => onHealth(view, ready(T0 + 6_000), T0 + 36_000, STABILIZE_MS, PASS),
    ];
    for (const step of steps) {
      const change = step();
      if (change === null) continue;
      phases.push(change.timeline.phase);
      view = apply(view, change);
    }
    assert.deepEqual(phases, [
      "detected",
      "action-started",
      "mitigated",
      "regressed",
      "mitigated",
      "verified",
    ]);
    assert.equal(view.status, "closed");
    assert.equal(view.closedAt, T0 + 36_000);
    assert.equal(view.verifiedAt, T0 + 36_000);
    assert.equal(view.actionStartedAt, T0 + 10);
    assert.equal(view.mitigatedAt, T0 + 6_000);
  });
});

describe("rollbacks are recoveries", () => {
  it("open a service-level incident, mitigate when the target serves, verify through the gate", () => {
    const opened = onRollbackStarted({
      service: "api",
      from: "v2",
      to: "v1",
      at: T0,
      detail: "rollback asked",
    });
    assert.ok(opened.type === "open");
    assert.equal(opened.incident.kind, "rollback");
    assert.equal(opened.incident.instance, "api");
    let view = incident({ detectedAt: T0, lastGoodAt: null });
    view = apply(view, onRollbackDone(view, T0 + 4_000, "v1 is ready and serves all traffic"));
    assert.equal(view.mitigatedAt, T0 + 4_000);
    const blocked = onStable(view, T0 + 40_000, "the rollback's target served for 36s", {
      ...PASS,
      passed: false,
      invariants: {
        ok: false,
        detail: "invariant broken: GET /admin answered 200 without credentials on api-3",
      },
      blocking: ["invariant broken: GET /admin answered 200 without credentials on api-3"],
    });
    assert.ok(blocked?.type === "update");
    assert.equal(blocked.timeline.phase, "stabilized");
    assert.match(blocked.timeline.detail, /not verified: invariant broken: GET \/admin answered 200/);
    view = apply(view, blocked);
    assert.equal(view.status, "open");
    const verified = onStable(view, T0 + 45_000, "the rollback's target served for 41s", PASS);
    view = apply(view, verified);
    assert.equal(view.status, "closed");
    assert.equal(view.verifiedAt, T0 + 45_000);
  });

  it("a failed rollback closes unverified", () => {
    const view = apply(incident(), onRollbackFailed(incident(), T0 + 60_000, "v1 not ready within 60s"));
    assert.equal(view.status, "closed");
    assert.equal(view.verifiedAt, null);
  });
});
