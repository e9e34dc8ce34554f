/**
 * The pure decisions of a replicated Redis store: from a snapshot of what the controller observed
 * of its members, what to do now (fail over, refuse to, fence a stale primary, repoint a replica,
 * restart a member as a replica), each with typed reasons; and whether a recovery is verified.
 * No I/O and no clock: `now` is an argument, so the same snapshot always gives the same plan.
 * The I/O that carries a plan out is src/stateful/redis/storeManager.ts. See docs/redis.md.
 */

/** One member as last observed. */
export interface MemberView {
  name: string;
  /** Position in the store: member i listens on basePort + i. */
  index: number;
  port: number;
  zone: string;
  /** Replica priority (lower preferred, 0 never promoted). */
  priority: number;
  /** Whether its process runs (the driver's view). */
  process: "running" | "exited";
  /** Consecutive failed probes (PING; and the write probe on the primary). 0: the last one passed. */
  failures: number;
  /** From its last `INFO replication` (null: never read since it started). */
  role: "primary" | "replica" | null;
  offset: number | null;
  /** Replica: the port of the primary it follows, and whether that link is up. */
  follows: number | null;
  linkUp: boolean;
}

/** What the controller knows of a store, in one snapshot. */
export interface StoreView {
  store: string;
  /** Incremented by every promotion (journaled): the fencing token of the topology. */
  epoch: number;
  /** The member the journal says is primary (the only one the endpoint may point at). */
  primary: string;
  members: MemberView[];
  /** The primary's replication offset at its last successful observation, and when. */
  primaryOffset: number | null;
  primaryObservedAt: number | null;
  policy: {
    failures: number;
    maxLagOnFailoverBytes: number;
    onLag: "refuse" | "warn";
    /** min-replicas-max-lag in ms when min-replicas-to-write > 0, else null (no bound from Redis). */
    writeFenceMs: number | null;
  };
}

/** Why a plan is what it is. Every decision names its reasons; `code` is what tools match on. */
export type StoreReason =
  | { code: "primary-unreachable"; member: string; failures: number; threshold: number }
  | {
      code: "replica-chosen";
      member: string;
      priority: number;
      offset: number;
      lagBytes: number;
      /** Not in the failed primary's zone. */
      independent: boolean;
      zone: string;
      /** Every candidate in rank order, with why it ranks where it does or why it is out. */
      ranking: CandidateRank[];
    }
  | {
      code: "lag-exceeds-bound";
      member: string;
      lagBytes: number;
      boundBytes: number;
      policy: "refuse" | "warn";
    }
  | { code: "no-eligible-replica"; candidates: CandidateRank[] }
  | { code: "stale-primary"; member: string; epoch: number; primary: string }
  | { code: "follows-wrong-primary"; member: string; follows: number | null; primary: string }
  | { code: "member-exited"; member: string; role: "replica" | "former-primary" }
  | { code: "recorded-primary-is-replica"; member: string; epoch: number; follows: number | null };

/** One candidate of a failover, as ranked. */
export interface CandidateRank {
  member: string;
  eligible: boolean;
  /** Why it is out (unreachable, priority 0, no offset known, not a replica). */
  excluded?: string;
  priority: number;
  offset: number | null;
  lagBytes: number | null;
  withinLag: boolean;
  independent: boolean;
}

/** What may be lost by a promotion, as stated in the incident. */
export interface LossBound {
  /** Replication stream the promoted replica had not received at the primary's last observation. */
  knownBytes: number;
  /** When that observation was (epoch ms), and how long before the decision. */
  observedAt: number | null;
  sinceObservedMs: number | null;
  /**
   * Writes after that observation that reached no replica are lost too; with
   * min-replicas-to-write the failed primary stopped taking them this long after its replicas'
   * last ack (null: no such fence, the window is unbounded by Redis).
   */
  writeFenceMs: number | null;
  statement: string;
}

export type StoreAction =
  | {
      kind: "failover";
      from: string;
      to: string;
      /** The epoch the promotion takes (current + 1). */
      epoch: number;
      /** The other replicas, to follow `to`. */
      repoint: string[];
      loss: LossBound;
      /** Promoted past maxLagOnFailover because the policy is `warn`. */
      lagWarning: boolean;
      reasons: StoreReason[];
    }
  | { kind: "refuse"; from: string; best: string | null; loss: LossBound | null; reasons: StoreReason[] }
  | { kind: "demote"; member: string; reasons: StoreReason[] }
  | { kind: "repoint"; member: string; reasons: StoreReason[] }
  | { kind: "restart-replica"; member: string; reasons: StoreReason[] }
  | { kind: "complete-promotion"; member: string; reasons: StoreReason[] };

