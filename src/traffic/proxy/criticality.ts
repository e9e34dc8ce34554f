import { CRITICALITY_HEADER, type Criticality } from "../contracts.ts";

/** A request's criticality and whether its header was present but unrecognised (counted, not refused). */
export interface ParsedCriticality {
  criticality: Criticality;
  unrecognised: boolean;
}

const KNOWN: ParsedCriticality[] = [
  { criticality: "critical", unrecognised: false },
  { criticality: "default", unrecognised: false },
  { criticality: "sheddable", unrecognised: false },
];
const ABSENT = KNOWN[1]!;
const UNRECOGNISED: ParsedCriticality = { criticality: "default", unrecognised: true };

/**
 * Criticality from `x-homeostat-criticality` (case-insensitive). Anything else is `default`:
 * a typo must neither promote a request nor shed it first. Shared result objects: no allocation.
 */
export function parseCriticality(value: string | string[] | undefined): ParsedCriticality {
  if (value === undefined) return ABSENT;
  if (typeof value !== "string") return UNRECOGNISED;
  for (const known of KNOWN) {
    if (value.length === known.criticality.length && value.toLowerCase() === known.criticality) return known;
  }
  return UNRECOGNISED;
}

export { CRITICALITY_HEADER };
