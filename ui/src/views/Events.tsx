/** The controller's latest events, newest first, as its event log words them. */

import { Section } from "../components/Section.tsx";
import { clock } from "../format.ts";
import type { Fleet } from "../live.ts";

/** The recent events panel. */
export function Events(props: { fleet: Fleet }) {
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
