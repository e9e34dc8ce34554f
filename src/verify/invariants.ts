/**
 * Security invariants: what must stay true of a service while Homeostat recovers it. Protected
 * paths reject unauthenticated requests (401/403), and every instance reports the same
 * permission-policy hash. The evaluation here is pure: it turns one round of probe observations
 * into a verdict. Nothing fails open: an instance that could not be checked makes the verdict
 * `checked: false`, which the verification gate treats as "not yet verified", never as ok.
 */

/** One invariant that does not hold. */
export interface BrokenInvariant {
  /** Stable name: `protected-path:GET /admin` or `policy-hash:/policy`. One incident per name. */
  invariant: string;
  kind: "protected-path" | "policy-hash";
  /** The instance that breaks it (for a policy divergence: the instance off the majority hash). */
  instance?: string;
  /** One sentence a person can read: "GET /admin answered 200 without credentials on api-1". */
  detail: string;
  /** Epoch ms when this invariant was first seen broken (kept across rounds while it stays broken). */
  since: number;
}

/** The verdict on one service's invariants. */
export interface InvariantVerdict {
  /** True only when every invariant was checked on every ready instance and holds. */
  ok: boolean;
  /** False while some instance could not be probed since the last change (not ok, not broken). */
  checked: boolean;
  broken: BrokenInvariant[];
  /** Epoch ms of the last complete probe round, null before the first. */
  lastCheckedAt: number | null;
}

/** What the verification gate reads: the current verdict on a service's invariants. */
export interface InvariantVerdicts {
  forService(service: string): InvariantVerdict;
}

/** The verdict of a service that declares no invariants: nothing to break, nothing to wait for. */
export const NO_INVARIANTS: InvariantVerdict = Object.freeze({
  ok: true,
  checked: true,
  broken: [],
  lastCheckedAt: null,
}) as InvariantVerdict;

/** The verdict before anything was probed: not ok, not checked. */
export function uncheckedVerdict(lastCheckedAt: number | null = null): InvariantVerdict {
  return { ok: false, checked: false, broken: [], lastCheckedAt };
}

/** One protected path requested without credentials on one instance. */
export interface ProtectedPathObservation {
  path: string;
  method: string;
  /** Statuses that mean "rejected" (default 401, 403). */
  expect: number[];
  /** The status answered, or null when the request failed (connection refused, timeout). */
  status: number | null;
  /** Why the request failed, when status is null. */
  error?: string;
}

/** The policy-hash endpoint's answer on one instance. */
export interface PolicyObservation {
  path: string;
  /** The hash the instance reported, or null when it could not be read. */
  hash: string | null;
  /**
   * The HTTP status, when the instance answered. An answer without a readable hash (a 404, a 500,
   * an empty body) breaks the invariant; no answer at all (refused, timed out) leaves it unchecked.
   */
  status?: number;
  /** Why it could not be read (connection failed, non-2xx, empty body). */
  error?: string;
  /** The hash the instance's release declares, if it declares one. */
  expected?: string | null;
}

/** One probe round on one ready instance. */
export interface InstanceObservation {
  instance: string;
  release?: string;
  protectedPaths: ProtectedPathObservation[];
  policy: PolicyObservation | null;
}

/** Input to {@link evaluateInvariants}. */
export interface InvariantInput {
  /** Observations of every ready instance of the service, this round. */
  instances: InstanceObservation[];
  now: number;
  /** The previous verdict, so `since` survives across rounds. */
  previous?: InvariantVerdict;
}

/** Stable name of a protected-path invariant. */
export function protectedPathName(method: string, path: string): string {
  return `protected-path:${method.toUpperCase()} ${path}`;
}

/** Stable name of a policy-hash invariant. */
export function policyHashName(path: string): string {
  return `policy-hash:${path}`;
}

/**
 * Evaluate one probe round. Rules:
 * - a protected path answering a status outside `expect` is broken (200 = fail-open, 404 = the
 *   guard is gone, 500 = the guard crashed: none of them is "rejected");
 * - a protected path that could not be requested is *not checked* (not broken, not ok);
 * - policy hashes that differ between instances are broken, naming every instance off the most
 *   common hash (ties: the lexically smallest hash is taken as the reference, so the verdict is
 *   deterministic); a hash that differs from the one the instance's release declares is broken;
 * - a policy endpoint that answers without a hash (404, 500, empty body) is broken; one that does
 *   not answer at all (refused, timed out) is *not checked*;
 * - no ready instance at all is *not checked*: there is nothing that proves the invariants hold.
 */
