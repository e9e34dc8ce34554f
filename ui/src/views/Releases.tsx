/**
 * Each service's release ledger: its releases with their status and proof, and the deploy and
 * rollback forms (the API applies its safety checks; the dialog asks first).
 */

import { useState } from "preact/hooks";
import type { Ask } from "../actions.ts";
import { Section } from "../components/Section.tsx";
import { clock, duration } from "../format.ts";
import type { Fleet } from "../live.ts";
import type { ReleasesDoc, Service, StatusDoc } from "../model.ts";

/** The releases panel: one card per service. */
export function Releases(props: { status: StatusDoc; fleet: Fleet; ask: Ask }) {
  return (
    <Section id="releases" title="Releases">
      <div class="cards">
        {props.status.services.map((s) => (
          <ServiceReleases key={s.name} service={s} doc={props.fleet.releases[s.name]} ask={props.ask} />
        ))}
      </div>
    </Section>
  );
}

/** One service's ledger and forms; the form state is the card's own, so each service keeps its input. */
function ServiceReleases(props: { service: Service; doc: ReleasesDoc | undefined; ask: Ask }) {
  const { service, doc } = props;
  const [version, setVersion] = useState("");
  const [to, setTo] = useState("");
  const name = service.name;
  const id = `rel-${name}`;
  const others = (doc?.history ?? []).filter((r) => r.version !== doc?.active).map((r) => r.version);
  return (
    <article class="card" aria-labelledby={`${id}-h`} data-releases={name}>
      <h3 id={`${id}-h`}>
        {name}: <code>{doc?.active ?? service.release}</code>
      </h3>
      {doc === undefined ? (
        <p class="quiet">No release ledger.</p>
      ) : (
        <ul class="history">
          {doc.history.map((r) => (
            <li key={r.version} data-version={r.version} data-status={r.status}>
              <code>{r.version}</code> <ReleaseStatus status={r.status} />
              <span class="small">
                {" "}
                deployed {clock(r.deployedAt)}
                {r.provenAt !== null ? <> · proven {clock(r.provenAt)}</> : <> · not proven</>}
              </span>
              {r.evidence !== null && r.evidence !== undefined && <Evidence evidence={r.evidence} />}
            </li>
          ))}
        </ul>
      )}
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          const v = version.trim();
          if (v === "") return;
          props.ask({
            title: `Deploy ${v} to ${name}`,
            description: `A progressive deploy: canary steps with analysis; a failing step rolls back automatically.`,
            method: "POST",
            path: `/v1/services/${encodeURIComponent(name)}/deploy`,
            body: { version: v },
            reason: false,
            confirm: "Deploy",
          });
        }}
      >
        <label for={`${id}-deploy`}>Release to deploy</label>
        <input
          id={`${id}-deploy`}
          value={version}
          placeholder="e.g. v2"
          autocomplete="off"
          onInput={(e) => setVersion((e.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={version.trim() === ""}>
          Deploy…
        </button>
      </form>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          props.ask({
            title: `Roll back ${name}${to === "" ? "" : ` to ${to}`}`,
            description:
              "Goes back only to a release this service has run; the safety checks (evidence, drift, compatibility, migrations, security) apply unless an admin forces it.",
            method: "POST",
            path: `/v1/services/${encodeURIComponent(name)}/rollback`,
            body: to === "" ? {} : { to },
            reason: true,
            forceField: "force",
            confirm: "Roll back",
          });
        }}
      >
        <label for={`${id}-to`}>Roll back to</label>
        <select id={`${id}-to`} value={to} onChange={(e) => setTo((e.target as HTMLSelectElement).value)}>
          <option value="">the previous good release</option>
          {others.map((v) => (
            <option key={v} value={v}>
              {v}
            </option>
          ))}
        </select>
        <button type="submit">Roll back…</button>
      </form>
    </article>
  );
}

/** A release's ledger status as a badge: active, proven, refused or rolled back, or anything else. */
function ReleaseStatus(props: { status: string }) {
  const icon =
    props.status === "active"
      ? "●"
      : props.status === "proven"
        ? "✔"
        : /fail|denied|rolled/.test(props.status)
          ? "✖"
          : "•";
  const cls =
    props.status === "active"
      ? "s-healthy"
      : /fail|denied|rolled/.test(props.status)
        ? "s-failing"
        : "s-neutral";
  return (
    <span class={`badge ${cls}`}>
      <span aria-hidden="true">{icon}</span> {props.status}
    </span>
  );
}

/** A release's proof in words: how long and how much traffic it served, with what errors and p99. */
function Evidence(props: { evidence: unknown }) {
  const e = props.evidence as Record<string, unknown>;
  const word = (key: string, value: number): string => {
    if (key === "at" || key.endsWith("At")) return `${key === "at" ? "at" : key} ${clock(value)}`;
    if (key === "windowMs") return `over ${duration(value)}`;
    if (key.endsWith("Ms")) return `${key.slice(0, -2)} ${duration(value)}`;
    if (key === "errorRate") return `errors ${(value * 100).toFixed(1)} %`;
    return `${key} ${Number.isInteger(value) ? value : value.toFixed(3)}`;
  };
  const parts = Object.entries(e)
    .filter(([, v]) => typeof v === "number" || typeof v === "string")
    .slice(0, 6)
    .map(([k, v]) => (typeof v === "number" ? word(k, v) : `${k} ${v}`));
  return <div class="small evidence">proof: {parts.length > 0 ? parts.join(" · ") : "recorded"}</div>;
}
