/** A recovery state as people see it everywhere: an icon, a word and a colour. */

import type { RecoveryState } from "../model.ts";

/** Word and icon for each state: colour is never the only signal. */
const STATE_LOOK: Record<RecoveryState, { icon: string; word: string }> = {
  healthy: { icon: "●", word: "healthy" },
  degraded: { icon: "◐", word: "degraded" },
  failing: { icon: "✖", word: "failing" },
  recovering: { icon: "↻", word: "recovering" },
  "recovered-unverified": { icon: "◔", word: "recovered, unverified" },
  verified: { icon: "✔", word: "verified" },
};

/** A recovery state as an icon, a word and a colour (the word carries the meaning). */
export function StateBadge(props: { state: RecoveryState; reasons?: string[] }) {
  const look = STATE_LOOK[props.state];
  const title =
    props.reasons !== undefined && props.reasons.length > 0 ? props.reasons.join("; ") : undefined;
  return (
    <span class={`badge s-${props.state}`} data-state={props.state} title={title}>
      <span aria-hidden="true">{look.icon}</span> {look.word}
    </span>
  );
}
