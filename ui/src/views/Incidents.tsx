/**
 * The latest incidents, newest first: each with its state, what the verification gate still waits
 * for, its timings (TTD, TTM, TTS) and its timeline phase by phase.
 */

import { Section } from "../components/Section.tsx";
import { clock, duration } from "../format.ts";
import { gateWaitOf, type Incident, phasesOf, type StatusDoc, timingsOf } from "../model.ts";

/** Each timeline phase in words that say which recovery state it means. */
const PHASE_WORDS: Record<string, { icon: string; word: string }> = {
  detected: { icon: "✖", word: "detected (failing)" },
  "action-started": { icon: "↻", word: "recovery started (recovering)" },
  mitigated: { icon: "◔", word: "mitigated (recovered, unverified)" },
  stabilized: { icon: "◕", word: "stabilized (verification pending)" },
  verified: { icon: "✔", word: "verified" },
  closed: { icon: "■", word: "closed" },
  escalated: { icon: "⚠", word: "escalated" },
};

/** The incidents panel. */
export function Incidents(props: { incidents: Incident[]; status: StatusDoc | null }) {
  return (
    <Section id="incidents" title="Incidents">
      {props.incidents.length === 0 ? (
        <p class="quiet">No incidents yet.</p>
      ) : (
        <div class="cards">
          {props.incidents.map((incident) => (
            <IncidentCard key={incident.id} incident={incident} waits={gateWaitOf(props.status, incident)} />
          ))}
        </div>
      )}
    </Section>
  );
}

/** One incident; its `id` is what an instance's "incident #N" link jumps to. */
function IncidentCard(props: { incident: Incident; waits: string[] | undefined }) {
  const incident = props.incident;
  const phases = phasesOf(incident);
  const t = timingsOf(incident);
  const verified = incident.verifiedAt != null || phases.some((p) => p.phase === "verified");
  return (
    <article
      class="card incident"
      id={`incident-${incident.id}`}
      aria-labelledby={`incident-${incident.id}-h`}
      data-incident={incident.id}
      data-instance={incident.instance}
      data-status={incident.status}
      data-phases={phases.map((p) => p.phase).join(" ")}
    >
      <h3 id={`incident-${incident.id}-h`}>
        #{incident.id} {incident.instance || incident.service}: {incident.kind}{" "}
        <span
          class={`badge ${incident.status === "open" ? "s-recovering" : verified ? "s-verified" : "s-healthy"}`}
        >
          <span aria-hidden="true">{incident.status === "open" ? "●" : verified ? "✔" : "■"}</span>{" "}
          {incident.status}
          {verified ? ", verified" : ""}
        </span>
      </h3>
      <p class="small">{incident.detail || incident.reason}</p>
      {props.waits !== undefined && (
        <div class="gate" data-testid="gate-wait">
          <p class="small gate-line">
            <span aria-hidden="true">◔ </span>
            <strong>Recovered, not verified yet:</strong>{" "}
            {props.waits.length === 0
              ? "the verification gate passes now; it waits for the stabilization window to hold."
              : "the verification gate waits for"}
          </p>
          {props.waits.length > 0 && (
            <ul class="small gate-list">
              {props.waits.map((w) => (
                <li key={w} data-blocking>
                  {w}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      <dl class="timings">
        <div>
          <dt>
            <abbr title="time to detect">TTD</abbr>
          </dt>
          <dd>{duration(t.ttd)}</dd>
        </div>
        <div>
          <dt>
            <abbr title="time to mitigate">TTM</abbr>
          </dt>
          <dd>{duration(t.ttm)}</dd>
        </div>
        <div>
          <dt>
            <abbr title={incident.verifiedAt != null ? "time to verified" : "time to stable"}>TTS</abbr>
          </dt>
          <dd>{duration(t.tts)}</dd>
        </div>
      </dl>
      <ol class="timeline" aria-label={`Timeline of incident ${incident.id}`}>
        {phases.map((p, n) => {
          const look = PHASE_WORDS[p.phase] ?? { icon: "•", word: p.phase };
          return (
            <li key={`${p.phase}-${n}`} data-phase={p.phase}>
              <time dateTime={new Date(p.at).toISOString()}>{clock(p.at)}</time>{" "}
              <span aria-hidden="true">{look.icon}</span> <strong>{look.word}</strong>
              {n > 0 && <span class="small"> +{duration(p.at - phases[0]!.at)}</span>}
              {p.detail !== undefined && p.detail !== "" && <span class="small">: {p.detail}</span>}
            </li>
          );
        })}
      </ol>
    </article>
  );
}
