/**
 * The dashboard: login with a token, then the fleet's topology, incidents, rollouts and failovers,
 * releases, warnings and data plane, live. Every action goes through the API with the user's token,
 * so the API's roles and refusals apply as they do to the CLI; the dashboard shows its messages.
 */

import type { ComponentChildren } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { Api, ApiError } from "./api.ts";
import { type Fleet, type Rates, useFleet } from "./live.ts";
import {
  clock,
  duration,
  type FailoverService,
  type FailoverZone,
  fleetRecovery,
  gateWaitOf,
  type Incident,
  type Instance,
  type InvariantSummary,
  instanceRecovery,
  invariantsOf,
  partialsOf,
  phasesOf,
  type RecoveryState,
  type ReleasesDoc,
  type Rollout,
  reasonsOf,
  type Service,
  STATE_LOOK,
  type StatusDoc,
  serviceRecovery,
  timingsOf,
  type Whoami,
  zoneRecovery,
} from "./model.ts";

const TOKEN_KEY = "homeostat.token";

/** The whole app: the login until a token works, then the dashboard. */
export function App() {
  const [token, setToken] = useState<string | null>(() => sessionStorage.getItem(TOKEN_KEY));
  const [who, setWho] = useState<Whoami | null>(null);
  const [loginError, setLoginError] = useState<string | null>(null);
  const api = useMemo(() => (token === null ? null : new Api(token)), [token]);

  const signOut = (why: string | null): void => {
    sessionStorage.removeItem(TOKEN_KEY);
    setToken(null);
    setWho(null);
    setLoginError(why);
  };

  useEffect(() => {
    if (api === null) return;
    let cancelled = false;
    whoami(api)
      .then((w) => {
        if (!cancelled) setWho(w);
      })
      .catch((error: unknown) => {
        if (!cancelled) signOut(error instanceof Error ? error.message : String(error));
      });
    return () => {
      cancelled = true;
    };
  }, [api]);

  if (api === null) {
    return (
      <Login
        error={loginError}
        onToken={async (candidate) => {
          const probe = new Api(candidate);
          const w = await whoami(probe);
          sessionStorage.setItem(TOKEN_KEY, candidate);
          setWho(w);
          setLoginError(null);
          setToken(candidate);
        }}
      />
    );
  }
  if (who === null) return <p class="loading">Checking the token…</p>;
  return <Dashboard api={api} who={who} onSignOut={(why) => signOut(why)} />;
}

/** Who the token belongs to; a controller without `/v1/whoami` gives an unknown role. */
async function whoami(api: Api): Promise<Whoami> {
  try {
    return await api.get<Whoami>("/v1/whoami");
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      // No whoami route: the token still has to open the status to count as working.
      await api.get("/v1/status");
      return { name: "unknown", role: null };
    }
    throw error;
  }
}

