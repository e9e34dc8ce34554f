/**
 * The leader lease and its fencing token (table `leadership`, one row).
 *
 * One controller leads a store at a time. On PostgreSQL several controllers share the store and
 * the lease decides: the leader renews it before it expires; a follower takes it once it has
 * expired, by the store's clock (so the controllers' own clocks need not agree). Every new leader
 * gets the previous token + 1: whatever it orders carries that token, and the journal, the drivers
 * and the data plane refuse orders whose token is older than the newest they have seen — a deposed
 * leader that wakes up (a long GC pause, SIGSTOP, a partition) cannot change anything.
 *
 * On SQLite the store is one machine's file and the controller lock (`acquireControllerLock`, by
 * pid) already makes one controller its only user: the lease is then taken with `exclusive`, which
 * never expires, and still hands out a new token per controller.
 */

import { HomeostatError } from "../errors.ts";
import type { SqlDatabase, SqlRow } from "./sql/database.ts";

/** The lease as the store holds it. */
export interface Lease {
  /** Who holds it: `host/pid/startedAt` of the controller process. */
  holder: string;
  /** The fencing token: +1 with every new leader, never reused. */
  token: number;
  /** When it expires, by the store's clock (epoch ms). */
  expiresAt: number;
  acquiredAt: number;
  renewedAt: number;
  pid: number;
  host: string;
  /** Where the holder's API answers, for followers to point clients at. */
  apiUrl: string | null;
}

/** What claiming the lease gave. */
export type Claim =
  | {
      leader: true;
      lease: Lease /** The store's clock when it granted the lease. */;
      now: number;
      taken: boolean;
    }
  | { leader: false; lease: Lease; now: number };

/** Who asks for the lease. */
export interface Claimant {
  holder: string;
  pid: number;
  host: string;
  apiUrl: string | null;
  /** When the controller started (epoch ms): a fleet stopped after that is not its to restart. */
  startedAt: number;
}

/**
 * The holder a lease has once the fleet was stopped (`homeostat down`): followers that were
 * waiting exit instead of taking over and starting the fleet again; a controller started later
 * (a new `up`) takes it.
 */
export const STOPPED_HOLDER = "(fleet stopped)";

/** An expiry that never comes (SQLite's single-controller lease). */
const NEVER = Number.MAX_SAFE_INTEGER;

export class LeadershipStore {
  readonly #db: SqlDatabase;

  constructor(db: SqlDatabase) {
    this.#db = db;
  }

  /**
   * Takes or renews the lease for `ttlMs`. The holder renews (its token unchanged, as long as
   * nobody took the lease since); anyone takes an expired lease (token + 1); otherwise the caller
   * learns who leads. `exclusive` (SQLite) takes it whatever its state, with a new token.
   */
  claim(who: Claimant, ttlMs: number, exclusive = false): Claim {
    return this.#db.transaction(() => {
      const now = this.#db.clockMs();
      const current = this.current();
      const expiresAt = exclusive ? NEVER : now + ttlMs;
      if (current !== null && current.holder === who.holder && !exclusive) {
        this.#db.run(
          "UPDATE leadership SET expires_at = ?, renewed_at = ?, api_url = ? WHERE id = 1 AND token = ?",
          expiresAt,
          now,
          who.apiUrl,
          current.token,
        );
        return {
          leader: true,
          lease: { ...current, expiresAt, renewedAt: now, apiUrl: who.apiUrl },
          now,
          taken: false,
        };
      }
      const stoppedBefore = current?.holder === STOPPED_HOLDER && who.startedAt > current.renewedAt;
      if (current !== null && current.expiresAt > now && !exclusive && !stoppedBefore) {
        return { leader: false, lease: current, now };
      }
      const token = (current?.token ?? 0) + 1;
      this.#db.run(
        `INSERT INTO leadership (id, holder, token, expires_at, acquired_at, renewed_at, pid, host, api_url)
         VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, token = excluded.token,
           expires_at = excluded.expires_at, acquired_at = excluded.acquired_at, renewed_at = excluded.renewed_at,
           pid = excluded.pid, host = excluded.host, api_url = excluded.api_url`,
        who.holder,
        token,
        expiresAt,
        now,
        now,
        who.pid,
        who.host,
        who.apiUrl,
      );
      const lease: Lease = {
        holder: who.holder,
        pid: who.pid,
        host: who.host,
        apiUrl: who.apiUrl,
        token,
        expiresAt,
        acquiredAt: now,
        renewedAt: now,
      };
      return { leader: true, lease, now, taken: true };
    });
  }

  /** Gives the lease up at once (a clean shutdown: a follower need not wait out the TTL). */
  release(token: number): void {
    this.#db.run("UPDATE leadership SET expires_at = 0 WHERE id = 1 AND token = ?", token);
  }

  /**
   * Marks the fleet stopped (the leader ran `down`): the lease never expires and waiting followers
   * exit rather than start the fleet again. Only the holder of `token` can.
   */
  markStopped(token: number): void {
    this.#db.run(
      "UPDATE leadership SET holder = ?, expires_at = ?, renewed_at = ?, api_url = NULL WHERE id = 1 AND token = ?",
      STOPPED_HOLDER,
      NEVER,
      this.#db.clockMs(),
      token,
    );
  }

  /** The lease as stored, or null before any controller led. */
  current(): Lease | null {
    const row = this.#db.get("SELECT * FROM leadership WHERE id = 1");
    return row === undefined ? null : leaseFromRow(row);
  }

  /**
   * Throws unless `token` holds an unexpired lease right now, by the store's clock: checked before
   * a side effect that no later check can undo (starting or stopping a process).
   * @throws HomeostatError HS_FENCED naming the newer token
   */
  assertCurrent(token: number, what: string): void {
    const lease = this.current();
    const now = this.#db.clockMs();
    if (lease !== null && lease.token === token && lease.expiresAt > now) return;
    throw fenced(token, lease, what);
  }

  /** The store's clock (epoch ms). */
  clockMs(): number {
    return this.#db.clockMs();
  }
}

/** The HS_FENCED error for an order carrying `token` while `lease` is the store's. */
export function fenced(token: number, lease: Lease | null, what: string): HomeostatError {
  const newer = lease !== null && lease.token !== token;
  return new HomeostatError(
    "HS_FENCED",
    newer
      ? `${what} refused: it carries fencing token ${token}, but controller ${lease.holder} leads with token ${lease.token}`
      : `${what} refused: the lease of fencing token ${token} has expired`,
    { details: { token, current: lease?.token ?? null, holder: lease?.holder ?? null } },
  );
}

function leaseFromRow(row: SqlRow): Lease {
  return {
    holder: String(row.holder),
    token: Number(row.token),
    expiresAt: Number(row.expires_at),
    acquiredAt: Number(row.acquired_at),
    renewedAt: Number(row.renewed_at),
    pid: Number(row.pid),
    host: String(row.host),
    apiUrl: row.api_url === null ? null : String(row.api_url),
  };
}
