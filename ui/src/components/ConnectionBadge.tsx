/** How fresh the page is: live from the event stream, polling (and why), or cut off. */

import type { Fleet } from "../live.ts";

/** The connection's mode as an icon and words; `data-mode` lets the browser tests wait for it. */
export function ConnectionBadge(props: { fleet: Fleet }) {
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
