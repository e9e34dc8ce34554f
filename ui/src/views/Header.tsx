/** The page's header: the fleet's name, how live the page is, who is signed in, and the sections. */

import { ConnectionBadge } from "../components/ConnectionBadge.tsx";
import type { Fleet } from "../live.ts";
import type { Whoami } from "../model.ts";

/** The header; the fleet's name appears once the first status has arrived. */
export function Header(props: { fleet: Fleet; who: Whoami; onSignOut: () => void }) {
  const { fleet, who } = props;
  const status = fleet.status;
  return (
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
          Signed in as <strong>{who.name}</strong> ({who.role ?? "role unknown"})
        </span>
        <button type="button" class="secondary" onClick={() => props.onSignOut()}>
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
            <a href="#stores">Stores</a>
          </li>
          <li>
            <a href="#events">Events</a>
          </li>
        </ul>
      </nav>
    </header>
  );
}
