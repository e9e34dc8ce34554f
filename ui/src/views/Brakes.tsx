/**
 * Automation brakes (docs/brakes.md): whether automation is paused — by whom, why, since when —
 * each limit with how much of it is used, and every automated action held now with its reason.
 * Pause and resume go through the same API, roles and confirmation as every other action.
 */

import type { Ask } from "../actions.ts";
import { Section } from "../components/Section.tsx";
import { clock, duration } from "../format.ts";
import type { BrakesDoc, StatusDoc, WindowDoc } from "../model.ts";

/** The brakes panel; nothing when the controller has none (an older one). */
export function Brakes(props: { status: StatusDoc; ask: Ask }) {
  const brakes = props.status.brakes;
  if (brakes === undefined) return null;
  const { paused } = brakes;
  const now = props.status.controller.now;
  return (
    <Section
      id="brakes"
      title="Automation"
      wide
      extra={
        paused === null ? (
          <button
            type="button"
            class="secondary"
            onClick={() =>
              props.ask({
                title: "Pause automation",
                description:
                  "No automated restart, rollback or failover starts until resumed; each one is held (an event, and its incident escalates). Actions under way finish. Manual actions then need an override.",
                method: "POST",
                path: "/v1/pause",
                body: {},
                reason: true,
                confirm: "Pause",
              })
            }
          >
            Pause automation
          </button>
        ) : (
          <button
            type="button"
            onClick={() =>
              props.ask({
                title: "Resume automation",
                description:
                  "Automated restarts, rollbacks and failovers may start again; what is held is decided again at once.",
                method: "POST",
                path: "/v1/resume",
                body: {},
                reason: true,
                confirm: "Resume",
              })
            }
          >
            Resume automation
          </button>
        )
      }
    >
      {paused === null ? (
        <p data-testid="brakes-state">
          <span class="badge s-healthy">
            <span aria-hidden="true">●</span> running
          </span>{" "}
          automated restarts, rollbacks and failovers act within the limits below
        </p>
      ) : (
        <p data-testid="brakes-state">
          <span class="badge s-failing">
            <span aria-hidden="true">‖</span> paused
          </span>{" "}
          by <strong>{paused.by}</strong> since {clock(paused.since)} ({duration(now - paused.since)}):{" "}
          {paused.reason} — nothing automated starts; manual actions need an override (CLI{" "}
          <code>--override --reason</code>)
        </p>
      )}
      <Limits brakes={brakes} />
      {brakes.held.length > 0 && (
        <>
          <h3>Held now</h3>
          <ul class="warnings" data-testid="brakes-held">
            {brakes.held.map((h) => (
              <li key={`${h.kind}:${h.target}`} data-held={h.target} data-rule={h.rule}>
                <span aria-hidden="true">⚠ </span>
                <strong>
                  {h.kind} of {h.target}
                </strong>{" "}
                <span class="small">
                  ({h.rule}, since {clock(h.since)}
                  {h.until !== null && <>, lifts at {clock(h.until)}</>})
                </span>
                : {h.reason.message}
              </li>
            ))}
          </ul>
        </>
      )}
    </Section>
  );
}

function Limits(props: { brakes: BrakesDoc }) {
  const { fleet, services } = props.brakes.usage;
  return (
    <ul class="small" aria-label="How close automation is to each limit">
      {services.map((s) => (
        <li key={s.service} data-brakes-service={s.service}>
          <strong>{s.service}</strong>: automated restarts {windowText(s.restarts)} · acting on{" "}
          {s.actedOn.instances.length}/{s.actedOn.limit} at once ({percent(s.actedOn.share)} of{" "}
          {s.actedOn.size}){s.actedOn.instances.length > 0 && <>: {s.actedOn.instances.join(", ")}</>}
        </li>
      ))}
      <li data-brakes-service="">
        <strong>fleet</strong>: automated rollbacks {windowText(fleet.rollbacks)} · automated failovers{" "}
        {windowText(fleet.failovers)} · acting on {fleet.actedOn.count}/{fleet.actedOn.limit} at once (
        {percent(fleet.actedOn.share)} of {fleet.actedOn.size})
      </li>
    </ul>
  );
}

function windowText(w: WindowDoc): string {
  const full = w.used >= w.max ? ` — full until ${clock(w.freeAt)}` : "";
  return `${w.used}/${w.max} per ${windowLength(w.windowMs)}${full}`;
}

/** A window's length as people say it: 10 min, 1 h, 90 s. */
function windowLength(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return duration(ms);
}

function percent(share: number): string {
  return `${Number((share * 100).toFixed(1))} %`;
}