/**
 * What to do with the store now. At most one failover (or refusal); fencing (demote) and
 * repointing come before anything else in the list, so a stale primary is a replica again
 * before anything could send it traffic.
 */
export function decideStore(view: StoreView, now: number): StoreAction[] {
  const actions: StoreAction[] = [];
  const primary = view.members.find((m) => m.name === view.primary);
  const primaryPort = primary?.port ?? null;
  for (const member of view.members) {
    if (member.name === view.primary) continue;
    if (member.process === "exited") {
      actions.push({
        kind: "restart-replica",
        member: member.name,
        reasons: [{ code: "member-exited", member: member.name, role: "replica" }],
      });
      continue;
    }
    if (member.failures > 0 || member.role === null) continue;
    if (member.role === "primary") {
      actions.push({
        kind: "demote",
        member: member.name,
        reasons: [{ code: "stale-primary", member: member.name, epoch: view.epoch, primary: view.primary }],
      });
    } else if (member.follows !== primaryPort) {
      actions.push({
        kind: "repoint",
        member: member.name,
        reasons: [
          {
            code: "follows-wrong-primary",
            member: member.name,
            follows: member.follows,
            primary: view.primary,
          },
        ],
      });
    }
  }
  if (primary !== undefined && primary.failures >= view.policy.failures) {
    actions.push(planFailover(view, primary, now));
  } else if (primary !== undefined && primary.failures === 0 && primary.role === "replica") {
    // The journal names it primary at this epoch, it answers as a replica: a promotion that a
    // controller crash interrupted after the epoch was written. The journal is the truth.
    actions.unshift({
      kind: "complete-promotion",
      member: primary.name,
      reasons: [
        {
          code: "recorded-primary-is-replica",
          member: primary.name,
          epoch: view.epoch,
          follows: primary.follows,
        },
      ],
    });
  }
  return actions;
}

/** Rank the replicas and promote the best, or refuse (policy) when it lags past the bound. */
export function planFailover(view: StoreView, failed: MemberView, now: number): StoreAction {
  const unreachable: StoreReason = {
    code: "primary-unreachable",
    member: failed.name,
    failures: failed.failures,
    threshold: view.policy.failures,
  };
  const ranking = rankCandidates(view, failed);
  const best = ranking.find((c) => c.eligible);
  if (best === undefined) {
    return {
      kind: "refuse",
      from: failed.name,
      best: null,
      loss: null,
      reasons: [unreachable, { code: "no-eligible-replica", candidates: ranking }],
    };
  }
  const member = view.members.find((m) => m.name === best.member)!;
  const loss = lossBound(view, best.lagBytes ?? 0, now);
  const chosen: StoreReason = {
    code: "replica-chosen",
    member: best.member,
    priority: best.priority,
    offset: best.offset ?? 0,
    lagBytes: best.lagBytes ?? 0,
    independent: best.independent,
    zone: member.zone,
    ranking,
  };
  if (!best.withinLag) {
    const lag: StoreReason = {
      code: "lag-exceeds-bound",
      member: best.member,
      lagBytes: best.lagBytes ?? 0,
      boundBytes: view.policy.maxLagOnFailoverBytes,
      policy: view.policy.onLag,
    };
    if (view.policy.onLag === "refuse") {
      return {
        kind: "refuse",
        from: failed.name,
        best: best.member,
        loss,
        reasons: [unreachable, chosen, lag],
      };
    }
    return failoverTo(view, failed, best.member, loss, true, [unreachable, chosen, lag]);
  }
  return failoverTo(view, failed, best.member, loss, false, [unreachable, chosen]);
}

function failoverTo(
  view: StoreView,
  failed: MemberView,
  to: string,
  loss: LossBound,
  lagWarning: boolean,
  reasons: StoreReason[],
): StoreAction {
  const repoint = view.members
    .filter((m) => m.name !== to && m.name !== failed.name && m.process === "running")
    .map((m) => m.name);
  return {
    kind: "failover",
    from: failed.name,
    to,
    epoch: view.epoch + 1,
    repoint,
    loss,
    lagWarning,
    reasons,
  };
}

/**
 * Candidates in rank order. Out: the failed primary, members whose last probe failed, priority 0,
 * no replication offset known, not a replica. In: first those within maxLagOnFailover (a replica
 * past it is chosen only when none is within), then by priority (lower first), then those outside
 * the failed primary's zone (a zone failure may take the rest of it), then by offset (most data),
 * then by index (a stable order).
 */
