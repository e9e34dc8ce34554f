/**
 * What is changing now: deploys and rollbacks in progress (step by step, with each check's
 * verdict), zones failing over or back, and the last few rollouts that finished.
 */

import { Section } from "../components/Section.tsx";
import { clock, duration } from "../format.ts";
import type { Fleet } from "../live.ts";
import type { FailoverService, FailoverZone, Rollout } from "../model.ts";

/** The deploys, rollbacks and failovers panel: those in progress first, then up to four finished. */
export function Activity(props: { fleet: Fleet }) {
  const rollouts = Object.values(props.fleet.releases)
    .flatMap((r) => r.rollouts)
    .sort((a, b) => Number(a.finished) - Number(b.finished) || b.state.startedAt - a.state.startedAt);
  const active = rollouts.filter((r) => !r.finished);
  const recent = rollouts.filter((r) => r.finished).slice(0, 4);
  const shifts = (props.fleet.failover?.zones ?? []).filter((z) => z.shift !== null);
  return (
    <Section id="activity" title="Deploys, rollbacks and failovers">
      {active.length === 0 && shifts.length === 0 && <p class="quiet">Nothing in progress.</p>}
      <div class="cards">
        {active.map((r) => (
          <RolloutCard key={`${r.state.service}-${r.id}`} rollout={r} />
        ))}
        {shifts.map((z) => (
          <ShiftCard key={z.zone} zone={z} services={props.fleet.failover?.services ?? []} />
        ))}
      </div>
      {recent.length > 0 && (
        <>
          <h3>Recently finished</h3>
          <div class="cards">
            {recent.map((r) => (
              <RolloutCard key={`${r.state.service}-${r.id}`} rollout={r} />
            ))}
          </div>
        </>
      )}
    </Section>
  );
}

/** A zone being evacuated or brought back: where it is, why, and how the survivors are protected. */
function ShiftCard(props: { zone: FailoverZone; services: FailoverService[] }) {
  const { zone } = props;
  const shift = (zone.shift ?? {}) as {
    phase?: string;
    share?: number;
    trigger?: string;
    reason?: string;
    startedAt?: number;
    lastStepAt?: number;
    held?: unknown;
  };
  const phase = shift.phase ?? "shifting";
  return (
    <article class="card" data-failover={zone.zone} data-phase={phase} aria-labelledby={`shift-${zone.zone}`}>
      <h3 id={`shift-${zone.zone}`}>
        <span aria-hidden="true">⇄ </span>
        {phase.startsWith("fail") ? "Failback" : "Failover"} of {zone.zone}{" "}
        <span class="badge s-recovering">
          <span aria-hidden="true">↻</span> {phase}
        </span>
      </h3>
      <p class="small">
        {zone.zone} gets <strong>{Math.round((shift.share ?? zone.share) * 100)} %</strong> of its traffic ·{" "}
        {shift.trigger ?? "manual"} · {shift.reason ?? zone.reason}
      </p>
      <p class="small">
        started {clock(shift.startedAt)} · last step {clock(shift.lastStepAt)}
        {shift.held !== null && shift.held !== undefined && <> · held: {JSON.stringify(shift.held)}</>}
      </p>
      {props.services.length > 0 && (
        <ul class="steps" aria-label="Survivor protection">
          {props.services.map((s) => {
            const over = s.projectedUtilization === null || s.projectedUtilization > s.ceiling;
            const util =
              s.projectedUtilization === null ? "∞" : `${Math.round(s.projectedUtilization * 100)}`;
            const shed = Object.entries(s.shed ?? {}).filter(([, v]) => v > 0);
            return (
              <li key={s.service}>
                <span aria-hidden="true">{over ? "⚠ " : "✔ "}</span>
                <strong>{s.service}</strong>: survivors at {util} % (ceiling {Math.round(s.ceiling * 100)} %),{" "}
                {Math.round(s.demandRps)} of {Math.round(s.servingCapacityRps)} req/s
                {s.addedInstances.length > 0 && <> · added {s.addedInstances.join(", ")}</>}
                {shed.length > 0 && (
                  <> · shedding {shed.map(([c, v]) => `${c} ${Math.round(v * 100)} %`).join(", ")}</>
                )}
                {s.reasons.length > 0 && <div class="small">{s.reasons.join("; ")}</div>}
              </li>
            );
          })}
        </ul>
      )}
    </article>
  );
}

/** Icon and colour of a rollout phase that says how it ended; any other is in progress or done. */
const PHASE_LOOK: Record<string, { icon: string; cls: string }> = {
  "rolled-back": { icon: "↩", cls: "s-failing" },
  "rolling-back": { icon: "↩", cls: "s-recovering" },
  failed: { icon: "✖", cls: "s-failing" },
  succeeded: { icon: "✔", cls: "s-verified" },
  proven: { icon: "✔", cls: "s-verified" },
  done: { icon: "✔", cls: "s-verified" },
};

/** A deploy or rollback: from and to, its phase, timing, and every step's verdict against the baseline. */
function RolloutCard(props: { rollout: Rollout }) {
  const { state, kind, finished } = props.rollout;
  const look = PHASE_LOOK[state.phase] ?? {
    icon: finished ? "■" : "↻",
    cls: finished ? "s-healthy" : "s-recovering",
  };
  return (
    <article
      class="card rollout"
      data-rollout={`${state.service}-${state.id}`}
      data-kind={kind}
      data-phase={state.phase}
      aria-labelledby={`rollout-${state.service}-${state.id}`}
    >
      <h3 id={`rollout-${state.service}-${state.id}`}>
        {kind} of {state.service}: {state.from ?? "—"} → {state.to}{" "}
        <span class={`badge ${look.cls}`}>
          <span aria-hidden="true">{look.icon}</span> {state.phase.replace(/-/g, " ")}
        </span>
      </h3>
      <p class="small">
        started {clock(state.startedAt)}
        {state.endedAt !== null && (
          <>
            {" "}
            · ended {clock(state.endedAt)} (took {duration(state.endedAt - state.startedAt)})
          </>
        )}
        {!finished && <> · step {state.stepIndex + 1}</>}
      </p>
      {state.reason !== null && <p class="small">{state.reason}</p>}
      {state.verdicts.length > 0 && (
        <ol class="steps" aria-label="Steps and checks">
          {state.verdicts.map((v) => (
            <li key={`${v.step}-${v.at}`} data-verdict={v.verdict}>
              <span aria-hidden="true">{v.verdict === "pass" ? "✔" : v.verdict === "fail" ? "✖" : "•"} </span>
              step {v.step + 1} ({v.weight} %): <strong>{v.verdict}</strong>
              {v.canary !== undefined && (
                <span class="small">
                  {" "}
                  · canary {(v.canary.errorRate * 100).toFixed(1)} % errors of {v.canary.requests}
                  {v.baseline !== undefined && <> vs baseline {(v.baseline.errorRate * 100).toFixed(1)} %</>}
                </span>
              )}
              {v.reasons.length > 0 && <div class="small">{v.reasons.join("; ")}</div>}
            </li>
          ))}
        </ol>
      )}
    </article>
  );
}