function Login(props: { error: string | null; onToken: (token: string) => Promise<void> }) {
  const [value, setValue] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(props.error);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  return (
    <main id="main" class="login">
      <h1>
        <span aria-hidden="true">⟳ </span>Homeostat
      </h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const token = value.trim();
          if (token === "") {
            setError("Paste a token first.");
            return;
          }
          setBusy(true);
          setError(null);
          props
            .onToken(token)
            .catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)))
            .finally(() => setBusy(false));
        }}
      >
        <label for="token">API token</label>
        <input
          id="token"
          ref={input}
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={value}
          aria-describedby="token-help"
          aria-invalid={error !== null}
          onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        />
        <p id="token-help" class="help">
          <code>homeostat up</code> wrote an admin token to <code>.homeostat/admin-token</code>; make others
          with <code>homeostat token create --name NAME --role viewer|operator|admin</code>. The token stays
          in this tab only (session storage) and is sent as <code>Authorization: Bearer</code>.
        </p>
        {error !== null && (
          <p class="error" role="alert">
            <span aria-hidden="true">✖ </span>
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}

/** What an action asks before it runs. */
interface PendingAction {
  title: string;
  description: string;
  method: "POST";
  path: string;
  body: Record<string, unknown>;
  /** A reason field (sent as `reason`). */
  reason: boolean;
  /** An admin-only checkbox that overrides the safety checks (`force` or `override`). */
  forceField?: "force" | "override";
  confirm: string;
}

interface Outcome {
  ok: boolean;
  text: string;
}

function Dashboard(props: { api: Api; who: Whoami; onSignOut: (why: string | null) => void }) {
  const fleet = useFleet(props.api);
  const [pending, setPending] = useState<PendingAction | null>(null);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const { onSignOut } = props;
  useEffect(() => {
    if (fleet.unauthorized !== null) onSignOut(`The API refused the token: ${fleet.unauthorized}`);
  }, [fleet.unauthorized, onSignOut]);

  const run = async (action: PendingAction, reason: string, force: boolean): Promise<void> => {
    const body: Record<string, unknown> = { ...action.body };
    if (action.reason && reason !== "") body.reason = reason;
    if (action.forceField !== undefined && force) body[action.forceField] = true;
    try {
      await props.api.call(action.method, action.path, body);
      setOutcome({ ok: true, text: `${action.title}: accepted.` });
    } catch (error) {
      const text =
        error instanceof ApiError
          ? `${action.title}: refused (${error.status} ${error.code}): ${error.message}`
          : `${action.title}: failed: ${error instanceof Error ? error.message : String(error)}`;
      setOutcome({ ok: false, text });
    }
    fleet.refresh();
  };

  const canAct = props.who.role !== "viewer";
  const ask = (action: PendingAction): void => {
    setOutcome(null);
    setPending(action);
  };
  const status = fleet.status;
  return (
    <>
      <a class="skip" href="#main">
        Skip to the fleet
      </a>
      <header class="top">
        <div class="brand">
          <h1>
            <span aria-hidden="true">⟳ </span>Homeostat
            {status !== null && <span class="fleet">: {status.fleet.name}</span>}
          </h1>
          <ConnectionBadge fleet={fleet} />
        </div>
        <div class="who">
          <span data-testid="who">
            Signed in as <strong>{props.who.name}</strong> ({props.who.role ?? "role unknown"})
          </span>
          <button type="button" class="secondary" onClick={() => props.onSignOut(null)}>
            Sign out
          </button>
        </div>
        <nav aria-label="Sections">
          <ul>
            <li>
              <a href="#warnings">Warnings</a>
            </li>
            <li>
              <a href="#topology">Topology</a>
            </li>
            <li>
              <a href="#incidents">Incidents</a>
            </li>
            <li>
              <a href="#activity">Deploys &amp; failovers</a>
            </li>
            <li>
              <a href="#releases">Releases</a>
            </li>
            <li>
              <a href="#dataplane">Data plane</a>
            </li>
            <li>
              <a href="#events">Events</a>
            </li>
          </ul>
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        {!canAct && (
          <p class="note" data-testid="read-only">
            <span aria-hidden="true">ⓘ </span>
            This token has the <strong>viewer</strong> role: the API refuses its actions (deploy, rollback,
            failover need operator).
          </p>
        )}
        <div aria-live="polite" class="outcome-region">
          {outcome !== null && (
            <p
              class={outcome.ok ? "outcome ok" : "outcome error"}
              role={outcome.ok ? "status" : "alert"}
              data-testid="outcome"
            >
              <span aria-hidden="true">{outcome.ok ? "✔ " : "✖ "}</span>
              {outcome.text}
            </p>
          )}
        </div>
        {status === null ? (
          <p class="loading">Loading the fleet…</p>
        ) : (
          <div class="layout">
            <Summary status={status} fleet={fleet} />
            <Warnings status={status} fleet={fleet} />
            <Topology status={status} fleet={fleet} who={props.who} ask={ask} />
            <Incidents incidents={fleet.incidents} status={status} />
            <Activity fleet={fleet} />
            <Releases status={status} fleet={fleet} who={props.who} ask={ask} />
            <DataPlane status={status} fleet={fleet} />
            <Events fleet={fleet} />
          </div>
        )}
      </main>
      <footer class="foot">
        <p>
          Homeostat dashboard · data from this controller's API ( <a href="/openapi.json">OpenAPI</a> ) ·
          actions use your token's role
        </p>
      </footer>
      {pending !== null && (
        <ConfirmDialog
          action={pending}
          admin={props.who.role === "admin"}
          onClose={() => setPending(null)}
          onConfirm={(reason, force) => {
            const action = pending;
            setPending(null);
            void run(action, reason, force);
          }}
        />
      )}
    </>
  );
}

function ConnectionBadge(props: { fleet: Fleet }) {
  const c = props.fleet.connection;
  const look =
    c.mode === "live"
      ? { icon: "●", text: "live (event stream)", cls: "live" }
      : c.mode === "polling"
        ? { icon: "↻", text: `polling: ${c.why}`, cls: "polling" }
        : c.mode === "offline"
          ? { icon: "✖", text: `controller unreachable: ${c.why}`, cls: "offline" }
          : { icon: "…", text: "connecting", cls: "polling" };
  return (
    <p class={`conn ${look.cls}`} data-testid="connection" data-mode={c.mode}>
      <span aria-hidden="true">{look.icon} </span>
      {look.text}
    </p>
  );
}

/** A recovery state as an icon, a word and a colour (the word carries the meaning). */
function StateBadge(props: { state: RecoveryState; reasons?: string[] }) {
  const look = STATE_LOOK[props.state];
  const title =
    props.reasons !== undefined && props.reasons.length > 0 ? props.reasons.join("; ") : undefined;
  return (
    <span class={`badge s-${props.state}`} data-state={props.state} title={title}>
      <span aria-hidden="true">{look.icon}</span> {look.word}
    </span>
  );
}

function Section(props: {
  id: string;
  title: string;
  children: ComponentChildren;
  extra?: ComponentChildren;
  /** Spans both columns on a wide screen. */
  wide?: boolean;
}) {
  return (
    <section id={props.id} aria-labelledby={`${props.id}-h`} class={props.wide ? "panel wide" : "panel"}>
      <div class="panel-head">
        <h2 id={`${props.id}-h`}>{props.title}</h2>
        {props.extra}
      </div>
      {props.children}
    </section>
  );
}

function Summary(props: { status: StatusDoc; fleet: Fleet }) {
  const { status } = props;
  const fleetState =
    fleetRecovery(status) ??
    (() => {
      const states = status.services.map(serviceRecovery);
      for (const s of ["failing", "recovering", "recovered-unverified", "degraded"] as const) {
        if (states.includes(s)) return s;
      }
      return "healthy" as const;
    })();
  const instances = status.services.flatMap((s) => s.instances);
  const ready = instances.filter((i) => i.state === "ready").length;
  return (
    <section aria-label="Summary" class="summary wide">
      <p>
        Fleet <StateBadge state={fleetState} reasons={reasonsOf(status.recovery)} />
      </p>
      <p>
        <strong>{ready}</strong> of {instances.length} instances ready
      </p>
      <p>
        <strong>{status.openIncidents}</strong> open incident{status.openIncidents === 1 ? "" : "s"}
      </p>
      <p>
        Data plane{" "}
        {status.dataPlane === undefined ? (
          "none (no service has a port)"
        ) : status.dataPlane.connected === false ? (
          <span class="badge s-failing">
            <span aria-hidden="true">✖</span> disconnected
          </span>
        ) : (
          <span class="badge s-healthy">
            <span aria-hidden="true">●</span> connected
          </span>
        )}
      </p>
    </section>
  );
}

interface Warning {
  kind: string;
  text: string;
}

function Warnings(props: { status: StatusDoc; fleet: Fleet }) {
  const { status, fleet } = props;
  const warnings: Warning[] = [];
  for (const p of partialsOf(status)) {
    // The detail usually names the service already ("api: 2 of 3 instances ready").
    const service = p.service !== undefined && !p.detail.startsWith(`${p.service}:`) ? p.service : undefined;
    const where = [service, p.zone, p.instances?.join(", ")].filter(Boolean).join(" · ");
    warnings.push({ kind: `partial recovery: ${p.kind}`, text: `${where ? `${where}: ` : ""}${p.detail}` });
  }
  for (const s of status.services) {
    const inv = invariantsOf(status, s.name);
    if (inv?.verdict !== "broken") continue;
    for (const g of inv.broken) {
      const on = g.instances.length > 0 ? ` on ${g.instances.join(", ")}` : "";
      const more = g.details.length > 1 ? ` (and ${g.details.length - 1} more)` : "";
      warnings.push({
        kind: "security invariant broken",
        text: `${s.name}: ${g.invariant}${on}: ${g.details[0]}${more}`,
      });
    }
  }
  const partials = partialsOf(status);
  for (const s of status.services) {
    for (const w of s.warnings) {
      // Said already, with more detail, by a partial recovery of the same service.
      if (partials.some((p) => p.service === s.name && p.detail.includes(w))) continue;
      warnings.push({ kind: /drift/i.test(w) ? "drift" : s.name, text: w });
    }
  }
  if (!status.staticStability.ok && status.staticStability.warning !== undefined) {
    warnings.push({ kind: "N−1 static stability", text: status.staticStability.warning });
  }
  for (const f of fleet.check?.findings ?? []) {
    const text =
      typeof f.message === "string" ? f.message : typeof f.detail === "string" ? f.detail : JSON.stringify(f);
    warnings.push({ kind: `shared fate${typeof f.kind === "string" ? `: ${f.kind}` : ""}`, text });
  }
  for (const [service, doc] of Object.entries(fleet.releases)) {
    for (const r of doc.history) {
      if (/drift/i.test(r.status))
        warnings.push({ kind: "drift", text: `${service} ${r.version}: ${r.status}` });
    }
  }
  return (
    <Section wide id="warnings" title="Warnings">
      {warnings.length === 0 ? (
        <p class="quiet">
          <span aria-hidden="true">✔ </span>No warnings: no partial recovery, drift, shared fate or N−1
          shortfall.
        </p>
      ) : (
        <ul class="warnings">
          {warnings.map((w) => (
            <li key={`${w.kind}:${w.text}`}>
              <span aria-hidden="true">⚠ </span>
              <strong>{w.kind}</strong>: {w.text}
            </li>
          ))}
        </ul>
      )}
    </Section>
  );
}

function Topology(props: { status: StatusDoc; fleet: Fleet; who: Whoami; ask: (a: PendingAction) => void }) {
  const { status, fleet } = props;
  const instances = status.services.flatMap((s) => s.instances);
  const zones = [
    ...new Set([...instances.map((i) => i.zone), ...(fleet.failover?.zones.map((z) => z.zone) ?? [])]),
  ].sort();
  return (
    <Section wide id="topology" title="Topology">
      <div class="zones">
        {zones.map((zone) => {
          const inZone = instances.filter((i) => i.zone === zone);
          const hosts = [...new Set(inZone.map((i) => i.host))].sort();
          const fz = fleet.failover?.zones.find((z) => z.zone === zone);
          const zr = zoneRecovery(status, zone);
          const domain = status.domains.find((d) => d.zone === zone);
          return (
            <article class="zone" key={zone} aria-labelledby={`zone-${zone}`} data-zone={zone}>
              <h3 id={`zone-${zone}`}>
                {zone} {zr !== undefined && <StateBadge state={zr.state} reasons={zr.reasons ?? []} />}
              </h3>
              {fz !== undefined && <ZoneFacts zone={fz} />}
              {domain !== undefined && (
                <p class="small">
                  {domain.survivesLoss ? (
                    <>
                      <span aria-hidden="true">✔ </span>the fleet survives losing it (
                      {Math.round(domain.headroomRps)} req/s spare)
                    </>
                  ) : (
                    <>
                      <span aria-hidden="true">⚠ </span>losing it would overload the survivors (short{" "}
                      {Math.round(-domain.headroomRps)} req/s)
                    </>
                  )}
                </p>
              )}
              {hosts.map((host) => (
                <div class="host" key={host}>
                  <h4>{host}</h4>
                  <ul class="instances">
                    {inZone
                      .filter((i) => i.host === host)
                      .map((i) => (
                        <InstanceItem key={i.name} instance={i} />
                      ))}
                  </ul>
                </div>
              ))}
              {fz !== undefined && (
                <div class="actions">
                  <button
                    type="button"
                    onClick={() =>
                      props.ask({
                        title: `Fail over ${zone}`,
                        description: `Move traffic out of ${zone} step by step; survivors are kept under their ceiling (instances added first, then sheddable and default traffic shed, never critical).`,
                        method: "POST",
                        path: "/v1/failover",
                        body: { domain: zone },
                        reason: true,
                        forceField: "override",
                        confirm: "Fail over",
                      })
                    }
                  >
                    Fail over {zone}
                  </button>
                  <button
                    type="button"
                    class="secondary"
                    onClick={() =>
                      props.ask({
                        title: `Fail back ${zone}`,
                        description: `Bring traffic back to ${zone} gradually, through the failback hysteresis.`,
                        method: "POST",
                        path: "/v1/failback",
                        body: { domain: zone },
                        reason: true,
                        confirm: "Fail back",
                      })
                    }
                  >
                    Fail back {zone}
                  </button>
                </div>
              )}
            </article>
          );
        })}
      </div>
      <h3>Services</h3>
      <ul class="services">
        {status.services.map((s) => (
          <ServiceLine key={s.name} service={s} invariants={invariantsOf(status, s.name)} />
        ))}
      </ul>
    </Section>
  );
}

function ZoneFacts(props: { zone: FailoverZone }) {
  const z = props.zone;
  return (
    <p class="small" data-testid={`zone-facts-${z.zone}`}>
      traffic share <strong>{Math.round(z.share * 100)} %</strong> · {z.state} · {z.reason}
      {z.shift !== null && <span> · shift in progress</span>}
    </p>
  );
}

function ServiceLine(props: { service: Service; invariants: InvariantSummary | undefined }) {
  const s = props.service;
  return (
    <li data-service={s.name}>
      <strong>{s.name}</strong> <StateBadge state={serviceRecovery(s)} reasons={reasonsOf(s.recovery)} />{" "}
      release <code>{s.release}</code> · {s.ready}/{s.replicas} ready
      {s.runningReleases.length > 1 && <> · running {s.runningReleases.join(", ")}</>}
      {props.invariants !== undefined && <InvariantsLine summary={props.invariants} />}
    </li>
  );
}

/** A service's security invariants: held, broken (which, on which instances), or not yet checked. */
function InvariantsLine(props: { summary: InvariantSummary }) {
  const x = props.summary;
  const checked =
    x.verdict !== "none" && x.lastCheckedAt !== null
      ? `last probe round ${clock(x.lastCheckedAt)}`
      : undefined;
  if (x.verdict === "broken") {
    return (
      <div class="invariants broken" data-invariants="broken">
        {x.broken.map((g) => (
          <p key={g.invariant} data-invariant={g.invariant} title={g.details.join("; ")}>
            <span class="badge s-failing">
              <span aria-hidden="true">✖</span> invariant broken
            </span>{" "}
            <code>{g.invariant}</code>
            {g.instances.length > 0 && <> on {g.instances.join(", ")}</>} · since {clock(g.since)}
            <span class="small reason"> {g.details[0]}</span>
          </p>
        ))}
      </div>
    );
  }
  const look =
    x.verdict === "held"
      ? { icon: "✔", text: "security invariants hold", cls: "s-verified" }
      : x.verdict === "unchecked"
        ? { icon: "…", text: "security invariants not checked yet (not verified)", cls: "s-degraded" }
        : { icon: "–", text: "no security invariants declared", cls: "" };
  return (
    <div class="invariants small" data-invariants={x.verdict} title={checked}>
      <span class={look.cls === "" ? "quiet" : `badge ${look.cls}`}>
        <span aria-hidden="true">{look.icon}</span> {look.text}
      </span>
    </div>
  );
}

function InstanceItem(props: { instance: Instance }) {
  const i = props.instance;
  const state = instanceRecovery(i);
  return (
    <li class="instance" data-instance={i.name} data-state={state}>
      <div class="instance-head">
        <strong>{i.name}</strong> <StateBadge state={state} reasons={reasonsOf(i.recovery)} />
      </div>
      <div class="small">
        {i.state} · {i.release ?? "no release"} · port {i.port}
        {i.pid !== null && <> · pid {i.pid}</>}
        {i.openIncident !== null && (
          <>
            {" "}
            · <a href={`#incident-${i.openIncident}`}>incident #{i.openIncident}</a>
          </>
        )}
      </div>
      <div class="small reason">{[i.reason, ...reasonsOf(i.recovery)].filter(Boolean).join("; ")}</div>
    </li>
  );
}

const PHASE_WORDS: Record<string, { icon: string; word: string }> = {
  detected: { icon: "✖", word: "detected (failing)" },
  "action-started": { icon: "↻", word: "recovery started (recovering)" },
  mitigated: { icon: "◔", word: "mitigated (recovered, unverified)" },
  stabilized: { icon: "◕", word: "stabilized (verification pending)" },
  verified: { icon: "✔", word: "verified" },
  closed: { icon: "■", word: "closed" },
  escalated: { icon: "⚠", word: "escalated" },
};

function Incidents(props: { incidents: Incident[]; status: StatusDoc | null }) {
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

function Activity(props: { fleet: Fleet }) {
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

const PHASE_LOOK: Record<string, { icon: string; cls: string }> = {
  "rolled-back": { icon: "↩", cls: "s-failing" },
  "rolling-back": { icon: "↩", cls: "s-recovering" },
  failed: { icon: "✖", cls: "s-failing" },
  succeeded: { icon: "✔", cls: "s-verified" },
  proven: { icon: "✔", cls: "s-verified" },
  done: { icon: "✔", cls: "s-verified" },
};

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

function Releases(props: { status: StatusDoc; fleet: Fleet; who: Whoami; ask: (a: PendingAction) => void }) {
  return (
    <Section id="releases" title="Releases">
      <div class="cards">
        {props.status.services.map((s) => (
          <ServiceReleases
            key={s.name}
            service={s}
            doc={props.fleet.releases[s.name]}
            who={props.who}
            ask={props.ask}
          />
        ))}
      </div>
    </Section>
  );
}

function ServiceReleases(props: {
  service: Service;
  doc: ReleasesDoc | undefined;
  who: Whoami;
  ask: (a: PendingAction) => void;
}) {
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

function DataPlane(props: { status: StatusDoc; fleet: Fleet }) {
  const services = Object.values(props.fleet.traffic);
  return (
    <Section id="dataplane" title="Data plane">
      {services.length === 0 ? (
        <p class="quiet">No service has a traffic port.</p>
      ) : (
        <div class="cards">
          {services.map((t) => (
            <TrafficCard key={t.service} t={t} rates={props.fleet.rates[t.service]} />
          ))}
        </div>
      )}
    </Section>
  );
}

function TrafficCard(props: { t: Fleet["traffic"][string]; rates: Rates | undefined }) {
  const { t, rates } = props;
  const errorShare = rates !== undefined && rates.rps > 0 ? rates.errorsPerSecond / rates.rps : 0;
  const ejected = t.endpoints.filter((e) => e.ejected).map((e) => e.instance);
  return (
    <article class="card" aria-labelledby={`dp-${t.service}`} data-traffic={t.service}>
      <h3 id={`dp-${t.service}`}>
        {t.service} <span class="small">port {t.port}</span>
      </h3>
      <dl class="facts">
        <div>
          <dt>requests</dt>
          <dd data-testid={`rps-${t.service}`}>{rates === undefined ? "—" : `${rates.rps.toFixed(1)}/s`}</dd>
        </div>
        <div>
          <dt>errors</dt>
          <dd>
            {rates === undefined
              ? "—"
              : `${rates.errorsPerSecond.toFixed(1)}/s (${(errorShare * 100).toFixed(1)} %)`}
            {errorShare > 0.01 && <span aria-hidden="true"> ⚠</span>}
          </dd>
        </div>
        <div>
          <dt>shed</dt>
          <dd>{rates === undefined ? "—" : `${rates.shedPerSecond.toFixed(1)}/s`}</dd>
        </div>
        <div>
          <dt>in flight</dt>
          <dd>{t.requestsInFlight}</dd>
        </div>
        <div>
          <dt>healthy</dt>
          <dd>
            {t.healthy}/{t.members}
            {t.panic && <strong> · panic</strong>}
          </dd>
        </div>
        <div>
          <dt>weights</dt>
          <dd>
            {t.weights === null
              ? "by readiness"
              : Object.entries(t.weights)
                  .map(([r, w]) => `${r} ${w}`)
                  .join(", ")}
          </dd>
        </div>
        {ejected.length > 0 && (
          <div>
            <dt>ejected</dt>
            <dd>{ejected.join(", ")}</dd>
          </div>
        )}
        {t.shedding !== null && t.shedding !== undefined && (
          <div>
            <dt>shedding</dt>
            <dd>{JSON.stringify(t.shedding)}</dd>
          </div>
        )}
      </dl>
    </article>
  );
}

function Events(props: { fleet: Fleet }) {
  return (
    <Section wide id="events" title="Recent events">
      <ul class="events">
        {props.fleet.events.map((e) => (
          <li key={e.seq}>
            <time dateTime={new Date(e.at).toISOString()}>{clock(e.at)}</time> <code>{e.type}</code>{" "}
            {e.message}
          </li>
        ))}
      </ul>
    </Section>
  );
}

/** A modal confirmation (native `<dialog>`: focus moves in, Escape cancels, focus returns). */
function ConfirmDialog(props: {
  action: PendingAction;
  admin: boolean;
  onClose: () => void;
  onConfirm: (reason: string, force: boolean) => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState("");
  const [force, setForce] = useState(false);
  // The latest callback, without reopening the dialog on every render.
  const onClose = useRef(props.onClose);
  onClose.current = props.onClose;
  useEffect(() => {
    const dialog = ref.current;
    if (dialog === null) return;
    const opener = document.activeElement as HTMLElement | null;
    dialog.showModal();
    const cancel = (): void => onClose.current();
    dialog.addEventListener("close", cancel);
    return () => {
      dialog.removeEventListener("close", cancel);
      if (dialog.open) dialog.close();
      opener?.focus();
    };
  }, []);
  const a = props.action;
  return (
    <dialog ref={ref} aria-labelledby="confirm-h" aria-describedby="confirm-d" class="confirm">
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          props.onConfirm(reason, force);
        }}
      >
        <h2 id="confirm-h">{a.title}?</h2>
        <p id="confirm-d">{a.description}</p>
        {a.reason && (
          <>
            <label for="confirm-reason">Reason (recorded in the audit log)</label>
            <input
              id="confirm-reason"
              value={reason}
              autocomplete="off"
              onInput={(e) => setReason((e.target as HTMLInputElement).value)}
            />
          </>
        )}
        {a.forceField !== undefined && (
          <p class="check">
            <input
              id="confirm-force"
              type="checkbox"
              checked={force}
              disabled={!props.admin}
              aria-describedby="confirm-force-help"
              onChange={(e) => setForce((e.target as HTMLInputElement).checked)}
            />
            <label for="confirm-force">
              {a.forceField === "force" ? "Force (override the safety checks)" : "Override the safety rules"}
            </label>
            <span id="confirm-force-help" class="small">
              {props.admin ? " Admin only; audited with the reason." : " Needs the admin role."}
            </span>
          </p>
        )}
        <div class="actions">
          <button type="submit" class={force ? "danger" : ""}>
            {a.confirm}
          </button>
          <button type="button" class="secondary" onClick={() => props.onClose()}>
            Cancel
          </button>
        </div>
      </form>
    </dialog>
  );
}
