/**
 * Leader election among the controllers of one PostgreSQL store (see `src/store/leadership.ts` for
 * the lease and its fencing token).
 *
 * A follower claims the lease every `renewEveryMs` until it gets it. The leader renews it as often,
 * and stops acting on its own before the lease can have expired anywhere: its lease runs `ttlMs`
 * from the moment the store granted it, which is after the leader sent the claim, so the leader
 * counts `ttlMs - marginMs` from the moment it *sent* the claim, on its own monotonic clock. The
 * margin covers the two clocks' rates disagreeing (quartz drift is parts per million: 1 s covers
 * far more than that) and a renewal answered late; clock *offsets* do not matter, the expiry is
 * only ever compared with the store's clock. Past that instant the leader is deposed even if the
 * store never told it so (a partition, a SIGSTOP, a long pause): `assertLeading` throws and
 * `onLost` fires.
 */

import { HomeostatError } from "../errors.ts";
import type { Claim, Claimant, LeadershipStore, Lease } from "../store/index.ts";

/** Lease settings (`--lease-ttl`); the defaults suit a LAN store and a 1 s reconcile pass. */
export interface LeaseSettings {
  /** How long a lease lasts after each renewal. */
  ttlMs: number;
  /** How often the leader renews and a follower retries. */
  renewEveryMs: number;
  /** How long before the lease's end (by its own clock) a leader stops acting. */
  marginMs: number;
}

/** 5 s lease renewed every second: a dead leader is replaced within ~5 s + one pass. */
export const DEFAULT_LEASE: LeaseSettings = { ttlMs: 5_000, renewEveryMs: 1_000, marginMs: 1_000 };

/**
 * Checks lease settings: the leader must renew several times per lease, and the margin must leave
 * it time to act.
 * @throws HomeostatError HS_USAGE
 */
export function checkLeaseSettings(s: LeaseSettings): void {
  if (!(s.ttlMs >= 1_000 && s.ttlMs <= 600_000)) {
    throw new HomeostatError("HS_USAGE", `--lease-ttl ${s.ttlMs}ms: give 1s to 10m`);
  }
  if (s.renewEveryMs * 2 > s.ttlMs - s.marginMs) {
    throw new HomeostatError(
      "HS_USAGE",
      `a lease of ${s.ttlMs}ms renewed every ${s.renewEveryMs}ms with a ${s.marginMs}ms margin leaves under two renewals per lease: a slow store would depose the leader`,
    );
  }
}

export interface LeaderElectionOptions {
  leases: LeadershipStore;
  me: Claimant;
  settings: LeaseSettings;
  /** Called once when this leader stops leading, with why. */
  onLost: (why: string) => void;
  /** Monotonic ms (tests may drive it). */
  monotonic?: () => number;
}

export class LeaderElection {
  readonly #leases: LeadershipStore;
  readonly #me: Claimant;
  readonly #settings: LeaseSettings;
  readonly #onLost: (why: string) => void;
  readonly #monotonic: () => number;
  #lease: Lease | null = null;
  /** Monotonic instant past which this leader must not act. */
  #safeUntil = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | null = null;
  #lost: string | null = null;
  #stopped = false;

  constructor(options: LeaderElectionOptions) {
    this.#leases = options.leases;
    this.#me = options.me;
    this.#settings = options.settings;
    this.#onLost = options.onLost;
    this.#monotonic = options.monotonic ?? (() => performance.now());
  }

  /**
   * Claims the lease until it is this controller's; `following` is told the current leader at
   * every refused claim (and store errors, as a lease of null). Resolves with the lease once
   * leading; rejects if `signal` aborts.
   */
  async acquire(
    following: (lease: Lease | null, error?: unknown) => void,
    signal?: AbortSignal,
  ): Promise<Lease> {
    for (;;) {
      if (signal?.aborted) throw signal.reason ?? new Error("aborted");
      const claim = this.#tryClaim();
      let waitMs = this.#settings.renewEveryMs;
      if (claim instanceof Error) following(null, claim);
      else if (claim.leader) return claim.lease;
      else {
        following(claim.lease);
        // Claim again the moment the lease runs out (by the store's clock), not up to a period later.
        waitMs = Math.max(5, Math.min(waitMs, claim.lease.expiresAt - claim.now + 5));
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        signal?.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The lease while leading, else null. */
  get lease(): Lease | null {
    return this.#lost === null ? this.#lease : null;
  }

  /** Why leadership was lost, or null while leading (or before). */
  get lostBecause(): string | null {
    return this.#lost;
  }

  /** Starts renewing (after `acquire`). */
  start(): void {
    this.#renew();
  }

  /**
   * Throws unless this controller still leads by its own clock: checked before every order.
   * @throws HomeostatError HS_FENCED
   */
  assertLeading(what: string): void {
    if (this.#lost === null && this.#monotonic() >= this.#safeUntil) {
      this.#lose(`the lease was not renewed in time (it could have expired by the store's clock)`);
    }
    if (this.#lost !== null) {
      throw new HomeostatError(
        "HS_FENCED",
        `${what} refused: this controller no longer leads (${this.#lost})`,
        {
          details: { token: this.#lease?.token ?? null },
        },
      );
    }
  }

  /** Stops renewing; with `release`, gives the lease up so a follower takes over at once. */
  stop(release: boolean): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (release && this.#lost === null && this.#lease !== null) {
      try {
        this.#leases.release(this.#lease.token);
      } catch {
        // The store is away: the lease simply runs out.
      }
    }
  }

  #tryClaim(): Claim | Error {
    const sentAt = this.#monotonic();
    try {
      const claim = this.#leases.claim(this.#me, this.#settings.ttlMs);
      if (claim.leader) {
        this.#lease = claim.lease;
        this.#safeUntil = sentAt + this.#settings.ttlMs - this.#settings.marginMs;
      }
      return claim;
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  }

  #renew(): void {
    if (this.#stopped || this.#lost !== null) return;
    const claim = this.#tryClaim();
    if (!(claim instanceof Error) && !claim.leader) {
      this.#lose(`controller ${claim.lease.holder} took the lease with fencing token ${claim.lease.token}`);
      return;
    }
    if (this.#monotonic() >= this.#safeUntil) {
      const why = claim instanceof Error ? `: ${claim.message}` : "";
      this.#lose(`the lease could not be renewed in time${why}`);
      return;
    }
    // Also wake at the safe instant itself: a renewal that keeps failing must depose on time.
    const next = Math.min(this.#settings.renewEveryMs, Math.max(0, this.#safeUntil - this.#monotonic()));
    this.#timer = setTimeout(() => this.#renew(), next);
    this.#timer.unref?.();
  }

  #lose(why: string): void {
    if (this.#lost !== null) return;
    // Test hook (off in production): a deposed leader that does not notice, so that tests show the
    // journal, the drivers and the data plane refusing its orders on their own.
    if (ignoreLeaseLoss()) return;
    this.#lost = why;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#onLost(why);
  }
}

function ignoreLeaseLoss(): boolean {
  return process.env.HOMEOSTAT_TEST_HOOKS === "1" && process.env.HOMEOSTAT_TEST_IGNORE_LEASE_LOSS === "1";
}
