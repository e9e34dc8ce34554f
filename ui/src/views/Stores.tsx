/**
 * Replicated stores (docs/redis.md): per store its primary and epoch, where the stable endpoint
 * forwards, its phase (a failover or switchover under way, a refusal), and each member with its
 * zone, role, the member it follows, link and replication lag.
 */

import { Section } from "../components/Section.tsx";
import type { StatusDoc, StoreDoc } from "../model.ts";

/** The stores panel: one card per store (the panel says so when the fleet has none). */
export function Stores(props: { status: StatusDoc }) {
  const stores = props.status.stores ?? [];
  return (
    <Section id="stores" title="Stores">
      {stores.length === 0 ? (
        <p class="quiet">This fleet declares no replicated store.</p>
      ) : (
        <div class="cards">
          {stores.map((s) => (
            <StoreCard key={s.name} store={s} />
          ))}
        </div>
      )}
    </Section>
  );
}

function StoreCard(props: { store: StoreDoc }) {
  const s = props.store;
  const last = s.lastFailover;
  return (
    <article class="card" aria-labelledby={`store-${s.name}`} data-store={s.name}>
      <h3 id={`store-${s.name}`}>
        {s.name} <span class="small">redis · epoch {s.epoch}</span>
      </h3>
      <dl class="facts">
        <div>
          <dt>phase</dt>
          <dd data-testid={`store-phase-${s.name}`}>
            {s.phase}
            {s.phase !== "healthy" && <span aria-hidden="true"> ⚠</span>}
          </dd>
        </div>
        <div>
          <dt>primary</dt>
          <dd>{s.primary}</dd>
        </div>
        <div>
          <dt>endpoint</dt>
          <dd>
            :{s.endpoint.port} → {s.endpoint.primary ?? "none (promotion under way)"}
          </dd>
        </div>
        {s.sentinel !== null && (
          <div>
            <dt>sentinel</dt>
            <dd>:{s.sentinel.port}</dd>
          </div>
        )}
      </dl>
      <table class="small" aria-label={`members of ${s.name}`}>
        <thead>
          <tr>
            <th scope="col">member</th>
            <th scope="col">zone</th>
            <th scope="col">role</th>
            <th scope="col">follows</th>
            <th scope="col">lag</th>
          </tr>
        </thead>
        <tbody>
          {s.members.map((m) => (
            <tr key={m.name} data-member={m.name}>
              <th scope="row">{m.name}</th>
              <td>{m.zone}</td>
              <td>{m.process === "exited" ? "exited" : m.reachable ? (m.role ?? "?") : "unreachable"}</td>
              <td>
                {m.follows ?? "—"}
                {m.role === "replica" && !m.linkUp ? " (link down)" : ""}
              </td>
              <td>{m.lagBytes === null ? "—" : `${m.lagBytes} B`}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {last !== null && (
        <p class="small">
          last {last.kind}: {last.from} → {last.to} at {new Date(last.at).toLocaleTimeString()} (epoch{" "}
          {last.epoch}
          {last.lossBytes > 0 ? `, ${last.lossBytes} bytes known lost` : ""})
        </p>
      )}
      {s.openIncident !== null && <p class="small">incident #{s.openIncident} open</p>}
    </article>
  );
}