export function rankCandidates(view: StoreView, failed: MemberView): CandidateRank[] {
  const reference = view.primaryOffset;
  const ranks = view.members
    .filter((m) => m.name !== failed.name)
    .map((m): CandidateRank => {
      const lagBytes = m.offset === null ? null : Math.max(0, (reference ?? m.offset) - m.offset);
      const excluded =
        m.process !== "running" || m.failures > 0
          ? "unreachable"
          : m.priority === 0
            ? "priority 0 (never promoted)"
            : m.role !== "replica"
              ? `not a replica (${m.role ?? "role unknown"})`
              : m.offset === null
                ? "replication offset unknown"
                : undefined;
      return {
        member: m.name,
        eligible: excluded === undefined,
        ...(excluded === undefined ? {} : { excluded }),
        priority: m.priority,
        offset: m.offset,
        lagBytes,
        withinLag: lagBytes !== null && lagBytes <= view.policy.maxLagOnFailoverBytes,
        independent: m.zone !== failed.zone,
      };
    });
  const index = new Map(view.members.map((m) => [m.name, m.index]));
  return ranks.sort(
    (a, b) =>
      Number(b.eligible) - Number(a.eligible) ||
      Number(b.withinLag) - Number(a.withinLag) ||
      a.priority - b.priority ||
      Number(b.independent) - Number(a.independent) ||
      (b.offset ?? -1) - (a.offset ?? -1) ||
      index.get(a.member)! - index.get(b.member)!,
  );
}

/** What a promotion with `knownBytes` of known lag may lose, in numbers and in words. */
export function lossBound(view: StoreView, knownBytes: number, now: number): LossBound {
  const since = view.primaryObservedAt === null ? null : now - view.primaryObservedAt;
  const fence = view.policy.writeFenceMs;
  const unknown =
    fence === null
      ? "plus any write the primary acknowledged after that and no replica received (no min-replicas-to-write: not bounded)"
      : `plus writes the primary acknowledged after that and no replica received, which min-replicas-to-write stops within ${fence} ms of the replicas' last ack`;
  const when = since === null ? "never observed" : `observed ${since} ms before the decision`;
  return {
    knownBytes,
    observedAt: view.primaryObservedAt,
    sinceObservedMs: since,
    writeFenceMs: fence,
    statement: `${knownBytes} bytes of replication stream not on the promoted replica at the primary's last observation (${when}), ${unknown}`,
  };
}

/** One check of a store's verification. */
export interface StoreCheck {
  check: "primary-writable" | "replica-follows" | "old-primary-fenced";
  member: string;
  ok: boolean;
  detail: string;
}

/**
 * Whether a failover (or switchover) is verified: the new primary accepts writes, every running
 * replica follows it with its link up and within the lag bound, and the old primary, if it runs,
 * is a replica.
 */
export function verifyStore(
  view: StoreView,
  writable: boolean,
  oldPrimary: string | null,
): { verified: boolean; checks: StoreCheck[] } {
  const primary = view.members.find((m) => m.name === view.primary);
  const checks: StoreCheck[] = [
    {
      check: "primary-writable",
      member: view.primary,
      ok: writable && primary?.role === "primary",
      detail: writable ? `role ${primary?.role ?? "unknown"}` : "the write probe failed",
    },
  ];
  for (const member of view.members) {
    if (member.name === view.primary) continue;
    const lag =
      view.primaryOffset === null || member.offset === null ? null : view.primaryOffset - member.offset;
    const follows =
      member.process === "running" &&
      member.failures === 0 &&
      member.role === "replica" &&
      member.follows === primary?.port &&
      member.linkUp &&
      lag !== null &&
      lag <= view.policy.maxLagOnFailoverBytes;
    const detail =
      member.process !== "running"
        ? "not running"
        : `role ${member.role ?? "unknown"}, follows ${member.follows ?? "-"}, link ${member.linkUp ? "up" : "down"}, lag ${lag ?? "?"} bytes`;
    if (member.name === oldPrimary) {
      // The old primary is replaced as a replica when it died, demoted when it returns: either
      // way it must end up following the new one.
      checks.push({ check: "old-primary-fenced", member: member.name, ok: follows, detail });
    } else {
      checks.push({ check: "replica-follows", member: member.name, ok: follows, detail });
    }
  }
  return { verified: checks.every((c) => c.ok), checks };
}