export function evaluateInvariants(input: InvariantInput): InvariantVerdict {
  const { instances, now, previous } = input;
  const broken: Omit<BrokenInvariant, "since">[] = [];
  let checked = instances.length > 0;

  for (const observation of instances) {
    for (const probe of observation.protectedPaths) {
      const name = protectedPathName(probe.method, probe.path);
      if (probe.status === null) {
        checked = false;
        continue;
      }
      if (!probe.expect.includes(probe.status)) {
        broken.push({
          invariant: name,
          kind: "protected-path",
          instance: observation.instance,
          detail: `${probe.method.toUpperCase()} ${probe.path} answered ${probe.status} without credentials on ${observation.instance} (expected ${probe.expect.join(" or ")})`,
        });
      }
    }
  }

  const withPolicy = instances.filter((o) => o.policy !== null);
  const policyPaths = new Set(withPolicy.map((o) => o.policy!.path));
  for (const path of policyPaths) {
    const name = policyHashName(path);
    const readings = withPolicy.filter((o) => o.policy!.path === path);
    const known = readings.filter((o) => o.policy!.hash !== null);
    for (const o of readings) {
      if (o.policy!.hash !== null) continue;
      if (o.policy!.status === undefined) {
        checked = false;
        continue;
      }
      broken.push({
        invariant: name,
        kind: "policy-hash",
        instance: o.instance,
        detail: `${o.instance} answered ${path} without a policy hash (${o.policy!.error ?? `status ${o.policy!.status}`})`,
      });
    }
    for (const o of known) {
      const expected = o.policy!.expected;
      if (expected && o.policy!.hash !== expected) {
        broken.push({
          invariant: name,
          kind: "policy-hash",
          instance: o.instance,
          detail: `${o.instance} reports policy hash ${o.policy!.hash} on ${path}, its release ${o.release ?? "?"} declares ${expected}`,
        });
      }
    }
    const reference = majorityHash(known.map((o) => o.policy!.hash!));
    if (reference === null) continue;
    for (const o of known) {
      if (o.policy!.hash === reference) continue;
      if (broken.some((b) => b.invariant === name && b.instance === o.instance)) continue;
      broken.push({
        invariant: name,
        kind: "policy-hash",
        instance: o.instance,
        detail: `${o.instance} reports policy hash ${o.policy!.hash} on ${path}, the other instances ${reference}`,
      });
    }
  }

  const sinceOf = (b: Omit<BrokenInvariant, "since">): number =>
    previous?.broken.find((p) => p.invariant === b.invariant && p.instance === b.instance)?.since ?? now;
  const stamped = broken.map((b) => ({ ...b, since: sinceOf(b) }));
  return {
    ok: checked && stamped.length === 0,
    checked,
    broken: stamped,
    lastCheckedAt: checked ? now : (previous?.lastCheckedAt ?? null),
  };
}

/** The most common hash; ties go to the lexically smallest, so the choice is deterministic. */
function majorityHash(hashes: string[]): string | null {
  if (hashes.length === 0) return null;
  const counts = new Map<string, number>();
  for (const h of hashes) counts.set(h, (counts.get(h) ?? 0) + 1);
  let best: string | null = null;
  let bestCount = 0;
  for (const [hash, count] of [...counts].sort((a, b) => a[0].localeCompare(b[0]))) {
    if (count > bestCount) {
      best = hash;
      bestCount = count;
    }
  }
  return best;
}

/**
 * Group broken invariants by invariant name (one incident per service + invariant), each group
 * listing the instances that break it.
 */
export function brokenByInvariant(broken: BrokenInvariant[]): Map<string, BrokenInvariant[]> {
  const groups = new Map<string, BrokenInvariant[]>();
  for (const b of broken) {
    const list = groups.get(b.invariant) ?? [];
    list.push(b);
    groups.set(b.invariant, list);
  }
  return groups;
}
