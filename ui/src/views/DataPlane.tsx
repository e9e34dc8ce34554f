/**
 * The data plane per service with a traffic port: request, error and shed rates, requests in
 * flight, healthy members, weights, ejected endpoints and shedding.
 */

import { Section } from "../components/Section.tsx";
import type { Fleet } from "../live.ts";
import type { TrafficService } from "../model.ts";
import type { Rates } from "../rates.ts";

/** The data plane panel: one card per service the proxy fronts. */
export function DataPlane(props: { fleet: Fleet }) {
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

/** One service's traffic; the rates are blank until two readings of the counters exist. */
function TrafficCard(props: { t: TrafficService; rates: Rates | undefined }) {
  const { t, rates } = props;
  const errorShare = rates !== undefined && rates.rps > 0 ? rates.errorsPerSecond / rates.rps : 0;
  const ejected = t.endpoints.filter((e) => e.ejected).map((e) => e.instance);
  return (
    <article class="card" aria-labelledby={`dp-${t.service}`} data-traffic={t.service}>
      <h3 id={`dp-${t.service}`}>
        {t.service} <span class="small">port {t.port}</span>{" "}
        <span class="small" data-testid={`engine-${t.service}`}>
          {t.engine === "haproxy" ? `HAProxy pid ${t.haproxy?.pid ?? "—"}` : "embedded"}
        </span>
      </h3>
      {t.haproxy?.lastError && <p class="small">HAProxy: {t.haproxy.lastError}</p>}
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
